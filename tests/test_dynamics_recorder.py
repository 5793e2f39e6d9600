"""The training images' record (resnet_core.dynamics_recorder, dynamics/ in the run folder)
and planted label noise (resnet_core.label_noise): against hand computations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from resnet_core import dynamics, runs, train
from resnet_core.cifar import load_cifar, split_train_val
from resnet_core.config import TrainConfig, apply_presets, make_plan
from resnet_core.config_checks import config_errors
from resnet_core.distributed import Group, World
from resnet_core.dynamics_recorder import DynamicsRecorder
from resnet_core.label_noise import flip_labels
from resnet_core.loop import Prepared, Run
from resnet_core.step import Trainer
from resnet_core.stop_request import StopRequested

# fp32 and the default memory format: the hand replays below compute what the steps did.
EXACT = dict(depth=8, batch_size=50, val_size=100, seed=1, device="cpu", precision="fp32", channels_last=False,
             compile=False, log_every=5, log_seconds=0.0)


# ------------------------------------------------------------------- label noise

def test_flip_labels_flips_exactly_round_p_n_never_to_the_same_class():
    labels = np.arange(1000) % 10
    before = labels.copy()
    flipped = flip_labels(labels, 0.2, seed=7, num_classes=10)
    assert np.array_equal(labels, before) and flipped is not labels  # a copy, the input untouched
    assert (flipped != labels).sum() == 200 and flipped.dtype == labels.dtype
    assert flipped.min() >= 0 and flipped.max() <= 9
    assert (flip_labels(labels, 0.0125, 0, 10) != labels).sum() == round(0.0125 * 1000)
    assert np.array_equal(flip_labels(labels, 0.0, 7, 10), labels)
    # every other class is a target: 200 flips over 9 others reach them all
    assert set(((flipped - labels) % 10)[flipped != labels].tolist()) == set(range(1, 10))


def test_flip_labels_is_reproducible_by_seed_and_seeds_differ():
    labels = np.random.default_rng(0).integers(0, 10, 500)
    one = flip_labels(labels, 0.3, seed=1, num_classes=10)
    assert np.array_equal(one, flip_labels(labels, 0.3, seed=1, num_classes=10))
    two = flip_labels(labels, 0.3, seed=2, num_classes=10)
    assert not np.array_equal(one, two)
    assert set(np.flatnonzero(one != labels)) != set(np.flatnonzero(two != labels))


def test_label_noise_is_a_fraction_below_one():
    assert "label_noise" not in config_errors(TrainConfig(label_noise=0.999))
    for bad in (-0.1, 1.0, float("nan")):
        assert "label_noise" in config_errors(TrainConfig(label_noise=bad))
    assert "label_noise_seed" in config_errors(TrainConfig(label_noise_seed=-1))


# ------------------------------------------------------------------- the recorder

def test_the_recorder_holds_each_images_label_probability_and_correctness_by_position():
    indices = np.array([7, 3, 12, 0, 5])  # training-set indices of the split's positions 0..4
    recorder = DynamicsRecorder(indices, torch.device("cpu"))
    recorder.start()
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 4.0]])
    recorder.add(torch.tensor([12, 7, 5]), logits.to(torch.bfloat16), torch.tensor([2, 2, 0]))
    prob, correct = recorder.take(Group(World()))
    # by hand: softmax in fp32 of the bf16 logits (these values are exact in bf16)
    e = np.exp(logits.numpy())
    soft = e / e.sum(1, keepdims=True)
    expected = np.full(5, np.nan, dtype=np.float32)
    expected[[2, 0, 4]] = soft[[0, 1, 2], [2, 2, 0]]
    assert prob.dtype == np.float32 and correct.dtype == bool
    np.testing.assert_allclose(prob, expected, rtol=1e-6)  # NaN where not presented: positions 1 and 3
    assert correct.tolist() == [False, False, False, False, False]  # argmax 0, 1, 2 against labels 2, 2, 0
    recorder.add(torch.tensor([3]), torch.tensor([[0.0, 5.0, 0.0]]), torch.tensor([1]))
    prob, correct = recorder.take(Group(World()))
    assert correct.tolist() == [False, True, False, False, False]
    assert prob[1] == pytest.approx(np.exp(5) / (np.exp(5) + 2))

    state = recorder.state(Group(World()))
    recorder.start()  # a new epoch: nothing presented
    fresh = recorder.take(Group(World()))
    assert np.isnan(fresh[0]).all() and not fresh[1].any()
    recorder.start(state)  # carried on from a mid-epoch checkpoint
    carried = recorder.take(Group(World()))
    assert np.array_equal(carried[0], prob, equal_nan=True) and np.array_equal(carried[1], correct)


def test_the_epoch_files_hold_float16_and_packed_bits_and_a_resume_drops_later_ones(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    writer = runs.RunWriter(run_dir)
    writer.save_training_images(np.array([4, 9, 1]), np.array([1, 2, 3]), np.array([1, 0, 3]))
    prob = np.array([0.25, np.nan, 0.7, 0.1, 0.9, 0.5, 0.3, 0.2, 0.6], dtype=np.float32)
    correct = np.array([1, 0, 1, 0, 1, 1, 0, 0, 1], dtype=bool)
    for epoch in (1, 2, 3):
        writer.save_dynamics(epoch, prob, correct)
    images = np.load(runs.dynamics_images_path(run_dir))
    assert {k: images[k].tolist() for k in images.files} == {"indices": [4, 9, 1], "labels": [1, 2, 3],
                                                             "original_labels": [1, 0, 3]}
    saved = np.load(runs.dynamics_path(run_dir, 2))
    assert saved["label_prob"].dtype == np.float16 and saved["correct"].dtype == np.uint8
    assert np.array_equal(saved["label_prob"], prob.astype(np.float16), equal_nan=True)
    assert saved["correct"].tolist() == [0b10101100, 0b10000000]  # big bit order, padding bits 0
    runs.truncate_to_checkpoint(run_dir, step=0, epoch=1)
    assert sorted(p.name for p in (run_dir / runs.DYNAMICS_DIR).iterdir()) == ["train_epoch_001.npz",
                                                                              "train_images.npz"]


def test_a_linked_dynamics_folder_is_never_written_through_and_its_temps_are_cleaned(tmp_path):
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run_dir.mkdir()
    elsewhere.mkdir()
    (run_dir / runs.DYNAMICS_DIR).symlink_to(elsewhere)
    with pytest.raises(runs.RunFolderError, match="symbolic link"):
        runs.RunWriter(run_dir).save_dynamics(1, np.zeros(3), np.zeros(3, bool))
    assert not any(elsewhere.iterdir())
    (run_dir / runs.DYNAMICS_DIR).unlink()
    (run_dir / runs.DYNAMICS_DIR).mkdir()
    temp = run_dir / runs.DYNAMICS_DIR / ".train_epoch_001.npz.abc.tmp"
    temp.write_bytes(b"half")
    assert runs.remove_stale_temp_files(run_dir) == [temp]


# ------------------------------------------------------------------- a run, replayed by hand

def frozen_config(cifar_dir, **changes) -> TrainConfig:
    """lr 0: the weights never change, so every step's logits are the initial model's, in
    training mode (BatchNorm normalises by the batch's own statistics)."""
    values = dict(EXACT, lr=0.0, subset=120, epochs=2, label_noise=0.25, label_noise_seed=3, data_dir=str(cifar_dir))
    return apply_presets(TrainConfig(**(values | changes)), set(), 500)


@pytest.mark.slow
def test_a_runs_record_is_what_its_epochs_batches_give_through_the_initial_model(cifar_dir, tmp_path, capsys):
    cfg = frozen_config(cifar_dir)
    data = load_cifar("cifar10", cifar_dir)
    plan = make_plan(cfg, len(data.train_labels))
    run_dir = runs.new_run_dir(tmp_path, "frozen")
    assert Run(Prepared(cfg, plan, data, run_dir), StopRequested()).execute() == 0

    train_idx, val_idx = split_train_val(500, 100, seed=0)
    images = np.load(runs.dynamics_images_path(run_dir))
    assert np.array_equal(images["indices"], train_idx[:120])
    assert np.array_equal(images["original_labels"], data.train_labels[train_idx[:120]])
    assert np.array_equal(images["labels"], flip_labels(images["original_labels"], 0.25, 3, 10))
    assert (images["labels"] != images["original_labels"]).sum() == 30
    # Validation and test labels are the data set's own.
    assert np.array_equal(runs.load_predictions(run_dir, "val", 2)["labels"], data.train_labels[val_idx])
    assert np.array_equal(runs.load_predictions(run_dir, "test", 2)["labels"], data.test_labels)

    t = Trainer(cfg, plan, torch.device("cpu"))
    t.setup(data)  # the same seed: the run's initial weights
    position = {int(i): p for p, i in enumerate(images["indices"])}
    for epoch in (1, 2):
        expected_prob, expected_right = np.full(120, np.nan, np.float32), np.zeros(120, bool)
        with torch.no_grad():
            for idx, x, y in t.train_loader.epoch(epoch):  # train mode: as the step computed them
                logits = t.model(x).float()
                pos = [position[int(i)] for i in idx]
                assert np.array_equal(y.numpy(), images["labels"][pos])  # trained on the flipped labels
                expected_prob[pos] = logits.softmax(1).gather(1, y[:, None]).squeeze(1).numpy()
                expected_right[pos] = (logits.argmax(1) == y).numpy()
        saved = np.load(runs.dynamics_path(run_dir, epoch))
        assert np.array_equal(saved["label_prob"], expected_prob.astype(np.float16), equal_nan=True), epoch
        assert np.array_equal(saved["correct"], np.packbits(expected_right)), epoch
        assert np.isnan(saved["label_prob"]).sum() == 20  # 2 batches of 50: the last 20 of the shuffle unseen
        assert not np.unpackbits(saved["correct"])[:120][np.isnan(saved["label_prob"])].any()
    weights = torch.load(run_dir / runs.LAST_CHECKPOINT, weights_only=True)["model"]
    assert all(torch.equal(weights[k], v) for k, v in t.model.state_dict().items() if "running" not in k
               and "batches_tracked" not in k)

    # What the trainer wrote is what the reader and the command line read.
    record = runs.load_dynamics(run_dir)
    assert list(record.epochs) == [1, 2] and np.array_equal(record.indices, images["indices"])
    assert record.flipped.sum() == 30 and np.array_equal(record.labels, images["labels"])
    for epoch in (1, 2):
        prob, right = epoch_record(run_dir, epoch)
        assert np.array_equal(record.label_prob[:, epoch - 1], prob.astype(np.float32), equal_nan=True)
        assert np.array_equal(record.correct[:, epoch - 1], right[:120].astype(bool))
    capsys.readouterr()  # the run's own output
    assert dynamics.main([str(run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["images"], summary["epochs"], summary["noise"]["flipped"]) == (120, 2, 30)


def stop_after(monkeypatch, steps: int) -> None:
    """The next run of train.main stops gracefully after `steps` training steps, as on SIGTERM."""
    taken = [0]
    train_step = Trainer.train_step

    def counted(self, x, y):
        taken[0] += 1
        return train_step(self, x, y)

    class StopAfter(StopRequested):
        def install(self) -> None:  # no signal handlers in the test process
            pass

        def __bool__(self) -> bool:
            return taken[0] >= steps

    monkeypatch.setattr(Trainer, "train_step", counted)
    monkeypatch.setattr(train, "StopRequested", StopAfter)


def only_run(runs_dir: Path) -> Path:
    (run_dir,) = [p for p in runs_dir.iterdir() if not p.name.startswith(".")]
    return run_dir


def epoch_record(run_dir: Path, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    saved = np.load(runs.dynamics_path(run_dir, epoch))
    return saved["label_prob"], np.unpackbits(saved["correct"])


@pytest.mark.slow
def test_a_run_stopped_mid_epoch_and_resumed_records_what_an_uninterrupted_run_does(cifar_dir, tmp_path,
                                                                                    monkeypatch):
    args = ["--data-dir", str(cifar_dir), "--depth", "8", "--batch-size", "50", "--val-size", "100", "--epochs", "3",
            "--seed", "1", "--device", "cpu", "--precision", "fp32", "--no-compile", "--log-seconds", "0",
            "--label-noise", "0.2", "--no-device-lock"]
    assert train.main([*args, "--runs-dir", str(tmp_path / "reference")]) == 0
    reference = only_run(tmp_path / "reference")
    with monkeypatch.context() as patched:
        stop_after(patched, 11)  # epoch 2's third step of 8
        assert train.main([*args, "--runs-dir", str(tmp_path / "stopped")]) == 0
    stopped = only_run(tmp_path / "stopped")
    for carried in (True, False):  # each resumes a copy of the one stopped run (trained once, not once each)
        run_dir = Path(shutil.copytree(stopped, tmp_path / f"stopped-{carried}" / stopped.name))
        last = torch.load(run_dir / runs.LAST_CHECKPOINT, weights_only=True)
        assert (last["epoch"], last["partial_epoch"]["batch"]) == (1, 3)
        assert (~last["partial_epoch"]["dynamics"]["label_prob"].isnan()).sum() == 150
        if not carried:  # a checkpoint from before the record: the resumed epoch records only its rest
            del last["partial_epoch"]["dynamics"]
            torch.save(last, run_dir / runs.LAST_CHECKPOINT)
        assert train.main(["--resume", str(run_dir)]) == 0
        for epoch in (1, 2, 3):
            (prob, right), (want_prob, want_right) = epoch_record(run_dir, epoch), epoch_record(reference, epoch)
            if epoch == 2 and not carried:
                after = ~np.isnan(prob)
                assert after.sum() == 250  # 400 images, 8 batches: the 3 before the stop unrecorded
                want_prob, want_right = np.where(after, want_prob, np.nan), np.where(after, want_right, 0)
            assert np.array_equal(prob, want_prob, equal_nan=True) and np.array_equal(right, want_right), epoch
