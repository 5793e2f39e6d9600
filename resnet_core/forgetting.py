"""Forgetting events of the training images, as Toneva et al. 2019 ("An Empirical Study of
Example Forgetting during Deep Neural Network Learning") define them, counted on a run's
training record (:class:`resnet_core.runs.TrainingRecord`).

- An image is *right* at a presentation when the training step that presented it predicted
  its trained label. What is counted is the record's: at most one presentation per image per epoch,
  the augmented image the step trained on, BatchNorm in training mode, from that step's own
  forward pass (as both papers do), never a separate evaluation.
- A *forgetting event*: right at a presentation and wrong at the next presentation of the
  same image. An epoch that did not present it (the dropped last partial batch, a max_steps
  run's untaken steps) is skipped, neither right nor wrong.
- *Never learned*: presented and wrong at every presentation. Toneva et al. count these as
  forgotten infinitely often; here they are shown apart, with 0 events.
- *Unforgettable*: right at some presentation and never forgotten.
- *First learned*: the first epoch at which it was right; 0 when never.

An image that no epoch presented is none of these. forgetting_events without `presented`
takes every epoch to present every image, as the held-out history of dashboard/history.py
(prediction flips between epoch evaluations) does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .runs import TrainingRecord


def forgetting_events(right: np.ndarray, presented: np.ndarray | None = None) -> np.ndarray:
    """(N,) int64: per row of an (N, E) bool matrix, how often it is right at a presentation and
    wrong at the next presentation; presented (N, E) bool says which epochs presented each
    image (None: all), and right counts only where presented."""
    right = np.asarray(right, dtype=bool)
    if presented is None:
        return (right[:, :-1] & ~right[:, 1:]).sum(axis=1)
    presented = np.asarray(presented, dtype=bool)
    events = np.zeros(len(right), dtype=np.int64)
    was_right = np.zeros(len(right), dtype=bool)  # right at its latest presentation so far
    # One pass over the epochs, on whole columns: 165 epochs of 50,000 images take a few ms,
    # where indexing each image's presentations apart would loop in Python over the images.
    for e in range(right.shape[1]):
        shown = presented[:, e]
        now_right = right[:, e] & shown
        events += was_right & shown & ~now_right
        was_right = np.where(shown, now_right, was_right)
    return events


def first_right(right: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """(N,) int64: per row of an (N, E) bool matrix, the epoch of its first True column; 0 when none."""
    right = np.asarray(right, dtype=bool)
    first = np.asarray(epochs, dtype=np.int64)[np.argmax(right, axis=1)] if right.shape[1] else 0
    return np.where(right.any(axis=1), first, 0)


@dataclass(frozen=True)
class Forgetting:
    """Per training image (rows of the record): the counts defined in this module's docstring."""
    events: np.ndarray  # (N,) int64 forgetting events (0 for never learned)
    never_learned: np.ndarray  # (N,) bool: presented, and wrong at every presentation
    unforgettable: np.ndarray  # (N,) bool: right at some presentation, never forgotten
    first_learned: np.ndarray  # (N,) int64: first epoch right; 0 never
    presented: np.ndarray  # (N,) bool: presented at least once (the others are none of the above)

    @property
    def forgotten(self) -> np.ndarray:
        """(N,) bool: forgotten at least once (never-learned images, with no event, are not)."""
        return self.events > 0


def forgetting(record: TrainingRecord) -> Forgetting:
    """The forgetting events, never-learned, unforgettable and first-learned of a record's images."""
    presented = record.presented
    right = record.correct & presented
    events = forgetting_events(right, presented)
    learned, shown = right.any(axis=1), presented.any(axis=1)
    return Forgetting(events=events, never_learned=shown & ~learned, unforgettable=learned & (events == 0),
                      first_learned=first_right(right, record.epochs), presented=shown)
