"""The training images most similar to one image of a split in a checkpoint's feature space
(cosine, exact: :func:`resnet_core.neighbours.training_neighbours`), and what their labels
say about its prediction: how many carry the class it was given, how many its true class.

Computed on every rerun, not cached: one image against 45,000 training images' 64-d features
took 4-17 ms (median 6 ms of 7, one torch thread, this 2-core CPU at load 2.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .. import runs
from ..runs.values import as_count
from .comparison import best_epoch

if TYPE_CHECKING:
    from resnet_core.embeddings import Features

K = 10


@dataclass(frozen=True)
class SimilarImages:
    index: int  # the image's data set index
    label: int  # its true label
    prediction: int  # the checkpoint's
    rows: np.ndarray  # (k,) rows of the training images' features, nearest first
    indices: np.ndarray  # (k,) their training-set indices
    labels: np.ndarray  # (k,) their labels
    similarities: np.ndarray  # (k,) cosine similarities to the image

    @property
    def with_prediction(self) -> int:
        """How many of them carry the class the checkpoint predicted for the image."""
        return int((self.labels == self.prediction).sum())

    @property
    def with_label(self) -> int:
        """How many of them carry the image's true class."""
        return int((self.labels == self.label).sum())


def similar_images(split: Features, train: Features, index: int, k: int = K,
                   prediction: int | None = None) -> SimilarImages:
    """The k training images (of train, the training images' features under the same
    checkpoint) nearest to the split's image with data set index `index`; the image itself
    is not one of them when split is the training images. Its prediction is the
    checkpoint's unless given (a gallery's, of another epoch). ValueError for an index the
    split does not hold."""
    # torch (resnet_core.neighbours) only once asked: the Explain page opens without it.
    from resnet_core.neighbours import training_neighbours

    found = np.flatnonzero(split.indices == index)
    if not len(found):
        raise ValueError(f"no image with index {index} among the {len(split.indices):,} {split.split} images")
    row = int(found[0])
    rows, sims = training_neighbours(split, train, row, k)
    pred = int(split.predictions[row]) if prediction is None else int(prediction)
    return SimilarImages(int(index), int(split.labels[row]), pred, rows, train.indices[rows], train.labels[rows], sims)


def verdict(s: SimilarImages, classes: Sequence[str], whose: str = "the") -> str:
    """One sentence on the neighbours' labels: for a misclassified image "n of its k nearest
    training images carry the predicted class P (and m its true class T).", whose naming
    whose prediction P is ("the card's" for a gallery's), else "m of its k nearest training
    images carry its class T."."""
    k = len(s.indices)
    if s.prediction != s.label:
        return (f"{s.with_prediction} of its {k} nearest training images carry {whose} predicted class "
                f"{classes[s.prediction]} (and {s.with_label} its true class {classes[s.label]}).")
    return f"{s.with_label} of its {k} nearest training images carry its class {classes[s.label]}."


def feature_records(f: Features) -> dict[str, np.ndarray]:
    """Features as a gallery's records. They hold the top-1 class and probability only: the
    card shows them as its prediction, without a top-k line that would repeat it."""
    return {"indices": f.indices, "labels": f.labels, "preds": f.predictions,
            "topk_classes": np.zeros((len(f.labels), 0), np.int64), "topk_probs": f.confidence[:, None]}


def checkpoint_epoch(info: runs.RunInfo, checkpoint_file: str) -> int | None:
    """The epoch a run's checkpoint file holds, from status.json (no checkpoint read):
    best.pt the best epoch's, last.pt the last completed one; None when unknown."""
    if checkpoint_file == runs.BEST_CHECKPOINT:
        return best_epoch(info)
    return as_count(info.status.get("epoch")) or None


def features_caption(checkpoint_file: str, epoch: int | None) -> str:
    """Whose features the neighbours are found in: "best.pt (epoch 12)"."""
    return checkpoint_file + (f" (epoch {epoch})" if epoch is not None else "")
