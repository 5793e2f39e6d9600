"""Two-dimensional maps of a split's features (no Streamlit here): PCA at once, t-SNE as
the slow option, cached in the run folder next to the features it maps.

PCA: the top two principal components (numpy SVD of the centred features; each
component's sign fixed so that its largest loading is positive, so a map does not mirror
between two computations of the same features). 0.3 s for 50,000 x 64 on this busy CPU.

t-SNE (openTSNE's FFT-accelerated t-SNE, Linderman et al. 2019; an optional extra,
requirements-atlas.txt): chosen by measurement against umap-learn and scikit-learn's TSNE
on this 2-core CPU, 64-d clustered points, the machine shared (README, "Atlas (features)"):
for 10,000 points openTSNE took 37 s of CPU, umap-learn 60-77 s (numba compiling) and
scikit-learn 89 s; for 50,000 openTSNE 100 s, umap-learn 70 s and scikit-learn 530 s; installed on top of the
runtime, openTSNE takes 214 MB (with scikit-learn and scipy), umap-learn 412 MB (numba and
llvmlite too). openTSNE also reports its iterations as it goes (the atlas's progress bar),
and leaves the GIL while it computes: run in a thread, it left the main thread's 1 ms sleeps
at 1.1 ms median, 51 ms at most.

The cache: ``features/{split}_{checkpoint}_{tag}.npz`` beside the features (tag ``tsne``;
see resnet_core.runs.folder_format): ``coords`` (float32, N x 2, in the features' row
order) and ``features_digest`` (uint8, 16: :func:`features_digest` of the features it
maps). A map whose digest is not that of the features now is stale: the features were
recomputed (a new checkpoint).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from .cifar import ProgressCallback
from .runs import FEATURES_DIR, RunFolderError
from .runs.files import load_npz
from .runs.writing import save_arrays

PCA, TSNE = "PCA", "t-SNE"
METHODS = (PCA, TSNE)
FILE_TAGS = {PCA: "pca", TSNE: "tsne"}
TSNE_ITERATIONS = 750  # openTSNE's default schedule: 250 early exaggeration + 500
INSTALL = "pip install -r requirements-atlas.txt"


def missing(method: str) -> str | None:
    """Why the method cannot run here (its library is not installed: one line, how to
    install it), or None."""
    if method == TSNE and importlib.util.find_spec("openTSNE") is None:
        return f"t-SNE needs openTSNE, an optional extra: {INSTALL}"
    return None


def pca(features: np.ndarray) -> np.ndarray:
    """(N, 2) float32: the features' coordinates on their top two principal components."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"features must be a non-empty (N, D) array, not of shape {x.shape}")
    x = x - x.mean(axis=0)
    # The eigenvectors of the D x D scatter matrix are the SVD's right singular vectors; numpy's
    # SVD of the whole (N, D) matrix took 2.7-3.1 s for 50,000 x 64 here (load 9), this 0.27-0.29 s.
    values, vectors = np.linalg.eigh(x.T @ x)
    components = vectors[:, np.argsort(values)[::-1][:2]].T
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    coords = x @ (components * signs[:, None]).T
    if coords.shape[1] < 2:  # one-dimensional features: the map is a line
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords.astype(np.float32)


def tsne(features: np.ndarray, progress: ProgressCallback | None = None, seed: int = 0) -> np.ndarray:
    """(N, 2) float32 t-SNE map (openTSNE, PCA initialisation, both cores); progress is
    called every 10 iterations with (done, TSNE_ITERATIONS)."""
    import openTSNE  # ImportError without the extra: see missing()

    x = np.asarray(features, dtype=np.float64)
    done = [0]

    def tick(iteration, error, embedding):  # openTSNE counts each phase's iterations from 1
        done[0] += 10
        if progress is not None:
            progress(min(done[0], TSNE_ITERATIONS), TSNE_ITERATIONS)

    perplexity = min(30.0, max(1.0, (len(x) - 1) / 3.0))  # openTSNE refuses a perplexity above (N - 1) / 3
    embedding = openTSNE.TSNE(perplexity=perplexity, n_jobs=2, random_state=seed, callbacks=tick,
                              callbacks_every_iters=10).fit(x)
    return np.asarray(embedding, dtype=np.float32)


def project(features: np.ndarray, method: str, progress: ProgressCallback | None = None) -> np.ndarray:
    if method == PCA:
        return pca(features)
    if method == TSNE:
        return tsne(features, progress)
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def projection_name(split: str, checkpoint: str, method: str) -> str:
    """The map's file, relative to the run folder: features/{split}_{checkpoint}_{tag}.npz."""
    return f"{FEATURES_DIR}/{split}_{checkpoint}_{FILE_TAGS[method]}.npz"


def features_digest(features: np.ndarray) -> bytes:
    """The identity of a features array: a BLAKE2b digest of its shape and float32 bytes, so
    that a map is never shown over other features, whatever file they came from (40-50 ms
    for 50,000 x 64 on this busy CPU; the page computes it once per features read)."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(x.shape, dtype=np.int64).tobytes())
    h.update(x.data)
    return h.digest()


def save_projection(run_dir: Path, split: str, checkpoint: str, method: str, coords: np.ndarray,
                    features: np.ndarray) -> Path:
    """Write the map of these features (atomically, never through a symbolic link)."""
    return save_arrays(Path(run_dir) / projection_name(split, checkpoint, method),
                       coords=np.asarray(coords, dtype=np.float32),
                       features_digest=np.frombuffer(features_digest(features), dtype=np.uint8))


def cached_projection(run_dir: Path, split: str, checkpoint: str, method: str,
                      features: np.ndarray) -> np.ndarray | None:
    """The cached (N, 2) map of these features, or None: none yet, made from other features
    (recomputed since), or damaged. Never raises."""
    n = len(features)
    try:
        arrays = load_npz(Path(run_dir), projection_name(split, checkpoint, method), max_bytes=8 * n + 4096)
    except (RunFolderError, OSError, KeyError):
        return None
    coords, digest = arrays.get("coords"), arrays.get("features_digest")
    if (coords is None or digest is None or coords.shape != (n, 2) or coords.dtype != np.float32
            or digest.dtype != np.uint8 or digest.tobytes() != features_digest(features)
            or not np.isfinite(coords).all()):
        return None
    return coords
