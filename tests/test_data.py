import hashlib
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from conftest import write_cifar_folder

from resnet_core.cifar import (
    BATCH_FOLDER,
    CLASSES,
    ChannelStats,
    DataError,
    channel_stats,
    dataset_present,
    load_cifar,
    resolve_data_dir,
    split_train_val,
)
from resnet_core.cifar_download import download_cifar
from resnet_core.data import DeviceLoader, augmentation_draws, batch_generator, normalize, random_crop, random_flip


def test_reads_bytes_and_str_keyed_batches(tmp_path, cifar_dir):
    data = load_cifar("cifar10", cifar_dir)
    assert data.train_images.shape == (500, 3, 32, 32) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (200, 3, 32, 32)
    assert data.classes == CLASSES
    assert np.bincount(data.train_labels).tolist() == [50] * 10
    str_dir = write_cifar_folder(tmp_path, 100, 20, str_keys=True)
    assert load_cifar("cifar10", str_dir).train_labels.shape == (100,)


def test_data_dir_from_argument_then_environment_then_default(monkeypatch, tmp_path):
    monkeypatch.delenv("RESNET_STUDIO_DATA", raising=False)
    assert str(resolve_data_dir()) == "data"
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir("elsewhere").name == "elsewhere"


def test_missing_data_names_folder_layout_and_archive(tmp_path):
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", tmp_path)
    message = str(e.value)
    assert str(tmp_path.resolve()) in message
    assert "cifar-10-batches-py/data_batch_1..5" in message and "cifar-10-python.tar.gz" in message


def test_truncated_batch_is_a_clear_error(tmp_path):
    root = write_cifar_folder(tmp_path, 100, 20)
    path = root / BATCH_FOLDER / "data_batch_3"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="data_batch_3 is not a readable CIFAR-10 batch"):
        load_cifar("cifar10", root)


@pytest.mark.parametrize("labels", [["x"] * 4, [2 ** 70] * 4, [[1, 2]] * 4])
def test_labels_that_are_not_numbers_are_a_clear_error(tmp_path, labels):
    root = write_cifar_folder(tmp_path, 100, 20)
    with open(root / BATCH_FOLDER / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": labels}, f)
    with pytest.raises(DataError, match="test_batch"):
        load_cifar("cifar10", root)


def test_foreign_batch_is_a_clear_error(tmp_path):
    root = write_cifar_folder(tmp_path, 100, 20)
    with open(root / BATCH_FOLDER / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, f)
    with pytest.raises(DataError, match=r"expected uint8 \(N, 3072\)"):
        load_cifar("cifar10", root)
    with open(root / BATCH_FOLDER / "test_batch", "wb") as f:
        pickle.dump(["not", "a", "batch"], f)
    with pytest.raises(DataError, match="not a CIFAR-10 batch"):
        load_cifar("cifar10", root)


class _RunsAShellCommand:
    """Unpickling this runs a shell command, as any pickle may: CIFAR files must never."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


@pytest.mark.parametrize("name", ["data_batch_1", "test_batch", "batches.meta"])
@pytest.mark.parametrize("where", ["the payload", "inside the batch"])
def test_a_data_file_whose_pickle_runs_code_is_refused_unrun(tmp_path, name, where):
    root = write_cifar_folder(tmp_path / "data", 100, 20)
    marker = tmp_path / "MARKER"
    payload = _RunsAShellCommand(f"touch {marker}")
    with open(root / BATCH_FOLDER / name, "wb") as f:
        pickle.dump(payload if where == "the payload" else {b"data": np.zeros((4, 3072), np.uint8),
                                                            b"labels": [0, 1, 2, 3], b"x": payload}, f)
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", root)
    assert not marker.exists()
    assert str(e.value) == f"{root / BATCH_FOLDER / name}: refusing to unpickle posix.system (not CIFAR data)"



# Crafted pickles that call nothing but fail in ways whose messages span lines or are not
# errors of the usual kinds; each is one line naming the file.
CRAFTED_PICKLES = {
    "a persistent id": b"Pfoo\n.",  # pickle's own message holds a newline
    "a _codecs.encode to another codec": b"c_codecs\nencode\n(S'abc'\nS'rot13'\ntR.",
    "an object array's state as raw bytes": (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01K\x02\x85"
        b"cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89C\x10"
        + b"A" * 16 + b"tb."),
    "a list nested 100,000 deep": b"\x80\x02}(U\x04data" + b"]" * 100_000 + b"a" * 99_999 + b"U\x06labels]u.",
}


@pytest.mark.parametrize("kind", CRAFTED_PICKLES)
def test_a_crafted_batch_is_refused_in_one_line_naming_it(tmp_path, kind):
    root = write_cifar_folder(tmp_path, 100, 20)
    (root / BATCH_FOLDER / "data_batch_2").write_bytes(CRAFTED_PICKLES[kind])
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", root)
    assert str(e.value).startswith(str(root / BATCH_FOLDER / "data_batch_2")) and "\n" not in str(e.value)


def test_a_meta_file_calling_a_codec_other_than_latin1_is_refused_not_passed_over(tmp_path):
    """batches.meta only adds class names, but a pickle there that calls anything the
    restricted unpickler refuses is refused as in a batch, not replaced by the official names."""
    root = write_cifar_folder(tmp_path, 100, 20)
    meta = root / BATCH_FOLDER / "batches.meta"
    meta.write_bytes(CRAFTED_PICKLES["a _codecs.encode to another codec"])
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", root)
    assert str(e.value) == f"{meta}: refusing to unpickle _codecs.encode with b'rot13' (not CIFAR data)"

# The official files are protocol 2 and name NumPy 1's module (renamed in text: protocols 0
# and 2 write module names as lines, later ones with their length).
@pytest.mark.parametrize("protocol, numpy_module", [(0, "numpy.core"), (2, "numpy.core"), (0, "numpy._core"),
                                                    (2, "numpy._core"), (4, "numpy._core"), (5, "numpy._core")])
def test_batches_pickled_as_the_official_files_are_still_read(tmp_path, protocol, numpy_module):
    """The official files are Python 2 pickles of dicts of bytes keys, a uint8 ndarray, a list
    of int labels and a bytes batch_label; re-packed copies may use any protocol."""
    root = write_cifar_folder(tmp_path, 100, 20)
    images = np.arange(20 * 3072, dtype=np.uint8).reshape(20, 3072)
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": list(range(10)) * 2, b"data": images,
             "filenames": ["a.png"] * 20, b"count": np.int64(20), b"dtype": np.dtype("uint8")}
    data = pickle.dumps(batch, protocol=protocol).replace(b"numpy._core", numpy_module.encode())
    (root / BATCH_FOLDER / "test_batch").write_bytes(data)
    loaded = load_cifar("cifar10", root)
    assert np.array_equal(loaded.test_images.reshape(20, 3072), images)
    assert loaded.test_labels.tolist() == list(range(10)) * 2 and loaded.classes == CLASSES


def _archive(tmp_path):
    src = write_cifar_folder(tmp_path / "src", 100, 20)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / BATCH_FOLDER, arcname=BATCH_FOLDER)
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_verifies_md5_extracts_and_reports_progress(tmp_path):
    archive, md5 = _archive(tmp_path)
    seen = []
    target = tmp_path / "data"
    download_cifar("cifar10", target, progress=lambda done, total: seen.append((done, total)),
                   url=archive.as_uri(), md5=md5)
    assert dataset_present("cifar10", target)
    assert seen and seen[-1][0] == archive.stat().st_size
    assert load_cifar("cifar10", target).train_images.shape == (100, 3, 32, 32)


def test_download_works_beside_a_broken_torchvision(tmp_path, broken_imports):
    broken_imports("torchvision")
    archive, md5 = _archive(tmp_path)
    download_cifar("cifar10", tmp_path / "data", url=archive.as_uri(), md5=md5)
    assert load_cifar("cifar10", tmp_path / "data").train_images.shape == (100, 3, 32, 32)


@pytest.mark.parametrize("kind", ["a FIFO", "a regular file"])
def test_a_download_into_a_data_dir_that_is_no_folder_says_so(tmp_path, kind):
    """Was "[Errno 17] File exists: 'data'"."""
    archive, md5 = _archive(tmp_path)
    target = tmp_path / "data"
    os.mkfifo(target) if kind == "a FIFO" else target.write_text("x")
    with pytest.raises(DataError) as e:
        download_cifar("cifar10", target, url=archive.as_uri(), md5=md5)
    assert str(e.value) == f"the data folder {target} is {kind}, not a folder: give a folder for --data-dir"


@pytest.mark.parametrize("at", ["the archive", "the archive's partial download", "a batch file"])
@pytest.mark.parametrize("kind", ["a symlink", "a FIFO"])
def test_a_download_never_writes_through_or_replaces_a_special_file(tmp_path, at, kind):
    archive, md5 = _archive(tmp_path)
    target = tmp_path / "data"
    (target / BATCH_FOLDER).mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    path = {"the archive": target / "cifar-10-python.tar.gz",
            "the archive's partial download": target / "cifar-10-python.tar.gz.part",
            "a batch file": target / BATCH_FOLDER / "data_batch_2"}[at]
    path.symlink_to(outside) if kind == "a symlink" else os.mkfifo(path)
    before = os.lstat(path)
    if at == "the archive's partial download":  # no longer a fixed name: the download goes on
        download_cifar("cifar10", target, url=archive.as_uri(), md5=md5)
    else:
        with pytest.raises(DataError) as e:
            download_cifar("cifar10", target, url=archive.as_uri(), md5=md5)
        assert str(e.value).count("\n") == 0 and str(path) in str(e.value) and "not a regular file" in str(e.value)
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode) and outside.read_text() == "keep\n"


def test_corrupt_download_leaves_nothing_behind(tmp_path):
    archive, _ = _archive(tmp_path)
    target = tmp_path / "data"
    with pytest.raises(DataError, match="corrupt"):
        download_cifar("cifar10", target, url=archive.as_uri(), md5="0" * 32)
    assert list(target.iterdir()) == []


def test_no_network_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="download from .* failed"):
        download_cifar("cifar10", tmp_path, url=(tmp_path / "nowhere.tar.gz").as_uri())


def test_validation_split_is_deterministic_and_disjoint():
    train, val = split_train_val(1000, 100, seed=3)
    train2, val2 = split_train_val(1000, 100, seed=3)
    assert np.array_equal(val, val2) and np.array_equal(train, train2)
    assert len(val) == 100 and len(train) == 900
    assert not set(train) & set(val)
    assert not np.array_equal(val, split_train_val(1000, 100, seed=4)[1])
    assert split_train_val(1000, 0, 0)[1].size == 0
    with pytest.raises(ValueError):
        split_train_val(100, 100, 0)


def test_random_crop_shifts_within_the_padding():
    img = torch.arange(1, 3 * 32 * 32 + 1, dtype=torch.int32).view(1, 3, 32, 32).to(torch.uint8)
    images = img.repeat(64, 1, 1, 1)
    dy, dx, _ = augmentation_draws(64, 4, batch_generator(torch.device("cpu"), 0))
    out = random_crop(images, 4, dy, dx)
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for k in range(64):  # every crop is some 32x32 window of the padded image
        found = any(torch.equal(out[k], padded[k, :, dy:dy + 32, dx:dx + 32]) for dy in range(9) for dx in range(9))
        assert found
    assert len({out[k].sum().item() for k in range(64)}) > 5  # not all the same shift


def test_random_flip_mirrors_about_half():
    images = torch.randint(0, 255, (400, 3, 32, 32), dtype=torch.uint8)
    _, _, flip = augmentation_draws(400, 4, batch_generator(torch.device("cpu"), 1))
    out = random_flip(images, flip)
    flipped = [torch.equal(out[i], images[i].flip(2)) for i in range(400)]
    kept = [torch.equal(out[i], images[i]) for i in range(400)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 150 < sum(flipped) < 250


def test_normalize_standardises_and_can_go_channels_last():
    images = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    stats = ChannelStats((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 50_000)
    out = normalize(images, stats, channels_last=True)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    assert out[0, 0, 0, 0].item() == pytest.approx((1 - 0.4914) / 0.2470, rel=1e-5)


def test_channel_stats_are_exact_and_chunking_changes_nothing():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (37, 3, 8, 8), dtype=np.uint8)
    pixels = images.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    for chunk in (5, 37, 1000):
        stats = channel_stats(images, chunk=chunk)
        assert stats.images == 37
        assert np.allclose(stats.mean, pixels.mean(1) / 255, rtol=0, atol=1e-12)
        assert np.allclose(stats.std, pixels.std(1) / 255, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="no images"):
        channel_stats(images[:0])


def _loader(train, n=100, batch=32, seed=0):
    images = np.random.default_rng(0).integers(0, 255, (n, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(n) % 10
    indices = np.arange(1000, 1000 + n)
    return DeviceLoader.from_numpy(images, labels, indices, torch.device("cpu"), batch, train=train, seed=seed,
                                   stats=channel_stats(images))


def test_train_loader_yields_indices_with_fresh_shuffles():
    loader = _loader(train=True)
    assert len(loader) == 3  # drops the partial batch
    epoch1 = torch.cat([idx for idx, _, _ in loader.epoch(1)])
    epoch2 = torch.cat([idx for idx, _, _ in loader.epoch(2)])
    assert len(epoch1) == 96 and len(set(epoch1.tolist())) == 96
    assert not torch.equal(epoch1, epoch2)
    for idx, x, y in loader.epoch(1):
        assert torch.equal(y, (idx - 1000) % 10)  # labels travel with their indices
        assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32


def test_an_epoch_resumes_exactly_from_any_batch():
    loader = _loader(train=True)
    full = list(loader.epoch(5))
    rest = list(loader.epoch(5, start_batch=2))
    assert torch.equal(full[2][1], rest[0][1]) and torch.equal(full[2][0], rest[0][0])


def test_eval_loader_keeps_order_and_every_image():
    loader = _loader(train=False)
    assert len(loader) == 4
    idx = torch.cat([i for i, _, _ in loader.epoch(1)])
    assert idx.tolist() == list(range(1000, 1100))


def test_loader_refuses_float_images():
    with pytest.raises(ValueError, match="uint8"):
        DeviceLoader(torch.zeros(2, 3, 32, 32), torch.zeros(2), torch.zeros(2), 1, train=True,
                     stats=ChannelStats((0.5,) * 3, (0.25,) * 3, 2))


def test_each_rank_gets_its_slice_of_the_single_process_batches():
    """Two ranks' batches, joined, are the one-process loader's batches: same images, same
    augmentation (the draws are made for the whole global batch, then sliced)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels, indices = torch.arange(40) % 10, torch.arange(40) + 1000
    stats = ChannelStats((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 40)

    def batches(part):
        loader = DeviceLoader(images, labels, indices, 8, stats=stats, train=True, seed=3, part=part)
        return list(loader.epoch(2, start_batch=1))

    whole, first, second = batches((0, 1)), batches((0, 2)), batches((1, 2))
    assert len(whole) == len(first) == len(second) == 4
    for (i, x, y), (i0, x0, y0), (i1, x1, y1) in zip(whole, first, second, strict=True):
        assert len(i0) == len(i1) == 4
        assert torch.equal(i, torch.cat([i0, i1])) and torch.equal(y, torch.cat([y0, y1]))
        assert torch.equal(x, torch.cat([x0, x1]))
    with pytest.raises(ValueError, match="cannot be split"):
        DeviceLoader(images, labels, indices, 9, stats=stats, train=True, part=(0, 2))
