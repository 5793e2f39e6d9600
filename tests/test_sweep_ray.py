"""Sweeps on Ray (--executor ray), end to end through the command line: each sweep starts a
Ray of its own on this machine (as many CPUs as the process may use) and trains tiny CPU
trials on the synthetic data; plus the refusals, with Ray made to look missing.

Each sweep process starts and shuts down its own Ray (2-3 s on two cores), so the tests
that run one are few; every test checks that no Ray process it caused outlives it."""

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from frozen import freeze, sigterm_pending, thaw
from test_sweep import TINY, epochs_trained, run_folders, sweep
from test_train import wait_for

from resnet_core import executors, runs
from resnet_core.sweep import main
from resnet_core.sweep_options import RECORD_OPTIONS
from resnet_core.sweep_runner import make_executor
from resnet_core.train_checks import Refused

pytest.importorskip("ray", reason="Ray is the optional cluster extra: pip install -r requirements-cluster.txt")

from resnet_core.system import usable_cores  # noqa: E402

# One Ray at a time: under pytest-xdist (-n auto --dist loadgroup) these tests share one worker.
pytestmark = pytest.mark.xdist_group("ray")

# Of 8 steps. The trials that get stopped or killed are frozen (SIGSTOP) once they train, so
# they cannot end first however few epochs they have: 3 leave the first poll 24 steps (6 took
# the resume of three trials 3 more epochs each).
EPOCHS = 3
CPU = ["--device", "cpu"]  # CPU trials even where the machine has a GPU: the resources asked for are known


def ray_processes() -> set[int]:
    """Live processes of Ray's: its daemons (raylet, gcs_server) and workers and agents (ray::...)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            comm = (proc / "comm").read_text().strip()
            if (comm in ("raylet", "gcs_server") or comm.startswith("ray::")) and runs.pid_alive(int(proc.name)):
                found.add(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


@pytest.fixture(autouse=True)
def no_ray_left_behind():
    """Every Ray process a test's sweeps started is gone when it ends (the sweep shuts down
    the Ray it started); leftovers fail the test and are killed, by pid."""
    before = ray_processes()
    yield
    try:
        wait_for(lambda: not ray_processes() - before, timeout=30, what="the sweeps' Ray processes to end")
    finally:
        for pid in ray_processes() - before:
            os.kill(pid, signal.SIGKILL)


def start_sweep(*args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "resnet_core.sweep", *map(str, args)]
    return subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def freeze_training(proc: subprocess.Popen, runs_dir: Path, count: int, frozen: dict[int, runs.RunInfo]) -> None:
    """SIGSTOP each trainer of the sweep's runs as soon as it trains (state running, a step
    taken), until `count` are frozen (pid -> run, filled in as they are): however fast the
    machine, none can then end before a stop reaches it."""
    def freeze_new() -> bool:
        assert proc.poll() is None, proc.stdout.read()
        for run in runs.list_runs(runs_dir):
            if run.state == "running" and run.status.get("step", 0) > 0 and run.status["pid"] not in frozen:
                freeze([run.status["pid"]])
                frozen[run.status["pid"]] = run
        return len(frozen) == count

    wait_for(freeze_new, what=f"{count} trials training")


def end(proc: subprocess.Popen) -> None:
    """A sweep a failed test left running: SIGTERM (it stops its trials and its Ray), then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_a_sweep_on_a_local_ray_trains_its_grid_as_ordinary_runs(cifar_dir, tmp_path, capsys):
    result = sweep("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--name", "onray", *TINY, "--epochs", 1, *CPU,
                   "--vary", "depth=8,14", "--executor", "ray")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[onray] completed: 2 of 2 runs completed" in result.stdout

    info = runs.read_sweep(tmp_path, "onray", RECORD_OPTIONS)
    assert info.state == "completed" and not info.alive and info.problem is None
    record = info.record
    assert (record["executor"], record["address"], record["cpus_per_trial"]) == ("ray", None, 1)
    assert record["parallel"] == usable_cores()  # as many one-CPU trials as its own Ray holds
    assert sorted(p.run_dir for p in info.points) == run_folders(tmp_path)
    for point in info.points:
        assert point.state == "completed" and point.run.train_config["sweep"] == "onray"
        assert point.run.resolved["device"] == "cpu"
        assert "completed after 2 steps" in (point.run_dir / runs.CONSOLE_FILE).read_text()
    assert not list(tmp_path.glob(".device-*.lock"))  # Ray placed the trials: no device lock taken
    assert len(runs.list_runs(tmp_path)) == 2  # ordinary runs, as the dashboard lists them
    assert main(["--runs-dir", str(tmp_path), "--report", "onray", "--format", "csv"]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.startswith("depth,model,runs,") and [r.split(",")[1] for r in rows] == ["ResNet-8", "ResNet-14"]


@pytest.mark.slow
def test_a_search_on_a_local_ray_asks_its_trials_and_tells_their_results(cifar_dir, tmp_path):
    result = sweep("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--name", "tpeonray", *TINY, "--epochs", 1, *CPU,
                   "--search", "tpe", "--trials", 3, "--vary", "lr=0.01..0.5:log", "--executor", "ray",
                   "--parallel", 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[tpeonray] completed: 3 of 3 runs completed" in result.stdout
    info = runs.read_sweep(tmp_path, "tpeonray", RECORD_OPTIONS)
    assert info.state == "completed" and info.record["executor"] == "ray" and info.problem is None
    points = info.record["points"]
    assert [p["trial"] for p in points] == [0, 1, 2]
    for point, read in zip(points, info.points, strict=True):
        assert read.state == "completed" and read.run.train_config["lr"] == point["values"]["lr"]
        assert point["value"] == read.run.status["best_val_acc"] and point["metric"] == "best_val_acc"
    assert sorted(p.run_dir for p in info.points) == run_folders(tmp_path)


@pytest.mark.slow
def test_a_stopped_ray_sweep_stops_its_trainers_drops_waiting_trials_and_resumes(cifar_dir, tmp_path):
    """Three trials, of which the Ray holds two at once (one on an odd core count): SIGTERM
    (the dashboard's Stop) while they train stops the running ones with last.pt and cancels
    the waiting one; --resume completes all three, each trained exactly once."""
    cpus = math.ceil(usable_cores() / 2)
    fit = usable_cores() // cpus
    proc = start_sweep("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--name", "cut", *TINY, "--subset", 0,
                       "--epochs", EPOCHS, "--depth", 8, *CPU, "--vary", "seed=0,1,2", "--executor", "ray",
                       "--cpus-per-trial", cpus, "--parallel", 3)
    frozen = {}
    try:
        freeze_training(proc, tmp_path, fit, frozen)
        proc.send_signal(signal.SIGTERM)  # the sweep cancels its tasks; each running one SIGTERMs its trainer
        for pid in frozen:
            wait_for(lambda pid=pid: sigterm_pending(pid), what="SIGTERM to the trainer")
        thaw(frozen)
        out, _ = proc.communicate(timeout=120)
    finally:
        thaw(frozen)
        end(proc)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "[cut] stopped: 0 of 3 runs completed" in out and "not started (cancelled)" in out

    info = runs.read_sweep(tmp_path, "cut", RECORD_OPTIONS)
    assert info.state == "stopped" and not info.alive
    started = [p for p in info.points if p.run_dir is not None]
    assert len(started) == fit and run_folders(tmp_path) == sorted(p.run_dir for p in started)
    for point in started:  # each trainer got SIGTERM, finished its step, saved last.pt
        assert point.state == "stopped" and (point.run_dir / runs.LAST_CHECKPOINT).exists()
        assert "stopped at epoch" in (point.run_dir / runs.LOG_FILE).read_text()
    # The trial that waited for Ray never ran: its folder is gone and it is not launched.
    assert [p.state for p in info.points if p.run_dir is None] == ["pending"] * (3 - fit)

    result = sweep("--runs-dir", tmp_path, "--resume", "cut")  # the recorded executor: Ray
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resumed seed=0" in result.stdout and "started seed=2" in result.stdout
    info = runs.read_sweep(tmp_path, "cut", RECORD_OPTIONS)
    assert info.state == "completed" and info.record["executor"] == "ray"
    assert [p.state for p in info.points] == ["completed"] * 3 and len(run_folders(tmp_path)) == 3
    for point in info.points:  # the stopped ones continued where they stopped
        assert epochs_trained(point.run_dir) == list(range(1, EPOCHS + 1))
        steps = [r["step"] for r in runs.read_metrics(point.run_dir) if r["type"] == "step"]
        assert steps == sorted(set(steps)) and steps[-1] == 8 * EPOCHS


@pytest.mark.slow
def test_a_killed_ray_worker_leaves_its_run_crashed_not_running(cifar_dir, tmp_path):
    """A Ray worker that dies (its node lost) takes its trainer with it (PR_SET_PDEATHSIG):
    the run reads crashed, the task is not retried, the sweep reports it and ends failed."""
    proc = start_sweep("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--name", "lost", *TINY, "--subset", 0,
                       "--epochs", EPOCHS, "--depth", 8, *CPU, "--vary", "seed=0", "--executor", "ray")
    frozen = {}
    try:
        freeze_training(proc, tmp_path, 1, frozen)
        ((trainer, run),) = frozen.items()
        worker = int(Path(f"/proc/{trainer}/stat").read_text().rpartition(")")[2].split()[1])  # its parent
        assert "ray::" in Path(f"/proc/{worker}/comm").read_text()
        os.kill(worker, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
    finally:
        thaw(frozen)
        end(proc)
    assert proc.returncode == 1, out
    assert not runs.pid_alive(trainer)
    assert "WorkerCrashedError" in out and "[lost] failed: 0 of 1 runs completed" in out
    info = runs.read_sweep(tmp_path, "lost", RECORD_OPTIONS)
    assert info.state == "failed" and [p.state for p in info.points] == ["crashed"]
    assert runs.read_run(run.path).state in runs.RESUMABLE_STATES  # --resume continues it


def test_without_ray_the_ray_executor_is_refused_in_one_line(cifar_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is not installed
    monkeypatch.delitem(sys.modules, "resnet_core.ray_executor", raising=False)
    assert not executors.ray_installed()  # what the dashboard's sweep form asks
    runs_dir = tmp_path / "runs"
    assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(runs_dir), "--name", "noray", *TINY,
                 "--vary", "seed=0,1", "--executor", "ray"]) == 2
    assert capsys.readouterr().err == f"python -m resnet_core.sweep: error: {executors.RAY_MISSING}\n"
    assert not runs_dir.exists()
    with pytest.raises(Refused, match="pip install -r requirements-cluster.txt"):
        make_executor({"executor": "ray"})
    # A Ray sweep's record resumes on Ray unless told otherwise: refused here too, unchanged.
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    record = {"format_version": 1, "name": "was", "argv": [], "vary": [{"field": "seed", "values": [0]}],
              "parallel": 2, "device_slots": 2, "executor": "ray", "address": None, "cpus_per_trial": 1,
              "points": [{"values": {"seed": 0}, "run": None}], "state": "stopped", "pid": None, "pid_start": None}
    runs.atomic_write_json(runs.sweep_path(tmp_path, "was"), record)
    assert main(["--runs-dir", str(tmp_path), "--resume", "was"]) == 2
    assert capsys.readouterr().err.strip().endswith(executors.RAY_MISSING)
    assert runs.read_sweep(tmp_path, "was", RECORD_OPTIONS).record == record


@pytest.mark.parametrize("args, message", [
    (["--address", "head:6379"], "--address and --cpus-per-trial go with --executor ray"),
    (["--executor", "local", "--cpus-per-trial", "2"], "go with --executor ray"),
    (["--executor", "ray", "--cpus-per-trial", "0"], "--cpus-per-trial must be a whole number of at least 1"),
    (["--executor", "ray", "--device", "cuda:1"], "device cuda:1: Ray picks each run's GPU; use --device cuda or auto"),
    (["--executor", "ray", "--vary", "device=cpu,cuda:0"], "--vary device=cuda:0: device cuda:0: Ray picks"),
    (["--executor", "ray", "--parallel", "0"], "--parallel must be at least 1"),
])
def test_executor_options_that_cannot_run_are_refused_before_anything_starts(cifar_dir, tmp_path, capsys, args,
                                                                             message):
    runs_dir = tmp_path / "runs"
    assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(runs_dir), "--name", "bad", *TINY,
                 "--vary", "seed=0,1", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not runs_dir.exists()


def test_a_ray_dry_run_connects_to_nothing_and_says_where_it_would_run(cifar_dir, tmp_path, capsys):
    assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"), "--name", "plan", *TINY,
                 "--vary", "seed=0,1", "--executor", "ray", "--address", "head:6379", "--dry-run"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "sweep plan: 2 runs (seed = 2), at most as many as the Ray cluster holds at once on Ray (head:6379)"
    assert not (tmp_path / "runs").exists()


def test_a_resume_keeps_the_recorded_executor_unless_given_one(tmp_path):
    from resnet_core.sweep import executor_fields
    from resnet_core.sweep_args import build_parser

    def fields(*argv, recorded=None):
        return executor_fields(build_parser().parse_args(["--resume", "s", *argv]), recorded)

    local = {"executor": "local", "address": None, "cpus_per_trial": None}
    on_ray = {"executor": "ray", "address": "head:6379", "cpus_per_trial": 4}
    assert fields(recorded={}) == local  # a record from before executors existed
    assert fields(recorded=on_ray) == on_ray
    assert fields("--executor", "local", recorded=on_ray) == local
    assert fields("--address", "local", "--cpus-per-trial", "2", recorded=on_ray) == {
        "executor": "ray", "address": None, "cpus_per_trial": 2}
    assert fields("--executor", "ray", recorded={}) == {"executor": "ray", "address": None, "cpus_per_trial": 1}
    with pytest.raises(Refused, match="executor 'k8s' is not one of local, ray"):
        fields(recorded={"executor": "k8s"})


def test_a_cpu_trial_never_takes_more_threads_than_ray_reserved(monkeypatch):
    from resnet_core import placement
    from resnet_core.ray_executor import trial_slots

    for cores in (1, 2, 8, 16, 64):
        monkeypatch.setattr(placement.os, "cpu_count", lambda n=cores: n)  # the node the trainer runs on
        for cpus in range(1, cores + 1):
            threads = placement.cpu_threads(trial_slots(cores, cpus))  # what the trainer takes
            assert 1 <= threads <= cpus, (cores, cpus, threads)
            if cores % cpus == 0:
                assert threads == cpus
