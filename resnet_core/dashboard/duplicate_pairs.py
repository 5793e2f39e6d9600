"""What Explain's near-duplicates view shows (no Streamlit): the pairs' cards and the run's
accuracy on the duplicated test images against the rest (resnet_core.duplicates)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..duplicates import Duplicates, SplitAccuracy
from .gallery_cards import PairCard


def pair_cards(found: Duplicates, start: int, stop: int, test_labels: np.ndarray, train_labels: np.ndarray,
               preds: Mapping[str, np.ndarray] | None) -> list[PairCard]:
    """The cards of pairs start..stop-1 (most similar first), with the run's recorded
    prediction of each test image where preds (test predictions) hold one."""
    predicted = {} if preds is None else dict(zip(np.asarray(preds["indices"]).tolist(),
                                                  np.asarray(preds["preds"]).tolist(), strict=True))
    return [PairCard(test_index=t, train_index=r, distance=d, test_label=int(test_labels[t]),
                     train_label=int(train_labels[r]), pred=predicted.get(t))
            for t, r, d in zip(found.test_indices[start:stop].tolist(), found.train_indices[start:stop].tolist(),
                               found.distance[start:stop].tolist(), strict=True)]


def percent(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


def accuracy_text(acc: SplitAccuracy, trained_only: bool = False) -> str:
    """One line: the accuracy on the duplicated images (trained_only: those whose twin the run
    trained on) and on the rest, with their counts."""
    twins = "whose training twin the run trained on" if trained_only else "with a training twin"
    return (f"{percent(acc.on_duplicates)} on the {acc.duplicates:,} test images {twins} "
            f"({acc.duplicates_right:,} right) · {percent(acc.on_rest)} on the other {acc.rest:,} "
            f"({acc.rest_right:,} right)")


def trained_twins_text(trained: int, found: int) -> str:
    """Why the accuracy counts only some of the twins: the run trained on `trained` of the `found`."""
    return (f"The run trained on {trained:,} of these {found:,} twins; the other {found - trained:,} lie outside its "
            "training images (its --subset or its validation split), so their test images count with the rest.")
