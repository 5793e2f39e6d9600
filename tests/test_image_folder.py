"""Image folders (resnet_core.folder_scan, resnet_core.image_folder): what is found, decoded,
refused, skipped and cached, on folders each test writes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar_folder import export_cifar_folder, folder_order
from resnet_core.cifar import DataError, load_cifar
from resnet_core.folder_scan import scan_image_folder
from resnet_core.image_folder import cache_path, load_image_folder
from resnet_core.images import ImageRefused, decode_image_file

RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)


def save(path: Path, image: Image.Image | None = None, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (image or Image.new("RGB", (32, 32), RED)).save(path, **options)
    return path


def two_classes(root: Path, per_class: int = 2) -> Path:
    for c, colour in (("cat", RED), ("dog", BLUE)):
        for i in range(per_class):
            save(root / "train" / c / f"{i}.png", Image.new("RGB", (32, 32), colour))
    return root


def pixel(data: np.ndarray, i: int) -> tuple[int, ...]:
    return tuple(int(v) for v in data[i][:, 16, 16])


def test_every_format_and_mode_decodes_to_rgb_of_the_asked_size(tmp_path):
    save(tmp_path / "train/a/photo.jpg", Image.new("RGB", (80, 50), RED), quality=95)
    save(tmp_path / "train/a/lossless.webp", Image.new("RGB", (20, 40), BLUE), lossless=True)
    save(tmp_path / "train/b/clear.png", Image.new("RGBA", (32, 32), (0, 0, 0, 0)))
    save(tmp_path / "train/b/grey.png", Image.new("L", (100, 30), 77))
    save(tmp_path / "train/b/deeper/more/x.PNG", Image.new("RGB", (8, 8), GREEN))
    (tmp_path / "train/b/notes.txt").write_text("not an image")
    (tmp_path / "train/b/._grey.png").write_bytes(b"macOS metadata")
    data = load_image_folder(tmp_path, image_size=24)
    assert data.classes == ("a", "b")
    assert data.train_files == ("train/a/lossless.webp", "train/a/photo.jpg", "train/b/clear.png",
                                "train/b/deeper/more/x.PNG", "train/b/grey.png")
    assert data.train_labels.tolist() == [0, 0, 1, 1, 1] and data.train_labels.dtype == np.int64
    assert data.train_images.shape == (5, 3, 24, 24) and data.train_images.dtype == np.uint8
    assert pixel(data.train_images, 0) == BLUE
    assert np.abs(np.subtract(pixel(data.train_images, 1), RED)).max() <= 3  # JPEG
    assert pixel(data.train_images, 2) == WHITE  # transparent onto white
    assert pixel(data.train_images, 3) == GREEN
    assert pixel(data.train_images, 4) == (77, 77, 77)
    assert data.ignored == 2 and data.test_images is None and data.test_files is None and not data.from_cache


def test_a_16_bit_grey_png_is_scaled_to_8_bits_not_clipped_white(tmp_path):
    levels = np.array([[0, 385, 32767, 56195, 65535]], np.uint16).repeat(5, axis=0)  # PIL opens it as I;16
    save(tmp_path / "deep.png", Image.fromarray(levels))
    out = decode_image_file(tmp_path / "deep.png", 5, "squash")
    assert out[:, 0].tolist() == [[0, 1, 127, 219, 255]] * 3  # round(v / 257); PIL's convert made all but 0 255


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (32, 32), RED)
    image.paste(BLUE, (0, 16, 32, 32))  # red above blue, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: red on the right, blue on the left
    save(tmp_path / "turned.jpg", image, exif=exif, quality=95)
    out = decode_image_file(tmp_path / "turned.jpg").astype(int)
    assert np.abs(out[:, 16, 28] - RED).max() < 30 and np.abs(out[:, 16, 3] - BLUE).max() < 30


def test_crop_keeps_the_middle_and_squash_the_whole(tmp_path):
    image = Image.new("RGB", (64, 32), WHITE)
    image.paste(GREEN, (0, 0, 8, 32))  # the left eighth, outside the middle square and its filter's reach
    save(tmp_path / "wide.png", image)
    cropped = decode_image_file(tmp_path / "wide.png", 16, "crop")
    squashed = decode_image_file(tmp_path / "wide.png", 16, "squash")
    assert cropped.shape == squashed.shape == (3, 16, 16)
    assert (cropped == 255).all()
    assert tuple(squashed[:, 8, 0]) == GREEN and tuple(squashed[:, 8, 12]) == WHITE
    with pytest.raises(ValueError, match="resize rule"):
        decode_image_file(tmp_path / "wide.png", 16, "stretch")


def test_an_image_of_the_asked_size_keeps_its_exact_pixels(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for name, options in (("a.png", {}), ("a.webp", {"lossless": True})):
        save(tmp_path / name, Image.fromarray(pixels), **options)
        for rule in ("crop", "squash"):
            assert np.array_equal(decode_image_file(tmp_path / name, 32, rule), pixels.transpose(2, 0, 1))


def test_cifar_exported_to_pngs_decodes_to_the_pickles_images(cifar_dir, tmp_path):
    folder = export_cifar_folder(cifar_dir, tmp_path / "png")
    pickled = load_cifar("cifar10", cifar_dir)
    data = load_image_folder(folder)
    assert data.classes == pickled.classes
    for images, labels, got_images, got_labels in (
            (pickled.train_images, pickled.train_labels, data.train_images, data.train_labels),
            (pickled.test_images, pickled.test_labels, data.test_images, data.test_labels)):
        order = folder_order(labels)
        assert np.array_equal(got_images, images[order]) and np.array_equal(got_labels, labels[order])
    assert data.train_files[0] == f"train/airplane/{folder_order(pickled.train_labels)[0]:05d}.png"


def test_cifar_exported_to_jpegs_decodes_close_to_the_pickles_images(cifar_dir, tmp_path):
    folder = export_cifar_folder(cifar_dir, tmp_path / "jpg", jpeg_quality=90)
    pickled = load_cifar("cifar10", cifar_dir)
    data = load_image_folder(folder)
    expected = pickled.test_images[folder_order(pickled.test_labels)].astype(int)
    difference = np.abs(data.test_images.astype(int) - expected)
    assert all(f.endswith(".jpg") for f in data.test_files)
    assert 0 < difference.mean() < 10


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "does not exist"),
    (lambda root: save(root / "cat" / "0.png"), "has no train/ folder"),
    (lambda root: (two_classes(root), (root / "train/empty").mkdir()), "train/empty holds no images"),
    (lambda root: (two_classes(root), (root / "train/text/a.txt").parent.mkdir(),
                   (root / "train/text/a.txt").write_text("x")), "train/text holds no images"),
    (lambda root: save(root / "train/cat/0.png"), "holds 1 class folder: a classifier needs at least two"),
    (lambda root: (two_classes(root), save(root / "test/cow/0.png")), "has classes that train/ lacks: cow"),
    (lambda root: (two_classes(root), (root / "test").mkdir()), "test holds no class folders"),
])
def test_folders_that_cannot_be_trained_on_are_refused_in_one_line(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DataError, match=message) as caught:
        load_image_folder(root)
    assert "\n" not in str(caught.value)


def test_a_link_to_a_class_folder_is_the_one_skipped_whatever_the_listing_order(tmp_path, monkeypatch):
    root = two_classes(tmp_path)
    os.symlink("cat", root / "train/animal")  # an alias of the class folder cat
    real_scandir = os.scandir

    class LinksFirst:  # a filesystem that lists the link before the folder it points at
        def __init__(self, path):
            self.entries = sorted(real_scandir(path), key=lambda e: (not e.is_symlink(), e.name))

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(os, "scandir", LinksFirst)
    scan = scan_image_folder(root)
    assert scan.classes == ("cat", "dog") and scan.train.counts == (2, 2)
    assert scan.problems == ("train/animal: a link to a folder already scanned (a symlink loop?), skipped",)


def test_symlink_loops_and_broken_links_are_skipped_and_said(tmp_path):
    root = two_classes(tmp_path)
    os.symlink(root / "train", root / "train/cat/up")  # a loop back to train/
    os.symlink("self", root / "train/dog/self")  # a link to itself
    os.symlink("nowhere.png", root / "train/dog/gone.png")
    os.symlink(root / "train/cat/0.png", root / "train/dog/linked.png")  # a link to a file is followed
    scan = scan_image_folder(root)
    assert scan.train.files == ("train/cat/0.png", "train/cat/1.png", "train/dog/0.png", "train/dog/1.png",
                                "train/dog/linked.png")
    assert scan.train.counts == (2, 3)
    said = " | ".join(scan.problems)
    assert "train/cat/up: a link to a folder already scanned" in said
    assert "train/dog/gone.png: a broken link" in said and "train/dog/self" in said


def test_a_test_split_is_read_and_a_class_it_lacks_is_said(tmp_path):
    root = two_classes(tmp_path)
    save(root / "test/dog/5.png", Image.new("RGB", (32, 32), BLUE))
    data = load_image_folder(root)
    assert data.test_files == ("test/dog/5.png",) and data.test_labels.tolist() == [1]
    assert pixel(data.test_images, 0) == BLUE
    assert data.problems == ("test/ has no images of 1 class: cat",)


def truncated(path: Path) -> Path:
    data = save(path, Image.effect_noise((64, 64), 50).convert("RGB"), format="JPEG").read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_unreadable_images_refuse_the_folder_or_are_skipped(tmp_path):
    root = two_classes(tmp_path, per_class=3)
    truncated(root / "train/cat/half.jpg")
    for i in range(6):
        (root / f"train/dog/fake{i}.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as caught:
        load_image_folder(root)
    said = str(caught.value)
    assert said.startswith("7 unreadable images in") and "and 2 more" in said and "--bad-images skip" in said
    assert "half.jpg: damaged image" in said and "\n" not in said
    data = load_image_folder(root, bad_images="skip")
    assert data.skipped == ("train/cat/half.jpg", *(f"train/dog/fake{i}.png" for i in range(6)))
    assert data.train_files == tuple(f"train/{c}/{i}.png" for c in ("cat", "dog") for i in range(3))
    assert data.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert [pixel(data.train_images, i) for i in (0, 5)] == [RED, BLUE]


def test_a_second_load_comes_from_the_cache_without_decoding(tmp_path):
    root, cache = two_classes(tmp_path / "data", per_class=3), tmp_path / "cache"
    calls = []
    first = load_image_folder(root, cache_dir=cache, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6, 6) and not first.from_cache
    calls.clear()
    second = load_image_folder(root, cache_dir=cache, progress=lambda done, total: calls.append((done, total)))
    assert second.from_cache and calls == []
    assert np.array_equal(second.train_images, first.train_images) and second.train_files == first.train_files
    assert second.train_labels.tolist() == first.train_labels.tolist()
    assert load_image_folder(root, image_size=16, cache_dir=cache).train_images.shape[-1] == 16
    assert len(list(cache.iterdir())) == 2  # one per size


@pytest.mark.parametrize("change", ["bytes", "mtime", "added", "removed"])
def test_a_changed_file_is_decoded_again_into_the_one_cache_file(tmp_path, change):
    root, cache = two_classes(tmp_path / "data"), tmp_path / "cache"
    load_image_folder(root, cache_dir=cache)
    target = root / "train/cat/0.png"
    if change == "bytes":
        save(target, Image.new("RGB", (32, 32), GREEN))
    elif change == "mtime":
        os.utime(target, ns=(0, os.stat(target).st_mtime_ns + 1))
    elif change == "added":
        save(root / "train/cat/2.png")
    else:
        target.unlink()
    data = load_image_folder(root, cache_dir=cache)
    assert not data.from_cache and len(list(cache.iterdir())) == 1
    assert load_image_folder(root, cache_dir=cache).from_cache
    if change == "bytes":
        assert pixel(data.train_images, 0) == GREEN


def test_a_damaged_cache_file_is_decoded_again_and_rewritten(tmp_path):
    root, cache = two_classes(tmp_path / "data"), tmp_path / "cache"
    expected = load_image_folder(root, cache_dir=cache).train_images
    path = cache_path(cache, root.resolve(), 32, "crop")
    path.write_bytes(path.read_bytes()[:200])
    data = load_image_folder(root, cache_dir=cache)
    assert not data.from_cache and np.array_equal(data.train_images, expected)
    assert load_image_folder(root, cache_dir=cache).from_cache


def test_skipped_images_in_the_cache_still_refuse_where_refusing(tmp_path):
    root, cache = two_classes(tmp_path / "data"), tmp_path / "cache"
    truncated(root / "train/dog/half.jpg")
    assert load_image_folder(root, cache_dir=cache, bad_images="skip").skipped == ("train/dog/half.jpg",)
    calls = []
    with pytest.raises(DataError, match="1 unreadable image in .*half.jpg"):
        load_image_folder(root, cache_dir=cache, progress=lambda *a: calls.append(a))
    assert calls == []  # refused from the cache, nothing decoded


def test_two_workers_decode_as_one(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(1)
    for i in range(300):
        save(root / "train" / f"c{i % 3}" / f"{i:03d}.png", Image.fromarray(rng.integers(0, 256, (9, 13, 3), np.uint8)))
    one, two = (load_image_folder(root, image_size=8, workers=w) for w in (1, 2))
    assert np.array_equal(one.train_images, two.train_images) and one.train_files == two.train_files


def test_two_thousand_files_are_scanned_in_order_with_counts(tmp_path):
    png = save(tmp_path / "one.png", Image.new("RGB", (2, 2))).read_bytes()
    for i in range(2000):
        path = tmp_path / "data/train" / f"class{i % 4}" / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    (tmp_path / "data/train/class0/readme.md").write_text("x")
    scan = scan_image_folder(tmp_path / "data")
    assert scan.classes == ("class0", "class1", "class2", "class3") and scan.train.counts == (500,) * 4
    assert scan.train.files[:2] == ("train/class0/0000.png", "train/class0/0004.png")
    assert scan.train.labels.tolist() == sorted(scan.train.labels.tolist()) and scan.ignored == 1
    assert (scan.train.sizes == len(png)).all() and scan.test is None


def test_a_missing_file_is_refused_naming_it():
    with pytest.raises(ImageRefused, match="no such file"):
        decode_image_file("/nonexistent/a.png")


def test_skipping_every_image_of_a_class_is_said_and_of_all_refused(tmp_path):
    root = two_classes(tmp_path)
    for name in ("0.png", "1.png"):
        (root / "train/dog" / name).write_bytes(b"broken")
    data = load_image_folder(root, bad_images="skip")
    assert data.problems == ("no readable training image of 1 class: dog",) and data.classes == ("cat", "dog")
    for name in ("0.png", "1.png"):
        (root / "train/cat" / name).write_bytes(b"broken")
    with pytest.raises(DataError, match="none of the 4 images in .*train could be read"):
        load_image_folder(root, bad_images="skip")


def test_a_progress_callback_that_raises_stops_the_decoding(tmp_path, monkeypatch):
    from resnet_core import image_folder

    root = two_classes(tmp_path, per_class=20)
    decoded, stopped = [], threading.Event()

    def decode(*args):
        if len(decoded) >= 2:  # after the first chunk, the worker waits for the stop
            stopped.wait(10)
        decoded.append(args)
        return decode_image_file(*args)

    def stop(done, total):
        stopped.set()
        raise KeyboardInterrupt

    monkeypatch.setattr(image_folder, "CHUNK", 2)
    monkeypatch.setattr(image_folder, "decode_image_file", decode)
    with pytest.raises(KeyboardInterrupt):
        load_image_folder(root, workers=1, progress=stop)
    # The first chunk, and the next only if the worker had taken it before the stop (a race the
    # loaded machine decides either way: 2 or 4); the other 36 images never.
    assert len(decoded) in (2, 4)
