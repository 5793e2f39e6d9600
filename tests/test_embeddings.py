"""Penultimate features (resnet_core.embeddings), exact neighbours (resnet_core.neighbours) and
the ``embed`` command line, on tiny generated data and a freshly initialised checkpoint."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import write_cifar_folder
from fake_runs import make_run, write_checkpoint
from resnet_core import runs
from resnet_core.cifar import BATCH_FOLDER, TEST_BATCH, TRAIN_BATCHES, load_cifar, split_train_val
from resnet_core.data import normalize
from resnet_core.embed import main
from resnet_core.embeddings import EmbeddingError, cached_features, compute_features, features_file
from resnet_core.models import build_model
from resnet_core.neighbours import knn_accuracy, nearest, vote
from resnet_core.run_model import load_run_model

N_VAL, STEPS = 100, 5  # make_run trains on steps x 32 = 160 images (its subset)


def plant_duplicate(data_dir: Path) -> Path:
    """Make the test images noise, unlike any training image (the synthetic ones share their
    class's stripes), but image 0, a copy of the first training image (the pickle's format)."""
    folder = data_dir / BATCH_FOLDER
    train = pickle.loads((folder / TRAIN_BATCHES[0]).read_bytes())
    test = pickle.loads((folder / TEST_BATCH).read_bytes())
    test[b"data"] = np.random.default_rng(0).integers(0, 256, test[b"data"].shape, dtype=np.uint8)
    test[b"data"][0] = train[b"data"][0]
    (folder / TEST_BATCH).write_bytes(pickle.dumps(test))
    return data_dir


@pytest.fixture
def run(tmp_path):
    data_dir = plant_duplicate(write_cifar_folder(tmp_path / "data"))
    run_dir = make_run(tmp_path, "emb", data_dir=data_dir, n_val=N_VAL, steps_per_epoch=STEPS, depth=8)
    write_checkpoint(run_dir, runs.BEST_CHECKPOINT, seed=1)
    return run_dir


@pytest.mark.parametrize("depth, block, dims", [(8, "basic", 64), (11, "bottleneck", 256)])
def test_features_are_the_forward_pass_up_to_the_pool(depth, block, dims):
    model = build_model(depth, block).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        h = F.relu(model.bn1(model.conv1(x)))
        pooled = model.layer3(model.layer2(model.layer1(h))).mean(dim=(2, 3))
        feats = model.features(x)
        assert feats.shape == (4, dims)
        torch.testing.assert_close(feats, pooled)
        torch.testing.assert_close(model.fc(feats), model(x))


def test_features_of_each_split_are_the_checkpoints_own(run):
    data = load_cifar("cifar10", run.parent / "data")
    train_idx, val_idx = split_train_val(len(data.train_labels), N_VAL, 0)
    expected = {"val": val_idx, "train": train_idx[:STEPS * 32], "test": np.arange(len(data.test_labels))}
    run_model = load_run_model(run, "best")
    for split, indices in expected.items():
        f = compute_features(run, split)
        assert f.split == split and f.checkpoint == "best" and f.checkpoint_file == "best.pt"
        np.testing.assert_array_equal(f.indices, indices)
        images, labels = (data.test_images, data.test_labels) if split == "test" else (data.train_images,
                                                                                       data.train_labels)
        np.testing.assert_array_equal(f.labels, labels[indices])
        with torch.no_grad():
            x = normalize(torch.from_numpy(images[indices]), run_model.stats)
            probs = torch.softmax(run_model.model(x), dim=1)
            direct = run_model.model.features(x)
        assert f.features.dtype == np.float32 and f.features.shape == (len(indices), 64)
        np.testing.assert_allclose(f.features, direct.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(f.predictions, probs.argmax(1).numpy())
        np.testing.assert_allclose(f.confidence, probs.max(1).values.numpy(), rtol=1e-5)
        assert f.accuracy == pytest.approx(np.mean(f.predictions == f.labels))


def test_the_cache_is_reused_until_the_checkpoint_changes(run):
    calls = []
    assert cached_features(run, "val") is None
    first = compute_features(run, "val", progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (N_VAL, N_VAL) and features_file(run, "val", "best").is_file()
    calls.clear()
    again = compute_features(run, "val", progress=lambda done, total: calls.append((done, total)))
    assert not calls  # read from the cache
    np.testing.assert_array_equal(again.features, first.features)
    assert cached_features(run, "val", "last") is None  # last.pt's features are another file

    write_checkpoint(run, runs.BEST_CHECKPOINT, seed=2)  # a new best.pt
    assert cached_features(run, "val") is None
    renewed = compute_features(run, "val")
    assert not np.allclose(renewed.features, first.features)
    assert cached_features(run, "val") is not None


def test_a_damaged_or_foreign_cache_is_recomputed_not_raised(run):
    compute_features(run, "test")
    path = features_file(run, "test", "best")
    good = compute_features(run, "test").features
    for damage in (b"garbage", path.read_bytes()[:200]):
        path.write_bytes(damage)
        assert cached_features(run, "test") is None
        np.testing.assert_array_equal(compute_features(run, "test").features, good)
    runs.save_features(run, "test", "best", indices=np.zeros(3, np.int64))  # arrays missing
    assert cached_features(run, "test") is None
    assert cached_features(run, "nonsense") is None and cached_features(run / "absent", "test") is None


def test_bad_input_raises_one_line(tmp_path, cifar_dir, run):
    no_val = make_run(tmp_path, "noval", data_dir=cifar_dir, val_source=None, depth=8)
    write_checkpoint(no_val, runs.LAST_CHECKPOINT)
    corrupt = make_run(tmp_path, "corrupt", data_dir=cifar_dir, depth=8)  # last.pt holds no checkpoint
    nothing = make_run(tmp_path, "nothing", data_dir=cifar_dir, with_checkpoint=False, depth=8)
    cases = [((run, "nonsense"), "unknown split"), ((no_val, "val"), "no validation split"),
             ((corrupt, "test"), "corrupt"), ((nothing, "test"), "has no best.pt"),
             ((tmp_path / "absent", "test"), "not a folder")]
    for (run_dir, split), message in cases:
        with pytest.raises(EmbeddingError, match=message) as e:
            compute_features(run_dir, split)
        assert "\n" not in str(e.value)
    assert compute_features(no_val, "test").checkpoint_file == "last.pt"  # best falls back to last.pt

    data = write_cifar_folder(tmp_path / "data")
    gone = make_run(tmp_path, "gone", data_dir=data, depth=8)
    write_checkpoint(gone, runs.LAST_CHECKPOINT)
    shutil.rmtree(data)  # neither the run's data folder nor the one given holds CIFAR-10
    with pytest.raises(EmbeddingError, match="no CIFAR-10"):
        compute_features(gone, "test", data_dir=tmp_path / "empty")
    assert len(compute_features(gone, "test", data_dir=cifar_dir).labels) == 200  # the one given does


def brute_force(queries, base, k):
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    sims = q @ b.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def test_nearest_is_exact_cosine_search(monkeypatch):
    rng = np.random.default_rng(0)
    queries, base = rng.normal(size=(37, 8)), rng.normal(size=(50, 8)) * rng.uniform(0.1, 10, size=(50, 1))
    monkeypatch.setattr("resnet_core.neighbours.CHUNK_FLOATS", 50 * 4)  # 4 queries a chunk: chunking is tested
    rows, sims = nearest(queries, base, 5)
    expected_rows, expected_sims = brute_force(queries, base, 5)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(sims, expected_sims, rtol=1e-5, atol=1e-6)
    # a base's own rows: with exclude each finds its nearest other row, not itself
    own, _ = nearest(base, base, 1)
    np.testing.assert_array_equal(own[:, 0], np.arange(50))
    others, _ = nearest(base, base, 3, exclude=np.arange(50))
    np.testing.assert_array_equal(others, brute_force(base, base, 4)[0][:, 1:])
    assert nearest(queries, base[:3], 10)[0].shape == (37, 3)  # k capped at the base's rows
    with pytest.raises(ValueError):
        nearest(queries, base[:, :4], 1)


def test_knn_accuracy_votes_by_majority_and_breaks_ties_by_the_nearest():
    np.testing.assert_array_equal(vote(np.array([[1, 2, 2], [3, 1, 1]])), [2, 1])  # majority
    np.testing.assert_array_equal(vote(np.array([[0, 5, 5, 0], [4, 0, 0, 4], [2, 3, 1, 1]])), [0, 4, 1])  # ties
    base = np.array([[1, 0], [0.9, 0.1], [0.8, 0.2], [0, 1], [0.1, 0.9]], dtype=np.float32)
    base_labels = np.array([0, 0, 1, 1, 1])
    queries = np.array([[1, 0.05], [0.05, 1]], dtype=np.float32)
    assert knn_accuracy(queries, [0, 1], base, base_labels, k=3) == 1.0  # [0, 0, 1] and [1, 1, 1]
    assert knn_accuracy(queries, [1, 1], base, base_labels, k=3) == 0.5
    assert knn_accuracy(queries, [0, 1], base, base_labels, k=5) == 0.5  # 3 of 5 are class 1


def test_embed_prints_knn_and_model_accuracy_and_neighbours(run, capsys):
    assert main([str(run), "--split", "val", "--json", "--neighbors", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1] == "python -m resnet_core.embed: no image with index -1 in the val split (100 images)"
    assert "train features: 160/160 images" in err  # progress, while computing
    val_index = int(compute_features(run, "val").indices[3])
    assert main([str(run), "--split", "val", "--json", "--neighbors", str(val_index), "--k", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    val, train = compute_features(run, "val"), compute_features(run, "train")
    assert out["split"] == "val" and out["images"] == N_VAL and out["dims"] == 64
    assert out["knn_acc"] == knn_accuracy(val.features, val.labels, train.features, train.labels, 4)
    assert out["model_acc"] == val.accuracy and out["features_file"] == str(features_file(run, "val", "best"))
    assert out["duplicates"] == 1  # the test image planted as a copy of a training image (fixture run)
    assert len(list((run.parent / ".cache").glob("duplicates-*.npz"))) == 1  # kept for the next call
    rows, sims = nearest(val.features[3:4], train.features, 4)
    assert [n["index"] for n in out["neighbors"]] == train.indices[rows[0]].tolist()
    assert [n["label"] for n in out["neighbors"]] == train.labels[rows[0]].tolist()
    assert [n["similarity"] for n in out["neighbors"]] == pytest.approx(sims[0].tolist())
    assert main([str(run), "--split", "train"]) == 0  # leaves each image's own entry out
    assert "k-NN accuracy (k=10" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--split", "nope"], ["--k", "0"], ["--checkpoint", "worst"]])
def test_embed_refuses_bad_input_in_one_line(run, capsys, argv):
    try:
        code = main([str(run), *argv])
    except SystemExit as e:  # argparse's refusals
        code = e.code
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_features_are_computed_on_the_runs_own_device_where_this_machine_has_it(monkeypatch):
    from types import SimpleNamespace

    from resnet_core.embeddings import run_device

    def run(device):
        return SimpleNamespace(resolved={} if device is None else {"device": device})

    for recorded in ("cpu", "cuda:0", "mps", "nonsense:9", None, 3):
        assert run_device(run(recorded)) == torch.device("cpu")  # this CPU-only machine
    assert run_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert run_device(run("cuda:1")) == torch.device("cuda:1")
    assert run_device(run("cuda:2")) == torch.device("cpu")  # a GPU this machine lacks
