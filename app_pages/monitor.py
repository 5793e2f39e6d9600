"""Monitor: one run's state, progress, ETA, speed, memory and live curves, with stop and
resume. The run is kept in the URL (``?run=<id>``), so a link or a reload lands on it;
launching from the Train page comes here. This page picks the run and switches live
refresh; the run's panel is app_pages/monitor_panel.py, its charts app_pages/monitor_charts.py."""

from __future__ import annotations

import streamlit as st

from app_pages import common, monitor_panel, run_annotations
from app_pages.monitor_charts import REFRESH_S
from resnet_core import runs
from resnet_core.dashboard import run_filters


def _run_ids(all_runs: list[runs.RunInfo], pending: dict | None) -> list[str]:
    """The runs to pick from, newest first, after the folders whose trainer is still starting
    (no record yet: launched here, from another tab or before a reload)."""
    ids = [r.run_id for r in all_runs]
    starting = [i for i in runs.starting_run_ids(common.runs_dir()) if i not in ids]
    if pending and pending["run_id"] not in ids + starting and (common.runs_dir() / pending["run_id"]).is_dir():
        starting.insert(0, pending["run_id"])
    return starting + ids


def picker_key(run_id: str, state: str) -> str:
    """The run selector's key. A keyed selectbox keeps its identity when only its option
    labels change, and the browser then keeps showing the label it first drew (the
    widget's value is that label), so "<run> · starting" stayed up while the run trained.
    The shown run's state in the key makes a new selector whenever that label changes."""
    return f"mon_pick_{run_id}_{state}"


def render() -> None:
    """The run picker (the run in the URL, else the active one, else the newest; a run in the
    URL that is not there is reported, never replaced), the live refresh switch, and the
    panel of the chosen run."""
    all_runs = runs.list_runs(common.runs_dir())
    pending = st.session_state.get("train_pending")
    ids = _run_ids(all_runs, pending)
    if not ids:
        st.info("No runs yet: launch one on the Train page. Runs started from a terminal "
                "(`python -m resnet_core.train`) show up here too.", icon=":material/info:")
        st.page_link(common.TRAIN, label="Configure and launch a run", icon=":material/rocket_launch:")
        return
    by_id = {r.run_id: r for r in all_runs}

    def title(i: str) -> str:
        return common.run_title(by_id[i], monitor_panel.shown_state(by_id[i])) if i in by_id else f"{i} · starting"

    wanted = common.run_in_url(ids, title)  # a folder whose trainer never started is a listed run
    if wanted is None:
        active = [r.run_id for r in all_runs if r.is_active]
        wanted = active[0] if active else ids[0]
    state = monitor_panel.shown_state(by_id[wanted]) if wanted in by_id else "starting"
    sel_col, live_col = st.columns([3, 1], vertical_alignment="bottom")
    with sel_col:
        chosen = st.selectbox("Run", ids, index=ids.index(wanted), key=picker_key(wanted, state), format_func=title)
    with live_col:
        live = st.toggle("Live refresh", value=True, key="mon_live",
                         help="Turn off to zoom into the charts: each refresh redraws them.")
    common.set_query("run", chosen)
    info = by_id.get(chosen)
    if info is not None:
        common.lazy_expander("Name, tags and note", "mon_notes", icon=":material/label:",
                             draw=lambda: run_annotations.editor(info, run_filters.tag_options(all_runs), "mon"))
    # A trainer we just started (launch or resume) counts as live until it exits, and so
    # does a folder whose trainer is still starting (its panel says when it failed to).
    launching = bool(pending and pending["run_id"] == chosen and runs.trainer_alive(pending))
    active = (info is not None and info.is_active) or launching or info is None
    st.fragment(monitor_panel.panel, run_every=REFRESH_S if (live and active) else None)(common.runs_dir() / chosen)


st.title("Monitor")
msg = st.session_state.pop("monitor_msg", None)
if msg:
    st.success(msg, icon=":material/rocket_launch:")
render()
