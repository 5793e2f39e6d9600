"""The Train page's sweep launcher: the form's fields as the base, some of them varied.
Functions only: app_pages/train_form.py calls :func:`render` under its own form."""

from __future__ import annotations

import time

import streamlit as st

from app_pages import common
from resnet_core import executors, placement
from resnet_core.dashboard import launcher, search_form
from resnet_core.dashboard.form import MAX_DEPTH, TrainForm, parse_vary_text, run_data_dir, sweep_args
from resnet_core.model_names import shortcut_label
from resnet_core.model_names import SHORTCUTS, valid_depths

K = "sw_"  # session_state prefix of the sweep widgets
EXECUTOR_LABELS = {"local": "this machine", "ray": "a Ray cluster"}


def _seeds(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _vary() -> dict[str, list]:
    """The varied fields as typed; ValueError for extra fields that are not field=values."""
    vary: dict[str, list] = {}
    for name in ("depth", "shortcut"):
        if st.session_state.get(K + name):
            vary[name] = list(st.session_state[K + name])
    if _seeds(st.session_state.get(K + "seeds", "")):
        vary["seed"] = _seeds(st.session_state[K + "seeds"])
    extra = parse_vary_text(st.session_state.get(K + "more", ""))
    for name in extra:
        if name in vary:
            raise ValueError(f"{name} is varied twice")
    return vary | extra


def _search() -> tuple[str, int, str]:
    """The search's kind, trial budget and pruner as chosen (a grid by default)."""
    return (st.session_state.get(K + "search", "grid"), int(st.session_state.get(K + "trials", 12)),
            st.session_state.get(K + "prune", "none"))


def _on_launch_sweep(form: TrainForm) -> None:
    """Check the sweep with its own rules, then start it detached (a button callback)."""
    name = st.session_state.get(K + "name", "").strip()
    try:
        vary = _vary()
    except ValueError as e:
        st.session_state["sweep_launch_msg"] = ("error", f"More fields to vary: {e}")
        return
    if not vary:
        st.session_state["sweep_launch_msg"] = ("error", "Pick at least one field to vary.")
        return
    args = sweep_args(form, vary, int(st.session_state[K + "parallel"]),
                      st.session_state.get(K + "executor", "local"), st.session_state.get(K + "address", ""))
    args += search_form.search_args(*_search())
    data_dir = run_data_dir(form, common.data_dir())  # an image folder run's ROOT
    problem = launcher.sweep_problem(name, args, data_dir=data_dir, runs_dir=common.runs_dir())
    if problem:
        st.session_state["sweep_launch_msg"] = ("error", f"Not launched: {problem}")
        return
    try:
        launched = launcher.launch_sweep(name, args, data_dir=data_dir, runs_dir=common.runs_dir())
    except OSError as e:
        st.session_state["sweep_launch_msg"] = ("error", f"Could not start the sweep: {e}")
        return
    st.session_state["sweep_launch_msg"] = ("success", f"Launched sweep {name} (pid {launched.pid}); "
                                                       "its runs appear below as they start.")
    st.session_state["sweep_launched_at"] = time.time()


def render(form: TrainForm, form_has_errors: bool) -> None:
    """The sweep's section of the Train page, its fields drawn only while it is open."""
    common.lazy_expander("Sweep: train a grid or a search of this form's runs, some fields varied", K + "open",
                         lambda: _fields(form, form_has_errors), icon=":material/grid_view:")


def _fields(form: TrainForm, form_has_errors: bool) -> None:
    """The vary fields, the sweep's name and parallelism, and its launch button."""
    st.caption("Every combination of the values below is one run; the form above gives everything else. "
               "Fields left empty are not varied. Runs are ordinary runs, tagged with the sweep's name.")
    c1, c2, c3 = st.columns(3)
    block = form.block if form.block in ("basic", "bottleneck") else "basic"
    c1.multiselect("Depths", valid_depths(block, MAX_DEPTH), key=K + "depth", persist_state="session",
                   placeholder="not varied")
    c2.multiselect("Shortcuts", SHORTCUTS, key=K + "shortcut", format_func=shortcut_label,
                   persist_state="session", placeholder="not varied")
    c3.text_input("Seeds", key=K + "seeds", persist_state="session", placeholder="e.g. 0,1,2",
                  help="one run per seed: the table then shows mean ± std over them")
    st.text_input("More fields to vary", key=K + "more", persist_state="session",
                  placeholder="e.g. lr=0.1,0.05; weight_decay=1e-4,5e-4 (a search also: lr=0.01..0.5:log)",
                  help="any training option, as field=value1,value2; entries separated by ;. A random or TPE "
                       "search also samples ranges of numeric options: field=LOW..HIGH, :log for log-uniform")
    _search_fields()
    c1, c2 = st.columns(2)
    c1.text_input("Sweep name", key=K + "name", persist_state="session", max_chars=48,
                  placeholder="e.g. depth-vs-shortcut", help="letters, digits, - _ . ; must be new")
    st.session_state.setdefault(K + "parallel", len(placement.candidate_devices("auto")))
    c2.number_input("Runs at once", min_value=1, max_value=64, step=1, key=K + "parallel",
                    persist_state="session",
                    help="at most this many trainers at once; each takes a free GPU (auto), or shares the "
                         "CPU's cores. On Ray: at most this many handed to Ray, which runs as many as its "
                         "GPUs (one each) or CPUs allow")
    _executor_fields()
    st.button("Launch sweep", icon=":material/grid_view:", key="sweep_launch", disabled=form_has_errors,
              on_click=_on_launch_sweep, args=(form,),
              help="fix the form's fields first" if form_has_errors else None)
    msg = st.session_state.pop("sweep_launch_msg", None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])


def _search_fields() -> None:
    """Grid or search (random, TPE), its trial budget and pruning, and what a launch trains."""
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Search", list(search_form.SEARCH_LABELS), key=K + "search", persist_state="session",
                 format_func=search_form.SEARCH_LABELS.get,
                 help="grid: every combination of the values; random or TPE: Optuna samples the values and "
                      "ranges, one run per trial, seeded by the form's seed")
    searching = st.session_state.get(K + "search", "grid") != "grid"
    st.session_state.setdefault(K + "trials", 12)
    c2.number_input("Trials", min_value=1, max_value=1000, step=1, key=K + "trials", persist_state="session",
                    disabled=not searching, help="runs a search trains")
    c3.selectbox("Pruning", list(search_form.PRUNE_LABELS), key=K + "prune", persist_state="session",
                 format_func=search_form.PRUNE_LABELS.get, disabled=not searching,
                 help="stop runs whose validation accuracy falls behind the others' at the same epoch "
                      "(they end stopped, marked pruned)")
    try:
        st.caption(f"This sweep trains {search_form.budget_text(_vary(), *_search())}.")
    except ValueError as e:
        st.caption(f"More fields to vary: {e}")


def _executor_fields() -> None:
    """Where the runs train: this machine, or a Ray cluster (Ray is an optional extra)."""
    installed = executors.ray_installed()  # found without importing Ray
    if not installed:
        st.session_state[K + "executor"] = "local"
    c1, c2 = st.columns(2)
    c1.selectbox("Run on", list(EXECUTOR_LABELS), key=K + "executor", format_func=EXECUTOR_LABELS.get,
                 persist_state="session", disabled=not installed,
                 help="a Ray cluster: each run is a Ray task on whichever node and GPU Ray gives it; the runs "
                      "folder must be shared by every node (NFS or similar)" if installed else
                      "Ray is not installed here: pip install -r requirements-cluster.txt")
    c2.text_input("Ray address", key=K + "address", persist_state="session", placeholder="HOST:PORT",
                  disabled=st.session_state.get(K + "executor") != "ray",
                  help="the head node's address (ray start --head prints it); empty: the sweep starts a Ray "
                       "of its own on this machine")
