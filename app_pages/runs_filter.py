"""The Runs page's filter row: text, tags, states, sweeps, models and one config field's
values, read into a resnet_core.dashboard.run_filters.RunFilter (the filtering itself is there)."""

from __future__ import annotations

import streamlit as st

from resnet_core import runs
from resnet_core.dashboard import run_filters


def _sweep_label(sweep: str) -> str:
    return sweep if sweep != run_filters.NO_SWEEP else "(no sweep)"


def run_filter(all_runs: list[runs.RunInfo]) -> run_filters.RunFilter:
    """The filter the user set; every part empty keeps every run."""
    c_text, c_tags, c_state, c_sweep, c_model = st.columns([3, 2, 2, 2, 2])
    text = c_text.text_input("Search", key="runs_f_text", placeholder="name, id or note")
    tags = c_tags.multiselect("Tags", run_filters.tag_options(all_runs), key="runs_f_tags", placeholder="any tag",
                              help="runs with any of these tags")
    states = c_state.multiselect("State", run_filters.state_options(all_runs), key="runs_f_states",
                                 placeholder="any state")
    sweeps = c_sweep.multiselect("Sweep", run_filters.sweep_options(all_runs), key="runs_f_sweeps",
                                 placeholder="any sweep", format_func=_sweep_label)
    models = c_model.multiselect("Model", run_filters.model_options(all_runs), key="runs_f_models",
                                 placeholder="any model")
    c_field, c_values = st.columns([1, 3])
    field = c_field.selectbox("Config field", run_filters.config_fields(all_runs), index=None, key="runs_f_field",
                              placeholder="any config field", help="pick a training option, then its values")
    # Keyed by the field: values of one field never carry over to another.
    values = c_values.multiselect("Its values", run_filters.field_options(all_runs, field) if field else [],
                                  key=f"runs_f_values_{field}", disabled=field is None,
                                  placeholder="any value" if field else "pick a field first")
    return run_filters.RunFilter(text=text, tags=tuple(tags), states=tuple(states), sweeps=tuple(sweeps),
                                 models=tuple(models), field=field, values=tuple(values))
