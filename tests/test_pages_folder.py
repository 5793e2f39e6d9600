"""The dashboard on a run trained on an image folder: Analyze's gallery shows the user's own
files (their pixels as the run saw them, their paths on hover) after the label check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_runs import make_run
from test_folder_dataset import write_folder
from test_pages import folders, html_blocks, open_page, texts  # noqa: F401 (a fixture)

from app_pages import analyze_matrix, caches
from app_pages.navigation import ANALYZE
from resnet_core import runs, train
from resnet_core.dashboard import run_images
from resnet_core.metrics import confusion_matrix


@pytest.mark.slow
def test_analyze_opens_a_folder_runs_cell_with_the_users_files(folders, tmp_path):  # noqa: F811
    root = write_folder(tmp_path / "shapes", per_class=20)
    assert train.main(["--dataset", "folder", "--data-dir", str(root), "--runs-dir", str(folders), "--depth", "8",
                       "--epochs", "1", "--batch-size", "8", "--image-size", "40", "--device", "cpu",
                       "--name", "shapes"]) == 0
    run_dir = next(folders.glob("*shapes"))
    at = open_page(ANALYZE, {"run": run_dir.name})
    at.segmented_control(key="an_split").set_value("test").run()
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label: m.value for m in at.metric}["Top-5 accuracy"] == "—"  # 3 classes: always 100%, so not shown
    assert "steps in 1 epoch\n" in (run_dir / runs.LOG_FILE).read_text()  # not "1 epochs"
    epoch = runs.recorded_epochs(run_dir, "test")[-1]
    preds = runs.load_predictions(run_dir, "test", epoch)
    cm = confusion_matrix(preds["labels"], preds["preds"], 3)
    t, p = np.unravel_index(np.argmax(cm), cm.shape)
    at.session_state[analyze_matrix.CELL_KEY] = (int(t), int(p))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Images unavailable" not in texts(at) and "differ from the labels" not in texts(at)
    grid = html_blocks(at)[0]
    files = runs.read_data_files(run_dir)["test"]
    shown = [files[i] for i, y, q in zip(preds["indices"], preds["labels"], preds["preds"], strict=True)
             if (y, q) == (t, p)]
    assert grid.count('class="rs-card"') == min(len(shown), 30) > 0
    assert all(f'data-path="{path}"' in grid for path in shown[:30])
    assert grid.count("<img") >= min(len(shown), 30)

    # The folder changed since the run (a file renamed): the cards go without images, saying why.
    renamed = root / shown[0]
    renamed.rename(renamed.with_name("renamed-" + renamed.name))
    caches._image_store.clear()  # the dashboard keeps a folder's images while it runs
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("renamed since the run" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "<img" not in html_blocks(at)[0]
    # Files added to a class (3 to its 20: 5 held out, not 4) move later files and labels: said as the
    # files' change, not as "another order, or another dataset" (the label check's words)
    renamed.with_name("renamed-" + renamed.name).rename(renamed)
    for i in range(3):
        (root / files[0]).parent.joinpath(f"0-added-{i}.png").write_bytes((root / files[0]).read_bytes())
    caches._image_store.clear()
    at.run()
    said = [w.value for w in at.warning]
    assert any("renamed since the run" in w for w in said) and not any("differ from the labels" in w for w in said)


def test_the_files_check_counts_the_files_out_of_place(tmp_path):
    from types import SimpleNamespace

    from resnet_core.folder_dataset import changed_files

    same, moved = (SimpleNamespace(train_files=files, test_files=("t",)) for files in (("a", "b"), ("a", "c", "d")))
    assert changed_files(same, None) is None  # CIFAR: no files recorded
    assert changed_files(same, {"train": ["a", "b"], "test": ["t"]}) is None
    assert changed_files(moved, {"train": ["a", "b"], "test": ["t"]}) == ("train", 2, 2)
    runs.atomic_write_json(tmp_path / runs.DATA_FILES, {"train": ["a", "b"], "test": ["t"]})
    assert run_images.files_problem(moved, None, "/d", ("train",)) is None
    assert run_images.files_problem(moved, tmp_path, "/d", ("test",)) is None
    assert run_images.files_problem(moved, tmp_path, "/d", ("train",)).startswith("2 of the 2 files")


def test_the_dashboard_keys_a_folders_images_by_the_decoding_it_reads(tmp_path):
    root = write_folder(tmp_path / "shapes")
    settings = (("bad_images", "refuse"), ("cache_dir", str(tmp_path / "cache")), ("image_size", 32),
                ("resize", "crop"), ("split_seed", 0), ("test_size", 0.2))
    assert run_images.decoded_version(root, "folder", settings) == ()  # nothing decoded yet
    assert run_images.decoded_version(root, "cifar10", ()) == ()
    store = run_images.ImageStore(root, "folder", settings=settings)
    assert store.decoded is None and not store.wait(0)
    assert len(store.get().train_files) == 30  # 36 images less 2 of each class held out
    assert store.decoded == (36, 36) and store.wait(0)  # the decoding's progress, which the pages draw
    cached = run_images.ImageStore(root, "folder", settings=settings)
    assert len(cached.get().train_files) == 30 and cached.decoded is None  # read from the cache: nothing to decode
    first = run_images.decoded_version(root.resolve(), "folder", settings)
    assert first != ()
    (root / "train" / "red" / "000.png").unlink()  # a trainer decodes the changed folder anew
    run_images.ImageStore(root, "folder", settings=settings).get()
    assert run_images.decoded_version(root.resolve(), "folder", settings) not in ((), first)


@pytest.mark.parametrize("change, says", [
    ({"test_size": "x"}, "does not say how its image folder was split"),
    ({"data_dir": None}, "does not say how its image folder was split"),
])
def test_a_folder_run_with_a_damaged_record_shows_its_cards_without_images(folders, tmp_path, change, says):  # noqa: F811
    run_dir = make_run(folders, "damaged", n_val=60)
    record = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    record["config"].update(dataset="folder", test_size=change.get("test_size", 0.2))
    record["resolved"]["data_dir"] = change.get("data_dir", str(tmp_path))
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(record))
    at = open_page(ANALYZE, {"run": run_dir.name})
    preds = runs.load_predictions(run_dir, "val", 3)
    at.session_state[analyze_matrix.CELL_KEY] = (int(preds["labels"][0]), int(preds["preds"][0]))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(says in w.value for w in at.warning), [w.value for w in at.warning]
