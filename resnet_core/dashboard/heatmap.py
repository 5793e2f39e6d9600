"""Colour ramps for maps and matrices, and Grad-CAM maps laid over images (numpy, no torch).

A ramp linearly interpolates between colour stops; :data:`HEAT` runs from dark blue through
cyan, yellow and red (a "jet"-like scale, so weak evidence reads as cool and the peak as
red), :data:`BLUES` is Plotly's "Blues" that the dashboard's confusion matrix uses.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from plotly.colors import sequential, unlabel_rgb

# (position in [0, 1], (r, g, b))
HEAT = ((0.0, (0, 0, 128)), (0.25, (0, 96, 255)), (0.5, (0, 230, 230)), (0.75, (255, 220, 0)),
        (1.0, (215, 0, 0)))
# Plotly's own stops, so that the downloaded PNG cannot drift from the chart.
BLUES = tuple((i / (len(sequential.Blues) - 1), tuple(int(c) for c in unlabel_rgb(colour)))
              for i, colour in enumerate(sequential.Blues))
OVERLAY_ALPHA = 0.5  # the map's share of each pixel where the map is 1


def ramp(values: np.ndarray, stops: Sequence[tuple[float, tuple[int, int, int]]] = HEAT) -> np.ndarray:
    """Values in [0, 1] (any shape; clipped, NaN as 0) as uint8 RGB colours (shape + (3,))."""
    v = np.nan_to_num(np.clip(np.asarray(values, dtype=np.float64), 0, 1))
    positions = [p for p, _ in stops]
    return np.stack([np.interp(v, positions, [c[i] for _, c in stops]) for i in range(3)], axis=-1).round().astype(
        np.uint8)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The map (H, W) in [0, 1] laid over the image ((3, H, W) or (H, W, 3) uint8) as an
    (H, W, 3) uint8 picture: each pixel mixes the heat colour in by alpha times the map's
    value there, so where the map is 0 the image shows as it is."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)
    cam = np.clip(np.asarray(cam, dtype=np.float64), 0, 1)
    if cam.shape != image.shape[:2]:
        raise ValueError(f"a map of shape {cam.shape} for an image of {image.shape[:2]}")
    weight = (alpha * cam)[..., None]
    return (image * (1 - weight) + ramp(cam) * weight).round().astype(np.uint8)
