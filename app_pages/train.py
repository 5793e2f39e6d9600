"""Train: configure a run (with a live model summary) and launch it as its own process;
launching opens the new run on the Monitor page. A sweep (a grid of runs, some fields
varied) starts from the same form (app_pages/sweep_form.py) and shows its progress here
(app_pages/sweep_panel.py). The form lives in app_pages/train_form.py."""

from __future__ import annotations

import streamlit as st

from app_pages import common, sweep_panel, train_form

st.title("Train")
train_form.render()
sweep_panel.render()
st.page_link(common.MONITOR, label="Watch a run on the Monitor page", icon=":material/monitoring:")
