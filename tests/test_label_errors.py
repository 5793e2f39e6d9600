"""Likely label errors from top-k records: planted flips rank first, unsure images are not flagged."""

from __future__ import annotations

import numpy as np

from resnet_core.dashboard import label_errors

CLASSES = [f"c{i}" for i in range(10)]


def _records(probs: np.ndarray, labels: np.ndarray, k: int = 5) -> dict[str, np.ndarray]:
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return {"labels": labels, "preds": order[:, 0], "topk_classes": order,
            "topk_probs": np.take_along_axis(probs, order, 1).astype(np.float32)}


def _synthetic(n=500, flipped=20, unsure=30, seed=0):
    """n images of a trained model: right with top-1 skewed towards 1 (0.5 + 0.5 * Beta(5, 1),
    mean 0.92); `flipped` of them carry another label while the model gives their true class
    0.9-0.99; `unsure` are right at 0.35-0.45, and as many more wrong at 0.35-0.45 (an ordinary
    mistake on a good label: another class first, the true one a close second)."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 10
    rng.shuffle(truth)
    top = 0.5 + 0.5 * rng.beta(5, 1, n)
    picks = rng.permutation(n)
    flip, unsure_ids, mistaken = picks[:flipped], picks[flipped:flipped + unsure], picks[flipped + unsure:][:unsure]
    top[flip] = rng.uniform(0.9, 0.99, flipped)
    top[unsure_ids] = rng.uniform(0.35, 0.45, unsure)
    top[mistaken] = rng.uniform(0.3, 0.34, unsure)
    first = truth.copy()
    first[mistaken] = (truth[mistaken] + rng.integers(1, 10, unsure)) % 10
    probs = np.empty((n, 10))
    mistaken_set = set(mistaken.tolist())
    for i in range(n):
        rest = rng.dirichlet(np.ones(9)) * (1 - top[i])
        probs[i] = np.insert(rest, truth[i], top[i])
        if i in mistaken_set:  # another class first, at 0.40-0.44
            probs[i, first[i]] = top[i] + rng.uniform(0.06, 0.1)
            probs[i] /= probs[i].sum()
    labels = truth.copy()
    labels[flip] = (truth[flip] + rng.integers(1, 10, flipped)) % 10
    return _records(probs, labels), set(flip.tolist()), set(unsure_ids.tolist()), mistaken_set


def test_planted_flipped_labels_rank_on_top_and_unsure_images_are_not_flagged():
    records, flipped, unsure, mistaken = _synthetic()
    assert all(records["preds"][i] != records["labels"][i] for i in mistaken)
    found = label_errors.find_label_errors(records, 10)
    top20 = set(found.positions[:20].tolist())
    precision = len(top20 & flipped) / 20
    assert precision >= 0.9, precision
    # Right but unsure, or wrong without confidence: a model's doubt, not a label error (top losses shows them).
    assert not set(found.positions.tolist()) & (unsure | mistaken)
    for p in found.positions[:20]:
        if p in flipped:  # the suggested label of a found flip is its true class (the model's top-1)
            assert found.suggested[p] == records["preds"][p]


def test_a_label_outside_the_top_k_is_an_upper_bound():
    probs = np.array([[0.6, 0.2, 0.1, 0.05, 0.03, 0.02],
                      [0.6, 0.2, 0.1, 0.05, 0.03, 0.02]])
    records = _records(probs, np.array([5, 1]), k=3)
    p, bounded = label_errors.self_confidence(records)
    assert bounded.tolist() == [True, False]
    assert np.allclose(p, [0.1, 0.2])  # the 3rd probability bounds label 5's 0.02
    suggested, sp = label_errors.most_likely_other(records)
    assert suggested.tolist() == [0, 0] and np.allclose(sp, [0.6, 0.6])


def test_thresholds_are_intervals_when_probabilities_are_bounded():
    labels = np.array([0, 0, 1])
    p = np.array([0.8, 0.1, 0.5])
    bounded = np.array([False, True, False])
    low, high = label_errors.class_thresholds(labels, p, bounded, 3)
    assert np.allclose(low[:2], [0.4, 0.5]) and np.allclose(high[:2], [0.45, 0.5]) and np.isnan(low[2])


def test_a_right_prediction_is_never_suggested_against_its_own_label():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    records = _records(probs, np.array([0, 0, 1]), k=1)
    found = label_errors.find_label_errors(records, 2)
    assert found.positions.tolist() == []


def test_describe_says_which_probability_is_a_bound():
    probs = np.array([[0.9, 0.04, 0.03, 0.02, 0.01]] * 2)
    records = _records(probs, np.array([4, 0]), k=3)
    found = label_errors.find_label_errors(records, 5)
    assert label_errors.describe(found, 0, CLASSES) == "suggested c0 90% · given ≤3%"
    assert label_errors.describe(found, 1, CLASSES) == "suggested c1 4% · given 90%"
    records = _records(np.array([[0.99, 0.004, 0.003, 0.002, 0.001]]), np.array([4]), k=3)
    assert label_errors.describe(label_errors.find_label_errors(records, 5), 0, CLASSES) == \
        "suggested c0 99% · given ≤0.3%"


def test_an_image_whose_top_1_prediction_is_its_given_label_is_never_a_candidate():
    # Image 0 is labelled 0 and predicted 0, but unsurely (0.40) in a class the model is
    # otherwise sure of (0.95), while its runner-up 1 (0.35) beats class 1's mean (0.275):
    # low self-confidence and a "confident" other class, yet the model's answer IS the label.
    probs = np.array([[0.40, 0.35, 0.25], [0.95, 0.03, 0.02], [0.95, 0.03, 0.02], [0.95, 0.03, 0.02],
                      [0.30, 0.30, 0.40], [0.30, 0.25, 0.45], [0.05, 0.90, 0.05], [0.05, 0.05, 0.90]])
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    records = _records(probs, labels, k=3)
    found = label_errors.find_label_errors(records, 3)
    assert found.positions.tolist() == [6]  # labelled 2, predicted 1 at 0.90: a candidate still
    assert all(records["preds"][p] != labels[p] for p in found.positions)
    # The class-threshold checks alone would have flagged it:
    assert found.given_p[0] < found.threshold_low[0]
    assert found.suggested_p[0] >= found.threshold_high[found.suggested[0]]


def test_the_headline_says_the_rule_the_split_and_that_the_probabilities_are_out_of_sample():
    records, *_ = _synthetic()
    found = label_errors.find_label_errors(records, 10)
    text = label_errors.headline(found, 5000, "validation")
    assert text.startswith(f"{len(found.positions):,} candidates of 5,000 validation images")
    assert "top-1 prediction is another class" in text and "out-of-sample" in text
    assert "held out of training" in text
    assert "1 candidate of 10,000 test images" in label_errors.headline(
        label_errors.LabelErrors(np.array([3]), *[np.zeros(1)] * 6), 10_000, "test")
