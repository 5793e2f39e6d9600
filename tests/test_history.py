"""Held-out images' histories: flips between evaluations, learned-at epochs and the gaps that refuse a history."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fake_runs import make_run
from page_timings import write_long_history

from resnet_core import runs
from resnet_core.dashboard import gallery_cards, history

# Rows: images 10..14; columns: epochs 1..5 (1 = right).
RIGHT = np.array([
    [0, 0, 0, 0, 0],  # 10: never right
    [1, 0, 1, 0, 1],  # 11: learned, forgotten, relearned, forgotten, relearned: 2 events, learned at 5
    [0, 0, 0, 0, 1],  # 12: learned at the last epoch
    [1, 1, 1, 1, 1],  # 13: right throughout: learned at 1
    [0, 1, 1, 1, 0],  # 14: learned then forgotten at the end: 1 event, not learned at the end
], dtype=bool)
INDICES = np.array([10, 11, 12, 13, 14])
LABELS = np.array([3, 1, 4, 1, 5])


def _records(right: np.ndarray, epochs=(1, 2, 3, 4, 5), indices=INDICES, labels=LABELS, shuffle: int = 0):
    """Fake per-epoch records whose predictions are right where `right` says; each epoch in
    another order of images when shuffle is set (records need not be sorted)."""
    rng = np.random.default_rng(shuffle)
    out = {}
    for col, e in enumerate(epochs):
        order = rng.permutation(len(indices)) if shuffle else np.arange(len(indices))
        preds = np.where(right[:, col], labels, (labels + 1) % 10)
        out[e] = {"indices": indices[order], "labels": labels[order], "preds": preds[order]}
    return out


def _build(records, epochs=None):
    return history.history_from_records(sorted(records) if epochs is None else epochs, records.__getitem__)


def test_flips_and_learned_epochs_by_hand():
    result = _build(_records(RIGHT, shuffle=1))
    assert result.problem is None
    h = result.history
    assert h.indices.tolist() == [10, 11, 12, 13, 14] and h.labels.tolist() == LABELS.tolist()
    assert (h.right == RIGHT).all()  # lined up by image index whatever each epoch's order
    assert h.flips.tolist() == [0, 2, 0, 0, 1]
    assert h.learned_at.tolist() == [0, 5, 5, 1, 0]
    assert h.never_right.tolist() == [True, False, False, False, False]


def test_views_order_the_images():
    h = _build(_records(RIGHT)).history
    assert h.indices[history.view_rows(h, "never right")].tolist() == [10]
    assert h.indices[history.view_rows(h, "most flipped")].tolist() == [11, 14]
    # The latest learned first; ties keep the image order; 10 and 14 are wrong at the end.
    assert h.indices[history.view_rows(h, "learned last")].tolist() == [11, 12, 13]
    with pytest.raises(ValueError):
        history.view_rows(h, "forgotten")


def test_learned_at_uses_the_recorded_epoch_numbers():
    right = np.array([[0, 1, 1], [1, 1, 1]], dtype=bool)
    assert history.learned_at(right, np.array([4, 5, 6])).tolist() == [5, 4]


def test_rows_and_positions_find_images_by_index():
    records = _records(RIGHT, shuffle=3)
    h = _build(records).history
    assert h.rows([14, 10]).astype(int).tolist() == [RIGHT[4].astype(int).tolist(), RIGHT[0].astype(int).tolist()]
    pos = history.positions_of(records[5], [12, 13])
    assert records[5]["indices"][pos].tolist() == [12, 13]


def test_a_missing_epoch_gives_a_reason_not_a_history():
    records = _records(RIGHT)
    del records[3]
    result = _build(records)
    assert result.history is None
    assert "Epoch 3 of this split is not recorded (recorded: 1-2, 4-5)" in result.problem
    del records[1]
    assert "Epochs 1, 3 of this split are not recorded" in _build(records).problem


def test_differing_image_sets_and_labels_give_a_reason():
    records = _records(RIGHT)
    records[4] = {k: v[:4] for k, v in records[4].items()}  # image 14 dropped at epoch 4
    result = _build(records)
    assert result.history is None
    assert result.problem.startswith("Epoch 4 records 4 images and epoch 1 5; 1 images are in one and not the other")
    records = _records(RIGHT)
    records[2] = {**records[2], "indices": records[2]["indices"] + 1}  # same count, other images
    assert "2 images are in one and not the other" in _build(records).problem
    records = _records(RIGHT)
    records[5] = {**records[5], "labels": (records[5]["labels"] + 1) % 10}
    assert "other labels than epoch 1 for 5 images" in _build(records).problem


def test_one_recorded_epoch_or_an_unreadable_one_gives_a_reason():
    records = _records(RIGHT)
    one = _build({5: records[5]})
    assert one.history is None and "only epoch 5 is recorded" in one.problem

    def load(e):
        if e == 2:
            raise runs.RunFolderError("predictions/val_epoch_002.npz cannot be read (BadZipFile)")
        return records[e]
    bad = history.history_from_records([1, 2, 3, 4, 5], load)
    assert bad.history is None and bad.problem.startswith("Epoch 2 cannot be read (predictions/val_epoch_002.npz")


def test_load_history_reads_a_run_folder(tmp_path):
    run_dir = make_run(tmp_path, epochs_done=4, total_epochs=4, n_val=60)
    h = history.load_history(run_dir, "val").history
    assert h.epochs.tolist() == [1, 2, 3, 4] and len(h.indices) == 60
    for col, e in enumerate(h.epochs):
        p = runs.load_predictions(run_dir, "val", int(e))
        order = np.argsort(p["indices"], kind="stable")
        assert (h.right[:, col] == (p["preds"] == p["labels"])[order]).all()
    assert history.load_history(run_dir, "test").problem.startswith("A history needs")


def test_a_history_strip_draws_runs_of_epochs():
    strip = gallery_cards.history_strip([True, True, False, True], [1, 2, 3, 4], 96)
    assert strip.count("<span") == 3 and 'data-right="1101"' in strip and "wrong at 3" in strip
    assert "flex:2;background:#54A24B" in strip and "flex:1;background:#E45756" in strip
    assert gallery_cards.history_strip([], [], 96) == ""


def test_5000_images_by_200_epochs_load_whole(tmp_path, capsys):
    """The size the page must handle, from npz files written as the trainer writes them. Its
    speed (the target: a few seconds, under 10) is timed by tests/page_timings.py --apptest."""
    run_dir = make_run(tmp_path, epochs_done=1, total_epochs=1, n_val=10)
    n, epochs = 5000, 200
    write_long_history(run_dir, n, epochs)
    t = time.perf_counter()
    h = history.load_history(run_dir, "val").history
    took = time.perf_counter() - t
    with capsys.disabled():
        print(f"\nhistory of {n:,} images x {epochs} epochs: {took:.2f} s, {h.right.nbytes / 1e6:.1f} MB")
    assert h.right.shape == (n, epochs) and h.right.nbytes == n * epochs
