"""The Train form's image folder: its preview (counts, sampled sizes, images decoded as the
run decodes them, warnings), the form's validation of its path, and the trainer's command
line it launches (the pages: test_pages_folder_form.py)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_core.dashboard import folder_preview, launcher
from resnet_core.dashboard.folder_preview import (counts_rows, folder_warnings, preview_folder, sizes_text,
                                                  split_counts, split_note, train_set_images)
from resnet_core.dashboard.form import TrainForm, form_config, sweep_args, trainer_args, validate
from resnet_core.folder_dataset import carve_test, held_out
from resnet_core.images import decode_image_file


def write_image(path: Path, size: tuple[int, int] = (40, 24), mode: str = "RGB", seed: int = 0) -> Path:
    """A random image of size (width, height) in the format its name says."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def write_folder(root: Path, counts: dict[str, int], split: str = "train", size=(40, 24), ext: str = ".png") -> Path:
    for c, n in counts.items():
        for i in range(n):
            write_image(root / split / c / f"{i:03d}{ext}", size, seed=i)
    return root


def value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


FOLDER_FORM = TrainForm(dataset="folder", image_size=48, resize="squash", val_size=0, batch_size=8, device="cpu")


@pytest.fixture
def mixed(tmp_path) -> Path:
    """Three classes without test/: PNGs and JPEGs of several sizes and modes, a broken JPEG,
    two files that are not images, a class of one image."""
    root = tmp_path / "mixed"
    for i in range(12):
        write_image(root / "train" / "cat" / f"{i:02d}.png", (20 + 10 * i, 30), seed=i)
        write_image(root / "train" / "dog" / f"{i:02d}.jpg", (64, 48), mode="L" if i % 2 else "RGB", seed=i)
    (root / "train" / "dog" / "99-broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    write_image(root / "train" / "emu" / "only.webp", (50, 50))
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / ".DS_Store").write_bytes(b"\0")
    return root


def test_the_preview_counts_samples_and_shows_what_the_network_sees(mixed):
    preview = preview_folder(mixed, image_size=32, resize="crop")
    assert preview.error is None and preview.classes == ("cat", "dog", "emu")
    assert preview.train_counts == (12, 13, 1) and preview.test_counts is None and preview.ignored == 2
    # No test/: 20% of each class held out, at least one of a class of two or more, never all.
    assert split_counts(preview, 0.2) == ((10, 10, 1), (2, 3, 0))
    assert counts_rows(preview, 0.2)[1] == {"class": "dog", "train": 10, "test": 3}
    assert train_set_images(preview, 0.2) == 21
    assert split_note(preview, 0.25) == ("test: 25% of each class's images carved from train/ (6 images, chosen by "
                                        "the split seed); the folder has no test/")
    # Every header read (26 images, under the sample's cap): sizes and modes as stored.
    sizes = preview.sizes
    assert (sizes.sampled, sizes.of) == (26, 26) and sizes.widths == (20, 64, 130)
    assert sizes.heights == (30, 48, 50) and dict(sizes.modes) == {"RGB": 19, "L": 6}
    assert sizes.smaller == 12 and len(sizes.unreadable) == 1 and "99-broken.jpg" in sizes.unreadable[0]
    assert sizes_text(sizes) == ("width 20-130 (median 64) px, height 30-50 (median 48) px; modes RGB 19, L 6 "
                                 "(all 26 images)")
    # Four images of each class spread over its files, decoded by the trainer's decoder.
    shown = [(s.label, s.path) for s in preview.shown]
    assert shown[:4] == [(0, f"train/cat/{i:02d}.png") for i in (0, 4, 7, 11)]
    assert shown[-1] == (2, "train/emu/only.webp")
    first = preview.shown[0]
    assert np.array_equal(first.image, decode_image_file(mixed / first.path, 32, "crop"))
    broken = next(s for s in preview.shown if s.path.endswith("99-broken.jpg"))
    assert broken.image is None and "not a PNG, JPEG or WebP image" in broken.problem
    said = "\n".join(folder_warnings(preview, 0.2))
    assert "2 files ignored: not named as a PNG, JPEG or WebP image, or hidden" in said
    assert "1 class with fewer than 10 training images: emu (1)" in said
    assert "no test image can be held out of a class with one image: emu" in said
    assert "strong class imbalance: cat has 10 training images, emu 1 (10x)" not in said  # 10x is not above 10
    assert "12 of the 26 sampled images have a side under 32 px: they are upscaled" in said
    assert "1 sampled file could not be read (train/dog/99-broken.jpg: not a PNG, JPEG or WebP image)" in said


def test_the_shown_images_follow_the_size_and_the_resize_rule(tmp_path):
    root = write_folder(tmp_path / "f", {"a": 2, "b": 2}, size=(80, 20))
    crop, squash = preview_folder(root, 24, "crop"), preview_folder(root, 24, "squash")
    assert all(s.image.shape == (3, 24, 24) for s in crop.shown + squash.shown)
    assert not np.array_equal(crop.shown[0].image, squash.shown[0].image)
    assert np.array_equal(squash.shown[0].image, decode_image_file(root / "train/a/000.png", 24, "squash"))
    # 20 px high at 24: every image upscaled, said from the sample.
    assert "All the 4 sampled images have a side under 24 px" in "\n".join(folder_warnings(crop, 0.2))
    assert preview_folder(root, 16).sizes.smaller == 0


def test_a_large_folder_is_sampled_and_only_the_shown_images_are_decoded(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "big", {f"c{i:02d}": 12 for i in range(25)}, size=(8, 8))
    decoded = []
    monkeypatch.setattr(folder_preview, "decode_image_file", lambda *a: decoded.append(a) or np.zeros((3, 32, 32)))
    preview = preview_folder(root)
    assert preview.sizes.sampled == folder_preview.SAMPLED_FILES < preview.sizes.of == 300
    assert "(a sample of 200 of the 300 images)" in sizes_text(preview.sizes)
    # The first ten classes' four images each: 40 decoded of 300.
    assert len(decoded) == len(preview.shown) == 40 and {s.label for s in preview.shown} == set(range(10))
    assert preview_folder(root, images=False).shown == () and preview_folder(root, images=False).sizes is None


def test_an_empty_file_is_said_to_be_empty_as_the_trainer_says(tmp_path):
    root = write_folder(tmp_path / "f", {"a": 2, "b": 2})
    (root / "train" / "a" / "zero.jpg").write_bytes(b"")  # PIL: "cannot identify image file"
    preview = preview_folder(root)
    assert preview.sizes.unreadable == ("train/a/zero.jpg: empty file",)
    assert any("(train/a/zero.jpg: empty file)" in w for w in folder_warnings(preview, 0.2))


def test_a_test_folder_gives_the_test_counts_and_a_class_it_lacks_is_said(tmp_path):
    root = write_folder(tmp_path / "f", {"a": 30, "b": 2})
    write_folder(root, {"a": 5}, split="test")
    preview = preview_folder(root, images=False)
    assert split_counts(preview, 0.5) == ((30, 2), (5, 0))  # the test share plays no part
    assert split_note(preview, 0.5) == "test: the folder's test/ (5 images)"
    said = folder_warnings(preview, 0.5)
    assert "test/ has no images of 1 class: b" in said
    assert "strong class imbalance: a has 30 training images, b 2 (15x)" in said


@pytest.mark.parametrize("make, words", [
    (lambda root: None, "does not exist"),
    (lambda root: write_folder(root, {"a": 2}, split="test"), "has no train/ folder"),
    (lambda root: write_folder(root, {"a": 2}), "holds 1 class folder: a classifier needs at least two"),
    (lambda root: (write_folder(root, {"a": 2, "b": 2}), (root / "train" / "c").mkdir()), "holds no images"),
])
def test_a_folder_the_scan_refuses_is_one_line_and_no_warnings(tmp_path, make, words):
    root = tmp_path / "f"
    make(root)
    preview = preview_folder(root)
    assert words in preview.error and "\n" not in preview.error
    assert folder_warnings(preview, 0.2) == [] and preview.shown == ()


@pytest.mark.parametrize("count, share, held", [(0, 0.2, 0), (1, 0.2, 0), (2, 0.2, 1), (10, 0.2, 2), (10, 0.99, 9),
                                               (7, 0.5, 4), (100, 0.25, 25)])
def test_the_test_share_is_carved_per_class_as_the_trainer_carves_it(count, share, held):
    assert held_out(count, share) == held
    labels = np.repeat([0, 1], [count, 3])
    _, test = carve_test(labels, share, seed=1)
    assert np.bincount(labels[test], minlength=2)[0] == held  # the trainer's own carve


# ----------------------------------------------------------------------------- the form

def test_a_folder_the_scan_refuses_is_an_error_on_the_path(tmp_path):
    errors = validate(replace(FOLDER_FORM, data_dir=str(tmp_path / "nowhere")))
    assert errors == {"data_dir": f"Image folder {tmp_path / 'nowhere'} does not exist."}
    assert "Type the path of the image folder" in validate(replace(FOLDER_FORM, data_dir="  "))["data_dir"]
    one_class = replace(FOLDER_FORM, data_dir=str(write_folder(tmp_path / "one", {"a": 3})))
    assert "a classifier needs at least two" in validate(one_class)["data_dir"]
    # The data folder's CIFAR is no concern of a folder run.
    assert "data" not in validate(one_class, data_present=False)


def test_a_folder_is_judged_by_its_own_images(tmp_path):
    root = str(write_folder(tmp_path / "f", {"a": 20, "b": 20}))
    form = replace(FOLDER_FORM, data_dir=root)
    assert validate(form) == {}
    # 40 images, 8 held out as the test split: 32 training images.
    assert "leaves no training images (the training set has 32)" in validate(replace(form, val_size=32))["val_size"]
    assert validate(replace(form, batch_size=64))["batch_size"] == "32 training images are fewer than one batch of 64."
    assert validate(replace(form, test_size=0.5, batch_size=20)) == {}
    assert validate(replace(form, test_size=0.5, batch_size=21))["batch_size"].startswith("20 training images")
    assert "must lie in (0, 1)" in validate(replace(form, test_size=1.5))["test_size"]
    assert "16..256" in validate(replace(form, image_size=300))["image_size"]
    # The validation size left at CIFAR's 5,000 is the trainer's folder default: a tenth of the 32.
    assert validate(replace(form, val_size=5000, batch_size=29)) == {}
    assert validate(replace(form, val_size=5000, batch_size=30))["val_size"].startswith("29 training images are fewer")
    assert "--val-size" not in trainer_args(replace(form, val_size=5000), data_dir=tmp_path, runs_dir=tmp_path)
    # The page's preview of the same path stands for the scan.
    preview = preview_folder(root, images=False)
    assert validate(replace(form, val_size=32), folder=preview) == validate(replace(form, val_size=32))


def test_a_folder_run_takes_its_root_and_image_fields_and_a_cifar_run_none_of_them(tmp_path):
    root = write_folder(tmp_path / "f", {"a": 20, "b": 20})
    args = trainer_args(replace(FOLDER_FORM, data_dir=f" {root} ", bad_images="skip", test_size=0.25),
                        data_dir=tmp_path / "cifar", runs_dir=tmp_path / "runs")
    assert value(args, "--dataset") == "folder" and value(args, "--data-dir") == str(root.resolve())
    assert [value(args, f) for f in ("--image-size", "--resize", "--test-size", "--bad-images")] == [
        "48", "squash", "0.25", "skip"]
    parsed = pytest.importorskip("resnet_core.train").parse(args)  # as the trainer reads them
    assert (parsed.cfg.dataset, parsed.cfg.data_dir, parsed.cfg.image_size) == ("folder", str(root.resolve()), 48)
    assert (parsed.cfg.resize, parsed.cfg.test_size, parsed.cfg.bad_images) == ("squash", 0.25, "skip")
    # A CIFAR form leaves the folder's fields to the trainer (32x32), whatever they hold.
    cifar = replace(FOLDER_FORM, dataset="cifar10", data_dir=str(root), val_size=5000, batch_size=128)
    args = trainer_args(cifar, data_dir=tmp_path / "cifar", runs_dir=tmp_path / "runs")
    assert value(args, "--data-dir") == str((tmp_path / "cifar").resolve())
    assert not {"--image-size", "--resize", "--test-size", "--bad-images"} & set(args)
    assert validate(cifar) == {} and form_config(cifar).image_size == 32
    # A sweep is given its data folder by the launcher, never twice.
    assert "--data-dir" not in sweep_args(replace(FOLDER_FORM, data_dir=str(root)), {"seed": ["0", "1"]}, 1)


def test_the_launcher_passes_the_folder_as_the_runs_data_dir(tmp_path):
    root = write_folder(tmp_path / "f", {"a": 20, "b": 20})
    form = replace(FOLDER_FORM, data_dir=str(root), name="mine")
    # A module that does not exist: the process ends at once, the command is what matters.
    launched = launcher.launch(form, data_dir=tmp_path / "cifar", runs_dir=tmp_path / "runs", python=sys.executable,
                               module="no_such_trainer_module")
    argv = launched.argv
    assert value(argv, "--data-dir") == str(root.resolve()) and value(argv, "--dataset") == "folder"
    assert value(argv, "--image-size") == "48" and launched.run_dir.parent == (tmp_path / "runs").resolve()
    with pytest.raises(ValueError, match="data_dir: Image folder .* does not exist"):
        launcher.launch(replace(form, data_dir=str(tmp_path / "gone")), data_dir=tmp_path, runs_dir=tmp_path / "runs")
