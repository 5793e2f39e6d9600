"""Plotly figures of the Explain page: calibration and per-image histories (no Streamlit here).

Bars carry their bin's index as ``customdata`` (a plain list, see confusion_figures.py on
Plotly events), so a click on a bar selects that bin's images.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .calibration import Reliability, bin_names
from .figure_style import TRAIN_COLOUR, VAL_COLOUR, chart_layout, legend_above, whole_epochs
from .gallery_cards import RIGHT_COLOUR, WRONG_COLOUR


def _centres(rel: Reliability) -> list[float]:
    return ((rel.edges[:-1] + rel.edges[1:]) / 2).tolist()


COUNTS_Y = 105  # the reliability diagram's row of bin counts: over 100% (bars, markers), under the axis's 110


def reliability_figure(rel: Reliability, height: int = 380, selected: int | None = None) -> go.Figure:
    """Accuracy per confidence bin (bars) against the diagonal of perfect calibration, each
    bin's image count in a row above the plot's 100% (on the bars' tops the counts hid the
    mean-confidence markers there), the legend over the plot; the gap to the bins' mean
    confidence is what ECE weighs."""
    acc = np.nan_to_num(rel.accuracy, nan=0.0)
    width = float(rel.edges[1] - rel.edges[0])
    names = bin_names(rel)
    fig = go.Figure(layout=chart_layout(None, height, "accuracy (%)", "top-1 confidence",
                                        xaxis=dict(range=[0, 1], tickformat=".0%"), yaxis=dict(range=[0, 110]),
                                        legend="above", hovermode="closest", bargap=0))
    fig.add_trace(go.Bar(
        x=_centres(rel), y=(100 * acc).tolist(), width=width * 0.95, name="accuracy",
        marker=dict(color=TRAIN_COLOUR, line=dict(width=[3 if i == selected else 0 for i in range(len(acc))],
                                                   color="#222")),
        customdata=[[i] for i in range(len(acc))],
        hovertemplate=[f"confidence {n}<br>{c:,} images, {r:,} right<br>accuracy %{{y:.1f}}%"
                       + (f"<br>mean confidence {100 * m:.1f}%" if c else "") + "<extra></extra>"
                       for n, c, r, m in zip(names, rel.counts.tolist(), rel.right.tolist(),
                                             np.nan_to_num(rel.confidence).tolist(), strict=True)],
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),
    ))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 100], mode="lines", name="perfectly calibrated",
                             line=dict(color="#888", dash="dash"), hoverinfo="skip"))
    mean_conf = [None if c == 0 else 100 * m for c, m in zip(rel.counts.tolist(), rel.confidence.tolist(), strict=True)]
    fig.add_trace(go.Scatter(x=_centres(rel), y=mean_conf, mode="markers", name="mean confidence of the bin",
                             marker=dict(color=VAL_COLOUR, size=7, symbol="line-ew-open", line=dict(width=2)),
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=_centres(rel), y=[COUNTS_Y] * len(acc), mode="text", name="images", showlegend=False,
                             text=[f"{c:,}" if c else "" for c in rel.counts.tolist()], textfont=dict(size=10),
                             hoverinfo="skip"))
    return legend_above(fig)


def confidence_histogram_figure(rel: Reliability, height: int = 300) -> go.Figure:
    """Images per confidence bin, right and wrong stacked."""
    fig = go.Figure(layout=chart_layout(None, height, "images", "top-1 confidence",
                                        xaxis=dict(range=[0, 1], tickformat=".0%"),
                                        legend="top left", barmode="stack", hovermode="closest", bargap=0))
    names = bin_names(rel)
    for label, counts, colour in (("right", rel.right, RIGHT_COLOUR), ("wrong", rel.wrong, WRONG_COLOUR)):
        fig.add_trace(go.Bar(x=_centres(rel), y=counts.tolist(), name=label, marker_color=colour,
                             width=float(rel.edges[1] - rel.edges[0]) * 0.95,
                             customdata=[[i] for i in range(len(counts))],
                             hovertemplate=[f"confidence {n}: %{{y:,}} {label}<extra></extra>" for n in names],
                             selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1))))
    return fig


def ece_figure(epochs: np.ndarray, ece: np.ndarray, current: int | None = None, height: int = 220) -> go.Figure:
    """ECE at each recorded epoch (a gap where an epoch cannot be read), the shown epoch marked."""
    y = [None if not np.isfinite(v) else 100 * v for v in np.asarray(ece, dtype=float).tolist()]
    fig = go.Figure(go.Scatter(x=np.asarray(epochs).tolist(), y=y, mode="lines+markers", name="ECE",
                               line=dict(color=TRAIN_COLOUR), marker=dict(size=4),
                               hovertemplate="epoch %{x}: ECE %{y:.2f}%<extra></extra>"),
                    layout=chart_layout(None, height, "ECE (%)", xaxis=whole_epochs(epochs), showlegend=False))
    if current is not None and current in list(epochs):
        i = list(epochs).index(current)
        fig.add_trace(go.Scatter(x=[current], y=[y[i]], mode="markers", name=f"epoch {current}",
                                 marker=dict(color=VAL_COLOUR, size=10), hoverinfo="skip"))
    return fig


def learned_figure(learned_at: np.ndarray, epochs: np.ndarray, height: int = 240) -> go.Figure:
    """How many images were learned (right from then to the last epoch) at each epoch."""
    counts = np.bincount(np.asarray(learned_at), minlength=int(epochs[-1]) + 1)[np.asarray(epochs)]
    return go.Figure(go.Bar(x=np.asarray(epochs).tolist(), y=counts.tolist(), marker_color=RIGHT_COLOUR,
                            hovertemplate="learned at epoch %{x}: %{y:,} images<extra></extra>"),
                     layout=chart_layout(None, height, "images", xaxis=whole_epochs(epochs), showlegend=False,
                                         bargap=0.1))
