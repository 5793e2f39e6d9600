"""What is selected on the atlas (no Streamlit here): the images inside the areas drawn on
the map (found from their own 2-D coordinates, as on the data map, see
:mod:`.data_map_selection`), the images of a confusion-matrix cell, and how the one falls
into the cells of the other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .cell_selection import Cell
from .data_map_selection import Area, inside


def gallery_order(rows: np.ndarray, correct: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """rows in the gallery's order: the mistakes first, the most confident first; then the
    right predictions, the least confident first (ties: the rows' own order)."""
    rows = np.asarray(rows, dtype=np.int64)
    conf = np.asarray(confidence, dtype=np.float64)[rows]
    key = np.where(np.asarray(correct, dtype=bool)[rows], 1.0 + conf, -conf)
    return rows[np.argsort(key, kind="stable")]


def cell_mask(labels: np.ndarray, predictions: np.ndarray, cell: Cell) -> np.ndarray:
    """(N,) bool: the images of true class cell.true predicted as cell.pred."""
    return (np.asarray(labels) == cell.true) & (np.asarray(predictions) == cell.pred)


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, num_classes: int,
                     rows: np.ndarray | None = None) -> np.ndarray:
    """(C, C) int64: images per (true, predicted) cell, of rows only when given."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if rows is not None:
        labels, predictions = labels[rows], predictions[rows]
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class AtlasSelection:
    rows: np.ndarray  # rows of the features, in gallery order
    counts: np.ndarray  # (C, C) of those rows: rows = true class, columns = predicted class

    def by_true(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    def by_predicted(self) -> np.ndarray:
        return self.counts.sum(axis=0)


def select(areas: Sequence[Area], coords: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
           confidence: np.ndarray, num_classes: int, cell: Cell | None = None) -> AtlasSelection:
    """The images inside any of the areas (all images without areas), of the cell only when
    one is given, in gallery order, and their counts per cell."""
    coords = np.asarray(coords)
    hit = inside(areas, coords[:, 0], coords[:, 1]) if areas else np.ones(len(coords), dtype=bool)
    if cell is not None:
        hit &= cell_mask(labels, predictions, cell)
    rows = gallery_order(np.flatnonzero(hit), np.asarray(labels) == np.asarray(predictions), confidence)
    return AtlasSelection(rows, confusion_counts(labels, predictions, num_classes, rows))


def counts_text(counts: np.ndarray, classes: Sequence[str], top: int = 5) -> str:
    """"cat 12 · dog 3 · …": the classes with the most images first, at most top of them."""
    counts = np.asarray(counts)
    order = [int(c) for c in np.argsort(-counts, kind="stable")[:top] if counts[c] > 0]
    more = int((counts > 0).sum()) - len(order)
    return " · ".join(f"{classes[c]} {int(counts[c]):,}" for c in order) + (f" · {more} more" if more > 0 else "")
