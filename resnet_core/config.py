"""A training run's settings, the paper's recipe, and how both turn into a plan of steps.

:class:`TrainConfig` holds what a person chooses; :func:`apply_presets` fills in what they
left to a preset or a default that depends on other fields (the paper's epochs follow from
its 64,000 iterations and this split's batches); :func:`make_plan` derives the sizes and
step counts that every reader of a run shows. :func:`config_errors` judges a config on
its own, :func:`plan_errors` against the training set it will read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .models import BLOCKS, SHORTCUTS, blocks_per_stage, default_shortcut
from .runs import safe_name
from .schedule import SCHEDULES, WARMUPS

DEVICES_HELP = "auto, cpu, cuda, cuda:N or mps"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MAX_SEED = 2 ** 32 - 1  # numpy's legacy seeding and many tools take 32-bit seeds
CIFAR10_TRAIN_IMAGES = 50_000

# He et al. 2016, section 4.2: the reported CIFAR-10 models were trained on all 50k
# training images for 64k iterations (the 45k/5k split only chose this schedule).
PAPER_ITERATIONS = 64_000
PAPER_LR_DROPS = (32_000, 48_000)
PAPER_WARMUP_ITERATIONS = 400  # ResNet-110 and deeper start at lr 0.01
PAPER_WARMUP_FROM_DEPTH = 110
PAPER_RECIPE = dict(batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="multistep",
                    val_size=0, max_steps=PAPER_ITERATIONS, warmup_epochs=0.0, warmup_mode="linear")


@dataclass
class TrainConfig:
    depth: int = 20
    block: str = "basic"
    shortcut: str = ""  # "": A for basic blocks, B (projection) for bottlenecks, as each paper's code
    epochs: int = 30
    max_steps: int = 0  # stop after this many optimizer steps, even mid-epoch; 0 = all epochs
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    milestones: list[float] = field(default_factory=list)  # multistep, in epochs; [] = 50% and 75%
    warmup_epochs: float = 0.0
    warmup_mode: str = "linear"  # linear ramp, or constant lr/10 (the paper's ResNet-110)
    seed: int = 0
    split_seed: int = 0  # picks the validation split, so a seed sweep keeps the same images
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None  # None: where the device benefits
    compile: bool | None = None  # torch.compile the training forward; None: on CUDA only
    data_dir: str | None = None
    runs_dir: str = "checkpoints"
    name: str = ""
    val_size: int = 5000  # 0: no validation split; the test set is then monitored every epoch
    subset: int = 0  # train on the first N images of the training split; 0 = all
    preset: str = ""
    download: bool = False
    log_every: int = 20  # steps between step rows in metrics.jsonl


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
        last = self.steps_in_epoch(self.epochs)
        cut = f", the last one {last:,} steps" if last != self.steps_per_epoch else ""
        return (f"{self.train_images:,} training images · {val} · {self.steps_per_epoch:,} steps per epoch · "
                f"{self.total_steps:,} steps in {self.epochs:,} epochs{cut}")

    def steps_in_epoch(self, epoch: int) -> int:
        """Optimizer steps of epoch `epoch` (1-based): all but maybe the last are full."""
        return max(0, min(self.steps_per_epoch, self.total_steps - (epoch - 1) * self.steps_per_epoch))


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


def parse_device(device: str) -> str:
    """Validate a device spec: auto, cpu, cuda, cuda:N (ASCII digits) or mps."""
    if device in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:[0-9]+", device, re.ASCII):
        return device
    raise ValueError(f"unknown device {device!r}; valid: {DEVICES_HELP}")


def config_errors(cfg: TrainConfig) -> dict[str, str]:
    """Per-field messages for a config that cannot run, judged on its own; empty when it can."""
    errors: dict[str, str] = {}

    def check(name: str, ok: bool, message: str) -> None:
        if not ok and name not in errors:
            errors[name] = message

    check("block", cfg.block in BLOCKS, f"unknown block type {cfg.block!r}; valid: {', '.join(BLOCKS)}")
    check("shortcut", cfg.shortcut in ("", *SHORTCUTS), f"unknown shortcut {cfg.shortcut!r}; valid: {', '.join(SHORTCUTS)}")
    if "block" not in errors:
        try:
            blocks_per_stage(cfg.depth, cfg.block)
        except ValueError as e:
            errors["depth"] = str(e)
    check("epochs", cfg.epochs >= 1, "epochs must be at least 1")
    check("max_steps", cfg.max_steps >= 0, "max steps cannot be negative (0 means every step of every epoch)")
    check("batch_size", cfg.batch_size >= 1, "batch size must be at least 1")
    check("lr", math.isfinite(cfg.lr) and cfg.lr > 0, "learning rate must be a positive number")
    check("momentum", 0 <= cfg.momentum < 1, "momentum must lie in [0, 1)")
    check("weight_decay", math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0, "weight decay cannot be negative")
    check("schedule", cfg.schedule in SCHEDULES, f"unknown schedule {cfg.schedule!r}; valid: {', '.join(SCHEDULES)}")
    if "epochs" not in errors:  # both are judged against a valid run length
        check("milestones", all(0 < m <= cfg.epochs for m in cfg.milestones),
              f"milestones must lie in (0, {cfg.epochs}] epochs")
        check("warmup_epochs", 0 <= cfg.warmup_epochs < cfg.epochs, "warm-up must be shorter than the run")
    check("warmup_mode", cfg.warmup_mode in WARMUPS, f"unknown warm-up {cfg.warmup_mode!r}; valid: {', '.join(WARMUPS)}")
    for name in ("seed", "split_seed"):
        check(name, 0 <= getattr(cfg, name) <= MAX_SEED, f"{name.replace('_', ' ')} must lie in 0..{MAX_SEED}")
    check("precision", cfg.precision in PRECISIONS, f"unknown precision {cfg.precision!r}; valid: {', '.join(PRECISIONS)}")
    try:
        parse_device(cfg.device)
    except ValueError as e:
        errors["device"] = str(e)
    check("val_size", cfg.val_size >= 0, "validation size cannot be negative")
    check("subset", cfg.subset >= 0, "subset cannot be negative (0 means the whole training split)")
    check("log_every", cfg.log_every >= 1, "log interval must be at least 1 step")
    check("preset", cfg.preset in ("", "paper"), "the only preset is 'paper'")
    check("name", cfg.name == "" or safe_name(cfg.name) != "", "a run name needs a letter or digit")
    return errors


def plan_errors(cfg: TrainConfig, train_set_images: int) -> dict[str, str]:
    """Per-field messages for a config that cannot run on a training set of this size."""
    if cfg.val_size >= train_set_images:
        return {"val_size": f"validation size {cfg.val_size:,} leaves no training images "
                            f"(the training set has {train_set_images:,})"}
    remaining = train_set_images - cfg.val_size
    if cfg.subset > remaining:
        return {"subset": f"subset {cfg.subset:,} is larger than the {remaining:,} images of the training split"}
    plan = make_plan(cfg, train_set_images)
    if plan.train_images < cfg.batch_size:
        name = "subset" if cfg.subset else ("val_size" if cfg.val_size else "batch_size")
        return {name: f"{plan.train_images:,} training images are fewer than one batch of {cfg.batch_size:,}"}
    if cfg.max_steps > cfg.epochs * plan.steps_per_epoch:
        return {"max_steps": f"max steps {cfg.max_steps:,} is more than {cfg.epochs} epochs of "
                             f"{plan.steps_per_epoch:,} steps"}
    # Warm-up and lr drops are given in epochs; max_steps may end the run sooner.
    spe, total = plan.steps_per_epoch, plan.total_steps
    if round(cfg.warmup_epochs * spe) >= total > 0 and cfg.warmup_epochs:
        return {"warmup_epochs": f"a warm-up of {round(cfg.warmup_epochs * spe):,} steps is not shorter than "
                                 f"the run's {total:,} steps"}
    late = [m for m in cfg.milestones if round(m * spe) >= total]
    if late and cfg.schedule == "multistep":
        return {"milestones": f"milestones {', '.join(f'{m:g}' for m in late)} (epochs) fall at or after "
                              f"the run's last step ({total:,})"}
    return {}

