"""Runs that differ only by seed as one curve: their grouping, the mean and band per x over
runs of unequal length, the Monitor's smoothing reused, and the banded error curves; line
styles that stay distinct past ten runs."""

from __future__ import annotations

import numpy as np
import pytest

from resnet_core.dashboard import error_curves, figure_style
from resnet_core.dashboard.seed_bands import Band, aligned, band, thinned
from resnet_core.dashboard.series import ema
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core.results import seed_groups

WITH_VAL = evaluation_labels({"format_version": 2, "resolved": {"val_source": "train"}})
BASE = {"depth": 20, "shortcut": "A", "lr": 0.1, "epochs": 3, "seed": 0, "name": "a", "sweep": "",
        "device": "cpu", "log_every": 20}


def test_runs_that_differ_only_by_seed_or_placement_form_a_group():
    configs = [BASE, dict(BASE, seed=1, name="b", device="cuda", compile=True, log_every=5),
               dict(BASE, lr=0.05, seed=2),  # another learning rate: another group
               dict(BASE, seed=3, sweep="s", runs_dir="/elsewhere", data_dir="/data"),
               dict(BASE, split_seed=1),  # another validation split: another group
               dict(BASE, epochs=10)]  # a longer schedule: another group
    groups, differing = seed_groups(configs)
    assert groups == [[0, 1, 3], [2], [4], [5]]
    assert set(differing) == {"lr", "split_seed", "epochs"}
    # A field an older record lacks had its default: it groups with one that records it.
    assert seed_groups([{"depth": 20}, {"depth": 20, "dataset": "cifar10", "seed": 4}])[0] == [[0, 1]]


def test_the_band_of_runs_of_unequal_length_counts_the_runs_at_each_x():
    series = [(np.array([1, 2, 3]), np.array([10.0, 20.0, 30.0])),
              (np.array([1, 2, 3]), np.array([12.0, 22.0, 36.0])),
              (np.array([1, 2]), np.array([14.0, 30.0]))]  # a seed that has done 2 epochs
    b = band(series, "std")
    assert list(b.x) == [1, 2, 3] and list(b.n) == [3, 3, 2]
    assert b.mean == pytest.approx([12.0, 24.0, 33.0])
    std = [np.std([10, 12, 14], ddof=1), np.std([20, 22, 30], ddof=1), np.std([30, 36], ddof=1)]
    assert b.low == pytest.approx(np.array([12.0, 24.0, 33.0]) - std)
    assert b.high == pytest.approx(np.array([12.0, 24.0, 33.0]) + std)
    m = band(series, "min-max")
    assert list(m.low) == [10.0, 20.0, 30.0] and list(m.high) == [14.0, 30.0, 36.0]
    # One run at an x: its value, and no std band (n - 1 = 0) but a min-max one of its value.
    lone = band([(np.array([1, 2]), np.array([5.0, 6.0])), (np.array([1]), np.array([7.0]))], "std")
    assert list(lone.n) == [2, 1] and lone.mean[1] == 6.0 and np.isnan(lone.low[1]) and np.isnan(lone.high[1])
    assert list(band([(np.array([1]), np.array([7.0]))], "min-max").low) == [7.0]
    with pytest.raises(ValueError, match="band 'sem'"):
        band(series, "sem")


def test_step_rows_at_other_steps_are_interpolated_and_gaps_left_out():
    # Run 2 logged at other steps (log_seconds) and has a gap; run 1 stops at step 20.
    grid, values = aligned([(np.array([0, 10, 20]), np.array([0.0, 1.0, 2.0])),
                            (np.array([5, 15, 25, 30]), np.array([1.0, np.nan, 3.0, 4.0]))])
    assert list(grid) == [0, 5, 10, 20, 25, 30]  # the gap's step is no point of the grid
    assert values[0] == pytest.approx([0.0, 0.5, 1.0, 2.0, np.nan, np.nan], nan_ok=True)
    assert values[1] == pytest.approx([np.nan, 1.0, 1.5, 2.5, 3.0, 4.0], nan_ok=True)
    # Out of order and unordered x are sorted first.
    grid, values = aligned([(np.array([2, 1]), np.array([4.0, 2.0]))])
    assert list(grid) == [1, 2] and list(values[0]) == [2.0, 4.0]
    assert aligned([])[0].size == 0


def test_a_long_band_is_thinned_to_the_point_budget_keeping_its_ends():
    x = np.arange(10_000, dtype=float)
    b = thinned(Band(x, x, x - 1, x + 1, np.full(10_000, 3)), 100)
    assert len(b.x) == 100 and (b.x[0], b.x[-1]) == (0, 9999) and list(b.low) == list(b.x - 1)
    short = Band(x[:5], x[:5], x[:5], x[:5], x[:5])
    assert thinned(short, 100) is short


def _run(name: str, steps: list[dict], epochs: list[dict]) -> error_curves.CurveRun:
    return error_curves.CurveRun(name, steps, epochs, WITH_VAL, 10)


def _seed(offset: float, n_epochs: int = 3) -> tuple[list[dict], list[dict]]:
    """Step rows every 5 steps and epoch rows of a run whose accuracies are offset."""
    steps = [{"type": "step", "epoch": 1 + (s - 1) // 10, "step": s, "acc": 0.3 + 0.02 * s + offset
              + (0.05 if s % 10 == 0 else 0.0)} for s in range(5, 10 * n_epochs + 1, 5)]
    epochs = [{"type": "epoch", "epoch": e, "step": 10 * e, "train_acc": 0.5 + 0.1 * e + offset,
               "val_acc": 0.45 + 0.1 * e + offset, "epoch_seconds": 2.0} for e in range(1, n_epochs + 1)]
    return steps, epochs


def test_three_seeds_and_another_run_draw_two_curves_one_with_bands():
    curves = [_run(f"ResNet-20 · s{i}", *_seed(0.01 * i)) for i in range(3)] + [_run("ResNet-56 · x", *_seed(0.1))]
    configs = [dict(BASE, seed=i) for i in range(3)] + [dict(BASE, depth=56)]
    groups = error_curves.seed_curve_groups(curves, configs, ["ResNet-20"] * 3 + ["ResNet-56"])
    assert [g.name for g in groups] == ["ResNet-20 · mean of 3 seeds", "ResNet-56 · x"]
    fig = error_curves.error_curves_figure(groups, "epochs")
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert legend == ["ResNet-20 · mean of 3 seeds", "ResNet-56 · x"]
    filled = [t for t in fig.data if t.fill == "tonexty"]
    assert len(filled) == 2  # the training and the validation band of the group
    val_mean = next(t for t in fig.data if t.name == "ResNet-20 · mean of 3 seeds")
    assert list(val_mean.y) == pytest.approx([100 - 100 * (0.46 + 0.1 * e) for e in (1, 2, 3)])
    assert [c[0] for c in val_mean.customdata] == [3, 3, 3]
    band_of_val = fig.data[list(fig.data).index(val_mean) - 1]
    assert band_of_val.fill == "tonexty" and band_of_val.fillcolor.startswith("rgba(")
    assert list(band_of_val.y) == pytest.approx(np.array(val_mean.y) + 1.0)  # std of 0.45, 0.46, 0.47: 1 point
    # Groups named apart by what differs where the model's name does not say it.
    other_lr = error_curves.seed_curve_groups(curves, configs[:3] + [dict(BASE, lr=0.05)], ["ResNet-20"] * 4)
    assert other_lr[0].name == "ResNet-20 · mean of 3 seeds · lr=0.1"
    # Runs of the same seed too are averaged, as repeats.
    repeats = error_curves.seed_curve_groups(curves[:2], [BASE, dict(BASE, name="again")], ["ResNet-20"] * 2)
    assert [g.name for g in repeats] == ["ResNet-20 · mean of 2 runs"]


def test_the_groups_training_band_is_the_mean_of_each_runs_smoothed_curve():
    seeds = [_seed(0.0), _seed(0.03)]
    group = error_curves.CurveGroup("g", [_run(f"s{i}", *rows) for i, rows in enumerate(seeds)])
    raw = error_curves.error_curves_figure([group], "iterations")
    smooth = error_curves.error_curves_figure([group], "iterations", smoothing=0.8)
    train_raw, train_smooth = raw.data[2], smooth.data[2]  # low edge, high edge, then the mean
    assert train_raw.name == "g · train" and train_raw.line.dash == "dash"
    expected = np.mean([ema([r["acc"] for r in steps], 0.8) for steps, _ in seeds], axis=0)
    assert list(train_smooth.y) == pytest.approx(100 - 100 * expected)
    assert list(train_raw.y) != pytest.approx(list(train_smooth.y))


def test_smoothing_and_log_scale_apply_to_a_lone_run_as_on_the_monitor():
    run = _run("r", *_seed(0.0))
    plain = error_curves.error_curves_figure([run], "iterations", y_max=20)
    assert plain.layout.yaxis.type is None and tuple(plain.layout.yaxis.range) == (0, 20)
    smooth = error_curves.error_curves_figure([run], "iterations", smoothing=0.6, log_y=True, y_max=20)
    assert smooth.layout.yaxis.type == "log" and smooth.layout.yaxis.range is None
    assert list(smooth.data[0].y) == pytest.approx([100 - 100 * v for v in ema([r["acc"] for r in run.step_rows], 0.6)])
    assert list(smooth.data[1].y) == list(plain.data[1].y)  # the per-epoch validation is never smoothed


def test_25_runs_get_25_distinct_line_styles():
    styles = figure_style.run_styles(25)
    assert len(set(styles)) == 25
    assert len({c for c, _ in styles[:20]}) == 20 and {d for _, d in styles[:20]} == {None}  # 20 colours, solid
    assert styles[20] == (styles[0][0], "dot")  # then the colours again, dotted
    many = figure_style.run_styles(200)
    assert len(set(many)) == 200 and "dash" not in {d for _, d in many}  # dashed: training error
    fig = error_curves.error_curves_figure([_run(f"r{i}", [], _seed(0.0)[1]) for i in range(25)], "epochs")
    bold = [(t.line.color, t.line.dash) for t in fig.data if t.showlegend is not False]
    assert len(bold) == 25 and len(set(bold)) == 25


def test_image_folder_runs_on_other_folders_are_never_one_group():
    from resnet_core.results import seed_groups

    base = {"dataset": "folder", "depth": 20}
    configs = [{**base, "seed": 0, "data_dir": "/a"}, {**base, "seed": 1, "data_dir": "/a"},
               {**base, "seed": 0, "data_dir": "/b"}, {"seed": 0, "data_dir": "/c"}, {"seed": 1, "data_dir": "/d"}]
    groups, differing = seed_groups(configs)
    assert groups == [[0, 1], [2], [3, 4]]  # CIFAR runs' data_dir is only where a copy lies
    assert "data_dir" in differing


def test_every_band_lies_under_every_line():
    """Drawn in trace order, the second group's band covered the first group's mean, whose blue
    line looked grey under an orange band (Compare, two groups of 3 seeds, in Chromium)."""
    groups = [error_curves.CurveGroup(g, [_run(f"{g}{i}", *_seed(0.01 * i + shift)) for i in range(3)])
              for g, shift in (("a", 0.0), ("b", 0.02))]
    fig = error_curves.error_curves_figure(groups, "epochs")
    bands = [t for t in fig.data if t.hoverinfo == "skip"]
    lines = [t for t in fig.data if t.hoverinfo != "skip"]
    assert len(bands) == 8 and len(lines) == 4  # per group: low and high edges of training and validation
    assert max(t.zorder or 0 for t in bands) < min(t.zorder or 0 for t in lines)
