"""Train: configure a run (with a live model summary), launch it as its own process, and
watch it: state, progress, ETA, speed, memory and live curves, with stop and resume."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import streamlit as st

from app_pages import common
from resnet_core import data, figures, launcher, monitor, runs
from resnet_core.config import make_plan
from resnet_core.models import BLOCKS, SHORTCUTS, default_shortcut, describe_model, valid_depths
from resnet_core.schedule import SCHEDULES
from resnet_core.system import process_memory_mb

REFRESH_S = 1.0
DEFAULTS = launcher.TrainForm()
K = "tf_"  # session_state prefix of the form's widgets
SHORTCUT_HELP = {
    "A": "A: identity, zero-padded where the width grows (no parameters; the default for basic blocks, "
         "as in the paper's CIFAR networks)",
    "B": "B: 1x1 projection where the shape changes, identity elsewhere (the default for bottleneck blocks, "
         "as in the Identity Mappings paper's code)",
    "C": "C: 1x1 projection on every block",
}
SHORTCUT_DEFAULT_NOTE = "Changing the block type picks its default; any option can be chosen for either."
SCHEDULE_HELP = {"multistep": "multistep (lr ÷10 at 50% and 75%)", "cosine": "cosine", "onecycle": "one-cycle"}
SWITCH_LABELS = {"auto": "auto (where it helps)", "on": "on", "off": "off"}


def _init_form() -> None:
    for name, value in asdict(DEFAULTS).items():
        st.session_state.setdefault(K + name, value)
    # lr and weight decay are typed as text, so that "1e-4" works.
    for name in ("lr", "weight_decay", "momentum"):
        if not isinstance(st.session_state[K + name], str):
            st.session_state[K + name] = f"{st.session_state[K + name]:g}"


def _nearest_depth(block: str, depth: int) -> int:
    options = valid_depths(block, launcher.MAX_DEPTH)
    preferred = {"basic": 20, "bottleneck": 164}
    if depth in options:
        return depth
    return preferred.get(block, options[0]) if depth in (20, 164) else min(options, key=lambda d: abs(d - depth))


def _on_block_change() -> None:
    block = st.session_state[K + "block"]
    st.session_state[K + "depth"] = _nearest_depth(block, int(st.session_state[K + "depth"]))
    st.session_state[K + "shortcut"] = default_shortcut(block)


def _on_preset_change() -> None:
    if st.session_state[K + "preset_paper"]:
        recipe = launcher.TrainForm().with_paper_recipe()
        for name in launcher.PRESET_FIELDS:
            value = getattr(recipe, name)
            st.session_state[K + name] = f"{value:g}" if name in ("lr", "weight_decay", "momentum") else value


def _form_values() -> launcher.TrainForm:
    values = {name: st.session_state.get(K + name, getattr(DEFAULTS, name)) for name in launcher.TrainForm.field_names()}
    return launcher.TrainForm(**values)


def _on_launch() -> None:
    """Validate and start the trainer (a button callback: runs before the page draws)."""
    form = _form_values()
    errors = launcher.validate(form, devices=common.system_info().device_choices(),
                               data_present=data.dataset_present(common.data_dir()))
    st.session_state["train_attempted"] = True
    if errors:
        st.session_state["train_launch_msg"] = ("error", "Not launched: fix the fields marked in red.")
        return
    try:
        launched = launcher.launch(form, data_dir=common.data_dir(), runs_dir=common.runs_dir())
    except Exception as e:  # e.g. the runs folder is not writable
        st.session_state["train_launch_msg"] = ("error", f"Could not start the trainer: {e}")
        return
    st.session_state["train_pending"] = {"run_id": launched.run_dir.name, "pid": launched.pid,
                                         "pid_start": launched.pid_start, "t": time.time()}
    st.session_state["train_launch_msg"] = ("success", f"Launched {launched.run_dir.name} (pid {launched.pid}).")
    st.query_params["run"] = launched.run_dir.name


# ----------------------------------------------------------------------------- the form

_init_form()
st.title("Train")
form_col, summary_col = st.columns([3, 2], gap="large")
values = _form_values()
errors = launcher.validate(values, devices=common.system_info().device_choices(),
                           data_present=data.dataset_present(common.data_dir()))
preset = bool(st.session_state[K + "preset_paper"])

with form_col:
    st.toggle("Paper preset (He et al. 2016)", key=K + "preset_paper", persist_state="session", on_change=_on_preset_change,
              help="Fills in the paper's recipe and hands it to the trainer as --preset paper. "
                   "ResNet-110 and deeper start with 400 iterations at lr 0.01, as in the paper.")
    if preset:
        st.caption("All 50,000 training images, batch 128, lr 0.1 divided by 10 at 32k and 48k iterations, "
                   f"exactly 64k iterations ({launcher.paper_epochs()} epochs, the last one cut short), weight "
                   "decay 1e-4, momentum 0.9, no validation split: the final weights are the result, and the "
                   "test set is evaluated every epoch for monitoring only (the paper's Figure 6). lr 0.01 for "
                   "the first 400 iterations from ResNet-110 on.")
    c1, c2, c3 = st.columns(3)
    with c1:
        st.segmented_control("Block type", BLOCKS, key=K + "block", persist_state="session", required=True, on_change=_on_block_change,
                             help="basic: two 3x3 convolutions (depth 6n+2); bottleneck: 1x1-3x3-1x1 (depth 9n+2)")
        common.field_error(errors, "block")
    with c2:
        block = st.session_state[K + "block"] or DEFAULTS.block
        depth_options = valid_depths(block, launcher.MAX_DEPTH)
        if st.session_state[K + "depth"] not in depth_options:
            st.session_state[K + "depth"] = _nearest_depth(block, int(st.session_state[K + "depth"]))
        st.selectbox("Depth", depth_options, key=K + "depth", persist_state="session", format_func=lambda d: f"ResNet-{d}",
                     help="only the depths this block type allows: 6n+2 for basic, 9n+2 for bottleneck blocks")
        common.field_error(errors, "depth")
    with c3:
        st.segmented_control("Shortcut", SHORTCUTS, key=K + "shortcut", persist_state="session", required=True,
                             help="  \n".join([*SHORTCUT_HELP.values(), SHORTCUT_DEFAULT_NOTE]))
        common.field_error(errors, "shortcut")

    c1, c2, c3 = st.columns(3)
    with c1:
        st.number_input("Epochs", min_value=None, step=1, key=K + "epochs", persist_state="session", disabled=preset,
                        help="the paper preset turns 64k iterations into epochs")
        common.field_error(errors, "epochs")
    with c2:
        st.number_input("Batch size", step=1, key=K + "batch_size", persist_state="session", disabled=preset)
        common.field_error(errors, "batch_size")
    with c3:
        st.text_input("Learning rate", key=K + "lr", persist_state="session", disabled=preset, help="e.g. 0.1 or 5e-2")
        common.field_error(errors, "lr")

    c1, c2, c3 = st.columns(3)
    with c1:
        st.selectbox("Schedule", SCHEDULES, key=K + "schedule", persist_state="session", disabled=preset, format_func=SCHEDULE_HELP.get)
        common.field_error(errors, "schedule")
    with c2:
        st.text_input("Weight decay", key=K + "weight_decay", persist_state="session", disabled=preset, help="e.g. 1e-4")
        common.field_error(errors, "weight_decay")
    with c3:
        st.text_input("Momentum", key=K + "momentum", persist_state="session", disabled=preset)
        common.field_error(errors, "momentum")

    c1, c2, c3 = st.columns(3)
    with c1:
        st.number_input("Warm-up epochs", min_value=None, step=1.0, key=K + "warmup_epochs", persist_state="session", disabled=preset,
                        format="%.2f", help="linear lr ramp from 0 over these epochs")
        common.field_error(errors, "warmup_epochs")
    with c2:
        st.number_input("Validation size", step=500, key=K + "val_size", persist_state="session", disabled=preset,
                        help="images carved from the 50,000 training images to choose best.pt (the paper chose "
                             "its schedule on 5,000); 0: no validation split, and the test set is evaluated "
                             "every epoch for monitoring only")
        common.field_error(errors, "val_size")
    with c3:
        st.number_input("Subset", step=500, key=K + "subset", persist_state="session", disabled=preset,
                        help="train on the first N images of the training split; 0 = all")
        common.field_error(errors, "subset")

    c1, c2, c3 = st.columns(3)
    with c1:
        st.selectbox("Device", common.system_info().device_choices(), key=K + "device", persist_state="session",
                     help="auto: CUDA, then MPS, then the CPU")
        common.field_error(errors, "device")
    with c2:
        st.selectbox("Precision", launcher.PRECISIONS, key=K + "precision", persist_state="session",
                     help="auto: bf16 where the device computes it natively, fp16 on other GPUs, else fp32")
        common.field_error(errors, "precision")
    with c3:
        st.selectbox("Channels-last", launcher.SWITCHES, key=K + "channels_last", persist_state="session",
                     format_func=SWITCH_LABELS.get)
        common.field_error(errors, "channels_last")

    c1, c2, c3 = st.columns(3)
    with c1:
        st.number_input("Seed", step=1, key=K + "seed", persist_state="session")
        common.field_error(errors, "seed")
    with c2:
        st.text_input("Run name", key=K + "name", persist_state="session", max_chars=200, placeholder="optional, e.g. r20-baseline")
        common.field_error(errors, "name")
        typed = st.session_state[K + "name"]
        if typed and launcher.TrainForm(name=typed).run_name not in ("", typed):
            st.caption(f"saved as `{launcher.TrainForm(name=typed).run_name}`")
    with c3:
        st.selectbox("torch.compile", launcher.SWITCHES, key=K + "compile", persist_state="session",
                     format_func=SWITCH_LABELS.get,
                     help="auto: on for CUDA GPUs. On a CPU it speeds steps up about 10% after a first compile "
                          "of a minute or so: worth it for long runs only.")
        common.field_error(errors, "compile")

    common.field_error(errors, "data")
    st.button("Launch training", type="primary", icon=":material/rocket_launch:", on_click=_on_launch,
              key="train_launch")
    msg = st.session_state.pop("train_launch_msg", None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])

with summary_col:
    with st.container(border=True):
        st.markdown("**Model summary**")
        if "depth" in errors or "block" in errors or "shortcut" in errors:
            st.caption("Pick a valid depth to see the model.")
        else:
            with st.spinner("counting…"):
                summary = describe_model(int(values.depth), values.block, values.shortcut)
            st.markdown(f"### {summary.name}")
            st.caption(f"{values.block} blocks · shortcut option {values.shortcut}")
            m1, m2, m3 = st.columns(3)
            m1.metric("Parameters", monitor.format_count(summary.params), help=f"{summary.params:,}")
            m2.metric("MACs / image", monitor.format_count(summary.macs), help=f"{summary.macs:,} multiply-accumulates")
            if summary.paper_error is not None:
                m3.metric("Paper error", f"{summary.paper_error:.2f}%",
                          help=f"CIFAR-10 test error, {summary.paper_source}")
                st.caption(f"Paper: CIFAR-10 test error {summary.paper_text}, {summary.paper_source}.")
            else:
                m3.metric("Paper error", "—", help=summary.paper_text)
                st.caption(f"Paper error: {summary.paper_text}.")
        if not set(errors) - {"data", "device"}:  # the trainer's own resolution of this form
            cfg = launcher.form_config(values)
            st.caption(make_plan(cfg, launcher.CIFAR_TRAIN_SIZE).describe())
    system = common.system_info()
    st.caption(f"Device: {system.primary.summary()}")
    busy = [r for r in runs.list_runs(common.runs_dir()) if r.is_active]
    if busy:
        st.info(f"{len(busy)} run(s) active: a run on the same device waits in the queue (state "
                f"`queued`) until the device is free.", icon=":material/hourglass_empty:")


# ----------------------------------------------------------------------------- the monitor

def _history(run_dir: Path) -> monitor.MetricsHistory:
    key = f"hist::{run_dir.resolve()}"
    hist = st.session_state.get(key)
    if hist is None:
        hist = st.session_state[key] = monitor.MetricsHistory(run_dir)
    return hist


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


def _charts(hist: monitor.MetricsHistory, spe: int | None, labels: monitor.EvaluationLabels) -> None:
    c1, c2, c3 = st.columns(3)
    c1.plotly_chart(figures.loss_figure(hist.step_rows, hist.epoch_rows, spe, labels=labels), key="live_loss",
                    config={"displaylogo": False})
    c2.plotly_chart(figures.accuracy_figure(hist.step_rows, hist.epoch_rows, spe, hist.test_rows, labels=labels),
                    key="live_acc", config={"displaylogo": False})
    c3.plotly_chart(figures.lr_figure(hist.step_rows, hist.epoch_rows, spe), key="live_lr",
                    config={"displaylogo": False})


def _panel(run_dir: Path) -> None:
    """The monitor of one run; redrawn every REFRESH_S seconds while live."""
    if st.session_state.pop("mon_full_rerun", False):
        st.rerun()
    pending = st.session_state.get("train_pending")
    info = runs.read_run(run_dir)
    if info is None:
        ours = pending if pending and pending.get("run_id") == run_dir.name else {}
        pid = ours.get("pid")
        state = launcher.folder_state(run_dir, pid, ours.get("pid_start"))
        if state == "starting" or (pid and time.time() - pending["t"] < 3):
            st.info("Starting the trainer…", icon=":material/hourglass_top:")
        else:
            st.error("The trainer exited before it started the run.", icon=":material/error:")
            tail = launcher.log_tail(run_dir)
            st.code(tail or "(no output)", language=None)
        st.session_state[f"mon_state::{run_dir.name}"] = "starting"
        return

    if info.problem is not None:
        st.markdown(f"#### {monitor.md_escape(info.run_id)}")
        common.state_badge(info.state)
        st.error(f"This run folder cannot be read: {monitor.md_escape(info.problem)}", icon=":material/broken_image:")
        with st.expander("Log tail"):
            st.code(launcher.log_tail(run_dir, 40) or "(empty log)", language=None, height=320)
        st.session_state[f"mon_state::{run_dir.name}"] = info.state
        return

    hist = _history(run_dir)
    hist.update()
    cfg = info.config.get("config") or {}
    resolved = info.config.get("resolved") or {}
    prog = monitor.compute_progress(info, hist)
    labels = monitor.evaluation_labels(info.config)

    head_l, head_r = st.columns([3, 2], vertical_alignment="center")
    with head_l:
        st.markdown(f"#### {monitor.md_escape(info.run_id)}")
        st.caption(monitor.run_caption(info))
    with head_r:
        b1, b2, b3 = st.columns([1, 1, 1.2], vertical_alignment="center")
        with b1:
            common.state_badge(info.state)
        with b2:
            if info.is_active:
                st.button("Stop", icon=":material/stop:", key="mon_stop", on_click=_stop, args=(info,),
                          help="SIGTERM: the trainer finishes its step, saves last.pt and stops")
            elif info.state in runs.RESUMABLE_STATES and info.note is None:
                st.button("Resume", icon=":material/play_arrow:", key="mon_resume", on_click=_resume,
                          args=(run_dir,), disabled=not info.can_resume,
                          help="continue from last.pt in the same folder" if info.can_resume
                          else "no last.pt was saved: nothing to resume from")
        with b3:
            st.page_link(common.ANALYZE, label="Analyze", icon=":material/grid_on:",
                         query_params={"run": info.run_id}, disabled=not hist.epoch_rows)

    msg = st.session_state.pop("monitor_msg", None)
    if msg:
        st.error(monitor.md_escape(msg))
    if info.note:
        st.info(info.note, icon=":material/lock:")
    note = st.session_state.pop("monitor_note", None)
    if note:
        st.toast(note, icon=":material/info:")

    if info.state == "queued":
        st.info(f"Waiting for the device ({monitor.md_escape(resolved.get('device') or cfg.get('device'))}): "
                f"another run holds it. "
                f"This run starts when that one ends.", icon=":material/hourglass_empty:")
    elif info.state == runs.CRASHED:
        st.error("The trainer process is gone (killed, or out of memory) without saying why. "
                 + ("Resume continues from the last saved checkpoint." if info.can_resume
                    else "" if info.note else "It saved no checkpoint yet, so launch it again."),
                 icon=":material/dangerous:")
    elif info.state in ("failed", "diverged"):
        st.error(f"{info.state}: {monitor.md_escape(info.status.get('error') or 'no message')}",
                 icon=":material/error:")
    if info.state in ("failed", "diverged", runs.CRASHED):
        with st.expander("Log tail", expanded=info.state != "diverged"):
            st.code(launcher.log_tail(run_dir, 40) or "(empty log)", language=None, height=320)

    total_e = max(prog.total_epochs, 1)
    st.progress(min(1.0, prog.epoch_fraction),
                text=f"run: epoch {prog.epoch} of {prog.total_epochs} done ({100 * prog.epoch_fraction:.0f}%)")
    if info.state == "completed":
        step_text = "all epochs done"
        step_value = 1.0
    elif info.state == "queued" or (info.is_active and not prog.steps_per_epoch):
        step_text = "waiting for the device" if info.state == "queued" else "loading data…"
        step_value = 0.0
    else:
        current = min(prog.epoch + 1, total_e)
        step_text = f"epoch {current}: step {prog.step_in_epoch} of {prog.steps_per_epoch or '—'}"
        step_value = prog.step_fraction
    st.progress(min(1.0, step_value), text=step_text)

    m = st.columns(6)
    m[0].metric("ETA", monitor.format_duration(prog.eta_s) if info.state == "running" else "—")
    m[1].metric("Elapsed", monitor.format_duration(prog.elapsed_s))
    m[2].metric("Images / s", f"{prog.images_per_s:,.0f}" if prog.images_per_s else "—")
    live_rss = process_memory_mb(info.status.get("pid")) if info.is_active else None
    device_kind = str(resolved.get("device") or "")
    mem_label = "GPU memory (peak)" if device_kind.startswith(("cuda", "mps")) else "Memory (peak RSS)"
    mem = prog.peak_memory_mb if prog.peak_memory_mb is not None else live_rss
    m[3].metric(mem_label, f"{mem:,.0f} MB" if mem else "—",
                help=(f"trainer process now: {live_rss:,.0f} MB resident" if live_rss else None))
    best, test = monitor.accuracy_metrics(labels, prog)
    m[4].metric(best.label, best.value, help=best.help)
    m[5].metric(test.label, test.value, help=test.help)
    st.caption(f"{best.help} {test.help}")

    if hist.step_rows or hist.epoch_rows:
        _charts(hist, prog.steps_per_epoch or None, labels)
        st.caption(f"{len(hist.epoch_rows)} epochs, {len(hist.step_rows)} step rows"
                   + (f" · refreshed every {REFRESH_S:g} s" if info.is_active and st.session_state.get("mon_live")
                      else ""))
    elif info.is_active:
        st.caption("Curves appear after the first logged steps.")

    # A run that just ended (or started) changes the page around the panel: redraw it all.
    key = f"mon_state::{run_dir.name}"
    previous = st.session_state.get(key)
    st.session_state[key] = info.state
    if previous == "starting" or (previous is not None and previous != info.state
                                  and info.is_active != (previous in runs.ACTIVE_STATES)):
        st.rerun()


st.divider()
st.subheader("Run monitor")
all_runs = runs.list_runs(common.runs_dir())
ids = [r.run_id for r in all_runs]
pending = st.session_state.get("train_pending")
if pending and pending["run_id"] not in ids and (common.runs_dir() / pending["run_id"]).is_dir():
    ids.insert(0, pending["run_id"])
if not ids:
    st.info("No runs yet: fill in the form and launch one. Runs started from a terminal "
            "(`python -m resnet_core.train`) show up here too.", icon=":material/info:")
else:
    wanted = st.query_params.get("run")
    if wanted not in ids:
        active = [r.run_id for r in all_runs if r.is_active]
        wanted = active[0] if active else ids[0]
    by_id = {r.run_id: r for r in all_runs}
    sel_col, live_col = st.columns([3, 1], vertical_alignment="bottom")
    with sel_col:
        chosen = st.selectbox("Run", ids, index=ids.index(wanted), key=f"mon_pick_{wanted}",
                              format_func=lambda i: common.run_title(by_id[i]) if i in by_id else f"{i} · starting")
    with live_col:
        live = st.toggle("Live refresh", value=True, key="mon_live",
                         help="Turn off to zoom into the charts: each refresh redraws them.")
    common.set_query_run(chosen)
    run_dir = common.runs_dir() / chosen
    info = by_id.get(chosen)
    # A trainer we just started (launch or resume) counts as live until it exits.
    launching = bool(pending and pending["run_id"] == chosen and runs.trainer_alive(pending))
    active = (info is not None and info.is_active) or launching
    st.fragment(_panel, run_every=REFRESH_S if (live and active) else None)(run_dir)
