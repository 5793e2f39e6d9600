"""A 100-class confusion matrix made usable: the superclass matrix, top-k accuracy, the order
by superclass and its inverse, and clicks that map back to the right (true, predicted)
labels on the superclass, grouped and superclass-pair figures (no Streamlit here)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from cifar100_format import COARSE_NAMES, FINE_NAMES, SUPERCLASS_OF
from fake_runs import fake_predictions

from resnet_core.dashboard import class_groups, confusion_figures
from resnet_core.dashboard.cell_selection import Cell, selection_from_event
from resnet_core.metrics import coarse_confusion, confusion_matrix, most_confused_pairs, topk_accuracy


@pytest.fixture(scope="module")
def cm100() -> np.ndarray:
    p = fake_predictions(2000, 100, accuracy=0.6, seed=3)
    return confusion_matrix(p["labels"], p["preds"], 100)


def test_the_superclass_matrix_sums_the_class_matrix_by_true_and_predicted_superclass(cm100):
    coarse = coarse_confusion(cm100, SUPERCLASS_OF, 20)
    assert coarse.shape == (20, 20) and coarse.dtype == np.int64
    assert coarse.sum() == cm100.sum() == 2000
    of = np.asarray(SUPERCLASS_OF)
    for a in range(20):  # rows are the true superclass: each row holds its classes' images
        assert coarse[a].sum() == cm100[of == a].sum()
        assert coarse[:, a].sum() == cm100[:, of == a].sum()
    # One cell by hand: true in superclass 3, predicted in superclass 7.
    assert coarse[3, 7] == sum(cm100[t, p] for t in range(100) for p in range(100) if of[t] == 3 and of[p] == 7)
    # A right superclass is not a right class: the diagonal holds at least the class diagonal.
    assert np.trace(coarse) >= np.trace(cm100)


def test_the_superclass_matrix_of_a_tiny_example():
    cm = np.array([[5, 1, 2], [0, 4, 3], [1, 1, 6]])  # classes 0 and 1 in superclass 1, class 2 in 0
    assert coarse_confusion(cm, [1, 1, 0], 2).tolist() == [[6, 2], [5, 10]]
    with pytest.raises(ValueError, match="2 superclass indices for a 3x3"):
        coarse_confusion(cm, [0, 1], 2)
    with pytest.raises(ValueError, match="0..1"):
        coarse_confusion(cm, [0, 1, 2], 2)


def test_topk_accuracy_counts_the_true_class_among_the_k_most_probable():
    labels = np.array([3, 1, 4, 0])
    topk = np.array([[3, 1, 2], [0, 1, 2], [0, 1, 2], [2, 1, 0]])  # hits: at 1st, 2nd, none, 3rd
    assert topk_accuracy(labels, topk, 1) == 0.25
    assert topk_accuracy(labels, topk, 2) == 0.5
    assert topk_accuracy(labels, topk, 3) == 0.75
    assert math.isnan(topk_accuracy([], np.zeros((0, 5), dtype=np.int64), 5))
    with pytest.raises(ValueError, match="3 most probable"):
        topk_accuracy(labels, topk, 5)
    with pytest.raises(ValueError, match="for 3 labels"):
        topk_accuracy(labels[:3], topk, 1)


def test_top5_of_recorded_predictions_is_at_least_top1():
    p = fake_predictions(500, 100, accuracy=0.3, seed=1)
    top1 = topk_accuracy(p["labels"], p["topk_classes"], 1)
    assert top1 == float((p["labels"] == p["preds"]).mean())
    assert topk_accuracy(p["labels"], p["topk_classes"], 5) >= top1


def test_the_most_confused_pairs_of_100_classes_are_the_largest_off_diagonal_cells(cm100):
    pairs = most_confused_pairs(cm100, 15)
    off = cm100.copy()
    np.fill_diagonal(off, 0)
    assert len(pairs) == 15 and all(t != p and cm100[t, p] == n for t, p, n in pairs)
    assert [n for _, _, n in pairs] == sorted(np.sort(off, axis=None)[::-1][:15].tolist(), reverse=True)


def test_the_superclass_order_groups_classes_by_superclass_then_name_and_inverts():
    order = class_groups.superclass_order(FINE_NAMES, SUPERCLASS_OF)
    assert sorted(order) == list(range(100))
    keys = [(SUPERCLASS_OF[c], FINE_NAMES[c]) for c in order]
    assert keys == sorted(keys)
    assert [FINE_NAMES[c] for c in order[:5]] == ["beaver", "dolphin", "otter", "seal", "whale"]  # aquatic_mammals
    at = class_groups.positions(order)
    assert all(order[at[label]] == label for label in range(100)) and all(at[order[i]] == i for i in range(100))
    runs = class_groups.blocks(order, SUPERCLASS_OF)
    assert [(s, a, b) for s, a, b in runs] == [(s, 5 * s, 5 * s + 5) for s in range(20)]
    assert class_groups.members(FINE_NAMES, SUPERCLASS_OF, 18) == [
        FINE_NAMES.index(n) for n in ("bicycle", "bus", "motorcycle", "pickup_truck", "train")]


def _event_of(fig, t: int, p: int) -> dict:
    """The event a click on cell (true t, predicted p) sends: that point's x, y and customdata."""
    cells = fig.data[1]
    i = [tuple(c) for c in cells.customdata].index((t, p))
    return {"selection": {"points": [{"x": cells.x[i], "y": cells.y[i], "customdata": list(cells.customdata[i])}]}}


def test_the_grouped_100_class_figure_draws_by_superclass_and_clicks_map_back_to_the_labels(cm100):
    group = [COARSE_NAMES[s] for s in SUPERCLASS_OF]
    grid = confusion_figures.grouped_grid(cm100, FINE_NAMES, SUPERCLASS_OF, COARSE_NAMES)
    order = class_groups.superclass_order(FINE_NAMES, SUPERCLASS_OF)
    fig = confusion_figures.confusion_figure(cm100, FINE_NAMES, "counts", selected=(7, 42), grid=grid, group=group)
    heat, cells = fig.data
    # Drawn in superclass order: drawn cell (i, j) is the matrix's cell (order[i], order[j]).
    assert list(heat.y) == [FINE_NAMES[c] for c in order] == list(fig.layout.yaxis.categoryarray)
    assert all(heat.z[i][j] == cm100[order[i], order[j]] for i in range(0, 100, 7) for j in range(0, 100, 3))
    # Only the cells with images take a click; each point's customdata are its labels, its x and
    # y their names: a click maps back to (true, predicted), not to drawn positions.
    assert {tuple(c) for c in cells.customdata} == {(t, p) for t, p in zip(*np.nonzero(cm100), strict=True)}
    for t, p in [tuple(c) for c in cells.customdata][::97]:
        event = _event_of(fig, t, p)
        assert selection_from_event(event, FINE_NAMES) == Cell(t, p)
        del event["selection"]["points"][0]["customdata"]  # by names alone too
        assert selection_from_event(event, FINE_NAMES) == Cell(t, p)
    i = [tuple(c) for c in cells.customdata].index(tuple(map(int, np.argwhere(cm100)[5])))
    t, p = cells.customdata[i]
    assert f"true <b>{FINE_NAMES[t]}</b> ({group[t]})" in cells.hovertext[i]
    assert f"{cm100[t, p]:,} images" in cells.hovertext[i]
    # One tick per superclass (no 100 labels), lines between the 20 blocks, the selected cell
    # outlined at its drawn position.
    assert list(fig.layout.xaxis.ticktext) == list(COARSE_NAMES) and len(fig.layout.yaxis.tickvals) == 20
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 2 * 19 and {s.x0 for s in lines if s.y0 == -0.5} == {5 * k - 0.5 for k in range(1, 20)}
    outline = next(s for s in fig.layout.shapes if s.type == "rect")
    at = class_groups.positions(order)
    assert (outline.x0, outline.y0) == (at[42] - 0.5, at[7] - 0.5)
    assert heat.texttemplate is None  # 10,000 counts too small to read: in the hover only
    assert fig.layout.xaxis.tickangle == -90  # 20 long names upright: at -35 degrees they overlapped
    assert len(fig.to_json()) < 1_500_000


def test_a_superclass_cell_click_names_the_pair_and_its_drill_down_the_classes(cm100):
    coarse = coarse_confusion(cm100, SUPERCLASS_OF, 20)
    fig = confusion_figures.confusion_figure(coarse, COARSE_NAMES, grid=confusion_figures.full_grid(20))
    assert selection_from_event(_event_of(fig, 4, 17), COARSE_NAMES) == Cell(4, 17)
    rows, cols = (class_groups.members(FINE_NAMES, SUPERCLASS_OF, s) for s in (4, 17))
    grid = confusion_figures.grouped_grid(cm100, FINE_NAMES, SUPERCLASS_OF, COARSE_NAMES, rows=rows, cols=cols)
    pair = confusion_figures.confusion_figure(cm100, FINE_NAMES, "recall", grid=grid)
    heat, cells = pair.data
    assert len(cells.customdata) == 25 and len(heat.z) == 5 and len(heat.z[0]) == 5
    assert list(heat.y) == [FINE_NAMES[c] for c in rows] and list(heat.x) == [FINE_NAMES[c] for c in cols]
    # Percentages of the whole true class, not of the 5 columns shown.
    t, p = rows[2], cols[3]
    expected = 100 * cm100[t, p] / cm100[t].sum()
    assert heat.z[2][3] == pytest.approx(expected)
    assert selection_from_event(_event_of(pair, t, p), FINE_NAMES) == Cell(t, p)
    assert pair.layout.yaxis.title.text == f"true class (in {COARSE_NAMES[4]})"
    assert pair.layout.xaxis.title.text == f"predicted class (in {COARSE_NAMES[17]})"
    assert list(pair.layout.xaxis.categoryarray) == [FINE_NAMES[c] for c in cols]
    assert pair.layout.xaxis.tickangle == -35  # 5 (or 10) class names: slanted, as always
    assert json.loads(pair.to_json())["data"][1]["customdata"][0] == [rows[0], cols[0]]


def test_the_difference_of_two_100_class_matrices_draws_by_superclass_too(cm100):
    other = cm100.T.copy()  # another run's matrix of as many images
    grid = confusion_figures.grouped_grid(cm100 + other, FINE_NAMES, SUPERCLASS_OF, COARSE_NAMES)
    group = [COARSE_NAMES[s] for s in SUPERCLASS_OF]
    fig = confusion_figures.difference_figure(cm100, other, FINE_NAMES, grid=grid, group=group)
    heat, cells = fig.data
    order = class_groups.superclass_order(FINE_NAMES, SUPERCLASS_OF)
    assert heat.z[3][60] == other[order[3], order[60]] - cm100[order[3], order[60]]
    assert {tuple(c) for c in cells.customdata} == set(zip(*np.nonzero(cm100 + other), strict=True))
    t, p = cells.customdata[10]
    assert selection_from_event(_event_of(fig, t, p), FINE_NAMES) == Cell(t, p)
    assert f"difference B − A: {other[t, p] - cm100[t, p]:+,}" in cells.hovertext[10]
    assert cells.hovertext[10].startswith(f"true <b>{FINE_NAMES[t]}</b> ({group[t]}) → predicted "
                                          f"<b>{FINE_NAMES[p]}</b> ({group[p]})")
    assert len(fig.layout.xaxis.ticktext) == 20 and heat.texttemplate is None


def test_flips_of_100_classes_sum_per_superclass_in_bars_of_twenty():
    counts = np.zeros(100, np.int64)
    counts[[FINE_NAMES.index("bus"), FINE_NAMES.index("train"), FINE_NAMES.index("worm")]] = (3, 4, 5)
    sums = class_groups.per_superclass(counts, SUPERCLASS_OF, 20)
    assert sums.dtype == np.int64 and sums.sum() == 12
    assert sums[COARSE_NAMES.index("vehicles_1")] == 7 and sums[SUPERCLASS_OF[FINE_NAMES.index("worm")]] == 5
    with pytest.raises(ValueError, match="99 counts for 100 classes"):
        class_groups.per_superclass(counts[:99], SUPERCLASS_OF, 20)
    fig = confusion_figures.flip_counts_figure(counts, 2 * counts, FINE_NAMES, superclass_of=SUPERCLASS_OF,
                                               superclasses=COARSE_NAMES)
    assert [list(t.y) for t in fig.data] == [list(COARSE_NAMES)] * 2 and {t.orientation for t in fig.data} == {"h"}
    assert list(fig.data[1].x) == (2 * sums).tolist() and fig.layout.yaxis.title.text == "true superclass"
    assert fig.layout.margin.l >= len("large_omnivores_and_herbivores") * 7  # the longest name whole
    per_class = confusion_figures.flip_counts_figure(counts[:10], counts[:10], FINE_NAMES[:10])  # 10: as before
    assert list(per_class.data[0].x) == list(FINE_NAMES[:10]) and per_class.layout.xaxis.title.text == "true class"
