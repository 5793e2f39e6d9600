"""The Monitor's usage charts: the device's utilisation and memory over a run, from its system rows.

System rows go on the live curves' x axes (see :mod:`~resnet_core.dashboard.curve_axes`),
so the usage charts line up with the loss chart beside them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from .curve_axes import (DEFAULT_VIEW, LIVE_X_AXES, CurveView, integer_epochs, line_trace, live_x, row_values,
                         scaled_column, step_mode, view_start)
from .figure_style import TEST_COLOUR, TRAIN_COLOUR, chart_layout, legend_above

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


@dataclass(frozen=True)
class UsageChart:
    """What a usage chart draws: its series (a key of the system rows -> name, colour,
    dash), each times scale, under a y axis titled y_title (yaxis: more of its settings),
    with hover as their hover template."""

    series: Mapping[str, tuple[str, str, str | None]]
    y_title: str
    hover: str
    scale: float = 1.0
    yaxis: Mapping | None = None


UTILISATION = UsageChart(UTILISATION_SERIES, "% busy", "%{y:.0f}%", yaxis=dict(range=[0, 105], ticksuffix="%"))
MEMORY = UsageChart(MEMORY_SERIES, "GiB", "%{y:.2f} GiB", scale=1 / 1024, yaxis=dict(rangemode="tozero"))


def _usage_figure(system_rows: Sequence[dict], chart: UsageChart, steps_per_epoch: int | None, view: CurveView,
                  title: str | None, height: int) -> go.Figure:
    """One trace per key of chart.series that some system row has a number for."""
    # The x ticks of the system rows' epoch (the one in progress) follow the loss chart's.
    fig = go.Figure(layout=chart_layout(title, height, chart.y_title, LIVE_X_AXES[view.x_axis],
                                        xaxis=integer_epochs(system_rows, view), yaxis=chart.yaxis, legend="above"))
    x = live_x(system_rows, view.x_axis, steps_per_epoch, view_start(view, system_rows))
    for key, (name, colour, dash) in chart.series.items():
        y = scaled_column(system_rows, key, chart.scale)
        if not np.isnan(y).all():
            fig.add_trace(line_trace(x, y, view, name=name, mode=step_mode(system_rows),
                                     line=dict(color=colour, width=2, dash=dash), hovertemplate=chart.hover))
    return legend_above(fig)  # utilisation and memory lie anywhere from 0 to 100%: no corner stays empty


def utilisation_figure(system_rows: Sequence[dict], steps_per_epoch: int | None = None, height: int = 400,
                       title: str | None = "Utilisation", view: CurveView = DEFAULT_VIEW) -> go.Figure:
    """From the system rows: the GPU's busy time, this run's CPU (percent of the cores it
    may use, as the rows record them) and the whole machine's, in percent (CPU: 100% is
    every core busy)."""
    names = dict(UTILISATION_SERIES)
    cores = row_values(system_rows[-1:], "cores")[0] if system_rows else None  # as the latest row says
    if cores:
        name, colour, dash = names["cpu_percent"]
        names["cpu_percent"] = (f"{name} ({cores:g} cores)", colour, dash)
    return _usage_figure(system_rows, dataclasses.replace(UTILISATION, series=names), steps_per_epoch, view, title,
                         height)


def memory_figure(system_rows: Sequence[dict], steps_per_epoch: int | None = None, height: int = 400,
                  title: str | None = "Memory", view: CurveView = DEFAULT_VIEW) -> go.Figure:
    """From the system rows: GPU memory (what the run's allocator holds, and the card's
    total) and the run's resident RAM, in GiB."""
    return _usage_figure(system_rows, MEMORY, steps_per_epoch, view, title, height)
