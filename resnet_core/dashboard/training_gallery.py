"""Which training images a gallery of the training dynamics shows, in what order, and the
cards that draw them (no Streamlit here): the most forgotten, the never learned and the
unforgettable images of :class:`resnet_core.dynamics.Dynamics`, and any rows of the record
(a data map's selection). :func:`.gallery_cards.training_gallery_html` draws the cards.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..dynamics import Dynamics
from .gallery_cards import TrainingCard
from .gallery_records import file_at

VIEWS = {
    "most forgotten": "the most forgetting events first (ties: the least confident first)",
    "never learned": "wrong at every presentation (Toneva et al. count them as forgotten infinitely often), "
                     "the least confident first",
    "unforgettable": "right at some presentation and never forgotten after it, the earliest learned first",
}


def view_rows(d: Dynamics, view: str) -> np.ndarray:
    """The record's rows of a view, in its order (ties: the record's order)."""
    f, confidence = d.forgetting, d.data_map.confidence
    if view == "most forgotten":
        rows = np.flatnonzero(f.events > 0)
        return rows[np.lexsort((confidence[rows], -f.events[rows]))]
    if view == "never learned":
        rows = np.flatnonzero(f.never_learned)
        return rows[np.argsort(confidence[rows], kind="stable")]
    if view == "unforgettable":
        rows = np.flatnonzero(f.unforgettable)
        return rows[np.argsort(f.first_learned[rows], kind="stable")]
    raise ValueError(f"unknown view {view!r}; valid: {', '.join(VIEWS)}")


def cards(d: Dynamics, rows: Sequence[int], notes: Mapping[int, str] | None = None,
          paths: Sequence[str] | None = None) -> list[TrainingCard]:
    """The cards of these rows of the record, in this order; notes by row; paths: the
    training set's files, where the run records them. A card's strip holds the epochs that
    presented the image."""
    r, f, m = d.record, d.forgetting, d.data_map
    rows = np.asarray(rows, dtype=np.int64)
    presented = r.presented[rows]
    out = []
    for row, shown in zip(rows.tolist(), presented, strict=True):
        out.append(TrainingCard(
            index=int(r.indices[row]), label=int(r.labels[row]), original_label=int(r.original_labels[row]),
            confidence=float(m.confidence[row]), variability=float(m.variability[row]), events=int(f.events[row]),
            never_learned=bool(f.never_learned[row]), right=tuple(r.correct[row][shown].tolist()),
            epochs=tuple(r.epochs[shown].tolist()), note=(notes or {}).get(row, ""),
            path=file_at(paths, int(r.indices[row]))))
    return out


def flipped_share(d: Dynamics, rows: np.ndarray) -> str | None:
    """"k of n flipped (x%, against y% of all training images)", or None when the run
    flipped no label or rows is empty."""
    flipped = d.record.flipped
    if not flipped.any() or not len(rows):
        return None
    k = int(flipped[rows].sum())
    return f"{k:,} of {len(rows):,} flipped ({k / len(rows):.1%}, against {flipped.mean():.1%} of all training images)"
