"""CIFAR-10 and CIFAR-100 files: read the official python versions, split them, and their
channel statistics.

The folder that holds ``cifar-10-batches-py/`` or ``cifar-100-python/`` (the official
"python version" layouts) is read with pickle + numpy, which is faster than going through
PIL and works on re-packed copies whose md5s differ from the official files; the files are
unpickled by :mod:`resnet_core.safe_unpickle`, so a crafted file is refused before it can
run anything. Both datasets go through one path, told apart by a small :class:`Dataset`
spec (folder, files, label keys, archive); :mod:`resnet_core.cifar_download` fills an empty
folder from the official archive, md5-verified. No torch here: the dashboard's pages import this module (torch
takes 1.3 s to import); batches on the device are :mod:`resnet_core.data`'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .safe_unpickle import UnpickleRefused, load_cifar_pickle

BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
DATA_DIR_ENV = "RESNET_STUDIO_DATA"
IMAGE_SIZE = 32  # CIFAR-10's and CIFAR-100's images are 32x32
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# progress(done, in all; 0 if unknown): bytes of a download here; images whose features or
# near-duplicates are done, or t-SNE iterations, where embeddings, duplicates and projections report.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Dataset:
    """What one dataset's official python version holds and where it comes from."""

    name: str  # as --dataset gives it
    title: str
    folder: str  # the archive's top folder, in the data folder
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    layout: str  # the files, in words, for the message that says they are missing
    label_key: str  # the (fine) labels in a batch file
    names_key: str  # their names in the meta file
    num_classes: int
    archive: str
    md5: str
    archive_mb: int  # its size, MiB (for the download button)
    coarse_key: str = ""  # the superclass labels in a batch file, where there are superclasses
    coarse_names_key: str = ""
    num_superclasses: int = 0
    default_classes: tuple[str, ...] = ()  # the names where the meta file lacks them ((): it must hold them)

    @property
    def url(self) -> str:
        return f"https://www.cs.toronto.edu/~kriz/{self.archive}"

    @property
    def required_files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, *(() if self.default_classes else (self.meta_file,)))


CIFAR10 = Dataset("cifar10", "CIFAR-10", BATCH_FOLDER, TRAIN_BATCHES, TEST_BATCH, "batches.meta",
                  "data_batch_1..5 and test_batch", "labels", "label_names", 10,
                  "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", 163, default_classes=CLASSES)
CIFAR100 = Dataset("cifar100", "CIFAR-100", "cifar-100-python", ("train",), "test", "meta",
                   "train, test and meta", "fine_labels", "fine_label_names", 100,
                   "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", 161,
                   coarse_key="coarse_labels", coarse_names_key="coarse_label_names", num_superclasses=20)
SPECS = {spec.name: spec for spec in (CIFAR10, CIFAR100)}
DATASETS = tuple(SPECS)
SUBSET_STREAM = 2  # training_split's subset of class-ordered data: its seed is (split_seed, this)
IMAGE_FOLDER = "folder"  # the user's own images, ROOT/train/<class>/* (resnet_core.folder_dataset)
DATASET_CHOICES = (*DATASETS, IMAGE_FOLDER)


class DataError(Exception):
    """The data folder is missing, incomplete or holds something that is not the dataset asked for."""


class RefusedPickle(DataError):
    """A data file whose pickle references something CIFAR data never holds."""


def dataset_spec(dataset: str) -> Dataset:
    try:
        return SPECS[dataset]
    except (KeyError, TypeError):
        raise DataError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}") from None


def dataset_title(dataset: str) -> str:
    """"CIFAR-10", "CIFAR-100", "image folder"; a name no spec knows as it is (a record of a newer version)."""
    if dataset == IMAGE_FOLDER:
        return "image folder"
    return SPECS[dataset].title if dataset in SPECS else str(dataset)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $RESNET_STUDIO_DATA, else ./data."""
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or "data").expanduser()


def dataset_present(dataset: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether data_dir holds the dataset's files: for an image folder, whether it is one
    (a train/ folder; no default folder); False for a dataset no spec knows."""
    if dataset == IMAGE_FOLDER:
        return bool(data_dir) and (Path(data_dir).expanduser() / "train").is_dir()
    spec = SPECS.get(dataset)
    if spec is None:
        return False
    folder = resolve_data_dir(data_dir) / spec.folder
    return all((folder / name).is_file() for name in spec.required_files)


def datasets_present(data_dir: str | os.PathLike | None = None) -> list[str]:
    """The datasets whose files the data folder holds, in DATASETS order."""
    return [name for name in DATASETS if dataset_present(name, data_dir)]


def run_data_folder(resolved: dict, dataset: str) -> str | None:
    """The data folder a run read (config.json's resolved.data_dir) while it still holds the
    run's dataset, else None: where the run's images are taken from after it."""
    recorded = resolved.get("data_dir") if isinstance(resolved, dict) else None
    return recorded if isinstance(recorded, str) and recorded and dataset_present(dataset, recorded) else None


def missing_data_message(dataset: str, data_dir: Path, reason: str) -> str:
    spec = dataset_spec(dataset)
    return (
        f"{spec.title} not found in {data_dir.resolve()} ({reason}). Expected the official python "
        f"layout: {data_dir / spec.folder}/{spec.layout}. Extract the official archive {spec.archive} "
        f"into {data_dir}, or point --data-dir / ${DATA_DIR_ENV} at a folder that holds {spec.folder}/."
    )


def _unpickle(path: Path, spec: Dataset) -> dict:
    """The dict with str keys in a CIFAR python file; DataError, one line naming the file,
    for one that is refused, damaged or holds something else (FileNotFoundError passes)."""
    try:
        found = load_cifar_pickle(path)
    except UnpickleRefused as e:
        raise RefusedPickle(f"{path}: {e}") from None
    except FileNotFoundError:
        raise
    except Exception as e:  # truncated or foreign files raise anything from EOFError to ValueError
        detail = " ".join(str(e).split())[:300]  # one line: some of pickle's messages span two
        raise DataError(f"{path} is not a readable {spec.title} batch ({type(e).__name__}: {detail})") from e
    if not isinstance(found, dict):
        raise DataError(f"{path} is not a {spec.title} batch: it holds a {type(found).__name__}, not a dict")
    return {_text(k) if isinstance(k, bytes) else k: v for k, v in found.items()}


def _text(raw: bytes) -> str:
    """Python 2's str as the official files hold it: UTF-8 (ASCII in practice), else latin-1,
    which decodes any bytes, so an odd name reads as some text rather than crashing the reader."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _labels(path: Path, batch: dict, key: str, count: int, images: int) -> np.ndarray:
    """A batch's labels under key: (images,) int64 in 0..count-1, or DataError naming the file."""
    try:
        raw = np.asarray(batch[key])
        labels = raw.astype(np.int64)
    except (TypeError, ValueError, OverflowError) as e:  # labels such as ["x"] or 2**70
        raise DataError(f"{path}: '{key}' is not an array of numbers ({type(e).__name__}: {e})") from e
    if raw.dtype.kind not in "iu" and not (labels == raw).all():  # 1.5 would be truncated to class 1
        raise DataError(f"{path}: '{key}' holds numbers that are not whole ({raw.dtype})")
    if labels.shape != (images,):
        raise DataError(f"{path}: {labels.size} {key} for {images} images")
    if labels.size and (labels.min() < 0 or labels.max() >= count):
        raise DataError(f"{path}: {key} outside 0..{count - 1}")
    return labels


def _read_batch(path: Path, spec: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Images (N, 3, 32, 32) uint8, labels (N,) int64 and, with superclasses, their
    superclass labels (N,) int64 (else None) of one pickled batch file."""
    batch = _unpickle(path, spec)
    keys = ("data", spec.label_key, *((spec.coarse_key,) if spec.coarse_key else ()))
    if any(k not in batch for k in keys):
        raise DataError(f"{path} is not a {spec.title} batch: keys {sorted(map(str, batch))} lack "
                        f"{' and '.join(repr(k) for k in keys if k not in batch)}")
    try:
        data = np.asarray(batch["data"])
    except (TypeError, ValueError) as e:
        raise DataError(f"{path}: 'data' is not an array ({type(e).__name__}: {e})") from e
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    labels = _labels(path, batch, spec.label_key, spec.num_classes, len(data))
    coarse = _labels(path, batch, spec.coarse_key, spec.num_superclasses, len(data)) if spec.coarse_key else None
    return data.reshape(-1, 3, 32, 32), labels, coarse


def _names(meta: dict, key: str) -> tuple[str, ...]:
    names = meta.get(key)
    if isinstance(names, np.ndarray) and names.ndim == 1:  # a re-packed meta file
        names = names.tolist()
    if not isinstance(names, (list, tuple)):
        return ()
    return tuple(_text(n) if isinstance(n, bytes) else str(n) for n in names)


def _read_names(folder: Path, spec: Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The class and superclass names of the meta file. CIFAR-10's only adds names (the
    official ones are the fallback); CIFAR-100's must hold 100 and 20, else DataError."""
    path = folder / spec.meta_file
    try:
        meta = _unpickle(path, spec)
    except RefusedPickle:  # one that references anything but CIFAR data is refused, never passed over
        raise
    except (DataError, OSError):
        if spec.default_classes:
            return spec.default_classes, ()
        raise
    classes, superclasses = _names(meta, spec.names_key), _names(meta, spec.coarse_names_key)
    if len(classes) != spec.num_classes and spec.default_classes:
        return spec.default_classes, ()
    if len(classes) != spec.num_classes or len(superclasses) != spec.num_superclasses:
        raise DataError(f"{path}: {len(classes)} {spec.names_key} and {len(superclasses)} "
                        f"{spec.coarse_names_key}, expected {spec.num_classes} and {spec.num_superclasses}")
    return classes, superclasses


def _superclass_grouping(folder: Path, labels: np.ndarray, coarse: np.ndarray, num_classes: int,
                         num_superclasses: int) -> tuple[int, ...]:
    """Each class's superclass, from every image's (label, superclass label); DataError where
    a class's images carry two superclasses, or a class has no image to say."""
    pairs = np.unique(labels * num_superclasses + coarse)
    fine, superclass = pairs // num_superclasses, pairs % num_superclasses
    counts = np.bincount(fine, minlength=num_classes)
    if (counts > 1).any():
        c = int(np.argmax(counts > 1))
        raise DataError(f"{folder}: the images of class {c} carry superclass labels "
                        f"{', '.join(map(str, superclass[fine == c]))}; a class belongs to one superclass")
    if (counts == 0).any():
        raise DataError(f"{folder}: no image of class {int(np.argmin(counts))}, so its superclass is unknown")
    return tuple(int(s) for s in superclass)


@dataclass
class CifarData:
    train_images: np.ndarray  # (50000, 3, 32, 32) uint8
    train_labels: np.ndarray  # (50000,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    dataset: str = "cifar10"
    superclasses: tuple[str, ...] = ()  # CIFAR-100's 20 coarse names; () for CIFAR-10
    superclass_of: tuple[int, ...] = ()  # each class's superclass index, in label order
    # An image folder's (resnet_core.folder_dataset): each image's path relative to the root,
    # in array order, and what its config.json record says of the folder (root, test_source...).
    train_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    source: dict = field(default_factory=dict)


def load_cifar(dataset: str, data_dir: str | os.PathLike | None = None) -> CifarData:
    """Read the dataset ("cifar10", "cifar100") from data_dir (:mod:`resnet_core.cifar_download`
    fetches it where it is missing)."""
    spec = dataset_spec(dataset)
    data_dir = resolve_data_dir(data_dir)
    if not dataset_present(dataset, data_dir):
        raise DataError(missing_data_message(dataset, data_dir, "no batch files"))
    folder = data_dir / spec.folder
    train = [_read_batch(folder / name, spec) for name in spec.train_files]
    test_images, test_labels, test_coarse = _read_batch(folder / spec.test_file, spec)
    classes, superclasses = _read_names(folder, spec)
    data = CifarData(train_images=np.concatenate([b[0] for b in train]),
                     train_labels=np.concatenate([b[1] for b in train]),
                     test_images=test_images, test_labels=test_labels, classes=classes, dataset=dataset,
                     superclasses=superclasses)
    if spec.coarse_key:
        labels = np.concatenate([data.train_labels, test_labels])
        coarse = np.concatenate([*(b[2] for b in train), test_coarse])
        data.superclass_of = _superclass_grouping(folder, labels, coarse, spec.num_classes, spec.num_superclasses)
    return data


def split_train_val(num_train: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train indices, validation indices) into a training set of num_train.

    Both are sorted, so a subset of the training split keeps the data's own order.
    """
    if not 0 <= val_size < num_train:
        raise ValueError(f"validation size {val_size} must lie in 0..{num_train - 1}")
    perm = np.random.default_rng(seed).permutation(num_train)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def training_split(num_train: int, val_size: int, split_seed: int, subset: int = 0,
                   class_ordered: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The (train indices, validation indices) a run uses: split_train_val, then --subset's
    first N of the training split, as CIFAR's files hold their images in a shuffled order.
    Data held class by class (an image folder's, class_ordered) would give a subset of the
    first classes only, so there the N are chosen by the split seed (sorted)."""
    train_idx, val_idx = split_train_val(num_train, val_size, split_seed)
    if subset and class_ordered:
        rng = np.random.default_rng((split_seed, SUBSET_STREAM))
        return np.sort(rng.permutation(train_idx)[:subset]), val_idx
    return (train_idx[:subset] if subset else train_idx), val_idx


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
