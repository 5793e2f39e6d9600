"""Each held-out image's history: right or wrong at every recorded evaluation of a split
(validation or test), epoch by epoch.

These images are never trained on, so what changes between two evaluations is the
model's generalisation, not its memory of them: a *flip* here is not a forgetting event,
which is about training images between their presentations (that lives in
:mod:`resnet_core.forgetting`, from the training steps' own record).

Definitions:

- an image is *right* at an epoch when the recorded prediction equals its label;
- a *flip* is right at epoch e and wrong at epoch e + 1 (consecutive epochs: the history
  is refused when an epoch is missing, so every pair is consecutive), counted by the same
  rule as forgetting events (:func:`resnet_core.forgetting.forgetting_events`);
- *never right*: wrong at every recorded epoch (a flag of its own, with 0 flips);
- *learned at* (our term, for "learned last"): the first epoch from which the image is
  right at every later recorded epoch, up to the last one; 0 when it is wrong at the last
  recorded epoch (not learned, or flipped at the end). It is about the epochs recorded:
  a run that trains on may still flip it.

Only what was recorded is used, never guessed: a split with fewer than two recorded
epochs, a missing or unreadable epoch, or epochs whose image sets (or labels) differ
give no history but a reason the page shows.

Memory: one (images x epochs) bool matrix, filled one epoch at a time, so a history of
5,000 images x 200 epochs holds 1 MB and never more than one epoch's file at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import runs
from ..forgetting import forgetting_events

Records = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class History:
    epochs: np.ndarray  # (E,) the recorded epochs, ascending and consecutive
    indices: np.ndarray  # (N,) image indices, ascending
    labels: np.ndarray  # (N,)
    right: np.ndarray  # (N, E) bool: right at each epoch
    flips: np.ndarray  # (N,) right at an epoch, wrong at the next
    learned_at: np.ndarray  # (N,) the epoch from which right to the end; 0: wrong at the last epoch

    @property
    def never_right(self) -> np.ndarray:
        return ~self.right.any(axis=1)

    def rows(self, indices: Sequence[int]) -> np.ndarray:
        """Rows of `right` of these image indices (each must be in the history)."""
        return self.right[np.searchsorted(self.indices, np.asarray(indices, dtype=np.int64))]


@dataclass(frozen=True)
class HistoryResult:
    history: History | None
    problem: str | None  # why there is no history (None when there is one)


def learned_at(right: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """Per row: the epoch from which it is right at every later epoch; 0 when wrong at the last."""
    right = np.asarray(right, dtype=bool)
    n, e = right.shape
    wrong = ~right
    # The last wrong column: reversed argmax finds it; a row with no wrong column is right throughout.
    any_wrong = wrong.any(axis=1)
    last_wrong = e - 1 - np.argmax(wrong[:, ::-1], axis=1)
    first_of_tail = np.where(any_wrong, last_wrong + 1, 0)
    out = np.zeros(n, dtype=np.int64)
    ok = first_of_tail < e
    out[ok] = np.asarray(epochs)[first_of_tail[ok]]
    return out


def _gaps(epochs: Sequence[int]) -> list[tuple[int, int]]:
    """The spans (first, last) of epochs 1..max(epochs) that sorted epochs lack; computed
    from the epochs present, never by counting up to the largest: a file named
    val_epoch_99999999.npz made a set of 10**8 epochs (35 s, 11 GB)."""
    gaps, previous = [], 0
    for e in epochs:
        if e > previous + 1:
            gaps.append((previous + 1, e - 1))
        previous = e
    return gaps


def _spans(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted numbers as spans of consecutive ones: 1, 2, 3, 7 -> (1, 3), (7, 7)."""
    spans: list[tuple[int, int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], n)
        else:
            spans.append((n, n))
    return spans


def _span_text(spans: Sequence[tuple[int, int]]) -> str:
    """(1, 3), (7, 7) -> "1-3, 7"."""
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def history_from_records(epochs: Sequence[int], load: Callable[[int], Records]) -> HistoryResult:
    """The history of the images of `epochs` (the recorded ones), loading one epoch at a time
    with `load(epoch)` (which may raise runs.RunFolderError)."""
    epochs = sorted(int(e) for e in epochs)
    if len(epochs) < 2:
        only = f"only epoch {epochs[0]} is" if epochs else "no epoch is"
        return HistoryResult(None, f"A history needs the predictions of at least two epochs, and {only} recorded "
                                   "for this split (a run without a validation split records its test predictions "
                                   "every epoch; with one, only once at the end).")
    gaps = _gaps(epochs)
    if gaps:
        several = len(gaps) > 1 or gaps[0][0] != gaps[0][1]
        return HistoryResult(None, f"Epoch{'s' if several else ''} {_span_text(gaps)} of this split "
                                   f"{'are' if several else 'is'} not recorded (recorded: "
                                   f"{_span_text(_spans(epochs))}), so flips between "
                                   "them cannot be counted.")
    right = None
    indices = labels = None
    for col, epoch in enumerate(epochs):
        try:
            rec = load(epoch)
        except runs.RunFolderError as e:
            return HistoryResult(None, f"Epoch {epoch} cannot be read ({e}), so the history would have a gap.")
        order = np.argsort(rec["indices"], kind="stable")
        idx = np.asarray(rec["indices"], dtype=np.int64)[order]
        lab = np.asarray(rec["labels"], dtype=np.int64)[order]
        if indices is None:
            if len(idx) > 1 and (idx[1:] == idx[:-1]).any():
                return HistoryResult(None, f"Epoch {epoch} records an image twice, so records cannot be matched "
                                           "to images.")
            indices, labels = idx, lab
            right = np.empty((len(idx), len(epochs)), dtype=bool)
        elif len(idx) != len(indices) or (idx != indices).any():
            differ = len(np.setxor1d(idx, indices))
            return HistoryResult(None, f"Epoch {epoch} records {len(idx):,} images and epoch {epochs[0]} "
                                       f"{len(indices):,}; {differ:,} images are in one and not the other, so "
                                       "the split changed between them and per-image histories cannot be lined up.")
        elif (lab != labels).any():
            return HistoryResult(None, f"Epoch {epoch} records other labels than epoch {epochs[0]} for "
                                       f"{int((lab != labels).sum()):,} images.")
        right[:, col] = np.asarray(rec["preds"])[order] == lab
    ep = np.asarray(epochs, dtype=np.int64)
    return HistoryResult(History(epochs=ep, indices=indices, labels=labels, right=right,
                                 flips=forgetting_events(right), learned_at=learned_at(right, ep)), None)


def load_history(run_dir: Path, split: str) -> HistoryResult:
    """The history of a run's split from its predictions files."""
    return history_from_records(runs.recorded_epochs(run_dir, split),
                                lambda e: runs.load_predictions(run_dir, split, e))


VIEWS = {
    "never right": "wrong at every recorded epoch",
    "most flipped": "the most flips (right, then wrong at the next epoch) first",
    "learned last": "right from a late epoch to the end, the latest first",
}


def view_rows(history: History, view: str) -> np.ndarray:
    """The history's rows (into indices, flips, learned_at...) of a view, in its order
    (ties: ascending image index)."""
    if view == "never right":
        return np.flatnonzero(history.never_right)
    if view == "most flipped":
        keep = np.flatnonzero(history.flips > 0)
        return keep[np.argsort(-history.flips[keep], kind="stable")]
    if view == "learned last":
        keep = np.flatnonzero(history.learned_at > 0)
        return keep[np.argsort(-history.learned_at[keep], kind="stable")]
    raise ValueError(f"unknown view {view!r}; valid: {', '.join(VIEWS)}")


def positions_of(records: Records, indices: Sequence[int]) -> np.ndarray:
    """Positions in one epoch's record arrays of these image indices (each must be recorded there)."""
    order = np.argsort(records["indices"], kind="stable")
    return order[np.searchsorted(np.asarray(records["indices"])[order], np.asarray(indices, dtype=np.int64))]
