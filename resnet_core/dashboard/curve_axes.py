"""Where rows of ``metrics.jsonl`` go on a curve's x axis, and their traces cut to a point budget.

The live curves' x axis (:data:`LIVE_X_AXES`, chosen in a :class:`CurveView`) is the step,
the epoch (fractional for step rows: step / steps per epoch, so step and epoch rows line
up) or the wall time; every trace is cut to view.max_points
(:func:`~resnet_core.dashboard.series.downsample`), so a run of 200,000 step rows draws as
fast as a short one. Shared by the live curves, the usage charts and the error curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..runs.values import as_float
from .series import column, downsample

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


DEFAULT_VIEW = CurveView()  # the figures' default view (epoch axis, no smoothing, MAX_POINTS)


def integer_epochs(epoch_rows: Sequence[dict], view: CurveView) -> dict:
    """The x axis's whole-epoch ticks for short runs on the epoch axis (plotly would label
    0.5, 1.5...), else nothing."""
    if view.x_axis != "epoch":
        return {}
    last = max((r.get("epoch", 0) for r in epoch_rows), default=0)
    return dict(tick0=0, dtick=1) if 0 < last <= 12 else {}


def step_mode(rows: Sequence[dict]) -> str:
    """Lines for step rows, with markers while there are too few points to draw a line."""
    return "lines" if len(rows) > 2 else "lines+markers"


def row_values(rows: Sequence[dict], key: str, scale: float = 1.0) -> list[float | None]:
    """The rows' key as floats (times scale), None where a row has no finite number."""
    out = []
    for r in rows:
        v = as_float(r.get(key))
        out.append(None if v is None else v * scale)
    return out


def scaled_column(rows: Sequence[dict], key: str, scale: float = 1.0) -> np.ndarray:
    """The rows' key as floats (times scale), NaN where a row has no finite number: what
    row_values gives, as an array, for the long series of step rows (cached for a Rows)."""
    return column(rows, key) * scale


def gaps_as_none(values: np.ndarray) -> list[float | None]:
    """The values as a list, None for NaN."""
    return [None if math.isnan(v) else v for v in values.tolist()]


def start_time(*tables: Sequence[dict]) -> float | None:
    """The time of the first row of these (step, epoch, system... rows): 0 on the wall-time axis."""
    times = [t for rows in tables for t in row_values(rows[:1], "time")]
    return min((t for t in times if t is not None), default=None)


def view_start(view: CurveView, *tables: Sequence[dict]) -> float | None:
    """The wall-time axis's 0: view.start if it has one, else the first row of these tables."""
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
        return scaled_column(rows, "step")
    if x_axis == "epoch":
        epochs = scaled_column(rows, "epoch")
        if not steps_per_epoch:
            return epochs
        return np.where(_by_step(rows), scaled_column(rows, "step") / steps_per_epoch, epochs)
    if x_axis == "wall time":
        return (scaled_column(rows, "time") - (np.nan if start is None else start)) / 60
    raise ValueError(f"unknown x axis {x_axis!r}; valid: {', '.join(LIVE_X_AXES)}")


def line_trace(x: np.ndarray, y: np.ndarray, view: CurveView, extremes: bool = True, **kwargs) -> go.Scatter:
    """A trace of the points that have an x (NaN y: a gap), downsampled to view.max_points:
    keeping each bucket's extremes (raw series: spikes show), or its mean (a smoothed series,
    which drawn through its buckets' extremes looked like a band on noisy data)."""
    has_x = ~np.isnan(x)
    xs, ys = downsample(x[has_x], y[has_x], view.max_points, keep="extremes" if extremes else "mean")
    # As arrays (None: NaN, a gap): plotly validated 2,000-point lists an element at a time
    # (0.16 s of a 0.33 s loss figure) and sends arrays as compact binary.
    return go.Scatter(x=np.array(xs, dtype=float), y=np.array(ys, dtype=float), **kwargs)
