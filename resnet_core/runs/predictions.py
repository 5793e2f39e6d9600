"""Reading predictions/: which epochs were recorded, and their arrays, checked against the format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .layout import (
    PREDICTION_FILE,
    CONFIG_FILE,
    MAX_PREDICTION_BYTES,
    PREDICTIONS_DIR,
    RunFolderError,
    prediction_path,
)
from .files import load_npz, named_epochs, read_json_object


def recorded_epochs(run_dir: Path, split: str) -> list[int]:
    """Epochs for which predictions (val, test) or a confusion matrix (train) were saved."""
    return named_epochs(Path(run_dir) / PREDICTIONS_DIR, PREDICTION_FILE,
                        lambda epoch: prediction_path(run_dir, split, epoch).name)


_INT_ARRAYS = ("indices", "labels", "preds", "topk_classes")
_FLOAT_ARRAYS = ("topk_probs", "loss")


def _check_predictions(arrays: dict[str, np.ndarray], split: str, num_classes: int) -> str | None:
    """What is wrong with a predictions file's arrays for a run of num_classes classes, or None."""
    needed = ("confusion",) if split == "train" else _INT_ARRAYS + _FLOAT_ARRAYS
    missing = [k for k in needed if k not in arrays]
    if missing:
        return f"has no {', '.join(missing)}"
    for k in needed:
        kind = "f" if k in _FLOAT_ARRAYS else "iu"
        if arrays[k].dtype.kind not in kind:
            return f"{k} holds {arrays[k].dtype}, not {'floats' if kind == 'f' else 'integers'}"
    if split == "train":
        cm = arrays["confusion"]
        if cm.shape != (num_classes, num_classes):
            return f"confusion is {'x'.join(map(str, cm.shape)) or 'a scalar'}, not {num_classes}x{num_classes}"
        return "confusion holds negative counts" if (cm < 0).any() else None
    if arrays["labels"].ndim != 1:
        return f"labels has shape {arrays['labels'].shape}, not (N,)"
    n = len(arrays["labels"])
    for k in ("indices", "preds", "loss"):
        if arrays[k].shape != (n,):
            return f"{k} has shape {arrays[k].shape}, not ({n},) like labels"
    for k in ("topk_classes", "topk_probs"):
        a = arrays[k]
        if a.ndim != 2 or a.shape[0] != n or not 1 <= a.shape[1] <= num_classes:
            return f"{k} has shape {a.shape}, not ({n}, k) with 1 <= k <= {num_classes}"
    if arrays["topk_classes"].shape != arrays["topk_probs"].shape:
        return "topk_classes and topk_probs differ in shape"
    for k in ("labels", "preds", "topk_classes"):
        a = arrays[k]
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            bad = a.min() if a.min() < 0 else a.max()
            return f"{k} holds class {bad}, outside 0..{num_classes - 1}"
    if arrays["indices"].size and arrays["indices"].min() < 0:
        return "indices hold a negative index"
    return None


def class_count(run_dir: Path, checked: str) -> int:
    """How many classes the run's config.json lists, to check the file `checked` against;
    RunFolderError when it cannot be read or lists none."""
    try:
        classes = read_json_object(run_dir, CONFIG_FILE).get("classes")
    except OSError as e:
        raise RunFolderError(f"{CONFIG_FILE} cannot be read ({e.strerror or e})") from e
    if not isinstance(classes, list) or not classes:
        raise RunFolderError(f"{CONFIG_FILE} lists no classes to check {checked} against")
    return len(classes)


def load_predictions(run_dir: Path, split: str, epoch: int, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """The arrays saved for a split and epoch (see :mod:`resnet_core.runs.folder_format`), checked: every
    documented array present, with the documented kind of values and shapes, and classes in
    0..num_classes-1 (default: the number of classes the run's config.json lists).

    Raises RunFolderError, with a one-line message, for a file that is missing, damaged or
    inconsistent, or when the run's classes are unknown.
    """
    run_dir = Path(run_dir)
    name = f"{PREDICTIONS_DIR}/{prediction_path(run_dir, split, epoch).name}"
    if num_classes is None:
        num_classes = class_count(run_dir, name)
    arrays = load_npz(run_dir, name, MAX_PREDICTION_BYTES)
    problem = _check_predictions(arrays, split, num_classes)
    if problem:
        raise RunFolderError(f"{name}: {problem}")
    return arrays
