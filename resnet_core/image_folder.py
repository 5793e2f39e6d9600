"""An image folder (resnet_core.folder_scan's layout) decoded into CIFAR-like uint8 arrays.

Every image goes through the one decoder, :func:`resnet_core.images.decode_image_file`
(EXIF orientation, transparency onto white, grey to RGB, decompression-bomb limits), to
(3, image_size, image_size) by the resize rule, into one preallocated array, by a pool of
threads that each decode CHUNK images into their rows. Measured by tests/folder_timings.py
on this 2-core machine while other work kept its load average at 3.5-4 (so the numbers
are rough), images/s to 32x32, one thread:

    images                 PIL (this module)   torchvision.io
    32x32 PNG              7,400               9,600-11,000
    256x256 JPEG q90       1,500               2,000-2,200
    1024x1024 JPEG q90     370-700             255-300

PIL is kept: torchvision.io is 1.3-1.5x faster on small images but 2x slower on photos
(PIL's JPEG draft decodes a large photo at 1/2-1/8 scale), the decoding is done once per
folder and size (cached), and one decoder keeps one set of limits (decompression bombs)
and one conversion for uploads, Predict and folders alike. Threads rather than processes:
neither a second thread nor a second process gained reliably on the loaded machine (2
threads 7,400 and 1,000-1,450 images/s against 2 processes 6,300-8,500 and 1,000-2,400 on
the PNGs and 256 px JPEGs), and threads write into the shared array without pickling the
pixels back or starting interpreters in the trainer's or the dashboard's process.
CIFAR-10 exported to 60,000 PNGs decoded in 10.4-12.9 s (4,600-5,800 images/s).

An image that cannot be decoded (damaged, truncated, not what its name says) refuses the
folder in one line naming up to five of them and their count, or, with bad_images="skip",
is left out and listed in ``skipped``.

The arrays are kept in a cache folder (``<runs-dir>/.cache/folders/``, :func:`cache_folder`),
one .npz per (root, image_size, resize), replaced when anything changes, so the folder
holds one file per folder and size however often the images change. Inside it is the key
it was made from: a digest of the size, the rule and every image's relative path, size and
modification time; a file added, removed or rewritten changes it and the images are
decoded again. A cache that is missing, damaged or foreign reads as absent; one that
cannot be written only costs the next load the decoding again. CIFAR-10's 60,000 images
make a 184 MB file (uint8, uncompressed), loaded with the folder's scan in 1.1-1.6 s.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cifar import DataError, ProgressCallback
from .folder_scan import FolderScan, scan_image_folder
from .images import RESIZE_RULES, ImageRefused, decode_image_file
from .outputs import replacing
from .runs import cache_dir as runs_cache_dir
from .system import usable_cores

BAD_IMAGES = ("refuse", "skip")
CACHE_VERSION = "folder-v2"  # change it with anything that changes the decoded pixels (v2: 16-bit grey PNGs)
CHUNK = 256  # images a worker decodes per task: progress is reported this often
SHOWN_BAD = 5


@dataclass
class FolderData:
    train_images: np.ndarray  # (N, 3, S, S) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray | None  # None where the folder has no test/
    test_labels: np.ndarray | None
    classes: tuple[str, ...]
    train_files: tuple[str, ...]  # relative POSIX paths, in array order
    test_files: tuple[str, ...] | None
    skipped: tuple[str, ...]  # relative paths of images left out as unreadable (bad_images="skip")
    ignored: int  # files that are not images
    from_cache: bool
    problems: tuple[str, ...] = ()  # folder_scan's warnings


def cache_folder(runs_dir: str | os.PathLike) -> Path:
    """<runs-dir>/.cache/folders/: the decoded image folders."""
    return runs_cache_dir(Path(runs_dir)) / "folders"


def cache_path(cache: str | os.PathLike, root: Path, image_size: int, resize: str) -> Path:
    name = hashlib.sha256(f"{root}\n{image_size}\n{resize}".encode()).hexdigest()[:20]
    return Path(cache) / f"folder-{name}.npz"


def content_key(scan: FolderScan, image_size: int, resize: str) -> str:
    """A digest of what the decoded arrays depend on: the rule, and every image's path, size and mtime."""
    h = hashlib.sha256(f"{CACHE_VERSION}\n{image_size}\n{resize}\n".encode())
    for split in (scan.train, scan.test):
        if split is not None:
            h.update("\n".join(f"{p}\t{s}\t{m}" for p, s, m in
                               zip(split.files, split.sizes.tolist(), split.mtimes.tolist(), strict=True)).encode())
            h.update(b"\n--\n")
    return h.hexdigest()


def _files(scan: FolderScan) -> tuple[str, ...]:
    return scan.train.files + (scan.test.files if scan.test is not None else ())


def decode_files(root: Path, files: tuple[str, ...], image_size: int, resize: str,
                 progress: ProgressCallback | None = None, workers: int | None = None
                 ) -> tuple[np.ndarray, dict[int, str]]:
    """(images (len(files), 3, S, S) uint8, {index: one-line reason} of those that failed,
    whose rows are left zero), decoded by `workers` threads (default: the CPUs this process may use)."""
    images = np.zeros((len(files), 3, image_size, image_size), np.uint8)
    workers = workers or usable_cores()

    def decode(start: int) -> dict[int, str]:
        failed = {}
        for i in range(start, min(start + CHUNK, len(files))):
            try:
                images[i] = decode_image_file(root / files[i], image_size, resize)
            except ImageRefused as e:
                failed[i] = str(e)
        return failed

    failed: dict[int, str] = {}
    with ThreadPoolExecutor(workers) as pool:
        tasks = {pool.submit(decode, start): start for start in range(0, len(files), CHUNK)}
        done = 0
        try:
            for task in as_completed(tasks):
                failed.update(task.result())
                done += min(CHUNK, len(files) - tasks[task])
                if progress is not None:
                    progress(done, len(files))
        except BaseException:  # a stop (progress raising, Ctrl-C) waits for the running chunks only
            pool.shutdown(cancel_futures=True)
            raise
    return images, failed


def _refusal(root: Path, reasons: list[str]) -> DataError:
    shown = "; ".join(reasons[:SHOWN_BAD])
    more = f" and {len(reasons) - SHOWN_BAD} more" if len(reasons) > SHOWN_BAD else ""
    return DataError(f"{len(reasons)} unreadable image{'s' if len(reasons) > 1 else ''} in {root}: {shown}{more}; "
                     "fix or remove them, or leave them out with --bad-images skip")


def _read_cache(path: Path, key: str, n_files: int, image_size: int) -> tuple[np.ndarray, np.ndarray, list] | None:
    """(images, kept (n_files,) bool, reasons of the others) from a cache file made from key, else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            kept, reasons, images = z["kept"], z["reasons"].tolist(), z["images"]
    except Exception:  # missing, damaged, foreign: decoded again
        return None
    if (kept.dtype != np.bool_ or kept.shape != (n_files,) or images.dtype != np.uint8
            or images.shape != (int(kept.sum()), 3, image_size, image_size) or len(reasons) != n_files - kept.sum()):
        return None
    return images, kept, reasons


def _write_cache(path: Path, key: str, images: np.ndarray, kept: np.ndarray, reasons: list[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, "the image folder cache") as tmp, open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), kept=kept, reasons=np.array(reasons, dtype=str), images=images)
    except Exception:  # a read-only runs folder: the next load decodes again
        pass


def _decoded(scan: FolderScan, image_size: int, resize: str, cache: str | os.PathLike | None,
             progress: ProgressCallback | None, workers: int | None) -> tuple[np.ndarray, np.ndarray, list, bool]:
    """(images of the kept files, kept mask over all files, reasons of the others, from cache)."""
    files = _files(scan)
    key = content_key(scan, image_size, resize)
    path = cache_path(cache, scan.root, image_size, resize) if cache is not None else None
    found = _read_cache(path, key, len(files), image_size) if path is not None else None
    if found is not None:
        return (*found, True)
    images, failed = decode_files(scan.root, files, image_size, resize, progress, workers)
    kept = np.ones(len(files), bool)
    kept[list(failed)] = False
    if failed:
        images = images[kept]
    reasons = [failed[i] for i in sorted(failed)]
    if path is not None:
        _write_cache(path, key, images, kept, reasons)
    return images, kept, reasons, False


def _skipped_classes(scan: FolderScan, train_labels: np.ndarray) -> tuple[str, ...]:
    """A problem line for the classes whose every training image was skipped; DataError where all were."""
    if len(train_labels) == 0:
        raise DataError(f"none of the {len(scan.train):,} images in {scan.root / 'train'} could be read")
    lost = [c for c, n in zip(scan.classes, np.bincount(train_labels, minlength=len(scan.classes)), strict=True)
            if n == 0]
    return (f"no readable training image of {len(lost)} class{'es' if len(lost) > 1 else ''}: "
            f"{', '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}",) if lost else ()


def load_image_folder(root: str | os.PathLike, image_size: int = 32, resize: str = "crop",
                      cache_dir: str | os.PathLike | None = None, bad_images: str = "refuse",
                      progress: ProgressCallback | None = None, workers: int | None = None,
                      scan: FolderScan | None = None) -> FolderData:
    """The image folder at root decoded (module docstring); from cache_dir's copy when the
    files are unchanged. DataError, one line, for a folder that cannot be used. scan: root's,
    where the caller has scanned it already (to judge its size before decoding)."""
    if resize not in RESIZE_RULES:
        raise DataError(f"unknown resize rule {resize!r}: choose one of {', '.join(RESIZE_RULES)}")
    if bad_images not in BAD_IMAGES:
        raise DataError(f"unknown bad-images choice {bad_images!r}: choose one of {', '.join(BAD_IMAGES)}")
    scan = scan or scan_image_folder(root)
    images, kept, reasons, from_cache = _decoded(scan, image_size, resize, cache_dir, progress, workers)
    files = np.array(_files(scan), dtype=object)
    if reasons and bad_images == "refuse":
        raise _refusal(scan.root, reasons)
    labels = np.concatenate([scan.train.labels, *([scan.test.labels] if scan.test is not None else [])])
    n_train = int(kept[:len(scan.train)].sum())
    problems = scan.problems + _skipped_classes(scan, labels[kept][:n_train])
    test = scan.test is not None
    return FolderData(
        train_images=images[:n_train], train_labels=labels[kept][:n_train],
        test_images=images[n_train:] if test else None, test_labels=labels[kept][n_train:] if test else None,
        classes=scan.classes, train_files=tuple(files[kept][:n_train]),
        test_files=tuple(files[kept][n_train:]) if test else None,
        skipped=tuple(files[~kept]), ignored=scan.ignored, from_cache=from_cache, problems=problems)
