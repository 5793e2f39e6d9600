"""Classification metrics from true and predicted labels, exact (no epsilon anywhere).

Rows of a confusion matrix are true classes, columns predicted classes. A class that
was never predicted has an undefined precision (NaN); a class with no examples has an
undefined recall. F1 is 2TP / (2TP + FP + FN), so it is defined (0 when TP is 0) for
every class that has examples or predictions, and undefined only for a class with
neither. Undefined stays undefined: it is never silently turned into 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """C x C int64 counts, rows = true class, columns = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} true labels but {y_pred.size} predictions")
    for name, y in (("true", y_true), ("predicted", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} labels must lie in 0..{num_classes - 1}")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den is 0: an undefined ratio, not a small one."""
    num = num.astype(np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


@dataclass(frozen=True)
class ClassReport:
    precision: np.ndarray  # per class, NaN where the class was never predicted
    recall: np.ndarray  # per class, NaN where the class has no examples
    f1: np.ndarray  # per class, NaN only where the class has neither examples nor predictions
    support: np.ndarray  # true examples per class
    accuracy: float  # NaN for an empty matrix
    macro_f1: float  # mean F1 over the classes with support > 0; NaN when there are none


def class_report(cm: np.ndarray) -> ClassReport:
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = _divide(tp, predicted)
    recall = _divide(tp, support)
    # 2TP + FP + FN = predicted + support: F1 from counts, not from precision and recall,
    # so that a class with examples that is never predicted gets 0, not NaN.
    f1 = _divide(2 * tp, predicted + support)
    total = cm.sum()
    accuracy = float(tp.sum() / total) if total else float("nan")
    # Classes without examples are left out of the mean: a test set that lacks a class says
    # nothing about how well the model recognises it.
    present = support > 0
    macro_f1 = float(f1[present].mean()) if present.any() else float("nan")
    return ClassReport(precision, recall, f1, support, accuracy, macro_f1)


def normalize_confusion(cm: np.ndarray, mode: str) -> np.ndarray:
    """'counts' as is; 'recall' divides each row by its total; 'precision' each column."""
    cm = np.asarray(cm, dtype=np.int64)
    if mode == "counts":
        return cm.astype(np.float64)
    if mode == "recall":
        return _divide(cm, cm.sum(axis=1, keepdims=True))
    if mode == "precision":
        return _divide(cm, cm.sum(axis=0, keepdims=True))
    raise ValueError(f"unknown normalisation {mode!r}; valid: counts, recall, precision")


def most_confused_pairs(cm: np.ndarray, k: int = 10) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal cells as (true, predicted, count), largest first, count > 0."""
    cm = np.asarray(cm, dtype=np.int64)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    pairs = [(int(i // cm.shape[1]), int(i % cm.shape[1])) for i in order]
    return [(t, p, int(off[t, p])) for t, p in pairs if off[t, p] > 0]


def coarse_confusion(cm: np.ndarray, superclass_of, num_superclasses: int) -> np.ndarray:
    """The S x S matrix of superclasses from a C x C one: cell (a, b) counts the images whose
    true class lies in superclass a and whose predicted class lies in b (rows = true)."""
    cm = np.asarray(cm, dtype=np.int64)
    superclass_of = np.asarray(superclass_of, dtype=np.int64)
    if superclass_of.shape != (cm.shape[0],) or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"{superclass_of.size} superclass indices for a {cm.shape[0]}x{cm.shape[1]} matrix")
    if superclass_of.size and (superclass_of.min() < 0 or superclass_of.max() >= num_superclasses):
        raise ValueError(f"superclass indices must lie in 0..{num_superclasses - 1}")
    member = np.zeros((cm.shape[0], num_superclasses), dtype=np.int64)
    member[np.arange(cm.shape[0]), superclass_of] = 1
    return member.T @ cm @ member


def topk_accuracy(labels, topk_classes, k: int) -> float:
    """The share of images whose true label is among their k most probable classes
    (topk_classes: N x K, most probable first, K >= k); NaN for no images."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    topk_classes = np.asarray(topk_classes, dtype=np.int64)
    if topk_classes.ndim != 2 or topk_classes.shape[0] != labels.size:
        raise ValueError(f"top-k classes of shape {topk_classes.shape} for {labels.size} labels")
    if not 1 <= k <= topk_classes.shape[1]:
        raise ValueError(f"top-{k} accuracy from the {topk_classes.shape[1]} most probable classes")
    if not labels.size:
        return float("nan")
    return float((topk_classes[:, :k] == labels[:, None]).any(axis=1).mean())
