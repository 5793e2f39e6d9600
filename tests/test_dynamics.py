"""The training images' record (dynamics/) read back and analysed: forgetting events as
Toneva et al. 2019 count them, the data map's regions, the summary and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, write_dynamics_record
from resnet_core import runs
from resnet_core.data_maps import AMBIGUOUS, EASY, HARD, NOT_PRESENTED, data_map, regions
from resnet_core.dynamics import TABLE_COLUMNS, analyse, describe, main, per_image_table, summary
from resnet_core.forgetting import first_right, forgetting, forgetting_events
from resnet_core.runs import dynamics_files

N = float("nan")
# A planted sequence: 1 right, 0 wrong, None not presented; with the hand-counted answers.
PLANTED = {  # row: (events, never_learned, unforgettable, first_learned)
    (1, 0, 1, 0, 1): (2, False, False, 1),
    (1, None, 0, 1, None): (1, False, False, 1),  # right at 1, wrong at its next presentation (3)
    (1, 0, None, None, None): (1, False, False, 1),
    (0, None, 0, 0, None): (0, True, False, 0),
    (0, 1, 1, None, 1): (0, False, True, 2),
    (None, None, None, None, None): (0, False, False, 0),  # never presented: none of them
    (1, None, None, None, 0): (1, False, False, 1),  # the gap between two presentations is skipped
    (None, 1, None, 1, None): (0, False, True, 2),
    (0, 0, 0, 0, 1): (0, False, True, 5),  # learned at the last epoch: unforgettable
    (1, 1, 0, None, 1): (1, False, False, 1),
}


def planted_arrays():
    rows = list(PLANTED)
    presented = np.array([[v is not None for v in r] for r in rows])
    right = np.array([[v == 1 for v in r] for r in rows])
    prob = np.where(presented, np.where(right, 0.75, 0.25), np.nan).astype(np.float32)
    return prob, right, presented


def test_planted_sequence_forgetting_counts_as_toneva(tmp_path):
    prob, right, presented = planted_arrays()
    write_dynamics_record(tmp_path, prob, right)
    f = forgetting(runs.load_dynamics(tmp_path))
    expected = np.array(list(PLANTED.values()), dtype=object)
    assert f.events.tolist() == list(expected[:, 0])
    assert f.never_learned.tolist() == list(expected[:, 1])
    assert f.unforgettable.tolist() == list(expected[:, 2])
    assert f.first_learned.tolist() == list(expected[:, 3])
    assert f.forgotten.tolist() == [e > 0 for e in expected[:, 0]]
    assert f.presented.tolist() == presented.any(axis=1).tolist()  # the all-None row alone is False


def test_forgetting_events_ignores_right_where_not_presented_and_matches_every_epoch_presented():
    right = np.array([[True, True, False], [True, False, True]])
    hidden = np.array([[True, False, True], [True, True, True]])
    assert forgetting_events(right, hidden).tolist() == [1, 1]
    # A 'right' where not presented is no presentation: wrong, hidden, wrong has no event.
    assert forgetting_events(np.array([[False, True, False]]), np.array([[True, False, True]])).tolist() == [0]
    rng = np.random.default_rng(0)
    full = rng.random((200, 12)) < 0.6
    assert (forgetting_events(full) == forgetting_events(full, np.ones_like(full))).all()
    by_hand = [sum(a and not b for a, b in zip(r[:-1], r[1:], strict=True)) for r in full.tolist()]
    assert forgetting_events(full).tolist() == by_hand
    assert first_right(np.zeros((2, 0), bool), np.zeros(0)).tolist() == [0, 0]


def test_the_record_reads_back_as_written(tmp_path):
    prob, right, presented = planted_arrays()
    labels = np.arange(len(prob)) % 10
    original = labels.copy()
    original[[2, 5]] = [9, 0]
    write_dynamics_record(tmp_path, prob, right, np.arange(len(prob))[::-1] * 7, labels, original)
    r = runs.load_dynamics(tmp_path)
    assert r.label_prob.dtype == np.float32 and r.correct.dtype == bool and r.indices.dtype == np.int64
    assert r.label_prob.shape == r.correct.shape == (len(prob), 5) and r.epochs.tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(r.label_prob, prob)
    assert (r.correct == right).all() and (r.presented == presented).all()
    assert r.indices.tolist() == (np.arange(len(prob))[::-1] * 7).tolist()
    assert r.flipped.nonzero()[0].tolist() == [2, 5] and r.original_labels[2] == 9


def test_the_epochs_are_the_unbroken_run_from_one(tmp_path):
    assert runs.dynamics_epochs(tmp_path / "missing") == runs.dynamics_epochs(tmp_path) == []
    folder = write_dynamics_record(tmp_path, np.full((4, 5), 0.5), np.ones((4, 5), bool))
    (folder / "train_epoch_003.npz").unlink()
    (folder / "train_epoch_0006.npz").write_bytes(b"")  # not the name the format gives epoch 6
    (folder / f"train_epoch_{10 ** 30}.npz").write_bytes(b"")
    assert runs.dynamics_epochs(tmp_path) == [1, 2]
    assert runs.load_dynamics(tmp_path).epochs.tolist() == [1, 2]  # epochs past the gap are not read
    (folder / "train_epoch_001.npz").unlink()
    assert runs.dynamics_epochs(tmp_path) == []
    with pytest.raises(runs.RunFolderError, match="records no epoch"):
        runs.load_dynamics(tmp_path)


def test_a_linked_dynamics_folder_is_not_followed(tmp_path):
    write_dynamics_record(tmp_path / "real", np.full((4, 2), 0.5), np.ones((4, 2), bool))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text('{"classes": ["a", "b"]}')
    os.symlink(tmp_path / "real" / "dynamics", tmp_path / "run" / "dynamics")
    assert runs.dynamics_epochs(tmp_path / "run") == []


def _savez(path, **arrays):
    np.savez(path, **arrays)


def _damage(folder, case):
    """Damage a 12-image, 2-epoch record one way."""
    images, epoch = folder / "train_images.npz", folder / "train_epoch_002.npz"
    good = dict(np.load(images))
    prob = np.full(12, 0.5, np.float16)
    if case == "no images file":
        images.unlink()
    elif case == "not an archive":
        images.write_bytes(b"PK\x03\x04 truncated")
    elif case == "single array":
        np.save(images.with_suffix(".npy"), np.arange(3))
        images.with_suffix(".npy").rename(images)
    elif case == "short labels":
        _savez(images, **{**good, "labels": good["labels"][:5]})
    elif case == "float indices":
        _savez(images, **{**good, "indices": good["indices"].astype(float)})
    elif case == "label out of range":
        _savez(images, **{**good, "original_labels": good["labels"] + 10})
    elif case == "index past 2**53":
        _savez(images, **{**good, "indices": good["indices"].astype(np.uint64) + np.uint64(2 ** 63)})
    elif case == "duplicate index":
        _savez(images, **{**good, "indices": np.zeros(12, np.int64)})
    elif case == "short label_prob":
        _savez(epoch, label_prob=prob[:11], correct=np.packbits(np.ones(12, bool)))
    elif case == "unpacked correct":
        _savez(epoch, label_prob=prob, correct=np.ones(12, np.uint8))
    elif case == "probability above one":
        _savez(epoch, label_prob=np.full(12, np.inf, np.float16), correct=np.packbits(np.ones(12, bool)))
    elif case == "right where not presented":
        _savez(epoch, label_prob=np.full(12, np.nan, np.float16), correct=np.packbits(np.ones(12, bool)))
    elif case == "missing array":
        _savez(epoch, label_prob=prob)
    elif case == "linked epoch file":
        epoch.unlink()
        os.symlink(folder / "train_epoch_001.npz", epoch)
    elif case == "claims gigabytes":  # a few KB compressed, 100 MB uncompressed: refused unread
        np.savez_compressed(epoch, label_prob=np.zeros(50_000_000, np.float16), correct=np.zeros(2, np.uint8))


DAMAGE = {
    "no images file": "train_images.npz does not exist",
    "not an archive": "train_images.npz cannot be read",
    "single array": "single array",
    "short labels": "labels has shape (5,), not (12,) like indices",
    "float indices": "indices holds float64, not integers",
    "label out of range": "original_labels holds class 19, outside 0..9",
    "duplicate index": "indices list an image twice",
    "index past 2**53": "indices hold 9223372036854775819, outside 0..2**53",
    "short label_prob": "train_epoch_002.npz: label_prob is float16 (11,)",
    "unpacked correct": "correct is uint8 (12,), not uint8 (2,)",
    "probability above one": "label_prob holds a value outside 0..1",
    "right where not presented": "correct marks an image right that the epoch did not present",
    "missing array": "train_epoch_002.npz: has no correct",
    "linked epoch file": "train_epoch_002.npz is a symbolic link",
    "claims gigabytes": "uncompressed",
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_record_is_refused_in_one_line(tmp_path, case):
    folder = write_dynamics_record(tmp_path, np.full((12, 2), 0.5), np.ones((12, 2), bool))
    _damage(folder, case)
    with pytest.raises(runs.RunFolderError) as error:
        runs.load_dynamics(tmp_path)
    assert DAMAGE[case] in str(error.value) and "\n" not in str(error.value)


def test_the_record_in_memory_is_bounded_before_the_epochs_are_read(tmp_path, monkeypatch):
    write_dynamics_record(tmp_path, np.full((12, 2), 0.5), np.ones((12, 2), bool))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(runs.RunFolderError, match="config.json lists no classes"):
        runs.load_dynamics(tmp_path)
    monkeypatch.setattr(dynamics_files, "MAX_DYNAMICS_BYTES", 12 * 2 * 5 - 1)
    with pytest.raises(runs.RunFolderError, match="12 images x 2 epochs"):
        runs.load_dynamics(tmp_path, num_classes=10)


def test_regions_on_planted_points_take_exact_thirds():
    variability = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], np.float32)
    confidence = np.array([0.1, 0.9, 0.5, 0.2, 0.3, 0.8, 0.7, 0.4, 0.6], np.float32)
    region, variability_cut, confidence_cut = regions(confidence, variability)
    # Top third by variability: images 0, 1, 2 (cut: 0.6, the largest outside it). Bottom third by
    # confidence: 0, 3, 4 (cut: 0.4, the smallest outside it); 0 is ambiguous, so 3 and 4 are hard.
    assert region.tolist() == [AMBIGUOUS] * 3 + [HARD] * 2 + [EASY] * 4
    assert variability_cut == pytest.approx(0.6) and confidence_cut == pytest.approx(0.4)


def test_regions_ties_stay_out_of_the_region_and_unpresented_images_are_not_placed():
    # Every variability equal (a one-epoch record): no image is above the cut, none ambiguous.
    region, variability_cut, _ = regions(np.array([0.1, 0.5, 0.9], np.float32), np.zeros(3, np.float32))
    assert region.tolist() == [HARD, EASY, EASY] and variability_cut == 0
    # Confidence tied at the cut (0.2, the smallest outside the bottom third of 6): the tied images stay easy.
    confidence = np.array([0.1, 0.2, 0.2, 0.2, 0.9, np.nan, 0.9], np.float32)
    region, _, confidence_cut = regions(confidence, np.zeros(7, np.float32))
    assert confidence_cut == pytest.approx(0.2)
    assert region.tolist() == [HARD, EASY, EASY, EASY, EASY, NOT_PRESENTED, EASY]
    assert regions(np.array([0.5, 0.7], np.float32), np.array([0.1, 0.2], np.float32))[0].tolist() == [EASY, EASY]
    assert regions(np.array([np.nan], np.float32), np.array([np.nan], np.float32))[0].tolist() == [NOT_PRESENTED]


def test_the_data_map_averages_over_presentations_only(tmp_path):
    prob = np.array([[0.25, N, 0.75, 0.5], [N, N, N, N], [1.0, 1.0, 1.0, 1.0]])
    right = np.array([[False, False, True, True], [False] * 4, [True] * 4])
    write_dynamics_record(tmp_path, prob, right)
    m = data_map(runs.load_dynamics(tmp_path))
    assert m.confidence[0] == pytest.approx(0.5) and m.confidence[2] == 1
    assert m.variability[0] == pytest.approx(np.std([0.25, 0.75, 0.5])) and m.variability[2] == 0
    assert m.correctness.tolist()[0] == pytest.approx(2 / 3) and m.correctness[2] == 1
    assert np.isnan(m.confidence[1]) and m.region[1] == NOT_PRESENTED
    assert m.confidence.dtype == m.variability.dtype == np.float32


def _noisy_run(tmp_path, flip: bool = True):
    """30 images over 6 epochs: 10 learned early, 10 flip-flopping, 10 never learned (of which the flipped)."""
    rng = np.random.default_rng(0)
    flip_flop = np.tile([0.8, 0.2], (10, 3)) + rng.uniform(-0.05, 0.05, (10, 6))
    prob = np.concatenate([np.full((10, 6), 0.9), flip_flop, np.full((10, 6), 0.05)])
    prob[rng.random(prob.shape) < 0.1] = np.nan
    prob[10:20] = flip_flop  # each of them presented at every epoch: forgotten, every time
    right = (prob > 0.5) & ~np.isnan(prob)
    labels = np.arange(30) % 10
    original = np.where(np.arange(30) >= 25, (labels + 1) % 10, labels) if flip else labels
    write_dynamics_record(tmp_path, prob, right, np.arange(30), labels, original)
    return analyse(runs.load_dynamics(tmp_path))


def test_summary_keys_and_counts(tmp_path):
    d = _noisy_run(tmp_path)
    s = summary(d)
    assert set(s) == {"images", "epochs", "presentations", "never_presented", "forgetting", "regions", "cuts", "noise"}
    assert set(s["forgetting"]) == {"events_total", "unforgettable", "never_learned", "forgotten_at_least_once"}
    assert set(s["regions"]) == {"easy", "ambiguous", "hard"}
    assert {"flipped", "flipped_in_hard", "flipped_in_ambiguous", "flipped_in_easy"} <= set(s["noise"])
    assert s["images"] == 30 and s["epochs"] == 6 and s["presentations"] == int(d.record.presented.sum())
    assert s["forgetting"]["never_learned"] == 10 and s["forgetting"]["unforgettable"] == 10
    assert sum(s["regions"].values()) == 30 and s["regions"]["ambiguous"] == 10
    noise = s["noise"]
    assert noise["flipped"] == noise["flipped_in_hard"] == noise["flipped_never_learned"] == 5
    assert "noise" not in summary(_noisy_run(tmp_path / "clean", flip=False))
    json.dumps(s)


def test_the_per_image_table(tmp_path):
    d = _noisy_run(tmp_path)
    table = per_image_table(d)
    assert list(table.columns) == list(TABLE_COLUMNS) and len(table) == 30
    assert table["flipped"].sum() == 5 and set(table.loc[table["flipped"], "region"]) == {"hard-to-learn"}
    assert table["forgetting_events"].tolist() == d.forgetting.events.tolist()
    assert table["presentations"].max() <= 6


def test_cli_prints_what_is_counted_and_writes_the_csv(tmp_path, capsys):
    d = _noisy_run(tmp_path / "run")
    assert main([str(tmp_path / "run"), "--csv", str(tmp_path / "images.csv")]) == 0
    out = capsys.readouterr().out
    for words in ("one presentation per image per epoch", "augmented", "BatchNorm in training mode",
                  "training step", "never learned", "Planted label noise"):
        assert words in out
    written = pd.read_csv(tmp_path / "images.csv")
    assert list(written.columns) == list(TABLE_COLUMNS)
    assert written["index"].tolist() == d.record.indices.tolist()
    assert main([str(tmp_path / "run"), "--json", "--csv", str(tmp_path / "again.csv")]) == 0
    assert json.loads(capsys.readouterr().out) == summary(d)  # one JSON object, nothing else
    assert main([str(tmp_path / "run"), "--csv", str(tmp_path / "no" / "such.csv")]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    # The table is written as export --out writes: never through a link, never into a FIFO.
    target = tmp_path / "keep.txt"
    target.write_text("keep\n")
    (tmp_path / "link.csv").symlink_to(target)
    os.mkfifo(tmp_path / "fifo.csv")
    for name in ("link.csv", "fifo.csv"):
        assert main([str(tmp_path / "run"), "--csv", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not a regular file" in err
    assert target.read_text() == "keep\n" and (tmp_path / "link.csv").is_symlink()


def test_cli_without_a_record_or_with_a_damaged_one(tmp_path, capsys):
    (tmp_path / "old").mkdir()
    for folder in (tmp_path / "old", tmp_path / "missing"):
        assert main([str(folder), "--json"]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
    folder = write_dynamics_record(tmp_path / "bad", np.full((12, 2), 0.5), np.ones((12, 2), bool))
    _damage(folder, "short label_prob")
    assert main([str(tmp_path / "bad"), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "label_prob" in captured.err


@pytest.mark.slow
def test_python_m_resnet_core_dynamics(tmp_path):
    _noisy_run(tmp_path)
    command = [sys.executable, "-m", "resnet_core.dynamics", str(tmp_path), "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["images"] == 30
    done = subprocess.run(command[:3] + [str(tmp_path / "dynamics")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1


def test_the_summary_in_words_counts_one_image_never_presented_in_the_singular(tmp_path):
    s = summary(_noisy_run(tmp_path))
    assert "images never presented" not in describe({**s, "never_presented": 1})
    assert "1 image never presented." in describe({**s, "never_presented": 1})
    assert "2 images never presented." in describe({**s, "never_presented": 2})
