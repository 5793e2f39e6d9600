"""Data maps of the training images (Swayamdipta et al. 2020, "Dataset Cartography"): each
image placed by the mean (confidence) and the standard deviation (variability, ddof=0, as
the paper's code computes it) of the probability the training steps gave its trained label
over the epochs that presented it, with correctness, the fraction of those presentations
it was right at.

The regions (the rule is ours; the paper defines the 33% selections it rests on):
- *ambiguous*: the top third by variability (the paper's 33% most ambiguous);
- *hard-to-learn*: of the others, those whose confidence is in the bottom third of all
  images' confidence (the paper's 33% hardest);
- *easy-to-learn*: the rest.
A third is n // 3 of the n images presented at least once. Each region is drawn by a cut:
variability_cut is the largest variability outside the top third, confidence_cut the
smallest confidence outside the bottom third, and an image is ambiguous when its
variability is above variability_cut, hard-to-learn when its confidence is below
confidence_cut. Ties: an image whose value equals a cut stays out of that region, so the
region is a function of where the image lies on the map and holds at most a third: exactly
a third when no other value ties the cut (a one-epoch record, every variability 0, has
no ambiguous image). An image that no epoch presented has no place on the map (region -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .runs import TrainingRecord

REGIONS = ("easy-to-learn", "ambiguous", "hard-to-learn")  # the names of DataMap.region's codes 0, 1, 2
EASY, AMBIGUOUS, HARD = range(len(REGIONS))
NOT_PRESENTED = -1  # DataMap.region of an image no epoch presented


@dataclass(frozen=True)
class DataMap:
    confidence: np.ndarray  # (N,) float32: mean label probability over the presentations (NaN: none)
    variability: np.ndarray  # (N,) float32: its standard deviation (ddof=0)
    correctness: np.ndarray  # (N,) float32: fraction of the presentations that were right
    region: np.ndarray  # (N,) int8: index into REGIONS; NOT_PRESENTED for an image never presented
    variability_cut: float  # ambiguous: variability above it (NaN without images)
    confidence_cut: float  # hard-to-learn, when not ambiguous: confidence below it


def regions(confidence: np.ndarray, variability: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(region codes, variability_cut, confidence_cut) by the rule of this module's docstring;
    NaN confidence: an image never presented."""
    placed = ~np.isnan(confidence)
    region = np.full(len(confidence), NOT_PRESENTED, dtype=np.int8)
    n = int(placed.sum())
    if n == 0:
        return region, float("nan"), float("nan")
    third = n // 3
    variability_cut = float(np.partition(variability[placed], n - third - 1)[n - third - 1])
    confidence_cut = float(np.partition(confidence[placed], third)[third])
    ambiguous = placed & (variability > variability_cut)
    region[placed] = EASY
    region[placed & ~ambiguous & (confidence < confidence_cut)] = HARD
    region[ambiguous] = AMBIGUOUS
    return region, variability_cut, confidence_cut


def data_map(record: TrainingRecord) -> DataMap:
    """Confidence, variability, correctness and region of each of the record's images."""
    presented = record.presented
    count = np.count_nonzero(presented, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # an image never presented: 0 / 0 = NaN
        work = np.where(presented, record.label_prob, np.float32(0))  # the one (N, E) float temporary
        confidence = (work.sum(axis=1) / count).astype(np.float32)
        # Two passes (the deviations from the mean, then their squares), not E[p^2] - E[p]^2,
        # which in float32 loses a small variability to cancellation; in place: each fresh
        # (N, E) array of a 50,000 x 165 record cost 10-20 ms, more on first use.
        np.subtract(work, confidence[:, None], out=work)
        np.multiply(work, presented, out=work)
        np.square(work, out=work)
        variability = np.sqrt(work.sum(axis=1) / count).astype(np.float32)
        correctness = (np.count_nonzero(record.correct & presented, axis=1) / count).astype(np.float32)
    region, variability_cut, confidence_cut = regions(confidence, variability)
    return DataMap(confidence, variability, correctness, region, variability_cut, confidence_cut)
