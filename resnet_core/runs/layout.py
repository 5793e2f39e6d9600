"""Names and paths of a run folder's files and the format's constants (the format itself is
documented in the docstring of resnet_core/runs/folder_format.py)."""

from __future__ import annotations

import re
from pathlib import Path

FORMAT_VERSION = 2
ACTIVE_STATES = ("queued", "running")
CRASHED = "crashed"  # derived by readers, never written
UNREADABLE = "unreadable"  # derived by readers, never written: RunInfo.problem says why
# derived by readers, never written: status.json but no config.json, and its trainer is gone
FAILED_TO_START = "failed to start"
RESUMABLE_STATES = ("stopped", "failed", CRASHED)
# What an active trainer does now (status.json's phase), in the order a run goes through them.
PHASES = ("queued", "loading data", "building model", "training", "validating", "testing", "saving")
EVALUATION_PHASES = ("validating", "testing")  # the phases that count images in phase_done / phase_total
SPLITS = ("val", "train", "test")
TRAINER_MODULE = "resnet_core.train"
PLAIN = "none"  # the shortcut option of plain networks (config.json's shortcut)


def model_name(depth, shortcut: str | None, preact: bool = False) -> str:
    """How the papers name a network, as config.json's model name: "plain-20" without
    shortcuts, else "ResNet-20"; "PreAct-ResNet-164" with pre-activation units."""
    return f"{'PreAct-' if preact else ''}{'plain' if shortcut == PLAIN else 'ResNet'}-{depth}"


# A trainer on another machine (a torchrun node, a Ray worker) cannot be looked up by pid
# from here: it rewrites status.json at least every HEARTBEAT_S, and readers elsewhere take
# it for gone after STALE_S without a rewrite (clocks kept in step, as NTP does).
HEARTBEAT_S = 10.0
STALE_S = 60.0

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
CHECKPOINTS = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}  # the names a user picks a checkpoint by
LOG_FILE = "train.log"
CONSOLE_FILE = "console.log"
PREDICTIONS_DIR = "predictions"
DYNAMICS_DIR = "dynamics"  # the training images' per-epoch record (training dynamics)
DYNAMICS_IMAGES_FILE = "train_images.npz"
CACHE_DIR = ".cache"  # <runs-dir>/.cache/: what is computed from the data alone (near-duplicates)
FEATURES_DIR = "features"  # a checkpoint's penultimate features, a cache (resnet_core.embeddings)

PREDICTION_FILE = re.compile(r"^(val|train|test)_epoch_(\d{3,})\.npz$")
DYNAMICS_FILE = re.compile(r"^train_epoch_(\d{3,})\.npz$")
DELETING_PREFIX = ".deleting-"  # a deleted run's folder, renamed out of the listing before its removal
TEMP_FILES = ".*.tmp"  # what atomic writes leave behind when the writer is killed mid-write
# cleanup.remove_stale_temps leaves younger temp files alone: a trainer just resumed into a
# folder whose status.json still says "stopped" may be writing one.
STALE_TEMP_AGE_S = 60.0
MAX_JSON_BYTES = 1 << 20  # config.json and status.json are a few KB; a page rereads them every second
# A predictions file's arrays, uncompressed, at most: the largest a trainer writes (50,000
# images with their top-5 classes) holds 4.4 MB, while a compressed archive can claim
# gigabytes of zeros in a few KB.
MAX_PREDICTION_BYTES = 64 << 20
# A training record in memory (label_prob float32 + correct bool, 5 bytes an image an epoch), at most:
# 50,000 images x 165 epochs take 41 MB, so this allows 50,000 images for 4,000 epochs, while
# epoch files of a few KB each (compressed NaN) could otherwise claim any amount.
MAX_DYNAMICS_BYTES = 1 << 30
# A features file's arrays, uncompressed, at most: 50,000 training images of a bottleneck
# network (256 floats each) with their indices, labels, predictions and confidences take 52 MB.
MAX_FEATURE_BYTES = 128 << 20
# Class names config.json may list: pages square the count (confusion matrices), and 100,000
# short names fit in MAX_JSON_BYTES (an 80 GB matrix); CIFAR-100, the largest such dataset, has 100.
MAX_CLASSES = 1000
STATE_NAME = re.compile(r"[a-z][a-z_-]{0,31}")


class RunFolderError(ValueError):
    """A file of a run folder that cannot be read as the format says; the message says why,
    in one line (e.g. "status.json holds a list, not a JSON object",
    "predictions/val_epoch_001.npz: labels holds class 12, outside 0..9")."""


def safe_name(name: str, max_len: int = 48) -> str:
    """A run name reduced to letters, digits, '-', '_' and '.', never a path."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")
    return cleaned[:max_len].rstrip("-.")


def prediction_path(run_dir: Path, split: str, epoch: int) -> Path:
    return Path(run_dir) / PREDICTIONS_DIR / f"{split}_epoch_{epoch:03d}.npz"


def dynamics_path(run_dir: Path, epoch: int) -> Path:
    """dynamics/train_epoch_NNN.npz: what the training steps of that epoch said of each training image."""
    return Path(run_dir) / DYNAMICS_DIR / f"train_epoch_{epoch:03d}.npz"


def dynamics_images_path(run_dir: Path) -> Path:
    """dynamics/train_images.npz: the training images every epoch's record is aligned with."""
    return Path(run_dir) / DYNAMICS_DIR / DYNAMICS_IMAGES_FILE


def cache_dir(runs_dir: Path) -> Path:
    """<runs-dir>/.cache/: results computed from the data folder alone, kept for every run."""
    return Path(runs_dir) / CACHE_DIR


def features_path(run_dir: Path, split: str, checkpoint: str) -> Path:
    """features/{split}_{best|last}.npz: the penultimate features of a split's images under a checkpoint."""
    return Path(run_dir) / FEATURES_DIR / f"{split}_{checkpoint}.npz"


def device_lock_path(runs_dir: Path, device: str, slot: int = 0) -> Path:
    """The file a trainer holds an exclusive flock on while it uses one slot of a device
    (``cpu``, ``cuda:0``...; one slot unless a sweep runs several runs per device).

    A trainer finding every slot of its candidate devices held waits in state ``queued``;
    the lock goes away with the process, so a killed trainer never blocks the queue.
    """
    suffix = f"-slot{slot}" if slot else ""
    return Path(runs_dir) / f".device-{safe_name(device.replace(':', '-'))}{suffix}.lock"
