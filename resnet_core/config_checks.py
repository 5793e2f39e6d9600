"""Whether a TrainConfig can run: per-field messages for a config judged on its own
(:func:`config_errors`) and against the training set it will read (:func:`plan_errors`),
the bounds they hold it to, and the device spec's syntax (:func:`parse_device`). The
trainer, the sweep and the dashboard's form all refuse with these words.
"""

from __future__ import annotations

import re

from .cifar import DATASET_CHOICES, IMAGE_FOLDER
from .cifar import IMAGE_SIZE as CIFAR_SIZE
from .cifar import SPECS as CIFAR_SPECS
from .config import (BAD_IMAGES, DEVICES_HELP, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, PRECISIONS, RESIZE_RULES, TrainConfig,
                     lr_drop_steps, make_plan, warmup_steps)
from .model_names import BLOCKS, SHORTCUTS, blocks_per_stage
from .runs import safe_name
from .schedule import SCHEDULES, WARMUPS

MAX_SEED = 2 ** 32 - 1  # numpy's legacy seeding and many tools take 32-bit seeds
# The optimizer applies lr and weight decay to float32 (or bf16, the same range) weights:
# a larger value overflowed there, a started run failing (lr 1e308).
FLOAT32_MAX = 3.4028234663852886e38
# A day: threads wait this long between writes, and 1e308 s overflowed their wait (a traceback).
MAX_LOG_SECONDS = 86_400


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
    check("shortcut", cfg.shortcut in ("", *SHORTCUTS),
          f"unknown shortcut {cfg.shortcut!r}; valid: {', '.join(SHORTCUTS)}")
    if "block" not in errors:
        try:
            blocks_per_stage(cfg.depth, cfg.block)
        except ValueError as e:
            errors["depth"] = str(e)
    _data_checks(cfg, check)
    check("epochs", cfg.epochs >= 1, "epochs must be at least 1")
    check("max_steps", cfg.max_steps >= 0, "max steps cannot be negative (0 means every step of every epoch)")
    check("batch_size", cfg.batch_size >= 1, "batch size must be at least 1")
    check("lr", 0 < cfg.lr <= FLOAT32_MAX, f"learning rate must be a positive number at most {FLOAT32_MAX:.2g} "
                                           "(float32's largest)")
    check("momentum", 0 <= cfg.momentum < 1, "momentum must lie in [0, 1)")
    check("nesterov", not cfg.nesterov or cfg.momentum > 0, "Nesterov momentum needs a momentum above 0")
    check("weight_decay", 0 <= cfg.weight_decay <= FLOAT32_MAX,
          f"weight decay must lie in [0, {FLOAT32_MAX:.2g}] (float32's largest)")
    check("schedule", cfg.schedule in SCHEDULES, f"unknown schedule {cfg.schedule!r}; valid: {', '.join(SCHEDULES)}")
    if "epochs" not in errors:  # both are judged against a valid run length
        check("milestones", all(0 < m <= cfg.epochs for m in cfg.milestones),
              f"milestones must lie in (0, {cfg.epochs}] epochs")
        check("warmup_epochs", cfg.warmup_epochs >= 0, "warm-up cannot be negative")
        check("warmup_epochs", cfg.warmup_epochs < cfg.epochs, "warm-up must be shorter than the run")
    check("warmup_mode", cfg.warmup_mode in WARMUPS,
          f"unknown warm-up {cfg.warmup_mode!r}; valid: {', '.join(WARMUPS)}")
    for name in ("seed", "split_seed", "label_noise_seed"):
        check(name, 0 <= getattr(cfg, name) <= MAX_SEED, f"{name.replace('_', ' ')} must lie in 0..{MAX_SEED}")
    check("precision", cfg.precision in PRECISIONS,
          f"unknown precision {cfg.precision!r}; valid: {', '.join(PRECISIONS)}")
    try:
        parse_device(cfg.device)
    except ValueError as e:
        errors["device"] = str(e)
    check("val_size", cfg.val_size >= 0, "validation size cannot be negative")
    check("subset", cfg.subset >= 0, "subset cannot be negative (0 means the whole training split)")
    check("label_noise", 0 <= cfg.label_noise < 1, "label noise must lie in [0, 1): the fraction of training labels "
                                                  "flipped")
    check("log_every", cfg.log_every >= 1, "log interval must be at least 1 step")
    check("log_seconds", 0 <= cfg.log_seconds <= MAX_LOG_SECONDS,
          f"log interval in seconds must be a number of 0 or more, at most {MAX_LOG_SECONDS:,} (a day; 0: "
          "by step count only)")
    check("preset", cfg.preset in ("", "paper"), "the only preset is 'paper'")
    check("name", cfg.name == "" or safe_name(cfg.name) != "", "a run name needs a letter or digit")
    check("sweep", cfg.sweep == "" or safe_name(cfg.sweep) == cfg.sweep,
          "a sweep name may hold only letters, digits, - _ . (at most 48)")
    return errors


def _data_checks(cfg: TrainConfig, check) -> None:
    """config_errors' checks of what the run trains on: the dataset, its folder and image size."""
    check("image_size", MIN_IMAGE_SIZE <= cfg.image_size <= MAX_IMAGE_SIZE,
          f"image size must lie in {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE} pixels")
    check("image_size", cfg.image_size == CIFAR_SIZE or cfg.dataset not in CIFAR_SPECS,
          f"--image-size {cfg.image_size}: {cfg.dataset} images are {CIFAR_SIZE}x{CIFAR_SIZE}; it takes only "
          f"--image-size {CIFAR_SIZE}")
    check("resize", cfg.resize in RESIZE_RULES,
          f"unknown resize rule {cfg.resize!r}; valid: {', '.join(RESIZE_RULES)}")
    check("dataset", cfg.dataset in DATASET_CHOICES,
          f"unknown dataset {cfg.dataset!r}; valid: {', '.join(DATASET_CHOICES)}")
    check("data_dir", cfg.dataset != IMAGE_FOLDER or bool(cfg.data_dir),
          "--dataset folder needs --data-dir ROOT, the folder that holds train/<class>/*")
    check("test_size", 0 < cfg.test_size < 1, "test size is a share of each class's images: it must lie in (0, 1)")
    check("bad_images", cfg.bad_images in BAD_IMAGES,
          f"unknown bad-images choice {cfg.bad_images!r}; valid: {', '.join(BAD_IMAGES)}")


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
    total = plan.total_steps
    if warmup_steps(cfg, plan) >= total > 0 and cfg.warmup_epochs:
        return {"warmup_epochs": f"a warm-up of {warmup_steps(cfg, plan):,} steps is not shorter than "
                                 f"the run's {total:,} steps"}
    late = [m for m, step in zip(cfg.milestones, lr_drop_steps(cfg, plan), strict=False) if step >= total]
    if late and cfg.schedule == "multistep":
        return {"milestones": f"milestones {', '.join(f'{m:g}' for m in late)} (epochs) fall at or after "
                              f"the run's last step ({total:,})"}
    return {}
