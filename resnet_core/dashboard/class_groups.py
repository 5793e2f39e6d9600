"""Classes grouped by superclass (CIFAR-100: 20 superclasses of 5 classes each): the order a
many-class confusion matrix is drawn in, a superclass's members, its blocks of rows, and
per-class counts summed per superclass.

An order lists class labels by drawn position (order[i] is the label drawn i-th); its inverse,
:func:`positions`, gives a label's position. The figures keep each cell's labels (not its
position) in their customdata, so a click maps back to (true, predicted) whatever the order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .class_colours import has_superclasses



def superclass_order(classes: Sequence[str], superclass_of: Sequence[int]) -> list[int]:
    """Every class label, grouped by superclass (in superclass index order), by name within one."""
    if len(superclass_of) != len(classes):
        raise ValueError(f"{len(superclass_of)} superclass indices for {len(classes)} classes")
    return sorted(range(len(classes)), key=lambda c: (superclass_of[c], classes[c]))


def positions(order: Sequence[int]) -> dict[int, int]:
    """The inverse of an order: each label's drawn position."""
    return {label: i for i, label in enumerate(order)}


def members(classes: Sequence[str], superclass_of: Sequence[int], superclass: int) -> list[int]:
    """The labels of one superclass's classes, by name."""
    return [c for c in superclass_order(classes, superclass_of) if superclass_of[c] == superclass]


def blocks(order: Sequence[int], superclass_of: Sequence[int]) -> list[tuple[int, int, int]]:
    """The runs of consecutive drawn positions that share a superclass, as (superclass, start,
    stop) with stop exclusive, in drawn order."""
    runs: list[tuple[int, int, int]] = []
    for i, label in enumerate(order):
        if runs and runs[-1][0] == superclass_of[label]:
            runs[-1] = (runs[-1][0], runs[-1][1], i + 1)
        else:
            runs.append((superclass_of[label], i, i + 1))
    return runs


def per_superclass(counts: Sequence[int], superclass_of: Sequence[int], n_superclasses: int) -> np.ndarray:
    """Per-class counts summed over each superclass's classes (int64, one per superclass)."""
    if len(counts) != len(superclass_of):
        raise ValueError(f"{len(counts)} counts for {len(superclass_of)} classes")
    return np.bincount(np.asarray(superclass_of, dtype=np.int64), weights=np.asarray(counts, dtype=np.int64),
                       minlength=n_superclasses).astype(np.int64)


def grouped_order(classes: Sequence[str], superclass_of: Sequence[int]) -> np.ndarray:
    """The class labels superclass by superclass where superclass_of groups the classes,
    else in label order."""
    if not has_superclasses(len(classes), superclass_of):
        return np.arange(len(classes))
    return np.asarray(superclass_order(classes, superclass_of), dtype=np.int64)


def busiest_classes(counts: np.ndarray, limit: int, classes: Sequence[str],
                    superclass_of: Sequence[int] = ()) -> np.ndarray:
    """The classes of a confusion matrix (counts, C x C) worth a row and a column: all of
    them when C <= limit, else the limit classes with the most images as true or predicted
    class (fewer when fewer have any; ties: the lower label), in grouped_order."""
    counts = np.asarray(counts)
    order = grouped_order(classes, superclass_of)
    if counts.shape[0] <= limit:
        return order
    totals = counts.sum(axis=0) + counts.sum(axis=1)
    kept = np.argsort(-totals, kind="stable")[:limit]
    kept = kept[totals[kept] > 0]
    return order[np.isin(order, kept)]
