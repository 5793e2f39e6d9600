"""The paper's experiments, ready to launch as sweeps, and how long they would take here.

An :class:`Experiment` is a sweep's trainer flags and grid. Its time is estimated from the
training and evaluation speeds measured on this machine's device (``python -m
resnet_core.bench``: a few real steps and one evaluation of each distinct network) and
the plan of every run in the grid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..config import CIFAR10_TRAIN_IMAGES, TrainConfig, apply_presets, flag, make_plan
from ..model_names import default_shortcut
from ..runs import PLAIN
from .launcher import PROJECT_ROOT
from ..sweep_grid import grid, vary_argv
from ..train import parse

CIFAR10_TEST_IMAGES = 10_000
# The benchmark evaluates this many held-out images to time evaluation (fp32, every
# prediction recorded). A guessed ratio to the training speed was wrong by half: a real
# ResNet-56 run here evaluated 500 images/s while training 300.
EVAL_SAMPLE = 1000


@dataclass(frozen=True)
class Speed:
    """A network's measured throughput on this machine's device, in images per second."""

    train: float
    eval: float


@dataclass(frozen=True)
class Experiment:
    key: str  # also the start of its sweep's name
    title: str
    description: str
    flags: tuple[str, ...]  # trainer flags shared by every run
    vary: Mapping[str, tuple] = field(default_factory=dict)  # field -> values, as the sweep's --vary

    def grid(self) -> list[dict]:
        """Each run's varied values, in the sweep's order."""
        return grid(dict(self.vary))

    def configs(self, train_set_images: int = CIFAR10_TRAIN_IMAGES) -> list[TrainConfig]:
        """The config each run resolves to, exactly as the trainer resolves its flags."""
        out = []
        for point in self.grid():
            argv = list(self.flags) + [a for k, v in point.items() for a in (flag(k), str(v))]
            parsed = parse(argv)
            out.append(apply_presets(parsed.cfg, parsed.typed, train_set_images))
        return out

    def sweep_args(self, parallel: int = 1) -> list[str]:
        """The arguments of ``python -m resnet_core.sweep`` that launch this experiment (its
        --name aside: see launcher.launch_sweep)."""
        return [*self.flags, *vary_argv(dict(self.vary)), "--parallel", str(parallel)]


_DEGRADATION_TEXT = ("Plain networks get worse as they get deeper, residual networks better: plain-20 and "
                     "plain-56 against ResNet-20 and ResNet-56 (shortcut A), one seed each.")

DEGRADATION = Experiment(
    "degradation", "The degradation problem (Figure 6), the paper's recipe",
    _DEGRADATION_TEXT + " The paper's recipe: all 50,000 images, 64,000 iterations, test error monitored.",
    ("--preset", "paper"), {"depth": (20, 56), "shortcut": ("none", "A")})

DEGRADATION_SHORT = Experiment(
    "degradation-short", "The degradation problem, short variant",
    _DEGRADATION_TEXT + " Short: 10,000 training images, 10 epochs (the first a warm-up), lr /10 at 50% and "
    "75%, the test error monitored every epoch as in Figure 6; the gap shows, smaller than in the paper.",
    # The warm-up: without it both 56-layer networks stayed at chance (10-20% test accuracy
    # after 10 epochs, measured here) in a run this short; with 1 epoch of warm-up ResNet-56
    # reached 27% after 2 epochs where it had 11% without.
    ("--subset", "10000", "--epochs", "10", "--warmup-epochs", "1", "--schedule", "multistep", "--val-size", "0"),
    {"depth": (20, 56), "shortcut": ("none", "A")})

EXPERIMENTS = (DEGRADATION_SHORT, DEGRADATION)


def run_seconds(cfg: TrainConfig, speed: Speed, train_set_images: int = CIFAR10_TRAIN_IMAGES,
                test_images: int = CIFAR10_TEST_IMAGES) -> float:
    """Seconds one run takes at a measured training speed: its training steps, an evaluation
    of the validation split after every epoch and the final test; without a validation split
    the test set after every epoch, the last of which is the final test."""
    plan = make_plan(cfg, train_set_images)
    evaluated = plan.epochs * plan.val_images + test_images if plan.val_images else plan.epochs * test_images
    return plan.total_steps * cfg.batch_size / speed.train + evaluated / speed.eval


def speed_key(cfg: TrainConfig) -> tuple:
    """What sets a run's speed: the network's layers and the batch (a plain network costs
    what its option-A twin does, so both share one measurement)."""
    shortcut = cfg.shortcut or default_shortcut(cfg.block)
    return cfg.depth, cfg.block, "A" if shortcut == PLAIN else shortcut, cfg.batch_size


def experiment_seconds(configs: list[TrainConfig], speeds: Mapping[tuple, Speed], parallel: int = 1) -> float:
    """Wall time of a grid run `parallel` at a time: the runs' total, spread over the devices
    (a lower bound on the longest run), as measured speeds say."""
    times = [run_seconds(cfg, speeds[speed_key(cfg)]) for cfg in configs]
    return max(sum(times) / max(1, parallel), max(times, default=0.0))


def measure_speed(cfg: TrainConfig, data_dir: str | os.PathLike, steps: int = 4, warmup: int = 2,
                  eval_images: int = EVAL_SAMPLE, python: str = sys.executable, timeout: float = 600) -> Speed:
    """Training and evaluation images/s of cfg's network on this machine's device: a few
    real steps and one evaluation of eval_images held-out images in a fresh ``python -m
    resnet_core.bench`` process (the dashboard's own stays off the GPU). RuntimeError says
    in one line why there are no numbers."""
    depth, block, shortcut, batch = speed_key(cfg)
    argv = [python, "-m", "resnet_core.bench", "--data-dir", str(data_dir), "--depth", str(depth), "--block", block,
            "--shortcut", shortcut, "--batch-size", str(batch), "--device", cfg.device, "--steps", str(steps),
            "--warmup", str(warmup), "--val-size", str(eval_images)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the benchmark took more than {timeout:.0f} s") from None
    if out.returncode != 0:
        raise RuntimeError((out.stderr.strip().splitlines() or ["the benchmark failed"])[-1])
    try:
        report = json.loads(out.stdout.strip().splitlines()[-1])
        return Speed(float(report["train_images_per_s"]), float(report["eval_images_per_s"]))
    except (IndexError, KeyError, TypeError, ValueError):
        raise RuntimeError(f"the benchmark printed no speed: {out.stdout.strip()[-200:]!r}") from None


def measure_speeds(configs: list[TrainConfig], data_dir: str | os.PathLike,
                   progress: Callable[[int, int, tuple], None] | None = None) -> dict[tuple, Speed]:
    """One measurement per distinct network of the grid; progress(done, total, key) before each."""
    keys = list(dict.fromkeys(speed_key(c) for c in configs))
    speeds = {}
    for i, key in enumerate(keys):
        if progress:
            progress(i, len(keys), key)
        cfg = next(c for c in configs if speed_key(c) == key)
        speeds[key] = measure_speed(cfg, data_dir)
    return speeds
