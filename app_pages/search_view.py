"""A search's trials in its sweep card: the table (each row opening its run's Monitor), the
objective by trial with the best so far, parameter importance and parallel coordinates.
Functions only: app_pages/sweep_panel.py calls :func:`render` in a lazy expander."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from resnet_core import runs
from resnet_core.dashboard import links


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
    table["monitor"] = [links.page_url("monitor", run=r) if r else None for r in table["run"]]
    common.table(table, hide_index=True, column_config={
        "monitor": st.column_config.LinkColumn("monitor", display_text="open"),
        objective: st.column_config.NumberColumn(objective, format="%.4f"),
        "duration_s": st.column_config.NumberColumn("duration", format="%.0f s")})
    c1, c2 = st.columns(2)
    c1.plotly_chart(search_views.history_figure(table, objective), key=f"search_history_{info.name}")
    values = search_views.importances(study)
    if values is None:
        c2.caption("Parameter importance needs 3 completed trials and 2 parameters.")
    else:
        c2.plotly_chart(search_views.importance_figure(values), key=f"search_importance_{info.name}")
    params = [*info.vary, *info.ranges]
    if (table["state"] == "completed").any():
        st.plotly_chart(search_views.parcoords_figure(table, params, objective), key=f"search_parcoords_{info.name}")
