"""Smoothing, downsampling and best-so-far for the live curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from resnet_core.dashboard.series import Rows, best_so_far, downsample, ema


def test_ema_is_tensorboards_debiased_average_by_hand():
    # weight 0.5 over 1, 2, 3:
    # k=1: last = 0 * 0.5 + 0.5 * 1 = 0.5,       debias 1 - 0.5 = 0.5    -> 1.0
    # k=2: last = 0.5 * 0.5 + 0.5 * 2 = 1.25,    debias 1 - 0.25 = 0.75  -> 5/3
    # k=3: last = 1.25 * 0.5 + 0.5 * 3 = 2.125,  debias 1 - 0.125 = 0.875 -> 17/7
    assert ema([1, 2, 3], 0.5) == pytest.approx([1.0, 5 / 3, 17 / 7])
    # weight 0.9 over 4, 2, 0: last 0.4, 0.56, 0.504; debias 0.1, 0.19, 0.271.
    assert ema([4, 2, 0], 0.9) == pytest.approx([4.0, 0.56 / 0.19, 0.504 / 0.271])


def test_ema_keeps_gaps_and_does_not_count_them():
    assert ema([1, None, float("nan"), 2, 3], 0.5) == pytest.approx([1.0, None, None, 5 / 3, 17 / 7])
    assert ema([None], 0.5) == [None]
    assert ema([], 0.5) == []


def test_ema_of_weight_0_is_the_values_and_a_constant_stays_constant():
    assert ema([3, 1, None, 2], 0) == [3, 1, None, 2]
    assert ema([0.7] * 50, 0.99) == pytest.approx([0.7] * 50)
    with pytest.raises(ValueError):
        ema([1, 2], 1.0)


def test_downsample_passes_short_series_through():
    assert downsample([1, 2, 3], [5, None, 7], 3) == ([1, 2, 3], [5, None, 7])


def test_downsample_keeps_a_spike_and_each_buckets_min_and_max():
    n, budget = 200_000, 2_000
    x = np.arange(n, dtype=float)
    y = np.sin(x / 5_000) + 0.01 * np.random.default_rng(0).standard_normal(n)
    y[123_457] = 50.0  # one step's spike
    y[7] = -50.0
    xs, ys = downsample(x.tolist(), y.tolist(), budget)
    assert len(xs) == len(ys) <= budget
    assert max(ys) == 50.0 and xs[ys.index(50.0)] == 123_457
    assert min(ys) == -50.0 and xs[ys.index(-50.0)] == 7
    assert xs == sorted(xs)
    edges = np.linspace(0, n, budget // 2 + 1).astype(int)
    kept = [set() for _ in edges[:-1]]  # the values kept in each bucket, in one pass (a pass a bucket took 2.6 s)
    for bucket, v in zip(np.searchsorted(edges, xs, side="right") - 1, ys, strict=True):
        if 0 <= bucket < len(kept):
            kept[bucket].add(v)
    for bucket, (start, end) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        assert kept[bucket] == {y[start:end].min(), y[start:end].max()}


def test_downsample_leaves_a_bucket_of_gaps_a_gap():
    y = [1.0] * 10 + [None] * 10 + [2.0, float("nan")] * 5
    xs, ys = downsample(list(range(30)), y, 6)
    assert len(xs) <= 6 and xs == sorted(xs)
    assert ys[:1] == [1.0] and None in ys and 2.0 in ys
    assert not any(isinstance(v, float) and math.isnan(v) for v in ys)


def test_best_so_far():
    assert best_so_far([0.3, None, 0.5, 0.5, float("nan"), 0.4], "max") == (2, 0.5)
    assert best_so_far([1.2, 0.9, None, 0.9, 1.0], "min") == (1, 0.9)
    assert best_so_far([None, float("nan")], "max") is None
    with pytest.raises(ValueError):
        best_so_far([1.0], "best")


def test_downsample_by_mean_draws_one_point_per_bucket_at_its_mean():
    x = list(range(12))
    y = [0, 10, 2, 8, None, float("nan"), None, None, 5, 5, 5, 6]
    # 4 buckets of 3: (0, 10, 2), (8, gap, gap), (gap, gap, 5), (5, 5, 6)
    xs, ys = downsample(x, y, 4, keep="mean")
    assert xs == pytest.approx([1.0, 3.0, 8.0, 10.0]) and ys == pytest.approx([4.0, 8.0, 5.0, 16 / 3])
    xs, ys = downsample(x, [None] * 3 + y[3:], 4, keep="mean")
    assert xs[0] == 0 and ys[0] is None  # a bucket of gaps keeps its first x and a gap
    with pytest.raises(ValueError, match="neither"):
        downsample(x, y, 4, keep="median")


def test_a_smoothed_noisy_series_by_mean_is_a_line_not_a_band():
    """Through each bucket's extremes a smoothed noisy series zigzags over the band its
    noise spans; through its means it stays within a small part of it."""
    rng = np.random.default_rng(0)
    noisy = 1.0 + rng.normal(0, 0.5, 20_000)
    smooth = ema(noisy.tolist(), 0.6)
    _, band = downsample(range(20_000), smooth, 200)
    _, line = downsample(range(20_000), smooth, 200, keep="mean")
    zigzag = lambda ys: float(np.mean(np.abs(np.diff(ys))))  # noqa: E731
    assert zigzag(line) < 0.1 * zigzag(band)


def test_rows_extend_their_cached_columns_and_smoothing_as_rows_arrive():
    rows = [{"type": "step", "step": i, "loss": 1 / (i + 1) if i % 7 else None} for i in range(50)]
    table = Rows(rows[:20], kind="step")
    first = table.column("loss")
    smoothed = table.smoothed("loss", 0.9)
    table.extend(rows[20:])
    fresh = Rows(rows, kind="step")
    assert np.array_equal(table.column("loss"), fresh.column("loss"), equal_nan=True)
    assert np.allclose(table.smoothed("loss", 0.9), fresh.smoothed("loss", 0.9), equal_nan=True)
    expected = [math.nan if v is None else v for v in ema([r["loss"] for r in rows], 0.9)]
    assert np.allclose(table.smoothed("loss", 0.9), expected, equal_nan=True)
    assert len(first) == len(smoothed) == 20  # what was handed out earlier did not change
    with pytest.raises(ValueError):
        table.column("loss")[0] = 5.0  # read-only: a chart cannot spoil the cache
    del table[10:]  # not a way a history changes, but a shorter list is recomputed, not misread
    assert len(table.column("loss")) == len(table.smoothed("loss", 0.9)) == 10


def test_rows_keep_one_smoothing_a_key_and_any_weight_is_still_exact():
    """Each slider position used to keep its own full-length array (200,000 rows: 300 MiB)."""
    rows = [{"type": "step", "step": i, "loss": (i * 7919) % 13 / 13} for i in range(300)]
    table = Rows(rows, kind="step")
    for weight in (0.6, 0.9, 0.6, 0.0, 0.95):
        expected = ema([r["loss"] for r in rows], weight)
        assert np.allclose(table.smoothed("loss", weight), expected)
    assert len(table._smoothed) == 1
