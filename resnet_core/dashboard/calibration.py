"""Calibration of a split's predictions: does a confidence of 80% mean 80% right?

Binning as Guo et al. (2017, "On Calibration of Modern Neural Networks"): the top-1
confidence (the probability of the predicted class) is cut into M = 15 equal-width bins,
bin m (0-based) holding confidences in (m/M, (m+1)/M], bin 0 also 0 itself. A bin's
accuracy is the share of its images predicted right, its confidence their mean top-1
probability, and the expected calibration error is

    ECE = sum over bins of (images in the bin / all images) * |accuracy - confidence|.

Empty bins weigh nothing. Confidences are binned as recorded (float32, widened to float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import runs
from .cell_selection import selected_customdata
from .gallery_records import confidences

BINS = 15


@dataclass(frozen=True)
class Reliability:
    edges: np.ndarray  # (M + 1,) from 0 to 1
    counts: np.ndarray  # (M,) images per bin
    right: np.ndarray  # (M,) images predicted right per bin
    accuracy: np.ndarray  # (M,) right / counts; nan for an empty bin
    confidence: np.ndarray  # (M,) mean top-1 probability; nan for an empty bin
    ece: float  # nan without images

    @property
    def wrong(self) -> np.ndarray:
        return self.counts - self.right


def bin_names(rel: Reliability) -> list[str]:
    """Each bin's confidence interval, as "(90%, 97%]"."""
    return [f"({100 * a:.0f}%, {100 * b:.0f}%]" for a, b in zip(rel.edges[:-1], rel.edges[1:], strict=True)]


def bin_of(confidence: np.ndarray, bins: int = BINS) -> np.ndarray:
    """The bin of each confidence: m for (m/bins, (m+1)/bins], 0 for 0."""
    c = np.asarray(confidence, dtype=np.float64)
    return np.clip(np.ceil(c * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability(confidence: np.ndarray, right: np.ndarray, bins: int = BINS) -> Reliability:
    confidence = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(right, dtype=bool)
    b = bin_of(confidence, bins)
    counts = np.bincount(b, minlength=bins)
    n_right = np.bincount(b, weights=right, minlength=bins).astype(np.int64)
    conf_sum = np.bincount(b, weights=confidence, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(counts > 0, n_right / counts, np.nan)
        mean_conf = np.where(counts > 0, conf_sum / counts, np.nan)
    n = len(confidence)
    ece = float(np.abs(n_right - conf_sum).sum() / n) if n else float("nan")  # = sum |B|/n |acc - conf|
    return Reliability(np.linspace(0.0, 1.0, bins + 1), counts, n_right, acc, mean_conf, ece)


def of_records(records: Mapping[str, np.ndarray], bins: int = BINS) -> Reliability:
    """The reliability of one epoch's records."""
    return reliability(confidences(records), np.asarray(records["preds"]) == np.asarray(records["labels"]), bins)


def bin_positions(records: Mapping[str, np.ndarray], bin_index: int, bins: int = BINS) -> np.ndarray:
    """Positions of a bin's records, the most confident first."""
    conf = confidences(records)
    pos = np.flatnonzero(bin_of(conf, bins) == bin_index)
    return pos[np.argsort(-conf[pos], kind="stable")]


def ece_by_epoch(run_dir: Path, split: str, bins: int = BINS,
                 known: Mapping[int, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The recorded epochs of a split and each one's ECE (nan for an epoch that cannot be
    read); known: ECEs (of these bins) already computed by epoch, whose files are not read again."""
    known = known or {}
    epochs = runs.recorded_epochs(run_dir, split)
    out = np.full(len(epochs), np.nan)
    for i, e in enumerate(epochs):
        if e in known:
            out[i] = known[e]
            continue
        try:
            out[i] = of_records(runs.load_predictions(run_dir, split, e), bins).ece
        except runs.RunFolderError:
            pass  # the page says which epoch cannot be read when it is picked
    return np.asarray(epochs, dtype=np.int64), out


def bin_from_event(event: Any) -> int | None:
    """The bin a Plotly selection event points at (the customdata of its last point), or None."""
    custom = selected_customdata(event)
    try:
        return int(custom[0])
    except (TypeError, ValueError, IndexError):  # no customdata, an empty one, or not a number
        return None
