"""Smoothing, downsampling and best-so-far for the live curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from resnet_core.dashboard.series import best_so_far, downsample, ema


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
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        kept = {v for xi, v in zip(xs, ys, strict=True) if start <= xi < end}
        assert kept == {y[start:end].min(), y[start:end].max()}


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
