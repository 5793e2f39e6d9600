"""The Train page's form: configure a run (with a live model summary) and launch it as its
own process. Functions only: the page (app_pages/train.py) calls :func:`render`."""

from __future__ import annotations

import time
from dataclasses import asdict

import streamlit as st

from app_pages import caches, common, sweep_form, train_folder, train_summary
from app_pages.run_annotations import TAGS_HELP
from resnet_core import cifar, runs
from resnet_core.config import CIFAR10_TRAIN_IMAGES, PRECISIONS
from resnet_core.dashboard import launcher
from resnet_core.dashboard.folder_preview import FolderPreview
from resnet_core.dashboard.form import (MAX_DEPTH, PRESET_FIELDS, SWITCH_FIELDS, TrainForm, folder_train_size,
                                        paper_epochs, validate)
from resnet_core.model_names import shortcut_label
from resnet_core.runs import model_name
from resnet_core.model_names import BLOCKS, SHORTCUTS, default_shortcut, valid_depths
from resnet_core.schedule import SCHEDULES

DEFAULTS = TrainForm()
K = "tf_"  # session_state prefix of the form's widgets
TEXT_NUMBERS = ("lr", "weight_decay", "momentum")  # typed as text, so that "1e-4" works
SHORTCUT_HELP = {
    "A": "A: identity, zero-padded where the width grows (no parameters; the default for basic blocks, "
         "as in the paper's CIFAR networks)",
    "B": "B: 1x1 projection where the shape changes, identity elsewhere (the default for bottleneck blocks, "
         "as in the Identity Mappings paper's code)",
    "C": "C: 1x1 projection on every block",
    "none": "plain: no shortcut at all, the paper's plain networks (Figure 6), same parameters as A",
}
SHORTCUT_DEFAULT_NOTE = "Changing the block type picks its default; any option can be chosen for either."
SCHEDULE_HELP = {"multistep": "multistep (lr ÷10 at 50% and 75%)", "cosine": "cosine", "onecycle": "one-cycle"}
# The switches' selectbox options. The form holds None/True/False as the config does, but
# a selectbox whose value is None shows "Choose an option" (seen in Chromium), so the
# widgets hold these words and _form_values maps them back.
SWITCH_OPTIONS = {"auto": None, "on": True, "off": False}
SWITCH_LABELS = {"auto": "auto (where it helps)", "on": "on", "off": "off"}
PRESET_CAPTION = (
    "All {images:,} training images, batch 128, lr 0.1 divided by 10 at 32k and 48k iterations, "
    "exactly 64k iterations ({epochs:,} epochs, the last one cut short where they do not divide), weight "
    "decay 1e-4, momentum 0.9, no validation split: the final weights are the result, and the "
    "test set is evaluated every epoch for monitoring only (the paper's Figure 6). lr 0.01 for "
    "the first 400 iterations from ResNet-110 on.")


def _init_form() -> None:
    for name, value in asdict(DEFAULTS).items():
        if name in SWITCH_FIELDS:
            value = next(word for word, v in SWITCH_OPTIONS.items() if v is value)
        elif value is None:  # data_dir: its text input holds text
            value = ""
        if name != "preset":  # the toggle below stands for it
            st.session_state.setdefault(K + name, value)
    st.session_state.setdefault(K + "preset_paper", DEFAULTS.preset == "paper")
    for name in TEXT_NUMBERS:
        if not isinstance(st.session_state[K + name], str):
            st.session_state[K + name] = f"{st.session_state[K + name]:g}"


def _nearest_depth(block: str, depth: int) -> int:
    options = valid_depths(block, MAX_DEPTH)
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
        recipe = TrainForm().with_paper_recipe()
        for name in PRESET_FIELDS:
            value = getattr(recipe, name)
            st.session_state[K + name] = f"{value:g}" if name in TEXT_NUMBERS else value


def _form_values() -> TrainForm:
    values = {name: st.session_state.get(K + name, getattr(DEFAULTS, name))
              for name in TrainForm.field_names() if name != "preset"}
    for name in SWITCH_FIELDS:
        values[name] = SWITCH_OPTIONS.get(values[name], values[name])
    return TrainForm(**values, preset="paper" if st.session_state.get(K + "preset_paper") else "")


def _validate(form: TrainForm, folder: FolderPreview | None) -> dict[str, str]:
    system = caches.system_info()
    present = None if form.dataset == cifar.IMAGE_FOLDER else cifar.dataset_present(form.dataset, common.data_dir())
    return validate(form, devices=system.device_choices(), cuda_count=system.cuda_count, data_present=present,
                    folder=folder)


def _on_launch() -> None:
    """Validate and start the trainer (a button callback: runs before the page draws)."""
    form = _form_values()
    if _validate(form, train_folder.preview(form)):
        st.session_state["train_launch_msg"] = ("error", "Not launched: fix the fields marked in red.")
        return
    try:
        launched = launcher.launch(form, data_dir=common.data_dir(), runs_dir=common.runs_dir())
    except Exception as e:  # e.g. the runs folder is not writable
        st.session_state["train_launch_msg"] = ("error", f"Could not start the trainer: {e}")
        return
    st.session_state["train_pending"] = {"run_id": launched.run_dir.name, "pid": launched.pid,
                                         "pid_start": launched.pid_start, "t": time.time()}
    st.session_state["monitor_msg"] = f"Launched {launched.run_dir.name} (pid {launched.pid})."
    st.session_state["train_goto"] = launched.run_dir.name  # render() opens its monitor


def _field(column, errors: dict[str, str], name: str, widget, label: str, *args, **kwargs) -> None:
    """One widget of the form in its column, keyed by its field (its value kept for the
    session), with the field's error under it."""
    with column:
        widget(label, *args, key=K + name, persist_state="session", **kwargs)
        common.field_error(errors, name)


def _model_fields(errors: dict[str, str]) -> None:
    """Block type, depth (only the valid ones), shortcut option and the units' activation order."""
    c1, c2, c3 = st.columns(3)
    with c1:
        st.segmented_control("Block type", BLOCKS, key=K + "block", persist_state="session", required=True,
                             on_change=_on_block_change,
                             help="basic: two 3x3 convolutions (depth 6n+2); bottleneck: 1x1-3x3-1x1 (depth 9n+2)")
        common.field_error(errors, "block")
    with c2:
        block = st.session_state[K + "block"] or DEFAULTS.block
        depth_options = valid_depths(block, MAX_DEPTH)
        if st.session_state[K + "depth"] not in depth_options:
            st.session_state[K + "depth"] = _nearest_depth(block, int(st.session_state[K + "depth"]))
        shortcut, preact = st.session_state[K + "shortcut"], bool(st.session_state.get(K + "preact"))
        st.selectbox("Depth", depth_options, key=K + "depth", persist_state="session",
                     format_func=lambda d: model_name(d, shortcut, preact),
                     help="only the depths this block type allows: 6n+2 for basic, 9n+2 for bottleneck blocks")
        common.field_error(errors, "depth")
    with c3:
        st.segmented_control("Shortcut", SHORTCUTS, key=K + "shortcut", persist_state="session", required=True,
                             format_func=shortcut_label,
                             help="  \n".join([*SHORTCUT_HELP.values(), SHORTCUT_DEFAULT_NOTE]))
        common.field_error(errors, "shortcut")
    st.toggle("Pre-activation units", key=K + "preact", persist_state="session",
              help="BN -> ReLU -> conv in every residual unit and a final BN -> ReLU before the pooling (He et al. "
                   "2016, \"Identity Mappings in Deep Residual Networks\"); off: the original order")


def _recipe_fields(errors: dict[str, str], preset: bool) -> None:
    """Epochs, batch size and learning rate (the paper preset fills them in, and locks them)."""
    c1, c2, c3 = st.columns(3)
    _field(c1, errors, "epochs", st.number_input, "Epochs", min_value=None, step=1, disabled=preset,
           help="the paper preset turns 64k iterations into epochs")
    _field(c2, errors, "batch_size", st.number_input, "Batch size", step=1, disabled=preset)
    _field(c3, errors, "lr", st.text_input, "Learning rate", disabled=preset, help="e.g. 0.1 or 5e-2")


def _run_fields(errors: dict[str, str]) -> None:
    """Device, seed, run name, tags and note; with several CUDA GPUs, how many this run takes."""
    c1, c2, c3 = st.columns(3)
    _field(c1, errors, "device", st.selectbox, "Device", caches.system_info().device_choices(),
           help="auto: CUDA, then MPS, then the CPU")
    _field(c2, errors, "seed", st.number_input, "Seed", step=1)
    _field(c3, errors, "name", st.text_input, "Run name", max_chars=200, placeholder="optional, e.g. r20-baseline")
    with c3:
        typed = st.session_state[K + "name"]
        if typed and TrainForm(name=typed).run_name not in ("", typed):
            st.caption(f"saved as `{TrainForm(name=typed).run_name}`")
    c4, c5 = st.columns([1, 2])
    _field(c4, errors, "tags", st.text_input, "Tags", placeholder="optional, e.g. baseline, lr:0.1",
           help=f"comma-separated; {TAGS_HELP}")
    _field(c5, errors, "note", st.text_input, "Note", placeholder="optional: what this run tries")
    _gpus_fields(errors)


def _gpus_fields(errors: dict[str, str]) -> None:
    """With several CUDA GPUs: how many this run takes (torchrun, one process a GPU)."""
    gpus = caches.system_info().cuda_count
    if gpus < 2:
        return
    c1, c2, _ = st.columns(3)
    with c1:
        st.number_input("GPUs for this run", min_value=1, max_value=gpus, step=1, key=K + "gpus",
                        persist_state="session",
                        help="above 1 the run is launched with torchrun, one process a GPU (DDP): each takes an "
                             "equal share of every batch, so the batch size must divide by it")
        common.field_error(errors, "gpus")
    with c2:
        st.toggle("Sync BatchNorm", key=K + "sync_bn", persist_state="session",
                  disabled=st.session_state.get(K + "gpus", 1) < 2,
                  help="BatchNorm statistics over the whole batch rather than each GPU's share (SyncBatchNorm)")


def _schedule_fields(errors: dict[str, str], preset: bool) -> None:
    """Schedule, weight decay, momentum, warm-up, validation split, subset and label noise."""
    c1, c2, c3 = st.columns(3)
    _field(c1, errors, "schedule", st.selectbox, "Schedule", SCHEDULES, disabled=preset, format_func=SCHEDULE_HELP.get)
    _field(c2, errors, "weight_decay", st.text_input, "Weight decay", disabled=preset, help="e.g. 1e-4")
    _field(c3, errors, "momentum", st.text_input, "Momentum", disabled=preset)

    c1, c2, c3 = st.columns(3)
    _field(c1, errors, "warmup_epochs", st.number_input, "Warm-up epochs", min_value=None, step=1.0, disabled=preset,
           format="%.2f", help="linear lr ramp from 0 over these epochs")
    _field(c2, errors, "val_size", st.number_input, "Validation size", step=500, disabled=preset,
           help="images carved from the training images (CIFAR's 50,000) to choose best.pt (the paper chose its "
                "schedule on 5,000; an image folder left at 5,000 gets at most a tenth of its training images); 0: no "
                "validation split, and the test set is evaluated every epoch for monitoring only")
    _field(c3, errors, "subset", st.number_input, "Subset", step=500, disabled=preset,
           help="train on the first N images of the training split; 0 = all")

    c1, c2, _ = st.columns(3)
    _field(c1, errors, "label_noise", st.number_input, "Label noise", min_value=None, step=0.05, format="%.2f",
           help="fraction of the training labels flipped to a random other class before training, to see where "
                "wrong labels land in the forgetting counts and the data map; validation and test labels stay")
    _field(c2, errors, "label_noise_seed", st.number_input, "Label-noise seed", step=1,
           help="which labels are flipped and to what, independent of the seed")


def _speed_fields(errors: dict[str, str]) -> None:
    """Precision, channels-last and torch.compile."""
    c1, c2, c3 = st.columns(3)
    _field(c1, errors, "precision", st.selectbox, "Precision", PRECISIONS,
           help="auto: bf16 where the device computes it natively, fp16 on other GPUs, else fp32")
    _field(c2, errors, "channels_last", st.selectbox, "Channels-last", list(SWITCH_OPTIONS),
           format_func=SWITCH_LABELS.get)
    _field(c3, errors, "compile", st.selectbox, "torch.compile", list(SWITCH_OPTIONS), format_func=SWITCH_LABELS.get,
           help="auto: on for CUDA GPUs. On a CPU it speeds steps up about 10% after a first compile of a minute or "
                "so: worth it for long runs only.")


def _logging_fields(errors: dict[str, str]) -> None:
    """How often the trainer writes a step row: by count and by time, whichever comes first."""
    c1, c2, _ = st.columns(3)
    _field(c1, errors, "log_every", st.number_input, "Log every (steps)", step=1,
           help="a step row (a point of the loss curve) at least every this many steps")
    _field(c2, errors, "log_seconds", st.number_input, "Log seconds", step=0.5, min_value=None, format="%.1f",
           help="a step row at least every this many seconds, so the first point comes within seconds on a slow "
                "device; also the spacing of the system rows (CPU, GPU, memory: at least 2 s). 0: by steps only")


# The form fields _advanced_fields draws (its three helpers): an error in one opens the section.
ADVANCED_FIELDS = ("schedule", "weight_decay", "momentum", "warmup_epochs", "val_size", "subset", "label_noise",
                   "label_noise_seed", "precision", "channels_last", "compile", "log_every", "log_seconds")


# The fields a run seldom changes sit in a section drawn only while open; the model summary
# says their values. (Its label cannot: a keyed expander whose label changes is a new one, and
# closes.) Measured in headless Chromium, 200 runs, loads alternated (10 each) while a CPU run
# trained and another tab showed its live Monitor: with all of them drawn the Train page took
# 0.97 s to load (median), with them in this section 0.84 s; idle, 0.04 s less.
def _advanced_fields(errors: dict[str, str], preset: bool) -> None:
    """Schedule, regularisation, validation, precision and logging (open while a value in it is
    invalid: closed, its error would not show)."""
    def fields() -> None:
        _schedule_fields(errors, preset)
        _speed_fields(errors)
        _logging_fields(errors)

    if set(ADVANCED_FIELDS) & set(errors):
        st.session_state[K + "advanced_open"] = True
    common.lazy_expander("Advanced: schedule, weight decay, momentum, warm-up, validation, subset, label noise, "
                         "precision, "
                         "channels-last, compile, logging",
                         K + "advanced_open", fields, icon=":material/tune:")


def _fields(errors: dict[str, str], preset: bool, values: TrainForm, folder: FolderPreview | None) -> None:
    """The form's widgets, the launch button and the launch's outcome."""
    st.toggle("Paper preset (He et al. 2016)", key=K + "preset_paper", persist_state="session",
              on_change=_on_preset_change,
              help="Fills in the paper's recipe and hands it to the trainer as --preset paper. "
                   "ResNet-110 and deeper start with 400 iterations at lr 0.01, as in the paper.")
    if preset:
        images = (folder_train_size(values, folder)
                  if values.dataset == cifar.IMAGE_FOLDER and folder is not None and not folder.error
                  else CIFAR10_TRAIN_IMAGES)  # CIFAR-100's are as many
        st.caption(PRESET_CAPTION.format(images=images, epochs=paper_epochs(images)))
    st.segmented_control("Dataset", cifar.DATASET_CHOICES, key=K + "dataset", persist_state="session", required=True,
                         format_func=train_folder.dataset_label, help=train_folder.DATASET_HELP)
    common.field_error(errors, "dataset")
    if values.dataset == cifar.IMAGE_FOLDER:
        train_folder.fields(values, errors, folder, _field)
    _model_fields(errors)
    _recipe_fields(errors, preset)
    _run_fields(errors)
    _advanced_fields(errors, preset)
    common.field_error(errors, "data")
    st.button("Launch training", type="primary", icon=":material/rocket_launch:", on_click=_on_launch,
              key="train_launch")
    msg = st.session_state.pop("train_launch_msg", None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])
    sweep_form.render(values, bool(errors))


def _device_notes() -> None:
    st.caption(f"Device: {caches.system_info().primary.summary()}")
    busy = [r for r in runs.list_runs(common.runs_dir()) if r.is_active]
    if busy:
        st.info(f"{len(busy)} run(s) active: a run on the same device waits in the queue (state "
                f"`queued`) until the device is free.", icon=":material/hourglass_empty:")


def render() -> None:
    """The form (left) and the model summary (right); after a launch, the new run's monitor."""
    goto = st.session_state.pop("train_goto", None)
    if goto:
        st.switch_page(common.MONITOR, query_params={"run": goto})
    _init_form()
    form_col, summary_col = st.columns([3, 2], gap="large")
    values = _form_values()
    folder = train_folder.preview(values)
    errors = _validate(values, folder)
    preset = bool(st.session_state[K + "preset_paper"])
    with form_col:
        _fields(errors, preset, values, folder)
    with summary_col:
        train_summary.render(values, errors, folder)
        _device_notes()
