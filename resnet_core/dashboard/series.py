"""Series helpers for the live curves (no Streamlit, no Plotly): smoothing as TensorBoard
does it, downsampling that keeps spikes, and the best value so far.

A missing value (None or NaN) is a gap: smoothing skips it and leaves it a gap, and the
best value never is one.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def ema(values: Sequence[float | None], weight: float) -> list[float | None]:
    """TensorBoard's debiased exponential moving average: last = last * weight + (1 - weight)
    * v over the finite values, each divided by 1 - weight ** k, k the number of finite values
    so far (the average starts at 0, so without that the first points would sit near 0).
    Missing values stay gaps and do not count; weight 0 returns the values unchanged."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight {weight} is not in [0, 1)")
    if weight == 0:
        return [v if _finite(v) else None for v in values]
    out: list[float | None] = []
    last, k = 0.0, 0
    for v in values:
        if not _finite(v):
            out.append(None)
            continue
        k += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** k))
    return out


def downsample(x: Sequence[float], y: Sequence[float | None], max_points: int) -> tuple[list, list]:
    """At most max_points of (x, y), in x order: the points split into max_points // 2
    buckets of consecutive points, each keeping its lowest and its highest y, so a spike
    shows however long the series. A bucket without any finite y keeps one gap (None).
    Up to max_points points come back unchanged."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} x values for {len(y)} y values")
    if len(x) <= max_points:
        return list(x), [v if _finite(v) else None for v in y]
    if max_points < 2:
        raise ValueError(f"max_points {max_points} < 2: a bucket keeps its lowest and its highest point")
    ys = np.asarray(y, dtype=float)
    ys = np.where(np.isfinite(ys), ys, np.nan)
    low, high = np.where(np.isnan(ys), np.inf, ys), np.where(np.isnan(ys), -np.inf, ys)
    edges = np.linspace(0, len(ys), max_points // 2 + 1).astype(int)
    keep: list[int] = []
    gaps: set[int] = set()
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        lo, hi = start + int(np.argmin(low[start:end])), start + int(np.argmax(high[start:end]))
        if np.isnan(ys[lo]):
            keep.append(start)
            gaps.add(start)
        else:
            keep.extend(sorted({lo, hi}))
    return [x[i] for i in keep], [None if i in gaps else float(ys[i]) for i in keep]


def best_so_far(values: Sequence[float | None], mode: str) -> tuple[int, float] | None:
    """(index, value) of the best finite value: the highest for mode "max" (an accuracy),
    the lowest for "min" (a loss), the first of equals; None without a finite value."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode {mode!r} is neither 'max' nor 'min'")
    best: tuple[int, float] | None = None
    for i, v in enumerate(values):
        if _finite(v) and (best is None or (v > best[1] if mode == "max" else v < best[1])):
            best = (i, float(v))
    return best
