"""Likely label errors: images the model predicts as another class, confidently, while it
finds the given label unlikely. Candidates for a person to look at, not verdicts.

The probabilities must be out-of-sample, as confident learning assumes: the records of the
validation or test split, images the model never trained on (on its own training images a
model is confident of the labels it memorised, noisy ones included).

Confident learning (Northcutt et al. 2021, "Confident Learning: Estimating Uncertainty in
Dataset Labels") from the recorded top-k probabilities (k = 5 in runs of this project):

- self-confidence p(given): the probability the model gives the image's given label. It is
  known when the label is among the top-k classes; otherwise it is below the k-th
  probability, which is then used as an upper bound (``bounded``);
- the threshold of class j: the mean self-confidence of the images labelled j. With
  bounded members only an interval is known: [mean with bounded ones at 0, mean with
  them at their bound];
- an image labelled i is a candidate when its top-1 prediction is another class j, p(given)
  is surely below the threshold of i (its upper bound below the interval's low end) and j
  is confidently predicted, p(j) at least the high end of j's threshold interval. Both
  checks use the side of the interval that flags fewer images, so a candidate stays one
  whatever the unrecorded probabilities were. An image whose top-1 is its given label is
  never one, however unsure (cleanlab drops them too): in a real run (issue 22) the
  threshold checks alone flagged 29 of 631 images whose prediction was the given label;
- candidates are ranked by self-confidence, the lowest first (ties: p(j), highest first).

The threshold on the suggested class is what sets a label error apart from an ordinary
mistake: self-confidence alone is exp(-loss), so it would rank exactly as top losses and
flag every image the model merely gets wrong. In tests/test_label_errors.py, 20 planted
flips among 500 images all rank on top while 60 unsure images, right or wrong, are not flagged.

cleanlab is not used: it needs the full (images x classes) probability matrix, which the
records do not hold, and would pull in scikit-learn for a few lines of numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class LabelErrors:
    positions: np.ndarray  # candidates' positions in the records, the most likely label error first
    given_p: np.ndarray  # (N,) p(given label), exact or an upper bound
    bounded: np.ndarray  # (N,) True where given_p is only an upper bound (label outside the top-k)
    suggested: np.ndarray  # (N,) the most probable class other than the given one
    suggested_p: np.ndarray  # (N,) its probability
    threshold_low: np.ndarray  # (C,) per-class threshold interval (nan for a class with no images)
    threshold_high: np.ndarray


def self_confidence(records: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """p(given label) per record and whether it is only an upper bound (label outside the top-k)."""
    classes = np.asarray(records["topk_classes"])
    probs = np.asarray(records["topk_probs"], dtype=np.float64)
    hit = classes == np.asarray(records["labels"])[:, None]
    inside = hit.any(axis=1)
    p = np.where(inside, (probs * hit).sum(axis=1), probs[:, -1])
    return p, ~inside


def most_likely_other(records: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The most probable class other than the given label, and its probability."""
    classes = np.asarray(records["topk_classes"])
    probs = np.asarray(records["topk_probs"], dtype=np.float64)
    first_other = np.argmax(classes != np.asarray(records["labels"])[:, None], axis=1)  # top-k is sorted
    rows = np.arange(len(classes))
    return classes[rows, first_other], probs[rows, first_other]


def class_thresholds(labels: np.ndarray, given_p: np.ndarray, bounded: np.ndarray,
                     num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each class's mean self-confidence as an interval: bounded values at 0, and at their bound."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    high = np.bincount(labels, weights=given_p, minlength=num_classes)
    low = np.bincount(labels, weights=np.where(bounded, 0.0, given_p), minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, low / counts, np.nan), np.where(counts > 0, high / counts, np.nan)


def find_label_errors(records: Mapping[str, np.ndarray], num_classes: int) -> LabelErrors:
    labels = np.asarray(records["labels"])
    given_p, bounded = self_confidence(records)
    suggested, suggested_p = most_likely_other(records)
    low, high = class_thresholds(labels, given_p, bounded, num_classes)
    # The model's answer is another class: then `suggested` is that top-1 class.
    candidate = (np.asarray(records["preds"]) != labels) & (given_p < low[labels]) & (suggested_p >= high[suggested])
    pos = np.flatnonzero(candidate)
    pos = pos[np.lexsort((-suggested_p[pos], given_p[pos]))]
    return LabelErrors(pos, given_p, bounded, suggested, suggested_p, low, high)


def headline(errors: LabelErrors, n_images: int, split_name: str) -> str:
    """The view's first lines (plain text): how many candidates among the split's images, the
    rule, and that the probabilities are out-of-sample. split_name: "validation", "test"."""
    n = len(errors.positions)
    return (f"{n:,} candidate{'s' if n != 1 else ''} of {n_images:,} {split_name} images: the model's top-1 "
            f"prediction is another class, of which it is confident, and it finds the given label unlikely. The "
            f"probabilities are out-of-sample: these {split_name} images were held out of training.")


def describe(errors: LabelErrors, position: int, classes: list[str]) -> str:
    """One card's line: the suggested label and both probabilities (plain text)."""
    sign = "≤" if errors.bounded[position] else ""
    return (f"suggested {classes[errors.suggested[position]]} {_percent(errors.suggested_p[position])} · "
            f"given {sign}{_percent(errors.given_p[position])}")


def _percent(p: float) -> str:
    """Whole percents, one decimal below 1% (a bound of 0.3% read "≤0%" on a real run)."""
    return f"{100 * p:.1f}%" if p < 0.01 else f"{100 * p:.0f}%"
