"""The trainer end to end, through its command line, on tiny synthetic CIFAR-format data."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, write_cifar_folder
from resnet_core import runs
from resnet_core.data import BATCH_FOLDER, load_cifar10, split_train_val
from resnet_core.train import TrainConfig, config_errors, main

TINY = ["--depth", "8", "--batch-size", "50", "--val-size", "100", "--log-every", "2", "--seed", "1"]


def trainer(*args, wait=True, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "resnet_core.train", *map(str, args)]
    if wait:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT, **kwargs)
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


@pytest.fixture(scope="module")
def reference_run(cifar_dir, tmp_path_factory):
    """An uninterrupted 3-epoch run that resumed runs must reproduce exactly."""
    runs_dir = tmp_path_factory.mktemp("reference")
    result = trainer("--data-dir", cifar_dir, "--runs-dir", runs_dir, "--epochs", 3, *TINY)
    assert result.returncode == 0, result.stderr
    return only_run(runs_dir)


def test_a_run_learns_and_writes_the_documented_folder(reference_run, cifar_dir):
    run_dir = reference_run
    config = json.loads((run_dir / "config.json").read_text())
    assert config["format_version"] == runs.FORMAT_VERSION
    assert config["config"]["depth"] == 8 and config["config"]["epochs"] == 3
    resolved = config["resolved"]
    assert resolved["device"] == "cpu" and resolved["precision"] in ("bf16", "fp32")
    assert (resolved["train_size"], resolved["val_size"], resolved["val_source"]) == (400, 100, "train")
    assert resolved["steps_per_epoch"] == 8 and resolved["total_steps"] == 24
    assert config["versions"]["torch"] == torch.__version__ and len(config["classes"]) == 10

    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and status["epoch"] == 3 and status["step"] == 24
    assert status["error"] is None and status["finished_at"] >= status["started_at"]

    rows = runs.read_metrics(run_dir)
    step_rows = [r for r in rows if r["type"] == "step"]
    assert len(step_rows) == 12 and {"loss", "acc", "lr", "images_per_s"} <= step_rows[0].keys()
    epoch_rows = [r for r in rows if r["type"] == "epoch"]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds", "images_per_s",
            "peak_memory_mb"} <= epoch_rows[0].keys()
    # The synthetic classes are easy: a short run must beat chance (10%) by far.
    assert epoch_rows[-1]["val_acc"] >= 0.5, epoch_rows
    assert status["best_val_acc"] == max(r["val_acc"] for r in epoch_rows)
    test_row = rows[-1]
    assert test_row["type"] == "test" and test_row["test_acc"] == status["test_acc"] >= 0.5
    assert_history_is_clean(run_dir, 3)

    # Validation records point back into the training set, with its labels.
    data = load_cifar10(cifar_dir)
    _, val_idx = split_train_val(500, 100, seed=1)
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

    first_session = info.status["finished_at"] - info.status["started_at"]
    result = trainer("--resume", run_dir)
    assert result.returncode == 0, result.stderr
    assert runs.read_run(run_dir).state == "completed"
    assert runs.read_run(run_dir).status["elapsed_before_s"] == pytest.approx(first_session)
    assert_history_is_clean(run_dir, 3)
    reference, resumed = weights(reference_run), weights(run_dir)
    assert all(torch.equal(reference[k], resumed[k]) for k in reference), "resume diverged from the uninterrupted run"


def test_sigkill_shows_crashed_and_resume_keeps_one_history(reference_run, cifar_dir, tmp_path):
    proc = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 3, *TINY, wait=False)
    wait_for(lambda: any(tmp_path.iterdir()) and step_count(only_run(tmp_path)) >= 12, what="steps in epoch 2")
    proc.kill()
    proc.wait(30)
    run_dir = only_run(tmp_path)
    info = runs.read_run(run_dir)
    assert info.state == "crashed" and info.can_resume

    result = trainer("--resume", run_dir)
    assert result.returncode == 0, result.stderr
    assert_history_is_clean(run_dir, 3)
    assert [r["step"] for r in runs.read_metrics(run_dir) if r["type"] == "step"] == list(range(2, 25, 2))
    reference, resumed = weights(reference_run), weights(run_dir)
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


def test_a_nan_loss_marks_the_run_diverged(cifar_dir, tmp_path):
    result = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 2, *TINY, "--lr", "1e30")
    assert result.returncode == 3
    status = runs.read_run(only_run(tmp_path)).status
    assert status["state"] == "diverged" and "loss became" in status["error"]


def test_an_exception_marks_the_run_failed_with_its_message(tmp_path):
    data = write_cifar_folder(tmp_path / "data", 200, 20)
    path = data / BATCH_FOLDER / "data_batch_2"
    path.write_bytes(path.read_bytes()[:999])
    result = trainer("--data-dir", data, "--runs-dir", tmp_path / "runs", "--epochs", 1, *TINY)
    assert result.returncode == 1
    info = runs.read_run(only_run(tmp_path / "runs"))
    assert info.state == "failed" and "data_batch_2 is not a readable CIFAR-10 batch" in info.status["error"]
    assert "Traceback" in (info.path / "train.log").read_text()


@pytest.mark.parametrize("args, message", [
    (["--depth", "21"], "depth 21 is not 6n+2 for basic blocks; nearest: 20, 26"),
    (["--lr", "-1"], "learning rate must be a positive number"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--name", "///"], "a run name needs a letter or digit"),
])
def test_bad_input_is_refused_before_anything_is_written(cifar_dir, tmp_path, args, message):
    result = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path / "runs", *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_data_names_the_folder(tmp_path):
    result = trainer("--data-dir", tmp_path / "empty", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert str((tmp_path / "empty").resolve()) in result.stderr and "--download" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_refused_launch_into_a_given_run_dir_leaves_a_failed_run(cifar_dir, tmp_path):
    run_dir = tmp_path / "runs" / "launched-by-the-dashboard"
    run_dir.mkdir(parents=True)
    result = trainer("--data-dir", cifar_dir, "--run-dir", run_dir, "--device", "cuda:7")
    assert result.returncode == 2
    info = runs.read_run(run_dir)
    assert info.state == "failed" and "cuda" in info.status["error"] and info.config["config"]["device"] == "cuda:7"


def test_resume_refuses_what_it_cannot_continue(reference_run, tmp_path):
    assert "not a run folder" in trainer("--resume", tmp_path).stderr
    assert "already completed" in trainer("--resume", reference_run).stderr


def test_config_errors_are_per_field():
    errors = config_errors(TrainConfig(depth=165, block="bottleneck", epochs=0, val_size=-1))
    assert errors["depth"].startswith("depth 165 is not 9n+2") and set(errors) == {"depth", "epochs", "val_size"}
    assert config_errors(TrainConfig()) == {}


@pytest.mark.parametrize("precision, channels_last", [("fp16", "--no-channels-last"), ("fp32", "--channels-last"),
                                                      ("bf16", "--no-channels-last")])
def test_every_precision_path_runs_on_cpu(cifar_dir, tmp_path, precision, channels_last):
    code = main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--epochs", "1", *TINY,
                 "--precision", precision, channels_last, "--val-size", "0", "--device", "cpu"])
    assert code == 0
    run_dir = only_run(tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["resolved"]["precision"] == precision
    assert config["resolved"]["channels_last"] == (channels_last == "--channels-last")
    assert config["resolved"]["val_source"] == "test"  # val-size 0 validates on the test set
    assert runs.read_run(run_dir).state == "completed"
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    assert bool(ckpt["scaler"]) == (precision == "fp16")  # a grad scaler only for fp16


def test_the_compiled_training_step_runs_on_cpu(cifar_dir, tmp_path):
    code = main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path), "--epochs", "1", *TINY, "--compile"])
    assert code == 0
    run_dir = only_run(tmp_path)
    assert json.loads((run_dir / "config.json").read_text())["resolved"]["compile"] is True
    assert runs.read_run(run_dir).state == "completed"
    assert "torch.compile failed" not in (run_dir / "train.log").read_text()


def test_a_second_run_on_the_same_device_waits_queued(cifar_dir, tmp_path):
    first = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 50, *TINY, "--name", "first", wait=False)
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


def test_paper_preset_fills_what_was_not_typed():
    from resnet_core.train import parse

    cfg, _, _ = parse(["--preset", "paper", "--depth", "110", "--lr", "0.05"])
    assert (cfg.batch_size, cfg.weight_decay, cfg.momentum, cfg.schedule, cfg.val_size) == (128, 1e-4, 0.9, "multistep", 5000)
    assert cfg.lr == 0.05  # typed flags beat the preset
    assert cfg.epochs == 182  # 64k iterations of 351 steps
    assert [round(m * 351) for m in cfg.milestones] == [32_000, 48_000]
    assert cfg.warmup_mode == "constant" and round(cfg.warmup_epochs * 351) == 400
    assert parse(["--preset", "paper", "--depth", "56"])[0].warmup_epochs == 0
