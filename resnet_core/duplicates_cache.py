"""The near-duplicates of a data folder (resnet_core.duplicates), computed once and kept.

They depend only on the dataset's files, so they are kept in the runs folder's cache area
(``<runs-dir>/.cache/``, see resnet_core.runs.folder_format), named by a hash of the data
folder's path, its batch files' sizes and modification times and METHOD (an image
folder's: its decoded images' key, every file's path, size and modification time, and the
settings that split it): a rewritten file or a new method makes a new name. Reading never
raises: a missing, damaged or foreign file is computed again (10k x 50k test-against-training
images took 9-24 s on this 2-core CPU, the data's loading included), and a cache that
cannot be written only costs the next call that time again.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .cifar import IMAGE_FOLDER, CifarData, ProgressCallback, dataset_spec, load_cifar, resolve_data_dir
from .folder_dataset import load_folder_dataset
from .folder_scan import scan_image_folder
from .image_folder import cache_folder, content_key
from .duplicates import Duplicates, Nearest, THRESHOLD, nearest_training_images
from .outputs import replacing
from .runs import cache_dir

METHOD = "pixels-8x8-shift1-mad-v1"  # change it with anything that changes what is computed


def cache_path(dataset: str, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
               settings: Mapping[str, Any] | None = None) -> Path:
    """Where the nearest training images of the test images of this data folder's dataset are
    kept (settings: an image folder's, folder_dataset.SPLIT_SETTINGS)."""
    folder = resolve_data_dir(data_dir).resolve()
    parts = [METHOD, str(folder)]  # the files' names tell the datasets apart (CIFAR-10's key as before)
    if dataset == IMAGE_FOLDER:
        settings = dict(settings or {})
        parts += [content_key(scan_image_folder(folder), settings["image_size"], settings["resize"]),
                  *(f"{k}:{settings[k]}" for k in ("test_size", "split_seed", "bad_images"))]
    else:
        spec = dataset_spec(dataset)
        for name in (*spec.train_files, spec.test_file):
            try:
                s = os.stat(folder / spec.folder / name)
                parts.append(f"{name}:{s.st_size}:{s.st_mtime_ns}")
            except OSError:
                parts.append(f"{name}:missing")
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
    return cache_dir(Path(runs_dir)) / f"duplicates-{key}.npz"


def _read(path: Path) -> Nearest | None:
    try:
        with open(path, "rb") as f:
            raw = f.read(1 << 22)  # 10,000 test images take 120 KB; a larger file is not ours
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            index, distance = z["train_indices"], z["distance"]
    except Exception:  # missing, damaged, foreign: computed again
        return None
    if index.ndim != 1 or index.shape != distance.shape or index.dtype.kind not in "iu" or distance.dtype.kind != "f":
        return None
    return Nearest(index.astype(np.int64), distance.astype(np.float32))


def _write(path: Path, nearest: Nearest) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, "the near-duplicates cache") as tmp, open(tmp, "wb") as f:
            np.savez(f, train_indices=nearest.train_indices, distance=nearest.distance)
    except Exception:  # a read-only runs folder: the next call computes them again
        pass


def cached_nearest(dataset: str, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
                   progress: ProgressCallback | None = None, data: CifarData | None = None,
                   settings: Mapping[str, Any] | None = None) -> Nearest:
    """Every test image's nearest training image of the dataset in data_dir, from the cache or
    computed (and kept); data: the folder's images when the caller has them loaded already;
    settings: an image folder's (folder_dataset.folder_settings). Raises
    resnet_core.cifar.DataError only where there is no such dataset to compute them from."""
    path = cache_path(dataset, data_dir, runs_dir, settings)
    found = _read(path)
    if found is None or (data is not None and len(found.distance) != len(data.test_images)):
        if data is None:
            data = (load_folder_dataset(data_dir, cache_dir=cache_folder(runs_dir), **dict(settings or {}))
                    if dataset == IMAGE_FOLDER else load_cifar(dataset, data_dir))
        found = nearest_training_images(data.test_images, data.train_images, progress)
        _write(path, found)
    return found


def cached_duplicates(dataset: str, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
                      progress: ProgressCallback | None = None, threshold: float = THRESHOLD,
                      settings: Mapping[str, Any] | None = None) -> Duplicates:
    """The dataset's test images in data_dir with a near-duplicate in its training set, most
    similar first (``len()`` is their count), computed once per data folder and dataset and kept in runs_dir."""
    return cached_nearest(dataset, data_dir, runs_dir, progress, settings=settings).duplicates(threshold)
