"""Similar training images (resnet_core.dashboard.similar_images) and the k-NN accuracy of a
split's features (resnet_core.neighbours.split_knn_accuracy), against a brute-force cosine
search on a tiny set of features."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from resnet_core.dashboard.similar_images import similar_images, verdict
from resnet_core.embeddings import Features
from resnet_core.neighbours import split_knn_accuracy

CLASSES = [f"class{c}" for c in range(4)]


def features(split: str, n: int, seed: int, first_index: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    centres = rng.normal(0, 3, (4, 6))
    feats = (centres[labels] + rng.normal(0, 1, (n, 6)) * rng.uniform(0.5, 2, (n, 1))).astype(np.float32)
    preds = np.where(np.arange(n) % 3 == 0, (labels + 1) % 4, labels)
    return Features(split, "best", "best.pt", np.arange(first_index, first_index + n, dtype=np.int64), labels,
                    preds, rng.uniform(0.3, 1, n).astype(np.float32), feats)


def brute_force(query: np.ndarray, base: np.ndarray, k: int, leave_out: int | None = None):
    """Rows of base by falling cosine similarity to query (one loop, float64), leave_out excluded."""
    sims = [float(query @ b / np.linalg.norm(query) / np.linalg.norm(b)) for b in base.astype(np.float64)]
    order = [r for r in sorted(range(len(base)), key=lambda r: -sims[r]) if r != leave_out][:k]
    return np.array(order), np.array([sims[r] for r in order])


def test_similar_images_are_the_nearest_training_images_by_cosine():
    val, train = features("val", 20, seed=1, first_index=500), features("train", 40, seed=2)
    index = 500 + 3  # row 3: misclassified (every third row is predicted as the next class)
    s = similar_images(val, train, index, k=10)
    rows, sims = brute_force(val.features[3].astype(np.float64), train.features, 10)
    np.testing.assert_array_equal(s.rows, rows)
    np.testing.assert_array_equal(s.indices, train.indices[rows])
    np.testing.assert_array_equal(s.labels, train.labels[rows])
    np.testing.assert_allclose(s.similarities, sims, rtol=1e-5, atol=1e-6)
    assert (s.index, s.label, s.prediction) == (503, val.labels[3], val.predictions[3]) and s.label != s.prediction
    with_pred, with_true = int((train.labels[rows] == s.prediction).sum()), int((train.labels[rows] == s.label).sum())
    assert (s.with_prediction, s.with_label) == (with_pred, with_true)
    assert verdict(s, CLASSES) == (f"{with_pred} of its 10 nearest training images carry the predicted class "
                                   f"class{s.prediction} (and {with_true} its true class class{s.label}).")
    right = similar_images(val, train, 501, k=10)
    assert verdict(right, CLASSES) == f"{right.with_label} of its 10 nearest training images carry its class " \
                                      f"class{right.label}."
    with pytest.raises(ValueError, match="no image with index 7"):
        similar_images(val, train, 7)


def test_a_gallerys_prediction_of_another_epoch_replaces_the_checkpoints():
    val, train = features("val", 20, seed=1, first_index=500), features("train", 40, seed=2)
    right = similar_images(val, train, 501, k=10)  # row 1: right under the checkpoint
    shown = similar_images(val, train, 501, k=10, prediction=(right.label + 2) % 4)  # wrong on the card
    np.testing.assert_array_equal(shown.rows, right.rows)
    assert shown.with_prediction == int((train.labels[right.rows] == (right.label + 2) % 4).sum())
    assert verdict(shown, CLASSES, "the card's") == (
        f"{shown.with_prediction} of its 10 nearest training images carry the card's predicted class "
        f"class{shown.prediction} (and {shown.with_label} its true class class{shown.label}).")


def test_a_training_image_is_not_its_own_neighbour():
    train = features("train", 30, seed=3)
    s = similar_images(train, train, 5, k=4)
    rows, _ = brute_force(train.features[5].astype(np.float64), train.features, 4, leave_out=5)
    np.testing.assert_array_equal(s.rows, rows)
    assert 5 not in s.indices


def test_split_knn_accuracy_is_the_majority_of_the_nearest_labels():
    val, train = features("val", 25, seed=4), features("train", 60, seed=5)

    def brute_knn(split: Features, leave_out_self: bool) -> float:
        right = 0
        for row in range(len(split.labels)):
            rows, _ = brute_force(split.features[row].astype(np.float64), train.features, 5,
                                  row if leave_out_self else None)
            counts = np.bincount(train.labels[rows], minlength=4)
            best = np.flatnonzero(counts == counts.max())  # a tie: the tied label nearest first
            vote = next(int(label) for label in train.labels[rows] if label in best)
            right += vote == split.labels[row]
        return right / len(split.labels)

    assert split_knn_accuracy(val, train, 5) == pytest.approx(brute_knn(val, False))
    assert split_knn_accuracy(train, train, 5) == pytest.approx(brute_knn(train, True))
    as_if_held_out = replace(train, split="val")  # each image would then vote for itself
    assert split_knn_accuracy(as_if_held_out, train, 5) == pytest.approx(brute_knn(train, False))
    assert brute_knn(train, False) != brute_knn(train, True)


def test_the_checkpoint_epoch_is_the_best_epoch_for_best_pt_and_the_last_for_last_pt(tmp_path):
    from fake_runs import make_run

    from resnet_core import runs
    from resnet_core.dashboard.similar_images import checkpoint_epoch, features_caption

    make_run(tmp_path, "run", epochs_done=3, total_epochs=5, state="running")
    (info,) = runs.list_runs(tmp_path)
    info = replace(info, status={**info.status, "best_epoch": 2})  # best.pt of epoch 2, last.pt of epoch 3
    assert (checkpoint_epoch(info, "best.pt"), checkpoint_epoch(info, "last.pt")) == (2, 3)
    assert features_caption("best.pt", 2) == "best.pt (epoch 2)" and features_caption("last.pt", None) == "last.pt"
