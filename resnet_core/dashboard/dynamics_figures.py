"""Plotly figures of the training images' dynamics (no Streamlit here): how many images were
forgotten how often, and the data map. Built from plain arrays, one entry per training
image (the rows of :class:`resnet_core.runs.TrainingRecord`).

The data map is one WebGL scatter (``go.Scattergl``) of every training image, its arrays
given as numpy arrays, which plotly sends as binary (base64 typed arrays), not as a JSON
list of 50,000 numbers each.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from .figure_style import FIXED_AXIS, FIXED_MARGIN, LEGEND_CORNERS, frame, legend_above, whole_epochs
from .gallery_cards import WRONG_COLOUR

CLEAN_COLOUR = "#4C78A8"
FLIPPED_COLOUR = WRONG_COLOUR  # a flipped label, in the count bars and as the data map's crosses
NEVER_LEARNED = "never learned (∞)"
CORRECTNESS_SCALE = "Viridis"  # dark at 0 (never right) to yellow at 1; the flipped crosses' red is not on it


def forgetting_count_bars(events: np.ndarray, never_learned: np.ndarray,
                          flipped: np.ndarray | None = None) -> tuple[list[str], dict[str, list[int]]]:
    """The bars of the distribution of forgetting counts: categories "0", "1", ... up to the
    most events any image has, then NEVER_LEARNED (apart: Toneva et al. count an image never
    learned as forgotten infinitely often; its own events are 0), and the images of each, as
    {"all": counts} or, with flipped, {"clean": counts, "flipped": counts}."""
    events = np.asarray(events, dtype=np.int64)
    never = np.asarray(never_learned, dtype=bool)
    top = int(events[~never].max()) if (~never).any() else 0
    names = [str(k) for k in range(top + 1)] + [NEVER_LEARNED]

    def counts(rows: np.ndarray) -> list[int]:
        learned = np.bincount(events[rows & ~never], minlength=top + 1)
        return [*learned.tolist(), int((rows & never).sum())]

    if flipped is None or not np.asarray(flipped).any():
        return names, {"all": counts(np.ones(len(events), dtype=bool))}
    flipped = np.asarray(flipped, dtype=bool)
    return names, {"clean": counts(~flipped), "flipped": counts(flipped)}


def forgetting_counts_figure(events: np.ndarray, never_learned: np.ndarray, flipped: np.ndarray | None = None,
                             height: int = 300) -> go.Figure:
    """Images per number of forgetting events, never learned as a bar of its own on the
    right; with planted noise, each bar's flipped images stacked on its clean ones."""
    names, groups = forgetting_count_bars(events, never_learned, flipped)
    colours = {"all": CLEAN_COLOUR, "clean": CLEAN_COLOUR, "flipped": FLIPPED_COLOUR}
    legend = {"all": "images", "clean": "label as in the data set", "flipped": "label flipped (planted noise)"}
    fig = go.Figure(layout={
        **frame(None, height, FIXED_MARGIN), "barmode": "stack", "bargap": 0.15, "hovermode": "closest",
        "showlegend": len(groups) > 1, "legend": {**LEGEND_CORNERS["top right"], "font": dict(size=11)},
        "xaxis": {"title": dict(text="forgetting events of the image"), "type": "category", **FIXED_AXIS},
        "yaxis": {"title": dict(text="training images"), **FIXED_AXIS},
    })
    for group, counts in groups.items():
        fig.add_trace(go.Bar(x=names, y=counts, name=legend[group], marker_color=colours[group],
                             hovertemplate=f"%{{x}}: %{{y:,}} {legend[group]}<extra></extra>"))
    return fig


def _region_lines(variability_cut: float, confidence_cut: float) -> list[dict]:
    """The cut lines: ambiguous right of variability_cut; left of it, hard-to-learn below
    confidence_cut and easy-to-learn above."""
    line = dict(color="#444", width=1.5, dash="dash")
    return [dict(type="line", x0=variability_cut, x1=variability_cut, y0=0, y1=1, line=line),
            dict(type="line", x0=0, x1=variability_cut, y0=confidence_cut, y1=confidence_cut, line=line)]


def _region_names(variability_cut: float, confidence_cut: float, x_max: float,
                  counts: Mapping[str, int] | None) -> list[dict]:
    """The three regions' names where Swayamdipta et al. draw them: easy-to-learn top left,
    hard-to-learn bottom left, ambiguous on the right."""
    def text(name: str) -> str:
        return f"<b>{name}</b>" + (f"<br>{counts[name]:,} images" if counts and name in counts else "")

    style = dict(showarrow=False, font=dict(size=13, color="#222"), bgcolor="rgba(255,255,255,0.75)")
    return [dict(x=0.01 * x_max, y=0.99, xanchor="left", yanchor="top", text=text("easy-to-learn"), **style),
            dict(x=0.01 * x_max, y=0.01, xanchor="left", yanchor="bottom", text=text("hard-to-learn"), **style),
            dict(x=(variability_cut + x_max) / 2, y=0.5, xanchor="center", yanchor="middle",
                 text=text("ambiguous"), **style)]


def _points(name: str, rows: np.ndarray, variability, confidence, correctness, indices, marker: dict) -> go.Scattergl:
    return go.Scattergl(
        x=variability[rows], y=confidence[rows], mode="markers", name=name, customdata=indices[rows],
        marker={**marker, "color": correctness[rows]} if "coloraxis" in marker else marker,
        hovertemplate="image #%{customdata}<br>confidence %{y:.3f}<br>variability %{x:.3f}"
                      + ("<br>correctness %{marker.color:.0%}" if "coloraxis" in marker else "") + "<extra></extra>")


def data_map_figure(variability: np.ndarray, confidence: np.ndarray, correctness: np.ndarray, indices: np.ndarray,
                    variability_cut: float, confidence_cut: float, flipped: np.ndarray | None = None,
                    region_counts: Mapping[str, int] | None = None, height: int = 560) -> go.Figure:
    """Every training image at (variability, confidence), coloured by its correctness
    fraction, the region cut lines and names (with region_counts, their images), and the
    images whose label was flipped as red crosses of their own trace. A drag draws a box
    (dragmode "drawrect": app_pages/area_select_chart.py reads the areas drawn); hover names
    the image's dataset index (indices)."""
    variability = np.asarray(variability, dtype=np.float32)
    confidence = np.asarray(confidence, dtype=np.float32)
    correctness = np.asarray(correctness, dtype=np.float32)
    indices = np.asarray(indices, dtype=np.int32)
    # An image no epoch presented has NaN (no place on the map): a NaN maximum made the axis
    # range and the region names' x NaN, and plotly then stretched the axis to 2.7 and drew
    # every name on the right (a 2,000-image subset, 3 epochs: one image never presented).
    placed = variability[~np.isnan(variability)]
    x_max = max(float(placed.max(initial=0.0)) * 1.05, variability_cut * 1.2, 0.05)
    fig = go.Figure(layout={
        **frame(None, height, {**FIXED_MARGIN, "r": 110}), "hovermode": "closest", "dragmode": "drawrect",
        "uirevision": "keep", "legend": {**LEGEND_CORNERS["above"], "font": dict(size=11)},
        "xaxis": {"title": dict(text="variability (std of p(label) over the epochs)"), "range": [0, x_max],
                  **FIXED_AXIS},
        "yaxis": {"title": dict(text="confidence (mean p(label))"), "range": [-0.02, 1.02], **FIXED_AXIS},
        "coloraxis": dict(colorscale=CORRECTNESS_SCALE, cmin=0, cmax=1,
                          colorbar=dict(title=dict(text="correct", side="right"), tickformat=".0%", thickness=12)),
        "shapes": _region_lines(variability_cut, confidence_cut),
        "annotations": _region_names(variability_cut, confidence_cut, x_max, region_counts),
    })
    marked = np.zeros(len(indices), dtype=bool) if flipped is None else np.asarray(flipped, dtype=bool)
    fig.add_trace(_points("training image", ~marked, variability, confidence, correctness, indices,
                          dict(coloraxis="coloraxis", size=3, opacity=0.7)))
    if marked.any():
        fig.add_trace(_points("label flipped (planted noise)", marked, variability, confidence, correctness,
                              indices, dict(color=FLIPPED_COLOUR, symbol="x", size=5, opacity=0.9)))
    fig.layout.showlegend = bool(marked.any())
    return legend_above(fig)  # over the plot, clear of the points and the mode bar


def first_learned_figure(first_learned: np.ndarray, epochs: Sequence[int], height: int = 240) -> go.Figure:
    """Images first right at each epoch (first_learned; 0: never right, left out)."""
    epochs = np.asarray(epochs, dtype=np.int64)
    counts = np.bincount(np.asarray(first_learned, dtype=np.int64), minlength=int(epochs[-1]) + 1)[epochs]
    return go.Figure(go.Bar(x=epochs, y=counts, marker_color=CLEAN_COLOUR,
                            hovertemplate="first right at epoch %{x}: %{y:,} images<extra></extra>"),
                     layout={**frame(None, height, FIXED_MARGIN), "showlegend": False, "bargap": 0.1,
                             "xaxis": {"title": dict(text="epoch first right"), **FIXED_AXIS, **whole_epochs(epochs)},
                             "yaxis": {"title": dict(text="training images"), **FIXED_AXIS}})
