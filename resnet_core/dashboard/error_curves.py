"""The Compare page's error figures: error curves as in He et al.'s Figure 6, and final error against depth.

Error (%) is 100 - accuracy. The curves' x axis (:data:`ERROR_X_AXES`) is the iterations,
the epochs or the wall time of the runs' own epoch_seconds; one colour per run
(:func:`~resnet_core.dashboard.figure_style.run_colours`), the legend beside the plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..evaluation_labels import VALIDATION, EvaluationLabels
from .curve_axes import gaps_as_none, live_x, row_values
from .figure_style import chart_layout, legend_beside, run_colours

# The x axes of the error curves: key -> axis title.
ERROR_X_AXES = {
    "iterations": "iterations (optimizer steps)",
    "epochs": "epochs",
    "wall time": "wall time (s, cumulative epoch_seconds)",
}


@dataclass(frozen=True)
class CurveRun:
    """One run's curves for :func:`error_curves_figure`."""

    name: str  # the legend entry: model name and run id
    step_rows: Sequence[dict]
    epoch_rows: Sequence[dict]
    labels: EvaluationLabels  # the run's, see resnet_core.evaluation_labels.evaluation_labels
    steps_per_epoch: int | None = None

    @property
    def train_source(self) -> str:
        """Where its training error comes from: step rows when it has any, else epoch rows."""
        return "step rows' acc" if self.step_rows else "epoch rows' train_acc"

    @property
    def evaluation(self) -> tuple[str, str] | None:
        """(key in epoch rows, name) of its per-epoch evaluation: the validation accuracy, or
        without a validation split the test accuracy monitored every epoch; None if neither."""
        if self.labels.val is not None:
            return "val_acc", self.labels.val
        if self.labels.test_every_epoch or any(r.get("test_acc") is not None for r in self.epoch_rows):
            return "test_acc", "test (monitoring)"
        return None


def _wall_seconds(epoch_rows: Sequence[dict]) -> tuple[list[float], list[float]]:
    """(steps, seconds) at the end of each epoch, from 0: the cumulative epoch_seconds, up to
    the first epoch row that lacks them."""
    steps, seconds = [0.0], [0.0]
    for r in epoch_rows:
        t = row_values([r], "epoch_seconds")[0]
        if t is None or not isinstance(r.get("step"), int):
            break
        steps.append(float(r["step"]))
        seconds.append(seconds[-1] + t)
    return steps, seconds


def curve_x(rows: Sequence[dict], x_axis: str, epoch_rows: Sequence[dict] = (),
            steps_per_epoch: int | None = None) -> list[float | None]:
    """The x of each step or epoch row on an axis of ERROR_X_AXES: iterations, the row's
    step; epochs, an epoch row's epoch and a step row's fractional epoch (step / steps per
    epoch); wall time, the cumulative epoch_seconds of the run's epoch rows, a step row's
    interpolated by step within its epoch (None past the last epoch row with a time)."""
    if x_axis in ("iterations", "epochs"):
        return gaps_as_none(live_x(rows, "step" if x_axis == "iterations" else "epoch", steps_per_epoch))
    if x_axis == "wall time":
        steps, seconds = _wall_seconds(epoch_rows)
        return [float(np.interp(r["step"], steps, seconds)) if isinstance(r.get("step"), int) and r["step"] <= steps[-1]
                else None for r in rows]
    raise ValueError(f"unknown x axis {x_axis!r}; valid: {', '.join(ERROR_X_AXES)}")


def _error_trace(x: list[float | None], acc: list[float | None], **kwargs) -> go.Scatter:
    """error (%) = 100 - accuracy (%), points without an x or a value left out."""
    points = [(xi, 100.0 - a) for xi, a in zip(x, acc, strict=True) if xi is not None and a is not None]
    return go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], **kwargs)


def _run_error_traces(fig: go.Figure, run: CurveRun, x_axis: str, colour: str) -> None:
    """A run's training error (dashed, without a legend entry) and its per-epoch evaluation
    error (bold, naming the run in the legend), in one legend group."""
    if run.step_rows:
        train_rows, acc = run.step_rows, row_values(run.step_rows, "acc", 100)
    else:
        train_rows, acc = run.epoch_rows, row_values(run.epoch_rows, "train_acc", 100)
    x = curve_x(train_rows, x_axis, run.epoch_rows, run.steps_per_epoch)
    fig.add_trace(_error_trace(
        x, acc, name=f"{run.name} · train", legendgroup=run.name, showlegend=False, mode="lines",
        line=dict(color=colour, width=1.3, dash="dash"),
        hovertemplate=f"{run.name}: training error %{{y:.2f}}% at %{{x:,.4~g}} ({run.train_source})"
                      "<extra></extra>"))
    evaluation = run.evaluation
    if evaluation is None or not run.epoch_rows:
        return
    key, what = evaluation
    name = run.name if what == VALIDATION else f"{run.name} · {what}"
    fig.add_trace(_error_trace(
        curve_x(run.epoch_rows, x_axis, run.epoch_rows, run.steps_per_epoch), row_values(run.epoch_rows, key, 100),
        name=name, legendgroup=run.name, mode="lines" if len(run.epoch_rows) > 2 else "lines+markers",
        line=dict(color=colour, width=3),
        hovertemplate=f"{run.name}: {what} error %{{y:.2f}}% at %{{x:,.4~g}}<extra></extra>"))


def error_curves_figure(curves: Sequence[CurveRun], x_axis: str = "iterations", height: int = 520,
                        title: str | None = None, y_max: float | None = None) -> go.Figure:
    """Error curves as in He et al.'s Figure 6: error (%) = 100 - accuracy against x_axis
    (see ERROR_X_AXES), one colour per run; its training error dashed (step rows' acc, the
    mean over the steps since the previous step row, else epoch rows' train_acc) and its
    per-epoch evaluation error bold (validation, or test monitoring without a validation
    split). Two traces per run (one without epoch rows to evaluate), train first; the
    legend names each run once (its bold trace) and toggles both; hovering lists every
    run's values at that x. y_max: the top of the
    y axis (20 as in the paper), else automatic."""
    # Hover across runs: one box lists each trace's point nearest the pointer's x, however far
    # (per-epoch points are sparse), each saying at which x it is.
    fig = go.Figure(layout=chart_layout(title, height, "error (%)", ERROR_X_AXES[x_axis],
                                        yaxis=dict(ticksuffix="%", range=[0, y_max] if y_max else None),
                                        legend="right",
                                        hoverdistance=-1))
    for run, colour in zip(curves, run_colours(len(curves)), strict=True):
        _run_error_traces(fig, run, x_axis, colour)
    return legend_beside(fig)


def error_vs_depth_figure(lines: Mapping[str, Sequence], height: int = 420, title: str | None = None) -> go.Figure:
    """Final test error (%) against depth, one line per name of lines (from
    resnet_core.dashboard.comparison.depth_lines: points with depth, error, std, n, paper),
    with ± std error bars, plain lines dashed, and the paper's numbers as open markers of the
    line's colour where a point trained with the paper's recipe."""
    fig = go.Figure(layout=chart_layout(title, height, "final test error (%)", "depth (layers)",
                                        xaxis=dict(type="linear", rangemode="normal"), yaxis=dict(ticksuffix="%"),
                                        legend="right",
                                        hovermode="closest"))
    for (name, points), colour in zip(lines.items(), run_colours(len(lines)), strict=True):
        fig.add_trace(go.Scatter(
            x=[p.depth for p in points], y=[p.error for p in points], name=name, mode="lines+markers",
            line=dict(color=colour, width=2, dash="dash" if name.startswith("plain") else None),
            error_y=dict(type="data", array=[p.std or 0 for p in points], visible=True),
            customdata=[[p.n, "" if p.std is None else f" ± {p.std:.2f}"] for p in points],
            hovertemplate=f"{name}<br>depth %{{x}}: %{{y:.2f}}%%{{customdata[1]}} (n=%{{customdata[0]}})"
                          "<extra></extra>"))
        paper = [p for p in points if p.paper is not None]
        if paper:
            fig.add_trace(go.Scatter(
                x=[p.depth for p in paper], y=[p.paper.error for p in paper], name=f"{name} (paper)", mode="markers",
                marker=dict(color=colour, symbol="circle-open", size=11, line=dict(width=2)),
                customdata=[[f"{p.paper.text}, {p.paper.source}"] for p in paper],
                hovertemplate=f"{name}, paper<br>depth %{{x}}: %{{customdata[0]}}<extra></extra>"))
    return legend_beside(fig)
