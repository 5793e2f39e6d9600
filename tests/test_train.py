"""The trainer end to end, through its command line, on tiny synthetic CIFAR-format data."""

import importlib.metadata
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, signal_handlers_kept, write_cifar_folder

from resnet_core import runs, train
from resnet_core.runs import writing
from resnet_core.config import PAPER_DEVIATIONS, PAPER_RECIPE, TrainConfig, apply_presets, make_plan, resumable_fields
from resnet_core.train_checks import held_data_bytes
from resnet_core.config_checks import config_errors
from resnet_core.model_names import family_counts
from resnet_core.cifar import BATCH_FOLDER, channel_stats, load_cifar, split_train_val
from resnet_core.train import build_parser, main, parse

# Rows by step count only (--log-seconds 0): how many rows a busy CPU's seconds give varies.
TINY = ["--depth", "8", "--batch-size", "50", "--val-size", "100", "--log-every", "2", "--log-seconds", "0",
        "--seed", "1"]


def trainer(*args, wait=True, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "resnet_core.train", *map(str, args)]
    if wait:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, **{"timeout": 300, **kwargs})
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def only_run(runs_dir: Path) -> Path:
    (run_dir,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return run_dir


def wait_for(predicate, timeout=120, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def step_count(run_dir: Path) -> int:
    return max((r["step"] for r in runs.read_metrics(run_dir) if r["type"] == "step"), default=0)


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def assert_history_is_clean(run_dir: Path, epochs: int) -> None:
    rows = runs.read_metrics(run_dir)
    assert [r["epoch"] for r in rows if r["type"] == "epoch"] == list(range(1, epochs + 1))
    steps = [r["step"] for r in rows if r["type"] == "step"]
    assert steps == sorted(set(steps)), "step rows duplicated or out of order"
    assert [runs.recorded_epochs(run_dir, s) for s in ("val", "train")] == [list(range(1, epochs + 1))] * 2
    recorded = sorted(p.name for p in (run_dir / runs.DYNAMICS_DIR).glob("train_epoch_*.npz"))
    assert recorded == [runs.dynamics_path(run_dir, e).name for e in range(1, epochs + 1)]


def assert_same_dynamics(run_dir: Path, reference: Path) -> None:
    """The training images' record (dynamics/) holds the same arrays in both runs."""
    names = sorted(p.name for p in (reference / runs.DYNAMICS_DIR).iterdir())
    assert names == sorted(p.name for p in (run_dir / runs.DYNAMICS_DIR).iterdir())
    for name in names:
        ours, theirs = (np.load(d / runs.DYNAMICS_DIR / name) for d in (run_dir, reference))
        assert ours.files == theirs.files, name
        for k in ours.files:
            assert np.array_equal(ours[k], theirs[k], equal_nan=ours[k].dtype.kind == "f"), (name, k)


@pytest.fixture(scope="module")
def reference_run(cifar_dir, tmp_path_factory):
    """An uninterrupted 3-epoch run that resumed runs must reproduce exactly."""
    runs_dir = tmp_path_factory.mktemp("reference")
    result = trainer("--data-dir", cifar_dir, "--runs-dir", runs_dir, "--epochs", 3, *TINY)
    assert result.returncode == 0, result.stderr
    return only_run(runs_dir)


@pytest.mark.slow
def test_a_run_learns_and_writes_the_documented_folder(reference_run, cifar_dir):
    run_dir = reference_run
    config = json.loads((run_dir / "config.json").read_text())
    assert config["format_version"] == runs.FORMAT_VERSION
    assert config["config"]["depth"] == 8 and config["config"]["epochs"] == 3
    resolved = config["resolved"]
    # auto: the GPU where there is one (the suite also runs on a GPU machine), else the CPU
    assert resolved["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert resolved["precision"] in ("bf16", "fp16", "fp32")
    assert (resolved["train_size"], resolved["val_size"], resolved["val_source"]) == (400, 100, "train")
    assert resolved["steps_per_epoch"] == 8 and resolved["total_steps"] == 24
    assert config["versions"]["torch"] == torch.__version__ and len(config["classes"]) == 10

    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and status["epoch"] == 3 and status["step"] == 24
    assert status["error"] is None and status["finished_at"] >= status["started_at"]

    rows = runs.read_metrics(run_dir)
    step_rows = [r for r in rows if r["type"] == "step"]
    # The first step's row, then every 2nd step of 24.
    assert [r["step"] for r in step_rows] == [1, *range(2, 25, 2)]
    assert {"loss", "acc", "lr", "images_per_s"} <= step_rows[0].keys()
    epoch_rows = [r for r in rows if r["type"] == "epoch"]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds", "eval_seconds", "images_per_s",
            "peak_memory_mb"} <= epoch_rows[0].keys()
    # The synthetic classes are easy: a short run must beat chance (10%) by far.
    assert epoch_rows[-1]["val_acc"] >= 0.5, epoch_rows
    assert status["best_val_acc"] == max(r["val_acc"] for r in epoch_rows)
    # The usage sampler's "system" rows are written by their own thread: under load one landed
    # after the final test row, so the last row of the training's own is the test row.
    test_row = [r for r in rows if r["type"] != "system"][-1]
    assert test_row["type"] == "test" and test_row["test_acc"] == status["test_acc"] >= 0.5
    assert_history_is_clean(run_dir, 3)

    # Validation records point back into the training set, with its labels; the split
    # follows --split-seed (default 0), not --seed (1 here).
    data = load_cifar("cifar10", cifar_dir)
    train_idx, val_idx = split_train_val(500, 100, seed=0)
    assert resolved["normalization"] == channel_stats(data.train_images[train_idx]).as_record()
    assert resolved["data_dir"] == str(Path(cifar_dir).resolve()) and resolved["test_every_epoch"] is False
    val = runs.load_predictions(run_dir, "val", 3)
    assert np.array_equal(val["indices"], val_idx)
    assert np.array_equal(val["labels"], data.train_labels[val["indices"]])
    assert val["topk_classes"].shape == (100, 5) and np.array_equal(val["topk_classes"][:, 0], val["preds"])
    assert np.all(np.diff(val["topk_probs"], axis=1) <= 0) and np.all(val["topk_probs"].sum(1) <= 1 + 1e-5)
    assert np.isclose((val["preds"] == val["labels"]).mean(), epoch_rows[-1]["val_acc"])
    test = runs.load_predictions(run_dir, "test", 3)
    assert np.array_equal(test["labels"], data.test_labels)
    train_cm = runs.load_predictions(run_dir, "train", 1)["confusion"]
    assert train_cm.shape == (10, 10) and train_cm.sum() == 400

    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(run_dir / name, weights_only=True)
        assert {"model", "optimizer", "scaler", "schedule", "rng", "epoch", "step"} <= ckpt.keys()
    assert "epoch 3/3" in (run_dir / "train.log").read_text()


@pytest.mark.slow
def test_sigterm_stops_mid_epoch_and_resume_continues_exactly(reference_run, cifar_dir, tmp_path):
    proc = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 3, *TINY, wait=False)
    wait_for(lambda: any(tmp_path.iterdir()) and step_count(only_run(tmp_path)) >= 11, what="steps in epoch 2")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    run_dir = only_run(tmp_path)
    info = runs.read_run(run_dir)
    assert info.state == "stopped" and info.can_resume
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    assert ckpt["step"] == step_count(run_dir) < 24
    partial = ckpt["partial_epoch"]
    if partial is not None:  # stopped mid-epoch: the epoch's record so far, one value per image presented
        assert (~partial["dynamics"]["label_prob"].isnan()).sum() == 50 * partial["batch"]

    first_session = info.status["finished_at"] - info.status["started_at"]
    assert main(["--resume", str(run_dir)]) == 0  # in this process: a trainer process's ~3 s of start-up spared
    assert runs.read_run(run_dir).state == "completed"
    assert runs.read_run(run_dir).status["elapsed_before_s"] == pytest.approx(first_session)
    assert_history_is_clean(run_dir, 3)
    reference, resumed = weights(reference_run), weights(run_dir)
    assert all(torch.equal(reference[k], resumed[k]) for k in reference), "resume diverged from the uninterrupted run"
    assert_same_dynamics(run_dir, reference_run)  # the stopped epoch's record carried over in last.pt


@pytest.mark.slow
def test_sigkill_shows_crashed_and_resume_keeps_one_history(reference_run, cifar_dir, tmp_path):
    proc = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 3, *TINY, wait=False)
    wait_for(lambda: any(tmp_path.iterdir()) and step_count(only_run(tmp_path)) >= 12, what="steps in epoch 2")
    proc.kill()
    proc.wait(30)
    run_dir = only_run(tmp_path)
    info = runs.read_run(run_dir)
    assert info.state == "crashed" and info.can_resume

    assert main(["--resume", str(run_dir)]) == 0  # in this process, as above
    assert_history_is_clean(run_dir, 3)
    # Each session's first step has a row (1, and 9 after resuming from epoch 1's checkpoint).
    steps = [r["step"] for r in runs.read_metrics(run_dir) if r["type"] == "step"]
    assert steps == [1, 2, 4, 6, 8, 9, *range(10, 25, 2)]
    reference, resumed = weights(reference_run), weights(run_dir)
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    assert_same_dynamics(run_dir, reference_run)


# A trainer whose writes into the run folder start failing at step 12 (epoch 2): on every
# file ("disk": ENOSPC, appends to open files included), or under predictions/ only
# (EACCES: a subfolder made unwritable; status.json can still be written). A marker line
# on stderr says when. The patches take `what` from the namespace they run in: the trainer's
# process, or this one (the "full" resume, a refusal that needs no process of its own).
UNWRITABLE = """
import errno, os, sys
from resnet_core import runs, train
from resnet_core.runs import writing

armed = what == "full"  # the disk full from the start

def fails(path):
    return armed and (what in ("disk", "full") or "/predictions/" in str(path))

def refuse(path):
    code = errno.EACCES if what == "predictions" else errno.ENOSPC
    raise OSError(code, os.strerror(code), str(path))

atomic = writing.atomic_write_bytes
def atomic_write_bytes(path, data):
    if fails(path):
        refuse(path)
    atomic(path, data)
writing.atomic_write_bytes = atomic_write_bytes

class Appending:
    def __init__(self, path):
        self.path, self.file = path, opened(path)
    def write(self, text):
        if fails(self.path) and self.file.name != "/dev/full":
            self.file = open("/dev/full", "a", buffering=1)  # a real ENOSPC, buffers and all
        return self.file.write(text)
    def __getattr__(self, name):  # flush, fileno, close...
        return getattr(self.file, name)
opened = writing.open_for_append
writing.open_for_append = runs.open_for_append = Appending

append = writing.RunWriter.append_metrics
def append_metrics(self, row):
    global armed
    if row["type"] == "step" and row["step"] >= 12 and what != "full" and not armed:
        armed = True
        print("--- writes fail from here ---", file=sys.stderr, flush=True)
    append(self, row)
writing.RunWriter.append_metrics = append_metrics
"""
UNWRITABLE_TRAINER = "import sys\nwhat = sys.argv[1]\n" + UNWRITABLE + "sys.exit(train.main(sys.argv[2:]))\n"
PATCHED = [(writing, "atomic_write_bytes"), (writing, "open_for_append"), (runs, "open_for_append"),
           (writing.RunWriter, "append_metrics")]


@pytest.mark.slow
@pytest.mark.parametrize("what, final_state", [("disk", "crashed"), ("predictions", "failed")])
def test_a_run_folder_that_becomes_unwritable_ends_in_one_line_and_resumes(
        reference_run, cifar_dir, tmp_path, capsys, monkeypatch, what, final_state):
    def unwritable_trainer(what, *args):
        return subprocess.run([sys.executable, "-c", UNWRITABLE_TRAINER, what, *map(str, args)],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                              timeout=300, cwd=ROOT)

    result = unwritable_trainer(what, "--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 3, *TINY)
    assert result.returncode == 1
    after = result.stderr.split("--- writes fail from here ---\n")[1]
    assert after.count("\n") == 1 and "Traceback" not in after and "Logging error" not in after, after
    run_dir = only_run(tmp_path)
    assert str(run_dir) in after and ("No space left" if what == "disk" else "Permission denied") in after
    info = runs.read_run(run_dir)
    # A full disk cannot take the final status.json either: the run reads as crashed once gone.
    assert info.state == final_state and info.can_resume
    if final_state == "failed":
        assert "Permission denied" in info.status["error"]
    with monkeypatch.context() as patches:  # the disk still full: resumed in this process, patched as above
        for owner, name in PATCHED:
            patches.setattr(owner, name, getattr(owner, name))  # restored when the block ends
        exec(UNWRITABLE, {"what": "full"})
        capsys.readouterr()
        still_full = main(["--resume", str(run_dir)])
    said = capsys.readouterr().err.splitlines()  # "run folder: ...", then the one line
    assert still_full == 1 and len(said) == 2 and said[0].startswith("run folder:"), said
    assert "cannot write" in said[1] and "No space left on device" in said[1] and "--resume" in said[1]
    assert main(["--resume", str(run_dir)]) == 0  # the disk writable again: unpatched, in this process too
    assert runs.read_run(run_dir).state == "completed"
    assert_history_is_clean(run_dir, 3)
    reference, result_weights = weights(reference_run), weights(run_dir)
    assert all(torch.equal(reference[k], result_weights[k]) for k in reference)


@pytest.mark.slow
def test_a_nan_loss_marks_the_run_diverged(cifar_dir, tmp_path):
    result = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 2, *TINY, "--lr", "1e30")
    assert result.returncode == 3
    status = runs.read_run(only_run(tmp_path)).status
    assert status["state"] == "diverged" and "loss became" in status["error"]


def _truncate(path):
    path.write_bytes(path.read_bytes()[:999])


def _foreign_pickle(path):
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(5000))


def _labels_out_of_range(path):
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    batch[b"labels"][0] = 10
    path.write_bytes(pickle.dumps(batch))


@pytest.mark.parametrize("damage, message", [
    (_truncate, "data_batch_2 is not a readable CIFAR-10 batch"),
    (_foreign_pickle, "data_batch_2 is not a CIFAR-10 batch"),
    (_random_bytes, "data_batch_2 is not a readable CIFAR-10 batch"),
    (_labels_out_of_range, "data_batch_2: labels outside 0..9"),
])
def test_a_data_problem_is_one_line_naming_the_file_and_no_run(tmp_path, capsys, damage, message):
    data = write_cifar_folder(tmp_path / "data", 200, 20)
    damage(data / BATCH_FOLDER / "data_batch_2")
    code = main(["--data-dir", str(data), "--runs-dir", str(tmp_path / "runs"), "--epochs", "1", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and message in err and str(data) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_an_exception_marks_the_run_failed_with_one_line_and_the_traceback_in_the_log(
        cifar_dir, tmp_path, capsys, monkeypatch):
    def boom(self, *args):
        raise RuntimeError("the device fell over")

    monkeypatch.setattr("resnet_core.loop.Run.finish_epoch", boom)
    code = main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--epochs", "1", *TINY])
    assert code == 1
    info = runs.read_run(only_run(tmp_path))
    assert info.state == "failed" and info.status["error"] == "RuntimeError: the device fell over"
    log_text = (info.path / "train.log").read_text()
    assert "Traceback" in log_text and "in boom" in log_text
    err = capsys.readouterr().err
    assert "the device fell over" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_broken_torchvision_never_stops_a_run(cifar_dir, tmp_path, broken_imports):
    broken_imports("torchvision")  # imports, then raises: a CPU torch beside a mismatched torchvision
    assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--epochs", "1", *TINY]) == 0
    run_dir = only_run(tmp_path)
    assert runs.read_run(run_dir).state == "completed"
    versions = json.loads((run_dir / "config.json").read_text())["versions"]
    assert versions["torchvision"] == importlib.metadata.version("torchvision")


@pytest.mark.parametrize("args, message", [
    (["--depth", "21"], "depth 21 is not 6n+2 for basic blocks; nearest: 20, 26"),
    (["--lr", "-1"], "learning rate must be a positive number"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "cuda:\u0661"], "unknown device 'cuda:\u0661'"),  # an Arabic-Indic digit one
    (["--name", "///"], "a run name needs a letter or digit"),
    (["--seed", "-1"], "seed must lie in 0..4294967295"),
    (["--seed", str(2 ** 32)], "seed must lie in 0..4294967295"),
    (["--split-seed", "-3"], "split seed must lie in 0..4294967295"),
    (["--batch-size", "450"], "400 training images are fewer than one batch of 450"),
    (["--val-size", "500"], "validation size 500 leaves no training images (the training set has 500)"),
    (["--val-size", "480"], "20 training images are fewer than one batch of 50"),
    (["--subset", "401"], "subset 401 is larger than the 400 images of the training split"),
    (["--max-steps", "100", "--epochs", "2"], "max steps 100 is more than 2 epochs of 8 steps"),
    (["--max-steps", "10", "--warmup-epochs", "1.5"], "a warm-up of 12 steps is not shorter than the run's 10 steps"),
    (["--max-steps", "10", "--schedule", "multistep", "--milestones", "1.5"],
     "milestones 1.5 (epochs) fall at or after the run's last step (10)"),
    (["--depth", "abc"], "argument --depth: invalid int value: 'abc'"),
    (["--depth", "-4"], "depth -4 is not 6n+2 for basic blocks; nearest: 8"),
    (["--depth", str(10**30)], f"depth {10**30} is not 6n+2 for basic blocks; nearest: {10**30 - 2}, {10**30 + 4}"),
    (["--depth", "1e3"], "argument --depth: invalid int value: '1e3'"),
    # Each started a run that failed: an overflow in the optimizer, a traceback from the
    # usage thread's wait (the run itself went on).
    (["--lr", "1e308"], "learning rate must be a positive number at most 3.4e+38"),
    (["--weight-decay", "1e308"], "weight decay must lie in [0, 3.4e+38]"),
    (["--log-seconds", "1e308"], "log interval in seconds must be a number of 0 or more, at most 86,400"),
])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(cifar_dir, tmp_path, capsys, args, message):
    flags = dict(zip(TINY[::2], TINY[1::2], strict=True))
    flags.update(zip(args[::2], args[1::2], strict=True))
    code = main_exit_code(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"),
                           *[x for kv in flags.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def main_exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own refusals (a flag that is not a number)
        return e.code


def test_impossible_or_busy_run_folders_are_refused_up_front(cifar_dir, tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    for flags, message in ((["--runs-dir", str(a_file / "runs")], "is not a folder"),
                           (["--run-dir", str(busy)], "is not empty"),
                           (["--run-dir", str(a_file)], "is not a folder")):
        assert main([*flags, "--data-dir", str(cifar_dir), *TINY]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "busy"]
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("flag", ["--run-dir", "--runs-dir", "--data-dir", "--resume"])
def test_an_empty_folder_flag_is_refused_not_read_as_the_default_or_here(cifar_dir, tmp_path, capsys, monkeypatch,
                                                                        flag):
    """--run-dir "" started a run under ./checkpoints, --runs-dir "" wrote runs into the
    working folder, --data-dir "" read $RESNET_STUDIO_DATA or ./data."""
    monkeypatch.chdir(tmp_path)
    data = [] if flag == "--data-dir" else ["--data-dir", str(cifar_dir)]
    assert main_exit_code([*data, flag, "", *TINY]) == 2
    err = capsys.readouterr().err
    assert f"{flag} is empty" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_run_dir_given_as_a_symlink_is_refused_for_a_new_run_and_a_resume(cifar_dir, tmp_path, capsys):
    """A run folder is a real folder (see resnet_core.runs): the trainer never writes through a link."""
    from fake_runs import make_run

    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "new-link").symlink_to(empty, target_is_directory=True)
    stopped = make_run(tmp_path / "runs", "stopped", state="stopped", epochs_done=1, total_epochs=3)
    (tmp_path / "runs" / "alias").symlink_to(stopped, target_is_directory=True)
    for flags, message in ((["--run-dir", str(tmp_path / "new-link")], "new-link is a symbolic link"),
                           (["--resume", str(tmp_path / "runs" / "alias")], "a symbolic link, not a run folder")):
        assert main([*flags, "--data-dir", str(cifar_dir), *TINY]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert list(empty.iterdir()) == [] and runs.read_run(stopped).state == "stopped"


def test_an_unwritable_runs_dir_is_refused(cifar_dir, tmp_path, capsys, monkeypatch):
    # Tests run as root here, which may write anywhere: stand in for a read-only folder.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    assert main(["--runs-dir", str(tmp_path / "runs"), "--data-dir", str(cifar_dir), *TINY]) == 2
    assert f"{tmp_path} is not writable" in capsys.readouterr().err


def test_missing_data_names_the_folder(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "empty"), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert str((tmp_path / "empty").resolve()) in err and "--download" in err
    assert not (tmp_path / "runs").exists()


def test_a_refused_launch_into_a_given_run_dir_writes_nothing(cifar_dir, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "launched-by-the-dashboard"
    run_dir.mkdir(parents=True)
    (run_dir / runs.CONSOLE_FILE).write_text("")  # the dashboard's capture of our output
    assert main(["--data-dir", str(cifar_dir), "--run-dir", str(run_dir), "--device", "cuda:7", *TINY]) == 2
    assert "cuda" in capsys.readouterr().err
    assert [p.name for p in run_dir.iterdir()] == [runs.CONSOLE_FILE]


@pytest.mark.slow
def test_resume_refuses_what_it_cannot_continue(reference_run, tmp_path, capsys):
    assert main(["--resume", str(tmp_path)]) == 2 and "not a run folder" in capsys.readouterr().err
    assert main(["--resume", str(reference_run)]) == 2 and "already completed" in capsys.readouterr().err


def test_config_errors_are_per_field():
    errors = config_errors(TrainConfig(depth=165, block="bottleneck", epochs=0, val_size=-1))
    assert errors["depth"].startswith("depth 165 is not 9n+2") and set(errors) == {"depth", "epochs", "val_size"}
    assert config_errors(TrainConfig()) == {}
    for seconds in (-1.0, float("nan"), float("inf")):
        assert set(config_errors(TrainConfig(log_seconds=seconds))) == {"log_seconds"}
    assert config_errors(TrainConfig(log_seconds=0.0)) == {}  # rows by step count only


@pytest.mark.slow
@pytest.mark.parametrize("precision, channels_last", [("fp16", "--no-channels-last"), ("fp32", "--channels-last"),
                                                      ("bf16", "--no-channels-last")])
def test_every_precision_path_runs_on_cpu(cifar_dir, tmp_path, precision, channels_last):
    # Two steps take each path (fp16 on a CPU is emulated: the whole epoch's 8 steps took 27 s, bf16's 0.5 s).
    code = main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--epochs", "1", *TINY,
                 "--precision", precision, channels_last, "--val-size", "0", "--device", "cpu", "--max-steps", "2"])
    assert code == 0
    run_dir = only_run(tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["resolved"]["precision"] == precision
    assert config["resolved"]["channels_last"] == (channels_last == "--channels-last")
    assert config["resolved"]["val_source"] is None and config["resolved"]["test_every_epoch"] is True
    assert runs.read_run(run_dir).state == "completed"
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    assert bool(ckpt["scaler"]) == (precision == "fp16")  # a grad scaler only for fp16


@pytest.mark.slow
def test_the_compiled_training_step_runs_on_cpu(cifar_dir, tmp_path):
    code = main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--epochs", "1", *TINY, "--compile"])
    assert code == 0
    run_dir = only_run(tmp_path)
    assert json.loads((run_dir / "config.json").read_text())["resolved"]["compile"] is True
    assert runs.read_run(run_dir).state == "completed"
    assert "torch.compile failed" not in (run_dir / "train.log").read_text()


@pytest.mark.slow
def test_a_second_run_on_the_same_device_waits_queued(cifar_dir, tmp_path):
    first = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 50, *TINY, "--name", "first",
                    wait=False)
    try:
        wait_for(lambda: [r.state for r in runs.list_runs(tmp_path)] == ["running"], what="first run running")
        second = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 1, *TINY, "--name", "second",
                         wait=False)
        wait_for(lambda: [r.state for r in runs.list_runs(tmp_path)] == ["queued", "running"], what="second queued")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        states = {r.config["config"]["name"]: r.state for r in runs.list_runs(tmp_path)}
        assert states == {"first": "running", "second": "stopped"}
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
    assert {r.state for r in runs.list_runs(tmp_path)} == {"stopped"}


def resolved(argv, train_set_images=50_000):
    parsed = parse(argv)
    cfg = apply_presets(parsed.cfg, parsed.typed, train_set_images)
    return cfg, make_plan(cfg, train_set_images)


def test_paper_preset_is_the_papers_protocol():
    cfg, plan = resolved(["--preset", "paper", "--depth", "56"])
    # All 50,000 training images, no validation split, exactly 64,000 iterations.
    assert (cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.schedule) == (128, 0.1, 0.9, 1e-4, "multistep")
    assert (plan.train_images, plan.val_images, plan.steps_per_epoch) == (50_000, 0, 390)
    assert (plan.total_steps, plan.epochs, cfg.max_steps) == (64_000, 165, 64_000)
    assert plan.steps_in_epoch(164) == 390 and plan.steps_in_epoch(165) == 64_000 - 164 * 390 == 40
    assert [round(m * 390) for m in cfg.milestones] == [32_000, 48_000]
    assert cfg.warmup_epochs == 0
    # ResNet-110 and deeper: lr 0.01 for the first 400 iterations.
    cfg, _ = resolved(["--preset", "paper", "--depth", "110"])
    assert cfg.warmup_mode == "constant" and round(cfg.warmup_epochs * 390) == 400
    # --val-size 5000 on top gives the 45k/5k protocol, still 64k iterations.
    cfg, plan = resolved(["--preset", "paper", "--val-size", "5000", "--lr", "0.05"])
    assert (plan.train_images, plan.val_images, plan.steps_per_epoch, plan.total_steps) == (45_000, 5000, 351, 64_000)
    assert plan.epochs == 183 and [round(m * 351) for m in cfg.milestones] == [32_000, 48_000]
    assert cfg.lr == 0.05  # typed flags beat the preset
    # A typed epoch count sets the length: no 64k stop, and drops that do not fit fall back.
    cfg, plan = resolved(["--preset", "paper", "--epochs", "3"])
    assert (cfg.max_steps, plan.total_steps, cfg.milestones) == (0, 1170, [])


def test_the_paper_presets_deviations_are_named_by_its_dry_run_and_the_readme(cifar_dir, tmp_path, capsys):
    argv = ["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--depth", "110", "--dry-run"]
    assert main([*argv, "--val-size", "100"]) == 0
    out = capsys.readouterr().out  # no preset: nothing to depart from
    assert "departs from the paper" not in out and "paper_deviations" not in json.loads(out.splitlines()[-1])
    assert main([*argv, "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    assert len(PAPER_DEVIATIONS) == 5
    # Both papers trained "with a mini-batch size of 128 on two GPUs": BatchNorm saw 64 images at a time.
    assert "the papers split them over 2 GPUs, 64 each" in out
    readme = " ".join((ROOT / "README.md").read_text().split())
    for deviation in PAPER_DEVIATIONS:
        assert deviation in out
        assert " ".join(deviation.split()) in readme, deviation
    assert json.loads(out.splitlines()[-1])["paper_deviations"] == list(PAPER_DEVIATIONS)
    # What they say is what the code does: 390 full batches (80 images left out), 400 steps of warm-up.
    cfg, plan = resolved(["--preset", "paper", "--depth", "110"])
    assert (plan.steps_per_epoch, 50_000 - 390 * 128, round(cfg.warmup_epochs * 390)) == (390, 80, 400)
    assert cfg.precision == "auto" and "precision" not in PAPER_RECIPE


def test_bottlenecks_default_to_projection_shortcuts():
    assert resolved(["--block", "bottleneck", "--depth", "164"])[0].shortcut == "B"
    assert resolved(["--block", "bottleneck", "--depth", "164", "--shortcut", "A"])[0].shortcut == "A"
    assert resolved(["--depth", "20"])[0].shortcut == "A"


def test_dry_run_resolves_checks_and_writes_nothing(cifar_dir, tmp_path, capsys):
    code = main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"), "--preset", "paper",
                 "--batch-size", "50", "--max-steps", "20", "--dry-run"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and not (tmp_path / "runs").exists()
    report = json.loads(out[-1])
    assert (report["train_images"], report["val_images"], report["test_images"]) == (500, 0, 200)
    assert (report["total_steps"], report["epochs"], report["steps_per_epoch"]) == (20, 2, 10)
    assert report["config"]["batch_size"] == 50 and report["config"]["schedule"] == "multistep"
    assert report["model"]["params"] == 269_722 and "no validation split" in out[1]
    # A config that cannot run is refused by the dry run as it would be by a real one.
    assert main(["--data-dir", str(cifar_dir), "--batch-size", "600", "--val-size", "0", "--dry-run"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("depth", [60002, 6 * 10**29 + 2])
def test_a_model_the_device_cannot_hold_is_refused_before_it_is_built(cifar_dir, tmp_path, depth):
    for more in (["--dry-run"], []):
        result = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path / "runs", "--val-size", 100, "--depth", depth,
                         *more)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert f"ResNet-{depth}" in result.stderr and "needs at least" in result.stderr, result.stderr
        assert "cpu holds" in result.stderr or "cuda" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_memory_check_refuses_exactly_what_the_device_cannot_hold(cifar_dir, tmp_path, capsys, monkeypatch):
    counts = family_counts(20, "basic")
    need = 12 * counts.params + counts.activations * 50 * 4  # fp32 weights, grads and momentum; fp32 activations
    argv = ["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--depth", "20", "--batch-size", "50",
            "--val-size", "100",
            "--precision", "fp32", "--device", "cpu", "--dry-run"]
    data = held_data_bytes(TrainConfig(val_size=100), 500, 200)  # the tiny CIFAR's splits, beside the model
    monkeypatch.setattr("resnet_core.train_checks.device_memory_bytes", lambda device: need + data)
    assert main(argv) == 0
    monkeypatch.setattr("resnet_core.train_checks.device_memory_bytes", lambda device: need + data - 1)
    assert main(argv) == 2
    assert "the data would not fit on cpu" in capsys.readouterr().err
    capsys.readouterr()
    monkeypatch.setattr("resnet_core.train_checks.device_memory_bytes", lambda device: need - 1)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ResNet-20" in err and "batch 50 in fp32" in err and "cpu holds" in err
    # One byte short: rounded to GiB both numbers read the same ("needs at least 23.54 GiB ...
    # holds 23.54 GiB"), so they are given in bytes.
    assert f"needs at least {need:,} bytes" in err and f"cpu holds {need - 1:,} bytes" in err, err


@pytest.mark.slow
def test_split_seed_picks_the_validation_images_independently_of_seed(cifar_dir):
    data = load_cifar("cifar10", cifar_dir)

    def val_indices(*flags):
        cfg, plan = resolved([*TINY, "--device", "cpu", *flags], len(data.train_labels))
        from resnet_core.step import Trainer

        trainer = Trainer(cfg, plan)
        trainer.prepare_data(data)
        return trainer.val_loader.indices.tolist()

    assert val_indices("--seed", "1") == val_indices("--seed", "2")
    assert val_indices("--split-seed", "1") != val_indices("--split-seed", "2")


@pytest.mark.slow
def test_evaluation_runs_in_fp32_whatever_the_training_precision(cifar_dir):
    from resnet_core.step import Trainer

    data = load_cifar("cifar10", cifar_dir)
    cfg, plan = resolved([*TINY, "--device", "cpu", "--precision", "bf16", "--epochs", "1"], len(data.train_labels))
    trainer = Trainer(cfg, plan)
    trainer.setup(data)
    for _, x, y in trainer.train_loader.epoch(1):
        trainer.train_step(x, y)
    records = trainer.predict(trainer.val_loader)
    trainer.model.eval()
    with torch.no_grad():
        x = torch.cat([x for _, x, _ in trainer.val_loader.epoch(0)])
        probs = trainer.model(x).float().softmax(1)
    assert torch.equal(torch.from_numpy(records["topk_probs"]), probs.topk(5, dim=1).values)


@pytest.mark.slow
def test_max_steps_stops_mid_epoch_and_no_validation_monitors_the_test_set(cifar_dir, tmp_path):
    code = main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--max-steps", "11", "--val-size", "0",
                 "--batch-size", "50", "--log-every", "2", "--depth", "8", "--device", "cpu"])
    assert code == 0
    run_dir = only_run(tmp_path)
    status = json.loads((run_dir / "status.json").read_text())
    resolved_record = json.loads((run_dir / "config.json").read_text())["resolved"]
    assert (resolved_record["steps_per_epoch"], resolved_record["total_steps"]) == (10, 11)
    assert (status["state"], status["step"], status["epoch"], status["total_epochs"]) == ("completed", 11, 2, 2)
    assert status["best_val_acc"] is None and status["best_epoch"] is None
    assert not (run_dir / "best.pt").exists()  # nothing to choose it on: the test set never picks weights
    rows = runs.read_metrics(run_dir)
    epochs = [r for r in rows if r["type"] == "epoch"]
    assert [r["step"] for r in epochs] == [10, 11]
    assert all(r["val_acc"] is None and 0 <= r["test_acc"] <= 1 for r in epochs)
    assert runs.recorded_epochs(run_dir, "test") == [1, 2] and runs.recorded_epochs(run_dir, "val") == []
    final = [r for r in rows if r["type"] != "system"][-1]  # a sampler row may come after it
    assert final["type"] == "test" and final["test_acc"] == epochs[-1]["test_acc"] == status["test_acc"]
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] == 11


@pytest.fixture(scope="module")
def one_epoch_run(cifar_dir, tmp_path_factory) -> Path:
    """A finished 1-epoch run, trained once in this process for the 29 tests that each take
    a copy of it (stopped_after_one_epoch): a training of its own each cost them 3-5 s."""
    runs_dir = tmp_path_factory.mktemp("one-epoch")
    with signal_handlers_kept():  # a module's fixture: set up outside the test's own_signal_handlers
        assert main(["--data-dir", str(cifar_dir), "--runs-dir", str(runs_dir), "--epochs", "1", *TINY]) == 0
    return only_run(runs_dir)


def stopped_after_one_epoch(one_epoch_run: Path, runs_dir: Path) -> Path:
    """A 2-epoch run stopped after its first epoch, in runs_dir (made by copying the finished
    1-epoch run there and recording it as stopped with 2 epochs: what a SIGTERM at the
    epoch's end leaves). Nothing in a run folder names its own path but the record of
    --runs-dir and the log's first line; the record is set to runs_dir."""
    run_dir = Path(shutil.copytree(one_epoch_run, Path(runs_dir) / one_epoch_run.name))
    config = json.loads((run_dir / "config.json").read_text())
    config["config"]["epochs"] = 2
    config["config"]["runs_dir"] = str(runs_dir)
    runs.atomic_write_json(run_dir / "config.json", config)
    status = json.loads((run_dir / "status.json").read_text())
    runs.atomic_write_json(run_dir / "status.json", {**status, "state": "stopped", "test_acc": None})
    return run_dir


def folder_snapshot(run_dir: Path) -> dict:
    return {str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
            for p in sorted(run_dir.rglob("*"))}


@pytest.mark.slow
@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "last.pt").write_bytes((d / "last.pt").read_bytes()[:5000]), "last.pt is corrupt"),
    (lambda d: (d / "config.json").write_text("{}"), "config.json is not a run record"),
    (lambda d: (d / "config.json").write_text("[1, 2]"), "config.json holds a list, not a JSON object"),
    (lambda d: ((d / "config.json").unlink(), (d / "config.json").mkdir()), "config.json is unreadable"),
    (lambda d: (d / "config.json").write_bytes(b"\xff\xfe\x00garbage"), "config.json is unreadable"),
    # Read as every reader reads a run file: a FIFO hung the resume, a link to /dev/zero filled the
    # memory, deep nesting raised RecursionError, and a FIFO at last.pt hung it too.
    (lambda d: ((d / "config.json").unlink(), os.mkfifo(d / "config.json")), "config.json is not a regular file"),
    (lambda d: ((d / "config.json").unlink(), (d / "config.json").symlink_to("/dev/zero")),
     "config.json is a symbolic link"),
    (lambda d: (d / "config.json").write_text("[" * 100_000), "config.json is nested too deeply"),
    (lambda d: ((d / "last.pt").unlink(), os.mkfifo(d / "last.pt")),
     "last.pt is corrupt: last.pt is not a regular file"),
    (lambda d: (d / "status.json").write_bytes(b"\x00\x01binary"), "status.json"),
    (lambda d: torch.save({**torch.load(d / "last.pt", weights_only=True),
                           "model": {"fc.weight": torch.zeros(3, 3)}}, d / "last.pt"), "its weights are not those"),
    (lambda d: (d / "status.json").write_text('{"state": "stopped", "pid": "twelve"}'), "pid"),
    # A recorded depth far beyond its weights is judged without building it (depth 60002 took 85 s).
    (lambda d: runs.atomic_write_json(d / "config.json", {**json.loads((d / "config.json").read_text()),
     "config": {**json.loads((d / "config.json").read_text())["config"], "depth": 6 * 10**20 + 2}}),
     f"its weights are not those of the recorded ResNet-{6 * 10**20 + 2}"),
    # Past 24 digits a file's integer reads as a float (runs.values): refused as no depth at all.
    (lambda d: (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()), "config": 0})
                                              .replace('"config": 0', '"config": {"depth": ' + "9" * 5000 + "}")),
     "field 'depth' holds inf, not a int"),
])
def test_resume_of_a_damaged_run_is_one_line_and_changes_nothing(one_epoch_run, tmp_path, capsys, damage, message):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path)
    damage(run_dir)
    before = folder_snapshot(run_dir)
    capsys.readouterr()
    assert main(["--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert folder_snapshot(run_dir) == before


@pytest.mark.slow
def test_a_resume_whose_log_cannot_be_opened_is_one_line(one_epoch_run, tmp_path, capsys):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path)
    (run_dir / "train.log").unlink()
    (run_dir / "train.log").mkdir()  # opening it to append fails, as a folder made unwritable would
    capsys.readouterr()
    assert main(["--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write {run_dir / 'train.log'}" in err and "Traceback" not in err


@pytest.mark.slow
def test_resume_refuses_flags_that_would_change_the_trained_model_in_one_line(one_epoch_run, tmp_path, capsys):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path)
    before = folder_snapshot(run_dir)
    capsys.readouterr()
    assert main(["--resume", str(run_dir), "--depth", "20", "--lr", "5", "--epochs", "10"]) == 2
    err = capsys.readouterr().err
    assert err == ("python -m resnet_core.train: error: --depth, --lr cannot change on resume: the run was trained "
                   "with depth 8, lr 0.1; start a new run\n")
    assert folder_snapshot(run_dir) == before


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["a FIFO", "a link to a device"])
def test_a_last_checkpoint_that_is_no_regular_file_is_refused_at_once(one_epoch_run, tmp_path, kind):
    """The resume follows a link at last.pt (to a file), but opening a FIFO there waited
    for a writer forever."""
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path / "runs")
    (run_dir / "last.pt").unlink()
    os.mkfifo(run_dir / "last.pt") if kind == "a FIFO" else (run_dir / "last.pt").symlink_to("/dev/zero")
    before = folder_snapshot_names(run_dir)
    result = trainer("--resume", run_dir, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "last.pt is corrupt: last.pt is not a regular file" in result.stderr
    assert folder_snapshot_names(run_dir) == before


def folder_snapshot_names(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))


@pytest.mark.slow
def test_resume_with_run_dir_is_refused_not_one_of_them_ignored(one_epoch_run, tmp_path, capsys):
    """--run-dir beside --resume was silently dropped: the resumed run went on where it was."""
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path / "runs")
    before = folder_snapshot(run_dir)
    capsys.readouterr()
    assert main_exit_code(["--resume", str(run_dir), "--run-dir", str(tmp_path / "elsewhere")]) == 2
    err = capsys.readouterr().err
    assert "argument --run-dir: not allowed with argument --resume" in err and err.count("\n") == 1, err
    assert folder_snapshot(run_dir) == before and not (tmp_path / "elsewhere").exists()


@pytest.mark.slow
def test_resume_may_extend_the_run_and_change_how_it_computes_and_records_it(one_epoch_run, tmp_path):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path)
    # The run's own values are no change: a flag given as the run has it is fine.
    assert main(["--resume", str(run_dir), "--depth", "8", "--lr", "0.1", "--epochs", "3", "--precision", "fp32",
                 "--log-every", "4"]) == 0
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["epochs"] == 3 and record["config"]["precision"] == "fp32"
    assert record["config"]["log_every"] == 4 and record["resolved"]["precision"] == "fp32"
    (resumed,) = record["resumed_with"]
    assert resumed["epoch"] == 1 and resumed["step"] == 8 and isinstance(resumed["at"], float)
    assert resumed["changes"] == {"epochs": [2, 3], "precision": ["auto", "fp32"], "log_every": [2, 4]}
    info = runs.read_run(run_dir)
    assert info.state == "completed" and info.status["total_epochs"] == 3 and info.status["step"] == 24
    assert_history_is_clean(run_dir, 3)


@pytest.mark.slow
def test_resume_with_max_steps_sets_the_length_and_never_cuts_behind_the_checkpoint(one_epoch_run, tmp_path, capsys):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path)
    capsys.readouterr()
    assert main(["--resume", str(run_dir), "--max-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-steps 4" in err and "step 8" in err
    assert main(["--resume", str(run_dir), "--max-steps", "20"]) == 0  # epochs follow: 3 of 8 steps
    record = json.loads((run_dir / "config.json").read_text())
    assert record["resumed_with"][0]["changes"] == {"max_steps": [0, 20], "epochs": [2, 3]}
    assert runs.read_run(run_dir).status["step"] == 20


def test_the_option_schema_says_which_flags_a_resume_may_change():
    assert resumable_fields() == {"epochs", "max_steps", "device", "precision", "channels_last", "compile",
                                  "data_dir", "download", "log_every", "log_seconds"}
    help_text = build_parser().format_help()
    assert "a resume may change it" in help_text


@pytest.mark.slow
def test_resume_refuses_another_format_version(one_epoch_run, tmp_path, capsys):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    runs.atomic_write_json(run_dir / "config.json", {**config, "format_version": runs.FORMAT_VERSION + 1})
    before = folder_snapshot(run_dir)
    assert main(["--resume", str(run_dir)]) == 2
    assert "a folder never mixes two versions" in capsys.readouterr().err
    assert folder_snapshot(run_dir) == before


@pytest.mark.slow
def test_a_kill_between_last_and_best_checkpoint_is_repaired_on_resume(cifar_dir, tmp_path):
    # Die (as from kill -9) right after epoch 2's last.pt, before its best.pt: the
    # synthetic task improves on validation every early epoch.
    script = (
        "import os, sys\n"
        "from resnet_core import train\n"
        "from resnet_core.runs import writing\n"
        "write = writing.atomic_write_bytes\n"
        "def dying_write(path, data):\n"
        "    if path.name == 'best.pt':\n"
        "        if train.torch.load(path.parent / 'last.pt', weights_only=True)['epoch'] == 2:\n"
        "            os._exit(9)\n"
        "    write(path, data)\n"
        "writing.atomic_write_bytes = dying_write\n"
        "sys.exit(train.main(sys.argv[1:]))\n")
    result = subprocess.run([sys.executable, "-c", script, "--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path),
                             "--epochs", "2", *TINY], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 9, result.stderr
    run_dir = only_run(tmp_path)
    last = torch.load(run_dir / "last.pt", weights_only=True)
    assert last["best_epoch"] == 2 and torch.load(run_dir / "best.pt", weights_only=True)["epoch"] == 1

    assert main(["--resume", str(run_dir)]) == 0
    status = runs.read_run(run_dir).status
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert status["state"] == "completed" and status["best_epoch"] == best["epoch"] == best["best_epoch"] == 2
    assert all(torch.equal(best["model"][k], last["model"][k]) for k in last["model"])


@pytest.mark.slow
def test_a_symlinked_checkpoint_is_replaced_not_written_through(one_epoch_run, tmp_path):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path / "runs")
    outside = tmp_path / "outside.pt"
    outside.write_bytes((run_dir / "last.pt").read_bytes())
    original = outside.read_bytes()
    (run_dir / "last.pt").unlink()
    (run_dir / "last.pt").symlink_to(outside)
    assert main(["--resume", str(run_dir)]) == 0
    assert outside.read_bytes() == original
    assert not (run_dir / "last.pt").is_symlink() and runs.read_run(run_dir).state == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("make", [os.mkfifo, lambda p: p.symlink_to(p.parent / "last.pt")], ids=["a FIFO", "a symlink"])
def test_a_best_checkpoint_that_is_no_file_is_restored_not_read(one_epoch_run, tmp_path, make):
    """The resume checks that best.pt holds the best epoch: a FIFO there hung it (torch.load
    waited for a writer); a symlink was read through. Either is restored from last.pt."""
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path / "runs")
    (run_dir / "best.pt").unlink()
    make(run_dir / "best.pt")
    assert main(["--resume", str(run_dir)]) == 0
    status = runs.read_run(run_dir).status
    assert (run_dir / "best.pt").is_file() and not (run_dir / "best.pt").is_symlink()
    assert torch.load(run_dir / "best.pt", weights_only=True)["epoch"] == status["best_epoch"]


@pytest.mark.slow
def test_resume_refuses_to_append_through_a_symlinked_log(one_epoch_run, tmp_path, capsys):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path / "runs")
    outside = tmp_path / "outside.log"
    outside.write_text("keep\n")
    (run_dir / "train.log").unlink()
    (run_dir / "train.log").symlink_to(outside)
    assert main(["--resume", str(run_dir)]) == 2
    assert "train.log is a symlink" in capsys.readouterr().err and outside.read_text() == "keep\n"


@pytest.mark.slow
def test_resume_removes_the_temp_files_a_kill_left(one_epoch_run, tmp_path):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path)
    leftovers = [run_dir / ".last.pt.k2j4.tmp", run_dir / ".status.json.x1.tmp",
                 run_dir / "predictions" / ".val_epoch_002.npz.a9.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a write")
    assert main(["--resume", str(run_dir)]) == 0
    assert not any(p.exists() for p in leftovers)
    assert not list(run_dir.rglob("*.tmp")) and runs.read_run(run_dir).state == "completed"


def test_preset_milestones_and_warmup_are_judged_against_the_presets_length(cifar_dir, capsys):
    # The paper preset sets 64k iterations: milestones past the default 30 epochs are fine.
    argv = ["--data-dir", str(cifar_dir), "--preset", "paper", "--batch-size", "50", "--dry-run"]
    assert main([*argv, "--milestones", "100", "150"]) == 0
    assert main([*argv, "--warmup-epochs", "40"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["config"]["warmup_epochs"] == 40 and report["total_steps"] == 64_000


def test_a_dry_run_never_downloads(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "data"), "--download", "--dry-run"]) == 2
    assert "does not download" in capsys.readouterr().err and not (tmp_path / "data").exists()


@pytest.mark.slow
def test_a_second_trainer_on_the_same_run_folder_is_refused(one_epoch_run, tmp_path, capsys):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from resnet_core import runs; "
                               "runs.claim_run_dir(sys.argv[1]); print('held', flush=True); time.sleep(60)",
                               str(run_dir)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = folder_snapshot(run_dir)
        assert main(["--resume", str(run_dir)]) == 2
        assert "being written by another trainer" in capsys.readouterr().err
        assert folder_snapshot(run_dir) == before
    finally:
        holder.kill()
        holder.wait()
    assert main(["--resume", str(run_dir)]) == 0


@pytest.mark.slow
def test_resume_refuses_to_write_predictions_or_dynamics_through_a_symlink(one_epoch_run, tmp_path, capsys):
    run_dir = stopped_after_one_epoch(one_epoch_run, tmp_path / "runs")
    for folder in (runs.PREDICTIONS_DIR, runs.DYNAMICS_DIR):
        outside = tmp_path / f"outside-{folder}"
        (run_dir / folder).rename(outside)
        (run_dir / folder).symlink_to(outside)
        before = sorted(p.name for p in outside.iterdir())
        assert main(["--resume", str(run_dir)]) == 2
        assert f"{folder} is a symlink" in capsys.readouterr().err
        assert sorted(p.name for p in outside.iterdir()) == before
        (run_dir / folder).unlink()
        outside.rename(run_dir / folder)


def test_the_command_line_is_the_schema_and_round_trips():
    from dataclasses import fields

    from resnet_core.config_flags import config_argv

    cfg = TrainConfig(depth=56, block="basic", shortcut="C", preact=True, epochs=7, max_steps=50, batch_size=64,
                      lr=0.05,
                      momentum=0.8, weight_decay=5e-4, nesterov=True, schedule="multistep", milestones=[2.5, 5.0],
                      warmup_epochs=0.5, warmup_mode="constant", seed=3, split_seed=9, device="cpu",
                      precision="bf16", channels_last=False, compile=True, sync_bn=True, data_dir="/d", runs_dir="/r",
                      name="x", sweep="s1", val_size=100, subset=200, preset="paper", download=True, log_every=5,
                      log_seconds=0.5)
    names = {f.name for f in fields(TrainConfig)}
    parsed = parse(config_argv(cfg, names))
    assert parsed.cfg == cfg and parsed.typed == names  # every option has a flag, generated from its field
    # Typed means given, even at the default value; nothing else counts as typed.
    assert parse(["--lr", "0.1", "--no-compile"]).typed == {"lr", "compile"}
    assert parse([]).typed == set() and parse([]).cfg == TrainConfig()


@pytest.mark.slow
def test_nesterov_reaches_the_optimizer_and_needs_momentum(cifar_dir, capsys):
    from resnet_core.step import Trainer

    data = load_cifar("cifar10", cifar_dir)
    for flags, expected in (([], False), (["--nesterov"], True)):
        cfg, plan = resolved([*TINY, "--device", "cpu", *flags], len(data.train_labels))
        trainer = Trainer(cfg, plan)
        trainer.setup(data)
        assert trainer.optimizer.param_groups[0]["nesterov"] is expected
    assert main(["--data-dir", str(cifar_dir), "--nesterov", "--momentum", "0", "--dry-run"]) == 2
    assert "Nesterov momentum needs a momentum above 0" in capsys.readouterr().err


def _documented(section: str) -> set[str]:
    """The ``names`` of one file's section of the format's docstring (resnet_core/runs/folder_format.py)."""
    import re

    from resnet_core.runs import folder_format

    doc = folder_format.__doc__
    start = doc.index(f"\n``{section}``")
    end = doc.find("\n``", start + 1)  # the next file's heading: only headings start a line with ``
    text = doc[start:end]
    return set(re.findall(r"``([a-z_]+)``", text)) | set(re.findall(r'"([a-z_]+)"', text))


@pytest.mark.slow
def test_what_a_run_writes_is_what_the_format_documents(reference_run):
    """The keys actually written, the typed records and the docstring agree (the docstring
    once promised loader rng and partial-epoch state that were no longer saved)."""
    status = json.loads((reference_run / "status.json").read_text())
    assert set(status) == set(runs.StatusRecord.__annotations__) and set(status) <= _documented("status.json")
    states = set(runs.STATES) | {runs.CRASHED, runs.UNREADABLE}  # derived states the section names
    assert _documented("status.json") - states - set(runs.PHASES) == set(status)  # and it promises nothing else
    rows = runs.read_metrics(reference_run)
    rows_doc = _documented("metrics.jsonl")
    for kind, record in (("step", runs.StepRow), ("epoch", runs.EpochRow), ("test", runs.TestRow)):
        written = {k for r in rows if r["type"] == kind for k in r}
        assert written - {"time"} <= set(record.__annotations__) and written <= rows_doc | {"type"}, kind
    config = json.loads((reference_run / "config.json").read_text())
    assert set(config) | set(config["resolved"]) <= _documented("config.json")
    checkpoint = torch.load(reference_run / "last.pt", weights_only=True)
    partial_epoch = {"epoch", "batch", "sums", "seconds", "dynamics"}  # what a graceful mid-epoch stop saves (loop)
    assert set(checkpoint) | set(checkpoint["rng"]) | partial_epoch == _documented("last.pt")


class FakeClock:
    """time.perf_counter as a test sets it: the seconds move only when the test says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clocked_run(cifar_dir, tmp_path_factory):
    """A 2-epoch run in this process on a fake clock whose steps and evaluations take the
    seconds the test says, with every status.json it wrote (resnet_core.loop.Run)."""
    from resnet_core.loop import Prepared, Run
    from resnet_core.stop_request import StopRequested
    from resnet_core.step import Trainer

    clock, written = FakeClock(), []
    # Epoch 1: 0.1 s a step but 2.5 s for step 3; epoch 2 (steps 9..16): 0.7 s a step.
    step_seconds = {s: 0.1 for s in range(1, 9)} | {3: 2.5} | {s: 0.7 for s in range(9, 17)}
    train_step, predict, set_status = Trainer.train_step, Trainer.predict, runs.RunWriter.set_status

    def timed_step(self, x, y):
        out = train_step(self, x, y)
        clock.now += step_seconds[self.step]
        return out

    def timed_predict(self, loader, progress):
        def slow(done):  # each evaluation batch takes 2.5 s: past log_seconds, so it is shown
            clock.now += 2.5
            progress(done)
        return predict(self, loader, slow)

    def recorded(self, **changes):
        set_status(self, **changes)
        written.append(dict(self.status))

    cfg = apply_presets(TrainConfig(depth=8, batch_size=50, val_size=100, epochs=2, seed=1, device="cpu",
                                    compile=False, data_dir=str(cifar_dir), log_every=5, log_seconds=2.0),
                        set(), 500)
    data = load_cifar("cifar10", cifar_dir)
    plan = make_plan(cfg, len(data.train_labels))
    run_dir = runs.new_run_dir(tmp_path_factory.mktemp("clocked"), "clocked")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "train_step", timed_step)
        mp.setattr(Trainer, "predict", timed_predict)
        mp.setattr(runs.RunWriter, "set_status", recorded)
        assert Run(Prepared(cfg, plan, data, run_dir), StopRequested(), clock=clock).execute() == 0
    return run_dir, written


@pytest.mark.slow
def test_step_rows_come_by_count_or_by_time_whichever_is_first(clocked_run):
    run_dir, _ = clocked_run
    rows = runs.read_metrics(run_dir)
    # 1: the first step; 3: 2.6 s after the row of step 1; 5, 10, 15: every 5th step;
    # 13: 2.1 s after the row of step 10; 8 and 16: the ends of the epochs. One row a step.
    assert [r["step"] for r in rows if r["type"] == "step"] == [1, 3, 5, 8, 10, 13, 15, 16]
    assert [r["eval_seconds"] for r in rows if r["type"] == "epoch"] == [pytest.approx(2.5)] * 2


@pytest.mark.slow
def test_status_says_the_phase_and_the_first_steps_time(clocked_run):
    _, written = clocked_run
    phases = [w["phase"] for i, w in enumerate(written) if i == 0 or w["phase"] != written[i - 1]["phase"]]
    assert phases == ["queued", "loading data", "building model", "training", "validating", "saving",
                      "training", "validating", "saving", "testing", "saving", None]
    assert written[-1]["state"] == "completed"
    trained = next(w for w in written if w["phase"] == "training")
    assert trained["first_step_s"] == pytest.approx(0.1) and trained["step"] == 1
    # Evaluations count their images: 0 of the split when they start, then as they go.
    shown = [(w["phase"], w["phase_done"], w["phase_total"]) for w in written if w["phase"] in runs.EVALUATION_PHASES]
    validating = [("validating", 0, 100), ("validating", 100, 100)]
    testing = [("testing", 0, 200), ("testing", 200, 200)]
    assert shown == validating * 2 + testing
    assert all(w["phase_done"] is None for w in written if w["phase"] not in runs.EVALUATION_PHASES)


@pytest.mark.slow
def test_system_rows_cover_the_run_from_loading_to_the_end(cifar_dir, tmp_path, monkeypatch):
    """Usage rows come from a thread in every phase, with the run's position, and the
    format's docstring names each of their fields."""
    from resnet_core import loop
    from resnet_core.loop import Prepared, Run
    from resnet_core.stop_request import StopRequested

    monkeypatch.setattr(loop, "SYSTEM_ROW_MIN_S", 0.01)
    load = runs.RunWriter.start_metrics

    def slow_start(self, step, epoch):  # data loading waits long enough for a row or two
        load(self, step, epoch)
        time.sleep(0.1)

    monkeypatch.setattr(runs.RunWriter, "start_metrics", slow_start)
    cfg = apply_presets(TrainConfig(depth=8, batch_size=50, val_size=100, epochs=2, seed=1, device="cpu",
                                    compile=False, data_dir=str(cifar_dir), log_every=5, log_seconds=0.01),
                        set(), 500)
    data = load_cifar("cifar10", cifar_dir)
    run_dir = runs.new_run_dir(tmp_path, "usage")
    assert Run(Prepared(cfg, make_plan(cfg, len(data.train_labels)), data, run_dir), StopRequested()).execute() == 0
    rows = runs.read_metrics(run_dir)
    system = [r for r in rows if r["type"] == "system"]
    assert len(system) >= 5
    assert system[0]["step"] == 0 and rows.index(system[0]) < min(i for i, r in enumerate(rows) if r["type"] == "step")
    assert [r["step"] for r in system] == sorted(r["step"] for r in system)
    assert {r["epoch"] for r in system} <= {1, 2} and system[-1]["step"] == 16
    assert all(r["ram_mb"] > 0 for r in system)
    written = {k for r in system for k in r}
    assert written - {"time"} <= set(runs.SystemRow.__annotations__)
    assert written <= _documented("metrics.jsonl") | {"type"}


def test_a_resume_keeps_the_system_rows_its_checkpoint_covers(tmp_path):
    rows = [{"type": "system", "epoch": 1, "step": 0}, {"type": "step", "epoch": 1, "step": 4},
            {"type": "system", "epoch": 1, "step": 8}, {"type": "epoch", "epoch": 1, "step": 8},
            {"type": "system", "epoch": 2, "step": 9}, {"type": "step", "epoch": 2, "step": 12}]
    (tmp_path / runs.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs.truncate_to_checkpoint(tmp_path, step=8, epoch=1)
    assert runs.read_metrics(tmp_path) == rows[:4]


def test_progress_before_the_run_is_printed_at_each_tenth_and_each_new_percent_after_2_s(monkeypatch, capsys,
                                                                                          tmp_path):
    """The trainer's lines while it decodes or downloads, on a fake clock: each 10%, and a
    new percent between them once 2 s went by; every line is one the Monitor reads back."""
    clock = [0.0]
    monkeypatch.setattr(train.time, "monotonic", lambda: clock[0])
    report = train._progress("decoding the images of /photos", "images")
    for done in range(0, 1001, 5):  # 0.5% a call, 0.1 s apart
        clock[0] += 0.1
        report(done, 1000)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [runs.StartingProgress("decoding the images of /photos", done, 1000, "images").line
                     for done in range(0, 1001, 100)]
    report = train._progress("downloading CIFAR-10", "bytes")
    for done in range(0, 1001, 5):  # slow: 3 s a call
        clock[0] += 3
        report(done, 1000)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 101 and lines[37] == "downloading CIFAR-10: 370 of 1,000 bytes (37%)"  # each new percent
    (tmp_path / runs.CONSOLE_FILE).write_text("\n".join(lines) + "\n")
    assert runs.starting_progress(tmp_path) == runs.StartingProgress("downloading CIFAR-10", 1000, 1000, "bytes")
