"""The Monitor page's live charts of one run: the x axis, smoothing and log-scale controls,
loss, accuracy and learning rate, and a section (drawn while open) of speed, utilisation
and memory over time. Each chart is built once for the rows read (MetricsHistory.memo)."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from resnet_core import runs
from resnet_core.evaluation_labels import EvaluationLabels
from resnet_core.dashboard import curve_axes, live_curves, usage_figures
from resnet_core.dashboard.metrics_cache import MetricsHistory

# A live Monitor redraws its charts on every refresh. Measured in headless Chromium with a
# CPU run writing a step row every second (30 s each, six charts drawn): every 1 s, a row reached the loss
# chart 0.54 s after its write (median; at most 1.02 s) and the tab used 0.44 of a core;
# every 1.5 s, 0.79 s (at most 1.45 s) and 0.30 of a core; every 2 s, 1.04 s (at most
# 1.89 s, too near the 2 s the charts may lag) and 0.25.
REFRESH_S = 1.5


# The chart controls' defaults, given to the widgets themselves (their keys keep the user's
# choice across refreshes). Set through session state instead, on the Monitor of a live
# 200,000-row run they came back as the widgets' own first values (step, 0.00) within 2 s:
# the browser kept its own and sent them back (tests/test_browser_e2e.py).
CHART_DEFAULTS = {"mon_x_axis": "epoch", "mon_smoothing": 0.6, "mon_log_loss": False}


def smoothing_slider(where, key: str, drawn: str) -> float:
    """The smoothing weight of step rows' series, on the Monitor and Compare alike (default
    CHART_DEFAULTS["mon_smoothing"]); drawn: what becomes of the raw series."""
    return where.slider("Smoothing", 0.0, 0.99, value=CHART_DEFAULTS["mon_smoothing"], step=0.01, key=key,
                        help=f"TensorBoard's exponential moving average of the step rows, debiased at the start; "
                             f"{drawn}. 0: off.")


def _chart_view(hist: MetricsHistory) -> curve_axes.CurveView:
    """The x axis, smoothing and log-scale controls above the curves."""
    c1, c2, c3 = st.columns([2, 3, 1.3], vertical_alignment="bottom")
    axes = list(curve_axes.LIVE_X_AXES)
    x_axis = c1.radio("x axis", axes, index=axes.index(CHART_DEFAULTS["mon_x_axis"]), horizontal=True,
                      key="mon_x_axis",
                      help="wall time: minutes since the run's first logged row (a resume's pause included)")
    smoothing = smoothing_slider(c2, "mon_smoothing", "the raw series stays faint behind it")
    log_y = c3.toggle("Log-scale loss", value=CHART_DEFAULTS["mon_log_loss"], key="mon_log_loss")
    start = curve_axes.start_time(hist.system_rows, hist.step_rows, hist.epoch_rows)
    return curve_axes.CurveView(x_axis=x_axis, smoothing=smoothing, log_y=log_y, start=start)


# The system charts' section is drawn only while open (closed at first; it stays as it is over
# refreshes and runs while the Monitor is shown): three Plotly charts fewer on each load and,
# live, on each refresh. Measured in headless Chromium, 200 runs, loads alternated with the
# charts always drawn: a Monitor load took 0.10 s less idle and 0.26 s less while a CPU run
# trained; a live tab used 0.26 of a core instead of 0.33. The latest images/s and memory stay
# in the metrics above the charts.
SYSTEM_SECTION = "mon_system_open"
CHART_CONFIG = {"displaylogo": False}  # plotly's toolbar, without its logo


def _system_charts(hist: MetricsHistory, spe: int | None, view: curve_axes.CurveView) -> None:
    """Images/s, and the device's utilisation and memory, over time."""
    c1, c2, c3 = st.columns(3)
    c1.plotly_chart(hist.memo(("speed", spe, view), lambda: live_curves.throughput_figure(
        hist.step_rows, hist.epoch_rows, spe, view=view)), key="live_speed", config=CHART_CONFIG)
    if hist.system_rows:
        c2.plotly_chart(hist.memo(("util", spe, view), lambda: usage_figures.utilisation_figure(
            hist.system_rows, spe, view=view)), key="live_util", config=CHART_CONFIG)
        c3.plotly_chart(hist.memo(("mem", spe, view), lambda: usage_figures.memory_figure(
            hist.system_rows, spe, view=view)), key="live_mem", config=CHART_CONFIG)
    else:
        c2.caption("Utilisation and memory: this run recorded no system rows (trainers before they existed).")


def charts(info: runs.RunInfo, hist: MetricsHistory, spe: int | None,
            labels: EvaluationLabels) -> None:
    """Loss, accuracy and learning rate, with their controls, once there are rows to draw; speed,
    utilisation and memory over time in a section drawn while open."""
    if not (hist.step_rows or hist.epoch_rows or hist.system_rows):
        if info.is_active:
            st.caption("Curves appear after the first logged steps.")
        return
    view = _chart_view(hist)
    # Built once for these rows (hist.memo): a completed run's charts are not rebuilt on each load.
    c1, c2, c3 = st.columns(3)
    c1.plotly_chart(hist.memo(("loss", spe, labels, view), lambda: live_curves.loss_figure(
        hist.step_rows, hist.epoch_rows, spe, labels=labels, view=view)), key="live_loss", config=CHART_CONFIG)
    c2.plotly_chart(hist.memo(("acc", spe, labels, view), lambda: live_curves.accuracy_figure(
        hist.step_rows, hist.epoch_rows, spe, hist.test_rows, labels=labels, view=view)),
        key="live_acc", config=CHART_CONFIG)
    c3.plotly_chart(hist.memo(("lr", spe, view), lambda: live_curves.lr_figure(
        hist.step_rows, hist.epoch_rows, spe, view=view)), key="live_lr", config=CHART_CONFIG)
    common.lazy_expander("Speed, utilisation and memory over time", SYSTEM_SECTION,
                         lambda: _system_charts(hist, spe, view), icon=":material/speed:")
    st.caption(f"{len(hist.epoch_rows)} epochs, {len(hist.step_rows):,} step rows, {len(hist.system_rows):,} "
               f"system rows" + (f" (drawn as at most {view.max_points:,} points per curve)"
                                 if len(hist.step_rows) > view.max_points else "")
               + (f" · refreshed every {REFRESH_S:g} s" if info.is_active and st.session_state.get("mon_live")
                  else ""))

