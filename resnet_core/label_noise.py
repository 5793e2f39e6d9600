"""Planted label noise: a fraction of the training labels flipped to another class before
training, as in Toneva et al. 2019 and Swayamdipta et al. 2020's noisy-label experiments,
so that forgetting events and data maps can be checked against images known to be wrong."""

from __future__ import annotations

import numpy as np


def flip_labels(labels: np.ndarray, fraction: float, seed: int, num_classes: int) -> np.ndarray:
    """A copy of labels with round(fraction * N) of them, chosen without replacement by
    ``np.random.default_rng(seed)``, each changed to a uniformly random other class; the
    input is left as it is. The same (labels, fraction, seed) always flip the same images
    to the same classes."""
    labels = np.asarray(labels)
    flipped = labels.copy()
    count = round(fraction * len(labels))
    if count == 0:
        return flipped
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), size=count, replace=False)
    # A shift of 1..C-1 classes, uniform: every other class equally likely, never the same.
    flipped[chosen] = (labels[chosen] + rng.integers(1, num_classes, size=count)) % num_classes
    return flipped
