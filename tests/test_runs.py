import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, wait_until
from fake_runs import BAD_PREDICTIONS, UNREADABLE_CASES, make_run, make_unreadable_run

from resnet_core import runs
from resnet_core.dashboard import runs_table
from resnet_core.runs.values import MAX_COUNT


def test_safe_name_never_makes_a_path():
    assert runs.safe_name("../../etc/passwd") == "etc-passwd"
    assert runs.safe_name("my run #1") == "my-run-1"
    assert runs.safe_name("///") == ""
    assert len(runs.safe_name("x" * 500)) == 48


def test_new_run_dirs_are_unique_and_inside_the_runs_dir(tmp_path):
    a = runs.new_run_dir(tmp_path, "../evil")
    b = runs.new_run_dir(tmp_path, "../evil")
    assert a != b and a.parent == tmp_path and b.parent == tmp_path and a.name.endswith("-evil")


def test_atomic_json_write_replaces_whole_files(tmp_path):
    path = tmp_path / "status.json"
    runs.atomic_write_json(path, {"state": "running"})
    runs.atomic_write_json(path, {"state": "completed"})
    assert json.loads(path.read_text()) == {"state": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp files left
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_metrics_are_read_incrementally_and_half_lines_wait(tmp_path):
    path = tmp_path / runs.METRICS_FILE
    path.write_text('{"type": "step", "step": 1}\n{"type": "st')
    rows, cursor, restarted = runs.read_metrics_since(tmp_path, None)
    assert [r["step"] for r in rows] == [1] and not restarted
    with open(path, "a") as f:
        f.write('ep", "step": 2}\n')
    rows, cursor, restarted = runs.read_metrics_since(tmp_path, cursor)
    assert [r["step"] for r in rows] == [2] and not restarted
    rows, cursor, _ = runs.read_metrics_since(tmp_path, cursor)
    assert rows == []
    # A resume rewrites the file (new inode): the reader starts over and says so.
    rows = b'{"type": "step", "step": 1}\n{"type": "step", "step": 2}\n{"type": "step", "step": 3}\n'
    runs.atomic_write_bytes(path, rows)
    rows, cursor, restarted = runs.read_metrics_since(tmp_path, cursor)
    assert restarted and [r["step"] for r in rows] == [1, 2, 3]


def _fake_run(runs_dir, name, state, pid, created):
    run_dir = runs_dir / name
    run_dir.mkdir()
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, {"format_version": runs.FORMAT_VERSION, "created": created,
                                                         "config": {}})
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, {"format_version": runs.FORMAT_VERSION, "state": state,
                                                         "pid": pid, "pid_start": runs.process_start_time(pid)})
    return run_dir


def test_list_runs_newest_first_and_a_dead_running_run_is_crashed(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    _fake_run(tmp_path, "a", "completed", None, 1)
    _fake_run(tmp_path, "b", "running", os.getpid(), 2)
    _fake_run(tmp_path, "c", "running", child.pid, 3)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / ".device-cpu.lock").write_text("")
    listed = runs.list_runs(tmp_path)
    assert [(r.run_id, r.state) for r in listed] == [("c", "crashed"), ("b", "running"), ("a", "completed")]
    assert not listed[0].can_resume  # crashed, but no checkpoint to resume from


def test_a_zombie_child_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(200):
        try:
            with open(f"/proc/{child.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.02)
    assert not runs.pid_alive(child.pid)
    assert runs.pid_alive(os.getpid())
    assert not runs.pid_alive(None)


def test_recorded_epochs_and_predictions_round_trip(tmp_path):
    def one(label):
        return dict(indices=np.array([7]), labels=np.array([label]), preds=np.array([label]),
                    topk_classes=np.array([[label, 0]]), topk_probs=np.array([[0.9, 0.1]], dtype=np.float32),
                    loss=np.array([0.1], dtype=np.float32))

    runs.save_predictions(tmp_path, "val", 2, **one(1))
    runs.save_predictions(tmp_path, "val", 10, **one(3))
    runs.save_predictions(tmp_path, "train", 2, confusion=np.eye(4, dtype=np.int64))
    assert runs.recorded_epochs(tmp_path, "val") == [2, 10]
    assert runs.recorded_epochs(tmp_path, "test") == []
    assert runs.load_predictions(tmp_path, "val", 10, num_classes=4)["labels"].tolist() == [3]
    assert runs.load_predictions(tmp_path, "train", 2, num_classes=4)["confusion"].shape == (4, 4)
    # Without num_classes the run's config.json says how many classes there are.
    runs.atomic_write_json(tmp_path / runs.CONFIG_FILE, {"classes": ["a", "b", "c", "d"]})
    assert runs.load_predictions(tmp_path, "val", 2)["preds"].tolist() == [1]


def test_recorded_epochs_are_counts_whatever_a_file_name_says(tmp_path):
    """An epoch number comes from a file's name: one past what a count holds (2**63 overflowed
    the int64 arrays of Explain's calibration) or below 1 is no epoch of the format."""
    runs.save_predictions(tmp_path, "val", 2, confusion=np.eye(2, dtype=np.int64))
    for epoch in (0, MAX_COUNT + 1, 2 ** 63, 10 ** 200):
        runs.prediction_path(tmp_path, "val", epoch).hardlink_to(runs.prediction_path(tmp_path, "val", 2))
    assert runs.recorded_epochs(tmp_path, "val") == [2]


# ----------------------------------------------------------------------------- bad folders never raise

@pytest.mark.parametrize("case", list(UNREADABLE_CASES))
def test_an_unreadable_folder_is_listed_with_its_reason_and_the_other_runs_read_as_before(tmp_path, case):
    good = make_run(tmp_path, "good", created=time.time() - 10)
    bad = make_unreadable_run(tmp_path, case, state="stopped")
    info = runs.read_run(bad)
    assert info.state == runs.UNREADABLE and not info.is_active and not info.can_resume
    assert case.split()[0] in info.problem and "\n" not in info.problem and len(info.problem) < 160
    listed = {r.run_id: (r.state, r.problem) for r in runs.list_runs(tmp_path)}
    assert listed == {good.name: ("completed", None), bad.name: (runs.UNREADABLE, info.problem)}
    # What else a page reads of it does not raise either.
    assert [r["epoch"] for r in runs.read_metrics(bad) if r["type"] == "epoch"] == [1, 2, 3]
    assert runs.recorded_epochs(bad, "val") == [1, 2, 3]


@pytest.mark.parametrize("pid", ["1234", 2 ** 40, -1, True, 0, None, 1.5, [1]])
def test_a_bad_pid_is_never_alive_and_never_raises(pid):
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)  # until it has exited, unreaped
    assert runs.pid_alive(pid) is False
    assert runs.process_start_time(pid) is None
    assert runs.trainer_alive({"pid": pid, "pid_start": 1}) is False
    assert runs.trainer_alive({"pid": pid}) is False
    # waitpid(-1) or waitpid(0) would have reaped some child of ours, stealing its exit status.
    assert child.wait() == 3


def test_process_start_time_reads_field_22_past_a_command_name_with_spaces_and_parentheses(tmp_path):
    own = open("/proc/self/stat").read()  # this process: python, a plain name
    assert runs.process_start_time(os.getpid()) == int(own.rsplit(")", 1)[1].split()[19])
    odd = tmp_path / "x) 1 2 (y"  # the kernel names a process after the file it runs
    odd.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(odd), "30"])
    try:
        prefix = f"{proc.pid} (x) 1 2 (y) "
        deadline = time.time() + 10
        while not (stat := open(f"/proc/{proc.pid}/stat").read()).startswith(prefix) and time.time() < deadline:
            time.sleep(0.01)  # until the forked copy of this process has become sleep
        assert stat.startswith(prefix)
        assert runs.process_start_time(proc.pid) == int(stat[len(prefix):].split()[19])
    finally:
        proc.kill()
        proc.wait()


def test_process_start_time_is_read_again_when_the_boot_time_moves_between_reads(monkeypatch):
    """psutil adds /proc/stat's boot time to the kernel's ticks; a step of the clock between
    two reads of it must not change the ticks a pid_start compares with."""
    expected = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    platform = runs.processes.psutil._psplatform  # where psutil's create_time reads the boot time too
    boot, reads = platform.boot_time(), []

    def stepped() -> float:  # the clock steps a second after the first read
        reads.append(None)
        return boot if len(reads) == 1 else boot + 1

    monkeypatch.setattr(platform, "boot_time", stepped)
    assert runs.process_start_time(os.getpid()) == expected and len(reads) > 3


def test_without_kernel_start_times_a_record_is_alive_by_its_command_line(monkeypatch):
    """macOS: no pid_start is written, and a record's is not compared; the trainer's module
    on the command line tells a trainer from another process."""
    monkeypatch.setattr(runs.processes.sys, "platform", "darwin")
    assert runs.process_start_time(os.getpid()) is None
    python = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "-m", "resnet_core.train"])
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.time() + 10
        while b"time.sleep" not in open(f"/proc/{python.pid}/cmdline", "rb").read() and time.time() < deadline:
            time.sleep(0.01)
        assert runs.trainer_alive({"pid": python.pid, "pid_start": 12345})
        assert not runs.trainer_alive({"pid": sleeper.pid, "pid_start": 12345})
    finally:
        for proc in (sleeper, python):
            proc.kill()
            proc.wait()


def test_a_reused_pid_never_makes_a_run_look_alive(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    python = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "-m", "resnet_core.train"])
    try:
        deadline = time.time() + 10
        while b"time.sleep" not in open(f"/proc/{python.pid}/cmdline", "rb").read() and time.time() < deadline:
            time.sleep(0.01)  # until it has replaced the forked copy of this process
        start = runs.process_start_time(sleeper.pid)
        assert runs.trainer_alive({"pid": sleeper.pid, "pid_start": start})
        # The same pid, started at another time: another process got the dead trainer's pid.
        assert not runs.trainer_alive({"pid": sleeper.pid, "pid_start": start + 1})
        # Format 1 recorded no start time: only a process running resnet_core.train passes.
        assert not runs.trainer_alive({"pid": sleeper.pid})
        assert runs.trainer_alive({"pid": python.pid})
        run_dir = make_run(tmp_path, "reused", state="running", pid=sleeper.pid, epochs_done=1)
        assert runs.read_run(run_dir).state == "running"
        status = json.loads((run_dir / runs.STATUS_FILE).read_text())
        runs.atomic_write_json(run_dir / runs.STATUS_FILE, {**status, "pid_start": start + 1})
        assert runs.read_run(run_dir).state == runs.CRASHED
    finally:
        for proc in (sleeper, python):
            proc.kill()
            proc.wait()


def _set_versions(run_dir, config_version, status_version, **status_changes):
    for name, version, changes in ((runs.CONFIG_FILE, config_version, {}),
                                   (runs.STATUS_FILE, status_version, status_changes)):
        record = json.loads((run_dir / name).read_text())
        runs.atomic_write_json(run_dir / name, {**record, **changes, "format_version": version})


def test_a_newer_format_is_read_only_and_format_1_reads_but_does_not_resume(tmp_path):
    newer = make_run(tmp_path, "newer", state="stopped", epochs_done=2, total_epochs=4)
    _set_versions(newer, runs.FORMAT_VERSION, runs.FORMAT_VERSION + 1, state="paused")  # a state we do not know
    info = runs.read_run(newer)
    assert info.read_only and info.state == "paused" and info.problem is None
    assert "newer" in info.note and "read-only" in info.note
    assert not info.can_resume and (newer / runs.LAST_CHECKPOINT).exists()

    old = make_run(tmp_path, "v1", state="stopped", epochs_done=2, total_epochs=4, val_source="test")
    _set_versions(old, 1, 1)
    info = runs.read_run(old)
    assert (info.state, info.read_only, info.problem) == ("stopped", False, None)
    assert info.config["resolved"]["val_source"] == "test" and info.status["epoch"] == 2
    assert "format 1" in info.note and not info.can_resume

    same = runs.read_run(make_run(tmp_path, "same", state="stopped", epochs_done=2, total_epochs=4))
    assert same.note is None and not same.read_only and same.can_resume


def test_temp_files_of_a_killed_writer_go_when_no_trainer_writes_to_the_folder(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        folders = {
            "stopped": make_run(tmp_path, "stopped", state="stopped", epochs_done=1),
            "crashed": make_run(tmp_path, "crashed", state="running", pid=999_999_999, epochs_done=1),
            "running": make_run(tmp_path, "running", state="running", pid=sleeper.pid, epochs_done=1),
            "unreadable": make_unreadable_run(tmp_path, "status a list", epochs_done=1),
            "read-only": make_run(tmp_path, "read-only", epochs_done=1),
        }
        _set_versions(folders["read-only"], runs.FORMAT_VERSION + 1, runs.FORMAT_VERSION + 1)
        old = time.time() - 2 * runs.STALE_TEMP_AGE_S
        temps = {}
        for what, run_dir in folders.items():
            temps[what] = [run_dir / ".status.json.k2j4.tmp", run_dir / ".last.pt.tmp",
                           run_dir / runs.PREDICTIONS_DIR / ".val_epoch_002.npz.x1y2.tmp"]
            for path in temps[what]:
                path.write_bytes(b"half")
                os.utime(path, (old, old))
            (run_dir / ".notes").write_text("mine")  # hidden, but not a temp file
            (run_dir / "draft.tmp").write_text("mine")  # a temp name, but not hidden: not ours
        fresh = folders["stopped"] / ".config.json.abcd.tmp"  # a trainer resumed a moment ago may write it
        fresh.write_bytes(b"being written")

        assert {r.state for r in runs.list_runs(tmp_path)} >= {"stopped", runs.CRASHED, "running", runs.UNREADABLE}
        assert all(p.exists() for paths in temps.values() for p in paths)  # reading never writes
        runs.RunWriter(tmp_path / "new run")  # a trainer starting beside them: its writer's maintenance
        for what, paths in temps.items():
            gone = what in ("stopped", "crashed")
            assert [p.exists() for p in paths] == [not gone] * 3, what
            assert (folders[what] / ".notes").exists() and (folders[what] / "draft.tmp").exists()
        assert fresh.exists()
        # The trainer calls it on resume, when no age matters: nothing else writes there then.
        assert runs.remove_stale_temp_files(folders["stopped"]) == [fresh]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_listing_reads_each_record_again_once_it_changes(tmp_path):
    a = make_run(tmp_path, "a", state="stopped", created=100.0)
    b = make_run(tmp_path, "b", state="completed", created=200.0)
    assert [(r.run_id, r.state) for r in runs.list_runs(tmp_path)] == [(b.name, "completed"), (a.name, "stopped")]

    status = json.loads((a / runs.STATUS_FILE).read_text())
    runs.atomic_write_json(a / runs.STATUS_FILE, {**status, "state": "failed", "error": "boom"})  # as a writer does
    config = json.loads((b / runs.CONFIG_FILE).read_text())
    (b / runs.CONFIG_FILE).write_text(json.dumps({**config, "created": 50.0}))  # rewritten in place
    listed = runs.list_runs(tmp_path)
    assert [(r.run_id, r.state) for r in listed] == [(a.name, "failed"), (b.name, "completed")]
    assert listed[0].status["error"] == "boom"

    before = (a / runs.STATUS_FILE).stat()
    (a / runs.STATUS_FILE).write_text((a / runs.STATUS_FILE).read_text().replace('"boom"', '"bang"'))
    os.utime(a / runs.STATUS_FILE, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `cp -p` leaves it: same size too
    assert {r.run_id: r.status["error"] for r in runs.list_runs(tmp_path)}[a.name] == "bang"

    (a / runs.STATUS_FILE).write_text("{ not json")
    assert {r.run_id: r.state for r in runs.list_runs(tmp_path)}[a.name] == runs.UNREADABLE
    (a / runs.CONFIG_FILE).unlink()  # status.json without config.json: still a run (its trainer's first record)
    assert {r.run_id: r.state for r in runs.list_runs(tmp_path)}[a.name] == runs.UNREADABLE
    (a / runs.STATUS_FILE).unlink()  # neither: not a run folder (yet)
    assert [r.run_id for r in runs.list_runs(tmp_path)] == [b.name]


def test_a_listing_sees_a_trainer_die_without_a_change_to_its_records(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        make_run(tmp_path, "live", state="running", pid=sleeper.pid, epochs_done=1)
        assert runs.list_runs(tmp_path)[0].state == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert runs.list_runs(tmp_path)[0].state == runs.CRASHED


def test_a_listing_survives_another_session_listing_new_folders_meanwhile(tmp_path):
    """Each session of the server lists the runs in its own thread."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for i in range(30):
        make_run(mine, f"r{i}")
    theirs.mkdir()
    stop, errors = threading.Event(), []

    def other_session() -> None:  # folders come and go there: its listings add and drop what list_runs keeps
        i = 0
        try:
            while not stop.is_set():
                (theirs / f"n{i}").mkdir()
                runs.list_runs(theirs)
                (theirs / f"n{i}").rmdir()
                i += 1
        except Exception as e:
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads take turns often, as on a busy server
    other = threading.Thread(target=other_session)
    other.start()
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5 and not errors:
            assert len(runs.list_runs(mine)) == 30
    finally:
        stop.set()
        other.join()
        sys.setswitchinterval(interval)
    assert not errors


def test_maintenance_sweeps_a_folder_for_temp_files_at_most_every_stale_age(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(runs.cleanup.time, "monotonic", lambda: clock[0])
    run_dir = make_run(tmp_path, "stopped", state="stopped", epochs_done=1)
    old = time.time() - 2 * runs.STALE_TEMP_AGE_S
    first = run_dir / ".last.pt.tmp"
    first.write_bytes(b"half")
    os.utime(first, (old, old))
    runs.remove_stale_temps(tmp_path)
    assert not first.exists()

    second = run_dir / ".status.json.k2j4.tmp"
    second.write_bytes(b"half")
    os.utime(second, (old, old))
    clock[0] += runs.STALE_TEMP_AGE_S / 2
    runs.remove_stale_temps(tmp_path)
    assert second.exists()  # swept half a minute ago
    clock[0] += runs.STALE_TEMP_AGE_S / 2
    runs.remove_stale_temps(tmp_path)
    assert not second.exists()


def test_metrics_rows_that_are_not_rows_of_the_format_are_skipped(tmp_path):
    good = [{"type": "step", "epoch": 1, "step": 5, "loss": 1.0}, {"type": "epoch", "epoch": 1, "step": 10},
            {"type": "test", "epoch": 1, "test_acc": 0.5}, {"type": "note", "text": "kept: no epoch is needed"}]
    lines = [json.dumps(good[0]).encode(), b"42", b"[1, 2]", b'"a string"', b"null", b"\xff\xfe binary",
             '{"type": "step", "epoch": 1, "step": 6, "loss": "caf\xe9"}'.encode("latin-1"),
             json.dumps(good[1]).encode(), b'{"type": "step", "epoch": "1", "step": 7}',
             b'{"type": "epoch", "epoch": 2, "step": null}', b'{"type": "test", "epoch": [2]}',
             b'{"type": "step", "epoch": 1, "step": 1' + b"0" * 400 + b'}', b'{"type": "epoch", "epoch": -1}',
             b"[" * 100_000, json.dumps(good[2]).encode(), json.dumps(good[3]).encode()]
    (tmp_path / runs.METRICS_FILE).write_bytes(b"\n".join(lines) + b"\n")
    assert runs.read_metrics(tmp_path) == good


def test_each_line_is_one_row_or_none(tmp_path):
    """A line holding two objects, an object cut over two lines, or lines whose strings
    would join into objects if read together, are no rows; the rows around them are kept."""
    good = [{"type": "step", "epoch": 1, "step": s, "loss": 1.0 / (s + 1)} for s in range(5)]
    lines = [json.dumps(good[0]), '{"type": "step", "epoch": 1, "step": 90}, {"type": "note"}', json.dumps(good[1]),
             '{"type": "step", "epoch": 1,', '"step": 91}', json.dumps(good[2]),
             '{"type": "step", "epoch": 1, "step": 92},{"type": "step", "epoch": 1, "step": 93}', '{"k": "}', '{"}',
             "  " + json.dumps(good[3]) + "  ", json.dumps(good[4]) + " trailing"]
    (tmp_path / runs.METRICS_FILE).write_text("\n".join(lines) + "\n")
    assert runs.read_metrics(tmp_path) == good[:4]  # spaces around a row are JSON's; trailing text is not


@pytest.mark.parametrize("make_bad", [lambda p: p.mkdir(), lambda p: p.symlink_to("/etc/hostname"),
                                      lambda p: os.mkfifo(p)], ids=["a folder", "a symlink", "a FIFO"])
def test_a_metrics_file_that_is_no_file_reads_as_none(tmp_path, make_bad):
    make_bad(tmp_path / runs.METRICS_FILE)
    assert runs.read_metrics_since(tmp_path, None) == ([], None, False)


@pytest.mark.parametrize("case", list(BAD_PREDICTIONS))
def test_damaged_or_inconsistent_predictions_raise_one_documented_error(tmp_path, case):
    run_dir = make_run(tmp_path, "r", epochs_done=2, total_epochs=2)
    split, damage = BAD_PREDICTIONS[case]
    damage(run_dir)
    assert 1 in runs.recorded_epochs(run_dir, split)
    with pytest.raises(runs.RunFolderError, match=rf"predictions/{split}_epoch_001\.npz") as e:
        runs.load_predictions(run_dir, split, 1)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)
    assert runs.load_predictions(run_dir, split, 2)  # the other epochs still load
    assert runs.read_run(run_dir).state == "completed"


def test_predictions_are_read_only_from_inside_the_run_folder(tmp_path):
    run_dir = make_run(tmp_path, "r", epochs_done=1, total_epochs=1)
    elsewhere = tmp_path / "elsewhere"
    (run_dir / runs.PREDICTIONS_DIR).rename(elsewhere)
    (run_dir / runs.PREDICTIONS_DIR).symlink_to(elsewhere)
    assert runs.recorded_epochs(run_dir, "val") == []
    with pytest.raises(runs.RunFolderError, match="symbolic link"):
        runs.load_predictions(run_dir, "val", 1)
    with pytest.raises(runs.RunFolderError, match="does not exist"):
        runs.load_predictions(make_run(tmp_path, "none", epochs_done=0), "val", 1)
    no_classes = make_run(tmp_path, "no-classes", epochs_done=1, total_epochs=1)
    config = json.loads((no_classes / runs.CONFIG_FILE).read_text())
    runs.atomic_write_json(no_classes / runs.CONFIG_FILE, {**config, "classes": None})
    with pytest.raises(runs.RunFolderError, match="lists no classes"):
        runs.load_predictions(no_classes, "val", 1)


def test_a_run_folder_that_cannot_be_opened_is_unreadable_not_an_error(tmp_path, monkeypatch):
    locked = make_run(tmp_path, "locked")
    good = make_run(tmp_path, "good")
    real_open = os.open

    def no_access(path, flags, *args, **kwargs):  # as for another user's 0700 folder (tests run as root)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_access)
    states = {r.path: (r.state, r.problem) for r in runs.list_runs(tmp_path)}
    assert states[good] == ("completed", None)
    assert states[locked][0] == runs.UNREADABLE and "cannot be opened (Permission denied)" in states[locked][1]


@pytest.mark.slow
def test_only_one_process_writes_a_run_folder(tmp_path):
    fd = runs.claim_run_dir(tmp_path)
    try:
        with pytest.raises(runs.RunBusy, match="being written by another trainer"):
            subprocess_claim(tmp_path)
    finally:
        os.close(fd)
    subprocess_claim(tmp_path)  # free again once the holder lets go
    assert list(tmp_path.iterdir()) == []  # the claim creates no file


def subprocess_claim(folder):
    """claim_run_dir from another process, as a second trainer would try it."""
    code = ("import sys; from resnet_core import runs\n"
            "try:\n    runs.claim_run_dir(sys.argv[1])\nexcept runs.RunBusy as e:\n    print(e); sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode == 3:
        raise runs.RunBusy(result.stdout.strip())
    assert result.returncode == 0, result.stderr


def test_run_info_reads_config_json_through_typed_properties(tmp_path):
    info = runs.read_run(make_run(tmp_path, "typed", state="completed", epochs_done=1, total_epochs=1))
    assert info.train_config["depth"] == 20 and info.train_config["block"] == "basic"
    assert info.resolved["device"] == "cpu" and info.resolved["steps_per_epoch"] > 0
    assert info.model_name == "ResNet-20"
    assert info.classes[:2] == ["airplane", "automobile"] and len(info.classes) == 10
    assert info.state == "completed" and info.state_enum is runs.State.COMPLETED
    # A missing model record falls back to the depth, then to nothing.
    info.config = {"config": {"depth": 56}}
    assert (info.model_name, info.classes, info.resolved) == ("ResNet-56", [], {})
    info.config = {}
    assert (info.train_config, info.resolved, info.model_name, info.classes) == ({}, {}, "", [])


def test_run_info_properties_never_raise_for_odd_values(tmp_path):
    info = runs.RunInfo(path=tmp_path, run_id="odd", state="running",
                        config={"config": ["depth", 20], "resolved": "cpu", "model": {"name": 20},
                                "classes": "airplane,automobile"})
    assert (info.train_config, info.resolved, info.model_name, info.classes) == ({}, {}, "20", [])
    info.config = {"model": {"name": ["ResNet"]}, "classes": ["cat", 7, None]}
    assert info.model_name == "['ResNet']" and info.classes == ["cat", "7", "None"]
    info.config = {"model": ["ResNet-20"], "config": {"depth": {"n": 3}}}
    assert info.model_name == "ResNet-{'n': 3}"
    info.config = {"model": {"name": ""}, "config": {"depth": None}}
    assert info.model_name == ""
    info.config = None  # not even a dict
    assert (info.train_config, info.resolved, info.model_name, info.classes) == ({}, {}, "", [])


def test_state_is_a_string_enum_and_states_lists_the_written_ones():
    assert runs.State.RUNNING == "running" and str(runs.State.CRASHED) == runs.CRASHED
    assert f"{runs.State.UNREADABLE}" == runs.UNREADABLE == runs.State.UNREADABLE
    assert runs.STATES == ("queued", "running", "completed", "stopped", "failed", "diverged")
    assert set(runs.ACTIVE_STATES) | set(runs.RESUMABLE_STATES) <= {s.value for s in runs.State}
    assert runs.RunInfo(path=Path("."), run_id="x", state="paused").state_enum is None  # a newer format's state
    assert runs.RunInfo(path=Path("."), run_id="x", state=runs.CRASHED).state_enum is runs.State.CRASHED


def test_an_unreadable_folder_has_empty_typed_properties(tmp_path):
    run_dir = make_run(tmp_path, "bad")
    (run_dir / runs.CONFIG_FILE).write_text('{"config": [1, 2], "classes": "x"}')
    info = runs.read_run(run_dir)
    assert info.state_enum is runs.State.UNREADABLE and info.problem
    assert (info.train_config, info.resolved, info.model_name, info.classes) == ({}, {}, "", [])


def test_a_trainer_on_another_machine_lives_by_its_heartbeat_and_is_never_signalled(tmp_path):
    """Its pid means nothing here: it is running while status.json was rewritten within
    STALE_S, crashed after, and Stop never signals a local process with that pid."""
    now = time.time()
    mine = {"pid": os.getpid(), "pid_start": runs.process_start_time(os.getpid()), "host": runs.this_host()}
    assert runs.remote_host(mine) is None and runs.remote_host({"pid": 1}) is None  # no host: written here
    elsewhere = {**mine, "host": "gpu-node-7", "updated_at": now - 5}
    assert runs.remote_host(elsewhere) == "gpu-node-7"
    assert runs.trainer_alive(elsewhere, now=now)
    assert not runs.trainer_alive({**elsewhere, "updated_at": now - runs.STALE_S - 1}, now=now)
    assert not runs.trainer_alive({**elsewhere, "updated_at": "soon"}, now=now)
    assert not runs.signal_trainer(elsewhere)  # our own pid, on "another" machine: left alone
    run_dir = make_run(tmp_path, "remote", state="running")
    status = json.loads((run_dir / "status.json").read_text())
    for age, state in ((5, "running"), (runs.STALE_S + 5, "crashed")):
        status.update(host="gpu-node-7", updated_at=time.time() - age, pid=os.getpid())
        (run_dir / "status.json").write_text(json.dumps(status))
        assert runs.read_run(run_dir).state == state


def test_the_writer_records_its_host_and_rewrites_a_quiet_status_as_a_heartbeat(tmp_path):
    writer = runs.RunWriter(tmp_path)
    writer.set_status(state="running")
    first = json.loads((tmp_path / "status.json").read_text())
    assert first["host"] == runs.this_host()
    writer.heartbeat()  # just written: nothing to do
    assert json.loads((tmp_path / "status.json").read_text())["updated_at"] == first["updated_at"]
    writer.status["updated_at"] -= runs.HEARTBEAT_S
    writer.heartbeat()
    assert json.loads((tmp_path / "status.json").read_text())["updated_at"] > first["updated_at"]


def test_heartbeats_keep_a_quiet_status_fresh_until_the_run_leaves_them(tmp_path, monkeypatch):
    from resnet_core.runs import writing

    monkeypatch.setattr(writing, "HEARTBEAT_S", 0.1)  # the thread's period and the heartbeat's age both follow
    writer = runs.RunWriter(tmp_path)
    writer.set_status(state="queued")

    def updated() -> float:
        return json.loads((tmp_path / "status.json").read_text())["updated_at"]

    first = updated()
    with writer.heartbeats():  # nothing else writes meanwhile, as in a long wait in the queue
        assert wait_until(lambda: updated() > first), "no heartbeat in 60 s"
    left = updated()
    time.sleep(0.4)  # four periods without a heartbeat (what is checked is that none comes)
    assert updated() == left  # a run that ends without a final state goes quiet: readers elsewhere see it gone
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "queued"


def test_a_runs_checkpoints_are_named_as_a_user_picks_them(tmp_path):
    run_dir = make_run(tmp_path, "ckpt")  # last.pt only, as a run without a validation split holds
    assert runs.read_run(run_dir).checkpoints == {"last": runs.LAST_CHECKPOINT}
    (run_dir / runs.BEST_CHECKPOINT).write_bytes(b"x")
    assert runs.read_run(run_dir).checkpoints == {"best": runs.BEST_CHECKPOINT, "last": runs.LAST_CHECKPOINT}
    (run_dir / runs.LAST_CHECKPOINT).unlink()
    assert list(runs.read_run(run_dir).checkpoints) == ["best"]


def test_a_heartbeat_from_the_future_is_clock_skew_and_goes_stale_after_the_usual_window(tmp_path):
    """A status.json whose updated_at is far ahead of this clock must not pin a run as running
    forever: the record is as old as its file says (or as since this reader first saw it), and
    the run says why it is judged so."""
    run_dir = make_run(tmp_path, "skewed", state="running")
    status = json.loads((run_dir / "status.json").read_text())
    status.update(host="gpu-node-7", updated_at=time.time() + 10 ** 6, pid=os.getpid())
    (run_dir / "status.json").write_text(json.dumps(status))
    fresh = runs.read_run(run_dir)
    assert fresh.state == "running" and "clock" in fresh.warning  # written just now: may still be alive
    old = time.time() - runs.STALE_S - 5
    os.utime(run_dir / "status.json", (old, old))
    stale = runs.read_run(run_dir)
    assert stale.state == "crashed" and "clock" in stale.warning and "status.json" in stale.warning

    assert runs_table.run_summary_row(stale)["problem"] == stale.warning  # the Runs table says why
    # Without a file time to go by (or one from the future too): stale STALE_S after first seen.
    now = time.time()
    seen = {**status, "updated_at": now + 10 ** 6 + 1}
    assert runs.trainer_alive(seen, now=now, written_at=now + 10 ** 6)
    assert runs.trainer_alive(seen, now=now + runs.STALE_S - 1)
    assert not runs.trainer_alive(seen, now=now + runs.STALE_S + 1)
    assert runs.trainer_alive({**seen, "updated_at": now + 10 ** 6 + 11}, now=now + runs.STALE_S + 1)  # a new beat


def test_a_trainer_dead_before_its_config_reads_failed_to_start_with_its_last_words(tmp_path):
    folder = runs.new_run_dir(tmp_path, "early")
    runs.atomic_write_json(folder / runs.STATUS_FILE, {"format_version": runs.FORMAT_VERSION, "state": "queued",
                                                       "pid": 999_999_999, "created_at": time.time()})
    (folder / runs.CONSOLE_FILE).write_text("loading\nRuntimeError: operator torchvision::nms does not exist\n\n")
    (info,) = runs.list_runs(tmp_path)
    assert info.state == runs.FAILED_TO_START and not info.is_active and not info.can_resume
    assert info.warning.endswith("RuntimeError: operator torchvision::nms does not exist")
    # Its format is status.json's: the missing config.json does not make it an old (version 1) run.
    assert info.note is None and not info.read_only
    assert runs_table.run_summary_row(info)["problem"] == info.warning  # the Runs table says why it died
    alive = {"pid": os.getpid(), "pid_start": runs.process_start_time(os.getpid())}
    runs.atomic_write_json(folder / runs.STATUS_FILE, {"state": "queued", "created_at": time.time(), **alive})
    assert runs.read_run(folder).state == "queued"  # its trainer lives: it is about to write config.json
    (folder / runs.CONSOLE_FILE).unlink()
    runs.atomic_write_json(folder / runs.STATUS_FILE, {"state": "queued", "pid": 999_999_999})
    assert "said nothing" in runs.read_run(folder).warning
    runs.atomic_write_json(folder / runs.STATUS_FILE, {"state": "completed"})  # past config.json: it was lost
    assert (runs.read_run(folder).state, runs.read_run(folder).problem) == (runs.UNREADABLE, "config.json is missing")


def test_a_folder_with_only_the_trainers_output_is_failed_to_start_once_quiet(tmp_path):
    folder = runs.new_run_dir(tmp_path, "refused")
    (folder / runs.CONSOLE_FILE).write_text("train.py: error: argument --depth: invalid int value: 'x'\n")
    assert runs.list_runs(tmp_path) == []  # its trainer may still be importing torch
    assert runs.starting_run_ids(tmp_path) == [folder.name]  # which the Monitor offers, as starting
    quiet = time.time() - runs.STALE_S - 1
    for path in (folder / runs.CONSOLE_FILE, folder):
        os.utime(path, (quiet, quiet))
    (info,) = runs.list_runs(tmp_path)
    assert info.state == runs.FAILED_TO_START and info.warning.endswith("invalid int value: 'x'")
    assert runs.starting_run_ids(tmp_path) == []


def test_the_last_progress_line_a_starting_trainer_printed_reads_back_whole(tmp_path):
    """What the trainer prints while it downloads or decodes (StartingProgress.line) is read
    back from console.log, a long folder's path whole; any other last line is no progress."""
    folder = runs.new_run_dir(tmp_path, "decoding")
    assert runs.starting_progress(folder) is None  # no output yet
    step = runs.StartingProgress(f"decoding the images of /data/{'deep/' * 80}photos", 18_000, 60_000, "images")
    assert step.line.endswith("photos: 18,000 of 60,000 images (30%)") and len(step.line) > 400
    (folder / runs.CONSOLE_FILE).write_text(f"{runs.StartingProgress('x', 0, 60_000, 'images').line}\n{step.line}\n")
    assert runs.starting_progress(folder) == step
    with open(folder / runs.CONSOLE_FILE, "a") as f:
        f.write("INFO run folder: /runs/x\n")
    assert runs.starting_progress(folder) is None
    (folder / runs.CONSOLE_FILE).write_text("decoding: 7 of 5 images (140%)\n")  # more than all: not believed
    assert runs.starting_progress(folder) is None
@pytest.mark.parametrize("make", [lambda p: os.mkfifo(p), lambda p: p.mkdir(), lambda p: p.symlink_to(p.parent / "x")],
                         ids=["a FIFO", "a folder", "a symlink"])
def test_a_log_opened_for_appending_is_a_regular_file_or_refused_at_once(tmp_path, make):
    """A FIFO would block the open until a reader came (a hung trainer or page); a link
    would send the lines elsewhere."""
    path = tmp_path / "train.log"
    make(path)
    before = os.lstat(path)
    with pytest.raises(OSError, match="train.log"):
        runs.open_for_append(path)
    assert (os.lstat(path).st_ino, os.lstat(path).st_mode) == (before.st_ino, before.st_mode)
    assert not (tmp_path / "x").exists()
    with runs.open_for_append(tmp_path / "new.log") as f:
        f.write("a line\n")
    with runs.open_for_append(tmp_path / "new.log") as f:
        f.write("another\n")
    assert (tmp_path / "new.log").read_text() == "a line\nanother\n"


def test_dataset_and_superclasses_read_from_the_record_and_odd_values_read_as_none():
    record = {"config": {"dataset": "cifar100"}, "classes": ["apple", "bee", "cup"],
              "superclasses": ["fruit", "insects"], "superclass_of": [0, 1, 0]}
    info = runs.RunInfo(Path("."), "r", "completed", config=record)
    assert (info.dataset, info.superclasses, info.superclass_of) == ("cifar100", ["fruit", "insects"], [0, 1, 0])
    before_the_field = runs.RunInfo(Path("."), "r", "completed", config={"config": {}})
    assert before_the_field.dataset == "cifar10"
    for odd in ({"superclass_of": [0, 1]}, {"superclass_of": [0, 2, 0]}, {"superclass_of": [0, True, 0]},
                {"superclass_of": "0,1,0"}, {"superclasses": ["fruit", 3]}):
        info = runs.RunInfo(Path("."), "r", "completed", config={**record, **odd})
        assert info.superclass_of == [], odd
