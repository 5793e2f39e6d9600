"""A search's views, from its Optuna study: the trials table (params, objective, state with
pruned, duration, run), parallel coordinates, parameter importance and the objective by
trial with the best so far. Pure: the figures are built from a study, the sweep's
(:func:`load_study`) or, in tests, a fabricated in-memory one.
"""

from __future__ import annotations

import warnings

import optuna
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import TrialState

from ..sweep_search import sqlite_file
from . import trial_brush
from .figure_style import chart_layout

# PED-ANOVA needs numpy only (fANOVA, Optuna's default, needs scikit-learn, not a
# requirement here). Its default baseline, the best 10% of trials, is one trial in the
# 8-12-trial searches run here, so it compares the best 30%.
IMPORTANCE_NAME = "PED-ANOVA (Optuna's PedAnovaImportanceEvaluator, best 30% of trials against all)"
STATES = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
          TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}


def load_study(search: dict) -> optuna.Study:
    """A sweep record's study, to read: FileNotFoundError for a SQLite file that is missing
    (which connecting would create, empty), KeyError where the storage lacks the study."""
    path = sqlite_file(search["storage"])
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"no study database {path}")
    return optuna.load_study(storage=search["storage"], study_name=search["study"])


def trials_table(study: optuna.Study, objective: str = "objective") -> pd.DataFrame:
    """One row per trial: trial, state (pruned included), the objective (named `objective`),
    each param, epochs_done (epochs reported; not "epochs", which a search may vary),
    duration_s, run (its run folder; empty when unknown) and metric (the status.json field
    the objective came from: test_acc for a run without a validation split)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        done = t.datetime_complete and t.datetime_start
        rows.append({"trial": t.number, "state": STATES.get(t.state, t.state.name.lower()),
                     objective: t.value if t.state == TrialState.COMPLETE else None, **t.params,
                     "epochs_done": len(t.intermediate_values),
                     "duration_s": (t.datetime_complete - t.datetime_start).total_seconds() if done else None,
                     "run": t.user_attrs.get("run", ""), "metric": t.user_attrs.get("metric", "")})
    return pd.DataFrame(rows)


def parcoords_figure(table: pd.DataFrame, space: trial_brush.Space, objective: str,
                     ranges: trial_brush.Ranges | None = None) -> go.Figure:
    """Parallel coordinates of the completed trials: one axis per field of the search's
    space, then the objective, each line coloured by it, with the ranges brushed on its
    axes (trial_brush: which trials they keep)."""
    done = table[table["state"] == "completed"]
    dims = trial_brush.constrained(trial_brush.axes(table, space, objective), ranges or {})
    fig = go.Figure(go.Parcoords(line=dict(color=done[objective], colorscale="Viridis", showscale=True),
                                 dimensions=dims))
    fig.update_layout(title=f"{len(done)} completed trials", height=380, margin=dict(l=60, r=60, t=70, b=30))
    return fig


def importances(study: optuna.Study) -> dict[str, float] | None:
    """Each param's importance by PED-ANOVA (IMPORTANCE_NAME); None before it can say:
    fewer than 3 completed trials, or fewer than 2 params."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3 or len(complete[0].params) < 2:
        return None
    with warnings.catch_warnings():  # "experimental (supported from v3.6.0)": said once per draw otherwise
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=0.3)
    return optuna.importance.get_param_importances(study, evaluator=evaluator)


def importance_figure(values: dict[str, float]) -> go.Figure:
    """Horizontal bars, the most important param on top, titled with the evaluator."""
    names = list(values)[::-1]
    fig = go.Figure(go.Bar(x=[values[n] for n in names], y=names, orientation="h"))
    fig.update_layout(title=dict(text=f"Parameter importance<br><sup>{IMPORTANCE_NAME}</sup>"),
                      height=120 + 30 * len(names), margin=dict(l=120, r=30, t=70, b=40),
                      xaxis_title="importance (sums to 1)")
    return fig


def history_figure(table: pd.DataFrame, objective: str) -> go.Figure:
    """The objective of each completed trial by trial number, the best so far as a step line,
    and pruned trials marked at the bottom of the axis; a trial's point carries its run
    (customdata), which a click opens (clicked_run)."""
    done = table[table["state"] == "completed"].sort_values("trial")
    pruned = table[table["state"] == "pruned"]
    layout = chart_layout("Objective by trial", 360, objective, x_title="trial", legend="top left",
                          hovermode="closest")  # the best so far rises: the best trials lie top right
    fig = go.Figure(layout=layout)
    # customdata as lists: an array reaches st.plotly_chart's selection event as {"0": ..., "1": ...}.
    fig.add_scatter(x=done["trial"], y=done[objective], mode="markers", name="completed",
                    customdata=done["run"].tolist(),
                    hovertemplate="trial %{x}: %{y:.4f}<br>%{customdata}<extra></extra>")
    fig.add_scatter(x=done["trial"], y=done[objective].cummax(), mode="lines", line_shape="hv", name="best so far")
    if len(pruned):
        low = done[objective].min() if len(done) else 0.0
        fig.add_scatter(x=pruned["trial"], y=[low] * len(pruned), mode="markers", name="pruned",
                        marker=dict(symbol="x", color="gray"), customdata=pruned["run"].tolist(),
                        hovertemplate="trial %{x}: pruned<br>%{customdata}<extra></extra>")
    return fig


def clicked_run(event: dict | None) -> str | None:
    """The run of the trial clicked on history_figure, from st.plotly_chart's selection event:
    None for none, or a point without a run (the best-so-far line, a trial without a run)."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    runs = [p.get("customdata") for p in points if isinstance(p.get("customdata"), str) and p.get("customdata")]
    return runs[-1] if runs else None
