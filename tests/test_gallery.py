"""From a click to a page of images: selection parsing (cell_selection), filtering, sorting and paging
(gallery_records), HTML (gallery_cards), the images and their labels (run_images)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from fake_runs import fake_predictions
from PIL import Image

from resnet_core.dashboard import gallery_cards, gallery_records, run_images
from resnet_core.dashboard.cell_selection import Cell, selection_from_event
from resnet_core.cifar import CLASSES


def small_preds():
    # 6 records: labels/preds chosen by hand, confidences and losses distinct.
    return {
        "indices": np.array([10, 11, 12, 13, 14, 15]),
        "labels": np.array([3, 3, 3, 5, 3, 3]),
        "preds": np.array([5, 3, 5, 5, 5, 1]),
        "topk_classes": np.array([[5, 3, 1], [3, 5, 1], [5, 1, 3], [5, 3, 1], [5, 3, 0], [1, 3, 5]]),
        "topk_probs": np.array([[0.6, 0.3, 0.1], [0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1],
                                [0.5, 0.4, 0.1], [0.4, 0.3, 0.3]], dtype=np.float32),
        "loss": np.array([1.2, 0.1, 2.3, 0.3, 0.9, 1.2], dtype=np.float32),
    }


def test_cell_selects_exactly_its_records_sorted_by_confidence():
    preds = small_preds()
    pos = gallery_records.cell_positions(preds, Cell(3, 5), "confidence")
    assert list(pos) == [2, 0, 4]  # confidences 0.8, 0.6, 0.5
    assert list(gallery_records.cell_positions(preds, Cell(3, 5), "confidence", descending=False)) == [4, 0, 2]
    assert list(gallery_records.cell_positions(preds, Cell(3, 5), "loss")) == [2, 0, 4]  # 2.3, 1.2, 0.9
    assert list(gallery_records.cell_positions(preds, Cell(3, 3))) == [1]  # the diagonal: correct ones
    assert list(gallery_records.cell_positions(preds, Cell(5, 3))) == []
    with pytest.raises(ValueError):
        gallery_records.cell_positions(preds, Cell(3, 5), "random")


def test_every_record_of_a_large_cell_is_found_once():
    preds = fake_predictions(10_000, accuracy=0.6, seed=1)
    cell = Cell(3, 5)
    pos = gallery_records.cell_positions(preds, cell, "loss")
    expected = np.flatnonzero((preds["labels"] == 3) & (preds["preds"] == 5))
    assert sorted(pos) == sorted(expected) and len(set(pos)) == len(pos)
    assert np.all(np.diff(preds["loss"][pos]) <= 0)


def test_paginate_clamps_and_slices():
    assert gallery_records.paginate(0, 1, 30) == gallery_records.Page(1, 1, 0, 0)
    p = gallery_records.paginate(65, 3, 30)
    assert (p.number, p.count, p.start, p.stop) == (3, 3, 60, 65)
    assert gallery_records.paginate(65, 9, 30).number == 3
    assert gallery_records.paginate(65, 0, 30).number == 1
    assert gallery_records.paginate(65, 2, 30).label == "page 2 of 3"
    with pytest.raises(ValueError):
        gallery_records.paginate(10, 1, 0)


def test_records_carry_index_classes_confidence_loss_and_top3():
    recs = gallery_records.records(small_preds(), [2, 0])
    assert [r.index for r in recs] == [12, 10]
    r = recs[0]
    assert (r.true, r.pred) == (3, 5)
    assert r.confidence == pytest.approx(0.8) and r.loss == pytest.approx(2.3)
    assert [c for c, _ in r.top] == [5, 1, 3] and r.top[0][1] == pytest.approx(0.8)


@pytest.mark.parametrize("event, expected", [
    ({"selection": {"points": [{"x": "dog", "y": "cat", "customdata": [3, 5]}]}}, Cell(3, 5)),
    ({"selection": {"points": [{"x": "dog", "y": "cat", "customdata": {"0": 3, "1": 5}}]}}, Cell(3, 5)),
    ({"selection": {"points": [{"x": "dog", "y": "cat"}]}}, Cell(3, 5)),  # labels only
    ({"selection": {"points": []}}, None),  # clicking a cell again clears the selection
    ({"selection": {"points": [{"x": "nope", "y": "cat"}]}}, None),
    ({}, None),
    (None, None),
])
def test_selection_from_event(event, expected):
    assert selection_from_event(event, CLASSES) == expected


def test_selection_from_an_attribute_style_event():
    class Obj(dict):
        __getattr__ = dict.get
    event = Obj(selection=Obj(points=[{"customdata": [1, 2]}]))
    assert selection_from_event(event) == Cell(1, 2)


def test_image_source_follows_the_runs_val_source():
    assert run_images.image_source({"resolved": {"val_source": "train"}}, "val") == "train"
    assert run_images.image_source({"resolved": {"val_source": "test"}}, "val") == "test"
    assert run_images.image_source({"resolved": {"val_source": "train"}}, "test") == "test"
    assert run_images.image_source({"resolved": {"val_source": "train"}}, "train") is None
    # Before the trainer resolved it: val_size 0 means the test set stands in.
    assert run_images.image_source({"config": {"val_size": 0}}, "val") == "test"


def test_png_data_uri_is_lossless_at_native_size():
    img = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    uri = gallery_cards.png_data_uri(img)
    assert uri.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert decoded.shape == (32, 32, 3)
    assert np.array_equal(decoded, img.transpose(1, 2, 0))


def test_gallery_html_is_one_grid_of_pixelated_cards_with_the_right_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    recs = gallery_records.records(small_preds(), [2, 0])
    html = gallery_cards.gallery_html(recs, images, CLASSES, size=96, cell=Cell(3, 5), total=3)
    assert html.count('class="rs-card"') == 2
    assert 'data-true="3" data-pred="5" data-total="3" data-shown="2"' in html
    assert html.count("image-rendering:pixelated") == 2
    assert 'width="96" height="96"' in html
    assert "true <b>cat</b>" in html and ">dog</b> 80%" in html
    assert "dog 80% · automobile 10% · cat 10%" in html  # top-3
    srcs = re.findall(r'src="(data:image/png;base64,[^"]+)"', html)
    assert srcs[0] == gallery_cards.png_data_uri(images[12]) and srcs[1] == gallery_cards.png_data_uri(images[10])


def test_gallery_html_escapes_class_names_and_works_without_images():
    recs = gallery_records.records(small_preds(), [1])
    names = list(CLASSES)
    names[3] = "<script>x</script>"
    html = gallery_cards.gallery_html(recs, None, names)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html


def test_gallery_cards_take_history_strips_and_notes_by_image_index():
    recs = gallery_records.records(small_preds(), [2, 0])  # images 12 and 10
    extras = gallery_cards.CardExtras(strips={12: [True, False, True]}, strip_epochs=[1, 2, 3],
                                      notes={10: "suggested <cat>"})
    html = gallery_cards.gallery_html(recs, None, CLASSES, extras=extras)
    cards = html.split('class="rs-card"')[1:]
    assert 'data-right="101"' in cards[0] and "rs-strip" not in cards[1]
    assert "suggested &lt;cat&gt;" in cards[1] and "rs-note" not in cards[0]
    assert "rs-strip" not in gallery_cards.gallery_html(recs, None, CLASSES)  # without them, cards as before


def test_loss_positions_put_the_highest_loss_first():
    preds = {"loss": np.array([0.5, 2.0, 0.1, 2.0], dtype=np.float32)}
    assert gallery_records.loss_positions(preds).tolist() == [1, 3, 0, 2]


def test_a_page_of_a_10k_prediction_cell_renders():
    """Its speed (the target: under 0.5 s) is timed by tests/page_timings.py --apptest."""
    preds = fake_predictions(10_000, accuracy=0.5, seed=2, source_size=50_000)
    images = np.random.default_rng(0).integers(0, 256, (50_000, 3, 32, 32), dtype=np.uint8)
    pos = gallery_records.cell_positions(preds, Cell(3, 5), "confidence")
    page = gallery_records.paginate(len(pos), 1, 30)
    html = gallery_cards.gallery_html(gallery_records.records(preds, pos[page.start:page.stop]), images, CLASSES)
    assert html.count("rs-card") == min(30, len(pos)) > 0


def test_image_store_loads_once_in_the_background_and_retries_failures(tmp_path):
    calls = []

    def loader(folder):
        calls.append(folder)
        if len(calls) == 1:
            raise FileNotFoundError("no data yet")
        return type("D", (), {"train_images": np.zeros((2, 3, 32, 32), np.uint8),
                              "test_images": np.ones((1, 3, 32, 32), np.uint8)})()

    store = run_images.ImageStore(tmp_path, "cifar10", loader=loader).start()
    with pytest.raises(FileNotFoundError):
        store.get(timeout=5)
    with pytest.raises(FileNotFoundError):  # a failure stays until someone starts again
        store.get(timeout=5)
    store.start()
    assert len(store.images("train", timeout=5)) == 2  # tried again after the failure
    assert len(store.images("test", timeout=5)) == 1
    assert len(calls) == 2 and store.ready


def test_image_store_reads_a_real_cifar_folder(cifar_dir):
    store = run_images.ImageStore(cifar_dir, "cifar10").start()
    images = store.images("train", timeout=30)
    assert images.shape[1:] == (3, 32, 32) and images.dtype == np.uint8


def test_labels_match_counts_records_whose_folder_label_differs():
    preds = small_preds()  # indices 10..15, labels 3 3 3 5 3 3
    folder_labels = np.zeros(20, dtype=np.int64)
    folder_labels[10:16] = [3, 3, 3, 5, 3, 3]
    check = run_images.labels_match(folder_labels, preds)
    assert (check.checked, check.mismatched, check.ok) == (6, 0, True)
    assert check.problem("/data", "test") is None
    folder_labels[[11, 13]] = [0, 0]
    check = run_images.labels_match(folder_labels, preds)
    assert (check.checked, check.mismatched, check.ok) == (6, 2, False)
    message = check.problem("/data/cifar", "train")
    assert message.startswith("2 of 6 recorded labels differ from the labels at the same indices of the "
                              "training set in /data/cifar")


def test_labels_match_counts_indices_outside_the_folders_set_as_mismatches():
    # A folder with fewer images than the run saw (another dataset, a cut-down copy).
    folder_labels = np.array([3] * 12)
    check = run_images.labels_match(folder_labels, small_preds())
    assert (check.checked, check.mismatched) == (6, 4)  # indices 12..15 do not exist


def test_a_folder_in_another_order_is_caught(cifar_dir):
    from resnet_core.cifar import load_cifar
    labels = load_cifar("cifar10", cifar_dir).train_labels
    preds = fake_predictions(300, seed=3, source_labels=labels)
    assert run_images.labels_match(labels, preds).ok
    shuffled = labels[np.random.default_rng(0).permutation(len(labels))]
    check = run_images.labels_match(shuffled, preds)
    assert check.mismatched > 200  # about 9 in 10 differ in a random order


def test_image_folder_prefers_the_runs_own_data_folder(cifar_dir, tmp_path):
    dashboard = tmp_path / "dashboard-data"
    config = {"resolved": {"data_dir": str(cifar_dir)}}
    chosen = run_images.image_folder(config, dashboard, "cifar10")
    assert chosen.path == cifar_dir and chosen.note == "the run's own data folder"


def test_image_folder_falls_back_to_the_dashboards_and_says_why(cifar_dir, tmp_path):
    gone = tmp_path / "moved-away"
    chosen = run_images.image_folder({"resolved": {"data_dir": str(gone)}}, cifar_dir, "cifar10")
    assert chosen.path == cifar_dir
    assert chosen.note == f"the dashboard's data folder: the run's own, {gone}, holds no CIFAR-10 any more"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_images.image_folder({"resolved": {"data_dir": str(empty)}}, cifar_dir, "cifar10").path == cifar_dir
    # Version 1 runs did not record their folder.
    chosen = run_images.image_folder({"resolved": {"val_source": "train"}}, cifar_dir, "cifar10")
    assert (chosen.path, chosen.note) == (cifar_dir, "the dashboard's data folder (the run did not record its own)")


def test_image_store_exposes_the_labels(cifar_dir):
    from resnet_core.cifar import load_cifar
    store = run_images.ImageStore(cifar_dir, "cifar10").start()
    expected = load_cifar("cifar10", cifar_dir)
    assert np.array_equal(store.labels("train", timeout=30), expected.train_labels)
    assert np.array_equal(store.labels("test", timeout=30), expected.test_labels)
