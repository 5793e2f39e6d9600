"""An image folder as a run's dataset (resnet_core.folder_dataset): the carved test split,
the trainer end to end from the command line (several formats and sizes, broken files, the
refusals), what the run records, and readers rebuilding the split the trainer used."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import Image

from resnet_core import runs, train, train_checks
from resnet_core.cifar import DataError
from resnet_core.config import TrainConfig, apply_presets
from resnet_core.config_checks import config_errors
from resnet_core.embeddings import EmbeddingError, run_data, split_images
from resnet_core.folder_dataset import carve_test, folder_settings, load_folder_dataset, load_run_data
from resnet_core.distributed import World
from resnet_core.folder_scan import scan_image_folder
from resnet_core.image_folder import cache_folder

COLOURS = {"blue": 2, "green": 1, "red": 0}  # class -> the channel its images are bright in
FORMATS = ("png", "jpg", "webp")


def write_folder(root: Path, per_class: int = 12, test: bool = False, seed: int = 0) -> Path:
    """Three colour classes in PNG, JPEG and WebP files of mixed sizes, and a non-image file."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), *((("test", 4),) if test else ())):
        for name, channel in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 60, (24 + 5 * (i % 4), 30 + 3 * (i % 3), 3), dtype=np.uint8)
                pixels[..., channel] += 180
                Image.fromarray(pixels).save(folder / f"{i:03d}.{FORMATS[i % 3]}")
    (root / "train" / "red" / "README.txt").write_text("not an image")
    return root


def test_the_carved_test_split_takes_a_share_of_every_class_by_the_seed():
    labels = np.repeat(np.arange(3), [10, 20, 1])
    train_idx, test_idx = carve_test(labels, 0.2, seed=0)
    assert np.bincount(labels[test_idx], minlength=3).tolist() == [2, 4, 0]  # a lone image is never held out
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(len(labels)))
    assert np.all(np.diff(test_idx) > 0) and np.all(np.diff(train_idx) > 0)
    assert np.array_equal(carve_test(labels, 0.2, seed=0)[1], test_idx)
    assert not np.array_equal(carve_test(labels, 0.2, seed=1)[1], test_idx)
    assert np.bincount(labels[carve_test(labels, 0.01, seed=0)[1]], minlength=3).tolist() == [1, 1, 0]


def test_folder_settings_are_checked_and_a_folder_gets_a_validation_split_it_can_spare():
    assert "data_dir" in config_errors(TrainConfig(dataset="folder"))
    assert "test_size" in config_errors(TrainConfig(dataset="folder", data_dir="x", test_size=1.0))
    assert "bad_images" in config_errors(TrainConfig(dataset="folder", data_dir="x", bad_images="maybe"))
    assert not config_errors(TrainConfig(dataset="folder", data_dir="x", image_size=64))
    assert apply_presets(TrainConfig(dataset="folder", data_dir="x"), set(), 1_000).val_size == 100
    assert apply_presets(TrainConfig(dataset="folder", data_dir="x", val_size=7), {"val_size"}, 1_000).val_size == 7
    assert apply_presets(TrainConfig(), set(), 1_000).val_size == 5000  # CIFAR's as before


def test_a_folder_without_test_is_split_as_recorded_and_read_back_alike(tmp_path):
    root = write_folder(tmp_path / "shapes")
    data = load_folder_dataset(root, image_size=40, resize="squash", test_size=0.25, split_seed=3,
                               bad_images="refuse", cache_dir=tmp_path / "cache")
    assert data.classes == ("blue", "green", "red") and data.train_images.shape[1:] == (3, 40, 40)
    assert np.bincount(data.test_labels).tolist() == [3, 3, 3] and len(data.train_labels) == 27
    assert data.source["test_source"] == "carved" and data.source["ignored"] == 1
    assert all(f.startswith("train/") for f in data.test_files) and not set(data.test_files) & set(data.train_files)
    # a file's label is its folder's, and its pixels are bright in its class's channel
    for images, labels, files in ((data.train_images, data.train_labels, data.train_files),
                                  (data.test_images, data.test_labels, data.test_files)):
        assert [data.classes[y] for y in labels] == [f.split("/")[1] for f in files]
        bright = [int(np.argmax(im.reshape(3, -1).mean(1))) for im in images]
        assert bright == [COLOURS[data.classes[y]] for y in labels]
    record = {"config": {"dataset": "folder", "image_size": 32, "resize": "squash", "test_size": 0.25,
                         "split_seed": 3, "bad_images": "refuse"},
              "resolved": {"data_dir": str(root.resolve()), "image_size": 40}}
    assert folder_settings(record)["image_size"] == 40  # the resolved size is the one trained on
    again = load_run_data(record, "folder", None, tmp_path)
    assert again.test_files == data.test_files and np.array_equal(again.test_images, data.test_images)
    with pytest.raises(DataError, match="not there any more"):
        load_run_data({**record, "resolved": {"data_dir": str(tmp_path / "gone")}}, "folder", None, tmp_path)


@pytest.mark.parametrize("world, each", [(World(), ""),
                                         (World(0, 2, 0, 2), ", in each of the 2 processes on this machine")])
def test_a_folder_too_big_for_the_ram_is_refused_before_a_single_image_is_decoded(tmp_path, monkeypatch, capsys,
                                                                                   world, each):
    """A GPU that holds the splits, a RAM that cannot hold the whole folder decoded (in each
    process torchrun starts on the machine): refused in one line, nothing decoded or written."""
    root = write_folder(tmp_path / "shapes")
    files = len(scan_image_folder(root).train)  # no test/: all of train/ is decoded, the test carved after
    assert files == 36
    per_process = files * 3 * 64 ** 2
    monkeypatch.setattr(train_checks, "device_memory_bytes", lambda device: 2**40)
    processes = world.local_size
    monkeypatch.setattr(train_checks, "total_ram_gb", lambda: (per_process * processes - 1) / 2**30)
    decoded = []
    monkeypatch.setattr("resnet_core.image_folder.decode_image_file", lambda *a: decoded.append(a))
    args = ["--dataset", "folder", "--data-dir", str(root), "--runs-dir", str(tmp_path / "runs"), "--epochs", "1"]
    cfg = train.parse([*args, "--image-size", "64"]).cfg
    if world.distributed:  # rank 0 of two on this machine loading the data, as under torchrun
        with pytest.raises(train_checks.Refused) as refused:
            train.load_data(cfg, world)
        err = [str(refused.value)]
    else:
        assert train.main([*args, "--image-size", "64"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"would not fit in this machine's RAM: its {files:,} images decoded at --image-size 64" \
        in err[0] and f"uint8{each}, and" in err[0], err
    assert decoded == [] and not (tmp_path / "runs").exists()
    # One byte more RAM per process and it passes the check (it then decodes: stubbed here).
    monkeypatch.setattr(train_checks, "total_ram_gb", lambda: per_process * processes / 2**30)
    train_checks.check_folder_fits(cfg, scan_image_folder(root), world)
    # The environment alone is no world: LOCAL_WORLD_SIZE without torchrun's RANK and WORLD_SIZE counts one process.
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(train_checks, "total_ram_gb", lambda: per_process / 2**30)
    train_checks.check_folder_fits(cfg, scan_image_folder(root))


def test_a_folder_too_big_for_the_device_is_refused_before_a_single_image_is_decoded(tmp_path, monkeypatch, capsys):
    root = write_folder(tmp_path / "shapes")
    monkeypatch.setattr(train_checks, "device_memory_bytes", lambda device: 10_000)
    decoded = []
    monkeypatch.setattr("resnet_core.image_folder.decode_image_file", lambda *a: decoded.append(a))
    assert train.main(["--dataset", "folder", "--data-dir", str(root), "--runs-dir", str(tmp_path / "runs"),
                       "--image-size", "64", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would not fit on cpu" in err[0] and "--image-size" in err[0]
    assert decoded == [] and not list((tmp_path / "runs").glob("*/config.json"))


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "train" / "cat").mkdir(parents=True), "holds 1 class folder"),
    (lambda root: (write_folder(root), (root / "train" / "empty").mkdir()), "train/empty holds no images"),
    (lambda root: (write_folder(root), (root / "train" / "red" / "900.png").write_bytes(b"\x89PNG broken")),
     "1 unreadable image in .*train/red/900.png.*--bad-images skip"),
])
def test_folders_the_trainer_cannot_use_are_refused_in_one_line_with_nothing_written(tmp_path, capsys, make, message):
    root = tmp_path / "data"
    make(root)
    assert train.main(["--dataset", "folder", "--data-dir", str(root), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("decoding ")]
    assert len(err) == 1 and err[0].startswith("python -m resnet_core.train: error:"), err
    assert re.search(message, err[0]), err[0]
    made = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    assert [p.name for p in made if p.name != ".cache"] == []  # no run; the decoded cache may be kept


@pytest.mark.slow
def test_a_folder_trains_end_to_end_records_its_files_and_starts_again_from_the_cache(tmp_path, capsys):
    root = write_folder(tmp_path / "shapes", per_class=15)
    (root / "train" / "green" / "999.jpg").write_bytes(b"\xff\xd8\xff truncated")
    argv = ["--dataset", "folder", "--data-dir", str(root), "--runs-dir", str(tmp_path / "runs"), "--depth", "8",
            "--epochs", "2", "--batch-size", "8", "--image-size", "48", "--bad-images", "skip", "--device", "cpu"]
    assert train.main([*argv, "--name", "first"]) == 0
    assert train.main([*argv, "--name", "second", "--subset", "24"]) == 0
    first, second = sorted(runs.list_runs(tmp_path / "runs"), key=lambda r: r.path.name)
    for info in (first, second):
        assert info.state == "completed" and info.classes == ["blue", "green", "red"]
        resolved = info.resolved
        assert resolved["image_size"] == 48 and resolved["data_dir"] == str(root.resolve())
        assert resolved["folder"]["skipped"] == ["train/green/999.jpg"] and resolved["folder"]["skipped_count"] == 1
        assert resolved["folder"]["ignored"] == 1
        assert resolved["folder"]["test_source"] == "carved"
    assert first.resolved["folder"]["from_cache"] is False and second.resolved["folder"]["from_cache"] is True
    log = (first.path / "train.log").read_text()  # the run says what the dry run says of its folder
    assert "skipped 1 unreadable image (--bad-images skip)" in log and "ignored 1 file that is not an image" in log
    files = runs.read_data_files(first.path)
    data = load_run_data(first.config, "folder", None, tmp_path / "runs")
    assert files == {"train": list(data.train_files), "test": list(data.test_files)}
    assert len(list(cache_folder(tmp_path / "runs").glob("folder-*.npz"))) == 1
    # the recorded test predictions point at the images the reader rebuilds, label for label
    epoch = runs.recorded_epochs(first.path, "test")[-1]
    preds = runs.load_predictions(first.path, "test", epoch)
    assert np.array_equal(data.test_labels[preds["indices"]], preds["labels"])
    assert json.loads((first.path / "config.json").read_text())["config"]["dataset"] == "folder"
    # --subset draws from every class, and the features' reader takes the images the trainer took
    trained = np.load(runs.dynamics_images_path(second.path))
    assert len(trained["indices"]) == 24 and len(np.unique(trained["labels"])) == 3
    _, indices, labels = split_images(second, load_run_data(second.config, "folder", None, tmp_path / "runs"), "train")
    assert np.array_equal(indices, trained["indices"]) and np.array_equal(labels, trained["labels"])
    # a file renamed since: the features' reader refuses the folder rather than describe other images
    (root / files["test"][0]).rename(root / "train" / "blue" / "zz-renamed.png")
    with pytest.raises(EmbeddingError, match="image folder changed since the run"):
        run_data(first, None)


@pytest.mark.slow
def test_cifar_as_pngs_trains_step_for_step_as_the_pickle_in_the_folders_order(cifar_dir, tmp_path, monkeypatch):
    """The one difference between the two ways is the order of the images (the folder's is by
    class): with the pickle's arrays put in that order, the runs are the same to the bit."""
    from cifar_folder import export_cifar_folder, folder_order

    from resnet_core.cifar import load_cifar

    folder = export_cifar_folder(cifar_dir, tmp_path / "png")
    argv = ["--runs-dir", str(tmp_path / "runs"), "--depth", "8", "--epochs", "2", "--batch-size", "32",
            "--val-size", "50", "--seed", "3", "--device", "cpu"]
    assert train.main([*argv, "--dataset", "folder", "--data-dir", str(folder), "--name", "png"]) == 0
    pickled = load_cifar("cifar10", cifar_dir)
    train_order, test_order = folder_order(pickled.train_labels), folder_order(pickled.test_labels)
    pickled.train_images, pickled.train_labels = pickled.train_images[train_order], pickled.train_labels[train_order]
    pickled.test_images, pickled.test_labels = pickled.test_images[test_order], pickled.test_labels[test_order]
    monkeypatch.setattr(train, "load_data", lambda cfg, ranks=1: pickled)
    assert train.main([*argv, "--data-dir", str(cifar_dir), "--name", "pickle"]) == 0
    png, pickle = (next((tmp_path / "runs").glob(f"*-{name}")) for name in ("png", "pickle"))
    weights = [torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"] for run in (png, pickle)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    epochs = [[json.loads(line) for line in open(run / "metrics.jsonl") if '"type": "epoch"' in line]
              for run in (png, pickle)]
    assert [(e["train_loss"], e["val_acc"]) for e in epochs[0]] == [(e["train_loss"], e["val_acc"]) for e in epochs[1]]


def test_a_subset_of_a_folder_is_drawn_from_every_class_and_cifars_stays_the_first_n():
    from resnet_core.cifar import split_train_val, training_split

    labels = np.repeat(np.arange(3), 40)  # a folder's arrays: class by class
    train_idx, val_idx = split_train_val(len(labels), 12, 5)
    picked, val = training_split(len(labels), 12, 5, subset=30, class_ordered=True)
    assert np.array_equal(val, val_idx) and len(picked) == 30 and set(picked) <= set(train_idx)
    assert np.all(np.diff(picked) > 0) and len(np.unique(labels[picked])) == 3
    assert np.array_equal(training_split(len(labels), 12, 5, 30, class_ordered=True)[0], picked)
    assert np.array_equal(training_split(len(labels), 12, 5, 30)[0], train_idx[:30])
    assert np.array_equal(training_split(len(labels), 12, 5)[0], train_idx)


def test_two_folder_runs_on_other_files_are_not_paired_by_index():
    from resnet_core.dashboard.comparison import Evaluated, comparability_problem, other_files

    preds = {"indices": np.arange(4), "labels": np.array([0, 0, 1, 1]), "preds": np.array([0, 1, 1, 1])}
    a_files = ["train/a/1.png", "train/a/2.png", "train/b/1.png", "train/b/2.png"]
    b_files = ["train/a/1.png", "train/a/3.png", "train/b/1.png", "train/b/4.png"]  # another carve, labels alike

    def run(name, files):
        return Evaluated(name, "test", "test", 0, ("a", "b"), preds, "folder", files)

    assert comparability_problem(run("A", a_files), run("B", list(a_files))) is None
    problem = comparability_problem(run("A", a_files), run("B", b_files))
    assert problem.startswith("A and B trained on different image files (2 of 4 differ at the same index")
    assert other_files("A", None, "B", None, "training images") is None  # CIFAR runs record none


@pytest.mark.slow
def test_a_resume_refuses_a_folder_whose_files_changed_and_goes_on_with_the_same_ones(tmp_path, capsys):
    root = write_folder(tmp_path / "shapes")
    assert train.main(["--dataset", "folder", "--data-dir", str(root), "--runs-dir", str(tmp_path / "runs"),
                       "--depth", "8", "--epochs", "1", "--batch-size", "8", "--device", "cpu"]) == 0
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    config = json.loads((run_dir / "config.json").read_text())
    config["config"]["epochs"] = 2  # what a stop after the first of two epochs leaves
    runs.atomic_write_json(run_dir / "config.json", config)
    status = json.loads((run_dir / "status.json").read_text())
    runs.atomic_write_json(run_dir / "status.json", {**status, "state": "stopped", "test_acc": None})
    moved = root / "train" / "red" / "000.png"
    moved.rename(root / "train" / "green" / "red-000.png")  # one image moved to another class
    capsys.readouterr()
    assert train.main(["--resume", str(run_dir)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("decoding ")]
    assert len(err) == 1 and "the image folder changed since the run started" in err[0], err
    assert runs.read_run(run_dir).state == "stopped"
    (root / "train" / "green" / "red-000.png").rename(moved)
    assert train.main(["--resume", str(run_dir)]) == 0
    assert runs.read_run(run_dir).state == "completed"


def test_images_whose_paths_the_record_cannot_hold_are_left_out_and_said(tmp_path):
    root = write_folder(tmp_path / "shapes")
    Image.new("RGB", (8, 8)).save(root / "train" / "red" / "back\\slash.png")
    with open(os.path.join(os.fsencode(root / "train" / "blue"), b"\xff\xfe.png"), "wb") as f:
        Image.new("RGB", (8, 8)).save(f, format="PNG")
    data = load_folder_dataset(root, image_size=32, resize="crop", test_size=0.2, split_seed=0, bad_images="refuse",
                               cache_dir=tmp_path / "cache")
    assert len(data.train_labels) + len(data.test_labels) == 36  # the 36 written by write_folder
    (note,) = data.source["problems"]
    assert note.startswith("2 images left out: paths that are not UTF-8 or hold a backslash") and "back" in note
    os.mkdir(os.path.join(os.fsencode(root / "train"), b"\xffclass"))
    with pytest.raises(DataError, match="a class folder's name must be UTF-8"):
        load_folder_dataset(root, image_size=32, resize="crop", test_size=0.2, split_seed=0, bad_images="refuse",
                            cache_dir=None)


@pytest.mark.parametrize("record, message", [
    ({"config": {"test_size": "x"}}, "field 'test_size' holds 'x', not a float"),
    ({"config": {"split_seed": -1}}, "split seed must lie in"),
    ({"config": {"bad_images": "no"}}, "unknown bad-images choice"),
])
def test_a_damaged_record_reads_as_one_line_and_odd_sizes_as_the_default(record, message):
    with pytest.raises(DataError, match=message):
        folder_settings(record)
    for size in (True, 4000, "48"):  # no run trains at these: CIFAR's 32, as image_format reads them
        assert folder_settings({"config": {}, "resolved": {"image_size": size}})["image_size"] == 32


def test_a_rank_on_a_machine_without_the_image_folder_stops_in_one_line(tmp_path):
    from types import SimpleNamespace

    cfg = TrainConfig(dataset="folder", data_dir=str(tmp_path / "only-on-the-first-machine"))
    shared = {"cfg": dataclasses.asdict(cfg), "run_dir": str(tmp_path), "checkpoint": None}  # rank 0's
    group = SimpleNamespace(world=SimpleNamespace(is_main=False, rank=3, size=4), broadcast=lambda _: shared)
    with pytest.raises(SystemExit, match="rank 3: the image folder .*only-on-the-first-machine is not on this machine"):
        train.share_preparation(group, None)


def test_a_sweep_over_the_test_share_plans_each_point_on_its_own_training_set(tmp_path, capsys, monkeypatch):
    from resnet_core import sweep

    root = write_folder(tmp_path / "shapes", per_class=20)
    monkeypatch.setattr("resnet_core.image_folder.decode_image_file", lambda *a: pytest.fail("decoded"))
    base = ["--dataset", "folder", "--data-dir", str(root), "--runs-dir", str(tmp_path / "runs"), "--epochs", "1"]
    assert sweep.main([*base, "--batch-size", "8", "--vary", "test_size=0.2,0.5", "--name", "ts", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "ts-testsize0.2: ResNet-20 (basic, shortcut A) · 44 training images · 4 validation images" in out
    assert "ts-testsize0.5: ResNet-20 (basic, shortcut A) · 27 training images · 3 validation images" in out
    assert sweep.main([*base, "--batch-size", "32", "--vary", "test_size=0.2,0.5", "--name", "t2", "--dry-run"]) == 2
    assert "27 training images are fewer than one batch of 32 (at test_size=0.5)" in capsys.readouterr().err
