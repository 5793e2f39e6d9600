import json
import os
import subprocess
import sys
import time

import numpy as np

from resnet_core import runs


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
    runs.atomic_write_bytes(path, b'{"type": "step", "step": 1}\n{"type": "step", "step": 2}\n{"type": "step", "step": 3}\n')
    rows, cursor, restarted = runs.read_metrics_since(tmp_path, cursor)
    assert restarted and [r["step"] for r in rows] == [1, 2, 3]


def _fake_run(runs_dir, name, state, pid, created):
    run_dir = runs_dir / name
    run_dir.mkdir()
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, {"format_version": 1, "created": created, "config": {}})
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, {"state": state, "pid": pid})
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
    runs.save_predictions(tmp_path, "val", 2, labels=np.array([1, 2]))
    runs.save_predictions(tmp_path, "val", 10, labels=np.array([3]))
    runs.save_predictions(tmp_path, "train", 2, confusion=np.eye(2, dtype=np.int64))
    assert runs.recorded_epochs(tmp_path, "val") == [2, 10]
    assert runs.recorded_epochs(tmp_path, "test") == []
    assert runs.load_predictions(tmp_path, "val", 10)["labels"].tolist() == [3]
