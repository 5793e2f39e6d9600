"""Train: configure a run (with a live model summary), launch it as its own process, and
watch it: state, progress, ETA, speed, memory and live curves, with stop and resume. A
sweep (a grid of runs, some fields varied) starts from the same form (app_pages/sweep_form.py)
and shows its progress above the monitor (app_pages/sweep_panel.py).

The form lives in app_pages/train_form.py, the monitor in app_pages/run_monitor.py; the
run the monitor shows is kept in the URL (``?run=<id>``)."""

from __future__ import annotations

import streamlit as st

from app_pages import run_monitor, sweep_panel, train_form

st.title("Train")
train_form.render()
sweep_panel.render()
st.divider()
st.subheader("Run monitor")
run_monitor.render()
