"""Monitor: one run's state, progress, ETA, speed, memory and live curves, with stop and
resume. The run is kept in the URL (``?run=<id>``), so a link or a reload lands on it;
launching from the Train page comes here. The panel lives in app_pages/run_monitor.py."""

from __future__ import annotations

import streamlit as st

from app_pages import run_monitor

st.title("Monitor")
msg = st.session_state.pop("monitor_msg", None)
if msg:
    st.success(msg, icon=":material/rocket_launch:")
run_monitor.render()
