"""The near-duplicate finder (resnet_core.duplicates) on planted twins, its cache in the runs
folder, the accuracy on the twins against the rest, and Explain's view of them (AppTest)."""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_runs import make_run
from PIL import Image
from conftest import write_dynamics_record
from test_pages import folders, html_blocks, open_page, texts  # noqa: F401 (folders: a fixture)

from app_pages import explain_duplicates
from app_pages.navigation import EXPLAIN
from resnet_core import duplicates, duplicates_cache, runs
from resnet_core.cifar import BATCH_FOLDER, CLASSES, TEST_BATCH, TRAIN_BATCHES
from resnet_core.dashboard import duplicate_pairs

N_TRAIN, N_TEST = 300, 60
PLANTED = {0: (17, "exact"), 1: (42, "shifted"), 2: (99, "jpeg"), 3: (250, "jpeg shifted")}  # test -> train


def smooth_images(n: int, seed: int) -> np.ndarray:
    """(n, 3, 32, 32) uint8 photographs' stand-ins: random 4x4 colour fields, bicubic-upsampled."""
    coarse = torch.as_tensor(np.random.default_rng(seed).uniform(0, 255, (n, 3, 4, 4)), dtype=torch.float32)
    return torch.nn.functional.interpolate(coarse, size=32, mode="bicubic").clamp(0, 255).round().byte().numpy()


def shifted(image: np.ndarray) -> np.ndarray:
    """One pixel to the right and one down, the edge row and column repeated."""
    out = np.concatenate([image[:, :, :1], image[:, :, :-1]], axis=2)
    return np.concatenate([out[:, :1], out[:, :-1]], axis=1)


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image.transpose(1, 2, 0)).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).transpose(2, 0, 1).copy()


def planted_sets() -> tuple[np.ndarray, np.ndarray]:
    """Training and test images with the twins of PLANTED; every other test image is new."""
    train, test = smooth_images(N_TRAIN, 1), smooth_images(N_TEST, 2)
    make = {"exact": lambda x: x.copy(), "shifted": shifted, "jpeg": jpeg, "jpeg shifted": lambda x: jpeg(shifted(x))}
    for t, (r, how) in PLANTED.items():
        test[t] = make[how](train[r])
    return train, test


def test_planted_twins_are_found_with_their_training_images():
    train, test = planted_sets()
    found = duplicates.find_duplicates(test, train)
    assert dict(zip(found.test_indices.tolist(), found.train_indices.tolist(), strict=True)) == {
        t: r for t, (r, _) in PLANTED.items()}
    assert found.distance[0] == 0 and found.test_indices[0] == 0  # the exact copy first
    assert (np.diff(found.distance) >= 0).all()  # most similar first
    assert found.distance.max() <= duplicates.THRESHOLD


def test_ordinary_images_are_not_flagged_however_near_their_nearest():
    train, test = smooth_images(N_TRAIN, 3), smooth_images(N_TEST, 4)
    nearest = duplicates.nearest_training_images(test, train)
    assert len(nearest.duplicates()) == 0
    assert nearest.distance.min() > 2 * duplicates.THRESHOLD  # far from the line, not just across it


def test_the_nearest_image_is_the_brute_force_nearest_among_the_candidates():
    train, test = planted_sets()
    nearest = duplicates.nearest_training_images(test[:8], train)
    every = torch.stack([duplicates.shifted_distance(torch.as_tensor(test[i:i + 1]).float().expand(N_TRAIN, -1, -1, -1),
                                                     torch.as_tensor(train).float()) for i in range(8)])
    for i in PLANTED:  # a twin is the nearest of all training images, not only of the candidates
        assert nearest.train_indices[i] == int(every[i].argmin())
    assert np.allclose(nearest.distance, every.gather(1, torch.as_tensor(nearest.train_indices)[:, None]).squeeze(1))


def test_progress_counts_the_test_images(monkeypatch):
    monkeypatch.setattr(duplicates, "CHUNK", 25)
    train, test = planted_sets()
    seen = []
    duplicates.nearest_training_images(test, train, lambda done, total: seen.append((done, total)))
    assert seen == [(25, N_TEST), (50, N_TEST), (N_TEST, N_TEST)]


def test_accuracy_on_the_twins_and_on_the_rest():
    found = duplicates.Duplicates(np.array([3, 5]), np.array([0, 1]), np.array([1.0, 2.0], dtype=np.float32))
    preds = {"indices": np.array([1, 3, 4, 5, 7]), "labels": np.array([0, 1, 2, 3, 4]),
             "preds": np.array([0, 1, 9, 9, 4])}
    acc = duplicates.accuracy_split(preds, found)
    assert (acc.duplicates_right, acc.duplicates, acc.rest_right, acc.rest) == (1, 2, 2, 3)
    assert acc.on_duplicates == 0.5 and acc.on_rest == pytest.approx(2 / 3)
    assert "50.0% on the 2 test images" in duplicate_pairs.accuracy_text(acc)
    none = duplicates.accuracy_split(preds, duplicates.Duplicates(np.array([], int), np.array([], int), np.array([])))
    assert none.on_duplicates is None and duplicate_pairs.accuracy_text(none).startswith("–")


def test_the_pairs_whose_twin_a_run_trained_on():
    found = duplicates.Duplicates(np.array([3, 5, 8]), np.array([10, 11, 12]), np.array([1.0, 2.0, 3.0], np.float32))
    kept = found.with_twin_in(np.array([12, 40, 10]))
    assert kept.test_indices.tolist() == [3, 8] and kept.train_indices.tolist() == [10, 12]
    assert kept.distance.tolist() == [1.0, 3.0] and len(found.with_twin_in(np.array([], int))) == 0


def write_folder(root: Path, train: np.ndarray, test: np.ndarray) -> Path:
    """A CIFAR-format data folder of these images (labels: index mod 10; a twin keeps its training label)."""
    folder = root / BATCH_FOLDER
    folder.mkdir(parents=True)
    train_labels = np.arange(len(train)) % len(CLASSES)
    test_labels = np.arange(len(test)) % len(CLASSES)
    for t, (r, _) in PLANTED.items():
        test_labels[t] = train_labels[r]
    for name, part in zip(TRAIN_BATCHES, np.array_split(np.arange(len(train)), len(TRAIN_BATCHES)), strict=True):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": train[part].reshape(len(part), -1), b"labels": train_labels[part].tolist()}, f)
    with open(folder / TEST_BATCH, "wb") as f:
        pickle.dump({b"data": test.reshape(len(test), -1), b"labels": test_labels.tolist()}, f)
    return root


@pytest.fixture
def planted_dir(tmp_path) -> Path:
    return write_folder(tmp_path / "data", *planted_sets())


def test_the_cache_is_kept_in_the_runs_folder_and_reused(planted_dir, tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    first = duplicates_cache.cached_duplicates("cifar10", planted_dir, runs_dir)
    path = duplicates_cache.cache_path("cifar10", planted_dir, runs_dir)
    assert path.parent == runs.cache_dir(runs_dir) and path.is_file()
    calls = []
    original = duplicates_cache.nearest_training_images
    monkeypatch.setattr(duplicates_cache, "nearest_training_images", lambda *a: calls.append(1) or original(*a))
    again = duplicates_cache.cached_duplicates("cifar10", planted_dir, runs_dir)
    assert calls == [] and np.array_equal(again.test_indices, first.test_indices)
    path.write_bytes(b"not an npz")  # damaged: computed again, rewritten, never raised
    assert len(duplicates_cache.cached_duplicates("cifar10", planted_dir, runs_dir)) == len(PLANTED) and calls == [1]
    assert duplicates_cache.cached_duplicates("cifar10", planted_dir, runs_dir) and calls == [1]


def test_a_rewritten_data_file_is_a_new_cache_and_an_unwritable_one_still_answers(planted_dir, tmp_path):
    runs_dir = tmp_path / "runs"
    before = duplicates_cache.cache_path("cifar10", planted_dir, runs_dir)
    batch = planted_dir / BATCH_FOLDER / TEST_BATCH
    os.utime(batch, ns=(0, 1))  # the same bytes, another modification time
    assert duplicates_cache.cache_path("cifar10", planted_dir, runs_dir) != before
    blocked = tmp_path / "file"
    blocked.write_text("a file where the runs folder should be")
    assert len(duplicates_cache.cached_duplicates("cifar10", planted_dir, blocked)) == len(PLANTED)


def test_explain_shows_the_pairs_and_the_accuracy_on_them(folders, planted_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(planted_dir))
    run_dir = make_run(folders, "twins", n_val=N_TEST, data_dir=planted_dir)
    at = open_page(EXPLAIN, {"view": explain_duplicates.DUPLICATES})
    assert at.segmented_control(key="ex_view").value == explain_duplicates.DUPLICATES
    assert at.segmented_control(key="ex_split").disabled
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test images with a training twin"] == str(len(PLANTED))
    epoch = runs.recorded_epochs(run_dir, "test")[-1]
    preds = runs.load_predictions(run_dir, "test", epoch)
    found = duplicates_cache.cached_duplicates("cifar10", planted_dir, folders)
    assert duplicate_pairs.accuracy_text(duplicates.accuracy_split(preds, found)) in texts(at)
    assert f"final weights (epoch {epoch})" in texts(at)
    page = html_blocks(at)[-1]
    pairs = [(int(t), int(r)) for t, r in re.findall(r'rs-pair" data-test="(\d+)" data-train="(\d+)"', page)]
    assert sorted(pairs) == sorted((t, r) for t, (r, _) in PLANTED.items())
    assert pairs[0] == (0, 17)  # the exact copy first
    assert page.count("<img") == 2 * len(PLANTED)
    assert duplicates_cache.cache_path("cifar10", planted_dir, folders).is_file()  # the second opening reads it


def test_the_accuracy_counts_as_twins_only_those_the_run_trained_on(folders, planted_dir, monkeypatch):  # noqa: F811
    # A --subset run, or one with a validation split, never trained on some twins: their test
    # images are to it like any other, and counted as twins they made the accuracy on "training
    # twins" a test accuracy (a 2,000-image subset trained on about 4% of CIFAR-10's 240 twins).
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(planted_dir))
    run_dir = make_run(folders, "subset", n_val=N_TEST, data_dir=planted_dir)
    trained = np.array([17, 99, 5, 6])  # the twins of test images 0 and 2, and two others
    write_dynamics_record(run_dir, np.full((4, 2), 0.5), np.ones((4, 2), bool), indices=trained)
    at = open_page(EXPLAIN, {"view": explain_duplicates.DUPLICATES})
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test images with a training twin"] == str(len(PLANTED))
    assert "Accuracy on those it trained the twin of" in metrics
    preds = runs.load_predictions(run_dir, "test", runs.recorded_epochs(run_dir, "test")[-1])
    found = duplicates_cache.cached_duplicates("cifar10", planted_dir, folders)
    acc = duplicates.accuracy_split(preds, found.with_twin_in(trained))
    assert acc.duplicates == 2 and acc.rest == len(preds["indices"]) - 2
    assert duplicate_pairs.accuracy_text(acc, trained_only=True) in texts(at)
    assert "The run trained on 2 of these 4 twins" in texts(at)
    assert html_blocks(at)[-1].count("rs-pair") == len(PLANTED)  # every pair still shown


def test_a_run_without_test_predictions_shows_the_pairs_and_says_why_no_accuracy(folders, planted_dir,  # noqa: F811
                                                                                 monkeypatch):
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(planted_dir))
    make_run(folders, "stopped", state="stopped", test=False, n_val=20, data_dir=planted_dir)
    at = open_page(EXPLAIN, {"view": explain_duplicates.DUPLICATES})
    assert "Accuracy on them" not in {m.label for m in at.metric}
    assert "no test predictions yet" in texts(at)
    assert html_blocks(at)[-1].count("rs-pair") == len(PLANTED)


def test_descriptors_of_images_in_chunks_are_those_of_all_at_once():
    from resnet_core.duplicates import descriptors

    images = np.random.default_rng(3).integers(0, 256, (11, 3, 32, 32), dtype=np.uint8)
    whole = descriptors(images, chunk=100)
    assert whole.shape == (11, 64)
    np.testing.assert_allclose(descriptors(images, chunk=4).numpy(), whole.numpy(), rtol=1e-6, atol=1e-7)
    assert descriptors(images[:0]).shape == (0, 64)
