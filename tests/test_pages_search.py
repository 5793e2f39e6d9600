"""The Train page's sweep form offering a search (random, TPE) with ranges and pruning, the
runs a launch would train shown before it, and a search's card in the sweeps panel."""

from __future__ import annotations

import json
import time

from conftest import ROOT
from fake_runs import make_run
from test_search_views import fabricated
from test_pages import TRAIN, folders, open_page, open_section, texts  # noqa: F401 (folders: a fixture)

from app_pages import search_view
from app_pages.navigation import RUNS
from resnet_core import formatting, runs
from resnet_core.dashboard import launcher, search_form


def test_budget_text_counts_a_grid_and_states_a_searchs_budget():
    assert search_form.budget_text({"depth": ["8", "14"], "seed": ["0", "1", "2"]}, "grid", 5, "none") == \
        "6 runs (2 × 3)"
    assert search_form.budget_text({"lr": ["0.01..0.5:log"]}, "grid", 5, "none") == \
        "no runs: lr is a range, which only a random or TPE search samples"
    assert search_form.budget_text({"depth": ["8", "14"], "lr": ["0.01..0.5:log"]}, "tpe", 5, "asha") == (
        "at most 5 runs, sampled by TPE: depth from 2 values, lr in 0.01..0.5:log, losing runs stopped early "
        "(successive halving (ASHA))")
    assert search_form.search_args("grid", 5, "asha") == []
    assert search_form.search_args("random", 5, "none") == ["--search", "random", "--trials", "5"]
    assert search_form.search_args("tpe", 7, "median") == ["--search", "tpe", "--trials", "7", "--prune", "median"]
    assert search_form.space_text({"depth": [8, 14]}, {"lr": {"low": 0.01, "high": 0.5, "log": True}}) == \
        "depth (2) × lr (0.01..0.5 log)"


def test_the_sweep_form_launches_a_search_with_its_budget_shown_first(folders, monkeypatch):  # noqa: F811
    launched = []
    monkeypatch.setattr(launcher, "sweep_problem", lambda *a, **k: None)
    monkeypatch.setattr(launcher, "launch_sweep", lambda name, args, **k: launched.append(args)
                        or launcher.SweepLaunched(name, folders / "log", 1, None, args))
    at = open_section(open_page(TRAIN), "sw_open")
    assert at.number_input(key="sw_trials").disabled and at.selectbox(key="sw_prune").disabled
    at.text_input(key="sw_more").set_value("lr=0.01..0.5:log").run()
    assert "This sweep trains no runs: lr is a range" in texts(at)
    at.selectbox(key="sw_search").set_value("tpe").run()
    at.number_input(key="sw_trials").set_value(9)
    at.selectbox(key="sw_prune").set_value("median")
    at.text_input(key="sw_name").set_value("look").run()
    assert "This sweep trains at most 9 runs, sampled by TPE: lr in 0.01..0.5:log" in texts(at)
    at.button(key="sweep_launch").click().run()
    assert not at.exception and launched
    assert launched[0][-6:] == ["--search", "tpe", "--trials", "9", "--prune", "median"]
    assert ["--vary", "lr=0.01..0.5:log"] == launched[0][launched[0].index("--vary"):][:2]


def test_a_search_card_shows_its_budget_space_and_pruned_trials(folders):  # noqa: F811
    run = make_run(folders, "pruned", state="stopped", epochs_done=1, sweep="s", depth=8)
    (folders / runs.SWEEPS_DIR).mkdir()
    runs.atomic_write_json(runs.sweep_path(folders, "s"), {
        "format_version": 1, "name": "s", "argv": [], "vary": [{"field": "depth", "values": [8, 14]}],
        "parallel": 1, "device_slots": 1, "executor": "local", "address": None, "cpus_per_trial": None,
        "points": [{"values": {"depth": 8, "lr": 0.1}, "run": run.name, "trial": 0, "pruned": True}],
        "state": "stopped", "pid": None, "pid_start": None, "created_at": time.time(), "finished_at": None,
        "search": {"kind": "tpe", "trials": 4, "seed": 0, "objective": "best_val_acc", "prune": "median",
                   "storage": "sqlite:///x.db", "study": "s"},
        "ranges": [{"field": "lr", "low": 0.01, "high": 0.5, "log": True}]})
    at = open_page(TRAIN)
    page = texts(at)
    assert formatting.md_escape("tpe search of 4 runs · depth (2) × lr (0.01..0.5 log)") in page
    assert "1 of 4 done (1 pruned)" in page and "3 not started" in page
    open_section(at, "sweep_trials_s")
    assert "Its study cannot be read: FileNotFoundError: no study database x.db" in texts(at)
    assert not (ROOT / "x.db").exists()  # looking creates no database
    # The Runs table says pruned too, where the folder says stopped; a run stopped by hand stays stopped.
    by_hand = make_run(folders, "by-hand", state="stopped", epochs_done=1, depth=8)
    (folders / runs.SWEEPS_DIR / "damaged.json").write_text("{not json")  # adds nothing, breaks nothing
    assert runs.pruned_run_ids(folders) == {run.name}
    at = open_page(RUNS)
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[run.name, "state"] == "pruned" and table.loc[by_hand.name, "state"] == "stopped"
    assert "1 pruned" in texts(at) and "1 stopped" in texts(at)


def searched(folders) -> None:  # noqa: F811
    """A completed random search "s" of 12 fabricated trials (2 pruned), its study beside the record."""
    db = f"sqlite:///{runs.sweep_path(folders, 's', '.optuna.db')}"
    (folders / runs.SWEEPS_DIR).mkdir()
    fabricated(storage=db, name="s")
    runs.atomic_write_json(runs.sweep_path(folders, "s"), {
        "format_version": 1, "name": "s", "argv": [], "vary": [{"field": "shortcut", "values": ["A", "none"]}],
        "parallel": 1, "device_slots": 1, "executor": "local", "address": None, "cpus_per_trial": None,
        "points": [], "state": "completed", "pid": None, "pid_start": None, "created_at": time.time(),
        "finished_at": None, "ranges": [{"field": "lr", "low": 0.001, "high": 1.0, "log": True},
                                        {"field": "warmup_epochs", "low": 0.0, "high": 2.0, "log": False}],
        "search": {"kind": "random", "trials": 12, "seed": 0, "objective": "best_val_acc", "prune": "median",
                   "storage": db, "study": "s"}})


def parcoords(at) -> dict:
    """The parcoords trace the brushing component (app_pages/parcoords_chart.py) sends the browser."""
    (component,) = at.get("bidi_component")
    return json.loads(json.loads(component.proto.json)["figure"])["data"][0]


def test_a_search_cards_trials_show_its_table_and_figures(folders):  # noqa: F811
    searched(folders)
    at = open_section(open_page(TRAIN), "sweep_trials_s")
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert len(table) == 12 and table["state"].tolist().count("pruned") == 2
    assert table["monitor"][0] == "./monitor?run=r0"
    figures = [json.loads(c.proto.spec)["data"][0]["type"] for c in at.get("plotly_chart")]
    assert figures == ["scatter", "bar"] and parcoords(at)["type"] == "parcoords"
    assert "random search maximising best_val_acc (a run without a validation split" in texts(at)


def test_a_search_report_shows_sampled_floats_to_four_digits(folders, capsys):  # noqa: F811
    from resnet_core.sweep import main

    run = make_run(folders, "t0", sweep="s", depth=8)
    (folders / runs.SWEEPS_DIR).mkdir()
    runs.atomic_write_json(runs.sweep_path(folders, "s"), {
        "format_version": 1, "name": "s", "argv": [], "vary": [{"field": "depth", "values": [8, 14]}],
        "parallel": 1, "device_slots": 1, "executor": "local", "address": None, "cpus_per_trial": None,
        "points": [{"values": {"depth": 8, "lr": 0.10570046446158274}, "run": run.name, "trial": 0, "value": 0.391,
                    "metric": "best_val_acc"}],
        "state": "completed", "pid": None, "pid_start": None, "created_at": time.time(), "finished_at": None,
        "search": {"kind": "tpe", "trials": 1, "seed": 0, "objective": "best_val_acc", "prune": "none",
                   "storage": "sqlite:///x.db", "study": "s"},
        "ranges": [{"field": "lr", "low": 0.01, "high": 0.5, "log": True}]})
    assert main(["--runs-dir", str(folders), "--report", "s"]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert row.startswith("| 0 | completed | 8 | 0.1057 | 0.3910 | best_val_acc |"), row


def test_brushing_the_parallel_coordinates_filters_the_trials_and_is_drawn_again(folders):  # noqa: F811
    searched(folders)
    at = open_section(open_page(TRAIN), "sweep_trials_s")
    assert all("constraintrange" not in d for d in parcoords(at)["dimensions"])
    # what the component's callback keeps of a brush on lr (log10) and one on shortcut ("none": 1)
    at.session_state[search_view.brush_key("s")] = {"log10 lr": [[-1.5, 0.0]], "shortcut": [[0.5, 1.5]]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe[0].value["trial"].tolist() == [6, 8, 10]  # 7 pruned (not drawn), odd ones "A"
    assert "3 of 12 trials inside the ranges brushed" in texts(at)
    dims = {d["label"]: d.get("constraintrange") for d in parcoords(at)["dimensions"]}
    assert dims == {"log10 lr": [-1.5, 0.0], "shortcut": [0.5, 1.5], "warmup_epochs": None, "best_val_acc": None}
    at.button(key="search_brush_clear_s").click().run()
    assert len(at.dataframe[0].value) == 12 and all("constraintrange" not in d for d in parcoords(at)["dimensions"])


def test_a_trial_clicked_on_the_objective_chart_offers_its_run(folders):  # noqa: F811
    searched(folders)
    at = open_section(open_page(TRAIN), "sweep_trials_s")
    assert not at.get("page_link") or all("r5" not in p.proto.label for p in at.get("page_link"))
    assert "Click a trial's point to open its run." in texts(at)
    at.session_state[search_view.clicked_key("s")] = "r5"  # what the chart's on_select keeps of a click on trial 5
    at.run()
    (link,) = [p.proto for p in at.get("page_link") if "r5" in p.proto.label]
    assert link.label == "Open r5 in the Monitor" and "monitor" in link.page and link.query_string == "run=r5"


def test_a_search_report_varying_epochs_keeps_them_beside_the_epochs_trained(folders, capsys):  # noqa: F811
    from resnet_core.sweep import main

    run = make_run(folders, "t0", state="stopped", epochs_done=1, sweep="s", depth=8)
    (folders / runs.SWEEPS_DIR).mkdir()
    runs.atomic_write_json(runs.sweep_path(folders, "s"), {
        "format_version": 1, "name": "s", "argv": [], "vary": [], "parallel": 1, "device_slots": 1,
        "executor": "local", "address": None, "cpus_per_trial": None,
        "points": [{"values": {"epochs": 3}, "run": run.name, "trial": 0, "pruned": True}],
        "state": "completed", "pid": None, "pid_start": None, "created_at": time.time(), "finished_at": None,
        "search": {"kind": "tpe", "trials": 1, "seed": 0, "objective": "best_val_acc", "prune": "asha",
                   "storage": "sqlite:///x.db", "study": "s"},
        "ranges": [{"field": "epochs", "low": 2, "high": 6, "log": False}]})
    assert main(["--runs-dir", str(folders), "--report", "s", "--format", "csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header == "trial,state,epochs,best_val_acc,metric,epochs_done,run" and row.startswith("0,pruned,3,,,1,")
