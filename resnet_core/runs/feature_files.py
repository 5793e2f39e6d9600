"""features/: the cache of a checkpoint's penultimate features, written and read as the format says."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import load_npz
from .layout import FEATURES_DIR, MAX_FEATURE_BYTES, RunFolderError, features_path
from .writing import save_arrays

IMAGE_ARRAYS = ("indices", "labels", "predictions")  # int64, one value an image
KEY_ARRAYS = ("checkpoint_file", "checkpoint_mtime_ns", "checkpoint_size")  # which checkpoint they came from


def save_features(run_dir: Path, split: str, checkpoint: str, **arrays: np.ndarray) -> Path:
    """features/{split}_{checkpoint}.npz, written atomically (see :mod:`resnet_core.runs.folder_format`)."""
    return save_arrays(features_path(run_dir, split, checkpoint), **arrays)


def _problem(arrays: dict[str, np.ndarray]) -> str | None:
    """What is wrong with a features file's arrays, or None."""
    missing = [k for k in (*IMAGE_ARRAYS, "confidence", "features", *KEY_ARRAYS) if k not in arrays]
    if missing:
        return f"has no {', '.join(missing)}"
    features = arrays["features"]
    if features.ndim != 2 or features.dtype != np.float32:
        return f"features is {features.dtype} of shape {features.shape}, not float32 (N, D)"
    n = len(features)
    for k in IMAGE_ARRAYS:
        if arrays[k].shape != (n,) or arrays[k].dtype != np.int64:
            return f"{k} is {arrays[k].dtype} of shape {arrays[k].shape}, not int64 ({n},)"
    if arrays["confidence"].shape != (n,) or arrays["confidence"].dtype != np.float32:
        return f"confidence is not float32 ({n},)"
    if arrays["checkpoint_file"].dtype.kind != "U" or arrays["checkpoint_file"].shape != ():
        return "checkpoint_file is not one string"
    if any(arrays[k].dtype != np.int64 or arrays[k].shape != () for k in KEY_ARRAYS[1:]):
        return "checkpoint_mtime_ns and checkpoint_size are not int64 scalars"
    return None


def load_features(run_dir: Path, split: str, checkpoint: str) -> dict[str, np.ndarray]:
    """The arrays of features/{split}_{checkpoint}.npz, checked against the format;
    RunFolderError, in one line, for a file that is missing, damaged or not as documented."""
    name = f"{FEATURES_DIR}/{features_path(run_dir, split, checkpoint).name}"
    arrays = load_npz(Path(run_dir), name, MAX_FEATURE_BYTES)
    problem = _problem(arrays)
    if problem:
        raise RunFolderError(f"{name}: {problem}")
    return arrays
