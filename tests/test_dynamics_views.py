"""The dashboard's views of training dynamics without Streamlit: the forgetting-count bars,
the data map's traces, what a box or lasso selects, and two runs' overlap."""

from __future__ import annotations

import re

import numpy as np
import pytest

from resnet_core.dashboard import data_map_selection as sel
from resnet_core.dashboard import dynamics_figures, dynamics_overlap

REGIONS = ("easy-to-learn", "ambiguous", "hard-to-learn")


def test_forgetting_bars_count_each_number_of_events_and_never_learned_apart():
    events = np.array([0, 0, 1, 3, 3, 0, 0])
    never = np.array([0, 0, 0, 0, 0, 1, 1], dtype=bool)  # never learned: 0 events, a bar of their own
    names, groups = dynamics_figures.forgetting_count_bars(events, never)
    assert names == ["0", "1", "2", "3", dynamics_figures.NEVER_LEARNED]
    assert groups == {"all": [2, 1, 0, 2, 2]}
    flipped = np.array([0, 1, 0, 1, 0, 1, 0], dtype=bool)
    _, split = dynamics_figures.forgetting_count_bars(events, never, flipped)
    assert split == {"clean": [1, 1, 0, 1, 1], "flipped": [1, 0, 0, 1, 1]}
    assert dynamics_figures.forgetting_count_bars(events, never, np.zeros(7, bool))[1] == groups  # no noise: one bar


def test_the_count_figure_stacks_flipped_on_clean_and_labels_never_learned_as_infinite():
    fig = dynamics_figures.forgetting_counts_figure(np.array([2, 0, 0]), np.array([0, 0, 1], bool),
                                                    np.array([1, 0, 0], bool))
    assert [t.name for t in fig.data] == ["label as in the data set", "label flipped (planted noise)"]
    assert fig.layout.barmode == "stack" and list(fig.data[0].x)[-1] == "never learned (∞)"
    assert list(fig.data[0].y) == [1, 0, 0, 1] and list(fig.data[1].y) == [0, 0, 1, 0]


def _map(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return dict(variability=rng.random(n) * 0.4, confidence=rng.random(n), correctness=rng.random(n),
                indices=np.arange(n) * 3)


def test_the_data_map_is_one_webgl_trace_of_every_image_with_flipped_ones_apart():
    m = _map()
    flipped = np.zeros(1000, dtype=bool)
    flipped[::10] = True
    fig = dynamics_figures.data_map_figure(**m, variability_cut=0.25, confidence_cut=0.3, flipped=flipped,
                                           region_counts={"easy-to-learn": 5, "ambiguous": 6, "hard-to-learn": 7})
    clean, marked = fig.data
    assert clean.type == marked.type == "scattergl"
    assert len(clean.x) == 900 and len(marked.x) == 100 and marked.marker.symbol == "x"
    assert np.array_equal(np.asarray(marked.customdata), m["indices"][flipped])  # hover names dataset indices
    assert np.allclose(np.asarray(clean.marker.color), m["correctness"][~flipped]) and clean.marker.coloraxis
    assert fig.layout.dragmode == "drawrect" and fig.layout.showlegend  # a drag draws a box
    lines = [(s.x0, s.x1, s.y0, s.y1) for s in fig.layout.shapes]
    assert lines == [(0.25, 0.25, 0, 1), (0, 0.25, 0.3, 0.3)]  # ambiguous right; hard below, easy above on the left
    names = {a.text.split("<br>")[0]: (a.x, a.y) for a in fig.layout.annotations}
    assert names["<b>easy-to-learn</b>"][1] > 0.9 and names["<b>hard-to-learn</b>"][1] < 0.1
    assert names["<b>ambiguous</b>"][0] > 0.25 > names["<b>easy-to-learn</b>"][0]
    assert "7 images" in next(a.text for a in fig.layout.annotations if "hard" in a.text)
    plain = dynamics_figures.data_map_figure(**m, variability_cut=0.25, confidence_cut=0.3)
    assert len(plain.data) == 1 and not plain.layout.showlegend


def test_an_image_never_presented_leaves_the_maps_axis_and_region_names_where_they_belong():
    m = _map()
    m["variability"][7] = m["confidence"][7] = m["correctness"][7] = np.nan  # no epoch presented it
    fig = dynamics_figures.data_map_figure(**m, variability_cut=0.25, confidence_cut=0.3)
    assert fig.layout.xaxis.range == pytest.approx((0, 1.05 * np.nanmax(m["variability"])))
    names = {a.text.split("<br>")[0]: a.x for a in fig.layout.annotations}
    assert names["<b>easy-to-learn</b>"] < 0.25 < names["<b>ambiguous</b>"] < fig.layout.xaxis.range[1]


def test_the_data_maps_arrays_go_to_the_browser_as_binary():
    fig = dynamics_figures.data_map_figure(**_map(50_000), variability_cut=0.25, confidence_cut=0.3)
    spec = fig.to_plotly_json()["data"][0]
    assert spec["x"]["dtype"] == "f4" and "bdata" in spec["x"]  # base64 of the float32 array
    assert len(fig.to_json()) < 2_000_000  # about 20 bytes an image, not a JSON list of decimals


def _event(box=(), lasso=()):
    return {"selection": {"points": [], "point_indices": [], "box": [{"xref": "x", "yref": "y", "x": list(x),
                                                                       "y": list(y)} for x, y in box],
                          "lasso": [{"xref": "x", "yref": "y", "x": list(x), "y": list(y)} for x, y in lasso]}}


def test_a_selection_events_areas_are_its_boxes_and_lassos():
    event = _event(box=[((0.3, 0.1), (0.9, 0.2))], lasso=[((0, 1, 0), (0, 0, 1))])
    areas = sel.selection_areas(event)
    assert areas == (sel.Area("box", (0.3, 0.1), (0.9, 0.2)), sel.Area("lasso", (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    assert sel.selection_areas(_event()) == () and sel.selection_areas(None) == ()
    assert sel.selection_areas({"selection": {"box": [{"x": [1], "y": [2]}]}}) == ()  # not an area


def test_a_box_and_a_lasso_select_the_points_inside():
    x = np.array([0.1, 0.5, 0.5, 0.9, 0.2, 0.3])
    y = np.array([0.1, 0.5, 0.95, 0.9, 0.7, 0.2])
    box = sel.Area("box", (0.6, 0.0), (0.0, 0.6))  # corners in any order
    assert np.flatnonzero(sel.inside([box], x, y)).tolist() == [0, 1, 5]
    triangle = sel.Area("lasso", (0.0, 1.0, 0.0), (0.0, 1.0, 1.0))  # above the diagonal
    assert np.flatnonzero(sel.inside([triangle], x, y)).tolist() == [2, 4]
    assert np.flatnonzero(sel.inside([box, triangle], x, y)).tolist() == [0, 1, 2, 4, 5]
    assert not sel.inside([], x, y).any()


def test_a_selection_lists_its_images_least_confident_first_with_region_and_flipped_counts():
    variability = np.array([0.1, 0.1, 0.4, 0.1, 0.1])
    confidence = np.array([0.9, 0.2, 0.5, 0.1, 0.8])
    region = np.array([0, 2, 1, 2, 0], dtype=np.int8)
    box = [sel.Area("box", (0.0, 0.5), (0.15, 1.0))]  # all but image 3
    chosen = sel.selected_images(box, variability, confidence, region, REGIONS)
    assert chosen.positions.tolist() == [1, 2, 4, 0]
    assert chosen.region_counts == {"easy-to-learn": 2, "ambiguous": 1, "hard-to-learn": 1}
    assert chosen.flipped is None and chosen.flipped_by_region is None
    flipped = np.array([0, 1, 0, 1, 1], dtype=bool)
    noisy = sel.selected_images(box, variability, confidence, region, REGIONS, flipped)
    assert noisy.flipped == 2 and noisy.flipped_by_region == {"easy-to-learn": 1, "ambiguous": 0, "hard-to-learn": 1}
    nothing = sel.selected_images([sel.Area("box", (2, 3), (2, 3))], variability, confidence, region, REGIONS)
    assert len(nothing.positions) == 0 and set(nothing.region_counts.values()) == {0}


def test_overlap_aligns_two_runs_by_dataset_index():
    a_idx = np.array([5, 1, 9, 3])
    b_idx = np.array([3, 9, 1, 5])  # the same images in another order
    a = {"unforgettable": np.array([1, 1, 0, 0], bool), "hard-to-learn": np.array([0, 0, 1, 1], bool)}
    b = {"unforgettable": np.array([0, 0, 1, 1], bool), "hard-to-learn": np.array([1, 0, 0, 0], bool)}
    o = dynamics_overlap.overlap(a_idx, a_idx % 10, a, b_idx, b_idx % 10, b)
    assert o.same_images and o.shared == 4 and o.relabelled == 0
    unf, hard = o.sets
    assert (unf.a, unf.b, unf.both, unf.jaccard) == (2, 2, 2, 1.0)  # {5, 1} both times
    assert (hard.a, hard.b, hard.both, hard.union) == (2, 1, 1, 2) and hard.jaccard == 0.5  # {9, 3} and {3}
    assert "same 4 images" in o.images_text()


def test_overlap_of_runs_on_different_images_compares_the_shared_ones_and_says_so():
    a = dynamics_overlap.overlap(np.array([0, 1, 2]), np.array([0, 1, 2]), {"s": np.array([1, 1, 1], bool)},
                                 np.array([1, 2, 7, 8]), np.array([1, 5, 0, 0]), {"s": np.array([0, 1, 1, 1], bool)})
    assert (a.a_images, a.b_images, a.shared, a.relabelled) == (3, 4, 2, 1) and not a.same_images
    (s,) = a.sets
    assert (s.a, s.b, s.both) == (2, 1, 1)  # on images 1 and 2 only
    text = a.images_text()
    assert "different image sets: A on 3, B on 4" in text and "2 images both trained on" in text
    assert "1 of them carried a different label" in text
    empty = dynamics_overlap.SetOverlap("s", 0, 0, 0)
    assert empty.jaccard is None


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_maps_draw(n):
    fig = dynamics_figures.data_map_figure(np.zeros(n), np.zeros(n), np.zeros(n), np.arange(n), 0.0, 0.0)
    assert len(fig.data) == 1


def _dynamics():
    """Five training images over four epochs, by hand (NaN: not presented)."""
    from resnet_core import runs
    from resnet_core.dynamics import analyse

    right = np.array([[1, 0, 1, 0],  # 2 events
                      [0, 0, 0, 0],  # never learned
                      [0, 1, 1, 1],  # unforgettable, first right at epoch 2
                      [1, 1, 1, 1],  # unforgettable, first right at epoch 1
                      [1, 0, 0, 1]], dtype=bool)  # 1 event
    prob = np.where(right, 0.8, 0.2).astype(np.float32)
    prob[4, 2] = np.nan  # epoch 3 did not present image 4 (wrong there would be a second event)
    right[4, 2] = False
    labels = np.array([1, 2, 3, 4, 5])
    return analyse(runs.TrainingRecord(indices=np.array([40, 41, 42, 43, 44]), labels=labels,
                                       original_labels=np.array([1, 7, 3, 4, 5]), epochs=np.arange(1, 5),
                                       label_prob=prob, correct=right))


def test_training_galleries_order_the_images():
    from resnet_core.dashboard import training_gallery

    d = _dynamics()
    assert training_gallery.view_rows(d, "most forgotten").tolist() == [0, 4]
    assert training_gallery.view_rows(d, "never learned").tolist() == [1]
    assert training_gallery.view_rows(d, "unforgettable").tolist() == [3, 2]  # the earliest learned first
    with pytest.raises(ValueError):
        training_gallery.view_rows(d, "forgotten")
    assert training_gallery.flipped_share(d, np.array([1])) == \
        "1 of 1 flipped (100.0%, against 20.0% of all training images)"
    assert training_gallery.flipped_share(d, np.array([], dtype=np.int64)) is None


def test_a_training_card_shows_its_presentations_and_marks_a_flipped_label():
    from resnet_core.cifar import CLASSES
    from resnet_core.dashboard import gallery_cards, training_gallery

    d = _dynamics()
    four, one = training_gallery.cards(d, [4, 1], notes={1: "look"})
    assert (four.index, four.epochs, four.right, four.events) == (44, (1, 2, 4), (True, False, True), 1)
    assert one.never_learned and one.note == "look" and (one.label, one.original_label) == (2, 7)
    images = np.random.default_rng(0).integers(0, 256, (50, 3, 32, 32), dtype=np.uint8)
    html = gallery_cards.training_gallery_html([four, one], images, CLASSES, total=9)
    assert re.findall(r'data-index="(\d+)"', html) == ["44", "41"] and 'data-total="9"' in html
    assert 'data-right="101"' in html and html.count("data:image/png;base64,") == 2
    assert html.count('data-flipped="1"') == 1 and f"flipped from {CLASSES[7]}" in html and "never learned" in html
    assert "forgotten 1×" in html and 'class="rs-note"' in html
    assert "rs-path" not in html  # a CIFAR run records no files: no path on hover
    paths = [f"c/{i}.png" for i in range(45)]  # a run's data_files.json, by training-set index
    with_paths = training_gallery.cards(d, [4, 1], paths=paths)
    assert [c.path for c in with_paths] == ["c/44.png", "c/41.png"]
    assert 'title="c/44.png"' in gallery_cards.training_gallery_html(with_paths, images, CLASSES)


def test_the_first_right_chart_ticks_whole_epochs_and_counts_each_epochs_images():
    """Plotly's own ticks put 0.5 steps under a few epochs (seen on a 3-epoch run)."""
    fig = dynamics_figures.first_learned_figure(np.array([0, 1, 1, 3, 2, 1]), [1, 2, 3])
    assert list(fig.data[0].y) == [3, 1, 1]  # the never-right image (0) left out
    assert (fig.layout.xaxis.tick0, fig.layout.xaxis.dtick, tuple(fig.layout.xaxis.range)) == (1, 1, (0.5, 3.5))
