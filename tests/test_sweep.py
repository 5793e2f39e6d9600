"""Sweeps end to end through their command line, on tiny synthetic CIFAR-format data."""

import json
import os
import subprocess
import time
import sys

import pytest
from conftest import ROOT
from frozen import freeze, sigterm_pending, thaw
from test_train import wait_for

from resnet_core import results, runs
from resnet_core.dashboard import launcher
from resnet_core.sweep import main
from resnet_core.sweep_options import RECORD_OPTIONS
from resnet_core.sweep_runner import make_executor
from resnet_core.train_checks import Refused

# Two steps per run: startup (torch import, data) dominates, so each run takes a few seconds.
TINY = ["--batch-size", "50", "--val-size", "100", "--subset", "100", "--log-every", "2"]


def sweep(*args):
    cmd = [sys.executable, "-m", "resnet_core.sweep", *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def run_folders(runs_dir):
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def epochs_trained(run_dir):
    return [r["epoch"] for r in runs.read_metrics(run_dir) if r["type"] == "epoch"]


@pytest.mark.slow
def test_a_grid_trains_every_point_once_as_ordinary_runs(cifar_dir, tmp_path, capsys):
    result = sweep("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--name", "grid", *TINY, "--epochs", 1,
                   "--vary", "depth=8,14", "--vary", "shortcut=A,none", "--parallel", 2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "grid] completed: 4 of 4 runs completed" in result.stdout
    assert "started depth=8 shortcut=none" in result.stdout

    info = runs.read_sweep(tmp_path, "grid", RECORD_OPTIONS)
    assert info.state == "completed" and not info.alive and info.problem is None
    assert info.counts == {"done": 4, "running": 0, "queued": 0, "pending": 0, "stopped": 0, "failed": 0}
    assert info.vary == {"depth": [8, 14], "shortcut": ["A", "none"]} and info.group_by == ["depth", "shortcut"]
    assert info.eta_s == 0 and info.record["parallel"] == 2 and info.record["finished_at"]
    assert [p.values for p in info.points] == [{"depth": 8, "shortcut": "A"}, {"depth": 8, "shortcut": "none"},
                                               {"depth": 14, "shortcut": "A"}, {"depth": 14, "shortcut": "none"}]
    assert sorted(p.run_dir for p in info.points) == run_folders(tmp_path)
    for point in info.points:
        cfg = point.run.train_config
        assert cfg["sweep"] == "grid" and {k: cfg[k] for k in point.values} == point.values
        assert cfg["name"] == f"grid-depth{cfg['depth']}-shortcut{cfg['shortcut']}"
        assert point.run.resolved["device"] == "cpu" and point.state == "completed"
    assert {p.run.model_name for p in info.points} == {"ResNet-8", "plain-8", "ResNet-14", "plain-14"}
    assert [i.name for i in runs.list_sweeps(tmp_path, RECORD_OPTIONS)] == ["grid"]
    # The record is not a run: run listings skip it.
    assert len(runs.list_runs(tmp_path)) == 4
    assert main(["--runs-dir", str(tmp_path), "--report", "grid", "--format", "csv"]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.startswith("depth,shortcut,model,runs,") and len(rows) == 4


@pytest.mark.parametrize("args, message", [
    (["--vary", "dept=8,14"], "--vary dept=8,14: no such option; did you mean depth?"),
    (["--vary", "depth=8,21"], "--vary depth=21: depth 21 is not 6n+2 for basic blocks"),
    (["--vary", "depth="], "--vary depth=: no values"),
    (["--vary", "depth=8,,14"], "an empty value"),
    (["--vary", "depth=8,8"], "--vary depth: 8 is given twice"),
    (["--depth", "8", "--vary", "depth=8,14"], "--vary depth: also given as --depth"),
    (["--vary", "depth=8", "--vary", "depth=14"], "--vary depth is given twice"),
    (["--vary", "shortcut=A,D"], "--vary shortcut=D: not one of"),
    (["--vary", "compile=maybe"], "not auto, on or off"),
    (["--vary", "milestones=1,2"], "list-valued"),
    (["--vary", "name=a,b"], "cannot be varied"),
    (["--vary", "max-steps=0,100"], "--vary max-steps=100: max steps 100 is more than 1 epochs of 2 steps"),
    (["--vary", "device=cpu,cuda:3"], "--vary device=cuda:3"),
    (["--vary", "seed=0,1", "--name", "a/b"], "a sweep name may hold only"),
    (["--vary", "seed=0,1", "--name", ""], "--name NAME is needed"),
])
def test_a_bad_grid_is_one_line_exit_2_and_writes_nothing(cifar_dir, tmp_path, capsys, args, message):
    refused_in_one_line(cifar_dir, tmp_path, capsys, args, message)


def refused_in_one_line(cifar_dir, tmp_path, capsys, args: list[str], message: str) -> None:
    """A sweep with these arguments exits 2 with one line holding message, and writes nothing."""
    base = ["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"), "--name", "bad", *TINY,
            "--epochs", "1"]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_a_taken_name_is_refused_and_resume_needs_a_sweep(cifar_dir, tmp_path, capsys):
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    (tmp_path / runs.SWEEPS_DIR / "taken.json").write_text("{}")
    assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--name", "taken", "--vary",
                 "seed=0,1"]) == 2
    assert "sweep taken already exists" in capsys.readouterr().err
    assert main(["--runs-dir", str(tmp_path), "--resume", "nothing"]) == 2
    assert "no such sweep" in capsys.readouterr().err
    assert main(["--runs-dir", str(tmp_path), "--resume", "taken", "--depth", "8"]) == 2
    assert "takes only --runs-dir" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / runs.SWEEPS_DIR).iterdir()) == ["taken.json"]


def test_dry_run_prints_the_grid_and_plans_and_writes_nothing(cifar_dir, tmp_path, capsys):
    assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"), "--name", "dry", *TINY,
                 "--epochs", "1", "--vary", "depth=8,20", "--vary", "compile=auto,off", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "sweep dry: 4 runs (depth x compile = 2 x 2), at most 1 at once"
    assert [line.split(":")[0].strip() for line in out[1:]] == [
        "dry-depth8-compileauto", "dry-depth8-compileoff", "dry-depth20-compileauto", "dry-depth20-compileoff"]
    assert "ResNet-20 (basic, shortcut A) · 100 training images" in out[3]
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_resume_after_a_stop_keeps_completed_resumes_stopped_launches_missing(cifar_dir, tmp_path, capsys,
                                                                              monkeypatch):
    """Launched and stopped as the dashboard does it (launcher.launch_sweep, stop_sweep: SIGTERM
    to the sweep, which forwards it to its trainers), resumed from the command line."""
    # The second point trains 3 epochs, frozen (SIGSTOP) once it trains until the stop reaches
    # it, so it is stopped mid-run however fast the machine; the others 1 and 2.
    args = [*TINY, "--subset", "0", "--depth", "8", "--vary", "epochs=1,3,2", "--parallel", "1"]
    assert launcher.sweep_problem("cut", [*args, "--vary", "depth=8,21"], data_dir=cifar_dir,
                                  runs_dir=tmp_path).startswith("--vary depth: also given as --depth")
    assert launcher.sweep_problem("cut", args, data_dir=cifar_dir, runs_dir=tmp_path) is None
    launched = launcher.launch_sweep("cut", args, data_dir=cifar_dir, runs_dir=tmp_path)
    assert launched.log == tmp_path.resolve() / runs.SWEEPS_DIR / "cut.log"

    frozen = []

    def second_point_training():
        info = runs.read_sweep(tmp_path, "cut", RECORD_OPTIONS)
        assert runs.pid_alive(launched.pid), launched.log.read_text()
        if (info is not None and [p.state for p in info.points] == ["completed", "running", "pending"]
                and runs.read_metrics(info.points[1].run_dir)):
            frozen.append(info.points[1].run.status["pid"])
            freeze(frozen)
        return frozen

    try:
        wait_for(second_point_training, what="second point training")
        info = runs.read_sweep(tmp_path, "cut", RECORD_OPTIONS)
        assert info.alive and info.state == "running" and info.eta_s > 0
        with pytest.raises(ValueError, match="still running"):
            launcher.resume_sweep("cut", runs_dir=tmp_path)
        assert launcher.stop_sweep(info)
        wait_for(lambda: sigterm_pending(frozen[0]), what="the sweep to pass the stop on")
    finally:
        thaw(frozen)
    wait_for(lambda: not runs.pid_alive(launched.pid), what="the sweep to stop")
    assert not launcher.stop_sweep(runs.read_sweep(tmp_path, "cut", RECORD_OPTIONS))  # nothing live to signal
    out = launched.log.read_text()
    assert "[cut] stopped: 1 of 3 runs completed" in out and "epochs=3: stopped" in out
    info = runs.read_sweep(tmp_path, "cut", RECORD_OPTIONS)
    assert info.state == "stopped" and [p.state for p in info.points] == ["completed", "stopped", "pending"]
    assert info.points[2].run_dir is None  # never launched once the stop came
    first = (info.points[0].run_dir / runs.STATUS_FILE).read_bytes()

    # Resumed by the command line's main in this process (a sweep process's ~2 s of imports
    # spared), its trainers started from the project as the launcher's are.
    monkeypatch.chdir(ROOT)
    assert main(["--runs-dir", str(tmp_path), "--resume", "cut"]) == 0
    out = capsys.readouterr().out
    assert "resumed epochs=3" in out and "started epochs=2" in out
    assert "epochs=1 " not in out
    info = runs.read_sweep(tmp_path, "cut", RECORD_OPTIONS)
    assert info.state == "completed" and [p.state for p in info.points] == ["completed"] * 3
    assert len(run_folders(tmp_path)) == 3
    assert (info.points[0].run_dir / runs.STATUS_FILE).read_bytes() == first  # untouched
    for point in info.points:  # each point trained exactly once, the stopped one continued
        assert epochs_trained(point.run_dir) == list(range(1, point.values["epochs"] + 1))
        steps = [r["step"] for r in runs.read_metrics(point.run_dir) if r["type"] == "step"]
        assert steps == sorted(set(steps)) and steps[-1] == 8 * point.values["epochs"]


@pytest.mark.slow
def test_a_failed_point_exits_non_zero_with_a_summary(cifar_dir, tmp_path, capsys):
    result = sweep("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--name", "boom", *TINY, "--epochs", 1,
                   "--depth", 8, "--vary", "lr=0.1,1e30", "--parallel", 2)
    assert result.returncode == 1
    assert "point" in result.stdout and "state" in result.stdout and "error" in result.stdout
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("lr=1e+30")]
    assert "diverged" in line and "loss became" in line
    info = runs.read_sweep(tmp_path, "boom", RECORD_OPTIONS)
    assert info.state == "failed" and info.counts["done"] == 1 and info.counts["failed"] == 1
    # A diverged point is kept as a failure: a resume has nothing to run again (so it runs in this process).
    assert main(["--runs-dir", str(tmp_path), "--resume", "boom"]) == 1
    again = capsys.readouterr().out
    assert "started" not in again and "resumed" not in again
    assert len(run_folders(tmp_path)) == 2


def test_a_second_process_for_one_sweep_is_refused(tmp_path, capsys):
    record = {"format_version": 1, "name": "busy", "argv": [], "vary": [{"field": "seed", "values": [0]}],
              "parallel": 1, "device_slots": 1, "points": [{"values": {"seed": 0}, "run": None}], "state": "stopped",
              "pid": None, "pid_start": None}
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    runs.sweep_path(tmp_path, "busy").write_text(json.dumps(record))
    fd = runs.claim_sweep(tmp_path, "busy")
    try:
        assert main(["--runs-dir", str(tmp_path), "--resume", "busy"]) == 2
        assert "being run by another sweep process" in capsys.readouterr().err
    finally:
        os.close(fd)


@pytest.mark.parametrize("content, problem", [
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "holds a list"),
    (b'{"format_version": 1, "name": "bad", "state": "running", "parallel": 1, "device_slots": 1, "argv": [], '
     b'"vary": [], "points": 3}', "points is a number"),
    (b'{"format_version": 1, "name": "bad", "state": "running", "parallel": 1, "device_slots": 1, "argv": [], '
     b'"vary": [], "points": [{"values": {}, "run": "../elsewhere"}]}', "is not a run folder name"),
    (b'{"format_version": 1, "name": "bad", "state": "sleeping", "parallel": 1, "device_slots": 1, "vary": [], '
     b'"points": []}', "is not a sweep state"),
])
def test_reading_a_bad_record_never_raises(tmp_path, content, problem):
    assert runs.read_sweep(tmp_path, "bad", RECORD_OPTIONS) is None
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    runs.sweep_path(tmp_path, "bad").write_bytes(content)
    info = runs.read_sweep(tmp_path, "bad", RECORD_OPTIONS)
    assert info.state == "unreadable" and problem in info.problem and not info.alive
    assert info.counts["done"] == 0 and info.eta_s is None
    assert [i.name for i in runs.list_sweeps(tmp_path, RECORD_OPTIONS)] == ["bad"]
    assert runs.read_sweep(tmp_path, "../bad", RECORD_OPTIONS) is None


def test_a_running_record_of_a_dead_process_reads_crashed(tmp_path):
    record = {"format_version": 1, "name": "gone", "argv": [], "vary": [{"field": "seed", "values": [0]}],
              "parallel": 1, "device_slots": 1, "points": [{"values": {"seed": 0}, "run": None}],
              "state": "running", "pid": 2 ** 31 - 1, "pid_start": 1}
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    runs.sweep_path(tmp_path, "gone").write_text(json.dumps(record))
    info = runs.read_sweep(tmp_path, "gone", RECORD_OPTIONS)
    assert info.state == "crashed" and not info.alive and info.counts["pending"] == 1


def test_run_names_keep_the_values_when_the_sweep_name_is_long():
    from resnet_core.sweep_grid import run_name

    assert run_name("grid", {"depth": 20, "shortcut": "none", "seed": 0}) == "grid-depth20-shortcutnone-seed0"
    long = "degradation-short-20261128-130146"
    a, b = (run_name(long, {"depth": 20, "shortcut": s}) for s in ("none", "A"))
    assert a == "degradation-short-20261128-depth20-shortcutnone" and b.endswith("-depth20-shortcutA")
    assert len(a) <= 48 and len(b) <= 48
    assert run_name("x", {"lr": 0.1, "weight_decay": 0.0001, "momentum": 0.9, "batch_size": 128, "seed": 3}) == (
        "lr0.1-weightdecay0.0001-momentum0.9-batchsize128")  # no room for the sweep: the values first


def test_run_folder_names_longer_than_a_run_name_read(tmp_path):
    # A run folder is a time stamp plus a name of up to 48 characters: the record must take it.
    long_run = "20261128-121940-" + "depth-shortcut-depth8-shortcutA-seed0" + "-1"
    record = {"format_version": 1, "name": "long", "argv": [], "vary": [{"field": "seed", "values": [0, 1]}],
              "parallel": 1, "device_slots": 1, "points": [{"values": {"seed": 0}, "run": long_run},
                                                           {"values": {"seed": 1}, "run": None}],
              "state": "completed", "pid": None, "pid_start": None}
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    runs.sweep_path(tmp_path, "long").write_text(json.dumps(record))
    info = runs.read_sweep(tmp_path, "long", RECORD_OPTIONS)
    assert info.problem is None and info.points[0].run_dir == tmp_path / long_run
    for bad in ("../elsewhere", "a/b", ".hidden", ".."):
        record["points"][0]["run"] = bad
        runs.sweep_path(tmp_path, "long").write_text(json.dumps(record))
        assert "is not a run folder name" in runs.read_sweep(tmp_path, "long", RECORD_OPTIONS).problem, bad


def test_report_passes_the_sweeps_runs_grouped_by_varied_fields_but_seed(tmp_path, capsys, monkeypatch):
    record = {"format_version": 1, "name": "rep", "argv": [], "parallel": 1, "device_slots": 1, "state": "completed",
              "vary": [{"field": "depth", "values": [8]}, {"field": "seed", "values": [0]}],
              "points": [{"values": {"depth": 8, "seed": 0}, "run": None}], "pid": None, "pid_start": None}
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    runs.sweep_path(tmp_path, "rep").write_text(json.dumps(record))
    calls = []
    monkeypatch.setattr(results, "sweep_report", lambda infos, group_by, fmt: calls.append((infos, group_by, fmt))
                        or "TABLE")
    assert main(["--runs-dir", str(tmp_path), "--report", "rep", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "TABLE\n" and calls == [([], ["depth"], "csv")]


def _record(name, points, state="running", pid=None):
    return {"format_version": 1, "name": name, "argv": [],
            "vary": [{"field": "seed", "values": list(range(len(points)))}], "parallel": 1, "device_slots": 1,
            "points": points, "state": state, "pid": pid, "pid_start": runs.process_start_time(pid) if pid else None}


def test_a_resumed_sweep_waits_for_an_earlier_trainer_and_a_stop_reaches_it(tmp_path):
    from fake_runs import make_run

    from resnet_core.sweep_runner import Sweep

    starting = runs.new_run_dir(tmp_path, "starting")  # claimed by a trainer, no config.json yet
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        running = make_run(tmp_path, "running", state="running", pid=sleeper.pid)
        sweep_ = Sweep(tmp_path, _record("again", [{"values": {"seed": 0}, "run": starting.name},
                                                   {"values": {"seed": 1}, "run": running.name},
                                                   {"values": {"seed": 2}, "run": None}]))
        claim = runs.claim_run_dir(starting)
        assert sweep_.work() == [(0, "wait"), (1, "wait"), (2, "launch")]  # nothing started twice
        sweep_.trainers = {0: None, 1: None}
        assert not sweep_.finished(0) and not sweep_.finished(1)
        os.close(claim)
        assert sweep_.finished(0)  # its trainer exited before writing config.json
        sweep_.stop_trainers()  # the earlier trainer gets SIGTERM too
        assert sleeper.wait(timeout=5) == -15
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_resumed_sweep_launches_again_a_point_whose_trainer_died_before_its_config(tmp_path):
    from resnet_core.sweep_runner import Sweep

    folder = runs.new_run_dir(tmp_path, "died")  # status.json queued, its trainer dead, no config.json
    runs.atomic_write_json(folder / runs.STATUS_FILE, {"format_version": runs.FORMAT_VERSION, "state": "queued",
                                                       "pid": 999_999_999, "created_at": time.time()})
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    sweep_ = Sweep(tmp_path, _record("again", [{"values": {"seed": 0}, "run": folder.name}]))
    assert runs.read_run(folder).state == runs.FAILED_TO_START
    assert sweep_.work() == [(0, "launch")]
    sweep_.trainer_args(0, "launch")  # into a fresh folder: the failed one keeps its last words
    assert sweep_.run_dir(0) != folder and (folder / runs.STATUS_FILE).exists()


def test_a_point_whose_trainer_never_started_fails_once_the_sweep_is_gone(tmp_path):
    folder = runs.new_run_dir(tmp_path, "never")
    (folder / runs.CONSOLE_FILE).write_text("loading\npython -m resnet_core.train: error: no batch files\n")
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    runs.sweep_path(tmp_path, "gone").write_text(json.dumps(_record("gone", [{"values": {"seed": 0},
                                                                              "run": folder.name}])))
    point = runs.read_sweep(tmp_path, "gone", RECORD_OPTIONS).points[0]
    assert (point.state, point.category) == ("failed to start", "failed")
    assert point.error == "failed to start: python -m resnet_core.train: error: no batch files"
    live = runs.SweepPoint(values={}, run_dir=folder, run=None, sweep_alive=True)
    assert (live.state, live.category) == ("starting", "running")


def test_a_ray_that_breaks_on_import_is_refused_in_one_line(broken_imports, monkeypatch):
    broken_imports("ray")
    monkeypatch.delitem(sys.modules, "resnet_core.ray_executor", raising=False)
    with pytest.raises(Refused, match=r"^--executor ray: Ray cannot be imported: RuntimeError: operator ray::nms"):
        make_executor({"executor": "ray"})
