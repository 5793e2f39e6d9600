"""The dashboard's image folders through Streamlit's AppTest: the Train form choosing "Image
folder", refusing a path its scan refuses, previewing a folder and launching a run on it;
Home listing the folders (the preview and the form as data: test_folder_preview.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import wait_until
from fake_runs import make_run
from test_folder_preview import write_folder
from test_pages import folders, open_page, texts  # noqa: F401 (folders: a fixture)

from app_pages.navigation import HOME, TRAIN
from resnet_core import runs
from resnet_core.dashboard import launcher
from resnet_core.formatting import md_escape
from resnet_core.image_folder import cache_folder, cache_path
from resnet_core.models import describe_model


def choose_folder(at, root: Path | str):
    at.segmented_control(key="tf_dataset").set_value("folder").run()
    at.text_input(key="tf_data_dir").set_value(str(root)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_train_form_previews_an_image_folder_and_launches_a_run_on_it(folders, tmp_path, monkeypatch):  # noqa: F811
    at = open_page(TRAIN)
    assert "tf_data_dir" not in [w.key for w in at.text_input]  # CIFAR: no folder, no image size
    assert "tf_image_size" not in [w.key for w in at.number_input]
    at.segmented_control(key="tf_dataset").set_value("folder").run()
    assert "Type the path of the image folder" in texts(at)
    assert "Choose a readable image folder to see the model" in texts(at)

    choose_folder(at, tmp_path / "nowhere")
    assert f"Image folder {tmp_path / 'nowhere'} does not exist." in texts(at)
    at.button(key="train_launch").click().run()
    assert "Not launched: fix the fields marked in red." in texts(at) and not list(folders.iterdir())

    root = write_folder(tmp_path / "pets", {"cat": 30, "dog": 20, "emu": 5}, size=(40, 30))
    (root / "train" / "cat" / "readme.txt").write_text("not an image")
    choose_folder(at, root)
    text = texts(at)
    assert "**3 classes** · 44 training images (the validation split included) · 11 test images" in text  # 20% held out
    assert "test: 20% of each class's images carved from train/" in text
    assert "width 40 px, height 30 px; modes RGB 55 (all 55 images)" in text
    counts = at.dataframe[0].value
    assert list(counts["class"]) == ["cat", "dog", "emu"] and list(counts["test"]) == [6, 4, 1]
    shown = at.get("image")[0].proto.imgs
    assert [img.caption for img in shown] == ["cat"] * 4 + ["dog"] * 4 + ["emu"] * 4
    assert all(img.url.endswith(".png") for img in shown)  # the exact pixels, not re-encoded as JPEG
    warnings = "\n".join(w.value for w in at.warning)
    assert "1 file ignored" in warnings and md_escape("emu (4)") in warnings and "have a side under 32 px" in warnings
    # The model: the folder's three classes at the form's image size.
    at.number_input(key="tf_image_size").set_value(48).run()
    macs = next(m for m in at.metric if m.label == "MACs / image")
    assert "on a 48x48 image" in macs.proto.help
    params = next(m for m in at.metric if m.label == "Parameters")
    assert params.proto.help == f"{describe_model(20, num_classes=3, image_size=48).params:,}"
    assert "have a side under 48 px" in "\n".join(w.value for w in at.warning)
    # The validation size left at CIFAR's 5,000: the trainer's folder default, a tenth of the 44
    # training images; the 40 left cannot fill a batch of 128, said on the field.
    assert "40 training images are fewer than one batch of 128" in texts(at)
    at.number_input(key="tf_batch_size").set_value(8).run()
    at.selectbox(key="tf_device").set_value("cpu").run()
    assert "40 training images · 4 validation images · 5 steps per epoch" in texts(at)

    launched = []
    real_launch = launcher.launch
    monkeypatch.setattr(launcher, "launch", lambda form, **kw: launched.append(
        real_launch(form, module="no_such_trainer_module", **kw)) or launched[-1])
    at.button(key="train_launch").click().run()
    argv = launched[0].argv
    value = {flag: argv[argv.index(flag) + 1] for flag in ("--dataset", "--data-dir", "--image-size", "--batch-size")}
    assert value == {"--dataset": "folder", "--data-dir": str(root.resolve()), "--image-size": "48",
                     "--batch-size": "8"}
    assert "--val-size" not in argv  # left to the trainer's folder default
    assert launched[0].run_dir.parent == folders.resolve()


@pytest.mark.slow
def test_a_run_launched_from_the_form_trains_on_the_folder(folders, tmp_path):  # noqa: F811
    pytest.importorskip("resnet_core.train")
    root = write_folder(tmp_path / "pets", {"cat": 30, "dog": 20, "emu": 10}, size=(40, 30))
    at = choose_folder(open_page(TRAIN), root)
    at.number_input(key="tf_image_size").set_value(40).run()
    at.selectbox(key="tf_depth").set_value(8).run()
    for key, value in (("tf_epochs", 1), ("tf_batch_size", 8)):
        at.number_input(key=key).set_value(value).run()
    at.selectbox(key="tf_device").set_value("cpu").run()
    at.button(key="train_launch").click().run()
    assert not at.exception and "Launched" in texts(at)
    run_dir = next(folders.iterdir())

    assert wait_until(lambda: (info := runs.read_run(run_dir)) is not None and not info.is_active, timeout=120)
    info = runs.read_run(run_dir)
    assert info.state == "completed", (run_dir / runs.CONSOLE_FILE).read_text()
    # 60 images, 12 held out as the test split, 4 of the 48 left validate: as the form planned.
    assert (info.resolved["data_dir"], info.resolved["image_size"]) == (str(root.resolve()), 40)
    assert (info.resolved["train_size"], info.resolved["val_size"], info.resolved["test_size"]) == (44, 4, 12)


def test_a_sweep_of_a_folder_form_trains_on_the_folder(folders, tmp_path, monkeypatch):  # noqa: F811
    root = write_folder(tmp_path / "pets", {"cat": 30, "dog": 30})
    at = choose_folder(open_page(TRAIN), root)
    at.number_input(key="tf_batch_size").set_value(8).run()
    asked = []
    monkeypatch.setattr(launcher, "sweep_problem", lambda name, args, **k: asked.append(k["data_dir"]))
    monkeypatch.setattr(launcher, "launch_sweep", lambda name, args, **k: asked.append(k["data_dir"])
                        or launcher.SweepLaunched(name, folders / "log", 1, None, args))
    at.session_state["sw_open"] = True
    at.run()
    at.text_input(key="sw_seeds").set_value("0,1")
    at.text_input(key="sw_name").set_value("pets").run()
    at.button(key="sweep_launch").click().run()
    assert asked == [root.resolve(), root.resolve()]  # checked and started on the folder, not the data folder


def test_class_names_in_the_preview_show_as_typed_not_as_markdown(folders, tmp_path):  # noqa: F811
    # "__background__" rendered bold, "*x*" italic, and two "$" in one warning as a formula
    names = ["$10 coins", "$5 coins", "__background__"]
    root = write_folder(tmp_path / "coins", dict.fromkeys(names, 3))
    at = choose_folder(open_page(TRAIN), root)
    assert [img.caption for img in at.get("image")[0].proto.imgs] == [md_escape(n) for n in names for _ in range(3)]
    few = "3 classes with fewer than 10 training images: $10 coins (2), $5 coins (2), __background__ (2)"
    assert md_escape(few) in [w.value for w in at.warning]


def test_a_folder_with_a_test_split_needs_no_test_share(folders, tmp_path):  # noqa: F811
    root = write_folder(tmp_path / "pets", {"cat": 12, "dog": 12})
    write_folder(root, {"cat": 3, "dog": 2}, split="test")
    at = choose_folder(open_page(TRAIN), root)
    assert "tf_test_size" not in [w.key for w in at.number_input]
    assert "test: the folder's test/ (5 images)" in texts(at)
    assert "24 training images (the validation split included) · 5 test images" in texts(at)


def test_home_lists_the_image_folders_of_the_data_folder_and_of_the_runs(folders, tmp_path, monkeypatch):  # noqa: F811
    data = tmp_path / "data"
    write_folder(data / "pets", {"cat": 4, "dog": 3})
    (data / "not-a-folder-dataset").mkdir()
    elsewhere = write_folder(tmp_path / "elsewhere", {"a": 2, "b": 2, "c": 2})
    write_folder(elsewhere, {"a": 1}, split="test")
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(data))
    # A folder run on `elsewhere` at 48x48 squashed, whose decoded copy the cache holds.
    run_dir = make_run(folders, "folder-run")
    config = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    config["config"].update(dataset="folder", image_size=48, resize="squash", data_dir=str(elsewhere))
    config["resolved"]["data_dir"] = str(elsewhere.resolve())
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(config))
    cached = cache_path(cache_folder(folders), elsewhere.resolve(), 48, "squash")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    at = open_page(HOME)
    text = texts(at)
    assert "Image folders" in text
    # No CIFAR here, but runs train on the folders: the missing CIFARs are a note, not a warning.
    assert not [w.value for w in at.warning if "CIFAR" in w.value]
    assert any("CIFAR-10 is not in" in i.value for i in at.info)
    assert f"{(data / 'pets').resolve()}`: 2 classes · 7 images in train/, no test/ · not decoded yet" in text
    assert (f"{elsewhere.resolve()}`: 3 classes · 6 images in train/, 1 in test/ · 1 run · decoded: 48x48 squash"
            in text)
    assert "not-a-folder-dataset" not in text


def test_the_paper_preset_counts_its_epochs_on_the_folders_training_images(folders, tmp_path):  # noqa: F811
    at = open_page(TRAIN)
    at.toggle(key="tf_preset_paper").set_value(True).run()
    assert "All 50,000 training images" in texts(at) and "(165 epochs" in texts(at)
    root = write_folder(tmp_path / "pets", {"cat": 640, "dog": 640}, size=(8, 8))
    choose_folder(at, root)
    # 1,024 training images after the 20% test share: 8 steps of 128 an epoch, 64,000 steps in 8,000 epochs.
    assert "All 1,024 training images" in texts(at), texts(at)
    assert "(8,000 epochs" in texts(at), [c.value for c in at.caption]
