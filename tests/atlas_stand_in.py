"""A stand-in for resnet_core.embeddings (its contract: Features, features_file,
cached_features, compute_features) that the atlas's page tests and timings put in
sys.modules: features planted in memory, without a model or a forward pass."""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class StandInFeatures:
    """resnet_core.embeddings.Features as its contract says."""
    split: str
    checkpoint: str
    checkpoint_file: str
    indices: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    confidence: np.ndarray
    features: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.labels))


def stand_in(train_labels: np.ndarray) -> tuple[types.ModuleType, Callable[..., StandInFeatures]]:
    """(the module, plant): plant(run_dir, split="val", n=120, checkpoint="best", clusters=2)
    caches features of training images 0..n-1 with the folder's labels (train_labels), 1
    in 4 predicted as the next class, in as many clusters as asked, by label; the module's
    compute_features plants them too (the page's background job)."""
    store: dict[tuple, StandInFeatures] = {}
    train_labels = np.asarray(train_labels, dtype=np.int64)

    def features_file(run_dir, split, checkpoint="best") -> Path:
        return Path(run_dir) / "features" / f"{split}_{checkpoint}.npz"

    def plant(run_dir: Path, split: str = "val", n: int = 120, checkpoint: str = "best",
              clusters: int = 2) -> StandInFeatures:
        rng = np.random.default_rng(0)
        indices = np.arange(n, dtype=np.int64)
        labels = train_labels[indices]
        preds = np.where(indices % 4 == 3, (labels + 1) % 10, labels)
        centres = rng.normal(0, 4, (clusters, 64 if n > 1000 else 16))
        feats = (rng.normal(0, 0.3, (n, centres.shape[1])) + centres[labels % clusters]).astype(np.float32)
        f = StandInFeatures(split, checkpoint, "last.pt", indices, labels, preds,
                            rng.uniform(0.2, 1.0, n).astype(np.float32), feats)
        path = features_file(run_dir, split, checkpoint)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(feats.tobytes())  # what the page's cache key stamps
        store[(str(run_dir), split, checkpoint)] = f
        return f

    def compute_features(run_dir, split, checkpoint="best", progress=None, data_dir=None):
        progress(1, 2)
        return plant(Path(run_dir), split, checkpoint=checkpoint)

    module = types.ModuleType("resnet_core.embeddings")
    module.features_file = features_file
    module.cached_features = lambda run_dir, split, checkpoint="best": store.get((str(run_dir), split, checkpoint))
    module.compute_features = compute_features
    return module, plant
