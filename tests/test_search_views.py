"""A search's views built from a fabricated in-memory Optuna study: the trials table with
pruned trials, parallel coordinates, parameter importance and the objective by trial."""

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from resnet_core.dashboard import search_views, trial_brush

SPACE = {"lr": FloatDistribution(1e-3, 1.0, log=True), "shortcut": CategoricalDistribution(["A", "none"]),
         "warmup_epochs": FloatDistribution(0.0, 2.0)}
# The same space as a sweep record declares it (sweep_search.space_of), which the axes follow.
DECLARED = {"lr": {"low": 1e-3, "high": 1.0, "log": True}, "shortcut": ["A", "none"],
            "warmup_epochs": {"low": 0.0, "high": 2.0, "log": False}}


def fabricated(n=12, pruned=(3, 7), storage=None, name=None):
    """A study whose objective rises with lr and ignores warmup: lr must matter most."""
    study = optuna.create_study(direction="maximize", storage=storage, study_name=name)
    for i in range(n):
        lr = 10 ** (-3 + 3 * i / (n - 1))
        params = {"lr": lr, "shortcut": "A" if i % 2 else "none", "warmup_epochs": (i * 7 % 5) / 2.5}
        if i in pruned:
            study.add_trial(create_trial(state=TrialState.PRUNED, params=params, distributions=SPACE,
                                         intermediate_values={1: 0.1}, user_attrs={"run": f"r{i}"}))
        else:
            study.add_trial(create_trial(value=0.5 + 0.4 * i / n, params=params, distributions=SPACE,
                                         intermediate_values={1: 0.3, 2: 0.5 + 0.4 * i / n},
                                         user_attrs={"run": f"r{i}"}))
    return study


def test_the_trials_table_has_params_objective_state_and_run():
    table = search_views.trials_table(fabricated(), "best_val_acc")
    assert list(table.columns) == ["trial", "state", "best_val_acc", "lr", "shortcut", "warmup_epochs",
                                   "epochs_done", "duration_s", "run", "metric"]
    assert table["state"].tolist().count("pruned") == 2 and table.loc[3, "state"] == "pruned"
    assert math.isnan(table.loc[3, "best_val_acc"]) and table.loc[11, "best_val_acc"] == pytest.approx(0.5 + 4.4 / 12)
    assert table.loc[3, "epochs_done"] == 1 and table.loc[0, "epochs_done"] == 2
    assert table["run"].tolist()[:2] == ["r0", "r1"]


def test_parcoords_has_an_axis_per_param_then_the_objective_of_completed_trials():
    table = search_views.trials_table(fabricated(), "best_val_acc")
    fig = search_views.parcoords_figure(table, DECLARED, "best_val_acc")
    dims = fig.data[0].dimensions
    assert [d.label for d in dims] == ["log10 lr", "shortcut", "warmup_epochs", "best_val_acc"]
    assert len(dims[0].values) == 10 and dims[0].values[0] == pytest.approx(-3)  # pruned trials left out
    assert list(dims[1].ticktext) == ["A", "none"] and set(dims[1].values) == {0, 1}


def test_importance_names_its_evaluator_and_ranks_the_param_that_drives_the_objective_first():
    values = search_views.importances(fabricated())
    assert list(values)[0] == "lr" and sum(values.values()) == pytest.approx(1.0)
    fig = search_views.importance_figure(values)
    assert "PedAnovaImportanceEvaluator" in fig.layout.title.text and list(fig.data[0].y)[-1] == "lr"
    assert search_views.importances(fabricated(n=3, pruned=(1,))) is None  # 2 completed trials say nothing


def test_history_draws_the_best_so_far_and_marks_pruned_trials():
    table = search_views.trials_table(fabricated(), "best_val_acc")
    fig = search_views.history_figure(table, "best_val_acc")
    completed, best, pruned = fig.data
    assert list(best.y) == sorted(best.y) and best.y[-1] == max(completed.y)
    assert list(pruned.x) == [3, 7] and list(pruned.customdata) == ["r3", "r7"]


def test_a_brush_keeps_the_completed_trials_inside_every_range_in_the_axes_own_units():
    table = search_views.trials_table(fabricated(), "best_val_acc")

    def kept(ranges):
        return table["trial"][trial_brush.inside(table, DECLARED, "best_val_acc", ranges)].tolist()
    assert kept({}) == list(range(12)) and kept({"gone": [[0, 1]]}) == list(range(12))  # pruned ones too
    # lr drawn in log10 (-3 + 3i/11): -1.5..0 holds trials 6-11, less 7 (pruned, not drawn)
    assert kept({"log10 lr": [[-1.5, 0.0]]}) == [6, 8, 9, 10, 11]
    # categories by their tick: "A" 0 (odd trials), "none" 1 (even trials)
    assert kept({"log10 lr": [[-1.5, 0.0]], "shortcut": [[0.5, 1.5]]}) == [6, 8, 10]
    # two ranges on one axis keep either (objective 0.5 + 0.4i/12)
    assert kept({"best_val_acc": [[0.5, 0.55], [0.8, 1.0]]}) == [0, 1, 9, 10, 11]
    assert kept({"best_val_acc": [[0.71, 0.72]]}) == []  # between trials 6 (0.7) and 7


def test_brushed_ranges_are_read_from_plotly_and_drawn_again():
    assert trial_brush.ranges_from_event({"log10 lr": [0.0, -1.5], "x": [[1, 2], [4, 3]], "y": None, "z": []}) == \
        {"log10 lr": [[-1.5, 0.0]], "x": [[1.0, 2.0], [3.0, 4.0]]}
    assert trial_brush.ranges_from_event(None) == {}
    table = search_views.trials_table(fabricated(), "best_val_acc")
    fig = search_views.parcoords_figure(table, {k: DECLARED[k] for k in ("lr", "shortcut")}, "best_val_acc",
                                        {"log10 lr": [[-1.5, 0.0]], "best_val_acc": [[0.5, 0.55], [0.8, 1.0]]})
    lr, shortcut, objective = fig.data[0].dimensions
    assert lr.constraintrange == (-1.5, 0.0) and shortcut.constraintrange is None
    assert [list(r) for r in objective.constraintrange] == [[0.5, 0.55], [0.8, 1.0]]


def test_the_axes_follow_the_declared_space_so_a_brush_keeps_its_meaning_as_a_live_search_adds_trials():
    """A category first tried late used to take the place of those after it (ticks in the
    order seen), so a brush kept on "none" then held "B"; a range first looked narrow
    switched to log10 later. Both now come from the record's space."""
    declared = {"shortcut": ["A", "B", "none"], "lr": [0.01, 0.1, 2.0], "warmup_epochs": {"low": 0.0, "high": 2.0,
                                                                                           "log": True}}
    space = {"shortcut": CategoricalDistribution(declared["shortcut"]), "lr": CategoricalDistribution(declared["lr"]),
             "warmup_epochs": FloatDistribution(0.01, 2.0, log=True)}
    study = optuna.create_study(direction="maximize")
    brush = {"shortcut": [[1.5, 2.5]]}  # around "none"'s tick

    def add(shortcut, lr, value):
        study.add_trial(create_trial(value=value, params={"shortcut": shortcut, "lr": lr, "warmup_epochs": 0.5},
                                     distributions=space))
        table = search_views.trials_table(study, "best_val_acc")
        return table, table["trial"][trial_brush.inside(table, declared, "best_val_acc", brush)].tolist()

    add("A", 0.01, 0.5)
    table, kept = add("none", 0.1, 0.6)
    assert kept == [1]
    shortcut, lr, warmup, _ = search_views.parcoords_figure(table, declared, "best_val_acc").data[0].dimensions
    assert list(shortcut.ticktext) == ["A", "B", "none"] and list(shortcut.values) == [0, 2]  # B's tick, untried
    assert (lr.label, warmup.label) == ("log10 lr", "log10 warmup_epochs")  # 0.01 to 0.1 seen, 0.01 to 2 declared
    table, kept = add("B", 2.0, 0.7)
    assert kept == [1]  # still "none" alone


def test_a_click_on_a_trial_gives_its_run_and_the_best_so_far_line_none():
    point = {"curve_number": 0, "point_index": 2, "x": 2, "y": 0.56, "customdata": "r2"}
    assert search_views.clicked_run({"selection": {"points": [point]}}) == "r2"
    assert search_views.clicked_run({"selection": {"points": [{"curve_number": 1, "x": 2, "y": 0.56}]}}) is None
    assert search_views.clicked_run({"selection": {"points": []}}) is None and search_views.clicked_run(None) is None


def test_a_search_varying_epochs_keeps_the_sampled_epochs_beside_those_trained():
    """A column "epochs" of epochs trained overwrote the sampled epochs of a search varying
    them (--vary epochs=2..6): a trial pruned after 1 of its 3 epochs read as epochs 1."""
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"epochs": 3},
                                 distributions={"epochs": optuna.distributions.IntDistribution(2, 6)},
                                 intermediate_values={1: 0.1}))
    row = search_views.trials_table(study, "best_val_acc").iloc[0]
    assert (row["epochs"], row["epochs_done"]) == (3, 1)
