"""Views of many classes without Streamlit: class colours by superclass, matrices ordered by
superclass or cut to a selection's busiest classes, the atlas's legend of superclasses,
Compare's refusal of runs of different datasets, the Runs table's dataset."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from cifar100_format import COARSE_NAMES, FINE_NAMES, SUPERCLASS_OF
from fake_runs import fake_predictions, make_run

from resnet_core import runs
from resnet_core.dashboard import atlas_figures, class_colours, class_groups, comparison, runs_table
from resnet_core.dashboard.figure_style import PALETTE


def hls(colour: str) -> tuple[float, float, float]:
    return colorsys.rgb_to_hls(*(int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)))


def test_a_hundred_classes_take_their_superclass_hue_in_shades_of_their_own():
    colours = class_colours.class_colours(100, SUPERCLASS_OF)
    assert len(set(colours)) == 100  # no two classes alike
    bases = class_colours.superclass_colours(20)
    assert len(set(bases)) == 20
    for s, base in enumerate(bases):
        members = [c for c in range(100) if SUPERCLASS_OF[c] == s]
        hue = hls(base)[0]
        assert all(abs(hls(colours[c])[0] - hue) < 0.02 for c in members), COARSE_NAMES[s]
        lightness = [hls(colours[c])[1] for c in members]
        assert lightness == sorted(lightness)  # darkest: the lowest label
    # Stable: a class's colour follows its superclass and its rank there, whatever the run.
    assert class_colours.class_colours(100, list(SUPERCLASS_OF)) == colours


def test_classes_without_superclasses_keep_the_palette():
    assert class_colours.class_colours(10) == list(PALETTE)
    assert class_colours.class_colours(10, [0, 1]) == list(PALETTE)  # a grouping of other classes is ignored
    assert len(set(class_colours.class_colours(100))) == 100


def test_the_superclass_order_lists_each_superclass_together_by_label():
    order = class_groups.grouped_order(FINE_NAMES, SUPERCLASS_OF)
    assert sorted(order.tolist()) == list(range(100))
    groups = [SUPERCLASS_OF[c] for c in order]
    assert groups == sorted(groups)
    assert [FINE_NAMES[c] for c in order[:5]] == ["beaver", "dolphin", "otter", "seal", "whale"]
    assert class_groups.grouped_order(FINE_NAMES[:10], []).tolist() == list(range(10))


def test_the_busiest_classes_are_those_with_the_most_images_in_superclass_order():
    counts = np.zeros((100, 100), np.int64)
    counts[4, 4] = 9  # beaver (aquatic mammals)
    counts[1, 30] = 5  # aquarium_fish (fish) predicted as dolphin (aquatic mammals)
    counts[99, 99] = 1  # worm: the fewest
    # No class without images; superclass by superclass (beaver, dolphin, then fish, then worm).
    assert class_groups.busiest_classes(counts, 20, FINE_NAMES, SUPERCLASS_OF).tolist() == [4, 30, 1, 99]
    assert class_groups.busiest_classes(counts, 3, FINE_NAMES, SUPERCLASS_OF).tolist() == [4, 30, 1]
    small = np.zeros((10, 10), np.int64)
    assert class_groups.busiest_classes(small, 20, FINE_NAMES[:10]).tolist() == list(range(10))  # all of a few


@pytest.mark.parametrize("colour_by", [atlas_figures.TRUE, atlas_figures.PREDICTED])
def test_the_atlas_of_a_hundred_classes_has_a_legend_of_twenty_superclasses(colour_by):
    rng = np.random.default_rng(0)
    n = 600
    labels, preds = np.arange(n) % 100, rng.integers(0, 100, n)
    fig = atlas_figures.atlas_figure(rng.normal(size=(n, 2)), np.arange(n), labels, preds, rng.random(n),
                                     FINE_NAMES, colour_by, superclasses=COARSE_NAMES, superclass_of=SUPERCLASS_OF)
    entries = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in entries] == list(COARSE_NAMES)
    assert all(list(t.x) == [None] for t in entries)  # a point, or plotly.js leaves the entry out
    assert fig.layout.legend.tracegroupgap == 0
    classes = [t for t in fig.data if t.showlegend is False]
    colours = class_colours.class_colours(100, SUPERCLASS_OF)
    which = labels if colour_by == atlas_figures.TRUE else preds
    for t in classes:  # each class in its own colour, in its superclass's legend group; hover names both
        c = FINE_NAMES.index(t.name)
        assert t.legendgroup == COARSE_NAMES[SUPERCLASS_OF[c]] and t.marker.color == colours[c]
        assert sorted(np.asarray(t.customdata)[:, 0].astype(int).tolist()) == np.flatnonzero(which == c).tolist()
        assert "%{fullData.name}" in t.hovertemplate and "%{fullData.legendgroup}" in t.hovertemplate
    shown = np.concatenate([np.asarray(t.customdata)[:, 0] for t in classes]).astype(int)
    assert sorted(shown.tolist()) == list(range(n))  # every image once
    assert fig.layout.margin.r >= 50 + 6.5 * len("large_omnivores_and_herbivores") - 1  # the longest name fits


def test_ten_classes_keep_a_legend_entry_a_class():
    fig = atlas_figures.atlas_figure(np.zeros((10, 2)), np.arange(10), np.arange(10), np.arange(10), np.ones(10),
                                     [str(i) for i in range(10)])
    assert [t.name for t in fig.data] == [str(i) for i in range(10)] and all(t.showlegend is None for t in fig.data)


def evaluated(name: str, dataset: str, classes) -> comparison.Evaluated:
    preds = fake_predictions(50, len(classes))
    return comparison.Evaluated(name, "test", "test", 0, tuple(classes), preds, dataset)


def test_compare_refuses_runs_of_different_datasets_in_one_line():
    from resnet_core.cifar import CLASSES

    problem = comparison.comparability_problem(evaluated("A", "cifar10", CLASSES),
                                               evaluated("B", "cifar100", FINE_NAMES))
    assert problem == "A trained on CIFAR-10, B on CIFAR-100: their predictions cannot be compared."
    assert comparison.comparability_problem(evaluated("A", "cifar100", FINE_NAMES),
                                            evaluated("B", "cifar100", FINE_NAMES)) is None


def test_the_runs_table_names_each_runs_dataset(tmp_path):
    make_run(tmp_path, "ten")
    make_run(tmp_path, "hundred", dataset="cifar100")
    table = runs_table.runs_table(runs.list_runs(tmp_path)).set_index("run")
    assert {table.loc[i, "dataset"] for i in table.index if i.endswith("ten")} == {"cifar10"}
    assert {table.loc[i, "dataset"] for i in table.index if i.endswith("hundred")} == {"cifar100"}


def test_two_runs_share_superclasses_only_where_both_group_their_classes_alike(tmp_path):
    hundred = [runs.read_run(make_run(tmp_path, f"h{i}", dataset="cifar100")) for i in range(2)]
    ten = runs.read_run(make_run(tmp_path, "ten"))
    assert comparison.shared_superclasses(*hundred, 100) == (list(SUPERCLASS_OF), list(COARSE_NAMES))
    assert comparison.shared_superclasses(ten, ten, 10) == ([], [])
    assert comparison.shared_superclasses(hundred[0], ten, 100) == ([], [])  # one run without them
    assert comparison.shared_superclasses(*hundred, 10) == ([], [])  # not these classes' grouping


def test_the_flip_table_names_each_classs_superclass_where_given():
    table = comparison.flip_table([1, 0, 2], [0, 3, 2], FINE_NAMES[:3], group=["a", "b", "c"])
    assert [r["superclass"] for r in table] == ["a", "b", "c", None]
    assert list(table[0]) == ["class", "superclass", "A right, B wrong", "B right, A wrong", "net for B"]
    assert table[-1]["net for B"] == 2 and "superclass" not in comparison.flip_table([1], [0], ["x"])[0]
