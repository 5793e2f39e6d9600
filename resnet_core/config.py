"""A training run's settings: the schema, its defaults, the paper's recipe beside them, and
how they turn into a plan of steps.

:class:`TrainConfig` holds what a person chooses, each field's default and help in one
place (:data:`FIELD_TYPES`: its type, read once from the annotations); :func:`apply_presets`
fills in what they left to a preset or a default that depends on other fields (the paper's
epochs follow from its 64,000 iterations and this split's batches); :func:`make_plan`
derives the sizes and step counts that every reader of a run shows. The command line is
built from the schema in :mod:`resnet_core.config_flags`; whether a config can run is
judged in :mod:`resnet_core.config_checks`.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields

from .cifar import DATASET_CHOICES, IMAGE_FOLDER, IMAGE_SIZE
from .image_folder import BAD_IMAGES
from .images import RESIZE_RULES
from .runs.values import is_int
from .model_names import BLOCKS, SHORTCUTS, default_shortcut
from .schedule import SCHEDULES, WARMUPS

DEVICES_HELP = "auto, cpu, cuda, cuda:N or mps"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 256
CIFAR10_TRAIN_IMAGES = 50_000


def option(default, help: str, *, choices: tuple | None = None, factory=None, resumable: bool = False):
    """A TrainConfig field: its default, the help text (with units), its choices, and
    whether ``--resume`` may change it (resumable: how long the run goes, where and how it
    computes and logs; never what is trained, on what, or how it learns). The command line
    (:func:`~resnet_core.config_flags.add_config_arguments`), the form and the run record all
    come from these fields; :func:`~resnet_core.config_checks.config_errors` judges their
    values, :func:`resume_config` a resume's changes."""
    meta = {"help": help, "choices": choices, "resumable": resumable}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    depth: int = option(20, "layers: 6n+2 with basic blocks (20, 32, 44, 56, 110, ...), "
                            "9n+2 with bottlenecks (164, ...)")
    block: str = option("basic", "residual block", choices=BLOCKS)
    shortcut: str = option("", "shortcut option; none: the paper's plain network (default: A for basic blocks, B, "
                               "projection where the shape changes, for bottlenecks)", choices=SHORTCUTS)
    dataset: str = option("cifar10", "cifar10, or cifar100: 100 fine classes in 20 superclasses (the official python "
                                     "versions), or folder: your own images, --data-dir ROOT holding "
                                     "train/<class>/* and optionally test/<class>/*", choices=DATASET_CHOICES)
    image_size: int = option(IMAGE_SIZE, "side in pixels of the square images the network trains on (16..256; "
                                         "32-96 suit these ResNets, which pool globally); CIFAR datasets are 32x32 "
                                         "and take only 32")
    resize: str = option("crop", "how an image of another shape becomes image_size square: crop: the shorter side to "
                                 "image_size, then the centre square; squash: both sides to image_size",
                         choices=RESIZE_RULES)
    preact: bool = option(False, "pre-activation residual units, BN -> ReLU -> conv (He et al. 2016, \"Identity "
                                 "Mappings in Deep Residual Networks\"), instead of the original order")
    epochs: int = option(30, "passes over the training split", resumable=True)
    max_steps: int = option(0, "stop after this many optimizer steps, mid-epoch if need be (0: every step of every "
                               "epoch; alone it sets the epochs)", resumable=True)
    batch_size: int = option(128, "images per optimizer step")
    lr: float = option(0.1, "peak learning rate")
    momentum: float = option(0.9, "SGD momentum (one-cycle cycles it 0.95 to 0.85)")
    weight_decay: float = option(1e-4, "L2 penalty per step")
    nesterov: bool = option(False, "Nesterov momentum (needs momentum above 0)")
    schedule: str = option("cosine", "learning-rate schedule", choices=SCHEDULES)
    milestones: list[float] = option(None, "multistep: epochs at which lr is divided by 10 (default: 50%% and 75%% "
                                           "of the run)", factory=list)
    warmup_epochs: float = option(0.0, "epochs of warm-up before the schedule (fractions allowed)")
    warmup_mode: str = option("linear", "warm-up: a linear ramp, or constant lr/10 as the paper's ResNet-110",
                              choices=WARMUPS)
    seed: int = option(0, "weights, shuffling and augmentation (0..2^32-1)")
    split_seed: int = option(0, "which images form the validation split, independent of --seed (0..2^32-1)")
    device: str = option("auto", DEVICES_HELP, resumable=True)
    precision: str = option("auto", "of training steps; evaluation always runs in fp32", choices=PRECISIONS,
                            resumable=True)
    channels_last: bool | None = option(None, "channels_last memory format (default: on for CUDA and CPU, off for MPS)",
                                        resumable=True)
    compile: bool | None = option(None, "torch.compile the training step (default: on for CUDA; on a CPU it pays off "
                                        "in long runs)", resumable=True)
    sync_bn: bool = option(False, "under torchrun: BatchNorm statistics over the whole global batch (SyncBatchNorm, "
                                  "GPUs only) instead of each process's share")
    data_dir: str | None = option(None, "folder holding cifar-10-batches-py/ (CIFAR-10) or cifar-100-python/ "
                                        "(CIFAR-100) (default: $RESNET_STUDIO_DATA or ./data); with --dataset folder, "
                                        "the image folder ROOT (no default)", resumable=True)
    runs_dir: str = option("checkpoints", "folder of run folders")
    name: str = option("", "run name, part of the run folder's name")
    sweep: str = option("", "the sweep this run belongs to (python -m resnet_core.sweep sets it)")
    val_size: int = option(5000, "validation images carved from the training set (an image folder's default: at "
                                 "most a tenth of it); 0: none, and the test set is evaluated every epoch for "
                                 "monitoring only")
    test_size: float = option(0.2, "--dataset folder without ROOT/test/: the share of each class's images held out "
                                    "as the test split (stratified, chosen by --split-seed)")
    bad_images: str = option("refuse", "--dataset folder: an image that cannot be decoded refuses the folder, naming "
                                       "it, or is skipped and counted", choices=BAD_IMAGES)
    subset: int = option(0, "train on the first N images of the training split (0: all)")
    label_noise: float = option(0.0, "fraction of the training split's labels flipped to another class before "
                                     "training, each to a uniformly random other class (0: none); validation and test "
                                     "labels are never changed")
    label_noise_seed: int = option(0, "which training labels --label-noise flips, and to what, independent of --seed "
                                      "(0..2^32-1)")
    preset: str = option("", "paper: He et al.'s recipe: all 50k training images, batch 128, lr 0.1 /10 at 32k and "
                             "48k iterations, stop at exactly 64k, wd 1e-4, momentum 0.9, no validation split (add "
                             "--val-size 5000 for the 45k/5k protocol); lr 0.01 for 400 iterations from ResNet-110 on",
                         choices=("paper",))
    download: bool = option(False, "download the --dataset (CIFAR-10 or CIFAR-100) into --data-dir if it is missing",
                            resumable=True)
    log_every: int = option(20, "optimizer steps between step rows in metrics.jsonl", resumable=True)
    log_seconds: float = option(2.0, "seconds after which a step row is written even before --log-every steps, and "
                                     "between evaluation progress updates in status.json (0: by step count only)",
                                resumable=True)


# The paper's recipe, beside the defaults it replaces (:func:`apply_presets`).
# He et al. 2016, section 4.2: the reported CIFAR-10 models were trained on all 50k
# training images for 64k iterations (the 45k/5k split only chose this schedule).
PAPER_ITERATIONS = 64_000
PAPER_LR_DROPS = (32_000, 48_000)
PAPER_WARMUP_ITERATIONS = 400  # ResNet-110 and deeper start at lr 0.01
PAPER_WARMUP_FROM_DEPTH = 110
# Where --preset paper departs from the paper (each checked against the code by
# test_the_paper_presets_deviations_are_named_by_its_dry_run_and_the_readme); the dry-run
# plan prints them and the README states them word for word.
PAPER_DEVIATIONS = (
    "inputs are normalised by the training split's per-channel mean and std; the paper subtracts the per-pixel mean",
    # "Identity Mappings" (appendix) warms every CIFAR network up for exactly 400 iterations:
    # only the first paper's ResNet-110 waited for the training error.
    "ResNet-110 and deeper warm up at lr 0.01 for a fixed 400 steps; the first paper's ResNet-110 until the "
    "training error is below 80% (\"Identity Mappings\" for 400 iterations, as here)",
    "--precision auto trains in bf16 where the device computes it natively (fp16 on other GPUs and MPS); the paper "
    "trained in fp32: add --precision fp32 for the exact recipe",
    "each epoch drops its last partial batch: on CIFAR's 50,000 training images, 390 batches of 128, the last 80 "
    "images of each epoch's shuffle unseen in that epoch",
    # Both papers: "a mini-batch size of 128 on two GPUs" ("Identity Mappings": "64 each").
    "BatchNorm normalises a step's 128 images together on one device; the papers split them over 2 GPUs, 64 each "
    "(torchrun --nproc-per-node 2 without --sync-bn normalises as they did)",
)
PAPER_RECIPE = dict(batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="multistep",
                    val_size=0, max_steps=PAPER_ITERATIONS, warmup_epochs=0.0, warmup_mode="linear")
# What makes a run the paper's recipe, as :func:`paper_config` gives it: the preset's values,
# those it derives from the split (epochs, lr drops, the warm-up from ResNet-110 on), all
# training images with their own labels (no label noise), plain momentum. Precision is left
# out: the preset trains in bf16 under --precision auto, a stated deviation that does not
# make the run another recipe.
PAPER_RECIPE_FIELDS = (*PAPER_RECIPE, "epochs", "milestones", "subset", "label_noise", "nesterov")


@dataclass(frozen=True)
class FieldType:
    """A TrainConfig field's type, read once from its annotation: what the command line, the
    form and a run record's reader each make of the field."""

    base: type  # bool, int, float, str, or list (of floats: the milestones)
    optional: bool  # None allowed: left to the trainer (channels_last, compile) or found elsewhere (data_dir)


def _field_type(hint) -> FieldType:
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        (base,) = (a for a in args if a is not type(None))
        return FieldType(base, True)
    return FieldType(typing.get_origin(hint) or hint, False)


FIELD_TYPES = {name: _field_type(hint) for name, hint in typing.get_type_hints(TrainConfig).items()}


def resumable_fields() -> set[str]:
    """The fields a resume may change (see option)."""
    return {f.name for f in fields(TrainConfig) if f.metadata["resumable"]}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Plan:
    """What a config means on a training set of a given size."""

    train_images: int
    val_images: int  # 0: no validation split
    steps_per_epoch: int  # full batches of the training split (a partial last batch is dropped)
    total_steps: int
    epochs: int  # epochs that take steps; the last one may stop mid-epoch when max_steps says so

    def describe(self) -> str:
        """One line for people: the split and the steps (the Train form and --dry-run)."""
        val = (f"{self.val_images:,} validation images" if self.val_images
               else "no validation split (the test set is monitored every epoch)")
        def count(n: int, word: str) -> str:
            return f"{n:,} {word}{'' if n == 1 else 's'}"

        last = self.steps_in_epoch(self.epochs)
        cut = f", the last one {count(last, 'step')}" if last != self.steps_per_epoch else ""
        return (f"{count(self.train_images, 'training image')} · {val} · {count(self.steps_per_epoch, 'step')} per "
                f"epoch · {count(self.total_steps, 'step')} in {count(self.epochs, 'epoch')}{cut}")

    def steps_in_epoch(self, epoch: int) -> int:
        """Optimizer steps of epoch `epoch` (1-based): all but maybe the last are full."""
        return max(0, min(self.steps_per_epoch, self.total_steps - (epoch - 1) * self.steps_per_epoch))


def warmup_steps(cfg: TrainConfig, plan: Plan) -> int:
    """The warm-up, given in epochs, in optimizer steps."""
    return round(cfg.warmup_epochs * plan.steps_per_epoch)


def lr_drop_steps(cfg: TrainConfig, plan: Plan) -> tuple[int, ...]:
    """Multistep's lr drops in steps: the milestones given in epochs, else 50% and 75% of the run."""
    total = plan.total_steps
    return tuple(round(m * plan.steps_per_epoch) for m in cfg.milestones) or (round(0.5 * total), round(0.75 * total))


def make_plan(cfg: TrainConfig, train_set_images: int) -> Plan:
    """Split sizes and step counts of cfg on a training set of train_set_images."""
    remaining = max(0, train_set_images - cfg.val_size)
    train = min(cfg.subset, remaining) if cfg.subset else remaining
    spe = train // cfg.batch_size if cfg.batch_size > 0 else 0
    total = cfg.epochs * spe
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    return Plan(train_images=train, val_images=cfg.val_size, steps_per_epoch=spe, total_steps=total,
                epochs=math.ceil(total / spe) if spe else cfg.epochs)


def apply_presets(cfg: TrainConfig, typed: set[str], train_set_images: int) -> TrainConfig:
    """cfg with every field the user did not type (typed: field names given on the command
    line or in the form) filled from the preset and from defaults that depend on other
    fields. The result records exactly what the run uses."""
    values = dict(cfg.__dict__)
    if cfg.preset == "paper":
        # A typed epoch count sets the run's length, so the 64k-iteration stop gives way.
        skip = typed | ({"max_steps"} if "epochs" in typed else set())
        values.update({k: v for k, v in PAPER_RECIPE.items() if k not in skip})
    if values["dataset"] == IMAGE_FOLDER and "val_size" not in typed:
        # CIFAR's 5,000 would take most of a small folder: at most a tenth of its training set.
        values["val_size"] = min(values["val_size"], train_set_images // 10)
    if not values["shortcut"] and values["block"] in BLOCKS:
        values["shortcut"] = default_shortcut(values["block"])
    out = TrainConfig(**values)
    spe = make_plan(out, train_set_images).steps_per_epoch
    if spe and out.max_steps and "epochs" not in typed:
        out.epochs = math.ceil(out.max_steps / spe)
    if spe and cfg.preset == "paper":
        drops = [m / spe for m in PAPER_LR_DROPS]
        if "milestones" not in typed and drops[-1] <= out.epochs:  # else the default 50% and 75%
            out.milestones = drops
        if out.depth >= PAPER_WARMUP_FROM_DEPTH and not {"warmup_epochs", "warmup_mode"} & typed:
            out.warmup_epochs, out.warmup_mode = PAPER_WARMUP_ITERATIONS / spe, "constant"
    return out


def resume_config(recorded: TrainConfig, given: TrainConfig, typed: set[str],
                  train_set_images: int) -> tuple[TrainConfig, dict[str, list]]:
    """The config a resume runs with and its changes ({field: [old, new]}): the recorded
    config with each typed field that differs from it, where the field is resumable (see
    option); a ValueError, one line naming them all, where not. As for a new run, a typed
    --epochs sets the length (a recorded max_steps gives way) and --max-steps alone sets
    the epochs."""
    changed = [f.name for f in fields(TrainConfig)
               if f.name in typed and getattr(given, f.name) != getattr(recorded, f.name)]
    fixed = [name for name in changed if name not in resumable_fields()]
    if fixed:
        trained = ", ".join(f"{name.replace('_', ' ')} {_shown(getattr(recorded, name))}" for name in fixed)
        raise ValueError(f"{', '.join(map(flag, fixed))} cannot change on resume: the run was trained with "
                         f"{trained}; start a new run")
    values = dict(recorded.__dict__, **{name: getattr(given, name) for name in changed})
    if "epochs" in changed and "max_steps" not in typed and recorded.max_steps:
        values["max_steps"] = 0
    spe = make_plan(TrainConfig(**values), train_set_images).steps_per_epoch
    if "max_steps" in changed and "epochs" not in typed and values["max_steps"] and spe:
        values["epochs"] = math.ceil(values["max_steps"] / spe)
    cfg = TrainConfig(**values)
    changes = {f.name: [getattr(recorded, f.name), getattr(cfg, f.name)] for f in fields(TrainConfig)
               if getattr(cfg, f.name) != getattr(recorded, f.name)}
    return cfg, changes


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value in ("", None, []) else str(value)


def paper_config(depth: int, block: str = "basic", shortcut: str = "",
                 train_set_images: int = CIFAR10_TRAIN_IMAGES) -> TrainConfig:
    """The config --preset paper gives this network on CIFAR-10's training images, nothing
    typed but the network: what the paper's recipe is, field by field."""
    cfg = TrainConfig(depth=depth, block=block, shortcut=shortcut, preset="paper")
    return apply_presets(cfg, {"depth", "block", "shortcut", "preset"}, train_set_images)


def config_from_record(values: dict) -> TrainConfig:
    """A TrainConfig from config.json's "config", each field checked against its type."""
    out = {}
    for name, ftype in FIELD_TYPES.items():
        if name not in values:
            continue
        if not _holds(ftype, values[name]):
            raise TypeError(f"field {name!r} holds {values[name]!r}, not a "
                            f"{ftype.base.__name__}{' or None' if ftype.optional else ''}")
        out[name] = values[name]
    return TrainConfig(**out)


def image_format(resolved: dict, cfg: dict) -> tuple[int, str]:
    """The side and resize rule of a run's inputs: resolved.image_size as the trainer
    recorded it, else the config's; CIFAR's 32 and "crop" for a run recorded before either."""
    size = resolved.get("image_size") if isinstance(resolved, dict) else None
    if not is_int(size) or not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        size = cfg.get("image_size")
    if not is_int(size) or not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        size = IMAGE_SIZE
    resize = cfg.get("resize")
    return size, resize if resize in RESIZE_RULES else "crop"


def _holds(ftype: FieldType, value) -> bool:
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if value is None:
        return ftype.optional
    if ftype.base is float:
        return number(value)
    if ftype.base is list:
        return isinstance(value, list) and all(number(v) for v in value)
    return isinstance(value, ftype.base) and (ftype.base is bool or not isinstance(value, bool))
