"""data_files.json: each image's file in the run folder, written by the run's writer, read
without raising, and shown on hover in the galleries."""

import json

import numpy as np
import pytest

from resnet_core import runs
from resnet_core.dashboard import gallery_cards, gallery_records, run_images
from resnet_core.runs.data_files import MAX_DATA_FILES_BYTES

TRAIN = ["cat/a b.png", "dog/ü.jpg", "cat/<x>&\"y\".png"]  # spaces, non-ASCII, characters HTML escapes
TEST = ["cat/t1.webp", "dog/t2.png"]


def write_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runs.RunWriter(run_dir).save_data_files(TRAIN, TEST)
    return run_dir


def test_the_writer_records_each_splits_paths_in_order_and_the_reader_reads_them(tmp_path):
    run_dir = write_run(tmp_path)
    assert json.loads((run_dir / runs.DATA_FILES).read_text("utf-8")) == {"train": TRAIN, "test": TEST}
    assert runs.read_data_files(run_dir) == {"train": TRAIN, "test": TEST}
    assert runs.read_data_files(tmp_path) is None  # a run without the file: CIFAR's


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.png", "cat/../../x.png", "", "cat\\x.png"])
def test_the_writer_refuses_a_path_that_is_not_relative_inside_the_data_folder(tmp_path, path):
    with pytest.raises(ValueError, match="not a relative POSIX path"):
        runs.RunWriter(tmp_path).save_data_files(["ok.png", path], [])
    assert not (tmp_path / runs.DATA_FILES).exists()


@pytest.mark.parametrize("content", [
    b"", b"{not json", b"\xff\xfe", b"[1, 2]", b'{"train": []}', b'{"train": "a.png", "test": []}',
    b'{"train": [1], "test": []}', b'{"train": ["../x.png"], "test": []}', b"[" * 100_000 + b"]" * 100_000,
])
def test_a_damaged_file_reads_as_none(tmp_path, content):
    (tmp_path / runs.DATA_FILES).write_bytes(content)
    assert runs.read_data_files(tmp_path) is None


def test_a_link_a_folder_or_an_oversized_file_reads_as_none(tmp_path):
    target = write_run(tmp_path) / runs.DATA_FILES
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / runs.DATA_FILES).symlink_to(target)
    assert runs.read_data_files(linked) is None
    folder = tmp_path / "folder"
    (folder / runs.DATA_FILES).mkdir(parents=True)
    assert runs.read_data_files(folder) is None
    big = tmp_path / "big"
    big.mkdir()
    with open(big / runs.DATA_FILES, "wb") as f:
        f.truncate(MAX_DATA_FILES_BYTES + 1)
    assert runs.read_data_files(big) is None


def predictions(indices):
    n = len(indices)
    return {"indices": np.asarray(indices), "labels": np.zeros(n, np.int64), "preds": np.zeros(n, np.int64),
            "topk_classes": np.zeros((n, 2), np.int64), "topk_probs": np.full((n, 2), 0.5, np.float32),
            "loss": np.ones(n, np.float32)}


def gallery(run_dir, source, indices):
    paths = run_images.source_paths(run_dir, source)
    items = gallery_records.records(predictions(indices), range(len(indices)), paths=paths)
    images = np.zeros((3, 3, 48, 48), np.uint8)
    return gallery_cards.gallery_html(items, images, ["cat", "dog"])


def test_the_gallery_shows_each_images_path_on_hover(tmp_path):
    run_dir = write_run(tmp_path)
    html = gallery(run_dir, "train", [2, 0])
    assert 'title="cat/&lt;x&gt;&amp;&quot;y&quot;.png"' in html and 'title="cat/a b.png"' in html
    assert 'data-path="cat/a b.png"' in html and "dog/ü.jpg" not in html  # only the images shown
    assert 'title="dog/t2.png"' in gallery(run_dir, "test", [1])
    assert "title=\"cat/t1.webp\"" not in gallery(run_dir, "test", [5])  # an index past the list: no path


def test_a_run_with_a_damaged_file_shows_no_paths_and_raises_nothing(tmp_path):
    run_dir = write_run(tmp_path)
    (run_dir / runs.DATA_FILES).write_bytes(b'{"train": ["cat/a.png"], "test": 7}')
    assert run_images.source_paths(run_dir, "train") is None
    html = gallery(run_dir, "train", [0])
    assert "rs-path" not in html and "cat/a.png" not in html and html.count("title=") == 1  # the top-3's own


def test_the_training_gallery_shows_paths_too(tmp_path):
    card = gallery_cards.TrainingCard(index=1, label=1, original_label=1, confidence=0.9, variability=0.1,
                                      events=0, never_learned=False, right=(True,), epochs=(1,),
                                      path=gallery_records.file_at(TRAIN, 1))
    html = gallery_cards.training_gallery_html([card], np.zeros((3, 3, 48, 48), np.uint8), ["cat", "dog"])
    assert 'title="dog/ü.jpg"' in html
