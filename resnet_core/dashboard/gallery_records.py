"""Which records of a predictions file a gallery shows, in what order, one page at a time.

A cell (true class t, predicted class p) selects the records of a predictions file
(``predictions/{split}_epoch_NNN.npz``, see :mod:`resnet_core.runs.folder_format`) with ``labels == t``
and ``preds == p``; they are sorted by confidence (the top-1 probability) or by loss and
paged; :mod:`.gallery_cards` draws a page of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .cell_selection import Cell

SORTS = {"confidence": "confidence (top-1 probability)", "loss": "loss"}


def confidences(preds: Mapping[str, np.ndarray]) -> np.ndarray:
    """The top-1 probability of each record (the probability of its predicted class)."""
    probs = np.asarray(preds["topk_probs"])
    return probs[:, 0] if probs.ndim == 2 else probs


def cell_positions(preds: Mapping[str, np.ndarray], cell: Cell, sort: str = "confidence",
                   descending: bool = True) -> np.ndarray:
    """Positions (into the prediction arrays) of the records in a cell, sorted.

    descending=True puts the most confident (or highest-loss) first: for a misclassified
    cell, the mistakes the model was surest about.
    """
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; valid: {', '.join(SORTS)}")
    labels = np.asarray(preds["labels"])
    predicted = np.asarray(preds["preds"])
    pos = np.flatnonzero((labels == cell.true) & (predicted == cell.pred))
    key = confidences(preds)[pos] if sort == "confidence" else np.asarray(preds["loss"])[pos]
    # Stable order: ties keep the records' own order, whatever the direction.
    order = np.argsort(-key if descending else key, kind="stable")
    return pos[order]


def loss_positions(preds: Mapping[str, np.ndarray]) -> np.ndarray:
    """Positions of all records, the highest loss first (ties: the records' own order)."""
    return np.argsort(-np.asarray(preds["loss"], dtype=np.float64), kind="stable")


@dataclass(frozen=True)
class Page:
    number: int  # 1-based, clamped into 1..count
    count: int  # number of pages (at least 1)
    start: int
    stop: int

    @property
    def label(self) -> str:
        return f"page {self.number} of {self.count}"


def paginate(total: int, page: int, per_page: int) -> Page:
    """The slice of page `page` (1-based, clamped) of `total` records."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    count = max(1, math.ceil(total / per_page))
    number = min(max(1, int(page)), count)
    start = (number - 1) * per_page
    return Page(number, count, start, min(total, start + per_page))


def file_at(paths: Sequence[str] | None, index: int) -> str:
    """The file of the image at index of its set, "" where the run records none for it."""
    return paths[index] if paths is not None and 0 <= index < len(paths) else ""


@dataclass(frozen=True)
class GalleryRecord:
    position: int  # into the prediction arrays
    index: int  # into the source image set
    true: int
    pred: int
    confidence: float
    loss: float
    top: tuple[tuple[int, float], ...]  # (class, probability), best first
    path: str = ""  # the image's file, relative to the data folder; "" where the run records none


def records(preds: Mapping[str, np.ndarray], positions: Sequence[int], top: int = 3,
            paths: Sequence[str] | None = None) -> list[GalleryRecord]:
    """The records at positions (into the prediction arrays), each with its top classes and,
    given paths (each image's file by its index in the source set, as the run's
    data_files.json lists them), its file."""
    conf = confidences(preds)
    losses = preds.get("loss")  # the atlas's features carry no loss: nan, which a card leaves out
    topk_classes = np.asarray(preds["topk_classes"])
    topk_probs = np.asarray(preds["topk_probs"])
    out = []
    for pos in positions:
        pos = int(pos)
        k = min(top, topk_classes.shape[1]) if topk_classes.ndim == 2 else 0
        out.append(GalleryRecord(
            position=pos, index=int(preds["indices"][pos]), true=int(preds["labels"][pos]),
            pred=int(preds["preds"][pos]), confidence=float(conf[pos]),
            loss=float(losses[pos]) if losses is not None else math.nan,
            top=tuple((int(topk_classes[pos, j]), float(topk_probs[pos, j])) for j in range(k)),
            path=file_at(paths, int(preds["indices"][pos])),
        ))
    return out
