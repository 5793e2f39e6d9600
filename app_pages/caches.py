"""What the pages cache across reruns and sessions (st.cache_resource, st.cache_data): the
system's devices, the CIFAR images, an image folder's preview, a run's prediction arrays, its
training dynamics, its models, their Grad-CAM maps and TorchScript exports, the atlas's features,
maps and k-NN accuracies, each cached by the files it comes from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import streamlit as st

from resnet_core import runs
from resnet_core.formatting import md_escape
from resnet_core.dynamics import Dynamics, analyse
from resnet_core.dashboard import run_images
from resnet_core.dashboard.background_jobs import Jobs
from resnet_core.dashboard.folder_preview import FolderPreview, preview_folder
from resnet_core.system import describe_system



@st.cache_resource(show_spinner=False)
def system_info():
    return describe_system()


@st.cache_resource(show_spinner=False, max_entries=4)
def _image_store(data_dir: str, dataset: str, settings: tuple, version: tuple) -> run_images.ImageStore:
    return run_images.ImageStore(data_dir, dataset, settings=settings)


def image_store(folder: Path, dataset: str, settings: tuple = ()) -> run_images.ImageStore:
    """The images of the dataset ("cifar10", "cifar100", "folder" with its settings,
    run_images.ImageFolder.settings) in the data folder, loading in the background from the
    first call (st.cache_resource: one copy for all sessions, at most 4 datasets, each
    180 MB as CIFAR; an image folder's again once a run has decoded it anew)."""
    folder = Path(folder).resolve()
    return _image_store(str(folder), dataset, tuple(settings),
                        run_images.decoded_version(folder, dataset, settings)).start()


def loaded_store(folder: Path, dataset: str, settings: tuple = ()) -> run_images.ImageStore:
    """image_store's, once its load has ended, with a progress bar meanwhile: an image folder
    without the trainer's cache decodes here (15 s for the 60,000-image PNG copy of CIFAR-10
    on 2 cores), where the galleries had waited 30 s without a word and then said "still
    loading". Its get() then returns at once, or raises what the load raised."""
    store = image_store(folder, dataset, settings)
    if not store.ready:
        bar = st.progress(0.0, text="Loading the images…")
        while not store.wait(0.25):  # each redraw lets a rerun interrupt the wait
            done, total = store.decoded or (0, 0)
            if total:
                bar.progress(done / total, text=md_escape(f"decoding the images of {folder}: {done:,} of {total:,}"))
        bar.empty()
    return store


@st.cache_resource(show_spinner=False, max_entries=48)
def _predictions(run_dir: str, split: str, epoch: int, mtime_ns: int) -> dict[str, np.ndarray]:
    return runs.load_predictions(Path(run_dir), split, epoch)


def predictions(run_dir: Path, split: str, epoch: int) -> dict[str, np.ndarray]:
    """A run's prediction arrays, cached by file and modification time (treat as read-only).
    Raises runs.RunFolderError for a file that is missing, damaged or inconsistent."""
    try:
        mtime = os.lstat(runs.prediction_path(run_dir, split, epoch)).st_mtime_ns
    except OSError:
        mtime = 0  # gone or unreadable: load_predictions says why (errors are not cached)
    return _predictions(str(run_dir), split, epoch, mtime)


def file_stamps(paths) -> tuple[tuple[int, int], ...]:
    """(mtime_ns, size) of each file, (0, 0) where it cannot be looked at: the cache key of
    what is computed from all of them, new when one is rewritten or added."""
    out = []
    for path in paths:
        try:
            st_ = os.lstat(path)
            out.append((st_.st_mtime_ns, st_.st_size))
        except OSError:
            out.append((0, 0))
    return tuple(out)


def _dynamics_files(run_dir: Path) -> tuple[tuple[int, int], ...]:
    """The stamps of the record's files (its images and each epoch of the unbroken run from 1)."""
    return file_stamps([runs.dynamics_images_path(run_dir),
                        *(runs.dynamics_path(run_dir, e) for e in runs.dynamics_epochs(run_dir))])


# cache_resource, not cache_data: cache_data keeps the pickled bytes and hands each rerun an
# unpickled copy, and the dynamics of 50,000 images x 165 epochs pickle to 52 MB (label_prob
# float32, correct and presented bool): 10-25 ms of every rerun, a selection's included, and a
# second copy in memory.
@st.cache_resource(show_spinner="Reading the training images' record…", max_entries=4)
def _dynamics(run_dir: str, files: tuple) -> Dynamics:
    return analyse(runs.load_dynamics(Path(run_dir)))


def dynamics(run_dir: Path) -> Dynamics:
    """A run's training dynamics (forgetting, data map) from its dynamics/ record, cached by
    its files' modification times and sizes (treat as read-only). Raises
    runs.RunFolderError for a record that is missing, damaged or inconsistent."""
    return _dynamics(str(run_dir), _dynamics_files(run_dir))


# Models: resnet_core.run_model imports torch, so these import it only when first called; the
# pages that never draw a model (Analyze until Grad-CAM or an export is asked for) stay torch-free.

@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _run_model(run_dir: str, which: str, mtime_ns: int):
    import torch

    from resnet_core.run_model import load_run_model

    # The dashboard's model work (Grad-CAM of a page, Predict, an export) is small batches beside
    # trainers that hold the cores: Grad-CAM of 30 images of ResNet-20 took 0.14-0.28 s on one
    # thread and 2.4-3.6 s on torch's default two, whose threads wait for each other on a busy
    # 2-core machine (idle: 0.033 s against 0.019 s). Only this process's torch is affected;
    # trainers are processes of their own.
    torch.set_num_threads(1)
    return load_run_model(run_dir, which)


def run_model(run_dir: Path, which: str):
    """A run's model from best.pt or last.pt (resnet_core.run_model.RunModel), cached until the
    trainer rewrites that file; raises ModelLoadError (one line) when it cannot load."""
    from resnet_core.run_model import checkpoint_mtime

    return _run_model(str(run_dir), which, checkpoint_mtime(run_dir, which))


@st.cache_data(show_spinner="Computing Grad-CAM…", max_entries=64)
def _gradcam(run_dir: str, which: str, mtime_ns: int, data_folder: str, dataset: str, settings: tuple, source: str,
             targets: tuple[tuple[int, int], ...]) -> dict[int, np.ndarray]:
    images = image_store(Path(data_folder), dataset, settings).images(source, timeout=30)
    indices = [i for i, _ in targets]
    cams, _ = _run_model(run_dir, which, mtime_ns).explain(images[indices], [c for _, c in targets])
    return dict(zip(indices, cams, strict=True))


def gradcam_maps(run_dir: Path, which: str, images_from: run_images.ImageFolder, source: str,
                 targets: Sequence[tuple[int, int]]) -> dict[int, np.ndarray]:
    """Grad-CAM maps of (image index, class) pairs of a set of the run's dataset, by image index; cached by
    run, checkpoint file and its modification time, images and classes (a page of a gallery)."""
    from resnet_core.run_model import checkpoint_mtime

    return _gradcam(str(run_dir), which, checkpoint_mtime(run_dir, which), str(images_from.path), images_from.dataset,
                    images_from.settings, source, tuple((int(i), int(c)) for i, c in targets))


@st.cache_data(show_spinner="Exporting to TorchScript…", max_entries=4)
def _torchscript(run_dir: str, which: str, mtime_ns: int) -> bytes:
    import tempfile

    from resnet_core.export import export

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "model.pt"
        export(_run_model(run_dir, which, mtime_ns), "torchscript", out)
        return out.read_bytes()


def torchscript_bytes(run_dir: Path, which: str) -> bytes:
    """The run's model exported to TorchScript (resnet_core.export), checked, as file bytes;
    raises ModelLoadError or ExportRefused (one line)."""
    from resnet_core.run_model import checkpoint_mtime

    return _torchscript(str(run_dir), which, checkpoint_mtime(run_dir, which))


# The atlas (Explain's "Atlas (features)"): resnet_core.embeddings imports torch, so these import it when first called.

@st.cache_resource(show_spinner="Reading the features…", max_entries=6)
def _features(run_dir: str, split: str, which: str, stamps: tuple):
    from resnet_core.embeddings import cached_features
    from resnet_core.projections import features_digest

    found = cached_features(run_dir, split, which)
    return None if found is None else (found, features_digest(found.features))


def features(run_dir: Path, split: str, which: str):
    """(resnet_core.embeddings.Features, their features_digest) of a split under a checkpoint,
    or None where none are cached for the checkpoint as it is now; cached by the features
    file and the checkpoint's stamps (treat as read-only). Never raises."""
    from resnet_core.embeddings import features_file
    from resnet_core.run_model import checkpoint_mtime

    stamps = (file_stamps([features_file(run_dir, split, which)]), checkpoint_mtime(run_dir, which))
    return _features(str(run_dir), split, which, stamps)


@st.cache_resource(show_spinner=False, max_entries=8)
def _map(run_dir: str, split: str, which: str, method: str, digest: bytes, stamp: tuple, _features: np.ndarray):
    from resnet_core import projections

    if method == projections.PCA:
        return projections.pca(_features)
    return projections.cached_projection(Path(run_dir), split, which, method, _features)


def atlas_map(run_dir: Path, split: str, which: str, method: str, found: tuple) -> np.ndarray | None:
    """The (N, 2) map of features (found: what features() returns) by method: PCA at once,
    a slow method's from its cache file (None until there is one for these features);
    cached by the features' digest and that file's stamp."""
    from resnet_core.projections import projection_name

    stamp = file_stamps([Path(run_dir) / projection_name(split, which, method)])
    return _map(str(run_dir), split, which, method, found[1], stamp, found[0].features)


@st.cache_data(show_spinner="Measuring the k-NN accuracy…", max_entries=16)
def _knn_accuracy(run_dir: str, split: str, which: str, k: int, stamps: tuple, _split, _train) -> float:
    from resnet_core.neighbours import split_knn_accuracy

    return split_knn_accuracy(_split, _train, k)


def knn_accuracy(run_dir: Path, which: str, split, train, k: int = 10) -> float:
    """The k-NN accuracy of a split's features against the training images' (Features
    under the checkpoint which, as features() returns them); cached by both features files'
    stamps: 10,000 test images against 45,000 training images take about 4 s on this CPU."""
    from resnet_core.embeddings import features_file

    stamps = file_stamps([features_file(run_dir, s, which) for s in (split.split, "train")])
    return _knn_accuracy(str(run_dir), split.split, which, k, stamps, split, train)


@st.cache_resource(show_spinner=False)
def jobs() -> Jobs:
    """The server's background jobs (features, t-SNE maps): one registry for all sessions, so
    a reloaded page finds its job still running."""
    return Jobs()


# ttl: a class folder's files can change without changing train/'s modification time; a
# minute later the preview reads them again (a run always scans afresh).
@st.cache_data(show_spinner="Reading the image folder…", max_entries=16, ttl=60)
def _folder_preview(root: str, train_mtime: int, image_size: int, resize: str, images: bool) -> FolderPreview:
    return preview_folder(root, image_size, resize, images=images)


def folder_preview(root: str, image_size: int = 32, resize: str = "crop", images: bool = True) -> FolderPreview:
    """The preview of the image folder at root (resnet_core.dashboard.folder_preview; images=False:
    its scan only), read again when its train/ folder changes (a class added or removed), the size
    or rule does, or a minute has passed."""
    try:
        mtime = os.stat(os.path.join(os.path.expanduser(root), "train")).st_mtime_ns
    except OSError:  # no such folder: the preview says so
        mtime = 0
    return _folder_preview(root, mtime, int(image_size), resize, images)
