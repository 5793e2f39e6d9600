"""The launcher: real trainer processes started, queued, stopped, killed, resumed and deleted
the way the dashboard does it (the form they start from: test_form.py)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT
from fake_runs import UNREADABLE_CASES, make_run, make_unreadable_run
from frozen import freeze, sigterm_pending, thaw

from resnet_core import runs
from resnet_core.dashboard import launcher
from resnet_core.dashboard.form import TrainForm, form_typed, trainer_args, validate

# ----------------------------------------------------------------------------- launch

def test_launch_refuses_an_invalid_form_and_creates_nothing(tmp_path):
    with pytest.raises(ValueError, match="epochs"):
        launcher.launch(TrainForm(epochs=0), data_dir=tmp_path, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- logs, folders, delete

def test_log_tail_prefers_console_output_and_keeps_the_last_lines(tmp_path):
    assert launcher.log_tail(tmp_path) == ""
    (tmp_path / runs.LOG_FILE).write_text("\n".join(f"line {i}" for i in range(100)) + "\n")
    assert launcher.log_tail(tmp_path, 3) == "line 97\nline 98\nline 99"
    (tmp_path / runs.CONSOLE_FILE).write_text("epoch 1 [#...] 1/9\repoch 1 [###] 9/9\nTraceback\nBoom\n")
    assert launcher.log_tail(tmp_path, 5) == "epoch 1 [###] 9/9\nTraceback\nBoom"


def test_folder_state_and_unstarted_folders(tmp_path):
    """folder_state judges a folder the dashboard just launched into by its trainer's pid;
    list_runs lists it as failed to start once it has been quiet for STALE_S."""
    folder = runs.new_run_dir(tmp_path, "x")
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        start = runs.process_start_time(sleeper.pid)
        assert launcher.folder_state(folder, sleeper.pid, start) == "starting"
        # Not the process we launched (another start time), or no start time and no trainer.
        assert launcher.folder_state(folder, sleeper.pid, start + 1) == "failed to start"
        assert launcher.folder_state(folder, sleeper.pid) == "failed to start"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert launcher.folder_state(folder, sleeper.pid, start) == "failed to start"
    assert runs.list_runs(tmp_path) == []  # may still be starting
    quiet = time.time() - runs.STALE_S - 1
    os.utime(folder, (quiet, quiet))
    assert [r.state for r in runs.list_runs(tmp_path)] == [runs.FAILED_TO_START]
    assert runs.read_run(folder) is None  # a sweep that launched into it judges it by its process
    done = make_run(tmp_path, "done")
    assert launcher.folder_state(done) == "run"
    # A config.json that is a dangling link is a broken run, listed as unreadable, not a folder still starting.
    dangling = runs.new_run_dir(tmp_path, "dangling")
    (dangling / runs.CONFIG_FILE).symlink_to("gone.json")
    assert launcher.folder_state(dangling) == "run"
    assert runs.read_run(dangling).problem == "config.json is a symbolic link"


def test_delete_refuses_active_runs_and_foreign_folders(tmp_path):
    runs_dir = tmp_path / "runs"
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        active = make_run(runs_dir, "active", state="running", pid=sleeper.pid, epochs_done=1, total_epochs=3)
        with pytest.raises(launcher.RunActiveError, match="running"):
            launcher.delete_run(active, runs_dir)
        assert active.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its trainer is gone: the run reads as crashed and may go.
    assert runs.read_run(active).state == runs.CRASHED
    launcher.delete_run(active, runs_dir)
    assert not active.exists()
    done = make_run(runs_dir, "done")
    with pytest.raises(ValueError, match="not a run folder"):
        launcher.delete_run(tmp_path, runs_dir)
    with pytest.raises(ValueError, match="not a run folder"):
        launcher.delete_run(runs_dir / ".." / "runs" / done.name / "predictions", runs_dir)
    launcher.delete_run(str(done), str(runs_dir))
    assert not done.exists()


def test_stop_signals_the_process_group_of_an_active_run_only(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        run = runs.read_run(make_run(tmp_path, "r", state="running", pid=sleeper.pid))
        assert launcher.stop(run) is True
        assert sleeper.wait(timeout=5) == -signal.SIGTERM
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
    assert launcher.stop(runs.read_run(make_run(tmp_path, "done"))) is False


@pytest.mark.parametrize("name", [runs.CONSOLE_FILE, runs.LOG_FILE])
def test_log_tail_shows_no_file_a_symlink_leads_to(tmp_path, name):
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    run_dir = runs.new_run_dir(tmp_path / "runs", "linked")
    (run_dir / runs.LOG_FILE).write_text("a log line\n")
    (run_dir / name).unlink(missing_ok=True)
    (run_dir / name).symlink_to(secret)
    assert launcher.log_tail(run_dir) == f"({name} is a symbolic link; not shown)"


def test_log_tail_of_a_fifo_or_a_folder_neither_hangs_nor_raises(tmp_path):
    os.mkfifo(tmp_path / runs.CONSOLE_FILE)  # opening it for reading would wait for a writer
    assert launcher.log_tail(tmp_path) == f"({runs.CONSOLE_FILE} is not a regular file; not shown)"
    (tmp_path / runs.CONSOLE_FILE).unlink()
    (tmp_path / runs.CONSOLE_FILE).mkdir()
    assert launcher.log_tail(tmp_path) == f"({runs.CONSOLE_FILE} is a folder; not shown)"


def _status(run_dir: Path, **changes) -> None:
    status = json.loads((run_dir / runs.STATUS_FILE).read_text())
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, {**status, **changes})


def test_a_run_whose_pid_belongs_to_another_process_is_never_signalled(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        reused = make_run(tmp_path, "reused", state="running", pid=sleeper.pid)
        _status(reused, pid_start=runs.process_start_time(sleeper.pid) + 1)
        v1 = make_run(tmp_path, "v1", state="running", pid=sleeper.pid)  # no pid_start: sleep is no trainer
        _status(v1, pid_start=None)
        for run_dir in (reused, v1):
            info = runs.read_run(run_dir)
            assert info.state == runs.CRASHED
            assert launcher.stop(replace(info, state="running")) is False  # even when told it runs
        time.sleep(0.2)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_resume_refuses_unreadable_read_only_and_older_format_runs(tmp_path):
    unreadable = make_unreadable_run(tmp_path, "status a list", state="stopped")
    with pytest.raises(ValueError, match="cannot be read: status.json holds a list"):
        launcher.resume(unreadable)
    newer = make_run(tmp_path, "newer", state="stopped")
    _status(newer, format_version=runs.FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match="read-only"):
        launcher.resume(newer)
    older = make_run(tmp_path, "older", state="stopped")
    _status(older, format_version=1)
    with pytest.raises(ValueError, match="format 1"):
        launcher.resume(older)
    assert not any((d / runs.CONSOLE_FILE).exists() for d in (unreadable, newer, older))  # nothing started


@pytest.mark.parametrize("case", ["config a folder", "status a list", "pid 2**40"])
def test_an_unreadable_run_can_be_deleted_but_not_stopped(tmp_path, case):
    bad = make_unreadable_run(tmp_path, case, state="running", epochs_done=1)
    info = runs.read_run(bad)
    assert info.state == runs.UNREADABLE and launcher.stop(info) is False
    launcher.delete_run(bad, tmp_path)
    assert not bad.exists()


def test_an_unreadable_run_whose_trainer_still_runs_is_not_deleted(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        live = make_run(tmp_path, "live", state="running", pid=sleeper.pid, epochs_done=1)
        UNREADABLE_CASES["config a list"](live)
        assert runs.read_run(live).state == runs.UNREADABLE
        with pytest.raises(launcher.RunActiveError, match="live trainer"):
            launcher.delete_run(live, tmp_path)
        assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.slow
def test_a_trainer_that_exits_at_once_leaves_no_zombie(tmp_path):
    launched = launcher.launch(TrainForm(epochs=1, **TINY), data_dir=tmp_path, runs_dir=tmp_path / "runs",
                               module="resnet_core.no_such_module")
    proc = Path(f"/proc/{launched.pid}")
    deadline = time.time() + 10
    while proc.exists() and time.time() < deadline:  # nothing here waits for it, nor calls pid_alive
        time.sleep(0.05)
    assert not proc.exists(), (proc / "status").read_text()
    assert "No module named resnet_core.no_such_module" in launcher.log_tail(launched.run_dir)


def test_resume_refuses_runs_that_cannot_resume(tmp_path):
    with pytest.raises(ValueError, match="completed"):
        launcher.resume(make_run(tmp_path, "done"))
    with pytest.raises(ValueError, match="last.pt"):
        launcher.resume(make_run(tmp_path, "early", state="failed", epochs_done=0, with_checkpoint=False))
    with pytest.raises(ValueError, match="not a run folder"):
        launcher.resume(tmp_path)


# ----------------------------------------------------------------------------- real trainers

TINY = dict(depth=8, batch_size=32, val_size=50, subset=64, device="cpu", precision="fp32", lr="0.05")


def wait_for(run_dir: Path, predicate, timeout: float = 90.0, what: str = "") -> runs.RunInfo | None:
    deadline = time.time() + timeout
    info = None
    while time.time() < deadline:
        info = runs.read_run(run_dir)
        if info is not None and predicate(info):
            return info
        time.sleep(0.1)
    log = launcher.log_tail(run_dir, 30)
    raise AssertionError(f"timed out waiting for {what}: last state "
                         f"{info.state if info else None}, status {info.status if info else None}\n{log}")


def epoch_numbers(run_dir: Path) -> list[int]:
    return [r["epoch"] for r in runs.read_metrics(run_dir) if r.get("type") == "epoch"]


@pytest.fixture
def trainers():
    """Kill any trainer a test leaves behind."""
    started: list[int] = []
    yield started
    for pid in started:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        runs.pid_alive(pid)  # reap


@pytest.mark.slow
def test_a_launched_run_trains_in_its_own_process_into_the_folder_we_made(tmp_path, cifar_dir, trainers,
                                                                           monkeypatch):
    pytest.importorskip("resnet_core.train")
    monkeypatch.setattr(launcher, "TRAINER_NICE", 10)  # the dashboard's (the tests start theirs at 0: conftest)
    form = TrainForm(epochs=2, name="tiny run", **TINY)
    launched = launcher.launch(form, data_dir=cifar_dir, runs_dir=tmp_path / "runs")
    trainers.append(launched.pid)
    assert launched.run_dir.parent == (tmp_path / "runs").resolve()
    assert launched.run_dir.name.endswith("-tiny-run")
    assert launched.argv[:3] == [sys.executable, "-m", "resnet_core.train"]
    assert os.getpgid(launched.pid) == launched.pid  # its own session: a reload cannot kill it
    # At a lower priority than the dashboard, so pages stay quick beside a run on the CPU:
    # read once the trainer wrote its status (so `nice` has exec'd it: the pid is the
    # trainer's) and before it can end.
    wait_for(launched.run_dir, lambda i: i.status.get("pid") == launched.pid, what="the trainer's status")
    niceness = os.getpriority(os.PRIO_PROCESS, launched.pid)
    # Its own session's scheduling group too, where the kernel groups by session: there a
    # process's nice counts only against its own group.
    autogroup = Path(f"/proc/{launched.pid}/autogroup")
    group_nice = autogroup.read_text().split()[-1] if autogroup.exists() else None
    # A niced trainer beside other work crawls (its first step took 30 s on a loaded machine): a long deadline.
    info = wait_for(launched.run_dir, lambda i: not i.is_active, timeout=900, what="the run to end")
    assert niceness == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    assert group_nice in (None, "10")  # None: a kernel without autogroups
    assert info.state == "completed", launcher.log_tail(launched.run_dir)
    assert epoch_numbers(launched.run_dir) == [1, 2]
    assert (launched.run_dir / runs.CONSOLE_FILE).exists()
    assert runs.recorded_epochs(launched.run_dir, "val") == [1, 2]
    assert info.config["resolved"]["val_source"] == "train"


@pytest.mark.slow
def test_queue_crash_stop_and_resume_of_dashboard_launched_runs(tmp_path, cifar_dir, trainers):
    """Two runs on one device: the second waits queued. The first is killed (crashed), the
    second takes the device; the first resumes, is stopped gracefully, resumes again and
    finishes with each epoch recorded exactly once. The first run's trainers are frozen
    (SIGSTOP) before each kill or stop, so it cannot end first: 12 epochs do (40 before)."""
    pytest.importorskip("resnet_core.train")
    runs_dir = tmp_path / "runs"
    long_form = TrainForm(epochs=12, name="long", **TINY)
    short_form = TrainForm(epochs=2, name="short", **TINY)
    a = launcher.launch(long_form, data_dir=cifar_dir, runs_dir=runs_dir)
    trainers.append(a.pid)
    wait_for(a.run_dir, lambda i: frozen_once(i, i.state == "running" and i.status.get("epoch", 0) >= 1),
             what="A running")
    b = launcher.launch(short_form, data_dir=cifar_dir, runs_dir=runs_dir)
    trainers.append(b.pid)
    wait_for(b.run_dir, lambda i: i.state == "queued", what="B queued behind A")
    assert runs.read_run(a.run_dir).state == "running"

    os.killpg(a.pid, signal.SIGKILL)  # as the OOM killer would
    info_a = wait_for(a.run_dir, lambda i: i.state == runs.CRASHED, what="A crashed")
    assert info_a.can_resume
    wait_for(b.run_dir, lambda i: i.state == "completed", what="B to take the device and finish")

    r1 = launcher.resume(a.run_dir)
    trainers.append(r1.pid)
    epochs_before = info_a.status["epoch"]
    running = wait_for(a.run_dir, lambda i: frozen_once(i, i.state == "running" and
                                                           i.status.get("epoch", 0) > epochs_before),
                       what="A running again")
    try:
        assert launcher.stop(runs.read_run(a.run_dir))
        wait_for(a.run_dir, lambda i: sigterm_pending(running.status["pid"]), what="the SIGTERM to reach A")
    finally:
        thaw([running.status["pid"]])
    stopped = wait_for(a.run_dir, lambda i: not i.is_active, what="A stopped")
    assert stopped.state == "stopped" and stopped.can_resume

    r2 = launcher.resume(a.run_dir)
    trainers.append(r2.pid)
    done = wait_for(a.run_dir, lambda i: i.state == "completed", timeout=180, what="A completed")
    assert epoch_numbers(a.run_dir) == list(range(1, 13))
    assert done.status["epoch"] == 12
    launcher.delete_run(a.run_dir, runs_dir)  # finished: deleting is allowed now
    assert not a.run_dir.exists()


def frozen_once(info: runs.RunInfo, ready: bool) -> bool:
    """Freeze (SIGSTOP) the run's trainer once `ready`, the moment its status is read: it
    stays live (its state running, its device lock held) and ends only when a test says."""
    if ready:
        freeze([info.status["pid"]])
    return ready


@pytest.mark.slow
def test_stop_signals_only_the_trainer_of_a_pipeline_it_does_not_lead(tmp_path, cifar_dir, trainers):
    """A trainer started from a terminal as `sleep 0.1 | python -m resnet_core.train ... 2>&1 | cat`:
    the shell leads the process group, so stopping the run signals the trainer alone; it
    stops gracefully and the rest of the pipeline finishes normally."""
    pytest.importorskip("resnet_core.train")
    run_dir = runs.new_run_dir(tmp_path / "runs", "piped")
    args = trainer_args(TrainForm(epochs=500, **TINY), data_dir=cifar_dir, runs_dir=tmp_path / "runs",
                                 run_dir=run_dir)
    trainer = shlex.join([sys.executable, "-m", runs.TRAINER_MODULE, *args])
    out = tmp_path / "piped.log"
    shell = subprocess.Popen(["bash", "-c", f"sleep 0.1 | {trainer} 2>&1 | cat > {shlex.quote(str(out))}"],
                             start_new_session=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    trainers.append(shell.pid)
    info = wait_for(run_dir, lambda i: i.state == "running" and i.status.get("step", 0) > 0,
                    what="the trainer running")
    pid = info.status["pid"]
    assert os.getpgid(pid) == shell.pid != pid  # the shell leads the group, not the trainer
    assert launcher.stop(info) is True
    stopped = wait_for(run_dir, lambda i: not i.is_active, what="the trainer to stop")
    assert stopped.state == "stopped" and stopped.can_resume
    assert shell.wait(timeout=60) == 0  # the shell and cat were not signalled
    assert "stopped at epoch" in out.read_text()  # cat passed the trainer's output on to the end


def test_a_sweep_name_argparse_would_take_for_a_flag_is_refused_not_raised(cifar_dir, tmp_path):
    from resnet_core.dashboard.launcher import launch_sweep, sweep_problem

    problem = sweep_problem("-x", ["--vary", "depth=8,14"], data_dir=cifar_dir, runs_dir=tmp_path)
    assert "a sweep name may hold only letters" in problem
    assert "unrecognized arguments" in sweep_problem("ok", ["--vary", "depth=8", "--bogus"], data_dir=cifar_dir,
                                                     runs_dir=tmp_path)
    with pytest.raises(ValueError, match="not a sweep name"):
        launch_sweep("../x", ["--vary", "depth=8,14"], data_dir=cifar_dir, runs_dir=tmp_path)
    assert not (tmp_path / runs.SWEEPS_DIR).exists()


# ----------------------------------------------------------------------------- several GPUs

def test_gpus_above_one_launch_torchrun_and_are_judged_as_the_trainer_would():
    assert validate(TrainForm(gpus=2, batch_size=128), cuda_count=2) == {}
    assert "at most that many" in validate(TrainForm(gpus=4), cuda_count=2)["gpus"]
    assert "cannot be split over 3 processes" in validate(TrainForm(gpus=3), cuda_count=4)["gpus"]
    assert "auto or cuda, not cpu" in validate(TrainForm(gpus=2, device="cpu"), cuda_count=2)["gpus"]
    assert "at least 1" in validate(TrainForm(gpus=0))["gpus"]
    # The form's sync_bn only means something with several GPUs.
    assert form_typed(TrainForm(gpus=1, sync_bn=True))[0].sync_bn is False
    assert "--sync-bn" in trainer_args(TrainForm(gpus=2, sync_bn=True), data_dir="/d", runs_dir="/r")
    assert launcher.trainer_command("py", "m", ["--x"]) == ["py", "-m", "m", "--x"]
    assert launcher.trainer_command("py", "m", ["--x"], 4) == [
        "py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4", "-m", "m", "--x"]


def test_a_run_of_several_processes_resumes_under_torchrun_with_as_many(tmp_path):
    run_dir = make_run(tmp_path, "ddp", state="stopped")
    config = json.loads((run_dir / "config.json").read_text())
    config["resolved"]["world_size"] = 2
    (run_dir / "config.json").write_text(json.dumps(config))
    launched = launcher.resume(run_dir, module="resnet_core.no_such_module")
    assert launched.argv[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m"]


@pytest.mark.parametrize("where", ["another run", "a folder outside"])
def test_deleting_a_symlinked_run_entry_removes_the_link_only(tmp_path, where):
    runs_dir = tmp_path / "runs"
    target = make_run(runs_dir if where == "another run" else tmp_path / "elsewhere", "target")
    alias = runs_dir / "alias"
    runs_dir.mkdir(exist_ok=True)
    alias.symlink_to(target, target_is_directory=True)
    # Listed, so that it can be deleted, but never read through: it is not a run folder.
    listed = {r.run_id: r for r in runs.list_runs(runs_dir)}
    assert listed["alias"].state == runs.UNREADABLE and "symbolic link" in listed["alias"].problem
    with pytest.raises(ValueError, match="cannot be read: .*symbolic link"):
        launcher.resume(alias)
    launcher.delete_run(alias, runs_dir)
    assert not os.path.lexists(alias)
    assert runs.read_run(target).state == "completed" and (target / runs.CONFIG_FILE).is_file()


def test_deleting_a_run_never_follows_a_link_inside_it(tmp_path):
    runs_dir = tmp_path / "runs"
    keep = tmp_path / "keep"
    (keep / "folder").mkdir(parents=True)
    (keep / "folder" / "weights.pt").write_bytes(b"precious")
    (keep / "file.pt").write_bytes(b"precious too")
    run = make_run(runs_dir, "linked")
    (run / runs.PREDICTIONS_DIR).mkdir(exist_ok=True)
    (run / runs.PREDICTIONS_DIR / "inner").symlink_to(keep / "folder", target_is_directory=True)
    (run / "elsewhere").symlink_to(keep / "folder", target_is_directory=True)
    (run / runs.BEST_CHECKPOINT).unlink(missing_ok=True)
    (run / runs.BEST_CHECKPOINT).symlink_to(keep / "file.pt")
    launcher.delete_run(run, runs_dir)
    assert not os.path.lexists(run)
    assert (keep / "folder" / "weights.pt").read_bytes() == b"precious"
    assert (keep / "file.pt").read_bytes() == b"precious too"


def test_delete_refuses_the_runs_folder_itself_and_dot_entries(tmp_path):
    runs_dir = tmp_path / "runs"
    make_run(runs_dir, "one")
    for bad in (runs_dir, runs_dir / ".", runs_dir / "..", runs_dir / ".sweeps"):
        with pytest.raises(ValueError, match="not a run folder"):
            launcher.delete_run(bad, runs_dir)
    assert runs_dir.is_dir() and len(runs.list_runs(runs_dir)) == 1


def test_a_delete_that_fails_midway_leaves_no_half_run_listed(tmp_path, monkeypatch):
    """rmtree stops at the first file it cannot remove: the run was left half-deleted and
    listed (its metrics gone, say). It leaves the runs folder at once (one rename), and what
    is left is a hidden folder the error names."""
    runs_dir = tmp_path / "runs"
    run, other = make_run(runs_dir, "doomed"), make_run(runs_dir, "kept")
    real_unlink = os.unlink

    def stubborn_unlink(path, *args, **kwargs):  # as a file of another user's, or immutable
        if os.fspath(path) == "status.json":
            raise PermissionError(1, "Operation not permitted", "status.json")
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", stubborn_unlink)
    with pytest.raises(OSError) as e:
        launcher.delete_run(run, runs_dir)
    assert [i.run_id for i in runs.list_runs(runs_dir)] == [other.name] and not os.path.lexists(run)
    left = [p for p in runs_dir.iterdir() if p.name.startswith(".") and p.is_dir()]
    assert len(left) == 1 and str(left[0]) in str(e.value) and "\n" not in str(e.value)


def test_a_sweep_whose_log_is_a_fifo_is_refused_at_once(tmp_path, cifar_dir):
    log = launcher.sweep_log(tmp_path, "fifo")
    log.parent.mkdir(parents=True)
    os.mkfifo(log)  # opened for writing, it would wait for a reader: the page would hang
    with pytest.raises(OSError, match="fifo.log is a FIFO"):
        launcher.launch_sweep("fifo", ["--vary", "depth=8,14"], data_dir=cifar_dir, runs_dir=tmp_path)


@pytest.mark.parametrize("value, nice", [("0", 0), (" 0 ", 0), ("", 10), ("5", 10), ("low", 10)])
def test_only_a_zero_trainer_nice_setting_turns_the_nice_off(monkeypatch, value, nice):
    import importlib

    monkeypatch.setenv("RESNET_STUDIO_TRAINER_NICE", value)
    try:
        assert importlib.reload(launcher).TRAINER_NICE == nice  # a mistyped value never stops the import
    finally:
        monkeypatch.setenv("RESNET_STUDIO_TRAINER_NICE", "0")
        importlib.reload(launcher)
