"""The atlas: a 2-D map of a split's penultimate features, one point an image (no Streamlit
here). WebGL scatters (``go.Scattergl``) whose arrays plotly sends as binary, as the data
map's; a drag draws a box (dragmode "drawrect", read by app_pages/area_select_chart.py).

Colourings (COLOUR_BY): the true class or the predicted class (a trace a class, so the
legend hides or shows one; with superclasses, a class in its superclass's hue
(:mod:`.class_colours`) and the legend one entry a superclass, hiding or showing its
classes, so that 100 classes take 20 rows, not 100), right or wrong, the confidence (max softmax probability, a
colour scale) and, for the training images of a run with a record of its training, the
data-map region (Swayamdipta et al. 2020, :mod:`resnet_core.data_maps`). Images to
highlight (a confusion-matrix cell's) are drawn again on top, larger and outlined.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..data_maps import NOT_PRESENTED, REGIONS
from .class_colours import class_colours, has_superclasses, superclass_colours
from .figure_style import FIXED_AXIS, FIXED_MARGIN, LEGEND_CORNERS, frame, legend_above, legend_beside
from .gallery_cards import RIGHT_COLOUR, WRONG_COLOUR

TRUE, PREDICTED, CORRECT, CONFIDENCE, REGION = ("true class", "predicted class", "right or wrong", "confidence",
                                                "data-map region")
COLOUR_BY = (TRUE, PREDICTED, CORRECT, CONFIDENCE, REGION)
REGION_COLOURS = ("#4C78A8", "#EECA3B", "#E45756")  # easy, ambiguous, hard
NOT_PRESENTED_COLOUR = "#BAB0AC"
HIGHLIGHT_COLOUR = "#111111"
HOVER = "image #%{customdata[0]}<br>confidence %{customdata[1]:.2f}<extra>%{fullData.name}</extra>"
GROUPED_HOVER = "image #%{customdata[0]}<br>confidence %{customdata[1]:.2f}<extra>%{fullData.name}<br>" \
                "%{fullData.legendgroup}</extra>"


def region_codes(indices: np.ndarray, record_indices: np.ndarray, record_regions: np.ndarray) -> np.ndarray:
    """(N,) int8: the data-map region of each image (dataset index) of indices, looked up in
    a record of the training images (record_indices, record_regions); NOT_PRESENTED for an
    image the record does not hold or never presented."""
    indices = np.asarray(indices, dtype=np.int64)
    record_indices = np.asarray(record_indices, dtype=np.int64)
    order = np.argsort(record_indices, kind="stable")
    found = np.searchsorted(record_indices[order], indices)
    found = np.minimum(found, max(len(order) - 1, 0))
    out = np.full(len(indices), NOT_PRESENTED, dtype=np.int8)
    if len(order):
        hit = record_indices[order][found] == indices
        out[hit] = np.asarray(record_regions, dtype=np.int8)[order][found[hit]]
    return out


# Traces go to the figure as dicts, all in one add_traces: plotly validates a go.Scattergl when
# it is made and again when it is added. A map of 50,000 points by 100 classes (120 traces) took
# 0.17 s to build with a go.Scattergl added at a time, 0.066 s so (10 classes: 0.024 s, 0.012 s;
# medians of 7 on this CPU), on every rerun of the atlas.
def _points(coords: np.ndarray, custom: np.ndarray, rows: np.ndarray, name: str, marker: dict,
            group: str | None = None) -> dict:
    """A trace of these rows; group: its superclass (the legend shows the group, not the trace)."""
    grouped = {} if group is None else dict(legendgroup=group, showlegend=False)
    return dict(type="scattergl", x=coords[rows, 0], y=coords[rows, 1], customdata=custom[rows], mode="markers",
                name=name, marker=marker, hovertemplate=HOVER if group is None else GROUPED_HOVER, **grouped)


def _superclass_entries(superclasses: Sequence[str]) -> list[dict]:
    """The legend's entries of superclass-grouped traces: one trace a superclass in its hue,
    whose click hides or shows the group (plotly's legend groupclick "togglegroup"). Its one
    point is a gap (None): plotly.js left a trace without points out of the legend (Chromium)."""
    return [dict(type="scattergl", x=[None], y=[None], mode="markers", name=str(name), legendgroup=str(name),
                 marker=dict(size=8, color=colour))
            for name, colour in zip(superclasses, superclass_colours(len(superclasses)), strict=True)]


def _groups(colour_by: str, labels: np.ndarray, predictions: np.ndarray, classes: Sequence[str],
            regions: np.ndarray | None, superclass_of: Sequence[int]) -> list[tuple[str, np.ndarray, str]]:
    """(name, rows, colour) of each trace of a discrete colouring."""
    if colour_by in (TRUE, PREDICTED):
        which = labels if colour_by == TRUE else predictions
        colours = class_colours(len(classes), superclass_of)
        return [(str(name), np.flatnonzero(which == c), colours[c]) for c, name in enumerate(classes)]
    if colour_by == CORRECT:
        right = labels == predictions
        return [("right", np.flatnonzero(right), RIGHT_COLOUR), ("wrong", np.flatnonzero(~right), WRONG_COLOUR)]
    if regions is None:
        raise ValueError("colouring by data-map region needs the images' regions")
    return ([(name, np.flatnonzero(regions == code), REGION_COLOURS[code]) for code, name in enumerate(REGIONS)]
            + [("not presented", np.flatnonzero(regions == NOT_PRESENTED), NOT_PRESENTED_COLOUR)])


def atlas_figure(coords: np.ndarray, indices: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                 confidence: np.ndarray, classes: Sequence[str], colour_by: str = TRUE,
                 regions: np.ndarray | None = None, highlight: np.ndarray | None = None,
                 highlight_name: str = "highlighted", axis_names: tuple[str, str] = ("", ""),
                 height: int = 620, superclasses: Sequence[str] = (), superclass_of: Sequence[int] = ()) -> go.Figure:
    """Every image at its 2-D coordinates, coloured by colour_by; highlight (N bool) draws
    those images again on top. Hover: the image's dataset index, confidence and its trace
    (a class: with superclasses, its superclass too)."""
    if colour_by not in COLOUR_BY:
        raise ValueError(f"unknown colouring {colour_by!r}; valid: {', '.join(COLOUR_BY)}")
    coords = np.asarray(coords, dtype=np.float32)
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    confidence = np.asarray(confidence, dtype=np.float32)
    custom = np.stack([np.asarray(indices, dtype=np.float32), confidence], axis=1)
    fig = go.Figure(layout={
        **frame(None, height, {**FIXED_MARGIN, "r": 110}),
        "hovermode": "closest", "dragmode": "drawrect", "uirevision": "keep",
        "legend": {**LEGEND_CORNERS["right"], "font": dict(size=11), "itemsizing": "constant"},
        "xaxis": {"title": dict(text=axis_names[0]), "zeroline": False, **FIXED_AXIS},
        "yaxis": {"title": dict(text=axis_names[1]), "zeroline": False, **FIXED_AXIS},
    })
    marker = dict(size=4, opacity=0.75)
    if colour_by == CONFIDENCE:
        fig.add_trace(_points(coords, custom, np.arange(len(coords)), "image", {
            **marker, "color": confidence, "colorscale": "Viridis", "cmin": 0, "cmax": 1,
            "colorbar": dict(title=dict(text="confidence", side="right"), tickformat=".0%", thickness=12)}))
    else:
        grouped = colour_by in (TRUE, PREDICTED) and has_superclasses(len(classes), superclass_of) \
            and len(superclasses) > max(superclass_of)
        traces = _superclass_entries(superclasses) if grouped else []
        for c, (name, rows, colour) in enumerate(_groups(colour_by, labels, predictions, classes, regions,
                                                          superclass_of)):
            if len(rows):
                group = str(superclasses[superclass_of[c]]) if grouped else None
                traces.append(_points(coords, custom, rows, name, {**marker, "color": colour}, group))
        fig.add_traces(traces)
        if grouped:  # no gap between groups (plotly's 10 px): 20 entries then fit the 620 px map (Chromium)
            fig.layout.legend.tracegroupgap = 0
    if highlight is not None and np.any(highlight):
        fig.add_trace(_points(coords, custom, np.flatnonzero(highlight), highlight_name, dict(
            size=8, color="rgba(0,0,0,0)", line=dict(color=HIGHLIGHT_COLOUR, width=1.5))))
    if colour_by == CONFIDENCE:  # the colour bar takes the right margin; a highlight's entry goes above
        fig.layout.showlegend = highlight is not None
        fig.layout.legend.update(LEGEND_CORNERS["above"])
        return legend_above(fig)
    # Beside the plot: ten classes' names over it, one a row, took 200 px of the map's height.
    legend_beside(fig)
    fig.layout.margin.r = max(fig.layout.margin.r, 120)  # "right" and "wrong" were cut at 85 px (Chromium)
    return fig
