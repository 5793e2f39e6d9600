"""The Compare page's error figures: error curves as in He et al.'s Figure 6, and final error against depth.

Error (%) is 100 - accuracy. The curves' x axis (:data:`ERROR_X_AXES`) is the iterations,
the epochs or the wall time of the runs' own epoch_seconds; one style per curve
(:func:`~resnet_core.dashboard.figure_style.run_styles`), the legend beside the plot.
Runs that differ only by seed can be drawn as one curve, their mean with a band
(:func:`seed_curve_groups`, :mod:`~resnet_core.dashboard.seed_bands`); the training error of
step rows is smoothed as the Monitor smooths (:func:`~resnet_core.dashboard.series.smoothed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..evaluation_labels import VALIDATION, EvaluationLabels
from ..results import field_text, seed_groups
from .curve_axes import MAX_POINTS, gaps_as_none, live_x, row_values
from .figure_style import chart_layout, legend_beside, run_colours, run_styles
from .seed_bands import BANDS, Band, band, thinned
from .series import column, downsample, smoothed

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


@dataclass(frozen=True)
class CurveGroup:
    """Runs drawn as one curve, their mean with a band (a lone run: its own curves)."""

    name: str  # the legend entry: a lone run's name, else "ResNet-20 · mean of 3 seeds"
    runs: Sequence[CurveRun]


MODEL_FIELDS = ("depth", "block", "shortcut", "preact", "dataset")  # fields the model's name already says


def seed_curve_groups(curves: Sequence[CurveRun], configs: Sequence[dict], models: Sequence[str]) -> list[CurveGroup]:
    """The curves of runs that differ only by seed (resnet_core.results.seed_groups: the
    Results tab's rows) as groups named "<model> · mean of N seeds" ("of N runs" where some
    share a seed: repeats), with the fields that set the groups apart where the model's name
    does not; a run alone keeps its name."""
    positions, differing = seed_groups(configs)
    named = [k for k in differing if k not in MODEL_FIELDS]
    groups = []
    for group in positions:
        members = [curves[i] for i in group]
        if len(members) == 1:
            groups.append(CurveGroup(members[0].name, members))
            continue
        config = configs[group[0]]
        fields = "".join(f" · {k}={field_text(k, config.get(k))}" for k in named)
        seeds = {repr(configs[i].get("seed")) for i in group}  # a seed may be any JSON in an old record
        what = "seeds" if len(seeds) == len(group) else "runs"
        groups.append(CurveGroup(f"{models[group[0]]} · mean of {len(members)} {what}{fields}", members))
    return groups


def _train_series(run: CurveRun, x_axis: str, smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """x and training error (%) of a run: its step rows' acc, smoothed by
    series.smoothed (the Monitor's debiased EMA), else its epoch rows' train_acc."""
    if run.step_rows:
        rows, acc = run.step_rows, smoothed(run.step_rows, "acc", smoothing)
    else:
        rows, acc = run.epoch_rows, column(run.epoch_rows, "train_acc")
    return np.array(curve_x(rows, x_axis, run.epoch_rows, run.steps_per_epoch), dtype=float), 100.0 - 100.0 * acc


def _evaluation_series(run: CurveRun, x_axis: str) -> tuple[np.ndarray, np.ndarray]:
    key, _ = run.evaluation
    return (np.array(curve_x(run.epoch_rows, x_axis, run.epoch_rows, run.steps_per_epoch), dtype=float),
            100.0 - 100.0 * column(run.epoch_rows, key))


def _error_trace(x: np.ndarray, y: np.ndarray, keep: str = "extremes", **kwargs) -> go.Scatter:
    """points without an x or a value left out, cut to MAX_POINTS (series.downsample: its
    buckets' extremes, or their means for a smoothed series)."""
    finite = np.isfinite(x) & np.isfinite(y)
    xs, ys = downsample(x[finite], y[finite], MAX_POINTS, keep=keep)
    return go.Scatter(x=xs, y=ys, **kwargs)


BAND_ZORDER = -1  # under the lines, whose zorder is plotly's default 0


def _fill(colour: str, alpha: float) -> str:
    return f"rgba({int(colour[1:3], 16)}, {int(colour[3:5], 16)}, {int(colour[5:7], 16)}, {alpha})"


def _band_traces(fig: go.Figure, b: Band, colour: str, alpha: float, **mean_kwargs) -> None:
    """A band (its low edge, then its high edge filled down to it: fill "tonexty") and its mean.
    The band lies under every line (zorder): drawn in trace order, a later group's fill covered
    an earlier group's mean, and its blue line looked grey under an orange band (Compare, two
    groups of 3 seeds)."""
    b = thinned(b, MAX_POINTS)
    edge = dict(x=b.x, mode="lines", line=dict(color=colour, width=0), showlegend=False, hoverinfo="skip",
                legendgroup=mean_kwargs["legendgroup"], zorder=BAND_ZORDER)
    fig.add_trace(go.Scatter(y=b.low, name=f"{mean_kwargs['name']} · band low", **edge))
    fig.add_trace(go.Scatter(y=b.high, name=f"{mean_kwargs['name']} · band high", fill="tonexty",
                             fillcolor=_fill(colour, alpha), **edge))
    spread = [f"{lo:.2f}–{hi:.2f}" if np.isfinite(lo) else "no band" for lo, hi in zip(b.low, b.high, strict=True)]
    fig.add_trace(go.Scatter(x=b.x, y=b.mean, customdata=list(zip(b.n.tolist(), spread, strict=True)), **mean_kwargs))


def _group_traces(fig: go.Figure, group: CurveGroup, x_axis: str, style: tuple[str, str | None],
                  smoothing: float, band_kind: str) -> None:
    """A group's training error (dashed, no legend entry of its own) and per-epoch evaluation
    error (bold, its legend entry), in one legend group: a lone run's own lines, or the
    members' mean with a band (BANDS[band_kind]) where each has them."""
    colour, dash = style
    name, first, banded = group.name, group.runs[0], len(group.runs) > 1
    train = dict(name=f"{name} · train", legendgroup=name, showlegend=False, mode="lines",
                 line=dict(color=colour, width=1.3, dash="dash"))
    if banded:
        hover = f"{name}: training error %{{y:.2f}}% (n=%{{customdata[0]}}, {BANDS[band_kind]} %{{customdata[1]}})"
        _band_traces(fig, band([_train_series(r, x_axis, smoothing) for r in group.runs], band_kind), colour, 0.12,
                      hovertemplate=hover + " at %{x:,.4~g}<extra></extra>", **train)
    else:
        fig.add_trace(_error_trace(*_train_series(first, x_axis, smoothing), "mean" if smoothing else "extremes",
                                   **train, hovertemplate=(
            f"{name}: training error %{{y:.2f}}% at %{{x:,.4~g}} ({first.train_source})<extra></extra>")))
    evaluated = [r for r in group.runs if r.evaluation is not None and r.epoch_rows]
    if not evaluated:
        return
    what = evaluated[0].evaluation[1]
    bold = dict(name=name if what == VALIDATION else f"{name} · {what}", legendgroup=name,
                mode="lines" if len(evaluated[0].epoch_rows) > 2 else "lines+markers",
                line=dict(color=colour, width=3, dash=dash))
    if banded:
        hover = f"{name}: {what} error %{{y:.2f}}% (n=%{{customdata[0]}}, {BANDS[band_kind]} %{{customdata[1]}})"
        _band_traces(fig, band([_evaluation_series(r, x_axis) for r in evaluated], band_kind), colour, 0.22,
                      hovertemplate=hover + " at %{x:,.4~g}<extra></extra>", **bold)
    else:
        fig.add_trace(_error_trace(*_evaluation_series(evaluated[0], x_axis), **bold, hovertemplate=(
            f"{name}: {what} error %{{y:.2f}}% at %{{x:,.4~g}}<extra></extra>")))


def error_curves_figure(curves: Sequence[CurveRun | CurveGroup], x_axis: str = "iterations", height: int = 520,
                        title: str | None = None, y_max: float | None = None, smoothing: float = 0.0,
                        log_y: bool = False, band_kind: str = "std") -> go.Figure:
    """Error curves as in He et al.'s Figure 6: error (%) = 100 - accuracy against x_axis
    (see ERROR_X_AXES), one style per curve (figure_style.run_styles: colours, and past twenty
    a dash pattern); its training error dashed (step rows' acc, the mean over the steps since
    the previous step row, smoothed as the Monitor smooths with smoothing > 0; else epoch
    rows' train_acc) and its per-epoch evaluation error bold (validation, or test monitoring
    without a validation split). A CurveGroup of several runs draws their mean with a band
    (seed_bands.band of band_kind, its fill "tonexty") instead. The legend names each curve
    once (its bold trace) and toggles all of its traces; hovering lists every curve's values
    at that x. y_max: the top of a linear y axis (20 as in the paper), else automatic;
    log_y: a log-scale y axis."""
    # Hover across runs: one box lists each trace's point nearest the pointer's x, however far
    # (per-epoch points are sparse), each saying at which x it is.
    yaxis = dict(type="log", ticksuffix="%") if log_y else dict(ticksuffix="%", range=[0, y_max] if y_max else None)
    fig = go.Figure(layout=chart_layout(title, height, "error (%)", ERROR_X_AXES[x_axis], yaxis=yaxis,
                                        legend="right", hoverdistance=-1))
    groups = [c if isinstance(c, CurveGroup) else CurveGroup(c.name, [c]) for c in curves]
    for group, style in zip(groups, run_styles(len(groups)), strict=True):
        _group_traces(fig, group, x_axis, style, smoothing, band_kind)
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
