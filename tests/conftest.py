"""Shared fixtures: a tiny CIFAR-10 look-alike in the official pickle format; waiting on a
condition (wait_until); test trainers at the tests' own priority.

Tests never read the real dataset. Each class gets its own colour and stripe direction,
plus noise, so that a few epochs of a small ResNet learn it far above chance.
"""

from __future__ import annotations

import os

# Test trainers run at the tests' own priority, not at the dashboard's nice 10 (launcher.
# TRAINER_NICE, read when it is imported, and inherited by the servers the tests start):
# beside other work on a loaded machine, niced trainers were starved and tests timed out.
os.environ["RESNET_STUDIO_TRAINER_NICE"] = "0"

# Under xdist (the quick set, `-n auto`: a worker a core) each worker's torch keeps to one
# thread: with torch's default of a thread a core, the two workers' threads waited for each
# other and the quick set took 60-66 s on this 2-core machine, against 53-55 s with one
# (1,538 tests, quiet). Set before anything imports torch; a serial run keeps the default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import contextlib
import importlib.abc
import importlib.machinery
import json
import pickle
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from resnet_core.cifar import BATCH_FOLDER, CLASSES, TEST_BATCH, TRAIN_BATCHES

ROOT = Path(__file__).resolve().parents[1]


def synthetic_images(labels: np.ndarray, rng: np.random.Generator, num_classes: int = len(CLASSES)) -> np.ndarray:
    """(N, 3072) uint8 images whose colour and stripes depend on the label."""
    palette = np.random.default_rng(1234).integers(40, 216, size=(num_classes, 3))
    yy, xx = np.mgrid[0:32, 0:32]
    images = np.empty((len(labels), 3, 32, 32), dtype=np.float64)
    for i, c in enumerate(labels):
        stripes = np.sin((xx if c % 2 else yy) * (0.4 + 0.15 * (c // 2)))
        images[i] = palette[c][:, None, None] + 30 * stripes[None]
    images += rng.normal(0, 12, size=images.shape)
    return np.clip(images, 0, 255).astype(np.uint8).reshape(len(labels), -1)


def write_cifar_folder(root: Path, n_train: int = 500, n_test: int = 200, seed: int = 0,
                       str_keys: bool = False) -> Path:
    """Write root/cifar-10-batches-py with n_train images over 5 batches and n_test test images."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / BATCH_FOLDER
    folder.mkdir(parents=True, exist_ok=True)

    def dump(path: Path, labels: np.ndarray) -> None:
        batch = {"data": synthetic_images(labels, rng), "labels": labels.tolist()}
        if not str_keys:
            batch = {k.encode(): v for k, v in batch.items()}
        with open(path, "wb") as f:
            pickle.dump(batch, f)

    train_labels = np.arange(n_train) % len(CLASSES)
    rng.shuffle(train_labels)
    for name, part in zip(TRAIN_BATCHES, np.array_split(train_labels, len(TRAIN_BATCHES)), strict=True):
        dump(folder / name, part)
    dump(folder / TEST_BATCH, np.arange(n_test) % len(CLASSES))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES]}, f)
    return Path(root)


def write_dynamics_record(run_dir: Path, labels_prob: np.ndarray, correct: np.ndarray, indices=None, labels=None,
                          original_labels=None, classes=CLASSES, save=np.savez) -> Path:
    """Write a run's dynamics/ record with numpy, exactly as the format docstring (resnet_core/
    runs/folder_format.py) says, from (N, E) arrays: labels_prob (NaN: not presented) and
    correct (bool; False where not presented). indices default to 0..N-1, labels to i % 10,
    original_labels to labels. A config.json listing `classes` is written when the folder has
    none (readers check labels against it). save: np.savez, or np.savez_compressed (readers
    take either). Returns the dynamics folder."""
    labels_prob = np.asarray(labels_prob, dtype=np.float32)
    n, epochs = labels_prob.shape
    indices = np.arange(n) if indices is None else indices
    labels = np.arange(n) % len(classes) if labels is None else labels
    original_labels = labels if original_labels is None else original_labels
    run_dir = Path(run_dir)
    folder = run_dir / "dynamics"
    folder.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.json").exists():
        (run_dir / "config.json").write_text(json.dumps({"classes": list(classes)}))
    save(folder / "train_images.npz", indices=np.asarray(indices, dtype=np.int64),
             labels=np.asarray(labels, dtype=np.int64), original_labels=np.asarray(original_labels, dtype=np.int64))
    for e in range(epochs):
        save(folder / f"train_epoch_{e + 1:03d}.npz", label_prob=labels_prob[:, e].astype(np.float16),
                 correct=np.packbits(np.asarray(correct[:, e], dtype=bool)))
    return folder


def wait_until(condition: Callable[[], object], timeout: float = 60.0, poll: float = 0.01) -> bool:
    """Whether condition() came true within timeout seconds. A test waits on what it needs
    rather than sleeping a fixed time: on a loaded machine a thread or process may take
    far longer than on a quiet one, and the deadline is generous because only a bug uses it all."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


@pytest.fixture(autouse=True, scope="session")
def no_fsync():
    """No fsync in the test process: it makes a write last through a power cut, which no test
    can see, and the run folders the tests fabricate (fake_runs.make_run: about 45 atomic
    writes each) spent most of their time in it (test_values.py: 35 s wall, 11 s of CPU).
    Trainers the tests start in processes of their own fsync as ever."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", lambda fd: None)
        yield


@contextlib.contextmanager
def signal_handlers_kept():
    """The SIGTERM and SIGINT handlers as before the block: a trainer or a sweep run
    in-process (train.main, sweep.main) installs its stop handlers in this process."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def own_signal_handlers():
    """The stop handlers as before each test (signal_handlers_kept)."""
    with signal_handlers_kept():
        yield


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    """A small CIFAR-format data folder shared by the whole test session (read-only use)."""
    return write_cifar_folder(tmp_path_factory.mktemp("cifar"))


class _BrokenImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the named packages, as where they are installed, and raises RuntimeError when
    one is imported, as a CPU torch with a mismatched torchvision does."""

    def __init__(self, names):
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise RuntimeError(f"operator {module.__name__}::nms does not exist")


@pytest.fixture
def broken_imports(monkeypatch):
    """Call with package names: importing them (or anything in them) raises RuntimeError
    until the test ends; modules of theirs already imported are forgotten meanwhile."""
    def breaks(*names):
        for module in [m for m in sys.modules if m.split(".")[0] in names]:
            monkeypatch.delitem(sys.modules, module)
        monkeypatch.setattr(sys, "meta_path", [_BrokenImport(names), *sys.meta_path])

    return breaks
