"""Plotly figures for the dashboard, built from plain rows and arrays (no Streamlit here).

Training curves take the rows of ``metrics.jsonl`` (see :mod:`resnet_core.runs`) and a
:class:`CurveView`: their x axis is the step, the epoch (fractional for step rows: step /
steps per epoch, so step and epoch rows line up) or the wall time; the step rows' series
can be smoothed (:func:`~resnet_core.dashboard.series.ema`, drawn bold over the faint raw
series) and every trace is cut to a point budget
(:func:`~resnet_core.dashboard.series.downsample`), so a run of 200,000 step rows draws as
fast as a short one. Their evaluation traces are named by the run's
:class:`~resnet_core.evaluation_labels.EvaluationLabels`: a "validation" that was the test set says
so, and per-epoch test evaluations are marked as monitoring. The confusion matrix is a
heatmap with an invisible scatter on top, one square marker per cell, because a heatmap
alone sends no click events to Streamlit; the scatter's ``customdata`` holds ``[true,
predicted]`` as plain Python lists.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from ..metrics import ClassReport, normalize_confusion
from ..runs.values import as_float
from ..evaluation_labels import VALIDATION, EvaluationLabels, evaluation_labels
from .series import best_so_far, column, downsample, smoothed

TRAIN_COLOUR = "#4C78A8"
VAL_COLOUR = "#F58518"
TEST_COLOUR = "#54A24B"
LR_COLOUR = "#B279A2"
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D",
           "#FF9DA6", "#BAB0AC")
# Runs past PALETTE's ten: plotly's Dark24 (legible on white, unlike its Alphabet's pale
# greys and creams), then hues spread by the golden angle, so no two runs share a colour.
MORE_RUN_COLOURS = tuple(plotly.colors.qualitative.Dark24)


def run_colours(n: int) -> list[str]:
    """n distinct colours, one per run of a chart (PALETTE first): dashes there already say
    what a line is (training error, plain networks), so colour alone tells the runs apart."""
    colours = list(dict.fromkeys(c.upper() for c in PALETTE + MORE_RUN_COLOURS))[:n]
    seen, i = set(colours), 0
    while len(colours) < n:
        r, g, b = colorsys.hls_to_rgb((i * 0.381966) % 1.0, (0.35, 0.5, 0.62)[i % 3], 0.7)
        colour = f"#{round(255 * r):02X}{round(255 * g):02X}{round(255 * b):02X}"
        i += 1
        if colour not in seen:
            seen.add(colour)
            colours.append(colour)
    return colours

NORMALISATIONS = {
    "counts": "Counts",
    "recall": "Rows = recall (each true class sums to 100%)",
    "precision": "Columns = precision (each predicted class sums to 100%)",
}


def _frame(title: str | None, height: int, margin: Mapping, **title_style) -> dict:
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
    # Over the plot, in a top margin made for it (_legend_above): lines that may lie anywhere
    # (speed, utilisation, memory), or a chart whose top band holds text (reliability counts).
    "above": dict(x=0, xanchor="left", y=1, yanchor="bottom"),
}
LEGEND_ROW_PX = 20  # a legend row (11 px font) and its gap
LEGEND_ONE_ROW_PX = 300  # the most a one-row legend may take: a Monitor chart in a third of a laptop's page


def _axis_margin(labels: Sequence[str], angle: float = 0.0, title_px: int = 0) -> int:
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


def _legend_beside(fig: go.Figure) -> go.Figure:
    """fig with a right margin that fits its legend's longest entry (legend "right"), at
    most LEGEND_BESIDE_MAX_PX."""
    names = [t.name or "" for t in fig.data if t.showlegend is not False]
    fitted = round(50 + LEGEND_CHAR_PX * max(map(len, names), default=0))  # the symbol, gaps, the text
    fig.layout.margin.r = min(fitted, LEGEND_BESIDE_MAX_PX)
    return fig


def _legend_above(fig: go.Figure) -> go.Figure:
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


def _layout(title: str | None, height: int, y_title: str, x_title: str = "epoch", xaxis: Mapping | None = None,
            yaxis: Mapping | None = None, legend: str = "top right", **settings) -> dict:
    """The layout of a line chart in FIXED_MARGIN, for ``go.Figure(layout=...)``: xaxis and
    yaxis add to (or override) the defaults, settings to the rest; legend: where it lies, a
    key of LEGEND_CORNERS ("right": beside the plot, whose figure then goes through
    :func:`_legend_beside`).

    One dict given before the traces, because plotly dispatches every later update_layout
    or update_xaxes over the figure's traces: the Monitor's six figures took 58 ms to build
    that way and 12 ms this way (plotly 7.1), on every refresh of a live Monitor."""
    return {
        **_frame(title, height, FIXED_MARGIN, font=dict(size=15)),
        "legend": {**LEGEND_CORNERS[legend], "title": None, "font": dict(size=11)},
        "hovermode": "x unified",
        "uirevision": "keep",
        "xaxis": {"title": dict(text=x_title), "rangemode": "tozero", **FIXED_AXIS, **(xaxis or {})},
        "yaxis": {"title": dict(text=y_title), **FIXED_AXIS, **(yaxis or {})},
        **settings,
    }


# The x axes of the live curves: key -> axis title.
LIVE_X_AXES = {
    "step": "step",
    "epoch": "epoch",
    "wall time": "wall time (minutes since the first row)",
}
MAX_POINTS = 2_000  # per trace: more would not show on a chart a few hundred pixels wide


@dataclass(frozen=True)
class CurveView:
    """How the live curves are drawn: the x axis (a key of LIVE_X_AXES), the smoothing
    weight of the step rows' series (0: none), a log-scale loss axis, and the most points
    a trace keeps; start: the wall-time axis's 0 (unix seconds), else each figure's first
    row (the monitor gives its charts one: the first row of any type)."""

    x_axis: str = "epoch"
    smoothing: float = 0.0
    log_y: bool = False
    max_points: int = MAX_POINTS
    start: float | None = None


def _integer_epochs(epoch_rows: Sequence[dict], view: CurveView) -> dict:
    """The x axis's whole-epoch ticks for short runs on the epoch axis (plotly would label
    0.5, 1.5...), else nothing."""
    if view.x_axis != "epoch":
        return {}
    last = max((r.get("epoch", 0) for r in epoch_rows), default=0)
    return dict(tick0=0, dtick=1) if 0 < last <= 12 else {}


def _step_mode(rows: Sequence[dict]) -> str:
    """Lines for step rows, with markers while there are too few points to draw a line."""
    return "lines" if len(rows) > 2 else "lines+markers"


def _values(rows: Sequence[dict], key: str, scale: float = 1.0) -> list[float | None]:
    out = []
    for r in rows:
        v = as_float(r.get(key))
        out.append(None if v is None else v * scale)
    return out


def _column(rows: Sequence[dict], key: str, scale: float = 1.0) -> np.ndarray:
    """The rows' key as floats (times scale), NaN where a row has no finite number: what
    _values gives, as an array, for the long series of step rows (cached for a Rows)."""
    return column(rows, key) * scale


def _gaps_as_none(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def start_time(*tables: Sequence[dict]) -> float | None:
    """The time of the first row of these (step, epoch, system... rows): 0 on the wall-time axis."""
    times = [t for rows in tables for t in _values(rows[:1], "time")]
    return min((t for t in times if t is not None), default=None)


def _start(view: "CurveView", *tables: Sequence[dict]) -> float | None:
    return view.start if view.start is not None else start_time(*tables)


STEPWISE = ("step", "system")  # row types drawn at their step, not at a whole epoch


def _by_step(rows: Sequence[dict]) -> np.ndarray | bool:
    """Which rows sit at their step on the epoch axis: step and system rows, not epoch rows."""
    kind = getattr(rows, "kind", None)  # a Rows of one type says which
    if kind is not None:
        return kind in STEPWISE
    return np.array([r.get("type") in STEPWISE for r in rows], dtype=bool)


def live_x(rows: Sequence[dict], x_axis: str, steps_per_epoch: int | None = None,
           start: float | None = None) -> np.ndarray:
    """The x of each step, epoch or test row on an axis of LIVE_X_AXES: step, the row's
    step; epoch, an epoch row's epoch and a step row's fractional epoch (step / steps per
    epoch, its epoch without steps_per_epoch); wall time, the row's time in minutes after
    start (see :func:`start_time`). NaN where a row lacks what its axis needs."""
    if x_axis == "step":
        return _column(rows, "step")
    if x_axis == "epoch":
        epochs = _column(rows, "epoch")
        if not steps_per_epoch:
            return epochs
        return np.where(_by_step(rows), _column(rows, "step") / steps_per_epoch, epochs)
    if x_axis == "wall time":
        return (_column(rows, "time") - (np.nan if start is None else start)) / 60
    raise ValueError(f"unknown x axis {x_axis!r}; valid: {', '.join(LIVE_X_AXES)}")


def _line(x: np.ndarray, y: np.ndarray, view: CurveView, extremes: bool = True, **kwargs) -> go.Scatter:
    """A trace of the points that have an x (NaN y: a gap), downsampled to view.max_points:
    keeping each bucket's extremes (raw series: spikes show), or its mean (a smoothed series,
    which drawn through its buckets' extremes looked like a band on noisy data)."""
    has_x = ~np.isnan(x)
    xs, ys = downsample(x[has_x], y[has_x], view.max_points, keep="extremes" if extremes else "mean")
    # As arrays (None: NaN, a gap): plotly validated 2,000-point lists an element at a time
    # (0.16 s of a 0.33 s loss figure) and sends arrays as compact binary.
    return go.Scatter(x=np.array(xs, dtype=float), y=np.array(ys, dtype=float), **kwargs)


def _step_traces(fig: go.Figure, step_rows: Sequence[dict], key: str, scale: float, view: CurveView,
                 x: np.ndarray, hover: str) -> None:
    """The step rows' series: clearly visible alone; faint under its smoothed series (bold,
    :func:`~resnet_core.dashboard.series.ema` of the raw values) when view.smoothing > 0."""
    y = _column(step_rows, key, scale)
    smooth = view.smoothing > 0
    # Smoothed, the legend names the bold series only, and a click on it hides both (a
    # legend in the plot covers it: see LEGEND_CORNERS).
    fig.add_trace(_line(x, y, view, name="train (steps)", mode=_step_mode(step_rows),
                        line=dict(color=TRAIN_COLOUR, width=1.5), opacity=0.3 if smooth else 0.9,
                        hovertemplate=hover, legendgroup="steps", showlegend=not smooth))
    if smooth:
        fig.add_trace(_line(x, smoothed(step_rows, key, view.smoothing) * scale, view, extremes=False,
                            name=f"train (steps, smoothed {view.smoothing:g})", mode="lines",
                            line=dict(color=TRAIN_COLOUR, width=2.5), hovertemplate=hover, legendgroup="steps"))


def _best_marker(fig: go.Figure, epoch_rows: Sequence[dict], key: str, scale: float, mode: str,
                 x: np.ndarray, labels: EvaluationLabels, hover: str) -> None:
    """A star on the best validation value so far (mode "max" for an accuracy, "min" for a
    loss), if the run validates and its best epoch row has an x; in the validation trace's
    legend group, without an entry of its own (its hover names it)."""
    best = best_so_far(_values(epoch_rows, f"val_{key}", scale), mode) if labels.val is not None else None
    if best is None or math.isnan(x[best[0]]):
        return
    i, value = best
    fig.add_trace(go.Scatter(x=[float(x[i])], y=[value], name=f"best {labels.val}", mode="markers",
                             legendgroup="val", showlegend=False,
                             marker=dict(color=VAL_COLOUR, size=13, symbol="star", line=dict(color="white", width=1)),
                             hovertemplate=f"best {hover} (epoch {epoch_rows[i].get('epoch')})"))


def _epoch_traces(fig: go.Figure, epoch_rows: Sequence[dict], key: str, scale: float, hover: str,
                  labels: EvaluationLabels, view: CurveView, x: np.ndarray) -> None:
    """The per-epoch training trace, the validation trace (if the run has a validation split)
    and the per-epoch test trace (if the rows carry one), each named for what it is."""
    fig.add_trace(_line(x, _column(epoch_rows, f"train_{key}", scale), view, name="train", mode="lines+markers",
                        line=dict(color=TRAIN_COLOUR, width=2), hovertemplate=hover))
    if labels.val is not None:
        fig.add_trace(_line(x, _column(epoch_rows, f"val_{key}", scale), view, name=labels.val, legendgroup="val",
                            mode="lines+markers", line=dict(color=VAL_COLOUR, width=2), hovertemplate=hover))
    test = _column(epoch_rows, f"test_{key}", scale)
    if not np.isnan(test).all():
        fig.add_trace(_line(x, test, view, name=labels.test_epochs, mode="lines+markers",
                            line=dict(color=TEST_COLOUR, width=2, dash="dot"), hovertemplate=hover))


def _metric_traces(fig: go.Figure, step_rows: Sequence[dict], epoch_rows: Sequence[dict], key: str, scale: float,
                   best: str, hover: str, labels: EvaluationLabels, view: CurveView,
                   steps_per_epoch: int | None) -> None:
    """A metric's training steps (smoothed as view says), its per-epoch training and
    evaluation values, and a star on the best validation value ("min" or "max")."""
    start = _start(view, step_rows, epoch_rows)
    if step_rows:
        _step_traces(fig, step_rows, key, scale, view, live_x(step_rows, view.x_axis, steps_per_epoch, start), hover)
    if epoch_rows:
        x = live_x(epoch_rows, view.x_axis, steps_per_epoch, start)
        _epoch_traces(fig, epoch_rows, key, scale, hover, labels, view, x)
        _best_marker(fig, epoch_rows, key, scale, best, x, labels, hover)


def loss_figure(step_rows: Sequence[dict], epoch_rows: Sequence[dict], steps_per_epoch: int | None = None,
                height: int = 400, title: str | None = "Loss", labels: EvaluationLabels | None = None,
                view: CurveView = CurveView()) -> go.Figure:
    """Training loss per step row (smoothed as view says) and per epoch, the evaluation
    losses per epoch (labels: the run's, see
    resnet_core.evaluation_labels.evaluation_labels) and a star on the lowest validation
    loss; a log-scale y axis with view.log_y."""
    labels = labels or evaluation_labels({})
    fig = go.Figure(layout=_layout(title, height, "cross-entropy", LIVE_X_AXES[view.x_axis],
                                   xaxis=_integer_epochs(epoch_rows, view),
                                   yaxis=dict(type="log" if view.log_y else "linear")))
    _metric_traces(fig, step_rows, epoch_rows, "loss", 1.0, "min", "%{y:.4f}", labels, view, steps_per_epoch)
    return fig


def _final_test_x(row: dict, epoch_rows: Sequence[dict], view: CurveView, steps_per_epoch: int | None,
                  start: float | None) -> float | None:
    """Where the final test evaluation goes: at the end of the epoch it followed (its
    time on the wall-time axis)."""
    if view.x_axis != "wall time":
        row = next((r for r in reversed(epoch_rows) if r.get("epoch") == row.get("epoch")), row)
    return _gaps_as_none(live_x([row], view.x_axis, steps_per_epoch, start))[0]


def accuracy_figure(step_rows: Sequence[dict], epoch_rows: Sequence[dict], steps_per_epoch: int | None = None,
                    test_rows: Sequence[dict] = (), height: int = 400, title: str | None = "Accuracy",
                    labels: EvaluationLabels | None = None, view: CurveView = CurveView()) -> go.Figure:
    """Training accuracy per step row (smoothed as view says) and per epoch, the evaluation
    accuracies per epoch with a star on the best validation accuracy, in percent, and the
    final test accuracy once known (labels: the run's, see
    resnet_core.evaluation_labels.evaluation_labels)."""
    labels = labels or evaluation_labels({})
    start = _start(view, step_rows, epoch_rows)
    fig = go.Figure(layout=_layout(title, height, "accuracy", LIVE_X_AXES[view.x_axis],
                                   xaxis=_integer_epochs(epoch_rows, view),
                                   yaxis=dict(ticksuffix="%", rangemode="tozero"), legend="bottom right"))
    _metric_traces(fig, step_rows, epoch_rows, "acc", 100, "max", "%{y:.2f}%", labels, view, steps_per_epoch)
    for row in test_rows[-1:]:
        fig.add_trace(go.Scatter(x=[_final_test_x(row, epoch_rows, view, steps_per_epoch, start)],
                                 y=_values([row], "test_acc", 100), name=labels.test_final,
                                 mode="markers", marker=dict(color=TEST_COLOUR, size=11, symbol="star"),
                                 hovertemplate="%{y:.2f}% after the last epoch"))
    return fig


def lr_figure(step_rows: Sequence[dict], epoch_rows: Sequence[dict], steps_per_epoch: int | None = None,
              height: int = 400, title: str | None = "Learning rate", view: CurveView = CurveView()) -> go.Figure:
    """The learning rate of the step rows, else of the epoch rows (never smoothed)."""
    rows = step_rows or epoch_rows
    fig = go.Figure(layout=_layout(title, height, "learning rate", LIVE_X_AXES[view.x_axis],
                                   xaxis=_integer_epochs(epoch_rows, view),
                                   yaxis=dict(exponentformat="e", rangemode="tozero"), showlegend=False))
    if rows:
        x = live_x(rows, view.x_axis, steps_per_epoch, _start(view, step_rows, epoch_rows))
        fig.add_trace(_line(x, _column(rows, "lr"), view, name="lr",
                            mode=_step_mode(rows) if step_rows else "lines+markers",
                            line=dict(color=LR_COLOUR, width=2), hovertemplate="%{y:.3g}"))
    return fig


def throughput_figure(step_rows: Sequence[dict], epoch_rows: Sequence[dict], steps_per_epoch: int | None = None,
                      height: int = 400, title: str | None = "Training speed",
                      view: CurveView = CurveView()) -> go.Figure:
    """Images per second: each step row's (since the row before it, the first one's
    compiling included) and each epoch's mean, never smoothed, so a slowdown shows."""
    fig = go.Figure(layout=_layout(title, height, "images / s", LIVE_X_AXES[view.x_axis],
                                   xaxis=_integer_epochs(epoch_rows, view), yaxis=dict(rangemode="tozero"),
                                   legend="above"))
    start = _start(view, step_rows, epoch_rows)
    if step_rows:
        fig.add_trace(_line(live_x(step_rows, view.x_axis, steps_per_epoch, start), _column(step_rows, "images_per_s"),
                            view, name="steps", mode=_step_mode(step_rows), line=dict(color=TRAIN_COLOUR, width=1.5),
                            hovertemplate="%{y:,.0f} images/s"))
    if epoch_rows:
        fig.add_trace(_line(live_x(epoch_rows, view.x_axis, steps_per_epoch, start),
                            _column(epoch_rows, "images_per_s"), view, name="epoch mean", mode="lines+markers",
                            line=dict(color=VAL_COLOUR, width=2), hovertemplate="%{y:,.0f} images/s (epoch)"))
    return _legend_above(fig)  # in the plot, it covered the speed of short runs' steps


# The system rows' series on the usage charts: key -> (name, colour, dash).
UTILISATION_SERIES = {
    "gpu_util": ("GPU (kernels running)", TEST_COLOUR, None),
    "cpu_percent": ("CPU, this run", TRAIN_COLOUR, None),
    "machine_cpu_percent": ("CPU, whole machine", TRAIN_COLOUR, "dot"),
}
MEMORY_SERIES = {
    "gpu_memory_mb": ("GPU, this run's allocator", TEST_COLOUR, None),
    "gpu_memory_total_mb": ("GPU, total", TEST_COLOUR, "dot"),
    "ram_mb": ("RAM, this run (resident)", TRAIN_COLOUR, None),
}


def _system_figure(system_rows: Sequence[dict], series: Mapping[str, tuple[str, str, str | None]],
                   steps_per_epoch: int | None, view: CurveView, title: str | None, height: int, y_title: str,
                   hover: str, scale: float = 1.0, yaxis: Mapping | None = None) -> go.Figure:
    """One trace per key of series that some system row has a number for."""
    # The x ticks of the system rows' epoch (the one in progress) follow the loss chart's.
    fig = go.Figure(layout=_layout(title, height, y_title, LIVE_X_AXES[view.x_axis],
                                   xaxis=_integer_epochs(system_rows, view), yaxis=yaxis, legend="above"))
    x = live_x(system_rows, view.x_axis, steps_per_epoch, _start(view, system_rows))
    for key, (name, colour, dash) in series.items():
        y = _column(system_rows, key, scale)
        if not np.isnan(y).all():
            fig.add_trace(_line(x, y, view, name=name, mode=_step_mode(system_rows),
                                line=dict(color=colour, width=2, dash=dash), hovertemplate=hover))
    return _legend_above(fig)  # utilisation and memory lie anywhere from 0 to 100%: no corner stays empty


def utilisation_figure(system_rows: Sequence[dict], steps_per_epoch: int | None = None, height: int = 400,
                       title: str | None = "Utilisation", view: CurveView = CurveView()) -> go.Figure:
    """From the system rows: the GPU's busy time, this run's CPU (percent of the cores it
    may use, as the rows record them) and the whole machine's, in percent (CPU: 100% is
    every core busy)."""
    names = dict(UTILISATION_SERIES)
    cores = _values(system_rows[-1:], "cores")[0] if system_rows else None  # as the latest row says
    if cores:
        name, colour, dash = names["cpu_percent"]
        names["cpu_percent"] = (f"{name} ({cores:g} cores)", colour, dash)
    return _system_figure(system_rows, names, steps_per_epoch, view, title, height, "% busy", "%{y:.0f}%",
                          yaxis=dict(range=[0, 105], ticksuffix="%"))


def memory_figure(system_rows: Sequence[dict], steps_per_epoch: int | None = None, height: int = 400,
                  title: str | None = "Memory", view: CurveView = CurveView()) -> go.Figure:
    """From the system rows: GPU memory (what the run's allocator holds, and the card's
    total) and the run's resident RAM, in GiB."""
    return _system_figure(system_rows, MEMORY_SERIES, steps_per_epoch, view, title, height, "GiB", "%{y:.2f} GiB",
                          scale=1 / 1024, yaxis=dict(rangemode="tozero"))


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
        t = _values([r], "epoch_seconds")[0]
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
        return _gaps_as_none(live_x(rows, "step" if x_axis == "iterations" else "epoch", steps_per_epoch))
    if x_axis == "wall time":
        steps, seconds = _wall_seconds(epoch_rows)
        return [float(np.interp(r["step"], steps, seconds)) if isinstance(r.get("step"), int) and r["step"] <= steps[-1]
                else None for r in rows]
    raise ValueError(f"unknown x axis {x_axis!r}; valid: {', '.join(ERROR_X_AXES)}")


def _error_trace(x: list[float | None], acc: list[float | None], **kwargs) -> go.Scatter:
    """error (%) = 100 - accuracy (%), points without an x or a value left out."""
    points = [(xi, 100.0 - a) for xi, a in zip(x, acc, strict=True) if xi is not None and a is not None]
    return go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], **kwargs)


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
    fig = go.Figure(layout=_layout(title, height, "error (%)", ERROR_X_AXES[x_axis],
                                   yaxis=dict(ticksuffix="%", range=[0, y_max] if y_max else None),
                                   legend="right",
                                   hoverdistance=-1))
    for run, colour in zip(curves, run_colours(len(curves)), strict=True):
        if run.step_rows:
            train_rows, acc = run.step_rows, _values(run.step_rows, "acc", 100)
        else:
            train_rows, acc = run.epoch_rows, _values(run.epoch_rows, "train_acc", 100)
        x = curve_x(train_rows, x_axis, run.epoch_rows, run.steps_per_epoch)
        fig.add_trace(_error_trace(
            x, acc, name=f"{run.name} · train", legendgroup=run.name, showlegend=False, mode="lines",
            line=dict(color=colour, width=1.3, dash="dash"),
            hovertemplate=f"{run.name}: training error %{{y:.2f}}% at %{{x:,.4~g}} ({run.train_source})"
                          "<extra></extra>"))
        evaluation = run.evaluation
        if evaluation is None or not run.epoch_rows:
            continue
        key, what = evaluation
        name = run.name if what == VALIDATION else f"{run.name} · {what}"
        fig.add_trace(_error_trace(
            curve_x(run.epoch_rows, x_axis, run.epoch_rows, run.steps_per_epoch), _values(run.epoch_rows, key, 100),
            name=name, legendgroup=run.name, mode="lines" if len(run.epoch_rows) > 2 else "lines+markers",
            line=dict(color=colour, width=3),
            hovertemplate=f"{run.name}: {what} error %{{y:.2f}}% at %{{x:,.4~g}}<extra></extra>"))
    return _legend_beside(fig)


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
    margin = dict(l=_axis_margin(classes, title_px=AXIS_TITLE_PX), b=_axis_margin(classes, 35, title_px=AXIS_TITLE_PX),
                  r=12)
    return go.Figure([heat, cells], layout=dict(
        **_frame(title, height, margin),
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
    row above them on the right, in fixed margins (see FIXED_MARGIN); as :func:`_layout`,
    given before the traces."""
    titled = bool(xaxis.get("title", {}).get("text")), bool(yaxis.get("title", {}).get("text"))
    margin = dict(l=FIXED_MARGIN["l"] if titled[1] else 48, r=FIXED_MARGIN["r"], t=26,
                  b=_axis_margin(classes, 30, title_px=AXIS_TITLE_PX if titled[0] else 0))
    return dict(**_frame(title, height, margin), barmode="group",
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


def error_vs_depth_figure(lines: Mapping[str, Sequence], height: int = 420, title: str | None = None) -> go.Figure:
    """Final test error (%) against depth, one line per name of lines (from
    resnet_core.dashboard.comparison.depth_lines: points with depth, error, std, n, paper),
    with ± std error bars, plain lines dashed, and the paper's numbers as open markers of the
    line's colour where a point trained with the paper's recipe."""
    fig = go.Figure(layout=_layout(title, height, "final test error (%)", "depth (layers)",
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
    return _legend_beside(fig)
