"""Figures of a classifier's results per class: the confusion matrix, two matrices' difference, class bars.

The confusion matrix is a heatmap with an invisible scatter on top, one square marker per
cell, because a heatmap alone sends no click events to Streamlit; the scatter's
``customdata`` holds ``[true, predicted]`` as plain Python lists. Per-class precision,
recall and F1, and the images two runs disagree on, are grouped bars per class.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..metrics import ClassReport, normalize_confusion
from .figure_style import (AXIS_TITLE_PX, FIXED_AXIS, FIXED_MARGIN, PALETTE, TEST_COLOUR, TRAIN_COLOUR, VAL_COLOUR,
                           axis_margin, frame)

NORMALISATIONS = {
    "counts": "Counts",
    "recall": "Rows = recall (each true class sums to 100%)",
    "precision": "Columns = precision (each predicted class sums to 100%)",
}


def _cell_text(cm: np.ndarray, z: np.ndarray, mode: str) -> list[list[str]]:
    if mode == "counts":
        return [[f"{int(v):,}" for v in row] for row in cm]
    return [["" if not math.isfinite(v) else f"{100 * v:.0f}" for v in row] for row in z]


def _cell_hover(cm: np.ndarray, recall: np.ndarray, precision: np.ndarray, classes: list[str],
                t: int, p: int) -> str:
    """A cell's hover text: its classes, its count, and its share of the row and the column."""
    rec = f"{100 * recall[t, p]:.1f}%" if math.isfinite(recall[t, p]) else "—"
    prec = f"{100 * precision[t, p]:.1f}%" if math.isfinite(precision[t, p]) else "—"
    return (f"true <b>{classes[t]}</b> → predicted <b>{classes[p]}</b><br>"
            f"{cm[t, p]:,} images<br>{rec} of true {classes[t]}<br>{prec} of predicted {classes[p]}"
            + ("<br><i>click to see them</i>" if cm[t, p] else ""))


def _clickable_matrix(heat: go.Heatmap, classes: list[str], hover: list[str],
                      selected: tuple[int, int] | None, height: int, title: str | None,
                      outline: str = "#E45756") -> go.Figure:
    """A class-by-class heatmap made clickable: an invisible square marker on each cell
    (customdata [true, predicted], hover text hover[t * n + p]), an outline (of colour
    outline) around the selected cell, and fixed category axes (rows = true class, columns = predicted class)."""
    n = len(classes)
    pairs = [(t, p) for t in range(n) for p in range(n)]
    cells = go.Scatter(
        x=[classes[p] for _, p in pairs], y=[classes[t] for t, _ in pairs], customdata=[[t, p] for t, p in pairs],
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
        mode="markers", showlegend=False, name="cells",
        marker=dict(symbol="square", size=max(8, int(420 / n)), opacity=0, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
    )
    shapes = []
    if selected is not None:
        t, p = selected
        shapes.append(dict(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5, xref="x", yref="y",
                           line=dict(color=outline, width=3), fillcolor="rgba(0,0,0,0)", layer="above"))
    # Explicit ranges: the invisible markers would otherwise make plotly pad the axes around the cells.
    axis = dict(type="category", categoryorder="array", categoryarray=classes, showgrid=False, zeroline=False,
                fixedrange=True, **FIXED_AXIS)
    # Fixed margins (see FIXED_MARGIN) that fit the class names.
    margin = dict(l=axis_margin(classes, title_px=AXIS_TITLE_PX), b=axis_margin(classes, 35, title_px=AXIS_TITLE_PX),
                  r=12)
    return go.Figure([heat, cells], layout=dict(
        **frame(title, height, margin),
        hovermode="closest", hoverdistance=-1, clickmode="event+select", dragmode=False,
        plot_bgcolor="rgba(0,0,0,0)", shapes=shapes,
        xaxis=dict(title=dict(text="predicted class"), side="bottom", tickangle=-35, range=[-0.5, n - 0.5], **axis),
        yaxis=dict(title=dict(text="true class"), range=[n - 0.5, -0.5], **axis),
    ))


def _class_names(classes: Sequence[str], n: int) -> list[str]:
    classes = [str(c) for c in classes]
    if len(classes) != n:
        raise ValueError(f"{len(classes)} class names for a {n}x{n} matrix")
    return classes


def confusion_figure(cm: np.ndarray, classes: Sequence[str], mode: str = "counts",
                     selected: tuple[int, int] | None = None, height: int = 600,
                     title: str | None = None) -> go.Figure:
    """The confusion matrix (rows = true, columns = predicted), clickable per cell.

    Trace 0 is the heatmap (normalised per mode, with the counts in the hover), trace 1 the
    invisible scatter whose points carry customdata [true, predicted]; selected draws an
    outline around that cell.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = cm.shape[0]
    classes = _class_names(classes, n)
    z = normalize_confusion(cm, mode)
    z_plot = [[None if not math.isfinite(v) else (float(v) if mode == "counts" else 100 * float(v)) for v in row]
              for row in z]
    # No colorbar: every cell writes its value. Drawing one, plotly measured its labels, a
    # layout of the whole page each; without it, Analyze loaded 0.12 s sooner (paired median,
    # headless Chromium, a CPU run training) and Compare's difference matrix 0.09 s.
    heat = go.Heatmap(
        z=z_plot, x=classes, y=classes, text=_cell_text(cm, z, mode), texttemplate="%{text}",
        textfont=dict(size=12 if n <= 12 else 9), colorscale="Blues", hoverinfo="skip",
        zmin=0, zmax=(None if mode == "counts" else 100), xgap=1, ygap=1, showscale=False,
    )
    recall, precision = normalize_confusion(cm, "recall"), normalize_confusion(cm, "precision")
    hover = [_cell_hover(cm, recall, precision, classes, t, p) for t in range(n) for p in range(n)]
    return _clickable_matrix(heat, classes, hover, selected, height, title)


def difference_figure(a: np.ndarray, b: np.ndarray, classes: Sequence[str], names: tuple[str, str] = ("A", "B"),
                      selected: tuple[int, int] | None = None, height: int = 600,
                      title: str | None = None) -> go.Figure:
    """B - A of two confusion matrices of the same images, clickable per cell like
    :func:`confusion_figure`: a diverging scale (RdBu) centred on 0, symmetric around it,
    each cell's signed difference written in it, and A's count, B's count and the
    difference in its hover."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"matrices of shapes {a.shape} and {b.shape}")
    diff = b - a
    n = diff.shape[0]
    classes = _class_names(classes, n)
    limit = max(1, int(np.abs(diff).max(initial=0)))
    heat = go.Heatmap(
        z=diff.tolist(), x=classes, y=classes, text=[[f"{v:+,}" if v else "0" for v in row] for row in diff.tolist()],
        texttemplate="%{text}", textfont=dict(size=12 if n <= 12 else 9), colorscale="RdBu", zmid=0,
        zmin=-limit, zmax=limit, hoverinfo="skip", xgap=1, ygap=1, showscale=False,
    )
    hover = [(f"true <b>{classes[t]}</b> → predicted <b>{classes[p]}</b><br>"
              f"{names[0]}: {a[t, p]:,} images<br>{names[1]}: {b[t, p]:,} images<br>"
              f"difference {names[1]} − {names[0]}: {diff[t, p]:+,}"
              + ("<br><i>click to see the images that changed</i>" if a[t, p] or b[t, p] else ""))
             for t in range(n) for p in range(n)]
    return _clickable_matrix(heat, classes, hover, selected, height, title, outline="#222222")


def _bar_layout(title: str | None, height: int, classes: Sequence[str], xaxis: Mapping, yaxis: Mapping) -> dict:
    """The layout of grouped bars per class (x tick labels at -30 degrees), the legend in a
    row above them on the right, in fixed margins (see FIXED_MARGIN); as
    :func:`~resnet_core.dashboard.figure_style.chart_layout`, given before the traces."""
    titled = bool(xaxis.get("title", {}).get("text")), bool(yaxis.get("title", {}).get("text"))
    margin = dict(l=FIXED_MARGIN["l"] if titled[1] else 48, r=FIXED_MARGIN["r"], t=26,
                  b=axis_margin(classes, 30, title_px=AXIS_TITLE_PX if titled[0] else 0))
    return dict(**frame(title, height, margin), barmode="group",
                legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
                xaxis={**xaxis, "tickangle": -30, **FIXED_AXIS}, yaxis={**yaxis, **FIXED_AXIS})


def class_metrics_figure(report: ClassReport, classes: Sequence[str], height: int = 340,
                         title: str | None = "Per-class precision, recall and F1") -> go.Figure:
    """Grouped bars in percent; an undefined value (NaN) leaves a gap."""
    fig = go.Figure(layout=_bar_layout(title, height, classes, xaxis={},
                                       yaxis=dict(range=[0, 100], ticksuffix="%", title=dict(text=None))))
    for name, values, colour in (("precision", report.precision, TRAIN_COLOUR),
                                 ("recall", report.recall, VAL_COLOUR), ("F1", report.f1, TEST_COLOUR)):
        y = [None if not math.isfinite(v) else 100 * float(v) for v in values]
        fig.add_trace(go.Bar(x=list(classes), y=y, name=name, marker_color=colour,
                             hovertemplate=f"{name} %{{y:.1f}}%<extra>%{{x}}</extra>"))
    return fig


def flip_counts_figure(a_only: Sequence[int], b_only: Sequence[int], classes: Sequence[str],
                       names: tuple[str, str] = ("A", "B"), height: int = 340, title: str | None = None) -> go.Figure:
    """Per true class, bars of the images A gets right and B wrong, and of those B gets
    right and A wrong (counts from resnet_core.dashboard.comparison.flip_counts)."""
    a, b = names
    fig = go.Figure(layout=_bar_layout(title, height, classes, xaxis=dict(title=dict(text="true class")),
                                       yaxis=dict(title=dict(text="images"), rangemode="tozero")))
    for name, counts, colour in ((f"{a} right, {b} wrong", a_only, PALETTE[3]),
                                 (f"{b} right, {a} wrong", b_only, PALETTE[0])):
        fig.add_trace(go.Bar(x=list(classes), y=[int(c) for c in counts], name=name, marker_color=colour,
                             hovertemplate=f"{name}: %{{y:,}} images<extra>true %{{x}}</extra>"))
    return fig
