"""A search's views built from a fabricated in-memory Optuna study: the trials table with
pruned trials, parallel coordinates, parameter importance and the objective by trial."""

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from resnet_core.dashboard import search_views

SPACE = {"lr": FloatDistribution(1e-3, 1.0, log=True), "shortcut": CategoricalDistribution(["A", "none"]),
         "warmup_epochs": FloatDistribution(0.0, 2.0)}


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
    assert list(table.columns) == ["trial", "state", "best_val_acc", "lr", "shortcut", "warmup_epochs", "epochs",
                                   "duration_s", "run", "metric"]
    assert table["state"].tolist().count("pruned") == 2 and table.loc[3, "state"] == "pruned"
    assert math.isnan(table.loc[3, "best_val_acc"]) and table.loc[11, "best_val_acc"] == pytest.approx(0.5 + 4.4 / 12)
    assert table.loc[3, "epochs"] == 1 and table.loc[0, "epochs"] == 2 and table["run"].tolist()[:2] == ["r0", "r1"]


def test_parcoords_has_an_axis_per_param_then_the_objective_of_completed_trials():
    table = search_views.trials_table(fabricated(), "best_val_acc")
    fig = search_views.parcoords_figure(table, ["lr", "shortcut", "warmup_epochs"], "best_val_acc")
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
