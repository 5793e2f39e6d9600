"""Series helpers for the live curves (no Streamlit, no Plotly): rows as cached columns,
smoothing as TensorBoard does it, downsampling that keeps spikes, and the best value so far.

A missing value (None or NaN) is a gap: smoothing skips it and leaves it a gap, and the
best value never is one.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _ewm(values: np.ndarray, weight: float) -> np.ndarray:
    """:func:`ema` of floats (NaN: a gap) from the start, as an array: pandas' ewm with
    adjust=True is the debiased average, and ignore_na=True counts the finite values only.
    On 200,000 points it matched the hand-written loop it replaced to 3e-15 and took 3 ms
    instead of 40 (weights 0.6 to 0.99)."""
    out = pd.Series(values).ewm(alpha=1 - weight, adjust=True, ignore_na=True).mean().to_numpy(copy=True)
    out[np.isnan(values)] = np.nan  # ewm carries the average over a gap
    return out


def _ema_from(values: np.ndarray, weight: float, last: float, k: int) -> tuple[np.ndarray, float, int]:
    """:func:`ema` of values continued from a state (the undebiased average, the finite values
    counted): the smoothed values and the state after them, so a growing series is smoothed once.
    The state decays by weight ** j over the j finite values since, and the values' own
    debiased average (weighing 1 - weight ** j) adds to it."""
    fresh = _ewm(values, weight)
    j = np.cumsum(~np.isnan(values))
    decay = weight ** j
    undebiased = decay * last + (1 - decay) * fresh
    out = fresh if k == 0 else undebiased / (1 - weight ** (k + j))
    finite = np.flatnonzero(~np.isnan(values))
    if len(finite):
        last, k = float(undebiased[finite[-1]]), k + int(j[-1])
    return out, last, k


def _check_weight(weight: float) -> None:
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight {weight} is not in [0, 1)")


def ema(values: Sequence[float | None], weight: float) -> list[float | None]:
    """TensorBoard's debiased exponential moving average: last = last * weight + (1 - weight)
    * v over the finite values, each divided by 1 - weight ** k, k the number of finite values
    so far (the average starts at 0, so without that the first points would sit near 0).
    Missing values stay gaps and do not count; weight 0 returns the values unchanged."""
    _check_weight(weight)
    if weight == 0:
        return [v if _finite(v) else None for v in values]
    smooth = _ewm(_finite_array(values), weight)
    return [None if math.isnan(v) else v for v in smooth.tolist()]


def _finite_array(values: Sequence[float | None]) -> np.ndarray:
    """The values as floats, NaN for None, NaN and infinities (gaps)."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.where(np.isfinite(arr), arr, np.nan)


def _floats(rows: Sequence[dict], key: str) -> np.ndarray:
    """The rows' key as floats, NaN where a row has no finite number (a bool is none)."""
    col = np.array([v if type(v) in (int, float) else np.nan for v in (r.get(key) for r in rows)], dtype=float)
    return np.where(np.isfinite(col), col, np.nan)


class Rows(list):
    """Rows of metrics.jsonl that only grow (a list), with each numeric column and smoothed
    column kept as it is computed and extended only by the rows added since: a live chart
    of 200,000 step rows took 1.2 s a refresh to rebuild its columns from the dicts.
    Anything but appending (a resume that rewrote the file) needs a new Rows."""

    def __init__(self, rows=(), kind: str | None = None):
        super().__init__(rows)
        self.kind = kind  # the rows' one type ("step", "system"...), if they have one
        self._columns: dict[str, np.ndarray] = {}
        # key -> (weight, smoothed values, ema state): one weight a key, the slider's latest
        # (200,000 rows held 300 MiB for every weight a slider passed through)
        self._smoothed: dict[str, tuple[float, np.ndarray, float, int]] = {}

    def column(self, key: str) -> np.ndarray:
        """:func:`_floats` of every row (a read-only view: callers copy to change it)."""
        col = self._columns.get(key)
        if col is None or len(col) > len(self):
            col = _floats(self, key)
        elif len(col) < len(self):
            col = np.concatenate([col, _floats(self[len(col):], key)])
        self._columns[key] = col
        view = col.view()
        view.flags.writeable = False
        return view

    def smoothed(self, key: str, weight: float) -> np.ndarray:
        """:func:`ema` of the column (NaN for gaps), smoothing only the rows added since."""
        _check_weight(weight)
        col = self.column(key)
        if weight == 0:
            return col
        cached_weight, done, last, k = self._smoothed.get(key, (weight, np.empty(0), 0.0, 0))
        if cached_weight != weight or len(done) > len(col):
            done, last, k = np.empty(0), 0.0, 0
        if len(done) < len(col):
            more, last, k = _ema_from(col[len(done):], weight, last, k)
            done = np.concatenate([done, more])
        self._smoothed[key] = weight, done, last, k
        return done


def column(rows: Sequence[dict], key: str) -> np.ndarray:
    """The rows' key as floats (NaN where a row has none): cached when rows is a Rows."""
    return rows.column(key) if isinstance(rows, Rows) else _floats(rows, key)


def smoothed(rows: Sequence[dict], key: str, weight: float) -> np.ndarray:
    """:func:`ema` of the rows' key, NaN for gaps: cached when rows is a Rows."""
    if isinstance(rows, Rows):
        return rows.smoothed(key, weight)
    _check_weight(weight)
    col = _floats(rows, key)
    return col if weight == 0 else _ewm(col, weight)


def downsample(x: Sequence[float], y: Sequence[float | None], max_points: int,
               keep: str = "extremes") -> tuple[list, list]:
    """At most max_points of (x, y), in x order, from buckets of consecutive points.

    keep "extremes": max_points // 2 buckets, each keeping its lowest and its highest y, so
    a spike shows however long the series. keep "mean": max_points buckets, each one
    point at the mean x and mean y of its finite points, for a smooth line. A bucket
    without any finite y keeps one gap (None). Up to max_points points come back unchanged."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} x values for {len(y)} y values")
    if keep not in ("extremes", "mean"):
        raise ValueError(f"keep {keep!r} is neither 'extremes' nor 'mean'")
    if len(x) <= max_points:
        return [float(v) for v in x], [float(v) if _finite(v) else None for v in y]
    if max_points < 2:
        raise ValueError(f"max_points {max_points} < 2: a bucket keeps its lowest and its highest point")
    ys = np.asarray(y, dtype=float)
    ys = np.where(np.isfinite(ys), ys, np.nan)
    if keep == "mean":
        return _bucket_means(np.asarray(x, dtype=float), ys, max_points)
    low, high = np.where(np.isnan(ys), np.inf, ys), np.where(np.isnan(ys), -np.inf, ys)
    edges = np.linspace(0, len(ys), max_points // 2 + 1).astype(int)
    keep_at: list[int] = []
    gaps: set[int] = set()
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        lo, hi = start + int(np.argmin(low[start:end])), start + int(np.argmax(high[start:end]))
        if np.isnan(ys[lo]):
            keep_at.append(start)
            gaps.add(start)
        else:
            keep_at.extend(sorted({lo, hi}))
    return [float(x[i]) for i in keep_at], [None if i in gaps else float(ys[i]) for i in keep_at]


def _bucket_means(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[list, list]:
    """Per bucket of consecutive points: the mean x and y of its finite points, or its
    first x and a gap where it has none."""
    edges = np.linspace(0, len(y), buckets + 1).astype(int)
    finite = ~np.isnan(y)
    counts = np.add.reduceat(finite.astype(float), edges[:-1])
    y_sum = np.add.reduceat(np.where(finite, y, 0.0), edges[:-1])
    x_sum = np.add.reduceat(np.where(finite, x, 0.0), edges[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        xs = np.where(counts > 0, x_sum / counts, x[edges[:-1]])
        ys = np.where(counts > 0, y_sum / counts, np.nan)
    return xs.tolist(), [None if np.isnan(v) else float(v) for v in ys]


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
