"""The Train page's run monitor: pick a run and watch it (state, progress, ETA, speed,
memory and live curves), with stop and resume. Functions only: the page
(app_pages/train.py) calls :func:`render`."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from app_pages import common
from resnet_core import runs
from resnet_core import formatting
from resnet_core.evaluation_labels import EvaluationLabels, evaluation_labels
from resnet_core.dashboard import curve_axes, launcher, live_curves, monitor, usage_figures
from resnet_core.system import process_memory_mb

# A live Monitor redraws its charts on every refresh. Measured in headless Chromium with a
# CPU run writing a step row every second (30 s each, six charts drawn): every 1 s, a row reached the loss
# chart 0.54 s after its write (median; at most 1.02 s) and the tab used 0.44 of a core;
# every 1.5 s, 0.79 s (at most 1.45 s) and 0.30 of a core; every 2 s, 1.04 s (at most
# 1.89 s, too near the 2 s the charts may lag) and 0.25.
REFRESH_S = 1.5
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
    ours = pending if monitor.launched_here(pending, run_dir.name) else {}
    pid = ours.get("pid")
    state = launcher.folder_state(run_dir, pid, ours.get("pid_start"))
    if state == "starting" or (pid and time.time() - pending["t"] < 3):
        st.info("Starting the trainer…", icon=":material/hourglass_top:")
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
    return pending, monitor.launched_here(pending, info.run_id) and runs.trainer_alive(pending)


def _state(info: runs.RunInfo) -> str:
    """The state to show (monitor.shown_state): "resuming…" from a click on Resume until the
    trainer writes."""
    pending, alive = _pending_alive(info)
    return monitor.shown_state(info.state, info.run_id, pending, alive=alive)


def _header(info: runs.RunInfo, hist: monitor.MetricsHistory, state: str) -> None:
    """The run's name and settings, its state badge, stop or resume, and a link to Analyze."""
    head_l, head_r = st.columns([3, 2], vertical_alignment="center")
    with head_l:
        st.markdown(f"#### {formatting.md_escape(info.run_id)}")
        st.caption(monitor.run_caption(info))
    with head_r:
        b1, b2, b3 = st.columns([1, 1, 1.2], vertical_alignment="center")
        with b1:
            common.state_badge(state)
        with b2:
            remote = runs.remote_host(info.status)
            if state == monitor.RESUMING:
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
    if monitor.resume_refused(info.status, info.run_id, *_pending_alive(info)):
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

    if state == monitor.RESUMING:
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


def _progress_bars(info: runs.RunInfo, prog: monitor.Progress) -> None:
    """The whole run's progress, and the epoch in progress or what the trainer does
    instead of training steps (loading, building, evaluating, saving)."""
    st.progress(min(1.0, prog.epoch_fraction),
                text=f"run: epoch {prog.epoch} of {prog.total_epochs} done ({100 * prog.epoch_fraction:.0f}%)")
    phase = monitor.phase_bar(prog)
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


def _metrics(info: runs.RunInfo, prog: monitor.Progress, labels: EvaluationLabels) -> None:
    """ETA, elapsed time, speed, memory and the two accuracy figures."""
    m = st.columns(6)
    m[0].metric("ETA", formatting.format_duration(prog.eta_s) if info.state == "running" else "—")
    m[1].metric("Elapsed", formatting.format_duration(prog.elapsed_s))
    first_step = f"first step {formatting.format_duration(prog.first_step_s)}" if prog.first_step_s else None
    m[2].metric("Images / s", f"{prog.images_per_s:,.0f}" if prog.images_per_s else "—", delta=first_step,
                delta_color="off", delta_arrow="off",
                help="Training speed of the latest steps. Under it: this session's first step, compiling "
                     "included, which would otherwise pass for a slow speed." if first_step else None)
    live_rss = process_memory_mb(info.status.get("pid")) if info.is_active else None
    device_kind = str(info.resolved.get("device") or "")
    mem_label = "GPU memory (peak)" if device_kind.startswith(("cuda", "mps")) else "Memory (peak RSS)"
    mem = prog.peak_memory_mb if prog.peak_memory_mb is not None else live_rss
    m[3].metric(mem_label, f"{mem:,.0f} MB" if mem else "—",
                help=(f"trainer process now: {live_rss:,.0f} MB resident" if live_rss else None))
    best, test = monitor.accuracy_metrics(labels, prog)
    m[4].metric(best.label, best.value, help=best.help)
    m[5].metric(test.label, test.value, help=test.help)
    st.caption(f"{best.help} {test.help}")


# The chart controls' defaults, given to the widgets themselves (their keys keep the user's
# choice across refreshes). Set through session state instead, on the Monitor of a live
# 200,000-row run they came back as the widgets' own first values (step, 0.00) within 2 s:
# the browser kept its own and sent them back (tests/test_browser_e2e.py).
CHART_DEFAULTS = {"mon_x_axis": "epoch", "mon_smoothing": 0.6, "mon_log_loss": False}


def _chart_view(hist: monitor.MetricsHistory) -> curve_axes.CurveView:
    """The x axis, smoothing and log-scale controls above the curves."""
    c1, c2, c3 = st.columns([2, 3, 1.3], vertical_alignment="bottom")
    axes = list(curve_axes.LIVE_X_AXES)
    x_axis = c1.radio("x axis", axes, index=axes.index(CHART_DEFAULTS["mon_x_axis"]), horizontal=True,
                      key="mon_x_axis",
                      help="wall time: minutes since the run's first logged row (a resume's pause included)")
    smoothing = c2.slider("Smoothing", 0.0, 0.99, value=CHART_DEFAULTS["mon_smoothing"], step=0.01,
                          key="mon_smoothing", help="TensorBoard's exponential moving average of the step rows, "
                                                    "debiased at the start; the raw series stays faint behind it. "
                                                    "0: off.")
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


def _system_charts(hist: monitor.MetricsHistory, spe: int | None, view: curve_axes.CurveView) -> None:
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


def _charts(info: runs.RunInfo, hist: monitor.MetricsHistory, spe: int | None,
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
    hist = monitor.shared_history(run_dir)
    with hist.lock:  # other sessions (tabs) may update it meanwhile
        hist.update()
        prog = monitor.compute_progress(info, hist)
        labels = evaluation_labels(info.config)
        state = _state(info)
        _header(info, hist, state)
        _messages(info, state)
        _progress_bars(info, prog)
        _metrics(info, prog, labels)
        _charts(info, hist, prog.steps_per_epoch or None, labels)
    _rerun_if_state_changed(info.run_id, state)


def _run_ids(all_runs: list[runs.RunInfo], pending: dict | None) -> list[str]:
    """The runs to pick from, newest first, with a just-launched run whose folder has no
    config.json yet."""
    ids = [r.run_id for r in all_runs]
    if pending and pending["run_id"] not in ids and (common.runs_dir() / pending["run_id"]).is_dir():
        ids.insert(0, pending["run_id"])
    return ids


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
        return common.run_title(by_id[i], _state(by_id[i])) if i in by_id else f"{i} · starting"

    wanted = common.run_in_url(ids, title)  # a folder whose trainer never started is a listed run
    if wanted is None:
        active = [r.run_id for r in all_runs if r.is_active]
        wanted = active[0] if active else ids[0]
    state = _state(by_id[wanted]) if wanted in by_id else "starting"
    sel_col, live_col = st.columns([3, 1], vertical_alignment="bottom")
    with sel_col:
        chosen = st.selectbox("Run", ids, index=ids.index(wanted), key=picker_key(wanted, state), format_func=title)
    with live_col:
        live = st.toggle("Live refresh", value=True, key="mon_live",
                         help="Turn off to zoom into the charts: each refresh redraws them.")
    common.set_query("run", chosen)
    info = by_id.get(chosen)
    # A trainer we just started (launch or resume) counts as live until it exits.
    launching = bool(pending and pending["run_id"] == chosen and runs.trainer_alive(pending))
    active = (info is not None and info.is_active) or launching
    st.fragment(panel, run_every=REFRESH_S if (live and active) else None)(common.runs_dir() / chosen)
