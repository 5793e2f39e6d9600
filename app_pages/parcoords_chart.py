"""A Plotly parallel-coordinates figure whose brushed ranges reach the script: st.plotly_chart's
selection events cover points, boxes and lassos, not a parcoords axis's brush. The chart is
a Streamlit component (st.components.v2) whose script, parcoords_chart.js, draws the figure
with plotly.js (served by app.py, as for area_select_chart.py) and, when a brush ends
(plotly's plotly_restyle of dimensions[i].constraintrange), sends every axis's ranges:
{axis label: [lo, hi] or [[lo, hi], ...]}. The figure carries the ranges the script keeps
(resnet_core.dashboard.trial_brush.constrained), so a rerun draws them again."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import plotly.graph_objects as go

from app_pages.area_select_chart import plotly_component, plotly_js_url

CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["sendChartToCloud"]}

_chart = plotly_component("rs_parcoords_chart", Path(__file__).with_suffix(".js"))


def parcoords_chart(fig: go.Figure, key: str, on_brush: Callable[[], None]) -> None:
    """Draw fig (one parcoords trace). When a brush on an axis ends, on_brush runs with
    st.session_state[key].ranges = {axis label: constraintrange} of every axis brushed."""
    _chart(key=key, data={"figure": fig.to_json(), "config": CONFIG, "plotly_url": plotly_js_url()},
           on_ranges_change=on_brush)
