"""The Monitor's training curves: loss, accuracy, learning rate and speed, from ``metrics.jsonl`` rows.

They take the rows of ``metrics.jsonl`` (see :mod:`resnet_core.runs.folder_format`) and a
:class:`~resnet_core.dashboard.curve_axes.CurveView` (their x axis, smoothing and point
budget: see :mod:`~resnet_core.dashboard.curve_axes`); the step rows' series can be
smoothed (:func:`~resnet_core.dashboard.series.ema`, drawn bold over the faint raw
series). Their evaluation traces are named by the run's
:class:`~resnet_core.evaluation_labels.EvaluationLabels`: a "validation" that was the test set says
so, and per-epoch test evaluations are marked as monitoring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..evaluation_labels import EvaluationLabels, evaluation_labels
from .curve_axes import (DEFAULT_VIEW, LIVE_X_AXES, CurveView, gaps_as_none, integer_epochs, line_trace, live_x,
                         row_values, scaled_column, step_mode, view_start)
from .figure_style import LR_COLOUR, TEST_COLOUR, TRAIN_COLOUR, VAL_COLOUR, chart_layout, legend_above
from .series import best_so_far, smoothed


@dataclass(frozen=True)
class Metric:
    """A metric of the rows: key in step rows, train_<key>, val_<key> and test_<key> in epoch
    rows, drawn times scale; best: which validation value is the best ("min" for a loss,
    "max" for an accuracy); hover: its hover template."""

    key: str
    scale: float
    best: str
    hover: str


LOSS = Metric("loss", 1.0, "min", "%{y:.4f}")
ACCURACY = Metric("acc", 100, "max", "%{y:.2f}%")


def _step_traces(fig: go.Figure, step_rows: Sequence[dict], x: np.ndarray, metric: Metric, view: CurveView) -> None:
    """The step rows' series: clearly visible alone; faint under its smoothed series (bold,
    :func:`~resnet_core.dashboard.series.ema` of the raw values) when view.smoothing > 0."""
    y = scaled_column(step_rows, metric.key, metric.scale)
    smooth = view.smoothing > 0
    # Smoothed, the legend names the bold series only, and a click on it hides both (a
    # legend in the plot covers it: see LEGEND_CORNERS).
    fig.add_trace(line_trace(x, y, view, name="train (steps)", mode=step_mode(step_rows),
                             line=dict(color=TRAIN_COLOUR, width=1.5), opacity=0.3 if smooth else 0.9,
                             hovertemplate=metric.hover, legendgroup="steps", showlegend=not smooth))
    if smooth:
        fig.add_trace(line_trace(x, smoothed(step_rows, metric.key, view.smoothing) * metric.scale, view,
                                 extremes=False, name=f"train (steps, smoothed {view.smoothing:g})", mode="lines",
                                 line=dict(color=TRAIN_COLOUR, width=2.5), hovertemplate=metric.hover,
                                 legendgroup="steps"))


def _best_marker(fig: go.Figure, epoch_rows: Sequence[dict], x: np.ndarray, metric: Metric,
                 labels: EvaluationLabels) -> None:
    """A star on the best validation value so far (metric.best: "max" for an accuracy, "min" for a
    loss), if the run validates and its best epoch row has an x; in the validation trace's
    legend group, without an entry of its own (its hover names it)."""
    best = (best_so_far(row_values(epoch_rows, f"val_{metric.key}", metric.scale), metric.best)
            if labels.val is not None else None)
    if best is None or math.isnan(x[best[0]]):
        return
    i, value = best
    fig.add_trace(go.Scatter(x=[float(x[i])], y=[value], name=f"best {labels.val}", mode="markers",
                             legendgroup="val", showlegend=False,
                             marker=dict(color=VAL_COLOUR, size=13, symbol="star", line=dict(color="white", width=1)),
                             hovertemplate=f"best {metric.hover} (epoch {epoch_rows[i].get('epoch')})"))


def _epoch_traces(fig: go.Figure, epoch_rows: Sequence[dict], x: np.ndarray, metric: Metric,
                  labels: EvaluationLabels, view: CurveView) -> None:
    """The per-epoch training trace, the validation trace (if the run has a validation split)
    and the per-epoch test trace (if the rows carry one), each named for what it is."""
    key, scale, hover = metric.key, metric.scale, metric.hover
    fig.add_trace(line_trace(x, scaled_column(epoch_rows, f"train_{key}", scale), view, name="train",
                             mode="lines+markers", line=dict(color=TRAIN_COLOUR, width=2), hovertemplate=hover))
    if labels.val is not None:
        fig.add_trace(line_trace(x, scaled_column(epoch_rows, f"val_{key}", scale), view, name=labels.val,
                                 legendgroup="val", mode="lines+markers", line=dict(color=VAL_COLOUR, width=2),
                                 hovertemplate=hover))
    test = scaled_column(epoch_rows, f"test_{key}", scale)
    if not np.isnan(test).all():
        fig.add_trace(line_trace(x, test, view, name=labels.test_epochs, mode="lines+markers",
                                 line=dict(color=TEST_COLOUR, width=2, dash="dot"), hovertemplate=hover))


def _metric_traces(fig: go.Figure, step_rows: Sequence[dict], epoch_rows: Sequence[dict],
                   steps_per_epoch: int | None, metric: Metric, labels: EvaluationLabels, view: CurveView) -> None:
    """A metric's training steps (smoothed as view says), its per-epoch training and
    evaluation values, and a star on the best validation value."""
    start = view_start(view, step_rows, epoch_rows)
    if step_rows:
        _step_traces(fig, step_rows, live_x(step_rows, view.x_axis, steps_per_epoch, start), metric, view)
    if epoch_rows:
        x = live_x(epoch_rows, view.x_axis, steps_per_epoch, start)
        _epoch_traces(fig, epoch_rows, x, metric, labels, view)
        _best_marker(fig, epoch_rows, x, metric, labels)


def loss_figure(step_rows: Sequence[dict], epoch_rows: Sequence[dict], steps_per_epoch: int | None = None,
                height: int = 400, title: str | None = "Loss", labels: EvaluationLabels | None = None,
                view: CurveView = DEFAULT_VIEW) -> go.Figure:
    """Training loss per step row (smoothed as view says) and per epoch, the evaluation
    losses per epoch (labels: the run's, see
    resnet_core.evaluation_labels.evaluation_labels) and a star on the lowest validation
    loss; a log-scale y axis with view.log_y."""
    labels = labels or evaluation_labels({})
    fig = go.Figure(layout=chart_layout(title, height, "cross-entropy", LIVE_X_AXES[view.x_axis],
                                        xaxis=integer_epochs(epoch_rows, view),
                                        yaxis=dict(type="log" if view.log_y else "linear")))
    _metric_traces(fig, step_rows, epoch_rows, steps_per_epoch, LOSS, labels, view)
    return fig


def _final_test_x(row: dict, epoch_rows: Sequence[dict], view: CurveView, steps_per_epoch: int | None,
                  start: float | None) -> float | None:
    """Where the final test evaluation goes: at the end of the epoch it followed (its
    time on the wall-time axis)."""
    if view.x_axis != "wall time":
        row = next((r for r in reversed(epoch_rows) if r.get("epoch") == row.get("epoch")), row)
    return gaps_as_none(live_x([row], view.x_axis, steps_per_epoch, start))[0]


def accuracy_figure(step_rows: Sequence[dict], epoch_rows: Sequence[dict], steps_per_epoch: int | None = None,
                    test_rows: Sequence[dict] = (), height: int = 400, title: str | None = "Accuracy",
                    labels: EvaluationLabels | None = None, view: CurveView = DEFAULT_VIEW) -> go.Figure:
    """Training accuracy per step row (smoothed as view says) and per epoch, the evaluation
    accuracies per epoch with a star on the best validation accuracy, in percent, and the
    final test accuracy once known (labels: the run's, see
    resnet_core.evaluation_labels.evaluation_labels)."""
    labels = labels or evaluation_labels({})
    start = view_start(view, step_rows, epoch_rows)
    fig = go.Figure(layout=chart_layout(title, height, "accuracy", LIVE_X_AXES[view.x_axis],
                                        xaxis=integer_epochs(epoch_rows, view),
                                        yaxis=dict(ticksuffix="%", rangemode="tozero"), legend="bottom right"))
    _metric_traces(fig, step_rows, epoch_rows, steps_per_epoch, ACCURACY, labels, view)
    for row in test_rows[-1:]:
        fig.add_trace(go.Scatter(x=[_final_test_x(row, epoch_rows, view, steps_per_epoch, start)],
                                 y=row_values([row], "test_acc", 100), name=labels.test_final,
                                 mode="markers", marker=dict(color=TEST_COLOUR, size=11, symbol="star"),
                                 hovertemplate="%{y:.2f}% after the last epoch"))
    return fig


def lr_figure(step_rows: Sequence[dict], epoch_rows: Sequence[dict], steps_per_epoch: int | None = None,
              height: int = 400, title: str | None = "Learning rate", view: CurveView = DEFAULT_VIEW) -> go.Figure:
    """The learning rate of the step rows, else of the epoch rows (never smoothed)."""
    rows = step_rows or epoch_rows
    fig = go.Figure(layout=chart_layout(title, height, "learning rate", LIVE_X_AXES[view.x_axis],
                                        xaxis=integer_epochs(epoch_rows, view),
                                        yaxis=dict(exponentformat="e", rangemode="tozero"), showlegend=False))
    if rows:
        x = live_x(rows, view.x_axis, steps_per_epoch, view_start(view, step_rows, epoch_rows))
        fig.add_trace(line_trace(x, scaled_column(rows, "lr"), view, name="lr",
                                 mode=step_mode(rows) if step_rows else "lines+markers",
                                 line=dict(color=LR_COLOUR, width=2), hovertemplate="%{y:.3g}"))
    return fig


def throughput_figure(step_rows: Sequence[dict], epoch_rows: Sequence[dict], steps_per_epoch: int | None = None,
                      height: int = 400, title: str | None = "Training speed",
                      view: CurveView = DEFAULT_VIEW) -> go.Figure:
    """Images per second: each step row's (since the row before it, the first one's
    compiling included) and each epoch's mean, never smoothed, so a slowdown shows."""
    fig = go.Figure(layout=chart_layout(title, height, "images / s", LIVE_X_AXES[view.x_axis],
                                        xaxis=integer_epochs(epoch_rows, view), yaxis=dict(rangemode="tozero"),
                                        legend="above"))
    start = view_start(view, step_rows, epoch_rows)
    if step_rows:
        fig.add_trace(line_trace(live_x(step_rows, view.x_axis, steps_per_epoch, start),
                                 scaled_column(step_rows, "images_per_s"), view, name="steps",
                                 mode=step_mode(step_rows), line=dict(color=TRAIN_COLOUR, width=1.5),
                                 hovertemplate="%{y:,.0f} images/s"))
    if epoch_rows:
        fig.add_trace(line_trace(live_x(epoch_rows, view.x_axis, steps_per_epoch, start),
                                 scaled_column(epoch_rows, "images_per_s"), view, name="epoch mean",
                                 mode="lines+markers", line=dict(color=VAL_COLOUR, width=2),
                                 hovertemplate="%{y:,.0f} images/s (epoch)"))
    return legend_above(fig)  # in the plot, it covered the speed of short runs' steps
