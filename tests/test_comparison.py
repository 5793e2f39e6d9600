"""Two runs side by side: pure functions checked against hand-made predictions with known
answers (resnet_core.dashboard.comparison), the difference figure and the Figure-6 error curves."""

from __future__ import annotations

import dataclasses

import numpy as np
import plotly.graph_objects as go
import pytest
from fake_runs import fake_predictions, make_run

from resnet_core import runs
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core.dashboard import comparison, confusion_figures, error_curves, gallery_cards, gallery_records
from resnet_core.dashboard.comparison import BEST, FINAL, Evaluated
from resnet_core.dashboard.cell_selection import Cell
from resnet_core.config import paper_config
from resnet_core.model_names import paper_result
from resnet_core.results import RunResult, group_results

CLASSES = ("cat", "dog", "bird")


def preds(indices, labels, predicted, conf=None):
    """Records of a 3-class run; conf: the top-1 probability of each (default 0.5)."""
    n = len(indices)
    conf = np.full(n, 0.5) if conf is None else np.asarray(conf, dtype=np.float32)
    top = np.stack([np.asarray(predicted), (np.asarray(predicted) + 1) % 3], axis=1)
    return dict(indices=np.asarray(indices, dtype=np.int64), labels=np.asarray(labels, dtype=np.int64),
                preds=np.asarray(predicted, dtype=np.int64), topk_classes=top.astype(np.int64),
                topk_probs=np.stack([conf, 1 - conf], axis=1).astype(np.float32), loss=np.zeros(n, np.float32))


# Six images; B's records are in another order than A's (pairing goes by image index).
#              image:  10  11  12  13  14  15
A = preds([10, 11, 12, 13, 14, 15], [0, 0, 0, 1, 1, 2], [0, 1, 1, 1, 0, 2], conf=[.9, .8, .7, .6, .5, .4])
B = preds([15, 14, 13, 12, 11, 10], [2, 1, 1, 0, 0, 0], [0, 1, 1, 1, 0, 1], conf=[.3, .6, .7, .95, .85, .75])
# Per image (true, A, B): 10 (0,0,1) 11 (0,1,0) 12 (0,1,1) 13 (1,1,1) 14 (1,0,1) 15 (2,2,0)


def ev(name, p, split="val", source="train", seed=0, classes=CLASSES):
    return Evaluated(name, split, source, seed, tuple(classes), p)


def test_pairing_goes_by_image_index():
    p = comparison.pair(A, B)
    assert list(p.index) == [10, 11, 12, 13, 14, 15]
    assert list(p.labels) == [0, 0, 0, 1, 1, 2]
    assert list(p.a_pred) == [0, 1, 1, 1, 0, 2] and list(p.b_pred) == [1, 0, 1, 1, 1, 0]
    assert list(B["indices"][p.b_pos]) == list(p.index)
    with pytest.raises(ValueError):
        comparison.pair(A, preds([10, 11, 12, 13, 14, 99], [0] * 6, [0] * 6))


def test_difference_matrix_is_b_minus_a():
    d = comparison.difference(comparison.pair(A, B), 3)
    assert d.a.tolist() == [[1, 2, 0], [1, 1, 0], [0, 0, 1]]
    assert d.b.tolist() == [[1, 2, 0], [0, 2, 0], [1, 0, 0]]
    assert d.diff.tolist() == [[0, 0, 0], [-1, 1, 0], [1, 0, -1]]


def test_cell_changes_are_the_images_that_entered_and_left():
    p = comparison.pair(A, B)
    entered, left = comparison.cell_changes(p, Cell(0, 1))  # true cat -> predicted dog
    assert list(p.index[entered]) == [10] and list(p.index[left]) == [11]  # 12 stays: in it for both
    entered, left = comparison.cell_changes(p, Cell(1, 1))  # the diagonal: B gets 14 right, A got it wrong
    assert list(p.index[entered]) == [14] and list(p.index[left]) == []
    entered, left = comparison.cell_changes(p, Cell(2, 2))
    assert list(p.index[entered]) == [] and list(p.index[left]) == [15]
    d = comparison.difference(p, 3).diff
    for t in range(3):
        for q in range(3):
            entered, left = comparison.cell_changes(p, Cell(t, q))
            assert len(entered) - len(left) == d[t, q]


def test_flips_both_ways_and_per_class_counts():
    p = comparison.pair(A, B)
    a_only, b_only = comparison.flips(p)
    assert list(p.index[a_only]) == [10, 15]  # A right, B wrong
    assert list(p.index[b_only]) == [11, 14]  # B right, A wrong
    a_counts, b_counts = comparison.flip_counts(p, 3)
    assert a_counts.tolist() == [1, 0, 1] and b_counts.tolist() == [1, 1, 0]
    table = comparison.flip_table(a_counts, b_counts, CLASSES)
    assert [r["class"] for r in table] == ["cat", "dog", "bird", "all"]
    assert [r["net for B"] for r in table] == [0, 1, -1, 0]
    assert table[-1] == {"class": "all", "A right, B wrong": 2, "B right, A wrong": 2, "net for B": 0}


def test_most_confident_first_sorts_by_the_chosen_runs_confidence():
    p = comparison.pair(A, B)
    everything = np.arange(len(p))
    assert list(p.index[comparison.most_confident_first(p, everything, A, "a")]) == [10, 11, 12, 13, 14, 15]
    # B's confidences by image: 10 .75, 11 .85, 12 .95, 13 .7, 14 .6, 15 .3
    assert list(p.index[comparison.most_confident_first(p, everything, B, "b")]) == [12, 11, 10, 13, 14, 15]


def test_comparability_refuses_other_validation_splits_and_other_classes():
    assert comparison.comparability_problem(ev("A", A), ev("B", B)) is None
    other = preds(np.arange(100, 103), [0, 1, 2], [0, 1, 2])
    msg = comparison.comparability_problem(ev("A", A), ev("B", other, seed=3))
    assert msg == ("A validates on 6 held-out training images with split seed 0, B validates on 3 held-out "
                   "training images with split seed 3: their validation splits differ (0 images in common); "
                   "compare on the test set instead.")
    # The same number of images, but not the same ones.
    shifted = dict(B, indices=B["indices"] + 1)
    assert "(5 images in common)" in comparison.comparability_problem(ev("A", A), ev("B", shifted))
    # The same indices into another image set (a version-1 run validated on the test set).
    assert "their validation splits differ" in comparison.comparability_problem(ev("A", A), ev("B", B, source="test"))
    tests = comparison.comparability_problem(ev("A", A, "test", "test"), ev("B", other, "test", "test"))
    assert "is tested on 6 test images" in tests and "their test sets differ" in tests and "instead" not in tests
    assert comparison.comparability_problem(ev("A", A), ev("B", B, classes=("cat", "dog", "fish"))) == (
        "A and B classify into different class lists (class 2 is 'bird' in A, 'fish' in B): their predictions "
        "cannot be compared.")
    assert "A has 3 classes, B has 2" in comparison.comparability_problem(ev("A", A), ev("B", B, classes=CLASSES[:2]))
    relabelled = dict(B, labels=np.array([2, 1, 1, 0, 0, 1]))
    assert "different true labels for 1 of the same 6 images" in comparison.comparability_problem(
        ev("A", A), ev("B", relabelled))
    nothing = {k: v[:0] for k, v in B.items()}  # a valid, empty predictions file: nothing to divide by
    assert comparison.comparability_problem(ev("A", A), ev("B", nothing)) == (
        "B recorded no predictions for this split and epoch.")


def test_pick_epoch_final_best_and_given():
    assert comparison.pick_epoch([1, 2, 3], FINAL, "test", None) == comparison.EpochPick(3, "final test (epoch 3)")
    assert comparison.pick_epoch([1, 2, 3], BEST, "validation", 2) == comparison.EpochPick(
        2, "validation at the best validation epoch 2")
    best_missing = comparison.pick_epoch([3], BEST, "test", 2)
    assert best_missing.epoch is None
    assert best_missing.problem == "recorded no test predictions at its best validation epoch 2 (only at epoch 3)"
    assert comparison.pick_epoch([1, 2], BEST, "test", None).problem.startswith("has no best validation epoch")
    assert comparison.pick_epoch([1, 2], "2", "validation", 2) == comparison.EpochPick(2, "validation at epoch 2")
    missing = comparison.pick_epoch([1, 2], "5", "validation", 2)
    assert missing.problem == "recorded no validation predictions at epoch 5"
    assert comparison.pick_epoch([], FINAL, "test", None).problem == "recorded no per-image test predictions"


def test_sweeps_best_epoch_and_evaluated_from_run_folders(tmp_path):
    a = make_run(tmp_path, "a", sweep="depths")
    b = make_run(tmp_path, "b", val_source=None, sweep="depths", shortcut="none")
    c = make_run(tmp_path, "c")
    infos = [runs.read_run(d) for d in (a, b, c)]
    assert comparison.sweeps(infos) == {"depths": [a.name, b.name]}
    assert infos[1].model_name == "plain-20"
    assert comparison.best_epoch(infos[0]) == 3 and comparison.best_epoch(infos[1]) is None
    e = comparison.evaluated("A", infos[0], "val", runs.load_predictions(a, "val", 3))
    assert (e.source, e.split_seed, e.classes[:2]) == ("train", 0, ("airplane", "automobile"))
    assert comparison.evaluated("B", infos[1], "test", runs.load_predictions(b, "test", 3)).source == "test"


def test_difference_figure_is_clickable_diverging_and_hovers_both_counts():
    d = comparison.difference(comparison.pair(A, B), 3)
    fig = confusion_figures.difference_figure(d.a, d.b, list(CLASSES), names=("A", "B"), selected=(1, 0))
    heat, cells = fig.data
    assert isinstance(heat, go.Heatmap) and heat.zmid == 0 and (heat.zmin, heat.zmax) == (-1, 1)
    assert heat.colorscale[0][1] == "rgb(103,0,31)" and heat.colorscale[-1][1] == "rgb(5,48,97)"  # RdBu: red < 0 < blue
    assert [list(r) for r in heat.z] == d.diff.tolist()
    assert heat.text[1][0] == "-1" and heat.text[1][1] == "+1" and heat.text[0][0] == "0"
    assert isinstance(cells.customdata[0], (list, tuple)) and list(cells.customdata[3]) == [1, 0]
    assert "A: 1 images" in cells.hovertext[3] and "B: 0 images" in cells.hovertext[3]
    assert "difference B − A: -1" in cells.hovertext[3]
    assert fig.layout.shapes[0].x0 == -0.5 and fig.layout.shapes[0].y0 == 0.5


# ----------------------------------------------------------------------------- Figure 6

STEPS = [{"type": "step", "epoch": 1, "step": 5, "acc": 0.5}, {"type": "step", "epoch": 1, "step": 10, "acc": 0.6},
         {"type": "step", "epoch": 2, "step": 15, "acc": 0.7}, {"type": "step", "epoch": 2, "step": 20, "acc": 0.8},
         {"type": "step", "epoch": 3, "step": 25, "acc": 0.9}]
EPOCHS = [{"type": "epoch", "epoch": 1, "step": 10, "train_acc": 0.55, "val_acc": 0.5, "epoch_seconds": 4.0},
          {"type": "epoch", "epoch": 2, "step": 20, "train_acc": 0.75, "val_acc": 0.7, "epoch_seconds": 6.0}]
NO_VAL_EPOCHS = [dict(r, val_acc=None, test_acc=r["val_acc"] - 0.1) for r in EPOCHS]
WITH_VAL = evaluation_labels({"format_version": 2, "resolved": {"val_source": "train"}})
NO_VAL = evaluation_labels({"format_version": 2, "resolved": {"val_source": None,
                                                                          "test_every_epoch": True}})


def test_curve_x_for_each_axis():
    assert error_curves.curve_x(STEPS, "iterations") == [5, 10, 15, 20, 25]
    assert error_curves.curve_x(EPOCHS, "iterations") == [10, 20]
    assert error_curves.curve_x(STEPS, "epochs", EPOCHS, steps_per_epoch=10) == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert error_curves.curve_x(EPOCHS, "epochs", EPOCHS) == [1, 2]
    # Wall time: cumulative epoch_seconds (4, then 4 + 6), step rows by step within their epoch;
    # step 25 is past the last epoch with a time.
    assert error_curves.curve_x(EPOCHS, "wall time", EPOCHS) == [4.0, 10.0]
    assert error_curves.curve_x(STEPS, "wall time", EPOCHS) == [2.0, 4.0, 7.0, 10.0, None]
    with pytest.raises(ValueError):
        error_curves.curve_x(STEPS, "minutes")


def test_error_curves_dashed_train_bold_evaluation_one_colour_per_run():
    curves = [error_curves.CurveRun("ResNet-20 · r1", STEPS, EPOCHS, WITH_VAL, 10),
              error_curves.CurveRun("plain-20 · r2", [], NO_VAL_EPOCHS, NO_VAL, 10)]
    fig = error_curves.error_curves_figure(curves, "iterations")
    assert len(fig.data) == 4
    train1, val1, train2, test2 = fig.data
    assert [t.line.dash for t in fig.data] == ["dash", None, "dash", None]
    assert val1.line.width > train1.line.width
    assert train1.line.color == val1.line.color != train2.line.color == test2.line.color
    assert list(train1.x) == [5, 10, 15, 20, 25] and list(train1.y) == pytest.approx([50, 40, 30, 20, 10])
    assert list(val1.x) == [10, 20] and list(val1.y) == pytest.approx([50, 30])
    # Without step rows the training error is the epoch rows' train_acc.
    assert list(train2.y) == pytest.approx([45, 25]) and "epoch rows' train_acc" in train2.hovertemplate
    assert "step rows' acc" in train1.hovertemplate
    # hover across runs: each trace's point nearest the pointer's x, however far, saying where it is
    assert fig.layout.hovermode == "x unified" and fig.layout.hoverdistance == -1
    assert "at %{x" in train1.hovertemplate
    # Without a validation split the bold line is the test set, monitored every epoch, and says so.
    assert list(test2.y) == pytest.approx([60, 40])
    assert (val1.name, test2.name) == ("ResNet-20 · r1", "plain-20 · r2 · test (monitoring)")
    assert [t.showlegend for t in fig.data] == [False, None, False, None]
    assert train1.legendgroup == val1.legendgroup == "ResNet-20 · r1"
    assert fig.layout.yaxis.title.text == "error (%)"
    wall = error_curves.error_curves_figure(curves, "wall time")
    assert list(wall.data[0].x) == [2.0, 4.0, 7.0, 10.0]  # the step past the last epoch time is left out
    assert list(wall.data[1].x) == [4.0, 10.0]
    assert wall.layout.xaxis.title.text == error_curves.ERROR_X_AXES["wall time"]
    epochs = error_curves.error_curves_figure(curves, "epochs", y_max=20)
    assert list(epochs.data[0].x) == [0.5, 1.0, 1.5, 2.0, 2.5] and list(epochs.data[1].x) == [1, 2]
    assert tuple(epochs.layout.yaxis.range) == (0, 20)


def test_compared_gallery_cards_show_both_runs_predictions():
    p = comparison.pair(A, B)
    a_only, _ = comparison.flips(p)
    items = list(zip(gallery_records.records(A, p.a_pos[a_only]), gallery_records.records(B, p.b_pos[a_only]),
                     strict=True))
    images = np.zeros((20, 3, 32, 32), dtype=np.uint8)
    html = gallery_cards.compared_gallery_html(items, images, list(CLASSES), names=("A", "B"),
                                               attrs={"kind": "a-right", "total": 2})
    assert 'data-kind="a-right"' in html and 'data-total="2"' in html and 'data-shown="2"' in html
    assert html.count('class="rs-card"') == 2 and html.count("<img") == 2
    assert 'data-index="10" data-true="0" data-a-pred="0" data-b-pred="1"' in html
    assert "A <b" in html and "B <b" in html and "90%" in html and "75%" in html
    with pytest.raises(ValueError):
        gallery_cards.compared_gallery_html([(items[0][0], items[1][1])], None, list(CLASSES))


def test_large_pairings_agree_with_a_direct_count():
    a = fake_predictions(5000, accuracy=0.7, seed=1)
    b_preds = fake_predictions(5000, accuracy=0.8, seed=2)["preds"]
    b = {k: v[::-1] for k, v in dict(a, preds=b_preds).items()}  # the same images, in another order
    p = comparison.pair(a, b)
    a_only, b_only = comparison.flips(p)
    right_a, right_b = a["preds"] == a["labels"], b_preds == a["labels"]
    assert len(a_only) == int((right_a & ~right_b).sum()) and len(b_only) == int((right_b & ~right_a).sum())


def test_flip_counts_figure_has_a_bar_per_direction():
    p = comparison.pair(A, B)
    a_counts, b_counts = comparison.flip_counts(p, 3)
    fig = confusion_figures.flip_counts_figure(a_counts, b_counts, list(CLASSES), names=("A", "B"))
    assert [t.name for t in fig.data] == ["A right, B wrong", "B right, A wrong"]
    assert list(fig.data[0].y) == [1, 0, 1] and list(fig.data[1].y) == [1, 1, 0]
    assert list(fig.data[0].x) == list(CLASSES)


# ----------------------------------------------------------------------------- results against depth

def result(run_id, depth, shortcut, test_error, seed=0, state="completed", **config):
    cfg = {"depth": depth, "block": "basic", "shortcut": shortcut, "seed": seed, **config}
    return RunResult(run_id, state, cfg, f"x-{depth}", 1, 1, test_error if state == "completed" else None, None,
                     10.0, 100.0)


def test_depth_lines_one_per_shortcut_option_with_mean_std_and_n():
    groups = group_results([
        result("p20a", 20, "none", 10.0), result("p20b", 20, "none", 12.0, seed=1),
        result("p56", 56, "none", 14.0), result("a56", 56, "A", 7.0), result("a20", 20, "A", 8.0),
        result("b20", 20, "B", 7.5), result("live", 110, "A", None, state="running"),
    ])
    lines = comparison.depth_lines(groups)
    assert list(lines) == ["plain", "shortcut A", "shortcut B"]
    assert [(p.depth, p.error, p.std, p.n) for p in lines["plain"]] == [
        (20, 11.0, pytest.approx(2 ** 0.5), 2), (56, 14.0, None, 1)]
    assert [p.depth for p in lines["shortcut A"]] == [20, 56]  # the running ResNet-110 has no error yet
    fig = error_curves.error_vs_depth_figure(lines)
    assert [t.name for t in fig.data] == ["plain", "shortcut A", "shortcut B"]
    assert fig.data[0].line.dash == "dash" and fig.data[1].line.dash is None
    assert list(fig.data[0].y) == [11.0, 14.0] and list(fig.data[0].error_y.array) == pytest.approx([2 ** 0.5, 0])


def test_depth_lines_split_by_other_differing_fields_and_show_the_papers_numbers():
    groups = group_results([result("a", 20, "A", 8.0, epochs=30), result("b", 20, "A", 9.0, epochs=10)])
    lines = comparison.depth_lines(groups)
    assert set(lines) == {"shortcut A · epochs=30", "shortcut A · epochs=10"}
    point = comparison.DepthPoint(20, 8.0, None, 1, paper_result("cifar10", False, "basic", 20, "A"))
    fig = error_curves.error_vs_depth_figure({"shortcut A": [point]})
    assert [t.name for t in fig.data] == ["shortcut A", "shortcut A (paper)"]
    assert list(fig.data[1].y) == [8.75] and fig.data[1].marker.symbol == "circle-open"


def test_the_depth_chart_gives_resnet_110s_paper_number_with_its_note_and_source():
    recipe = dataclasses.asdict(paper_config(110))
    groups = group_results([RunResult(f"r{s}", "completed", dict(recipe, seed=s), "ResNet-110", 1, 1, e, None, 1.0, 1.0)
                            for s, e in ((0, 6.5), (1, 6.7))])
    (point,) = comparison.depth_lines(groups)["shortcut A"]
    assert (point.error, point.paper.error) == (pytest.approx(6.6), 6.43)
    fig = error_curves.error_vs_depth_figure({"shortcut A": [point]})
    hover = fig.data[1].customdata[0][0]
    assert "best of 5 runs; mean 6.61 ± 0.16" in hover and "He et al. 2016, Table 6" in hover
