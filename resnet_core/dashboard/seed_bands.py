"""Runs that differ only by seed drawn as one curve (no Streamlit, no Plotly): each run's
series put on the x values of them all, and per x their mean with a band, ± the sample
standard deviation or from the lowest to the highest run.

Runs of unequal length (a seed still training, one stopped early) are each counted where
they have values: a point's statistics are over the n runs that reach its x, n is given
per point, and a std band needs n >= 2. Between its own points a run's series is linearly
interpolated, so runs that log step rows at other steps (log_seconds writes a row when
time is up) still line up; outside its first and last x a run has no value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

BANDS = {"std": "mean ± std", "min-max": "min–max"}  # band kind -> what its hover calls it


@dataclass(frozen=True)
class Band:
    """Per x (sorted): the mean over the runs that reach it, the band's low and high edges
    (NaN where it has none) and n, how many runs were averaged."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: np.ndarray


def aligned(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The sorted union of the series' x values (of their finite points), and each series'
    values there (a row per series): interpolated between its own points, NaN outside them."""
    finite = []
    for x, y in series:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        order = np.argsort(x[keep], kind="stable")
        finite.append((x[keep][order], y[keep][order]))
    grid = np.unique(np.concatenate([x for x, _ in finite])) if finite else np.empty(0)
    values = np.full((len(finite), len(grid)), np.nan)
    for row, (x, y) in zip(values, finite, strict=True):
        if len(x):
            inside = (grid >= x[0]) & (grid <= x[-1])
            row[inside] = np.interp(grid[inside], x, y)
    return grid, values


def band(series: Sequence[tuple[np.ndarray, np.ndarray]], kind: str = "std") -> Band:
    """The runs' (x, y) series as one: their mean per x of :func:`aligned` and a band of
    kind "std" (mean ± sample std, n - 1; none where n < 2) or "min-max"."""
    if kind not in BANDS:
        raise ValueError(f"band {kind!r} is none of {', '.join(BANDS)}")
    x, values = aligned(series)
    present = ~np.isnan(values)
    n = present.sum(axis=0)
    total = np.where(present, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        if kind == "std":
            squares = np.where(present, (values - mean) ** 2, 0.0).sum(axis=0)
            spread = np.where(n > 1, np.sqrt(squares / np.maximum(n - 1, 1)), np.nan)
            low, high = mean - spread, mean + spread
        else:
            low = np.where(n > 0, np.where(present, values, np.inf).min(axis=0), np.nan)
            high = np.where(n > 0, np.where(present, values, -np.inf).max(axis=0), np.nan)
    return Band(x, mean, low, high, n)


def thinned(b: Band, max_points: int) -> Band:
    """b at no more than max_points of its x, evenly spaced by position (the first and last
    kept): a band of runs with 200,000 step rows each, drawn a few hundred pixels wide."""
    if len(b.x) <= max_points:
        return b
    keep = np.unique(np.linspace(0, len(b.x) - 1, max_points).round().astype(int))
    return Band(b.x[keep], b.mean[keep], b.low[keep], b.high[keep], b.n[keep])
