"""The look every dashboard figure shares: its colours, fixed margins, legends and layouts.

Figures are laid out in margins fixed in pixels (FIXED_MARGIN, fitted to names where they
hold class or run names), their legends in a corner of the plot that the data leaves
empty, beside it, or above it (LEGEND_CORNERS), and their layout is given as one dict
before the traces (:func:`chart_layout`): see the comments below for what each saved.
"""

from __future__ import annotations

import colorsys
import math
from typing import Mapping, Sequence

import plotly.colors
import plotly.graph_objects as go

TRAIN_COLOUR = "#4C78A8"
VAL_COLOUR = "#F58518"
TEST_COLOUR = "#54A24B"
LR_COLOUR = "#B279A2"
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D",
           "#FF9DA6", "#BAB0AC")
# Twenty colours told apart on white: PALETTE, then ten of plotly's Dark24 that none of
# PALETTE's resembles (Dark24's others repeat PALETTE's hues: its blue, green and red).
DISTINCT_COLOURS = PALETTE + ("#222A2A", "#1616A7", "#DA16FF", "#6C7C32", "#862A16", "#2E91E5", "#B68100",
                              "#1CA71C", "#750D86", "#00A08B")
# Past them: the rest of Dark24 (legible on white, unlike its Alphabet's pale greys and
# creams), then hues spread by the golden angle, so no two runs share a colour.
MORE_RUN_COLOURS = tuple(plotly.colors.qualitative.Dark24)
# A run's line past DISTINCT_COLOURS' twenty: their colours again, dotted, then dash-dotted...
# (plotly's "dash" is not among them: Compare draws training error dashed).
RUN_DASHES = (None, "dot", "dashdot", "longdashdot")  # None: plotly's solid line


def run_colours(n: int) -> list[str]:
    """n distinct colours, one per run of a chart (DISTINCT_COLOURS first): dashes there already say
    what a line is (training error, plain networks), so colour alone tells the runs apart."""
    colours = list(dict.fromkeys(c.upper() for c in DISTINCT_COLOURS + MORE_RUN_COLOURS))[:n]
    seen, i = set(colours), 0
    while len(colours) < n:
        r, g, b = colorsys.hls_to_rgb((i * 0.381966) % 1.0, (0.35, 0.5, 0.62)[i % 3], 0.7)
        colour = f"#{round(255 * r):02X}{round(255 * g):02X}{round(255 * b):02X}"
        i += 1
        if colour not in seen:
            seen.add(colour)
            colours.append(colour)
    return colours


def run_styles(n: int) -> list[tuple[str, str | None]]:
    """n distinct (colour, dash) line styles, one per run: DISTINCT_COLOURS' twenty solid,
    then again with each next RUN_DASHES pattern, then plotly dash lists ever longer: nobody
    tells 25 colours apart, but 20 colours and a pattern they can."""
    styles = []
    for i in range(n):
        cycle = i // len(DISTINCT_COLOURS)
        dash = RUN_DASHES[cycle] if cycle < len(RUN_DASHES) else f"{cycle}px,3px"
        styles.append((DISTINCT_COLOURS[i % len(DISTINCT_COLOURS)], dash))
    return styles


def frame(title: str | None, height: int, margin: Mapping, **title_style) -> dict:
    """A figure's height, its title on the left, and its fixed margins (see FIXED_MARGIN),
    with room at the top for the title only when there is one ("t" adds to it)."""
    top = 40 if title else 10
    return dict(title=dict(text=title, x=0, xanchor="left", **title_style) if title else None, height=height,
                margin={**margin, "t": top + margin.get("t", 0), "autoexpand": False})


# Margins in pixels that the figures set, instead of plotly's automargin: with automargin,
# plotly draws a figure, measures its tick labels, legend and colorbar, and draws it again,
# and each measurement forces a layout of the whole Streamlit page. On a Monitor load in
# headless Chromium (CPU profile, this 2-core machine) plotly's share of the main thread went
# from 388 to 235 ms with fixed margins and unmeasured tick labels (FIXED_AXIS), and
# loads of the same page from two servers, alternated, took 0.99 s instead of 1.17 s (median
# of 6; 1.36 instead of 1.53 s while a run trained). A live Monitor draws them again on
# every refresh. Their legends lie in a corner of the plot that the data leaves empty
# (LEGEND_CORNERS).
FIXED_MARGIN = {"l": 72, "r": 16, "b": 48}  # y tick labels of up to 6 characters and the y title; x labels and title
LABEL_CHAR_PX = 7.5  # a category tick label's width per character (12 px font), for class names
AXIS_TITLE_PX = 28  # an axis title and its gap to the tick labels, beside category labels
LEGEND_CHAR_PX = 6.5  # a legend entry's width per character (11 px font)
# The most a margin fitted to names may take: a 200-character run name (the form allows it)
# or class name would otherwise leave the plot no width at all; past these, names are cut.
CATEGORY_MARGIN_MAX_PX = 220
LEGEND_BESIDE_MAX_PX = 420
LEGEND_CORNERS = {
    "top right": dict(x=0.99, xanchor="right", y=0.99, yanchor="top"),  # a falling curve: loss
    "bottom right": dict(x=0.99, xanchor="right", y=0.02, yanchor="bottom"),  # rising or level ones: accuracy, speed
    "top left": dict(x=0.01, xanchor="left", y=0.99, yanchor="top"),  # mass on the right: confidence
    "right": dict(x=1.02, xanchor="left", y=1, yanchor="top"),  # beside the plot, a legend of many runs
    # Over the plot, in a top margin made for it (legend_above): lines that may lie anywhere
    # (speed, utilisation, memory), or a chart whose top band holds text (reliability counts).
    "above": dict(x=0, xanchor="left", y=1, yanchor="bottom"),
}
LEGEND_ROW_PX = 20  # a legend row (11 px font) and its gap
LEGEND_ONE_ROW_PX = 300  # the most a one-row legend may take: a Monitor chart in a third of a laptop's page


def axis_margin(labels: Sequence[str], angle: float = 0.0, title_px: int = 0) -> int:
    """Pixels that category tick labels (at angle degrees) and an axis title take beside
    their axis: a label's length for a y axis (angle 0), its rotated height for an x axis;
    at most CATEGORY_MARGIN_MAX_PX."""
    longest = max((len(str(label)) for label in labels), default=1) * LABEL_CHAR_PX
    fitted = round(longest * abs(math.sin(math.radians(angle))) + 18 if angle else longest + 12) + title_px
    return min(fitted, CATEGORY_MARGIN_MAX_PX)


# An axis in fixed margins: its tick labels are drawn where they fall, not measured each for
# overflowing the figure (a forced layout of the whole page per label: 76 ms of plotly's 340 ms
# on a Monitor load).
FIXED_AXIS = {"automargin": False, "ticklabeloverflow": "allow"}


def whole_epochs(epochs) -> dict:
    """An x axis of epochs ticked at whole epochs only: plotly's automatic ticks put 0.5
    steps under a few epochs."""
    return dict(range=[int(epochs[0]) - 0.5, int(epochs[-1]) + 0.5], tick0=1, dtick=max(1, -(-len(epochs) // 12)))


def legend_beside(fig: go.Figure) -> go.Figure:
    """fig with a right margin that fits its legend's longest entry (legend "right"), at
    most LEGEND_BESIDE_MAX_PX."""
    names = [t.name or "" for t in fig.data if t.showlegend is not False]
    fitted = round(50 + LEGEND_CHAR_PX * max(map(len, names), default=0))  # the symbol, gaps, the text
    fig.layout.margin.r = min(fitted, LEGEND_BESIDE_MAX_PX)
    return fig


def legend_above(fig: go.Figure) -> go.Figure:
    """fig with its legend (legend "above") in one row over the plot when its entries fit
    LEGEND_ONE_ROW_PX, else one entry a row, and a top margin grown to hold it."""
    names = [t.name or "" for t in fig.data if t.showlegend is not False]
    one_row = sum(40 + LEGEND_CHAR_PX * len(n) for n in names) <= LEGEND_ONE_ROW_PX
    fig.layout.legend.orientation = "h" if one_row else "v"
    if len(names) > 1:  # plotly draws no legend for a lone trace
        fig.layout.margin.t += LEGEND_ROW_PX * (1 if one_row else len(names))
    if fig.layout.title.text:  # at the top of the margin ("auto" centres it there, on the legend)
        fig.layout.title.update(y=1, yref="container", yanchor="top", pad=dict(t=12))
    return fig


def chart_layout(title: str | None, height: int, y_title: str, x_title: str = "epoch", xaxis: Mapping | None = None,
                 yaxis: Mapping | None = None, legend: str = "top right", **settings) -> dict:
    """The layout of a line chart in FIXED_MARGIN, for ``go.Figure(layout=...)``: xaxis and
    yaxis add to (or override) the defaults, settings to the rest; legend: where it lies, a
    key of LEGEND_CORNERS ("right": beside the plot, whose figure then goes through
    :func:`legend_beside`).

    One dict given before the traces, because plotly dispatches every later update_layout
    or update_xaxes over the figure's traces: the Monitor's six figures took 58 ms to build
    that way and 12 ms this way (plotly 7.1), on every refresh of a live Monitor."""
    return {
        **frame(title, height, FIXED_MARGIN, font=dict(size=15)),
        "legend": {**LEGEND_CORNERS[legend], "title": None, "font": dict(size=11)},
        "hovermode": "x unified",
        "uirevision": "keep",
        "xaxis": {"title": dict(text=x_title), "rangemode": "tozero", **FIXED_AXIS, **(xaxis or {})},
        "yaxis": {"title": dict(text=y_title), **FIXED_AXIS, **(yaxis or {})},
        **settings,
    }
