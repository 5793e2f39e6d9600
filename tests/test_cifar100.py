"""CIFAR-100 through the data path and the trainer, on data generated in the exact official
format (tests/cifar100_format.py): reading fine and coarse labels, every refusal, the
download, the record a run writes, a resume that changes the dataset, a sweep over it, and
the dashboard reading a run's images as its own dataset."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import tarfile
import time

import numpy as np
import pytest
from cifar100_format import COARSE_NAMES, FINE_NAMES, FOLDER, SUPERCLASS_OF, write_cifar100_folder
from conftest import write_cifar_folder
from fake_runs import make_run
from test_train import TINY, only_run, trainer

from resnet_core import cifar, formatting, runs
from resnet_core.cifar import DataError, dataset_present, datasets_present, load_cifar
from resnet_core.cifar_download import download_cifar
from resnet_core.dashboard import run_images
from resnet_core.embeddings import run_data_dir
from resnet_core.models import describe_model
from resnet_core.train import main


@pytest.fixture(scope="module")
def c100_dir(tmp_path_factory):
    """A data folder holding the generated CIFAR-100 only (read-only use)."""
    return write_cifar100_folder(tmp_path_factory.mktemp("c100"))


@pytest.fixture(scope="module")
def both_dir(tmp_path_factory):
    """A data folder holding both datasets (read-only use)."""
    root = tmp_path_factory.mktemp("both")
    write_cifar_folder(root, 200, 50)
    return write_cifar100_folder(root, 1000, 300)


def test_reads_fine_and_coarse_labels_and_the_names(c100_dir, tmp_path):
    data = load_cifar("cifar100", c100_dir)
    assert data.train_images.shape == (1000, 3, 32, 32) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (300, 3, 32, 32)
    assert np.bincount(data.train_labels).tolist() == [10] * 100
    assert data.classes == FINE_NAMES and data.superclasses == COARSE_NAMES
    assert data.superclass_of == SUPERCLASS_OF and data.dataset == "cifar100"
    # Each superclass holds five classes (the dataset's own grouping).
    assert np.bincount(data.superclass_of).tolist() == [5] * 20
    assert load_cifar("cifar10", write_cifar_folder(tmp_path, 100, 20)).superclasses == ()


def test_which_datasets_a_folder_holds(c100_dir, both_dir, tmp_path):
    assert dataset_present("cifar100", c100_dir) and not dataset_present("cifar10", c100_dir)
    assert datasets_present(c100_dir) == ["cifar100"] and datasets_present(both_dir) == ["cifar10", "cifar100"]
    assert datasets_present(tmp_path) == [] and not dataset_present("imagenet", both_dir)


def _batch(root, name="train"):
    return pickle.loads((root / FOLDER / name).read_bytes(), encoding="bytes")


def _rewrite(root, name, batch):
    (root / FOLDER / name).write_bytes(pickle.dumps(batch, protocol=2))


def _drop_meta(root):
    (root / FOLDER / "meta").unlink()


def _truncate(root):
    path = root / FOLDER / "train"
    path.write_bytes(path.read_bytes()[:5000])


def _float_images(root):
    batch = _batch(root)
    batch[b"data"] = batch[b"data"].astype(np.float32)
    _rewrite(root, "train", batch)


def _short_images(root):
    batch = _batch(root, "test")
    batch[b"data"] = batch[b"data"][:, :1024]
    _rewrite(root, "test", batch)


def _fine_label_100(root):
    batch = _batch(root)
    batch[b"fine_labels"][3] = 100
    _rewrite(root, "train", batch)


def _coarse_label_20(root):
    batch = _batch(root, "test")
    batch[b"coarse_labels"][0] = 20
    _rewrite(root, "test", batch)


def _no_coarse_labels(root):
    batch = _batch(root)
    del batch[b"coarse_labels"]
    _rewrite(root, "train", batch)


def _two_superclasses(root):
    batch = _batch(root)
    first = batch[b"fine_labels"].index(7)
    batch[b"coarse_labels"][first] = (SUPERCLASS_OF[7] + 1) % 20
    _rewrite(root, "train", batch)


def _coarse_count_mismatch(root):
    batch = _batch(root)
    batch[b"coarse_labels"] = batch[b"coarse_labels"][:-1]
    _rewrite(root, "train", batch)


def _meta_99_names(root):
    meta = _batch(root, "meta")
    meta[b"fine_label_names"] = meta[b"fine_label_names"][:99]
    _rewrite(root, "meta", meta)


def _meta_no_coarse_names(root):
    meta = _batch(root, "meta")
    del meta[b"coarse_label_names"]
    _rewrite(root, "meta", meta)


class _RunsAShellCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def _float_fine_labels(root):
    batch = _batch(root)
    batch[b"fine_labels"] = [label + 0.5 for label in batch[b"fine_labels"]]
    _rewrite(root, "train", batch)


def _meta_runs_code(root):
    _rewrite(root, "meta", {b"fine_label_names": _RunsAShellCommand(f"touch {root / 'MARKER'}")})


@pytest.mark.parametrize("damage, message", [
    (_drop_meta, "CIFAR-100 not found in"),
    (_truncate, "train is not a readable CIFAR-100 batch"),
    (_float_images, "train: 'data' is float32 (1000, 3072), expected uint8 (N, 3072)"),
    (_short_images, "test: 'data' is uint8 (300, 1024), expected uint8 (N, 3072)"),
    (_fine_label_100, "train: fine_labels outside 0..99"),
    (_coarse_label_20, "test: coarse_labels outside 0..19"),
    (_no_coarse_labels, "lack 'coarse_labels'"),
    (_coarse_count_mismatch, "train: 999 coarse_labels for 1000 images"),
    (_two_superclasses, "the images of class 7 carry superclass labels "
                        f"{min(SUPERCLASS_OF[7], (SUPERCLASS_OF[7] + 1) % 20)}"),
    (_meta_99_names, "meta: 99 fine_label_names and 20 coarse_label_names, expected 100 and 20"),
    (_meta_no_coarse_names, "meta: 100 fine_label_names and 0 coarse_label_names, expected 100 and 20"),
    (_float_fine_labels, "train: 'fine_labels' holds numbers that are not whole (float64)"),
    (_meta_runs_code, "meta: refusing to unpickle posix.system (not CIFAR data)"),
])
def test_a_damaged_folder_is_refused_in_one_line_naming_the_file(tmp_path, damage, message):
    root = write_cifar100_folder(tmp_path / "data")
    damage(root)
    with pytest.raises(DataError) as e:
        load_cifar("cifar100", root)
    text = str(e.value)
    assert message in text and "\n" not in text, text
    assert str(root) in text and not (root / "MARKER").exists()


def test_names_and_keys_that_are_not_utf8_read_as_latin1_and_names_kept_in_an_array_are_read(tmp_path):
    root = write_cifar100_folder(tmp_path / "data")
    meta = _batch(root, "meta")
    meta[b"fine_label_names"] = [b"caf\xe9", *meta[b"fine_label_names"][1:]]
    meta[b"coarse_label_names"] = np.array(meta[b"coarse_label_names"])  # a re-packed copy's numpy array
    meta[b"\xff"] = b"an extra key"
    _rewrite(root, "meta", meta)
    data = load_cifar("cifar100", root)
    assert data.classes[0] == "caf\u00e9" and data.superclasses == COARSE_NAMES


def test_the_missing_message_names_the_layout_and_the_archive(tmp_path):
    with pytest.raises(DataError) as e:
        load_cifar("cifar100", tmp_path)
    assert f"{tmp_path / FOLDER}/train, test and meta" in str(e.value)
    assert "cifar-100-python.tar.gz" in str(e.value)


def test_download_extracts_only_the_dataset_folder_after_its_md5(tmp_path):
    src = write_cifar100_folder(tmp_path / "src", 200, 100)
    (src / "stray.txt").write_text("not part of the dataset")
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / FOLDER, arcname=FOLDER)
        tar.add(src / "stray.txt", arcname="stray.txt")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    seen = []
    target = tmp_path / "data"
    with pytest.raises(DataError, match="corrupt"):
        download_cifar("cifar100", target, url=archive.as_uri(), md5="0" * 32)
    download_cifar("cifar100", target, lambda done, total: seen.append(done), url=archive.as_uri(), md5=md5)
    assert sorted(p.name for p in target.iterdir()) == ["cifar-100-python", "cifar-100-python.tar.gz"]
    assert seen[-1] == archive.stat().st_size
    assert datasets_present(target) == ["cifar100"]
    assert load_cifar("cifar100", target).superclass_of == SUPERCLASS_OF
    assert cifar.CIFAR100.url == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert cifar.CIFAR100.md5 == "eb9058c3a382ffc7106e4002c42a8d85"


def test_the_trainer_refuses_cifar100_missing_from_the_folder_in_one_line(both_dir, tmp_path, capsys):
    c10 = write_cifar_folder(tmp_path / "c10", 200, 50)
    assert main(["--data-dir", str(c10), "--runs-dir", str(tmp_path / "runs"), "--dataset", "cifar100", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CIFAR-100 not found" in err and "--download" in err
    assert not (tmp_path / "runs").exists()


def test_dry_run_names_the_dataset_and_counts_100_outputs(c100_dir, tmp_path, capsys):
    assert main(["--data-dir", str(c100_dir), "--runs-dir", str(tmp_path / "runs"), "--dataset", "cifar100",
                 *TINY, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "CIFAR-100 (100 classes): 900 training images" in out
    report = json.loads(out.splitlines()[-1])
    assert (report["dataset"], report["classes"]) == ("cifar100", 100)
    assert report["model"]["params"] == describe_model(8, "basic", "A", 100).params
    assert describe_model(8, "basic", "A", 100).params == describe_model(8, "basic", "A", 10).params + 90 * 65
    assert not (tmp_path / "runs").exists()


def test_a_sweep_over_the_dataset_plans_both(both_dir, tmp_path, capsys):
    from resnet_core.sweep import main as sweep_main

    assert sweep_main(["--data-dir", str(both_dir), "--runs-dir", str(tmp_path / "runs"), "--name", "ds",
                       "--batch-size", "50", "--val-size", "100", "--subset", "100", "--epochs", "1",
                       "--vary", "dataset=cifar10,cifar100", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "sweep ds: 2 runs (dataset = 2), at most 1 at once"
    assert [line.split(":")[0].strip() for line in out[1:3]] == ["ds-datasetcifar10", "ds-datasetcifar100"]
    # A dataset of the grid that the folder lacks is refused before anything starts.
    c10 = write_cifar_folder(tmp_path / "c10", 200, 50)
    assert sweep_main(["--data-dir", str(c10), "--runs-dir", str(tmp_path / "runs"), "--name", "ds2",
                       "--vary", "dataset=cifar10,cifar100", "--dry-run"]) == 2
    assert "CIFAR-100 not found" in capsys.readouterr().err


def test_a_resume_refuses_a_changed_dataset_in_one_line(both_dir, tmp_path, capsys):
    stopped = make_run(tmp_path / "runs", "c100", state="stopped", epochs_done=1, total_epochs=3,
                       with_checkpoint=False, dataset="cifar100")
    assert main(["--resume", str(stopped), "--data-dir", str(both_dir), "--dataset", "cifar10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--dataset cannot change on resume: the run was trained with dataset cifar100; start a new run" in err
    assert runs.read_run(stopped).state == "stopped"


@pytest.mark.slow
def test_a_cifar100_run_records_its_classes_superclasses_and_100_class_predictions(c100_dir, tmp_path):
    done = trainer("--data-dir", c100_dir, "--runs-dir", tmp_path / "runs", "--dataset", "cifar100",
                   "--depth", "8", "--epochs", "1", "--subset", "200", "--val-size", "100", "--batch-size", "50",
                   "--device", "cpu", "--log-seconds", "0")
    assert done.returncode == 0, done.stderr
    run_dir = only_run(tmp_path / "runs")
    info = runs.read_run(run_dir)
    assert info.state == "completed" and info.dataset == "cifar100"
    assert info.classes == list(FINE_NAMES) and info.superclasses == list(COARSE_NAMES)
    assert info.superclass_of == list(SUPERCLASS_OF)
    record = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    assert record["config"]["dataset"] == "cifar100" and len(record["superclass_of"]) == 100
    preds = runs.load_predictions(run_dir, "val", 1)
    assert preds["labels"].max() > 9 and preds["labels"].max() <= 99 and preds["preds"].max() <= 99
    assert preds["topk_classes"].shape == (100, 5)
    import torch

    fc = [v for k, v in torch.load(run_dir / "last.pt", weights_only=True)["model"].items() if k.endswith("weight")]
    assert fc[-1].shape[0] == 100  # the classifier: one output per fine class


def test_a_cifar100_runs_images_come_from_a_folder_holding_cifar100(c100_dir, tmp_path):
    c10 = write_cifar_folder(tmp_path / "c10", 200, 50)
    run = make_run(tmp_path / "runs", "c100", dataset="cifar100", data_dir=c100_dir)
    info = runs.read_run(run)
    chosen = run_images.image_folder(info.config, c10, info.dataset)
    assert (chosen.path, chosen.dataset, chosen.note) == (c100_dir, "cifar100", "the run's own data folder")
    assert run_data_dir(info, c10) == str(c100_dir.resolve())
    # Its recorded folder holding only CIFAR-10 counts as missing: the dashboard's is used, said why.
    own = write_cifar100_folder(tmp_path / "own", 200, 100)
    moved = make_run(tmp_path / "runs", "moved", dataset="cifar100", data_dir=own)
    shutil.rmtree(own / FOLDER)
    write_cifar_folder(own, 200, 50)
    info = runs.read_run(moved)
    chosen = run_images.image_folder(info.config, c100_dir, info.dataset)
    assert chosen.path == c100_dir and chosen.note == (f"the dashboard's data folder: the run's own, "
                                                       f"{own.resolve()}, holds no CIFAR-100 any more")
    assert run_data_dir(info, c100_dir) == c100_dir
    store = run_images.ImageStore(c100_dir, "cifar100").start()
    preds = runs.load_predictions(run, "val", 1)
    assert store.images("train", timeout=30).shape == (1000, 3, 32, 32)
    assert run_images.labels_match(store.labels("train"), preds).ok


# ----------------------------------------------------------------------------- the dashboard


def _open(page):
    from test_pages import open_page

    return open_page(page)


def test_home_lists_the_datasets_the_folder_holds(tmp_path, monkeypatch, both_dir):
    from app_pages.navigation import HOME
    from test_pages import texts

    monkeypatch.setenv("RESNET_STUDIO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(both_dir))
    shown = texts(_open(HOME))
    assert "CIFAR-10 is ready" in shown and "CIFAR-100 is ready" in shown and "Download" not in shown
    c10 = write_cifar_folder(tmp_path / "c10", 200, 50)
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(c10))
    home = _open(HOME)
    assert "CIFAR-10 is ready" in texts(home) and "CIFAR-100 is not in" in texts(home)
    assert [b.label for b in home.button if "Download" in b.label] == ["Download CIFAR-100 (161 MB)"]
    assert any("CIFAR-100" in e.label for e in home.expander) and "cifar-100-python" in texts(home)


def test_the_form_picks_the_dataset_and_counts_its_outputs(tmp_path, monkeypatch):
    from app_pages.navigation import TRAIN
    from test_pages import texts

    monkeypatch.setenv("RESNET_STUDIO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(write_cifar_folder(tmp_path / "c10", 200, 50)))
    at = _open(TRAIN)
    picker = at.segmented_control(key="tf_dataset")
    assert picker.options == ["CIFAR-10", "CIFAR-100", "Image folder"] and picker.value == "cifar10"
    count = {m.label: m.value for m in at.metric}["Parameters"]
    assert count == formatting.format_count(describe_model(20, "basic", "A", 10).params)
    picker.set_value("cifar100").run()
    count = {m.label: m.value for m in at.metric}["Parameters"]
    assert count == formatting.format_count(describe_model(20, "basic", "A", 100).params)
    assert "CIFAR-100 is not in the data folder" in texts(at)  # this folder holds CIFAR-10 only


@pytest.mark.slow
def test_launching_a_cifar100_run_from_the_form(tmp_path, monkeypatch, c100_dir):
    from app_pages.navigation import TRAIN
    from test_pages import open_section

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    monkeypatch.setenv("RESNET_STUDIO_RUNS", str(runs_dir))
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(c100_dir))
    at = _open(TRAIN)
    at.segmented_control(key="tf_dataset").set_value("cifar100")
    open_section(at, "tf_advanced_open")
    at.selectbox(key="tf_depth").set_value(8)
    at.number_input(key="tf_epochs").set_value(1)
    at.number_input(key="tf_batch_size").set_value(32)
    at.number_input(key="tf_val_size").set_value(50)
    at.number_input(key="tf_subset").set_value(64)
    at.selectbox(key="tf_device").set_value("cpu")
    at.run()
    at.button(key="train_launch").click().run()
    assert not at.exception
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    deadline, info = time.time() + 120, None
    while time.time() < deadline:
        info = runs.read_run(runs_dir / run_id)
        if info is not None and not info.is_active:
            break
        time.sleep(0.2)
    assert info is not None and info.state == "completed", (runs_dir / run_id / runs.CONSOLE_FILE).read_text()
    assert info.dataset == "cifar100" and len(info.classes) == 100 and info.superclass_of == list(SUPERCLASS_OF)


def test_near_duplicates_are_kept_per_dataset_of_a_folder(both_dir, tmp_path):
    from resnet_core import duplicates_cache

    assert duplicates_cache.cache_path("cifar10", both_dir, tmp_path) != \
        duplicates_cache.cache_path("cifar100", both_dir, tmp_path)
    nearest = duplicates_cache.cached_nearest("cifar100", both_dir, tmp_path)
    assert len(nearest.distance) == 300  # CIFAR-100's 300 test images, not CIFAR-10's 50
    assert duplicates_cache.cache_path("cifar100", both_dir, tmp_path).is_file()
