"""A checkpoint's penultimate features of a split's images, computed once and cached in the run folder.

The features are the model's last stage after global average pooling
(:meth:`resnet_core.models.CifarResNet.features`: 64 floats for basic blocks, 256 for
bottlenecks), computed in fp32, in eval mode, in batches of BATCH images, from the images
as the run normalised them. The same pass gives the checkpoint's prediction and its
confidence (``fc`` of the features, the argmax and the largest softmax probability).

Splits: ``val``, the run's validation split (indices into the CIFAR-10 training set, as the
trainer drew them: ``training_split`` of its ``val_size``, ``split_seed`` and ``subset``); ``test``,
the test set; ``train``, the training images the run trained on (its ``subset`` included)
with the data set's own labels: a run with ``label_noise`` trained on some other labels,
which ``dynamics/train_images.npz`` records.

The cache is ``features/{split}_{best|last}.npz`` (format in
:mod:`resnet_core.runs.folder_format`), keyed on the checkpoint file the features came from
(its name, mtime_ns and size): a new best.pt or last.pt, or best.pt appearing where last.pt
stood in, computes them again. A read-only run folder gets its features, uncached.

Measured on this 2-core CPU (ResNet-20, real CIFAR-10, batches of 500, 2 torch threads,
the cores shared with other jobs): the 10,000 test images took 46.8 s (214 images/s) and
all 50,000 training images 415 s (121 images/s while a test suite also ran); their files
hold 2.7 MiB and 13.5 MiB (64 float32 and 20 bytes of the rest an image; uncompressed: the
features hardly compress), written in 0.02 s and 0.07 s and read back in 3 ms and 14 ms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import runs
from .cifar import IMAGE_FOLDER, CifarData, DataError, ProgressCallback, dataset_title, run_data_folder, training_split
from .folder_dataset import changed_files, load_run_data
from .run_model import ModelLoadError, RunModel, checkpoint_file, load_run_model
from .runs.values import as_count

SPLITS = runs.SPLITS  # features of the same splits as the predictions: validation, training, test images
BATCH = 500


class EmbeddingError(Exception):
    """Features that cannot be computed: one line saying why (no checkpoint, no such split, no data)."""


@dataclass(frozen=True)
class Features:
    split: str
    checkpoint: str  # "best" or "last", as asked
    checkpoint_file: str  # the file the features came from: "best.pt" or "last.pt"
    indices: np.ndarray  # (N,) int64 dataset indices (the training set for val/train, the test set for test)
    labels: np.ndarray  # (N,) int64 true labels (the data set's)
    predictions: np.ndarray  # (N,) int64 the checkpoint's argmax
    confidence: np.ndarray  # (N,) float32 the checkpoint's largest softmax probability
    features: np.ndarray  # (N, D) float32 penultimate features (after global pooling)

    @property
    def dims(self) -> int:
        return self.features.shape[1]

    @property
    def accuracy(self) -> float:
        """The checkpoint's accuracy on these images (a fraction; nan for none)."""
        return float(np.mean(self.predictions == self.labels)) if len(self.labels) else float("nan")


@dataclass(frozen=True)
class CheckpointKey:
    file: str
    mtime_ns: int
    size: int


def checkpoint_key(run_dir: Path, checkpoint: str) -> CheckpointKey | None:
    """The file "best" or "last" loads now, its mtime and size; None when there is none."""
    try:
        name, _ = checkpoint_file(run_dir, checkpoint)
        stat = os.lstat(Path(run_dir) / name)
    except (ModelLoadError, OSError):
        return None
    return CheckpointKey(name, stat.st_mtime_ns, stat.st_size)


def features_file(run_dir: str | os.PathLike, split: str, checkpoint: str = "best") -> Path:
    return runs.features_path(Path(run_dir), split, checkpoint)


def cached_features(run_dir: str | os.PathLike, split: str, checkpoint: str = "best") -> Features | None:
    """The cached features of the checkpoint as it is now; None where there are none, they
    came from another checkpoint file, or the file is damaged. Never raises."""
    if split not in SPLITS or checkpoint not in runs.CHECKPOINTS:
        return None
    key = checkpoint_key(Path(run_dir), checkpoint)
    try:
        arrays = runs.load_features(Path(run_dir), split, checkpoint)
    except (runs.RunFolderError, OSError):
        return None
    held = CheckpointKey(str(arrays["checkpoint_file"]), int(arrays["checkpoint_mtime_ns"]),
                         int(arrays["checkpoint_size"]))
    if key is None or held != key:
        return None
    return Features(split, checkpoint, key.file, *(arrays[k] for k in
                                                   ("indices", "labels", "predictions", "confidence", "features")))


def split_images(run_info: runs.RunInfo, data: CifarData, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The images (N, 3, S, S) uint8 (S: the run's image size), dataset indices and labels of a run's split."""
    cfg, resolved = run_info.train_config, run_info.resolved
    if split == "test":
        return data.test_images, np.arange(len(data.test_labels), dtype=np.int64), data.test_labels.astype(np.int64)
    val_size = as_count(cfg.get("val_size"), 0)
    if split == "val" and (not val_size or resolved.get("val_source") == "test"):
        raise EmbeddingError(f"{run_info.path.name} has no validation split carved from the training set: "
                             "use --split test")
    try:
        train_idx, val_idx = training_split(len(data.train_labels), val_size, as_count(cfg.get("split_seed"), 0),
                                            as_count(cfg.get("subset"), 0), class_ordered=data.dataset == IMAGE_FOLDER)
    except ValueError as e:
        raise EmbeddingError(f"{runs.CONFIG_FILE}: {e}") from None
    idx = val_idx if split == "val" else train_idx
    idx = idx.astype(np.int64)
    return data.train_images[idx], idx, data.train_labels[idx].astype(np.int64)


def run_data_dir(run_info: runs.RunInfo, data_dir: str | os.PathLike | None) -> str | os.PathLike | None:
    """The folder the run read while it still holds the run's dataset (an image folder run's
    own root, always), else data_dir (None: the default data folder)."""
    if run_info.dataset == IMAGE_FOLDER:
        return run_info.resolved.get("data_dir") or data_dir
    return run_data_folder(run_info.resolved, run_info.dataset) or data_dir


def run_data(run_info: runs.RunInfo, data_dir: str | os.PathLike | None) -> CifarData:
    """The run's dataset from run_data_dir (an image folder split as the run split it)."""
    try:
        data = load_run_data(run_info.config, run_info.dataset, data_dir, run_info.path.parent)
    except (DataError, OSError) as e:
        raise EmbeddingError(f"no {dataset_title(run_info.dataset)} for {run_info.path.name}: "
                             f"{' '.join(str(e).split())}") from None
    changed = changed_files(data, runs.read_data_files(run_info.path) if data.train_files else None)
    if changed:
        split, moved, _ = changed
        raise EmbeddingError(f"{run_info.path.name}'s image folder changed since the run: {moved:,} of its "
                             f"{split} files are not at the same place now, so its features would be other images'")
    return data


@torch.no_grad()
def penultimate(run_model: RunModel, images: np.ndarray, progress: ProgressCallback | None = None,
                device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The features (N, D) float32, predictions (N,) int64 and confidences (N,) float32 of
    uint8 images (N, 3, S, S) of the run's image size, in fp32 and eval mode, BATCH images at a time."""
    model = run_model.model.to(device).eval()
    parts: tuple[list, list, list] = ([], [], [])
    for start in range(0, len(images), BATCH):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + BATCH]))
        feats = model.features(run_model.inputs(batch).to(device)).float()
        confidence, predicted = torch.softmax(model.fc(feats), dim=1).max(dim=1)
        for part, value in zip(parts, (feats, predicted, confidence), strict=True):
            part.append(value.cpu())
        if progress is not None:
            progress(min(start + BATCH, len(images)), len(images))
    if not len(images):
        dims = model.fc.in_features
        return np.zeros((0, dims), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
    feats, predicted, confidence = (torch.cat(p).numpy() for p in parts)
    return feats.astype(np.float32), predicted.astype(np.int64), confidence.astype(np.float32)


def run_device(run_info: runs.RunInfo | None) -> torch.device:
    """The device the run trained on (config.json's resolved.device) where this machine has
    it, else the CPU: a run trained on cuda:0 has its features computed on cuda:0."""
    recorded = run_info.resolved.get("device") if run_info is not None else None
    try:
        device = torch.device(recorded) if isinstance(recorded, str) and recorded else torch.device("cpu")
    except (RuntimeError, ValueError):
        return torch.device("cpu")
    if device.type == "cuda" and torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count():
        return device
    if device.type == "mps" and torch.backends.mps.is_available():
        return device
    return torch.device("cpu")


def compute_features(run_dir: str | os.PathLike, split: str, checkpoint: str = "best",
                     progress: ProgressCallback | None = None, data_dir: str | os.PathLike | None = None,
                     device: str | torch.device | None = None) -> Features:
    """The split's features under the checkpoint: the cache where it holds this checkpoint's,
    else computed (on device; None: run_device) and cached. EmbeddingError, in one line, for
    an unknown split, a folder that is not a run, a missing or corrupt checkpoint, or no
    CIFAR-10 to read."""
    if split not in SPLITS:
        raise EmbeddingError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    cached = cached_features(run_dir, split, checkpoint)
    if cached is not None:
        return cached
    run_dir = Path(run_dir)
    try:
        key = checkpoint_key(run_dir, checkpoint)  # before loading: a newer file makes this cache stale
        run_model = load_run_model(run_dir, checkpoint)
    except ModelLoadError as e:
        raise EmbeddingError(str(e)) from None
    info = runs.read_run(run_dir)
    images, indices, labels = split_images(info, run_data(info, data_dir), split)
    feats, predicted, confidence = penultimate(run_model, images, progress,
                                               run_device(info) if device is None else device)
    result = Features(split, checkpoint, run_model.checkpoint, indices, labels, predicted, confidence, feats)
    if key is not None and key.file == run_model.checkpoint:
        try:
            runs.save_features(run_dir, split, checkpoint, indices=indices, labels=labels, predictions=predicted,
                               confidence=confidence, features=feats, checkpoint_file=np.array(key.file),
                               checkpoint_mtime_ns=np.int64(key.mtime_ns), checkpoint_size=np.int64(key.size))
        except (OSError, runs.RunFolderError):  # a read-only run folder: the features, uncached
            pass
    return result
