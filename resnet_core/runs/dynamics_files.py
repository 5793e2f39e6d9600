"""Reading dynamics/: what the training steps said of every training image, epoch by epoch
(the ``dynamics/`` entry of :mod:`resnet_core.runs.folder_format`), checked against the format.

Memory: the record is read into one (E, N) float32 and one (E, N) bool buffer, one epoch file
at a time, and handed out transposed, as (N, E) rows of images whose epochs lie apart in
memory: each epoch file fills a contiguous row (for 50,000 x 165, 12 ms of CPU against 83 ms
to fill the columns of an (N, E) array), and per-image reductions over epochs add whole rows.
Every file's size is checked before it is read, and the whole record's against MAX_DYNAMICS_BYTES.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .files import load_npz, named_epochs
from .layout import (DYNAMICS_DIR, DYNAMICS_FILE, MAX_DYNAMICS_BYTES, MAX_PREDICTION_BYTES, RunFolderError,
                     dynamics_images_path, dynamics_path)
from .predictions import class_count
from .values import MAX_COUNT

IMAGE_ARRAYS = ("indices", "labels", "original_labels")
HEADER_SLACK = 1 << 16  # bytes an epoch file's .npy headers may add to its arrays (numpy writes 128 each)


@dataclass(frozen=True)
class TrainingRecord:
    """A run's training images and what its training steps said of them, epoch by epoch."""
    indices: np.ndarray  # (N,) int64: each image's index in the training set
    labels: np.ndarray  # (N,) int64: the labels trained on (after label noise)
    original_labels: np.ndarray  # (N,) int64: the data set's labels
    epochs: np.ndarray  # (E,) int64: 1..E
    label_prob: np.ndarray  # (N, E) float32: probability of the trained label; NaN where not presented
    correct: np.ndarray  # (N, E) bool: the argmax was the trained label (False where not presented)

    @cached_property  # computed once: forgetting, the data map and the table all need it
    def presented(self) -> np.ndarray:
        """(N, E) bool: the epoch's training steps presented the image."""
        return ~np.isnan(self.label_prob)

    @cached_property
    def flipped(self) -> np.ndarray:
        """(N,) bool: the image's label was flipped by label noise."""
        return self.labels != self.original_labels


def dynamics_epochs(run_dir: Path) -> list[int]:
    """The epochs 1..E of dynamics/ files named as :func:`dynamics_path` names them, up to the
    first missing one ([] without a record); never raises."""
    found = set(named_epochs(Path(run_dir) / DYNAMICS_DIR, DYNAMICS_FILE, lambda e: dynamics_path(run_dir, e).name))
    last = 0
    while last + 1 in found:  # at most len(found) steps, whatever number a name holds
        last += 1
    return list(range(1, last + 1))


def _image_problem(arrays: dict[str, np.ndarray], num_classes: int) -> str | None:
    """What is wrong with train_images.npz's arrays, or None."""
    missing = [k for k in IMAGE_ARRAYS if k not in arrays]
    if missing:
        return f"has no {', '.join(missing)}"
    for k in IMAGE_ARRAYS:
        a = arrays[k]
        if a.dtype.kind not in "iu":
            return f"{k} holds {a.dtype}, not integers"
        if a.ndim != 1:
            return f"{k} has shape {a.shape}, not (N,)"
    n = len(arrays["indices"])
    if n == 0:
        return "lists no images"
    for k in ("labels", "original_labels"):
        a = arrays[k]
        if a.shape != (n,):
            return f"{k} has shape {a.shape}, not ({n},) like indices"
        if a.min() < 0 or a.max() >= num_classes:
            return f"{k} holds class {a.min() if a.min() < 0 else a.max()}, outside 0..{num_classes - 1}"
    indices = arrays["indices"]
    if indices.min() < 0 or indices.max() > MAX_COUNT:  # uint64 past int64 would wrap to negative
        return f"indices hold {indices.min() if indices.min() < 0 else indices.max()}, outside 0..2**53"
    if len(np.unique(indices)) != n:
        return "indices list an image twice"
    return None


def _read_epoch(run_dir: Path, epoch: int, n: int, label_prob: np.ndarray, correct: np.ndarray) -> None:
    """Fill label_prob and correct (rows of N) from one epoch's file, checked."""
    name = f"{DYNAMICS_DIR}/{dynamics_path(run_dir, epoch).name}"
    packed = (n + 7) // 8
    arrays = load_npz(run_dir, name, 4 * n + packed + HEADER_SLACK)
    missing = [k for k in ("label_prob", "correct") if k not in arrays]
    problem = f"has no {', '.join(missing)}" if missing else None
    if not problem:
        prob, bits = arrays["label_prob"], arrays["correct"]
        if prob.dtype.kind != "f" or prob.shape != (n,):
            problem = f"label_prob is {prob.dtype} {prob.shape}, not floats ({n},) like train_images.npz's images"
        elif bits.dtype != np.uint8 or bits.shape != (packed,):
            problem = f"correct is {bits.dtype} {bits.shape}, not uint8 ({packed},): {n} images' bits packed"
    if not problem:
        label_prob[...] = prob
        correct[...] = np.unpackbits(bits, count=n).view(bool)
        absent = np.isnan(label_prob)
        if not (absent | ((label_prob >= 0) & (label_prob <= 1))).all():
            problem = "label_prob holds a value outside 0..1"
        elif (correct & absent).any():
            problem = "correct marks an image right that the epoch did not present"
    if problem:
        raise RunFolderError(f"{name}: {problem}")


def load_dynamics(run_dir: Path, num_classes: int | None = None) -> TrainingRecord:
    """The run's training record, epochs 1..E of :func:`dynamics_epochs`, checked: every
    documented array present, of the documented kind and length (N, the images of
    train_images.npz; ceil(N / 8) packed bytes), probabilities in 0..1 or NaN, no image right
    where it was not presented, classes in 0..num_classes-1 (default: the number of classes the
    run's config.json lists), distinct indices.

    Raises RunFolderError, with a one-line message, when there is no epoch to read, a file is
    missing, damaged or inconsistent, or the record would take more than MAX_DYNAMICS_BYTES.
    """
    run_dir = Path(run_dir)
    images_name = f"{DYNAMICS_DIR}/{dynamics_images_path(run_dir).name}"
    epochs = dynamics_epochs(run_dir)
    if not epochs:
        raise RunFolderError(f"{DYNAMICS_DIR}/ records no epoch of the training images")
    if num_classes is None:
        num_classes = class_count(run_dir, images_name)
    arrays = load_npz(run_dir, images_name, MAX_PREDICTION_BYTES)
    problem = _image_problem(arrays, num_classes)
    if problem:
        raise RunFolderError(f"{images_name}: {problem}")
    n, e = len(arrays["indices"]), len(epochs)
    if n * e * 5 > MAX_DYNAMICS_BYTES:
        raise RunFolderError(f"{DYNAMICS_DIR}/ records {n:,} images x {e:,} epochs, {n * e * 5 / 2 ** 20:,.0f} MiB "
                             f"in memory, more than the {MAX_DYNAMICS_BYTES >> 20:,} MiB a record may take")
    label_prob = np.empty((e, n), dtype=np.float32)
    correct = np.empty((e, n), dtype=bool)
    for row, epoch in enumerate(epochs):
        _read_epoch(run_dir, epoch, n, label_prob[row], correct[row])
    return TrainingRecord(*(arrays[k].astype(np.int64) for k in IMAGE_ARRAYS),
                          epochs=np.asarray(epochs, dtype=np.int64), label_prob=label_prob.T, correct=correct.T)
