"""Some of a run's classes as a matrix draws them, in an order of its own (no Streamlit
here): CIFAR-100's classes superclass by superclass (:mod:`.class_groups`), or only the
busiest classes of a selection, and the way from a drawn cell back to its classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .cell_selection import Cell
from .class_colours import has_superclasses
from .class_groups import superclass_order


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


@dataclass(frozen=True)
class ClassView:
    """Some of a run's classes (labels, in the order drawn) as a matrix draws them: its
    rows and columns are positions into labels."""

    labels: np.ndarray

    def names(self, classes: Sequence[str]) -> list[str]:
        return [str(classes[c]) for c in self.labels.tolist()]

    def matrix(self, full: np.ndarray) -> np.ndarray:
        """The rows and columns of a class-by-class matrix that the view draws, in its order."""
        return np.asarray(full)[np.ix_(self.labels, self.labels)]

    def cell_of(self, drawn: Cell) -> Cell:
        """The classes of a cell of the view's matrix."""
        return Cell(int(self.labels[drawn.true]), int(self.labels[drawn.pred]))

    def drawn_at(self, cell: Cell | None) -> tuple[int, int] | None:
        """Where the view's matrix draws a cell of the classes; None when it leaves a class out."""
        if cell is None:
            return None
        where = {c: i for i, c in enumerate(self.labels.tolist())}
        if cell.true not in where or cell.pred not in where:
            return None
        return where[cell.true], where[cell.pred]
