"""The CIFAR images behind a run's predictions: which set and which data folder they
come from, whether that folder's labels are the run's, and the images loaded in a
background thread (no Streamlit here).

A run records indices into a set of its dataset (CIFAR-10 or CIFAR-100), not the images,
so they are read from a folder that holds that dataset. Before drawing them, the labels
the data folder has at those indices are compared with the labels the run recorded: a
re-packed copy in another order, or another dataset, would otherwise show wrong pictures
under the right captions.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import runs
from ..cifar import IMAGE_FOLDER, DataError, dataset_present, dataset_title, load_cifar, run_data_folder
from ..folder_dataset import changed_files, folder_settings, load_folder_dataset
from ..image_folder import cache_folder, cache_path

SplitImages = str  # "train" or "test": which set of the run's dataset a split's indices point into
SET_NAMES = {"train": "training", "test": "test"}


def image_source(run_config: Mapping[str, Any], split: str) -> SplitImages | None:
    """Which set the indices of a split's predictions point into: "train" or "test".

    val: the training set when the run carved its validation split from it
    (resolved.val_source == "train"), the test set when the test set stood in
    (val_source "test"); test: the test set; train: None (only a confusion matrix is
    recorded for training batches, so there are no images to show).
    """
    if split == "test":
        return "test"
    if split == "val":
        source = (run_config.get("resolved") or {}).get("val_source")
        if source in ("train", "test"):
            return source
        val_size = (run_config.get("config") or {}).get("val_size")
        return "test" if val_size == 0 else "train"
    return None


def recorded_files(run_dir: str | Path) -> dict[str, list[str]] | None:
    """The run's data_files.json ({"train": [...], "test": [...]}); None for a run without it
    (CIFAR's, or a damaged file). Read once per version of the file (a page reruns every few
    seconds, and 100,000 paths are some 6 MB of JSON)."""
    path = Path(run_dir) / runs.DATA_FILES
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return _data_files(str(path.parent), st.st_mtime_ns, st.st_size)


def source_paths(run_dir: str | Path, source: SplitImages | None) -> list[str] | None:
    """Each image's file in a set of the run's data ("train" or "test"), by its index, as the
    run's data_files.json lists them (recorded_files); None without it or without the set."""
    files = recorded_files(run_dir)
    return files.get(source) if files is not None and source is not None else None


@functools.lru_cache(maxsize=8)
def _data_files(run_dir: str, mtime_ns: int, size: int) -> dict[str, list[str]] | None:
    """mtime_ns and size key the cache only: a rewritten file is read again."""
    return runs.read_data_files(Path(run_dir))


@dataclass(frozen=True)
class ImageFolder:
    path: Path
    note: str  # which folder this is and, for the dashboard's, why not the run's own
    dataset: str  # the run's: the images are read as this dataset
    # An image folder's load_folder_dataset arguments (the run's split settings and the decoded
    # images' cache), as sorted items: part of the loaded images' identity.
    settings: tuple[tuple[str, Any], ...] = ()
    run_dir: Path | None = None  # an image folder run's: its data_files.json is checked against the folder


def image_folder(run_config: Mapping[str, Any], dashboard_dir: str | Path, dataset: str,
                 runs_dir: str | Path | None = None, run_dir: str | Path | None = None) -> ImageFolder:
    """The data folder to take a run's images (of its dataset, runs.RunInfo.dataset) from:
    the one the run read (resolved.data_dir) while it still holds that dataset, else the
    dashboard's; an image folder run's own folder, split as the run split it, its decoded
    images from runs_dir's cache."""
    resolved = run_config.get("resolved") or {}
    recorded = resolved.get("data_dir") if isinstance(resolved, dict) else None
    if dataset == IMAGE_FOLDER:
        return _run_image_folder(run_config, recorded if isinstance(recorded, str) and recorded else None,
                                 runs_dir, run_dir)
    if not isinstance(recorded, str) or not recorded:
        return ImageFolder(Path(dashboard_dir), "the dashboard's data folder (the run did not record its own)", dataset)
    if run_data_folder(resolved, dataset):
        return ImageFolder(Path(recorded), "the run's own data folder", dataset)
    return ImageFolder(Path(dashboard_dir), f"the dashboard's data folder: the run's own, {recorded}, holds no "
                       f"{dataset_title(dataset)} any more", dataset)


def _run_image_folder(run_config: Mapping[str, Any], root: str | None, runs_dir: str | Path | None,
                      run_dir: str | Path | None) -> ImageFolder:
    """An image folder run's ImageFolder; without settings where its record cannot say how
    the folder was split (ImageStore then says so)."""
    try:
        settings = {**folder_settings(run_config), "cache_dir": str(cache_folder(runs_dir)) if runs_dir else None}
        where = ("the run's image folder" if dataset_present(IMAGE_FOLDER, root)
                 else "the run's image folder, which is not there any more")
    except DataError as e:
        settings, where = {}, f"the run's image folder, whose split its record cannot give ({e})"
    if root is None:
        settings, where = {}, "no image folder: the run did not record its own"
    return ImageFolder(Path(root or "."), where, IMAGE_FOLDER, tuple(sorted(settings.items())),
                       Path(run_dir) if run_dir is not None else None)


@dataclass(frozen=True)
class LabelCheck:
    checked: int  # records compared
    mismatched: int  # records whose index holds another label in the folder, or does not exist there

    @property
    def ok(self) -> bool:
        return self.mismatched == 0

    def problem(self, folder: str | Path, source: SplitImages) -> str | None:
        """What the page says when the folder's images are not the run's; None when they are."""
        if self.ok:
            return None
        return (f"{self.mismatched:,} of {self.checked:,} recorded labels differ from the labels at the same "
                f"indices of the {SET_NAMES[source]} set in {folder}: that folder holds the dataset in another "
                f"order, or another dataset, so its images would not be the ones this run saw. The cards are "
                f"shown without images.")


def decoded_version(root: Path, dataset: str, settings: tuple) -> tuple:
    """Which decoding of an image folder the dashboard holds: its cache file's mtime and size
    (a trainer that decoded the changed folder anew rewrote it), () for CIFAR's files or
    without a cache; part of the key the dashboard keeps the loaded images under."""
    options = dict(settings)
    if dataset != IMAGE_FOLDER or not options.get("cache_dir"):
        return ()
    try:
        st = os.stat(cache_path(options["cache_dir"], root, options["image_size"], options["resize"]))
    except (OSError, KeyError, TypeError):
        return ()
    return st.st_mtime_ns, st.st_size


def files_problem(data, run_dir: str | Path | None, folder: str | Path, sets: Sequence[SplitImages]) -> str | None:
    """What the page says when an image folder's files of these sets, split as the run split
    them (data: the ImageStore's), are not the files the run in run_dir recorded index for
    index (folder_dataset.changed_files); None when they are, or without a run or a record."""
    changed = changed_files(data, recorded_files(run_dir) if run_dir is not None else None, sets)
    if changed is None:
        return None
    _, moved, recorded = changed
    return (f"{moved:,} of the {recorded:,} files this run recorded are not at the same place in {folder} "
            f"now: files were added, removed or renamed since the run, so the images would not be the ones it "
            f"saw. The cards are shown without images.")


def labels_match(source_labels: np.ndarray, preds: Mapping[str, np.ndarray]) -> LabelCheck:
    """Compare every record's label with the folder's label at the record's index."""
    folder_labels = np.asarray(source_labels)
    indices = np.asarray(preds["indices"], dtype=np.int64)
    recorded = np.asarray(preds["labels"])
    inside = (indices >= 0) & (indices < len(folder_labels))
    same = np.zeros(len(indices), dtype=bool)
    same[inside] = folder_labels[indices[inside]] == recorded[inside]
    return LabelCheck(checked=len(indices), mismatched=int(len(indices) - same.sum()))


class ImageStore:
    """The images of a dataset in a data folder, loaded once in a background thread.

    start() returns at once, so a page can begin loading while the user looks at it;
    get() waits for the load (or raises what it raised).
    """

    def __init__(self, data_dir: str | Path, dataset: str, loader=None, settings: tuple = ()):
        self.data_dir = Path(data_dir)
        self.dataset = dataset
        self._loader = loader
        self.settings = dict(settings)  # an image folder's (ImageFolder.settings)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._data = None
        self._error: BaseException | None = None
        self.decoded: tuple[int, int] | None = None  # an image folder decoding: (images done, of)

    def _load(self) -> None:
        try:
            if self._loader is None and self.dataset == IMAGE_FOLDER and not self.settings:
                raise DataError("the run's record does not say how its image folder was split")
            if self._loader is None and self.dataset == IMAGE_FOLDER:
                self._data = load_folder_dataset(self.data_dir, progress=self._decoding, **self.settings)
            elif self._loader is None:
                self._data = load_cifar(self.dataset, self.data_dir)
            else:
                self._data = self._loader(self.data_dir)
        except BaseException as e:  # reported to whoever asks for the images
            self._error = e
        finally:
            self._done.set()

    def _decoding(self, done: int, total: int) -> None:
        self.decoded = (done, total)

    def wait(self, timeout: float) -> bool:
        """Whether the load has ended (loaded or failed) within timeout seconds."""
        return self._done.wait(timeout)

    def start(self) -> "ImageStore":
        with self._lock:
            failed = self._done.is_set() and self._error is not None
            if self._thread is None or failed:  # a failed load (no data yet) is tried again
                self._done.clear()
                self._error = None
                self._thread = threading.Thread(target=self._load, name="cifar-image-store", daemon=True)
                self._thread.start()
        return self

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def get(self, timeout: float | None = None):
        """The loaded dataset; raises what the load raised (call start() to try again)."""
        if self._thread is None:
            self.start()
        if not self._done.wait(timeout):
            raise TimeoutError(f"{dataset_title(self.dataset)} from {self.data_dir} is still loading")
        if self._error is not None:
            raise self._error
        return self._data

    def images(self, source: SplitImages, timeout: float | None = None) -> np.ndarray:
        data = self.get(timeout)
        return data.train_images if source == "train" else data.test_images

    def labels(self, source: SplitImages, timeout: float | None = None) -> np.ndarray:
        data = self.get(timeout)
        return data.train_labels if source == "train" else data.test_labels
