"""Searches (--search random|tpe): ranges in --vary and their refusals, the seeded ask side
without training, and the record a search writes as its readers check it."""

import copy
import json
import os
import subprocess
import sys
import threading

import optuna
import pytest
from conftest import ROOT, wait_until
from frozen import freeze, sigterm_pending, thaw
from test_sweep import TINY, refused_in_one_line
from test_train import wait_for

from resnet_core import runs, sweep_search
from resnet_core.sweep import main
from resnet_core.sweep_options import RECORD_OPTIONS
from resnet_core.runs.sweep_checks import record_problem
from resnet_core.sweep_space import Range, parse_range

SEARCH = {"format_version": 1, "name": "s", "argv": ["--epochs", "1"], "vary": [{"field": "depth", "values": [8, 14]}],
          "parallel": 1, "device_slots": 1, "executor": "local", "address": None, "cpus_per_trial": None,
          "points": [{"values": {"depth": 8, "lr": 0.1, "seed": 2}, "run": None, "trial": 0, "pruned": False}],
          "state": "stopped", "pid": None, "pid_start": None, "created_at": 1.5e9, "finished_at": None,
          "search": {"kind": "tpe", "trials": 4, "seed": 0, "objective": "best_val_acc", "prune": "median",
                     "storage": "sqlite:///x.db", "study": "s"},
          "ranges": [{"field": "lr", "low": 0.01, "high": 0.5, "log": True},
                     {"field": "seed", "low": 0, "high": 3, "log": False}]}


@pytest.mark.parametrize("name, text, expected", [
    ("lr", "0.01..0.5:log", Range(0.01, 0.5, True)),
    ("weight_decay", "1e-5..1e-3:log", Range(1e-5, 1e-3, True)),
    ("warmup_epochs", "0..2", Range(0.0, 2.0, False)),
    ("seed", "0..9", Range(0, 9, False)),
])
def test_a_range_parses_to_its_bounds_and_integer_options_stay_integers(name, text, expected):
    parsed = parse_range(name, text)
    assert parsed == expected and type(parsed.low) is type(expected.low)
    assert parse_range(name, parsed.shown()) == parsed


@pytest.mark.parametrize("args, message", [
    (["--vary", "lr=0.01..0.5:log"], "--vary lr=0.01..0.5:log: a range needs --search random or tpe"),
    (["--search", "tpe", "--trials", "2", "--vary", "lr=0.5..0.01"], "--vary lr=0.5..0.01: an inverted range"),
    (["--search", "tpe", "--trials", "2", "--vary", "lr=0.1..0.1"], "--vary lr=0.1..0.1: an empty range"),
    (["--search", "tpe", "--trials", "2", "--vary", "lr=0..1:log"], "a log range must stay above 0"),
    (["--search", "tpe", "--trials", "2", "--vary", "weight-decay=-1..1:log"], "a log range must stay above 0"),
    (["--search", "tpe", "--trials", "2", "--vary", "shortcut=A..B"], "a range needs a numeric option"),
    (["--search", "tpe", "--trials", "2", "--vary", "nesterov=0..1"], "a range needs a numeric option"),
    (["--search", "tpe", "--trials", "2", "--vary", "depth=8..9.5"], "LOW..HIGH of whole numbers"),
    (["--search", "tpe", "--trials", "2", "--vary", "lr=a..b"], "LOW..HIGH of numbers"),
    (["--search", "random", "--vary", "lr=0.1,0.2"], "--search random needs --trials N"),
    (["--search", "random", "--trials", "0", "--vary", "lr=0.1,0.2"], "--search random needs --trials N"),
    (["--search", "tpe", "--trials", str(2 ** 53 + 1), "--vary", "lr=0.1,0.2"], "--trials N (1 to 100,000)"),
    (["--trials", "3", "--vary", "lr=0.1,0.2"], "--trials goes with --search random or tpe"),
    (["--prune", "asha", "--vary", "lr=0.1,0.2"], "--prune goes with --search random or tpe"),
    (["--search", "tpe", "--trials", "2", "--vary", "depth=8..21"], "--vary depth=21: depth 21 is not 6n+2"),
    (["--search", "random", "--trials", "3", "--vary", "depth=8..20"],
     "--vary depth=9: depth 9 is not 6n+2 for basic blocks; nearest: 8, 14 (--vary depth=8..20 samples every "
     "whole number in it: list the values instead)"),
    (["--search", "tpe", "--trials", "2", "--vary", "lr=0.01..0.5", "--storage", "postgress://h/db"],
     "--storage postgress://h/db: not a database URL SQLAlchemy knows"),
    (["--search", "tpe", "--trials", "2", "--vary", "lr=0.01..0.5", "--storage", "sqlite:////no/such/dir/s.db"],
     "--storage sqlite:////no/such/dir/s.db: the folder /no/such/dir does not exist"),
])
def test_a_bad_search_is_one_line_exit_2_and_writes_nothing(cifar_dir, tmp_path, capsys, args, message):
    refused_in_one_line(cifar_dir, tmp_path, capsys, args, message)


def test_a_search_dry_run_prints_its_space_and_study(cifar_dir, tmp_path, capsys):
    assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--name", "dry", *TINY, "--seed", "7",
                 "--search", "random", "--trials", "5", "--vary", "lr=0.01..0.5:log", "--vary", "depth=8,14",
                 "--prune", "asha", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("sweep dry: random search of 5 runs (seed 7), maximising best_val_acc, pruning asha, "
                      "at most 1 at once")
    assert out[1:4] == ["  depth: one of 8, 14", "  lr: 0.01 to 0.5, log-uniform",
                        f"  study dry in sqlite:///{tmp_path.resolve()}/.sweeps/dry.optuna.db"]
    assert not (tmp_path / runs.SWEEPS_DIR).exists()


def test_a_relative_sqlite_storage_is_recorded_absolute(cifar_dir, tmp_path, capsys, monkeypatch):
    """Recorded as typed, sqlite:///study.db named a file in the sweep's working folder, which
    the dashboard and a resume started elsewhere did not find ("no study database study.db")."""
    monkeypatch.chdir(tmp_path)
    assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"), "--name", "rel", *TINY,
                 "--search", "random", "--trials", "2", "--vary", "lr=0.01..0.5", "--storage",
                 "sqlite:///study.db", "--dry-run"]) == 0
    assert f"  study rel in sqlite:///{tmp_path.resolve() / 'study.db'}" in capsys.readouterr().out.splitlines()


def asked(kind, seed, n=6):
    study = sweep_search.load_study({**SEARCH["search"], "kind": kind, "seed": seed, "storage": None}, create=True)
    return [sweep_search.ask(study, sweep_search.space_of(SEARCH))[1] for _ in range(n)]


@pytest.mark.parametrize("kind", ["random", "tpe"])
def test_a_seeded_search_asks_the_same_values_for_the_same_seed(kind):
    first = asked(kind, 3)
    assert asked(kind, 3) == first and asked(kind, 4) != first
    for values in first:
        assert values["depth"] in (8, 14) and 0.01 <= values["lr"] <= 0.5 and 0 <= values["seed"] <= 3
        assert type(values["seed"]) is int and type(values["lr"]) is float


def test_a_resumed_trial_is_asked_again_with_its_values():
    study = sweep_search.load_study({**SEARCH["search"], "storage": None}, create=True)
    _, values = sweep_search.ask(study, sweep_search.space_of(SEARCH))
    trial, again = sweep_search.ask(study, sweep_search.space_of(SEARCH), values)
    assert again == values and trial.number == 1 and sweep_search.running_trials(study) == {0, 1}


@pytest.mark.parametrize("status, metric, expected", [
    ({"best_val_acc": 0.8, "test_acc": 0.7}, "best_val_acc", (0.8, "best_val_acc")),
    ({"best_val_acc": None, "test_acc": 0.7}, "best_val_acc", (0.7, "test_acc")),  # no validation split
    ({"best_val_acc": 0.8, "test_acc": 0.7}, "test_acc", (0.7, "test_acc")),
])
def test_the_objective_is_the_best_validation_accuracy_else_the_test_accuracy(status, metric, expected):
    assert sweep_search.objective(status, metric) == expected


def test_the_pruner_is_fed_validation_else_monitored_test_accuracy():
    assert sweep_search.epoch_metric({"val_acc": 0.5, "test_acc": 0.4}) == 0.5
    assert sweep_search.epoch_metric({"val_acc": None, "test_acc": 0.4}) == 0.4
    assert sweep_search.epoch_metric({"val_acc": None}) is None


def edited(change):
    record = copy.deepcopy(SEARCH)
    change(record)
    return record


@pytest.mark.parametrize("change, problem", [
    (lambda r: r["points"][0]["values"].update(lr=0.9), "point 1: lr 0.9 is outside the search's lr"),
    (lambda r: r["points"][0]["values"].update(depth=20), "point 1: depth 20 is outside the search's depth"),
    (lambda r: r["points"][0]["values"].pop("seed"), "point 1: its values are not one of each field"),
    (lambda r: r["points"][0].update(trial="0"), "point 1: trial '0' is not an Optuna trial number"),
    (lambda r: r["points"][0].update(value=0.5, metric="loss"), "is not an objective"),
    (lambda r: r["search"].update(trials=0), "search: trials 0 or seed 0 is not a count"),
    (lambda r: r["search"].update(kind="grid"), "search: kind 'grid' is not one of random, tpe"),
    (lambda r: r["search"].update(prune="hyperband"), "search: prune 'hyperband' is not one of"),
    (lambda r: r["search"].pop("storage"), "search is an object, not an object of kind"),
    (lambda r: r["ranges"][0].update(low=0.0), "ranges: lr: a log range must stay above 0"),
    (lambda r: r["ranges"][1].update(high=0.5), "ranges: seed: seed 0.5 is not a whole number"),
    (lambda r: r["ranges"].append({"field": "depth", "low": 8, "high": 20, "log": False}),
     "a field is both varied by values and by a range"),
    (lambda r: r.update(points=r["points"] * 5), "not a list of at most 4 trials"),
])
def test_a_search_record_is_checked_as_its_readers_need(tmp_path, change, problem):
    assert record_problem(SEARCH, "s", RECORD_OPTIONS) is None
    assert problem in record_problem(edited(change), "s", RECORD_OPTIONS)


def test_a_search_record_reads_with_its_trials_and_pending_budget(tmp_path):
    record = edited(lambda r: r["points"][0].update(pruned=True, run="r0"))
    (tmp_path / "r0").mkdir()
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    runs.sweep_path(tmp_path, "s").write_text(json.dumps(record))
    info = runs.read_sweep(tmp_path, "s", RECORD_OPTIONS)
    assert info.problem is None and info.search["kind"] == "tpe" and list(info.ranges) == ["lr", "seed"]
    assert info.points[0].trial == 0 and info.points[0].pruned
    assert info.group_by == ["depth", "lr"] and info.counts["pending"] == 3


def sweep_process(*args):
    cmd = [sys.executable, "-m", "resnet_core.sweep", *map(str, args)]
    return subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def trial_states(runs_dir, name):
    try:
        study = optuna.load_study(storage=f"sqlite:///{runs.sweep_path(runs_dir, name, '.optuna.db')}",
                                  study_name=name)
    except KeyError:  # the database is there, the study not yet
        return {}
    return {t.number: t.state.name for t in study.get_trials(deepcopy=False)}


def seed_asking(space, wanted):
    """The first sampler seed whose random search asks the values `wanted` first (the ask side
    is seeded: test_a_seeded_search_asks_the_same_values_for_the_same_seed)."""
    record = {**SEARCH, "vary": [{"field": k, "values": v} for k, v in space.items()], "ranges": []}
    for seed in range(200):
        study = sweep_search.load_study({**SEARCH["search"], "kind": "random", "seed": seed, "storage": None}, True)
        if [sweep_search.ask(study, sweep_search.space_of(record))[1] for _ in wanted] == wanted:
            return seed
    raise AssertionError("no seed asks that order")


@pytest.mark.slow
def test_pruning_stops_a_losing_trial_as_stop_does_and_records_it_pruned(cifar_dir, tmp_path):
    """Two trials that learn (lr 0.1), then one that cannot (lr 1e-7): the median pruner,
    judging from 2 finished trials on, stops the third after an epoch; its trainer gets
    SIGTERM, saves last.pt and ends stopped, before its 6 epochs."""
    good, bad = {"lr": 0.1}, {"lr": 1e-7}
    seed = seed_asking({"lr": [0.1, 1e-7]}, [good, good, bad])
    proc = sweep_process("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--name", "p", *TINY, "--depth", "8",
                         "--epochs", "6", "--seed", seed, "--search", "random", "--trials", "3",
                         "--vary", "lr=0.1,1e-7", "--prune", "median")
    frozen = []

    def third_trial_past_its_first_epoch():
        info = runs.read_sweep(tmp_path, "p", RECORD_OPTIONS)
        third = info.points[2] if info is not None and len(info.points) == 3 else None
        if third is not None and third.run is not None and third.run.is_active and any(
                r["type"] == "epoch" for r in runs.read_metrics(third.run_dir)):
            frozen.append(third.run.status["pid"])
            freeze(frozen)  # mid-run however fast the machine: the pruner's SIGTERM waits for it
        return frozen

    def pruned():
        return runs.read_sweep(tmp_path, "p", RECORD_OPTIONS).points[2].pruned

    try:
        wait_for(third_trial_past_its_first_epoch, what="the third trial's first epoch")
        wait_for(lambda: pruned() and sigterm_pending(frozen[0]), what="the pruner to stop the third trial")
    finally:
        thaw(frozen)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    info = runs.read_sweep(tmp_path, "p", RECORD_OPTIONS)
    assert [p.values for p in info.points] == [good, good, bad] and info.state == "completed"
    assert [p.state for p in info.points] == ["completed", "completed", "pruned"]
    assert info.points[2].run.state == "stopped" and info.points[2].run.can_resume
    assert max(r["epoch"] for r in runs.read_metrics(info.points[2].run_dir) if r["type"] == "epoch") < 6
    assert "pruned trial 2 at epoch" in out
    assert trial_states(tmp_path, "p") == {0: "COMPLETE", 1: "COMPLETE", 2: "PRUNED"}
    assert info.counts["done"] == 3 and info.counts["failed"] == 0
    assert "[p] completed: 2 of 3 runs completed, 1 pruned" in out
    table = sweep_process("--runs-dir", tmp_path, "--report", "p", "--format", "csv").communicate()[0]
    header, *rows = table.strip().splitlines()
    assert header == "trial,state,lr,best_val_acc,metric,epochs_done,run"
    assert [r.split(",")[1] for r in rows] == ["completed", "completed", "pruned"]
    assert rows[2].startswith("2,pruned,1e-07,,,") and rows[2].endswith(info.points[2].run_dir.name)


@pytest.mark.slow
def test_a_search_killed_9_keeps_its_study_and_resume_continues_it(cifar_dir, tmp_path):
    """kill -9 of the sweep once a trial completed: the SQLite study holds that trial, and
    --resume keeps it, asks the interrupted one again (its trainer, orphaned, is waited
    for) and runs the rest of the budget."""
    proc = sweep_process("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--name", "k", *TINY, "--depth", "8",
                         "--epochs", "2", "--search", "tpe", "--trials", "3", "--vary", "lr=0.01..0.3:log")
    db = runs.sweep_path(tmp_path, "k", ".optuna.db")
    try:
        assert wait_until(lambda: db.exists() and "COMPLETE" in trial_states(tmp_path, "k").values(), 240, 0.2), \
            proc.stdout.read() if proc.poll() is not None else "still running"
    finally:
        proc.kill()
        proc.communicate()
    states = trial_states(tmp_path, "k")
    assert states[0] == "COMPLETE"
    first = runs.read_sweep(tmp_path, "k", RECORD_OPTIONS)
    assert first.state == "crashed" and first.points[0].state == "completed"

    resumed = sweep_process("--runs-dir", tmp_path, "--resume", "k")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    info = runs.read_sweep(tmp_path, "k", RECORD_OPTIONS)
    assert info.state == "completed" and [p.state for p in info.points] == ["completed"] * 3
    assert info.points[0].run_dir == first.points[0].run_dir and info.points[0].trial == 0
    final = trial_states(tmp_path, "k")
    assert [final[p.trial] for p in info.points] == ["COMPLETE"] * 3
    assert set(final.values()) <= {"COMPLETE", "FAIL"}  # a trial asked again leaves its old number failed
    assert len([p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 3


def test_a_new_study_database_appears_whole_while_a_reader_polls_for_it(tmp_path):
    """The Searches page polling for a starting sweep's SQLite file used to write its schema
    too, and the sweep died with "table studies already exists" (16 of 30 tries): the
    sweep's creation and the reader both succeed, 20 times over."""
    from resnet_core.dashboard import search_views
    failures = []
    for i in range(20):
        search = {**SEARCH["search"], "kind": "random", "seed": 0, "storage": f"sqlite:///{tmp_path / f'{i}.db'}",
                  "study": "s"}
        created = threading.Event()

        def poll(search, created):
            while not created.is_set():
                try:
                    search_views.load_study(search)
                except (FileNotFoundError, KeyError):  # not there yet: what a reader may see
                    pass
                except Exception as e:
                    failures.append(f"reader: {e}")

        reader = threading.Thread(target=poll, args=(search, created))
        reader.start()
        try:
            sweep_search.load_study(search, True)
        except sweep_search.StudyUnavailable as e:
            failures.append(f"sweep: {e}")
        finally:
            created.set()
            reader.join()
        assert search_views.load_study(search).study_name == "s"
    assert failures == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.db" for i in range(20))  # no temporary left


def test_a_grid_point_with_a_trials_fields_is_refused():
    grid = {**SEARCH, "points": [{"values": {"depth": 8}, "run": None, "pruned": True},
                                 {"values": {"depth": 14}, "run": None}]}
    del grid["search"], grid["ranges"]
    assert record_problem(grid, "s", RECORD_OPTIONS) == "point 1: pruned is not a point field"


@pytest.mark.parametrize("trials, startup", [(4, 2), (10, 3), (12, 4), (60, 10)])
def test_tpe_models_the_results_after_a_third_of_the_budget(trials, startup):
    sampler = sweep_search.SAMPLERS["tpe"](0, trials)
    assert sampler._n_startup_trials == startup  # Optuna's own default, 10, left small budgets random


def test_resume_fails_an_interrupted_trial_once_and_asks_its_values_again(tmp_path):
    """A trial the sweep was running when it stopped (Stop sweep, a kill) is RUNNING in the
    study: --resume failed it, asked its values again, then failed the old number a second
    time as if no point named it, and died with "Cannot tell a FAIL trial" (seen resuming
    a tpe search killed mid-trial)."""
    from resnet_core.search_runner import SearchSweep
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    search = {**SEARCH["search"], "storage": f"sqlite:///{runs.sweep_path(tmp_path, 's', '.optuna.db')}"}
    record = {**copy.deepcopy(SEARCH), "search": search}
    study = sweep_search.load_study(search, create=True)
    _, values = sweep_search.ask(study, sweep_search.space_of(record))
    record["points"][0]["values"] = values
    sweep = SearchSweep(tmp_path, record)
    assert sweep.work() == [(0, "launch")]
    assert record["points"][0]["trial"] == 1 and sweep.trials[0].params == values
    assert trial_states(tmp_path, "s") == {0: "FAIL", 1: "RUNNING"}


def test_a_running_trial_names_its_run_from_its_start(tmp_path):
    """The trials table links each trial to its run: a trial told its run only once it ended
    had none while it trained, the one a user watching a live search wants to open."""
    from resnet_core.dashboard import search_views
    from resnet_core.search_runner import SearchSweep

    class Started:
        def start(self, args, console, device):
            return None

    (tmp_path / runs.SWEEPS_DIR).mkdir()
    search = {**SEARCH["search"], "storage": f"sqlite:///{runs.sweep_path(tmp_path, 's', '.optuna.db')}"}
    sweep = SearchSweep(tmp_path, {**copy.deepcopy(SEARCH), "points": [], "search": search}, Started(), create=True)
    sweep.start(*sweep.ask())
    run = sweep.record["points"][0]["run"]
    table = search_views.trials_table(search_views.load_study(search))
    assert run and table["state"].tolist() == ["running"] and table["run"].tolist() == [run]
