"""Sweep records a person or a bug could have written: each is read, shown, reported and
refused for resume in one line (never a traceback), and a refusal leaves no file behind.
A point whose trainer exited before it started reads "failed to start", with its reason."""

import copy
import json
import os
import time
import shutil

import pytest
from conftest import ROOT
from test_sweep import TINY, run_folders

from resnet_core import runs
from resnet_core.sweep import main
from resnet_core.sweep_options import RECORD_OPTIONS

GOOD = {"format_version": 1, "name": "h", "argv": ["--epochs", "1"],
        "vary": [{"field": "depth", "values": [8, 14]}, {"field": "seed", "values": [0, 1]}],
        "parallel": 2, "device_slots": 1, "executor": "local", "address": None, "cpus_per_trial": None,
        "points": [{"values": {"depth": d, "seed": s}, "run": None} for d in (8, 14) for s in (0, 1)],
        "state": "stopped", "pid": None, "pid_start": None, "created_at": 1.5e9, "finished_at": None}
HUGE = "9" * 5000  # past Python's 4,300-digit limit for int("...")


def edited(change):
    record = copy.deepcopy(GOOD)
    change(record)
    return json.dumps(record)


def point(i, **values):
    return lambda r: r["points"][i]["values"].update(values)


def top(**fields):
    return lambda r: r.update(fields)


HOSTILE = [
    ("unknown point field", edited(point(0, bogus=1)), "point 1: bogus is not a training option"),
    ("argv a string", edited(top(argv="--epochs 1")), "argv is a string, not a list of strings"),
    ("argv with a number", edited(top(argv=["--epochs", 1])), "argv holds a number, not only strings"),
    ("argv unknown flag", edited(top(argv=["--bogus"])), "argv: unrecognized arguments: --bogus"),
    ("argv bad value", edited(top(argv=["--epochs", "x"])), "argv: argument --epochs: invalid int value: 'x'"),
    ("argv NUL", edited(top(argv=["--data-dir", "a\0b"])), "argv holds a NUL character"),
    ("vary unknown field", edited(lambda r: r["vary"][0].update(field="bogus")),
     "vary: bogus is not a training option"),
    ("vary fixed field", edited(lambda r: r["vary"][0].update(field="runs_dir")), "vary: runs_dir cannot be varied"),
    ("vary twice", edited(lambda r: r["vary"][1].update(field="depth")), "vary: depth is varied twice"),
    ("vary no values", edited(lambda r: r["vary"][0].update(values=[])), "vary: depth has no values"),
    ("vary repeated value", edited(lambda r: r["vary"][0].update(values=[8, 8])), "vary: depth holds 8 twice"),
    ("point value type", edited(point(0, seed="x")), "point 1: seed 'x' is not a whole number"),
    ("point bool for int", edited(point(0, seed=True)), "point 1: seed True is not a whole number"),
    ("vary choice", edited(top(vary=[{"field": "shortcut", "values": ["Z"]}],
                               points=[{"values": {"shortcut": "Z"}, "run": None}])),
     "vary: shortcut 'Z' is not one of"),
    ("seed 2**63", edited(point(0, seed=2 ** 63)), "point 1: seed 9223372036854775808 is out of range"),
    ("lr NaN", edited(top(vary=[{"field": "lr", "values": [float("nan")]}],
                          points=[{"values": {"lr": float("nan")}, "run": None}])),
     "vary: lr nan is not a finite number"),
    ("not the grid", edited(lambda r: r["points"].reverse()),
     "point 1: its values are not combination 1 of vary's grid"),
    ("point missing a field", edited(lambda r: r["points"][0]["values"].pop("seed")),
     "point 1: its values are not combination 1 of vary's grid"),
    ("grid size", edited(lambda r: r["points"].pop()), "3 points, but vary makes a grid of 4"),
    ("grid of billions", edited(top(vary=[{"field": f, "values": list(range(1, 41))} for f in
                                          ("depth", "epochs", "seed", "split_seed", "subset", "log_every")])),
     "4 points, but vary makes a grid of 4,096,000,000"),
    ("point not an object", edited(lambda r: r["points"].__setitem__(0, [1])), "point 1 is a list, not an object"),
    ("point extra key", edited(lambda r: r["points"][0].update(extra=1)), "point 1: extra is not a point field"),
    ("one run twice", edited(lambda r: [p.update(run="20260101-000000-x") for p in r["points"][:2]]),
     "points 1 and 2 both name run 20260101-000000-x"),
    ("run a path", edited(lambda r: r["points"][0].update(run="../x")), "point 1: run '../x' is not a run folder"),
    ("parallel 2**63", edited(top(parallel=2 ** 63)), "parallel 9223372036854775808 is not a count"),
    ("parallel 0", edited(top(parallel=0)), "parallel 0 is not a count"),
    ("device_slots text", edited(top(device_slots="x")), "device_slots 'x' is not a count up to parallel"),
    ("device_slots over parallel", edited(top(device_slots=3)), "device_slots 3 is not a count up to parallel"),
    ("pid 2**63", edited(top(pid=2 ** 63)), "pid 9223372036854775808 is not a process id"),
    ("pid_start negative", edited(top(pid=5, pid_start=-1)), "pid_start -1 is not a start time"),
    ("executor", edited(top(executor="slurm")), "executor 'slurm' is not one of local, ray"),
    ("address", edited(top(executor="ray", address=5, cpus_per_trial=1)), "address 5 is not HOST:PORT"),
    ("cpus_per_trial", edited(top(executor="ray", cpus_per_trial=0)), "cpus_per_trial 0 is not a count"),
    ("format_version float", edited(top(format_version=1.0)), "format_version 1.0 is not 1"),
    ("created_at inf", json.dumps(GOOD).replace("1500000000.0", "1e400"), "created_at inf is not a time"),
    ("created_at NaN", json.dumps(GOOD).replace("1500000000.0", "NaN"), "created_at nan is not a time"),
    ("created_at 5000 digits", json.dumps(GOOD).replace("1500000000.0", HUGE), "created_at inf is not a time"),
    ("seed 5000 digits", json.dumps(GOOD).replace('"seed": 0}', f'"seed": {HUGE}}}', 1),
     "point 1: seed inf is not a whole number"),
    ("parallel 5000 digits", json.dumps(GOOD).replace('"parallel": 2', f'"parallel": {HUGE}'),
     "parallel inf is not a count"),
]


def write(runs_dir, text, name="h"):
    (runs_dir / runs.SWEEPS_DIR).mkdir(exist_ok=True)
    runs.sweep_path(runs_dir, name).write_text(text)


def test_the_good_record_of_the_table_reads_and_may_be_resumed(tmp_path):
    write(tmp_path, json.dumps(GOOD))
    info = runs.read_sweep(tmp_path, "h", RECORD_OPTIONS)
    assert info.problem is None and info.state == "stopped" and info.resume_problem is None
    assert info.vary == {"depth": [8, 14], "seed": [0, 1]} and info.counts["pending"] == 4


@pytest.mark.parametrize("text, problem", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_a_hostile_record_is_refused_in_one_line_everywhere_and_leaves_nothing(tmp_path, capsys, text, problem):
    write(tmp_path, text)
    before = sorted(p.name for p in (tmp_path / runs.SWEEPS_DIR).iterdir())
    # The Train page's panel: listed, unreadable, no Resume but why.
    (info,) = runs.list_sweeps(tmp_path, RECORD_OPTIONS)
    assert info.state == "unreadable" and problem in info.problem and "\n" not in info.problem, info.problem
    assert info.resume_problem == info.problem and info.counts["done"] == 0 and info.eta_s is None
    assert len(info.problem) < 300
    # The command line: one line on stderr, exit code 2, no file written, no run started.
    for option in ("--report", "--resume"):
        assert main(["--runs-dir", str(tmp_path), option, "h"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and problem in err, err
        assert err.startswith(f"python -m resnet_core.sweep: error: {option} h: h.json: ")
    assert sorted(p.name for p in (tmp_path / runs.SWEEPS_DIR).iterdir()) == before  # no h.lock
    assert run_folders(tmp_path) == []


def test_a_refused_resume_of_a_readable_record_leaves_no_lock(tmp_path, capsys):
    write(tmp_path, json.dumps(GOOD))
    assert main(["--runs-dir", str(tmp_path), "--resume", "h", "--executor", "local", "--address", "x:1"]) == 2
    assert "--address and --cpus-per-trial go with --executor ray" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / runs.SWEEPS_DIR).iterdir()) == ["h.json"]


def test_a_sweep_claim_is_released_with_its_lock_file_and_never_shared(tmp_path):
    (tmp_path / runs.SWEEPS_DIR).mkdir()
    lock = runs.sweep_path(tmp_path, "c", ".lock")
    first = runs.claim_sweep(tmp_path, "c")
    with pytest.raises(runs.SweepBusy):
        runs.claim_sweep(tmp_path, "c")
    late = os.open(lock, os.O_RDWR)  # a claimer that opened the file just before it was removed
    runs.release_sweep(tmp_path, "c", first)
    assert not lock.exists()
    second = runs.claim_sweep(tmp_path, "c")  # a new file: the removed one's flock no longer counts
    try:
        import fcntl
        fcntl.flock(late, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the late claimer's flock is on the old file...
        with pytest.raises(runs.SweepBusy):
            runs.claim_sweep(tmp_path, "c")  # ...so the one at the path is still held by `second`
    finally:
        os.close(late)
        runs.release_sweep(tmp_path, "c", second)
    assert not lock.exists()


def test_a_claim_that_lost_its_file_while_it_waited_claims_the_new_one(tmp_path, monkeypatch):
    """The race the release's removal opens: a claimer opens the lock file, the holder
    removes it and releases, the claimer flocks the removed file. It must notice and retry."""
    import fcntl

    (tmp_path / runs.SWEEPS_DIR).mkdir()
    lock = runs.sweep_path(tmp_path, "c", ".lock")
    real_flock, calls = fcntl.flock, []

    def flock_after_a_removal(fd, op):
        calls.append(fd)
        if len(calls) == 1:
            lock.unlink()  # the holder's release came between our open and our flock
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_removal)
    fd = runs.claim_sweep(tmp_path, "c")
    monkeypatch.undo()
    try:
        assert len(calls) == 2 and os.fstat(fd).st_ino == os.stat(lock).st_ino
        with pytest.raises(runs.SweepBusy):
            runs.claim_sweep(tmp_path, "c")
    finally:
        runs.release_sweep(tmp_path, "c", fd)


def _started_point(tmp_path, record_changes=None, alive=True):
    folder = runs.new_run_dir(tmp_path, "h-depth8-seed0")
    (folder / runs.CONSOLE_FILE).write_text("loading\npython -m resnet_core.train: error: CIFAR-10 not found\n")
    record = copy.deepcopy(GOOD)
    record["points"][0]["run"] = folder.name
    record.update(state="running", pid=os.getpid() if alive else None,
                  pid_start=runs.process_start_time(os.getpid()) if alive else None)
    for change in record_changes or []:
        change(record)
    write(tmp_path, json.dumps(record))
    return runs.read_sweep(tmp_path, "h", RECORD_OPTIONS).points[0]


def test_a_point_whose_trainer_exited_before_starting_fails_to_start_while_the_sweep_runs(tmp_path):
    # Launched, trainer not yet written config.json, no end recorded: still starting.
    p = _started_point(tmp_path)
    assert (p.state, p.category) == ("starting", "running")
    # The sweep recorded that its trainer ended first: failed to start, with the reason.
    p = _started_point(tmp_path, [lambda r: r["points"][0].update(start_failure="CIFAR-10 not found")])
    assert (p.state, p.category, p.error) == ("failed to start", "failed", "failed to start: CIFAR-10 not found")
    for bad in (5, "", "a\nb", "x" * 5000):
        write(tmp_path, json.dumps({**GOOD, "points": [{**GOOD["points"][0], "start_failure": bad},
                                                       *GOOD["points"][1:]]}))
        assert "point 1: start_failure" in runs.read_sweep(tmp_path, "h", RECORD_OPTIONS).problem, bad


def test_a_point_whose_trainer_died_after_its_status_gives_the_trainers_last_words(tmp_path):
    # The trainer wrote status.json (queued) and died before config.json: the run reads failed
    # to start, and the sweep's tables say why in the trainer's own words, as runs.list_runs does.
    p = _started_point(tmp_path)
    runs.atomic_write_json(p.run_dir / runs.STATUS_FILE, {"format_version": runs.FORMAT_VERSION, "state": "queued",
                                                          "pid": 999_999_999, "created_at": time.time()})
    p = runs.read_sweep(tmp_path, "h", RECORD_OPTIONS).points[0]
    assert (p.state, p.category) == (runs.FAILED_TO_START, "failed")
    assert p.error.endswith("python -m resnet_core.train: error: CIFAR-10 not found")


@pytest.mark.slow
def test_points_whose_trainers_cannot_start_say_so_and_a_resume_runs_them_again(cifar_dir, tmp_path, capsys,
                                                                                   monkeypatch):
    """A valid record whose data folder is missing when it is resumed: every trainer
    refuses before its run folder holds config.json. The sweep, its report and the record
    say "failed to start" with the trainer's one line; once the data is back, a resume
    trains those points in the folders they were given."""
    data = tmp_path / "data"
    record = copy.deepcopy(GOOD)
    # Two at once on two device slots: the points' trainers (each ~3 s of imports) run side by side.
    record.update(argv=[*TINY, "--epochs", "1", "--data-dir", str(data)], parallel=2, device_slots=2,
                  vary=[{"field": "depth", "values": [8]}, {"field": "seed", "values": [0, 1]}],
                  points=[{"values": {"depth": 8, "seed": s}, "run": None} for s in (0, 1)])
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    write(runs_dir, json.dumps(record))
    # The sweep's main in this process (a sweep process's ~2 s of imports spared, twice), its
    # trainers started from the project as the launcher's are.
    monkeypatch.chdir(ROOT)
    assert main(["--runs-dir", str(runs_dir), "--resume", "h"]) == 1
    out = capsys.readouterr().out
    assert "depth=8 seed=0: failed to start: python -m resnet_core.train: error: CIFAR-10 not found" in out
    assert "starting" not in out
    info = runs.read_sweep(runs_dir, "h", RECORD_OPTIONS)
    assert info.state == "failed" and [p.state for p in info.points] == ["failed to start"] * 2
    assert all("CIFAR-10 not found" in p.error for p in info.points) and info.counts["failed"] == 2
    folders = run_folders(runs_dir)
    assert len(folders) == 2 and not (runs_dir / runs.SWEEPS_DIR / "h.lock").exists()
    assert main(["--runs-dir", str(runs_dir), "--report", "h"]) == 0  # in this process: it starts nothing
    reported = capsys.readouterr()
    assert reported.out.strip() == "(no runs)"
    lines = reported.err.splitlines()
    assert len(lines) == 2, reported.err
    for s, folder, line in zip((0, 1), folders, lines, strict=True):
        assert line.startswith(f"point depth=8 seed={s} ({folder.name}) is not in the table: failed to start: "
                               "python -m resnet_core.train: error: CIFAR-10 not found"), line

    shutil.copytree(cifar_dir, data)
    assert main(["--runs-dir", str(runs_dir), "--resume", "h"]) == 0
    info = runs.read_sweep(runs_dir, "h", RECORD_OPTIONS)
    assert info.state == "completed" and [p.state for p in info.points] == ["completed"] * 2
    assert run_folders(runs_dir) == folders  # the same folders, no new ones
    assert all(p.get("start_failure") is None for p in info.record["points"])


def test_the_train_page_offers_resume_only_for_a_record_it_can_resume(tmp_path, monkeypatch, cifar_dir):
    from test_pages import TRAIN, open_page, texts

    from resnet_core.formatting import md_escape

    monkeypatch.setenv("RESNET_STUDIO_RUNS", str(tmp_path))
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(cifar_dir))
    write(tmp_path, json.dumps({**GOOD, "name": "good"}), "good")
    write(tmp_path, edited(point(0, bogus=1)), "h")
    write(tmp_path, edited(lambda r: r.update(name="argv", argv="--epochs 1")), "argv")
    folder = runs.new_run_dir(tmp_path, "good-depth8-seed0")
    (folder / runs.CONSOLE_FILE).write_text("python -m resnet_core.train: error: CIFAR-10 not found\n")
    record = copy.deepcopy({**GOOD, "name": "failed"})
    record["points"][0].update(run=folder.name, start_failure="python -m resnet_core.train: error: CIFAR-10 not found")
    write(tmp_path, json.dumps(record), "failed")
    at = open_page(TRAIN)
    page = texts(at)
    assert sorted(b.key for b in at.button if b.label == "Resume sweep") == ["sweep_resume_failed",
                                                                             "sweep_resume_good"]
    assert "can't resume: " + md_escape("h.json: point 1: bogus is not a training option") in page
    assert "can't resume: " + md_escape("argv.json: argv is a string, not a list of strings") in page
    assert "1 failed" in page
    assert md_escape("failed to start: python -m resnet_core.train: error: CIFAR-10 not found") in page


def test_a_lock_path_that_cannot_be_claimed_is_refused_in_one_line(tmp_path, capsys):
    write(tmp_path, json.dumps(GOOD))
    elsewhere = tmp_path / "elsewhere"
    runs.sweep_path(tmp_path, "h", ".lock").symlink_to(elsewhere)  # never followed
    assert main(["--runs-dir", str(tmp_path), "--resume", "h"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep h: cannot claim" in err and "h.lock" in err, err
    assert not elsewhere.exists() and runs.sweep_path(tmp_path, "h", ".lock").is_symlink()


def test_a_sweeps_folder_that_is_a_symlink_is_not_written_through(tmp_path, capsys, cifar_dir):
    """A .sweeps planted as a link to another folder took the sweep's lock and record there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    (runs_dir / runs.SWEEPS_DIR).symlink_to(elsewhere, target_is_directory=True)
    assert main(["--runs-dir", str(runs_dir), "--name", "s", "--vary", "depth=8,14", "--data-dir", str(cifar_dir),
                 *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{runs_dir / runs.SWEEPS_DIR}: a symbolic link" in err, err
    assert list(elsewhere.iterdir()) == [] and run_folders(runs_dir) == []
