"""The Monitor page's panel of one run, redrawn every REFRESH_S seconds while live: its
name, settings and state badge, stop and resume, what its state means, progress bars,
ETA, speed, memory and accuracies, then its charts (app_pages/monitor_charts.py)."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from app_pages import common, monitor_charts
from resnet_core import runs
from resnet_core import formatting
from resnet_core.evaluation_labels import EvaluationLabels, evaluation_labels
from resnet_core.dashboard import launcher, metrics_cache, monitor_text, run_state
from resnet_core.dashboard.metrics_cache import MetricsHistory
from resnet_core.progress import Progress, compute_progress
from resnet_core.system import process_memory_mb

LOG_LINES = 40


def _stop(info: runs.RunInfo) -> None:
    if launcher.stop(info):
        st.session_state["monitor_note"] = "Stop requested: the trainer finishes its step, saves last.pt and stops."
    else:
        st.session_state["monitor_note"] = "That run is not running any more."


def _resume(run_dir: Path) -> None:
    try:
        launched = launcher.resume(run_dir)
    except ValueError as e:
        st.session_state["monitor_msg"] = str(e)
        return
    st.session_state["train_pending"] = {"run_id": run_dir.name, "pid": launched.pid,
                                         "pid_start": launched.pid_start, "t": time.time(), "resume": True}
    st.session_state["mon_full_rerun"] = True  # the page must switch live refresh back on
    st.session_state["monitor_note"] = f"Resuming {run_dir.name} (pid {launched.pid})."


def _log_tail(run_dir: Path) -> None:
    st.code(launcher.log_tail(run_dir, LOG_LINES) or "(empty log)", language=None, height=320)


def _starting(run_dir: Path) -> None:
    """A folder without config.json: the trainer is starting, or exited before it could."""
    pending = st.session_state.get("train_pending")
    ours = pending if run_state.launched_here(pending, run_dir.name) else {}
    pid = ours.get("pid")
    state = launcher.folder_state(run_dir, pid, ours.get("pid_start"))
    if state == "starting" or (pid and time.time() - pending["t"] < 3):
        st.info("Starting the trainer…", icon=":material/hourglass_top:")
        step = runs.starting_progress(run_dir)
        if step is not None:
            st.progress(step.done / step.total if step.total else 0.0,
                        text=formatting.md_escape(f"{step.doing}: {step.done:,} of {step.total:,} {step.unit}"))
    else:
        st.error("The trainer exited before it started the run.", icon=":material/error:")
        tail = launcher.log_tail(run_dir)
        st.code(tail or "(no output)", language=None)
    st.session_state[f"mon_state::{run_dir.name}"] = "starting"


def _unreadable(info: runs.RunInfo) -> None:
    st.markdown(f"#### {formatting.md_escape(info.run_id)}")
    common.state_badge(info.state)
    st.error(f"This run folder cannot be read: {formatting.md_escape(info.problem)}", icon=":material/broken_image:")
    with st.expander("Log tail"):
        _log_tail(info.path)
    st.session_state[f"mon_state::{info.run_id}"] = info.state


def _pending_alive(info: runs.RunInfo) -> tuple[dict | None, bool]:
    """The launch this session recorded (train_pending), and whether its trainer for this run still runs."""
    pending = st.session_state.get("train_pending")
    return pending, run_state.launched_here(pending, info.run_id) and runs.trainer_alive(pending)


def shown_state(info: runs.RunInfo) -> str:
    """The state to show (run_state.shown_state): "resuming…" from a click on Resume until the
    trainer writes."""
    pending, alive = _pending_alive(info)
    return run_state.shown_state(info.state, info.run_id, pending, alive=alive)


def _header(info: runs.RunInfo, hist: MetricsHistory, state: str) -> None:
    """The run's name and settings, its state badge, stop or resume, and a link to Analyze."""
    head_l, head_r = st.columns([3, 2], vertical_alignment="center")
    with head_l:
        st.markdown(f"#### {formatting.md_escape(info.title)}")
        st.caption(monitor_text.run_caption(info))
        notes = info.annotations
        if notes.tags or notes.note:  # markdown-escaped: a tag's '+' or a note's '*' shows as typed
            st.caption(" ".join(f":gray-badge[{formatting.md_escape(t)}]" for t in notes.tags)
                       + (" " if notes.tags and notes.note else "") + formatting.md_escape(notes.note))
    with head_r:
        b1, b2, b3 = st.columns([1, 1, 1.2], vertical_alignment="center")
        with b1:
            common.state_badge(state)
        with b2:
            remote = runs.remote_host(info.status)
            if state == run_state.RESUMING:
                pass  # no second Resume: the trainer is starting
            elif info.is_active:
                st.button("Stop", icon=":material/stop:", key="mon_stop", on_click=_stop, args=(info,),
                          disabled=remote is not None,
                          help=f"it runs on {remote}: stop it there (SIGTERM to its trainer or torchrun)" if remote
                          else "SIGTERM: the trainer finishes its step, saves last.pt and stops")
            elif info.state in runs.RESUMABLE_STATES and info.note is None:
                st.button("Resume", icon=":material/play_arrow:", key="mon_resume", on_click=_resume,
                          args=(info.path,), disabled=not info.can_resume,
                          help="continue from last.pt in the same folder" if info.can_resume
                          else "no last.pt was saved: nothing to resume from")
        with b3:
            st.page_link(common.ANALYZE, label="Analyze", icon=":material/grid_on:",
                         query_params={"run": info.run_id}, disabled=not hist.epoch_rows)


def _messages(info: runs.RunInfo, state: str) -> None:
    """What the last click said, the folder's note, and what the run's state means."""
    msg = st.session_state.pop("monitor_msg", None)
    if msg:
        st.error(formatting.md_escape(msg))
    if info.note:
        st.info(info.note, icon=":material/lock:")
    if run_state.resume_refused(info.status, info.run_id, *_pending_alive(info)):
        why = runs.last_output_line(info.path) or "it said nothing (see the log tail)"
        st.error(f"The resume ended before the trainer started: {formatting.md_escape(why)}",
                 icon=":material/error:")
    if info.state == runs.FAILED_TO_START:
        st.error(f"{info.state}: {formatting.md_escape(info.warning)}", icon=":material/cancel:")
    elif info.warning:
        st.warning(formatting.md_escape(info.warning), icon=":material/schedule:")
    note = st.session_state.pop("monitor_note", None)
    if note:
        st.toast(note, icon=":material/info:")

    if state == run_state.RESUMING:
        st.info("Resuming: the trainer is starting and loads last.pt.", icon=":material/hourglass_top:")
        return
    state = info.state_enum
    if state is runs.State.QUEUED:
        device = info.resolved.get("device") or info.train_config.get("device")
        st.info(f"Waiting for the device ({formatting.md_escape(device)}): another run holds it. "
                f"This run starts when that one ends.", icon=":material/hourglass_empty:")
    elif state is runs.State.CRASHED:
        last = runs.last_output_line(info.path)  # a traceback's last line where it raised outside the run
        st.error("The trainer process is gone (killed, or out of memory) without writing a final state"
                 + (f"; its last output: {formatting.md_escape(last)}. " if last else ". ")
                 + ("Resume continues from the last saved checkpoint." if info.can_resume
                    else "" if info.note else "It saved no checkpoint yet, so launch it again."),
                 icon=":material/dangerous:")
    elif state in (runs.State.FAILED, runs.State.DIVERGED):
        st.error(f"{info.state}: {formatting.md_escape(info.status.get('error') or 'no message')}",
                 icon=":material/error:")
    if state in (runs.State.FAILED, runs.State.DIVERGED, runs.State.CRASHED, runs.State.FAILED_TO_START):
        with st.expander("Log tail", expanded=state is not runs.State.DIVERGED):
            _log_tail(info.path)


def _progress_bars(info: runs.RunInfo, prog: Progress) -> None:
    """The whole run's progress, and the epoch in progress or what the trainer does
    instead of training steps (loading, building, evaluating, saving)."""
    st.progress(min(1.0, prog.epoch_fraction),
                text=f"run: epoch {prog.epoch} of {prog.total_epochs} done ({100 * prog.epoch_fraction:.0f}%)")
    phase = monitor_text.phase_bar(prog)
    if info.state == "completed":
        step_text = "all epochs done"
        step_value = 1.0
    elif phase is not None:
        step_text, step_value = phase
    elif info.state == "queued" or (info.is_active and not prog.steps_per_epoch):
        step_text = "waiting for the device" if info.state == "queued" else "loading data…"
        step_value = 0.0
    else:
        current = min(prog.epoch + 1, max(prog.total_epochs, 1))
        step_text = f"epoch {current}: step {prog.step_in_epoch} of {prog.steps_per_epoch or '—'}"
        step_value = prog.step_fraction
    st.progress(min(1.0, step_value), text=step_text)


def _metrics(info: runs.RunInfo, prog: Progress, labels: EvaluationLabels) -> None:
    """ETA, elapsed time, speed, memory and the two accuracy figures."""
    m = st.columns(6)
    m[0].metric("ETA", formatting.format_duration(prog.eta_s) if info.state == "running" else "—")
    m[1].metric("Elapsed", formatting.format_duration(prog.elapsed_s))
    first_step = f"first step {formatting.format_duration(prog.first_step_s)}" if prog.first_step_s else None
    m[2].metric("Images / s", f"{prog.images_per_s:,.0f}" if prog.images_per_s else "—", delta=first_step,
                delta_color="off", delta_arrow="off",
                help=monitor_text.speed_help(prog) if first_step else None)
    live_rss = process_memory_mb(info.status.get("pid")) if info.is_active else None
    device_kind = str(info.resolved.get("device") or "")
    mem_label = "GPU memory (peak)" if device_kind.startswith(("cuda", "mps")) else "Memory (peak RSS)"
    mem = prog.peak_memory_mb if prog.peak_memory_mb is not None else live_rss
    m[3].metric(mem_label, f"{mem:,.0f} MB" if mem else "—",
                help=(f"trainer process now: {live_rss:,.0f} MB resident" if live_rss else None))
    best, test = monitor_text.accuracy_metrics(labels, prog)
    m[4].metric(best.label, best.value, help=best.help)
    m[5].metric(test.label, test.value, help=test.help)
    st.caption(f"{best.help} {test.help}")

def _rerun_if_state_changed(run_id: str, state: str) -> None:
    """The run selector above this fragment names each run's state: when the state changes
    (starting, queued, running, completed...: a handful of times per run) redraw the whole
    page, so the selector never lags the badge and the page around the panel follows."""
    key = f"mon_state::{run_id}"
    previous = st.session_state.get(key)
    st.session_state[key] = state
    if previous is not None and previous != state:
        st.rerun()


def panel(run_dir: Path) -> None:
    """The monitor of one run; redrawn every REFRESH_S seconds while live."""
    if st.session_state.pop("mon_full_rerun", False):
        st.rerun()
    info = runs.read_run(run_dir)
    if info is None:
        _starting(run_dir)
        return
    if info.problem is not None:
        _unreadable(info)
        return
    hist = metrics_cache.shared_history(run_dir)
    with hist.lock:  # other sessions (tabs) may update it meanwhile
        hist.update()
        prog = compute_progress(info, hist)
        labels = evaluation_labels(info.config)
        state = shown_state(info)
        _header(info, hist, state)
        _messages(info, state)
        _progress_bars(info, prog)
        _metrics(info, prog, labels)
        monitor_charts.charts(info, hist, prog.steps_per_epoch or None, labels)
    _rerun_if_state_changed(info.run_id, state)

