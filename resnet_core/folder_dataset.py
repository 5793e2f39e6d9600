"""The user's image folder as a run's dataset, in the arrays CIFAR is read into.

``ROOT/train/<class>/*`` is the training set; ``ROOT/test/<class>/*`` the test set where
it exists, else a share of each class's training images (test_size) held out, chosen
by the split seed and sorted, so the same folder and settings always give the same
split, and a reader of the run (the dashboard's galleries) rebuilds it from the
record. The arrays keep the folder's order: classes one after another, each class's
files sorted by path, as torchvision's ImageFolder lists them.

Readers that are not the trainer (the dashboard, features, near-duplicates) load a
run's data through :func:`load_run_data`, which takes the settings from the run's
record and the decoded images from the cache the trainer filled.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .config import config_from_record, image_format
from .config_checks import config_errors
from .cifar import IMAGE_FOLDER, CifarData, DataError, ProgressCallback, load_cifar, run_data_folder
from .folder_scan import FolderScan, scan_image_folder
from .image_folder import FolderData, cache_folder, load_image_folder

SPLIT_SETTINGS = ("image_size", "resize", "test_size", "split_seed", "bad_images")  # what a folder run's data holds
SKIPPED_SHOWN = 100  # skipped images a run records by name: config.json must stay far below its 1 MiB cap
TEST_CARVE_STREAM = 1  # the test carve's seed is (split_seed, this): apart from the validation carve's


def held_out(count: int, test_size: float) -> int:
    """Images of a class of `count` held out as test images when the folder has no test/:
    round(test_size * count), at least one of a class of two or more, never all."""
    return min(max(round(test_size * count), 1), count - 1) if count else 0


def carve_test(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) into labels, both sorted: held_out(n) of each class's n
    images, chosen by the seed."""
    rng = np.random.default_rng((seed, TEST_CARVE_STREAM))
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        test.append(rng.permutation(members)[:held_out(len(members), test_size)])
    held = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), held), held


def folder_dataset(folder: FolderData, test_size: float, split_seed: int) -> CifarData:
    """The decoded folder as a run's dataset: its test/ as the test set, else a carved share."""
    source = {"root": None, "test_source": "folder" if folder.test_images is not None else "carved",
              "skipped": list(folder.skipped[:SKIPPED_SHOWN]), "skipped_count": len(folder.skipped),
              "ignored": folder.ignored, "problems": list(folder.problems),
              "from_cache": folder.from_cache}
    if folder.test_images is not None:
        return CifarData(folder.train_images, folder.train_labels, folder.test_images, folder.test_labels,
                         folder.classes, dataset=IMAGE_FOLDER, train_files=folder.train_files,
                         test_files=folder.test_files, source=source)
    train, test = carve_test(folder.train_labels, test_size, split_seed)
    files = np.array(folder.train_files, dtype=object)
    return CifarData(folder.train_images[train], folder.train_labels[train], folder.train_images[test],
                     folder.train_labels[test], folder.classes, dataset=IMAGE_FOLDER,
                     train_files=tuple(files[train]), test_files=tuple(files[test]), source=source)


def load_folder_dataset(root: str | os.PathLike, *, image_size: int, resize: str, test_size: float, split_seed: int,
                        bad_images: str, cache_dir: str | os.PathLike | None,
                        check: Callable[[FolderScan], None] | None = None,
                        progress: ProgressCallback | None = None) -> CifarData:
    """The image folder at root as a dataset (module docstring); DataError, one line, where it
    cannot be one. check(scan) runs before anything is decoded (the trainer's memory check)."""
    scan = scan_image_folder(root)
    if check is not None:
        check(scan)
    folder = load_image_folder(scan.root, image_size, resize, cache_dir, bad_images, progress, scan=scan)
    data = folder_dataset(folder, test_size, split_seed)
    data.source["root"] = str(scan.root)
    return data


def files_moved(now: Sequence[str], was: Sequence[str]) -> int:
    """How many of two file lists' positions hold another file (or none): 0 when a run's
    recorded files (data_files.json) are the files its indices point at now."""
    return sum(a != b for a, b in zip(now, was, strict=False)) + abs(len(now) - len(was))


def changed_files(data: CifarData, recorded: Mapping[str, list[str]] | None,
                  sets: Sequence[str] = ("train", "test")) -> tuple[str, int, int] | None:
    """The first of the sets whose files, as the folder is split now, are not the files the run
    recorded (data_files.json) index for index: (set, files moved, files recorded); None when
    all are, or the run recorded none (CIFAR's)."""
    if recorded is None:
        return None
    for split in sets:
        was = recorded.get(split, [])
        moved = files_moved(data.train_files if split == "train" else data.test_files, was)
        if moved:
            return split, moved, len(was)
    return None


def folder_settings(config_record: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a folder run's split was made with (SPLIT_SETTINGS), from its config.json
    record, each checked as the trainer checks it; DataError, one line, for a record whose
    values no run could have had."""
    config = config_record.get("config") if isinstance(config_record.get("config"), dict) else {}
    resolved = config_record.get("resolved") if isinstance(config_record.get("resolved"), dict) else {}
    try:
        cfg = config_from_record({name: config[name] for name in SPLIT_SETTINGS if name in config})
    except TypeError as e:
        raise DataError(f"config.json: {e}") from None
    problems = [message for name, message in config_errors(dataclasses.replace(
        cfg, dataset=IMAGE_FOLDER, data_dir="recorded")).items() if name in SPLIT_SETTINGS]
    if problems:
        raise DataError(f"config.json: {problems[0]}")
    settings = {name: getattr(cfg, name) for name in SPLIT_SETTINGS}
    settings["image_size"], settings["resize"] = image_format(resolved, config)
    return settings


def load_run_data(config_record: Mapping[str, Any], dataset: str, data_dir: str | os.PathLike | None,
                  runs_dir: str | os.PathLike, progress: ProgressCallback | None = None) -> CifarData:
    """The data a run trained on, for a reader of it: CIFAR from the run's data folder while it
    holds the dataset, else data_dir; an image folder from the run's recorded root, split as
    the trainer split it, decoded images from runs_dir's cache. DataError, one line."""
    resolved = config_record.get("resolved") if isinstance(config_record.get("resolved"), dict) else {}
    if dataset != IMAGE_FOLDER:
        return load_cifar(dataset, run_data_folder(resolved, dataset) or data_dir)
    root = resolved.get("data_dir")
    if not isinstance(root, str) or not root:
        raise DataError("the run does not record its image folder")
    if not Path(root).is_dir():
        raise DataError(f"the run's image folder {root} is not there any more")
    settings = folder_settings(config_record)
    return load_folder_dataset(root, cache_dir=cache_folder(runs_dir), progress=progress, **settings)
