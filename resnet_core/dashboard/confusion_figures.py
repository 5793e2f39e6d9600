"""Figures of a classifier's results per class: the confusion matrix, two matrices' difference, class bars.

The confusion matrix is a heatmap with an invisible scatter on top, one square marker per
cell, because a heatmap alone sends no click events to Streamlit; the scatter's
``customdata`` holds ``[true, predicted]`` as plain Python lists. Per-class precision,
recall and F1, and the images two runs disagree on, are grouped bars per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..metrics import ClassReport, normalize_confusion
from .class_groups import blocks, per_superclass, positions, superclass_order
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
                t: int, p: int, group: Sequence[str] = (), click_hint: str = "click to see them") -> str:
    """A cell's hover text: its classes (each with its superclass, where group names them),
    its count, and its share of the row and the column."""
    rec = f"{100 * recall[t, p]:.1f}%" if math.isfinite(recall[t, p]) else "—"
    prec = f"{100 * precision[t, p]:.1f}%" if math.isfinite(precision[t, p]) else "—"
    in_t, in_p = (f" ({group[t]})", f" ({group[p]})") if group else ("", "")
    return (f"true <b>{classes[t]}</b>{in_t} → predicted <b>{classes[p]}</b>{in_p}<br>"
            f"{cm[t, p]:,} images<br>{rec} of true {classes[t]}<br>{prec} of predicted {classes[p]}"
            + (f"<br><i>{click_hint}</i>" if cm[t, p] else ""))


# More classes than this along an axis: one tick per superclass instead of one per class, no
# count written in the cells (too small to read), and only the cells that hold images take a
# click and a hover: 10,000 hover texts made a 100-class figure 2.8 MB of JSON.
MANY_CLASSES = 30


@dataclass(frozen=True)
class Grid:
    """What a clickable matrix draws: the labels of its rows (top-down) and columns (left to
    right), the (true, predicted) label pairs that take a click, the axis titles, and the
    superclass blocks along both axes (superclass, start, stop) with their names, or none."""
    rows: list[int]
    cols: list[int]
    cells: list[tuple[int, int]]
    titles: tuple[str, str] = ("true class", "predicted class")
    blocks: list[tuple[int, int, int]] = field(default_factory=list)
    block_names: Sequence[str] = ()


def full_grid(n: int) -> Grid:
    """Every class as rows and columns, in label order, every cell clickable."""
    return Grid(list(range(n)), list(range(n)), [(t, p) for t in range(n) for p in range(n)])


def _block_axis(grid: Grid, names: list[str]) -> tuple[dict, list[dict]]:
    """A superclass-grouped axis: one tick per block (at its middle class, named after the
    superclass) and lines between the blocks (as shapes)."""
    if not grid.blocks:
        return {}, []
    ticks = dict(tickmode="array", tickvals=[names[(a + b - 1) // 2] for _, a, b in grid.blocks],
                 ticktext=[grid.block_names[s] for s, _, _ in grid.blocks], tickfont=dict(size=10))
    n = len(names)
    lines = [dict(type="line", xref="x", yref="y", x0=a - 0.5, x1=a - 0.5, y0=-0.5, y1=n - 0.5,
                  line=dict(color="#888888", width=1), layer="above") for _, a, _ in grid.blocks[1:]]
    lines += [dict(line, x0=-0.5, x1=n - 0.5, y0=line["x0"], y1=line["x0"]) for line in lines]
    return ticks, lines


def _clickable_matrix(heat: go.Heatmap, classes: list[str], hover: list[str],
                      selected: tuple[int, int] | None, height: int, title: str | None,
                      outline: str = "#E45756", grid: Grid | None = None) -> go.Figure:
    """A class-by-class heatmap made clickable: an invisible square marker on each of the
    grid's cells (customdata [true, predicted] labels, hover text hover[i] for its i-th cell),
    an outline (of colour outline) around the selected cell, and fixed category axes (rows =
    true class, columns = predicted class, drawn in the grid's order; every class by default)."""
    grid = grid or full_grid(len(classes))
    rows, cols = [classes[t] for t in grid.rows], [classes[p] for p in grid.cols]
    row_at, col_at = positions(grid.rows), positions(grid.cols)
    cells = go.Scatter(
        x=[classes[p] for _, p in grid.cells], y=[classes[t] for t, _ in grid.cells],
        customdata=[[t, p] for t, p in grid.cells], hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
        mode="markers", showlegend=False, name="cells",
        marker=dict(symbol="square", size=max(6, int(420 / max(len(rows), len(cols)))), opacity=0,
                    color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
    )
    ticks, shapes = _block_axis(grid, rows)
    if selected is not None and selected[0] in row_at and selected[1] in col_at:
        i, j = row_at[selected[0]], col_at[selected[1]]
        shapes.append(dict(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5, xref="x", yref="y",
                           line=dict(color=outline, width=3), fillcolor="rgba(0,0,0,0)", layer="above"))
    # Explicit ranges: the invisible markers would otherwise make plotly pad the axes around the cells.
    axis = dict(type="category", categoryorder="array", showgrid=False, zeroline=False, fixedrange=True,
                **FIXED_AXIS, **ticks)
    # Fixed margins (see FIXED_MARGIN) that fit the tick labels.
    y_labels, x_labels = (ticks["ticktext"],) * 2 if ticks else (rows, cols)
    # Upright x labels past 12 of them: 20 superclass names at -35 degrees overlapped in a half page.
    angle = 90 if len(x_labels) > 12 else 35
    margin = dict(l=axis_margin(y_labels, title_px=AXIS_TITLE_PX),
                  b=axis_margin(x_labels, angle, title_px=AXIS_TITLE_PX), r=12)
    return go.Figure([heat, cells], layout=dict(
        **frame(title, height, margin),
        hovermode="closest", hoverdistance=-1, clickmode="event+select", dragmode=False,
        plot_bgcolor="rgba(0,0,0,0)", shapes=shapes,
        xaxis=dict(title=dict(text=grid.titles[1]), side="bottom", tickangle=-angle, range=[-0.5, len(cols) - 0.5],
                   categoryarray=cols, **axis),
        yaxis=dict(title=dict(text=grid.titles[0]), range=[len(rows) - 0.5, -0.5], categoryarray=rows, **axis),
    ))


def _class_names(classes: Sequence[str], n: int) -> list[str]:
    classes = [str(c) for c in classes]
    if len(classes) != n:
        raise ValueError(f"{len(classes)} class names for a {n}x{n} matrix")
    return classes


def grouped_grid(cm: np.ndarray, classes: Sequence[str], superclass_of: Sequence[int], superclasses: Sequence[str],
                 rows: Sequence[int] | None = None, cols: Sequence[int] | None = None) -> Grid:
    """The grid of a matrix whose classes have superclasses: rows and columns (labels; by
    default every class, grouped by superclass, by name within one), superclass ticks and
    lines where both show the same many classes, and axis titles that name the superclass
    where all rows (or columns) share one; with many classes, only cells with images click."""
    order = superclass_order(classes, superclass_of)
    rows, cols = list(order if rows is None else rows), list(order if cols is None else cols)
    grouped = rows == cols and len(rows) > MANY_CLASSES
    clickable = [(t, p) for t in rows for p in cols
                 if cm[t, p] or max(len(rows), len(cols)) <= MANY_CLASSES]

    def title(labels: list[int], what: str) -> str:
        shared = {superclass_of[c] for c in labels}
        return f"{what} (in {superclasses[shared.pop()]})" if len(shared) == 1 else what

    return Grid(rows, cols, clickable, (title(rows, "true class"), title(cols, "predicted class")),
                blocks(rows, superclass_of) if grouped else [], list(superclasses) if grouped else ())


def confusion_figure(cm: np.ndarray, classes: Sequence[str], mode: str = "counts",
                     selected: tuple[int, int] | None = None, height: int = 600,
                     title: str | None = None, grid: Grid | None = None,
                     group: Sequence[str] = (), click_hint: str = "click to see them") -> go.Figure:
    """The confusion matrix (rows = true, columns = predicted), clickable per cell.

    Trace 0 is the heatmap (normalised per mode over whole rows or columns, with the counts in
    the hover), trace 1 the invisible scatter whose points carry customdata [true, predicted]
    (labels, whatever the order drawn); selected draws an outline around that cell. grid:
    which rows and columns, in which order (see :func:`grouped_grid`; default every class in
    label order); group: each class's superclass name, for the hover; click_hint: what a click
    on a cell with images does, in the hover.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = cm.shape[0]
    classes = _class_names(classes, n)
    grid = grid or full_grid(n)
    z = normalize_confusion(cm, mode)
    show = np.ix_(grid.rows, grid.cols)
    z_plot = [[None if not math.isfinite(v) else (float(v) if mode == "counts" else 100 * float(v)) for v in row]
              for row in z[show]]
    many = max(len(grid.rows), len(grid.cols)) > MANY_CLASSES
    # No colorbar: every cell writes its value. Drawing one, plotly measured its labels, a
    # layout of the whole page each; without it, Analyze loaded 0.12 s sooner (paired median,
    # headless Chromium, a CPU run training) and Compare's difference matrix 0.09 s.
    heat = go.Heatmap(
        z=z_plot, x=[classes[p] for p in grid.cols], y=[classes[t] for t in grid.rows],
        text=None if many else _cell_text(cm[show], z[show], mode), texttemplate=None if many else "%{text}",
        textfont=dict(size=12 if max(len(grid.rows), len(grid.cols)) <= 12 else 9), colorscale="Blues",
        hoverinfo="skip", zmin=0, zmax=(None if mode == "counts" else 100), xgap=0 if many else 1,
        ygap=0 if many else 1, showscale=False,
    )
    recall, precision = normalize_confusion(cm, "recall"), normalize_confusion(cm, "precision")
    hover = [_cell_hover(cm, recall, precision, classes, t, p, group, click_hint) for t, p in grid.cells]
    return _clickable_matrix(heat, classes, hover, selected, height, title, grid=grid)


def difference_figure(a: np.ndarray, b: np.ndarray, classes: Sequence[str], names: tuple[str, str] = ("A", "B"),
                      selected: tuple[int, int] | None = None, height: int = 600,
                      title: str | None = None, grid: Grid | None = None, group: Sequence[str] = ()) -> go.Figure:
    """B - A of two confusion matrices of the same images, clickable per cell like
    :func:`confusion_figure`: a diverging scale (RdBu) centred on 0, symmetric around it,
    each cell's signed difference written in it (up to MANY_CLASSES a side), and A's count,
    B's count and the difference in its hover. grid: as confusion_figure's (for 100 classes,
    ``grouped_grid(a + b, ...)``: the cells either run has images in take a click); group:
    each class's superclass name, for the hover."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"matrices of shapes {a.shape} and {b.shape}")
    diff = b - a
    n = diff.shape[0]
    classes = _class_names(classes, n)
    grid = grid or full_grid(n)
    shown = diff[np.ix_(grid.rows, grid.cols)].tolist()
    many = max(len(grid.rows), len(grid.cols)) > MANY_CLASSES
    limit = max(1, int(np.abs(diff).max(initial=0)))
    heat = go.Heatmap(
        z=shown, x=[classes[p] for p in grid.cols], y=[classes[t] for t in grid.rows],
        text=None if many else [[f"{v:+,}" if v else "0" for v in row] for row in shown],
        texttemplate=None if many else "%{text}", textfont=dict(size=12 if n <= 12 else 9), colorscale="RdBu",
        zmid=0, zmin=-limit, zmax=limit, hoverinfo="skip", xgap=0 if many else 1, ygap=0 if many else 1,
        showscale=False,
    )
    named = [f"<b>{c}</b> ({group[i]})" if group else f"<b>{c}</b>" for i, c in enumerate(classes)]
    hover = [(f"true {named[t]} → predicted {named[p]}<br>"
              f"{names[0]}: {a[t, p]:,} images<br>{names[1]}: {b[t, p]:,} images<br>"
              f"difference {names[1]} − {names[0]}: {diff[t, p]:+,}"
              + ("<br><i>click to see the images that changed</i>" if a[t, p] or b[t, p] else ""))
             for t, p in grid.cells]
    return _clickable_matrix(heat, classes, hover, selected, height, title, outline="#222222", grid=grid)


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
                       names: tuple[str, str] = ("A", "B"), height: int = 340, title: str | None = None,
                       superclass_of: Sequence[int] = (), superclasses: Sequence[str] = ()) -> go.Figure:
    """Per true class, bars of the images A gets right and B wrong, and of those B gets
    right and A wrong (counts from resnet_core.dashboard.comparison.flip_counts). Where
    superclass_of gives each class's superclass, per true superclass instead, one row each,
    the names on the left: 100 pairs of bars under -30 degree names could not be read, nor
    could 20 superclass names at -30 degrees (they overlapped in Compare's column, seen in
    headless Chromium)."""
    a, b = names
    series = ((f"{a} right, {b} wrong", PALETTE[3]), (f"{b} right, {a} wrong", PALETTE[0]))
    if not superclass_of:
        fig = go.Figure(layout=_bar_layout(title, height, classes, xaxis=dict(title=dict(text="true class")),
                                           yaxis=dict(title=dict(text="images"), rangemode="tozero")))
        for (name, colour), counts in zip(series, (a_only, b_only), strict=True):
            fig.add_trace(go.Bar(x=list(classes), y=[int(c) for c in counts], name=name, marker_color=colour,
                                 hovertemplate=f"{name}: %{{y:,}} images<extra>true %{{x}}</extra>"))
        return fig
    rows = [str(s) for s in superclasses]
    margin = dict(l=axis_margin(rows, title_px=AXIS_TITLE_PX), r=FIXED_MARGIN["r"], t=26, b=FIXED_MARGIN["b"])
    fig = go.Figure(layout=dict(
        **frame(title, max(height, 22 * len(rows) + 84), margin), barmode="group",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
        xaxis=dict(title=dict(text="images"), rangemode="tozero", **FIXED_AXIS),
        yaxis=dict(title=dict(text="true superclass"), type="category", autorange="reversed", **FIXED_AXIS)))
    for (name, colour), counts in zip(series, (a_only, b_only), strict=True):
        fig.add_trace(go.Bar(y=rows, x=per_superclass(counts, superclass_of, len(rows)).tolist(), orientation="h",
                             name=name, marker_color=colour,
                             hovertemplate=f"{name}: %{{x:,}} images<extra>true %{{y}}</extra>"))
    return fig
