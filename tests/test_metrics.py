import math

import numpy as np
import pytest

from resnet_core.metrics import class_report, confusion_matrix, most_confused_pairs, normalize_confusion


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_the_issue_example_exactly():
    r = class_report(np.array([[7, 3], [10, 20]]))
    assert r.recall[0] == pytest.approx(0.70)
    assert r.recall[1] == pytest.approx(20 / 30)
    assert round(100 * r.precision[0], 1) == 41.2
    assert round(100 * r.precision[1], 1) == 87.0
    assert r.accuracy == pytest.approx(0.675)
    assert r.support.tolist() == [10, 30]
    p, rc = 7 / 17, 0.7
    assert r.f1[0] == pytest.approx(2 * p * rc / (p + rc))


def test_never_predicted_class_has_undefined_precision_not_zero():
    r = class_report(confusion_matrix([0, 1, 2], [0, 0, 0], 3))
    assert math.isnan(r.precision[1]) and math.isnan(r.precision[2])
    assert r.recall[1] == 0.0
    assert r.precision[0] == pytest.approx(1 / 3)


def test_never_predicted_class_with_examples_has_f1_zero():
    # F1 = 2TP / (2TP + FP + FN): class 1 has TP 0 and FN 1, so 0/1 = 0, defined.
    r = class_report(confusion_matrix([0, 1, 2], [0, 0, 0], 3))
    assert r.f1[1] == 0.0 and r.f1[2] == 0.0
    assert r.f1[0] == pytest.approx(2 / (2 + 2 + 0))


def test_macro_f1_of_always_predicting_class_0_counts_every_class():
    # Balanced 10 classes, 100 images each, all predicted as class 0: class 0 has
    # precision 0.1 and recall 1, F1 = 2 * 0.1 / (1 + 0.1) = 2/11; the other nine have F1 0.
    y_true = np.repeat(np.arange(10), 100)
    r = class_report(confusion_matrix(y_true, np.zeros_like(y_true), 10))
    assert r.f1[0] == pytest.approx(2 * 0.1 / (1 + 0.1), rel=1e-15)
    assert r.f1[1:].tolist() == [0.0] * 9
    assert r.macro_f1 == pytest.approx(2 / 110, rel=1e-15)
    assert f"{100 * r.macro_f1:.2f}%" == "1.82%"


def test_macro_f1_leaves_out_classes_with_neither_examples_nor_predictions():
    cm = np.array([[3, 1, 0], [0, 4, 0], [0, 0, 0]])  # class 2: no examples, never predicted
    r = class_report(cm)
    assert math.isnan(r.f1[2])
    assert r.macro_f1 == pytest.approx((6 / 7 + 8 / 9) / 2)


def test_macro_f1_of_a_class_predicted_but_without_examples_is_not_averaged():
    # Class 2 has no examples but got one prediction: its F1 is 0, yet macro F1 averages
    # over the classes that have examples only.
    cm = np.array([[3, 0, 1], [0, 4, 0], [0, 0, 0]])
    r = class_report(cm)
    assert r.f1[2] == 0.0
    assert r.macro_f1 == pytest.approx((6 / 7 + 1.0) / 2)


def test_macro_f1_of_an_empty_matrix_is_undefined():
    assert math.isnan(class_report(np.zeros((3, 3), dtype=int)).macro_f1)


def test_class_without_examples_has_undefined_recall():
    r = class_report(np.array([[2, 0], [0, 0]]))
    assert math.isnan(r.recall[1])
    assert r.support.tolist() == [2, 0]


def test_zero_precision_and_recall_give_f1_zero():
    r = class_report(np.array([[0, 5], [5, 0]]))
    assert r.f1.tolist() == [0.0, 0.0]


def test_empty_matrix_has_undefined_accuracy():
    assert math.isnan(class_report(np.zeros((3, 3), dtype=int)).accuracy)


def test_normalisation():
    cm = np.array([[7, 3], [10, 20]])
    assert normalize_confusion(cm, "recall").tolist() == [[0.7, 0.3], [1 / 3, 2 / 3]]
    assert np.allclose(normalize_confusion(cm, "precision"), [[7 / 17, 3 / 23], [10 / 17, 20 / 23]])
    assert normalize_confusion(cm, "counts").tolist() == [[7, 3], [10, 20]]
    with pytest.raises(ValueError, match="counts, recall, precision"):
        normalize_confusion(cm, "f1")


def test_most_confused_pairs_sorted_and_off_diagonal():
    cm = np.array([[50, 2, 9], [0, 40, 1], [4, 9, 30]])
    assert most_confused_pairs(cm, 3) == [(0, 2, 9), (2, 1, 9), (2, 0, 4)]
    assert most_confused_pairs(np.eye(3, dtype=int) * 5) == []


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        confusion_matrix([0, 1], [0], 3)
