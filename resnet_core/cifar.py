"""CIFAR-10 files: read the official python batches, split them, and their channel statistics.

The folder that holds ``cifar-10-batches-py/`` (the official "python version" layout) is
read with pickle + numpy, which is faster than going through PIL and works on re-packed
copies whose md5s differ from the official files; the unpickler resolves only what those
files hold (dicts, lists, bytes, str, numbers, NumPy arrays and dtypes), so a crafted file
is refused before it can run anything. An empty folder can be filled from the official
archive, md5-verified. No torch here: the dashboard's pages import this module (torch
takes 1.3 s to import); batches on the device are :mod:`resnet_core.data`'s.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np

from .outputs import OutputRefused, check_output_path, replacing
from .runs.files import file_kind

DATASETS = ("cifar10", "cifar100")
BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
DATA_DIR_ENV = "RESNET_STUDIO_DATA"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# progress(done, in all; 0 if unknown): bytes of a download here; images whose features or
# near-duplicates are done, or t-SNE iterations, where embeddings, duplicates and projections report.
ProgressCallback = Callable[[int, int], None]


class DataError(Exception):
    """The data folder is missing, incomplete or holds something that is not CIFAR-10."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $RESNET_STUDIO_DATA, else ./data."""
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or "data").expanduser()


def dataset_present(data_dir: str | os.PathLike | None = None) -> bool:
    folder = resolve_data_dir(data_dir) / BATCH_FOLDER
    return all((folder / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH))


def run_data_folder(resolved: dict) -> str | None:
    """The data folder a run read (config.json's resolved.data_dir) while it still holds
    CIFAR-10, else None: where the run's images are taken from after it."""
    recorded = resolved.get("data_dir") if isinstance(resolved, dict) else None
    return recorded if isinstance(recorded, str) and recorded and dataset_present(recorded) else None


def missing_data_message(data_dir: Path, reason: str) -> str:
    return (
        f"CIFAR-10 not found in {data_dir.resolve()} ({reason}). Expected the official python "
        f"layout: {data_dir / BATCH_FOLDER}/data_batch_1..5 and test_batch. Extract the official "
        f"archive {ARCHIVE_NAME} into {data_dir}, or point --data-dir / ${DATA_DIR_ENV} at a "
        f"folder that holds {BATCH_FOLDER}/."
    )


def download_cifar10(data_dir: str | os.PathLike | None = None, progress: ProgressCallback | None = None,
                     url: str = ARCHIVE_URL, md5: str = ARCHIVE_MD5) -> Path:
    """Download, md5-check and extract the official archive into data_dir.

    Reports (bytes done, bytes total) to progress as it goes. Nothing half-written is left
    behind: the archive is downloaded to a temp name and only extracted once verified. Every
    file, the archive's and the extracted ones, is written as :mod:`resnet_core.outputs`
    says: a symbolic link, FIFO or device at its name is refused, never written through.
    """
    data_dir = resolve_data_dir(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file, FIFO or device at the name or on the way to it, no right to make it
        if data_dir.exists():
            raise DataError(f"the data folder {data_dir} is {file_kind(os.stat(data_dir).st_mode)}, not a folder: "
                            "give a folder for --data-dir") from None
        raise DataError(f"the data folder {data_dir} cannot be made ({e.strerror or e})") from None
    archive = data_dir / ARCHIVE_NAME
    try:
        if _md5(check_output_path(archive, "the CIFAR-10 archive")) != md5:
            with replacing(archive, "the CIFAR-10 archive") as partial:
                _download(url, partial, progress, data_dir)
                if _md5(partial) != md5:
                    raise DataError(f"the download of {url} is corrupt (md5 differs from {md5}); try again")
        _extract(archive, data_dir)
    except OutputRefused as e:
        raise DataError(str(e)) from None
    if not dataset_present(data_dir):
        raise DataError(missing_data_message(data_dir, f"{archive.name} did not contain {BATCH_FOLDER}/"))
    return data_dir


def _md5(path: Path) -> str | None:
    """The md5 of a regular file's bytes; None when it is missing."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _download(url: str, path: Path, progress: ProgressCallback | None, data_dir: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(path, "xb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as e:
        raise DataError(missing_data_message(data_dir, f"download from {url} failed: {e}")) from e


def _extract(archive: Path, data_dir: Path) -> None:
    """The archive's BATCH_FOLDER into data_dir: its folders made, its regular files each
    written through outputs.replacing (so never through a link planted at its name), any
    other member, or one outside BATCH_FOLDER, skipped."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not parts or parts[0] != BATCH_FOLDER or ".." in parts:
                    continue
                target = data_dir.joinpath(*parts)
                if member.isdir():
                    if target.is_symlink():  # its files would land wherever the link points
                        raise OutputRefused(f"{target} is a symbolic link, not a folder: nothing written there")
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    with replacing(target, "CIFAR-10 file") as tmp, tar.extractfile(member) as src, \
                            open(tmp, "xb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"could not extract {archive}: {e}") from e


class _Refused(pickle.UnpicklingError):
    """A pickle that references something CIFAR data never holds (a function to run, a codec
    other than latin1): _unpickle makes it a DataError, which no reader passes over."""


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3's protocol 0-2 pickles rebuild bytes with (``_codecs.encode(text,
    "latin1")``); any other codec is no CIFAR data, refused as find_class refuses."""
    if encoding not in ("latin1", "latin-1"):
        raise _Refused(f"refusing to unpickle _codecs.encode with {encoding!r} (not CIFAR data)")
    return text.encode("latin1")


# Everything but plain values (dict, list, bytes, str, numbers) that the official python files
# and re-packed copies (any protocol, NumPy 1 or 2 names) reference: arrays, their dtypes and
# NumPy scalars. Found by pickling such batches (numpy.core.* in the official Python 2 files).
_CIFAR_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *((f"{numpy}.multiarray", name) for numpy in ("numpy.core", "numpy._core") for name in ("_reconstruct", "scalar")),
    *((f"{numpy}.numeric", "_frombuffer") for numpy in ("numpy.core", "numpy._core")),  # protocol 5
}


class _CifarUnpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves only _CIFAR_GLOBALS: unpickling can then build dicts,
    lists, strings, numbers and NumPy arrays, never call anything else (os.system...)."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        if (module, name) not in _CIFAR_GLOBALS:
            raise _Refused(f"refusing to unpickle {module}.{name} (not CIFAR data)")
        return super().find_class(module, name)


def _unpickle(path: Path):
    """The object in a CIFAR python file, unpickled with _CifarUnpickler (Python 2's str as
    bytes); DataError, one line naming the file, for a pickle that references anything else."""
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="bytes").load()
    except _Refused as e:
        raise DataError(f"{path}: {e}") from None


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one pickled batch file."""
    try:
        batch = _unpickle(path)
    except (FileNotFoundError, DataError):
        raise
    except Exception as e:  # truncated or foreign files raise anything from EOFError to ValueError
        detail = " ".join(str(e).split())[:300]  # one line: some of pickle's messages span two
        raise DataError(f"{path} is not a readable CIFAR-10 batch ({type(e).__name__}: {detail})") from e
    if not isinstance(batch, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch: it holds a {type(batch).__name__}, not a dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{path} is not a CIFAR-10 batch: keys {sorted(batch)} lack 'data' and 'labels'")
    try:
        data = np.asarray(batch["data"])
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as e:  # labels such as ["x"] or 2**70
        raise DataError(f"{path}: 'data' or 'labels' is not an array of numbers ({type(e).__name__}: {e})") from e
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {labels.size} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError(f"{path}: labels outside 0..{len(CLASSES) - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def _read_classes(folder: Path) -> tuple[str, ...]:
    try:
        meta = _unpickle(folder / META_FILE)
        names = meta.get(b"label_names") or meta.get("label_names")
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
        return names if len(names) == len(CLASSES) else CLASSES
    except DataError:  # a pickle referencing anything but CIFAR data is refused, not passed over
        raise
    except Exception:  # the meta file only adds names; the official ones are the fallback
        return CLASSES


@dataclass
class Cifar10:
    train_images: np.ndarray  # (50000, 3, 32, 32) uint8
    train_labels: np.ndarray  # (50000,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]


def load_cifar10(data_dir: str | os.PathLike | None = None, download: bool = False,
                 progress: ProgressCallback | None = None) -> Cifar10:
    """Read CIFAR-10 from data_dir; with download=True fetch it first where it is missing."""
    data_dir = resolve_data_dir(data_dir)
    if not dataset_present(data_dir):
        if not download:
            raise DataError(missing_data_message(data_dir, "no batch files"))
        download_cifar10(data_dir, progress)
    folder = data_dir / BATCH_FOLDER
    train = [_read_batch(folder / name) for name in TRAIN_BATCHES]
    test_images, test_labels = _read_batch(folder / TEST_BATCH)
    return Cifar10(
        train_images=np.concatenate([b[0] for b in train]),
        train_labels=np.concatenate([b[1] for b in train]),
        test_images=test_images,
        test_labels=test_labels,
        classes=_read_classes(folder),
    )


def split_train_val(num_train: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train indices, validation indices) into a training set of num_train.

    Both are sorted, so a subset of the training split keeps the data's own order.
    """
    if not 0 <= val_size < num_train:
        raise ValueError(f"validation size {val_size} must lie in 0..{num_train - 1}")
    perm = np.random.default_rng(seed).permutation(num_train)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and standard deviation of a set of images, as fractions of 255."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    images: int  # how many images they were computed from

    def as_record(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "images": self.images}


def channel_stats(images: np.ndarray, chunk: int = 5000) -> ChannelStats:
    """Exact (float64) per-channel mean and population std of (N, 3, H, W) uint8 images.

    The trainer normalises by the statistics of the training split it actually uses, so
    no validation or test pixel leaks into its inputs. On all 50,000 CIFAR-10 training
    images they are the published (0.4914, 0.4822, 0.4465) / (0.2470, 0.2435, 0.2616).
    """
    n = len(images)
    if n == 0:
        raise ValueError("no images to compute channel statistics from")
    total = np.zeros(3)
    squares = np.zeros(3)
    for start in range(0, n, chunk):  # chunks keep the float64 copy small (50k images: 1.2 GB at once)
        part = images[start:start + chunk].astype(np.float64)
        total += part.sum(axis=(0, 2, 3))
        squares += np.square(part).sum(axis=(0, 2, 3))
    pixels = n * images.shape[2] * images.shape[3]
    mean = total / pixels
    std = np.sqrt(np.maximum(squares / pixels - mean ** 2, 0.0))
    return ChannelStats(tuple(float(m / 255) for m in mean), tuple(float(s / 255) for s in std), n)
