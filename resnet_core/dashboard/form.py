"""The Train page's form as data (no Streamlit here): its fields, made from the training
schema, their validation, and the config and command lines it turns into.

:class:`TrainForm` holds every :class:`~resnet_core.config.TrainConfig` field the page
shows, with the trainer's own defaults, plus the form's own choices (``gpus``): a field
added to the schema appears here without a second list. :func:`validate` says per field
what the trainer would refuse (its own checks, :mod:`resnet_core.config_checks`) and what
only a form can get wrong (text that is no number, a device this machine lacks);
:func:`trainer_args` and :func:`sweep_args` are the command lines that start it
(:mod:`resnet_core.dashboard.launcher` runs them).

An image folder run takes its ROOT from the form's ``data_dir`` (CIFAR runs take the
dashboard's data folder instead) and FOLDER_FIELDS from the form; a CIFAR run leaves
those to the trainer's defaults (32x32 images), whatever the form holds for them, so a
value kept from a folder chosen before does not reach it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, field, fields, make_dataclass, replace
from pathlib import Path

from .. import distributed, runs
from ..cifar import IMAGE_FOLDER, dataset_title
from ..config import CIFAR10_TRAIN_IMAGES, FIELD_TYPES, PAPER_RECIPE, FieldType, TrainConfig, apply_presets
from ..config_checks import config_errors, plan_errors
from ..config_flags import config_argv
from ..model_names import default_shortcut
from ..runs.values import as_float, is_int
from .folder_preview import FolderPreview, preview_folder, train_set_images

SWITCHES = (None, True, False)  # tri-state trainer options, as in TrainConfig: None leaves the choice to the trainer
MAX_DEPTH = 1202
# The TrainConfig fields the form leaves to the trainer's defaults (or, as sweep and
# runs_dir, to the dashboard): every other field of the schema is a field of the form.
NOT_IN_FORM = ("max_steps", "nesterov", "milestones", "warmup_mode", "split_seed", "runs_dir", "sweep", "download")
# The fields only an image folder run takes from the form (data_dir: its ROOT).
FOLDER_FIELDS = ("data_dir", "image_size", "resize", "test_size", "bad_images")
# Names in messages where the field's own name, spaced, would not say it.
LABELS = {"lr": "Learning rate", "val_size": "Validation size", "warmup_epochs": "Warm-up",
          "channels_last": "Channels-last", "compile": "torch.compile", "test_size": "Test share"}


def paper_epochs(train_size: int = CIFAR10_TRAIN_IMAGES) -> int:
    """Epochs that hold the paper's 64k iterations on all training images (165 of 390
    steps, the last one cut short), exactly as the trainer's --preset paper computes them."""
    return apply_presets(TrainConfig(preset="paper"), set(), train_size).epochs


class _FormMethods:
    """TrainForm's methods (its fields come from the schema, below)."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def with_paper_recipe(self) -> TrainForm:
        values = asdict(self) | paper_recipe()
        values["epochs"] = paper_epochs()
        values["preset"] = "paper"
        return TrainForm(**values)

    @property
    def tag_list(self) -> list[str]:
        """The tags typed, comma-separated, blanks left out."""
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]

    @property
    def run_name(self) -> str:
        """The name as it will appear in the run id (sanitised, never a path)."""
        return runs.safe_name(self.name)


def _default(value):
    return field(default_factory=lambda: list(value)) if isinstance(value, list) else field(default=value)


def _form_fields() -> list[tuple]:
    """TrainForm's fields: the schema's, in its order, with its defaults (but the shortcut,
    which the form shows as the block's default), then the form's own."""
    defaults = TrainConfig()
    defaults.shortcut = default_shortcut(defaults.block)
    out = [(f.name, f.type, _default(getattr(defaults, f.name))) for f in fields(TrainConfig)
           if f.name not in NOT_IN_FORM]
    # processes of the run, one a GPU: torchrun above 1 (a launch choice, not a TrainConfig field);
    # the run's launch tags (comma-separated) and note: --tag, --note, labels beside the config
    return out + [("gpus", "int", field(default=1)), ("tags", "str", field(default="")),
                  ("note", "str", field(default=""))]


TrainForm = make_dataclass("TrainForm", _form_fields(), bases=(_FormMethods,), namespace={
    "__module__": __name__,
    "__doc__": """What the Train page's form holds; field names double as error keys. Numbers may be
    text as typed (e.g. lr "5e-2"); switches one of SWITCHES; sync_bn only with gpus above 1."""})
# The fields that come from the schema (all but the form's own, gpus), and its switches.
CONFIG_FIELDS = tuple(name for name in TrainForm.field_names() if name in FIELD_TYPES)
SWITCH_FIELDS = tuple(name for name in CONFIG_FIELDS if FIELD_TYPES[name] == FieldType(bool, optional=True))


def paper_recipe() -> dict:
    """The form fields --preset paper sets (epochs aside, which depend on the split); the
    trainer adds the ResNet-110 warm-up itself."""
    recipe = {k: v for k, v in PAPER_RECIPE.items() if k in TrainForm.field_names()}
    return recipe | {"subset": 0}


PRESET_FIELDS = tuple(paper_recipe()) + ("epochs",)


def whole_number(value) -> bool:
    """A form's whole number: an int, or a float such as 3.0 (a number input's value)."""
    return is_int(value) or (isinstance(value, float) and value.is_integer())


def form_number(value) -> float | None:
    """A form's number: a number, or text that reads as one; None unless finite."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    return as_float(value)


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _typing_errors(form: TrainForm) -> dict[str, str]:
    """What only a form gets wrong in the schema's fields: text that is no number, a
    switch that is not one of SWITCHES. Whole numbers first, then numbers, then switches."""
    errors: dict[str, str] = {}
    types = {name: FIELD_TYPES[name] for name in CONFIG_FIELDS}
    for name in (n for n, t in types.items() if t.base is int):
        if not whole_number(getattr(form, name)):
            errors[name] = f"{_label(name)} must be a whole number."
    for name in (n for n, t in types.items() if t.base is float):
        if form_number(getattr(form, name)) is None:
            errors[name] = f"{_label(name)} must be a number, e.g. {getattr(TrainForm(), name)}."
    for name in SWITCH_FIELDS:
        if not any(getattr(form, name) is value for value in SWITCHES):  # 1 == True, but 1 is no switch
            errors[name] = f"{_label(name)} must be auto, on or off."
    return errors


def _machine_errors(form: TrainForm, devices: list[str] | None, cuda_count: int | None) -> dict[str, str]:
    """The device and GPUs against this machine, the run name's length, the tags and note."""
    errors: dict[str, str] = {}
    if devices is not None and form.device not in devices:
        errors["device"] = f"There is no {form.device} device on this machine; choose one of {', '.join(devices)}."
    if not whole_number(form.gpus) or form.gpus < 1:
        errors["gpus"] = "GPUs must be a whole number, at least 1."
    elif form.gpus > 1 and cuda_count is not None and form.gpus > cuda_count:
        errors["gpus"] = f"This machine has {cuda_count} CUDA GPU(s): a run can use at most that many."
    elif form.gpus > 1 and form.device not in ("auto", "cuda"):
        errors["gpus"] = f"Several GPUs take the device auto or cuda, not {form.device}."
    if form.name and not form.run_name:  # the form hands the trainer the name as it will be kept
        errors["name"] = "The name needs at least one letter or digit (allowed: letters, digits, - _ .)."
    elif len(form.name) > 200:
        errors["name"] = "The name is too long (at most 200 characters; 48 are kept)."
    for name, check, value in (("tags", runs.checked_tags, form.tag_list), ("note", runs.checked_note, form.note)):
        try:
            check(value)
        except ValueError as e:  # the trainer's --tag/--note refusal, as the form says it
            errors[name] = f"{str(e)[0].upper()}{str(e)[1:]}."
    return errors


def _folder_errors(form: TrainForm, folder: FolderPreview | None) -> tuple[dict[str, str], int | None]:
    """An image folder form's ROOT judged by its scan (folder: the page's preview of it, else
    scanned here): ({"data_dir": the one line that refuses it} or {}, its training set's images)."""
    root = str(form.data_dir or "").strip()
    if not root:
        return {"data_dir": "Type the path of the image folder, which holds train/<class>/<images>."}, None
    if folder is None or folder.root != root:
        folder = preview_folder(root, images=False)
    if folder.error is not None:
        return {"data_dir": folder.error[0].upper() + folder.error[1:] + "."}, None
    return {}, folder_train_size(form, folder)


def folder_train_size(form: TrainForm, folder: FolderPreview) -> int:
    """The training set an image folder form plans on: train/ less the test share carved from
    it (the form's; the default's while the form's is refused on its own field)."""
    test_size = form_number(form.test_size)
    if test_size is None or not 0 < test_size < 1:
        test_size = TrainForm().test_size
    return train_set_images(folder, test_size)


def validate(form: TrainForm, *, train_size: int = CIFAR10_TRAIN_IMAGES, devices: list[str] | None = None,
             data_present: bool | None = None, cuda_count: int | None = None,
             folder: FolderPreview | None = None) -> dict[str, str]:
    """Per-field error messages (an empty dict means the form may launch).

    train_size: images in the training set (50,000 for CIFAR-10; an image folder's own count
    replaces it); devices: the --device values this machine offers (None accepts any
    well-formed one); data_present: False adds an error under "data" (CIFAR only);
    cuda_count: this machine's CUDA GPUs, which bound "gpus" (None: as many as asked);
    folder: the preview of the form's image folder, where the caller has it (else it is
    scanned here): a folder its scan refuses is an error under "data_dir".
    """
    # The form's own checks are only what a form adds to the config: text that must be a
    # number, three-way switches, the devices of this machine, the name's length, the image
    # folder's scan. Every bound is the trainer's own (config_errors and plan_errors, below).
    errors = _typing_errors(form) | _machine_errors(form, devices, cuda_count)
    if form.dataset == IMAGE_FOLDER:
        folder_errors, folder_size = _folder_errors(form, folder)
        errors |= folder_errors
        train_size = folder_size or train_size

    # Then the trainer's own checks, whatever it would refuse, on the form with each field
    # already refused above put back to its default, so both kinds of message show at once.
    usable = replace(form, **{name: getattr(TrainForm(), name) for name in errors})
    cfg = form_config(usable, train_size)
    for name, message in {**plan_errors(cfg, train_size), **config_errors(cfg)}.items():
        errors.setdefault(name, message[0].upper() + message[1:] + ".")
    if "gpus" not in errors and form.gpus > 1:  # the trainer's refusals under torchrun, as it would say them
        world = distributed.World(size=form.gpus, local_size=form.gpus)
        problems = distributed.setup_problems(world, cfg.batch_size, cfg.device, "nccl", cfg.sync_bn,
                                              form.gpus if cuda_count is None else cuda_count)
        if problems:
            errors["gpus"] = "; ".join(p[0].upper() + p[1:] for p in problems) + "."
    if data_present is False and form.dataset != IMAGE_FOLDER:
        errors["data"] = f"{dataset_title(form.dataset)} is not in the data folder: download it on the Home page first."
    return errors


def form_typed(form: TrainForm) -> tuple[TrainConfig, set[str]]:
    """The TrainConfig a form without type errors (see :func:`validate`) types, and the
    fields it types: with the paper preset on, only those the preset leaves to the user;
    FOLDER_FIELDS only for an image folder, and its validation size only where changed."""
    values = {}
    for name in CONFIG_FIELDS:  # a preset other than "paper" is typed too: config_errors refuses it
        if (name in PRESET_FIELDS and form.preset) or (name == "preset" and not form.preset):
            continue
        if name in FOLDER_FIELDS and form.dataset != IMAGE_FOLDER:
            continue
        if name == "val_size" and form.dataset == IMAGE_FOLDER and form.val_size == TrainForm().val_size:
            continue  # left at CIFAR's 5,000: the trainer's folder default, at most a tenth of the training set
        value, base = getattr(form, name), FIELD_TYPES[name].base
        values[name] = int(value) if base is int else form_number(value) if base is float else value
    values.update(name=form.run_name, sync_bn=bool(form.sync_bn) and form.gpus > 1)
    return TrainConfig(**values), set(values)


def form_config(form: TrainForm, train_size: int = CIFAR10_TRAIN_IMAGES) -> TrainConfig:
    """The TrainConfig the trainer will resolve from the form, presets applied as on the
    command line: what the form's summary shows."""
    return apply_presets(*form_typed(form), train_size)


def recipe_summary(cfg: TrainConfig) -> str:
    """What the form's Advanced section resolves to, in one line, for the model summary (the
    data split is in the plan's line): the trainer's own values, presets applied (the paper
    preset's warm-up from ResNet-110 on shows)."""
    def plural(n: float, unit: str) -> str:
        return f"{n:g} {unit}" + ("" if n == 1 else "s")

    parts = [f"{cfg.schedule} schedule", f"weight decay {cfg.weight_decay:g}", f"momentum {cfg.momentum:g}"]
    if cfg.warmup_epochs:
        parts.append(f"warm-up {plural(round(cfg.warmup_epochs, 2), 'epoch')}")
    if cfg.label_noise:
        parts.append(f"label noise {cfg.label_noise:g} (seed {cfg.label_noise_seed})")
    word = {None: "auto", True: "on", False: "off"}
    switches = {"precision": cfg.precision, "channels-last": word[cfg.channels_last], "compile": word[cfg.compile]}
    chosen = [f"{name} {value}" for name, value in switches.items() if value != "auto"]
    parts += chosen or ["precision, channels-last and compile auto"]
    by_time = f" or {cfg.log_seconds:g} s" if cfg.log_seconds else ""  # 0: by steps only
    parts.append(f"a row every {plural(cfg.log_every, 'step')}{by_time}")
    return " · ".join(parts)


def run_data_dir(form: TrainForm, data_dir: str | os.PathLike) -> Path:
    """The run's --data-dir, absolute (the trainer starts in another folder): the form's image
    folder for a folder run, else data_dir (the dashboard's, holding CIFAR)."""
    chosen = str(form.data_dir or "").strip() if form.dataset == IMAGE_FOLDER else data_dir
    return Path(chosen).expanduser().resolve()


def trainer_args(form: TrainForm, *, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
                 run_dir: str | os.PathLike | None = None) -> list[str]:
    """The trainer's command-line arguments for a valid form (after the module name),
    generated from the same schema the trainer parses them with; --data-dir is
    :func:`run_data_dir`'s."""
    cfg, typed = form_typed(form)
    cfg = replace(cfg, data_dir=str(run_data_dir(form, data_dir)), runs_dir=str(runs_dir))
    args = config_argv(cfg, typed | {"data_dir", "runs_dir"})
    labels = [a for tag in form.tag_list for a in ("--tag", tag)] + (["--note", form.note] if form.note.strip() else [])
    return args + labels + (["--run-dir", str(run_dir)] if run_dir is not None else [])


def sweep_args(form: TrainForm, vary: dict[str, list], parallel: int, executor: str = "local",
               address: str = "") -> list[str]:
    """The sweep's arguments for the Train form's fields with `vary` varied (field -> values;
    the sweep parses and judges each value): the form's fields but the varied ones and the
    run name (a sweep names its runs after their values) and the data folder (the launcher
    gives it: :func:`run_data_dir`); on Ray (executor "ray") also the cluster's address,
    where one is given (else the sweep starts a Ray of its own)."""
    from ..sweep_grid import vary_argv  # the sweep's grid imports the trainer and torch: only when a sweep is launched

    cfg, typed = form_typed(form)
    args = config_argv(cfg, typed - set(vary) - {"name", "data_dir"}) + vary_argv(vary) + ["--parallel", str(parallel)]
    if executor == "ray":
        args += ["--executor", "ray"] + (["--address", address.strip()] if address.strip() else [])
    return args


def parse_vary_text(text: str) -> dict[str, list[str]]:
    """Extra varied fields typed as ``lr=0.1,0.05; weight_decay=1e-4,5e-4`` (also one per
    line): field -> values as typed. ValueError names an entry without "=" or values."""
    out: dict[str, list[str]] = {}
    for entry in (e.strip() for e in text.replace("\n", ";").split(";")):
        if not entry:
            continue
        name, sep, values = entry.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not items:
            raise ValueError(f"{entry!r}: write field=value1,value2")
        name = name.strip().replace("-", "_")
        if name in out:
            raise ValueError(f"{name} is given twice: list all its values in one entry")
        out[name] = items
    return out
