"""The Train page's sweeps: each sweep's progress (done, running, queued, failed), its ETA,
its failures, and one click to stop it all, resume it, or compare its runs. Functions
only: app_pages/train.py calls :func:`render`."""

from __future__ import annotations

import time

import streamlit as st

from app_pages import common, search_view
from resnet_core import runs
from resnet_core import formatting
from resnet_core.dashboard import launcher, links, search_form
from resnet_core.sweep_options import RECORD_OPTIONS

REFRESH_S = 2.0
STATE_COLOURS = {"running": "blue", "completed": "green", "failed": "red", "stopped": "orange", "crashed": "red",
                 "unreadable": "gray"}


def _stop(info: runs.SweepInfo) -> None:
    if launcher.stop_sweep(info):
        st.session_state["sweep_msg"] = ("success", f"Stopping sweep {info.name}: its runs save and stop.")
    else:
        st.session_state["sweep_msg"] = ("error", f"Sweep {info.name} is not running any more.")


def _resume(info: runs.SweepInfo) -> None:
    try:
        launched = launcher.resume_sweep(info.name, runs_dir=common.runs_dir())
    except (ValueError, OSError) as e:
        st.session_state["sweep_msg"] = ("error", f"Could not resume sweep {info.name}: {e}")
        return
    st.session_state["sweep_msg"] = ("success", f"Resumed sweep {info.name} (pid {launched.pid}).")
    st.session_state["sweep_launched_at"] = time.time()


def _failures(info: runs.SweepInfo) -> None:
    failed = [p for p in info.points if p.category == "failed"]
    if not failed:
        return
    with st.expander(f"{len(failed)} failed", icon=":material/error:"):
        for p in failed:
            values = ", ".join(f"{k}={v}" for k, v in p.values.items())
            st.markdown(f"**{formatting.md_escape(values)}** · {p.state}: {formatting.md_escape(p.error or '—')}")
            if p.run is not None:
                st.page_link(common.MONITOR, label=f"Open {p.run.run_id}", query_params={"run": p.run.run_id})


def _sweep_card(info: runs.SweepInfo) -> None:
    with st.container(border=True):
        title, badge, actions = st.columns([4, 1, 3], vertical_alignment="center")
        vary = search_form.space_text(info.vary, info.ranges)
        kind = f"{info.search['kind']} search of " if info.search else ""
        title.markdown(f"**{formatting.md_escape(info.name)}** · {kind}{info.budget} runs"
                       + (f" · {formatting.md_escape(vary)}" if vary else ""))
        with badge:
            st.badge(info.state, color=STATE_COLOURS.get(info.state, "gray"))
        if info.problem:  # an unreadable record: nothing to show but why
            st.caption(f"can't resume: {formatting.md_escape(info.problem)}")
            return
        with actions:
            b1, b2 = st.columns(2)
            if info.alive and info.state == "running":
                b1.button("Stop sweep", icon=":material/stop_circle:", key=f"sweep_stop_{info.name}",
                          on_click=_stop, args=(info,), help="every run of it saves its last.pt and stops")
            elif info.resume_problem is None:
                b1.button("Resume sweep", icon=":material/play_circle:", key=f"sweep_resume_{info.name}",
                          on_click=_resume, args=(info,),
                          help="completed runs are kept; stopped ones resume, failed-to-start and missing ones start")
            elif info.state != "completed":
                b1.caption(f"can't resume: {formatting.md_escape(info.resume_problem)}")
            if info.runs:
                b2.page_link(common.COMPARE, label="Compare", icon=":material/compare_arrows:",
                             query_params={"runs": links.join_ids([r.run_id for r in info.runs])})
        counts = info.counts
        pruned = sum(p.state == "pruned" for p in info.points)
        st.progress(counts["done"] / max(1, info.budget), text=f"{counts['done']} of {info.budget} done"
                    + (f" ({pruned} pruned)" if pruned else ""))
        eta = info.eta_s if info.alive else None
        st.caption(" · ".join([f"{counts['running']} running", f"{counts['queued']} queued",
                               f"{counts['pending']} not started", f"{counts['stopped']} stopped",
                               f"{counts['failed']} failed", f"at most {info.parallel} at once"]
                              + ([f"on Ray ({formatting.md_escape(str(info.record.get('address') or 'its own'))})"]
                                 if info.record.get("executor") == "ray" else [])
                              + ([f"about {formatting.format_duration(eta)} left"] if eta is not None else [])))
        _failures(info)
        if info.search:
            common.lazy_expander("Trials", f"sweep_trials_{info.name}", lambda: search_view.render(info),
                                 icon=":material/query_stats:")


def panel() -> None:
    msg = st.session_state.pop("sweep_msg", None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])
    for info in runs.list_sweeps(common.runs_dir(), RECORD_OPTIONS):
        _sweep_card(info)


def render() -> None:
    """Every sweep of the runs folder, refreshed while one runs (or was just launched)."""
    sweeps = runs.list_sweeps(common.runs_dir(), RECORD_OPTIONS)
    # A sweep just launched writes its record only once it has checked its grid on the data.
    just_launched = time.time() - st.session_state.get("sweep_launched_at", 0.0) < 30
    if not sweeps and not just_launched:
        return
    st.subheader("Sweeps")
    live = any(s.alive for s in sweeps) or just_launched
    st.fragment(panel, run_every=REFRESH_S if live else None)()
