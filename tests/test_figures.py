"""Figure builders: the data each trace carries, and the clickable confusion matrix."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from resnet_core.dashboard import confusion_figures, curve_axes, error_curves, figure_style, live_curves, usage_figures
from resnet_core.evaluation_labels import TEST_MONITORING, evaluation_labels
from resnet_core.dashboard.series import ema
from resnet_core.metrics import class_report

CLASSES = ["airplane", "automobile", "bird"]
STEPS = [{"type": "step", "epoch": 1, "step": s, "loss": 2.0 - s / 10, "acc": s / 20, "lr": 0.1, "images_per_s": 9.0}
         for s in (5, 10)] + [{"type": "step", "epoch": 2, "step": 15, "loss": 1.0, "acc": 0.6, "lr": 0.05,
                               "images_per_s": 9.0}]
EPOCHS = [{"type": "epoch", "epoch": e, "step": 10 * e, "train_loss": 1.5 / e, "train_acc": 0.4 * e,
           "val_loss": 1.6 / e, "val_acc": 0.35 * e, "lr": 0.1 / e} for e in (1, 2)]
# Format 2 without a validation split: the test set is evaluated after every epoch instead.
NO_VAL_EPOCHS = [dict(r, val_loss=None, val_acc=None, test_loss=1.7 / r["epoch"], test_acc=0.3 * r["epoch"])
                 for r in EPOCHS]
NO_VAL = evaluation_labels({"format_version": 2, "resolved": {"val_source": None, "test_every_epoch": True}})


def trace(fig: go.Figure, name: str):
    matches = [t for t in fig.data if t.name == name]
    assert matches, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return matches[0]


def test_loss_figure_puts_steps_on_fractional_epochs_and_both_splits_per_epoch():
    fig = live_curves.loss_figure(STEPS, EPOCHS, steps_per_epoch=10)
    assert list(trace(fig, "train (steps)").x) == [0.5, 1.0, 1.5]
    assert list(trace(fig, "train").y) == [1.5, 0.75]
    assert list(trace(fig, "validation").x) == [1, 2]
    assert fig.layout.xaxis.title.text == "epoch"


def test_accuracy_figure_is_in_percent_with_train_and_validation_and_test():
    test_rows = [{"type": "test", "epoch": 2, "test_acc": 0.81}]
    fig = live_curves.accuracy_figure(STEPS, EPOCHS, 10, test_rows)
    assert list(trace(fig, "train").y) == pytest.approx([40.0, 80.0])
    assert list(trace(fig, "validation").y) == pytest.approx([35.0, 70.0])
    assert list(trace(fig, "test (final)").y) == pytest.approx([81.0])
    assert fig.layout.yaxis.ticksuffix == "%"


def test_the_validation_curves_of_a_run_validated_on_the_test_set_say_so():
    labels = evaluation_labels({"format_version": 1, "resolved": {"val_source": "test"}})
    acc = live_curves.accuracy_figure(STEPS, EPOCHS, 10, labels=labels)
    assert list(trace(acc, "test (used as validation)").y) == pytest.approx([35.0, 70.0])
    loss = live_curves.loss_figure(STEPS, EPOCHS, 10, labels=labels)
    assert list(trace(loss, "test (used as validation)").y) == pytest.approx([1.6, 0.8])
    assert "validation" not in [t.name for t in acc.data + loss.data]


def test_curves_of_a_run_without_validation_show_the_test_set_as_monitoring_only():
    final = [{"type": "test", "epoch": 2, "test_acc": 0.61}]
    acc = live_curves.accuracy_figure([], NO_VAL_EPOCHS, 10, final, labels=NO_VAL)
    assert [t.name for t in acc.data] == ["train", TEST_MONITORING, "test (final)"]
    assert TEST_MONITORING == "test (monitoring only, never used to pick a checkpoint)"
    assert list(trace(acc, TEST_MONITORING).y) == pytest.approx([30.0, 60.0])
    loss = live_curves.loss_figure([], NO_VAL_EPOCHS, 10, labels=NO_VAL)
    assert [t.name for t in loss.data] == ["train", TEST_MONITORING]
    assert list(trace(loss, TEST_MONITORING).y) == pytest.approx([1.7, 0.85])


def test_lr_figure_follows_step_rows():
    fig = live_curves.lr_figure(STEPS, EPOCHS, 10)
    assert list(fig.data[0].y) == [0.1, 0.1, 0.05]
    # Without step rows it falls back to the epoch rows.
    assert list(live_curves.lr_figure([], EPOCHS).data[0].y) == pytest.approx([0.1, 0.05])


def test_curves_of_an_empty_run_are_empty_figures_not_errors():
    for build in (live_curves.loss_figure, live_curves.accuracy_figure, live_curves.lr_figure):
        assert len(build([], []).data) == 0


def test_non_finite_values_become_gaps():
    rows = [dict(EPOCHS[0], val_loss=float("nan")), EPOCHS[1]]
    assert math.isnan(trace(live_curves.loss_figure([], rows), "validation").y[0])  # a gap


TIMED_STEPS = [dict(r, time=1000.0 + 60 * i) for i, r in enumerate(STEPS)]
TIMED_EPOCHS = [dict(r, time=1000.0 + 90 * r["epoch"]) for r in EPOCHS]


def test_step_series_is_clearly_visible_alone_and_faint_under_its_smoothed_series():
    raw = live_curves.loss_figure(STEPS, EPOCHS, 10)
    assert [t.name for t in raw.data] == ["train (steps)", "train", "validation", "best validation"]
    steps = trace(raw, "train (steps)")
    assert steps.line.width >= 1.5 and steps.opacity >= 0.8
    assert raw.layout.height == 400
    smooth = live_curves.loss_figure(STEPS, EPOCHS, 10, view=curve_axes.CurveView(smoothing=0.6))
    assert len(smooth.data) == len(raw.data) + 1
    faint, bold = trace(smooth, "train (steps)"), trace(smooth, "train (steps, smoothed 0.6)")
    assert faint.opacity < 0.5 and bold.line.width > faint.line.width >= 1.5
    assert list(bold.y) == pytest.approx(ema([r["loss"] for r in STEPS], 0.6))
    assert list(bold.x) == list(faint.x) == [0.5, 1.0, 1.5]
    acc = live_curves.accuracy_figure(STEPS, EPOCHS, 10, view=curve_axes.CurveView(smoothing=0.9))
    assert list(trace(acc, "train (steps, smoothed 0.9)").y) == pytest.approx(ema([100 * r["acc"] for r in STEPS],
                                                                                     0.9))


def test_the_legend_names_the_smoothed_series_and_groups_its_raw_series_and_the_star_with_them():
    smooth = live_curves.loss_figure(STEPS, EPOCHS, 10, view=curve_axes.CurveView(smoothing=0.6))
    entries = [t.name for t in smooth.data if t.showlegend is not False]
    assert entries == ["train (steps, smoothed 0.6)", "train", "validation"]
    assert trace(smooth, "train (steps)").legendgroup == trace(smooth, "train (steps, smoothed 0.6)").legendgroup
    assert trace(smooth, "best validation").legendgroup == trace(smooth, "validation").legendgroup
    # Unsmoothed, the raw series has its own entry.
    assert trace(live_curves.loss_figure(STEPS, EPOCHS, 10), "train (steps)").showlegend is not False


def _fixed_margins(fig: go.Figure) -> bool:
    """Plotly neither grows the margins nor measures the tick labels for overflow."""
    axes = (fig.layout.xaxis, fig.layout.yaxis)
    return (fig.layout.margin.autoexpand is False and all(a.automargin is False for a in axes)
            and all(a.ticklabeloverflow == "allow" for a in axes))


def test_the_charts_have_fixed_margins_and_their_legends_lie_in_the_plot_or_above_it():
    from resnet_core.dashboard import explain_figures
    from resnet_core.dashboard.calibration import reliability

    system = [{"type": "system", "step": 5, "epoch": 1, "cpu_percent": 90.0, "machine_cpu_percent": 95.0,
               "ram_mb": 900.0, "cores": 2, "time": 1.0}]
    rel = reliability(np.array([0.95, 0.6, 0.8]), np.array([True, False, True]))
    in_plot = [live_curves.loss_figure(STEPS, EPOCHS, 10), live_curves.accuracy_figure(STEPS, EPOCHS, 10),
               explain_figures.confidence_histogram_figure(rel)]
    above = [live_curves.throughput_figure(STEPS, EPOCHS, 10), usage_figures.utilisation_figure(system, 10),
             usage_figures.memory_figure(system, 10), explain_figures.reliability_figure(rel)]  # see the test below
    for fig in in_plot + above + [live_curves.lr_figure(STEPS, EPOCHS, 10)]:
        assert _fixed_margins(fig), fig.layout.title.text
    for fig in in_plot:  # in the plot: the fixed margins need no room for it
        assert 0 <= fig.layout.legend.x <= 1 and 0 <= fig.layout.legend.y <= 1, fig.layout.title.text
    # The loss falls away from the top right; accuracy leaves the bottom right empty.
    assert (in_plot[0].layout.legend.yanchor, in_plot[1].layout.legend.yanchor) == ("top", "bottom")


def test_a_legend_of_runs_lies_beside_the_plot_in_a_margin_as_wide_as_its_longest_entry():
    def run(name: str) -> error_curves.CurveRun:
        return error_curves.CurveRun(name=name, step_rows=[], epoch_rows=EPOCHS, steps_per_epoch=10,
                                labels=evaluation_labels({}))

    short = error_curves.error_curves_figure([run("ResNet-20 · a")])
    long = error_curves.error_curves_figure([run("ResNet-20 · a"), run("ResNet-110 · " + "x" * 40)])
    for fig in (short, long):
        assert _fixed_margins(fig) and fig.layout.legend.x > 1
    assert long.layout.margin.r >= short.layout.margin.r + 40 * 6
    # A name of 200 characters (the form allows them) leaves the plot its width.
    longest = error_curves.error_curves_figure([run("ResNet-20 · " + "x" * 200)])
    assert longest.layout.margin.r == figure_style.LEGEND_BESIDE_MAX_PX


def test_the_class_charts_margins_fit_the_class_names():
    cm = np.eye(3, dtype=int) * 5
    short, long = ("a", "b", "c"), ("a", "b", "a-much-longer-class-name")
    figs = {names: confusion_figures.confusion_figure(cm, names) for names in (short, long)}
    for fig in figs.values():
        assert _fixed_margins(fig)
    assert figs[long].layout.margin.l > figs[short].layout.margin.l + 100  # the y labels' width
    assert figs[long].layout.margin.b > figs[short].layout.margin.b + 50  # the slanted x labels' height
    huge = confusion_figures.confusion_figure(cm, ("a", "b", "c" * 200)).layout.margin  # cut, not the whole width
    assert huge.l == huge.b == figure_style.CATEGORY_MARGIN_MAX_PX
    bars = {names: confusion_figures.class_metrics_figure(class_report(cm), names) for names in (short, long)}
    assert _fixed_margins(bars[short]) and bars[long].layout.margin.b > bars[short].layout.margin.b + 50


def test_the_best_validation_value_so_far_is_starred():
    rows = [dict(EPOCHS[0], val_acc=0.5, val_loss=0.9), dict(EPOCHS[1], val_acc=0.4, val_loss=1.1)]
    best = trace(live_curves.accuracy_figure([], rows, 10), "best validation")
    assert (list(best.x), list(best.y)) == ([1.0], pytest.approx([50.0])) and best.marker.symbol == "star"
    assert list(trace(live_curves.loss_figure([], rows, 10), "best validation").y) == [0.9]
    # No validation split: nothing to star.
    assert "best" not in " ".join(t.name for t in live_curves.accuracy_figure([], NO_VAL_EPOCHS, labels=NO_VAL).data)


def test_loss_axis_is_logarithmic_on_request():
    assert live_curves.loss_figure(STEPS, EPOCHS, 10).layout.yaxis.type == "linear"
    assert live_curves.loss_figure(STEPS, EPOCHS, 10, view=curve_axes.CurveView(log_y=True)).layout.yaxis.type == "log"


@pytest.mark.parametrize("x_axis, step_x, epoch_x, title", [
    ("step", [5, 10, 15], [10, 20], "step"),
    ("epoch", [0.5, 1.0, 1.5], [1, 2], "epoch"),
    ("wall time", [0.0, 1.0, 2.0], [1.5, 3.0], "wall time (minutes since the first row)"),
])
def test_x_values_per_axis_choice(x_axis, step_x, epoch_x, title):
    view = curve_axes.CurveView(x_axis=x_axis)
    test_rows = [{"type": "test", "epoch": 2, "test_acc": 0.8, "time": 1000.0 + 240}]
    for fig in (live_curves.loss_figure(TIMED_STEPS, TIMED_EPOCHS, 10, view=view),
                live_curves.accuracy_figure(TIMED_STEPS, TIMED_EPOCHS, 10, test_rows, view=view)):
        assert list(trace(fig, "train (steps)").x) == pytest.approx(step_x)
        assert list(trace(fig, "validation").x) == pytest.approx(epoch_x)
        assert fig.layout.xaxis.title.text == title
    assert list(live_curves.lr_figure(TIMED_STEPS, TIMED_EPOCHS, 10, view=view).data[0].x) == pytest.approx(step_x)
    final_x = {"step": 20, "epoch": 2, "wall time": 4.0}[x_axis]  # after the last epoch; its own time
    assert list(trace(fig, "test (final)").x) == pytest.approx([final_x])


def test_rows_without_a_time_are_left_off_the_wall_time_axis():
    fig = live_curves.loss_figure(STEPS, TIMED_EPOCHS, 10, view=curve_axes.CurveView(x_axis="wall time"))
    assert list(trace(fig, "train (steps)").x) == []
    assert list(trace(fig, "train").x) == pytest.approx([0.0, 1.5])
    with pytest.raises(ValueError):
        curve_axes.live_x(STEPS, "minutes")


def test_long_series_are_downsampled_to_the_point_budget_and_keep_their_spikes():
    rows = [{"type": "step", "epoch": 1 + s // 1000, "step": s, "loss": 1.0, "acc": 0.5, "lr": 0.1}
            for s in range(1, 20_001)]
    rows[12_345]["loss"] = 9.0
    view = curve_axes.CurveView(smoothing=0.6, max_points=500)
    fig = live_curves.loss_figure(rows, [], 1000, view=view)
    assert all(len(t.x) == len(t.y) <= 500 for t in fig.data)
    assert max(trace(fig, "train (steps)").y) == 9.0
    for fig in (live_curves.accuracy_figure(rows, [], 1000, view=view),
                live_curves.lr_figure(rows, [], 1000, view=view)):
        assert all(len(t.x) <= 500 for t in fig.data)
    # Short series pass through whole.
    assert len(live_curves.loss_figure(rows[:400], [], 1000, view=view).data[0].x) == 400


def test_confusion_figure_has_a_heatmap_and_an_invisible_clickable_scatter():
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    fig = confusion_figures.confusion_figure(cm, CLASSES, "counts")
    heat, cells = fig.data
    assert isinstance(heat, go.Heatmap) and isinstance(cells, go.Scatter)
    assert list(heat.x) == CLASSES and list(heat.y) == CLASSES
    assert heat.z[1][0] == 2  # row = true automobile, column = predicted airplane
    assert heat.text[1][0] == "2"
    assert heat.hoverinfo == "skip"
    # One point per cell, with [true, pred] as plain Python lists (not numpy arrays).
    assert len(cells.x) == 9
    custom = cells.customdata
    assert all(type(c) in (list, tuple) and all(type(v) is int for v in c) for c in custom)
    pos = list(map(tuple, custom)).index((1, 0))
    assert cells.y[pos] == "automobile" and cells.x[pos] == "airplane"
    # Invisible, and never dimmed by a selection.
    assert cells.marker.opacity == 0
    assert cells.selected.marker.opacity == 0 and cells.unselected.marker.opacity == 0
    assert cells.marker.symbol == "square"
    # Rows top-down in class order, square cells, category axes in class order.
    assert tuple(fig.layout.yaxis.range) == (2.5, -0.5) and tuple(fig.layout.xaxis.range) == (-0.5, 2.5)
    assert list(fig.layout.xaxis.categoryarray) == CLASSES
    assert fig.layout.xaxis.title.text == "predicted class" and fig.layout.yaxis.title.text == "true class"
    # The figure serialises to JSON as Streamlit sends it, customdata as nested lists.
    sent = json.loads(fig.to_json())
    assert sent["data"][1]["customdata"][pos] == [1, 0]


def test_confusion_figure_normalisations():
    cm = np.array([[5, 1, 0], [2, 6, 2], [0, 0, 0]])
    rec = confusion_figures.confusion_figure(cm, CLASSES, "recall").data[0]
    assert list(rec.z[1]) == pytest.approx([20.0, 60.0, 20.0])
    assert list(rec.z[2]) == [None, None, None]  # no examples: undefined, not 0
    assert list(rec.text[1]) == ["20", "60", "20"]
    prec = confusion_figures.confusion_figure(cm, CLASSES, "precision").data[0]
    assert prec.z[0][0] == pytest.approx(100 * 5 / 7)
    assert prec.zmax == 100


def test_confusion_figure_outlines_the_selected_cell():
    cm = np.eye(3, dtype=int)
    assert len(confusion_figures.confusion_figure(cm, CLASSES).layout.shapes) == 0
    shape = confusion_figures.confusion_figure(cm, CLASSES, selected=(2, 0)).layout.shapes[0]
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (-0.5, 0.5, 1.5, 2.5)


def test_confusion_figure_rejects_wrong_class_names():
    with pytest.raises(ValueError):
        confusion_figures.confusion_figure(np.eye(3, dtype=int), ["a", "b"])


def test_class_metrics_bars_leave_undefined_values_out():
    cm = np.array([[3, 0], [2, 0]])  # class 1 never predicted: precision undefined
    fig = confusion_figures.class_metrics_figure(class_report(cm), ["a", "b"])
    prec = trace(fig, "precision")
    assert prec.y[0] == pytest.approx(60.0) and prec.y[1] is None
    assert trace(fig, "recall").y == pytest.approx((100.0, 0.0))
    assert fig.layout.yaxis.range == (0, 100)
    assert all(math.isfinite(v) for v in trace(fig, "recall").y)


SYSTEM = [{"type": "system", "epoch": 1, "step": s, "cpu_percent": 40.0 + s, "machine_cpu_percent": 70.0, "cores": 2,
           "ram_mb": 1024.0 * (1 + s / 10), "machine_ram_percent": 30.0, "time": 990.0 + 30 * s} for s in (0, 5, 10)]


def test_usage_charts_draw_what_the_system_rows_measured():
    view = curve_axes.CurveView(x_axis="epoch")
    util = usage_figures.utilisation_figure(SYSTEM, 10, view=view)
    assert [t.name for t in util.data] == ["CPU, this run (2 cores)", "CPU, whole machine"]  # no GPU here
    assert list(util.data[0].x) == [0.0, 0.5, 1.0] and list(util.data[0].y) == [40.0, 45.0, 50.0]
    assert tuple(util.layout.yaxis.range) == (0, 105)
    memory = usage_figures.memory_figure(SYSTEM, 10, view=view)
    assert [t.name for t in memory.data] == ["RAM, this run (resident)"]
    assert list(memory.data[0].y) == pytest.approx([1.0, 1.5, 2.0])  # GB
    gpu = [dict(r, gpu_util=90.0, gpu_memory_mb=2048.0, gpu_memory_total_mb=81920.0) for r in SYSTEM]
    assert trace(usage_figures.utilisation_figure(gpu, 10), "GPU (kernels running)").y[0] == 90.0
    assert list(trace(usage_figures.memory_figure(gpu, 10), "GPU, total").y) == [80.0] * 3


def test_the_monitors_charts_share_one_wall_time_zero():
    """System rows start before the first step (data loading): every chart counts from the
    view's start, so the same moment sits at the same x on each."""
    view = curve_axes.CurveView(x_axis="wall time", start=990.0)
    loss = live_curves.loss_figure(TIMED_STEPS, TIMED_EPOCHS, 10, view=view)
    assert list(trace(loss, "train (steps)").x) == pytest.approx([10 / 60, 70 / 60, 130 / 60])
    memory = usage_figures.memory_figure(SYSTEM, 10, view=view)
    assert list(memory.data[0].x) == pytest.approx([0.0, 2.5, 5.0])
    speed = live_curves.throughput_figure(TIMED_STEPS, TIMED_EPOCHS, 10, view=view)
    assert [t.name for t in speed.data] == ["steps", "epoch mean"] and list(speed.data[0].y) == [9.0] * 3


@pytest.mark.parametrize("n", [1, 10, 12, 26, 60, 200])
def test_any_number_of_runs_gets_as_many_distinct_colours(n):
    colours = figure_style.run_colours(n)
    assert len(colours) == n and len(set(c.lower() for c in colours)) == n
    assert colours[:10] == list(figure_style.PALETTE)[:n]  # up to 10 runs: the palette as before


def test_the_error_curves_of_12_runs_have_12_colours():
    runs12 = [error_curves.CurveRun(name=f"ResNet-20 · r{i}", step_rows=[], epoch_rows=EPOCHS, steps_per_epoch=10,
                               labels=evaluation_labels({})) for i in range(12)]
    fig = error_curves.error_curves_figure(runs12)
    bold = [t.line.color for t in fig.data if t.showlegend is not False]
    assert len(bold) == 12 and len(set(bold)) == 12


def test_the_speed_and_usage_legends_lie_above_the_plot_in_room_made_for_them():
    system = [{"type": "system", "step": 5, "epoch": 1, "cpu_percent": 90.0, "machine_cpu_percent": 95.0,
               "gpu_util": 80.0, "ram_mb": 900.0, "gpu_memory_mb": 500.0, "cores": 2, "time": 1.0}]
    for fig in (live_curves.throughput_figure(STEPS, EPOCHS, 10), usage_figures.utilisation_figure(system, 10),
                usage_figures.memory_figure(system, 10)):
        legend, entries = fig.layout.legend, [t for t in fig.data if t.showlegend is not False]
        assert legend.y >= 1 and legend.yanchor == "bottom", fig.layout.title.text  # over the plot, not in it
        assert len(entries) > 1  # (plotly draws no legend for a lone trace)
        rows = 1 if legend.orientation == "h" else len(entries)
        assert fig.layout.margin.t >= 40 + rows * figure_style.LEGEND_ROW_PX, fig.layout.title.text
