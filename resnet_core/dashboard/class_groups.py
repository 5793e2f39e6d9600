"""Many classes as a reader can take them in (no Streamlit here): colours and orders of a
run's classes grouped by their superclass (CIFAR-100's 20 coarse classes of 5 fine ones).

Colours: nobody tells 100 colours apart, so a class's hue says its superclass (20 hues, a
legend of 20 entries) and its shade which of the superclass's classes it is (darkest: the
lowest label); hover names the class. The colour depends only on the class's superclass
and its rank in it, so it stays the same from run to run of the same class list. Without
superclasses, classes take distinct colours (figure_style.run_colours: PALETTE for ten).

Orders: matrices of many classes list them superclass by superclass, so a superclass's
confusions among its own classes lie in one block on the diagonal; a matrix of a few of
the classes (the busiest of a selection) keeps them in that order too.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .cell_selection import Cell
from .figure_style import PALETTE, run_colours

# The superclasses' hues: PALETTE, then ten of plotly's Dark24 that none of PALETTE's resembles.
SUPERCLASS_BASES = PALETTE + ("#222A2A", "#1616A7", "#DA16FF", "#6C7C32", "#862A16", "#2E91E5", "#B68100",
                              "#1CA71C", "#750D86", "#00A08B")
SHADE_SPREAD = 0.36  # lightness from the darkest to the lightest class of a superclass (HLS, 0-1)
LIGHTNESS = (0.18, 0.82)  # the shades' range: darker is black, lighter white on a white page


def has_superclasses(n_classes: int, superclass_of: Sequence[int]) -> bool:
    """Whether superclass_of groups these n_classes (one superclass index per class)."""
    return n_classes > 0 and len(superclass_of) == n_classes


def superclass_colours(n_superclasses: int) -> list[str]:
    """Each superclass's colour: SUPERCLASS_BASES, then distinct colours past them."""
    more = run_colours(n_superclasses + len(SUPERCLASS_BASES))
    return list(dict.fromkeys(SUPERCLASS_BASES + tuple(more)))[:n_superclasses]


def _shade(colour: str, rank: int, members: int) -> str:
    """colour at the rank-th of members lightness steps, darkest first, around its own
    lightness moved into LIGHTNESS so that no two steps are cut to the same."""
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, lightness, s = colorsys.rgb_to_hls(r, g, b)
    low, high = LIGHTNESS
    centre = min(high - SHADE_SPREAD / 2, max(low + SHADE_SPREAD / 2, lightness))
    step = SHADE_SPREAD / (members - 1) if members > 1 else 0.0
    lightness = centre + step * (rank - (members - 1) / 2)
    r, g, b = colorsys.hls_to_rgb(h, lightness, s)
    return f"#{round(255 * r):02X}{round(255 * g):02X}{round(255 * b):02X}"


def class_colours(n_classes: int, superclass_of: Sequence[int] = ()) -> list[str]:
    """One colour per class: its superclass's hue in a shade of its own where superclass_of
    groups the classes, else distinct colours."""
    if not has_superclasses(n_classes, superclass_of):
        return run_colours(n_classes)
    groups = np.asarray(superclass_of, dtype=np.int64)
    bases = superclass_colours(int(groups.max()) + 1)
    members = np.bincount(groups)
    rank = [int((groups[:c] == groups[c]).sum()) for c in range(n_classes)]
    return [_shade(bases[g], rank[c], int(members[g])) for c, g in enumerate(groups.tolist())]


def superclass_order(n_classes: int, superclass_of: Sequence[int] = ()) -> np.ndarray:
    """The classes (labels) superclass by superclass, by label within one; 0..n-1 without superclasses."""
    labels = np.arange(n_classes)
    if not has_superclasses(n_classes, superclass_of):
        return labels
    return labels[np.argsort(np.asarray(superclass_of), kind="stable")]


def busiest_classes(counts: np.ndarray, limit: int, superclass_of: Sequence[int] = ()) -> np.ndarray:
    """The classes of a confusion matrix (counts, C x C) worth a row and a column: all of
    them when C <= limit, else the limit classes with the most images as true or predicted
    class (fewer when fewer have any; ties: the lower label), in superclass order."""
    counts = np.asarray(counts)
    n = counts.shape[0]
    order = superclass_order(n, superclass_of)
    if n <= limit:
        return order
    totals = counts.sum(axis=0) + counts.sum(axis=1)
    kept = np.argsort(-totals, kind="stable")[:limit]
    kept = kept[totals[kept] > 0]
    return order[np.isin(order, kept)]


@dataclass(frozen=True)
class ClassView:
    """Some of a run's classes (labels, in the order shown) as a matrix shows them: its
    rows and columns are positions into labels."""

    labels: np.ndarray

    def names(self, classes: Sequence[str]) -> list[str]:
        return [str(classes[c]) for c in self.labels.tolist()]

    def matrix(self, full: np.ndarray) -> np.ndarray:
        """The rows and columns of a class-by-class matrix that the view shows, in its order."""
        return np.asarray(full)[np.ix_(self.labels, self.labels)]

    def cell_of(self, shown: Cell) -> Cell:
        """The classes of a cell of the view's matrix."""
        return Cell(int(self.labels[shown.true]), int(self.labels[shown.pred]))

    def shown_at(self, cell: Cell | None) -> tuple[int, int] | None:
        """Where the view's matrix shows a cell of the classes; None when it leaves a class out."""
        if cell is None:
            return None
        where = {c: i for i, c in enumerate(self.labels.tolist())}
        if cell.true not in where or cell.pred not in where:
            return None
        return where[cell.true], where[cell.pred]
