"""A search's trials in its sweep card: the table (each row opening its run's Monitor), the
objective by trial with the best so far (a trial clicked opens its run), parameter
importance and parallel coordinates (brushing its axes filters the table). Functions only:
app_pages/sweep_panel.py calls :func:`render` in a lazy expander."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.parcoords_chart import parcoords_chart
from resnet_core import runs
from resnet_core.dashboard import links, trial_brush


def brush_key(sweep: str) -> str:
    """Our own copy of the ranges brushed on a search's parcoords: {axis label: [[lo, hi], ...]}."""
    return f"search_brush_{sweep}"


def clicked_key(sweep: str) -> str:
    """Our own copy of the run of the trial clicked on a search's objective chart (the
    chart's own selection is lost when a live refresh redraws it)."""
    return f"search_clicked_{sweep}"


def _on_brush(sweep: str) -> None:
    event = st.session_state.get(f"search_parcoords_{sweep}")
    st.session_state[brush_key(sweep)] = trial_brush.ranges_from_event(event.ranges if event else None)


def _on_click(sweep: str) -> None:
    from resnet_core.dashboard import search_views  # loaded by render already

    st.session_state[clicked_key(sweep)] = search_views.clicked_run(st.session_state.get(f"search_history_{sweep}"))


def _trials(table, sweep: str, space: dict, objective: str) -> None:
    """The trials table, only the trials inside the brushed ranges while there are some."""
    ranges = st.session_state.get(brush_key(sweep)) or {}
    shown = table[trial_brush.inside(table, space, objective, ranges)] if ranges else table
    if ranges:
        h1, h2 = st.columns([6, 1], vertical_alignment="center")
        h1.caption(f"{len(shown)} of {len(table)} trials inside the ranges brushed on the parallel coordinates "
                   f"({', '.join(ranges)}).")
        h2.button("Clear", key=f"search_brush_clear_{sweep}", on_click=st.session_state.pop,
                  args=(brush_key(sweep), None), icon=":material/close:")
    shown = shown.assign(monitor=[links.page_url("monitor", run=r) if r else None for r in shown["run"]])
    common.table(shown, hide_index=True, column_config={
        "monitor": st.column_config.LinkColumn("monitor", display_text="open"),
        objective: st.column_config.NumberColumn(objective, format="%.4f"),
        "duration_s": st.column_config.NumberColumn("duration", format="%.0f s")})


def render(info: runs.SweepInfo) -> None:
    from resnet_core.dashboard import search_views  # imports Optuna (0.2 s): only once a search is opened

    objective = info.search["objective"]
    try:
        study = search_views.load_study(info.search)
    except Exception as e:  # a shared storage down, a study removed: say so, draw the rest of the page
        st.caption(f"Its study cannot be read: {type(e).__name__}: {e}")
        return
    table = search_views.trials_table(study, objective)
    if table.empty:
        st.caption("No trial yet.")
        return
    st.caption(f"{info.search['kind']} search maximising {objective}"
               + (" (a run without a validation split gives its final test_acc: see metric)"
                  if objective == "best_val_acc" else "") + f"; pruning: {info.search['prune']}.")
    space = {**info.vary, **info.ranges}  # as the record declares it: the parcoords' axes stay put
    _trials(table, info.name, space, objective)
    c1, c2 = st.columns(2)
    c1.plotly_chart(search_views.history_figure(table, objective), key=f"search_history_{info.name}",
                    on_select=lambda: _on_click(info.name), selection_mode="points")
    run = st.session_state.get(clicked_key(info.name))
    if run:
        c1.page_link(common.MONITOR, label=f"Open {run} in the Monitor", icon=":material/monitoring:",
                     query_params={"run": run})
    else:
        c1.caption("Click a trial's point to open its run.")
    values = search_views.importances(study)
    if values is None:
        c2.caption("Parameter importance needs 3 completed trials and 2 parameters.")
    else:
        c2.plotly_chart(search_views.importance_figure(values), key=f"search_importance_{info.name}")
    if (table["state"] == "completed").any():
        ranges = st.session_state.get(brush_key(info.name)) or {}
        parcoords_chart(search_views.parcoords_figure(table, space, objective, ranges),
                        key=f"search_parcoords_{info.name}", on_brush=lambda: _on_brush(info.name))
        st.caption("Drag along an axis to keep the trials inside a range (the table above shows them); "
                   "click the axis outside its range to remove it.")
