"""Features planted in a run's features/ cache (resnet_core.embeddings' own file, keyed on
the run's checkpoint file as it is now), without a model or a forward pass: what the atlas's
page tests and timings read through resnet_core.embeddings.cached_features."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from resnet_core import embeddings, runs


def plant_features(run_dir: Path, train_labels: np.ndarray, split: str = "val", n: int = 120,
                   checkpoint: str = "best", clusters: int = 2, num_classes: int = 10) -> embeddings.Features:
    """Features of training images 0..n-1 with the folder's labels (train_labels), 1 in 4
    predicted as the next class, in as many clusters as asked, by label, cached for the
    run's checkpoint file (make_run's last.pt, which "best" falls back to)."""
    rng = np.random.default_rng(0)
    indices = np.arange(n, dtype=np.int64)
    labels = np.asarray(train_labels, dtype=np.int64)[indices]
    preds = np.where(indices % 4 == 3, (labels + 1) % num_classes, labels)
    centres = rng.normal(0, 4, (clusters, 64 if n > 1000 else 16))
    feats = (rng.normal(0, 0.3, (n, centres.shape[1])) + centres[labels % clusters]).astype(np.float32)
    confidence = rng.uniform(0.2, 1.0, n).astype(np.float32)
    key = embeddings.checkpoint_key(Path(run_dir), checkpoint)
    runs.save_features(Path(run_dir), split, checkpoint, indices=indices, labels=labels, predictions=preds,
                       confidence=confidence, features=feats, checkpoint_file=np.array(key.file),
                       checkpoint_mtime_ns=np.int64(key.mtime_ns), checkpoint_size=np.int64(key.size))
    found = embeddings.cached_features(run_dir, split, checkpoint)
    assert found is not None, "the planted features do not read back"
    return found
