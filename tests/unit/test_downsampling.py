"""The promises of domain/downsampling.py, on random data with spikes and gaps."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from domain.downsampling import downsample, rollup_points

NAN = float("nan")


def noisy_series(rng: np.random.Generator, n: int, gaps: int = 0, spikes: int = 0):
    ts = np.cumsum(rng.integers(1, 2_000, n)).astype(np.int64)
    values = np.cumsum(rng.normal(0, 1, n))
    spike_at = rng.choice(n, spikes, replace=False) if spikes else np.array([], dtype=np.int64)
    values[spike_at] += rng.choice([-1, 1], spikes) * 10_000
    for _ in range(gaps):
        start = int(rng.integers(0, n - 1))
        values[start:start + int(rng.integers(1, 50))] = NAN
    return ts, values, spike_at


def finite_runs(values: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, v in enumerate(values):
        if np.isfinite(v) and start is None:
            start = i
        if not np.isfinite(v) and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(values)))
    return runs


def assert_gaps_stay_gaps(values: np.ndarray, kept: np.ndarray) -> None:
    """Between two consecutive kept finite points there is no NaN unless a kept NaN lies between."""
    nan_before = np.cumsum(~np.isfinite(values))
    for a, b in zip(kept[:-1], kept[1:]):
        if np.isfinite(values[a]) and np.isfinite(values[b]):
            assert nan_before[b] == nan_before[a], f"a line from {a} to {b} crosses a gap"


def assert_budget(kept: np.ndarray, max_points: int) -> None:
    assert len(kept) <= max_points
    assert np.all(np.diff(kept) > 0)


@pytest.mark.parametrize("seed", range(20))
def test_runs_keep_their_ends_and_extremes_gaps_stay_gaps_within_budget(seed):
    rng = np.random.default_rng(seed)
    ts, values, _ = noisy_series(rng, int(rng.integers(3_000, 60_000)), gaps=int(rng.integers(0, 40)),
                                 spikes=int(rng.integers(0, 30)))
    max_points = int(rng.choice([500, 1_000, 2_000, 5_000]))
    kept = downsample(ts, values, max_points)
    assert_budget(kept, max_points)
    assert_gaps_stay_gaps(values, kept)
    kept_set = set(kept.tolist())
    for start, end in finite_runs(values):
        run = values[start:end]
        assert {start, end - 1} <= kept_set
        assert start + int(np.argmin(run)) in kept_set and start + int(np.argmax(run)) in kept_set
    assert int(np.nanargmax(values)) in kept_set and int(np.nanargmin(values)) in kept_set


@pytest.mark.parametrize("seed", range(10))
def test_isolated_spikes_survive_in_practice(seed):
    rng = np.random.default_rng(100 + seed)
    n = 100_000
    ts = np.arange(n, dtype=np.int64) * 1_000
    values = rng.normal(0, 1, n)
    spike_at = np.sort(rng.choice(np.arange(0, n, 1_000), 20, replace=False)) + rng.integers(0, 1_000, 20)
    values[spike_at] = rng.choice([-1, 1], 20) * 1_000
    kept = downsample(ts, values, 2_000)
    assert set(spike_at.tolist()) <= set(kept.tolist())


def test_fewer_points_than_the_budget_come_back_unchanged():
    values = np.array([1.0, NAN, NAN, 3.0, 2.0])
    assert downsample(np.arange(5), values, 10).tolist() == [0, 1, 2, 3, 4]
    assert downsample(np.arange(10), np.arange(10.0), 10).tolist() == list(range(10))
    assert downsample(np.array([], dtype=np.int64), np.array([]), 10).tolist() == []


def test_a_gap_in_a_long_series_is_kept_as_one_separator():
    values = np.sin(np.arange(10_000) / 100.0)
    values[4_000:6_000] = NAN
    kept = downsample(np.arange(10_000) * 100, values, 100)
    assert_budget(kept, 100)
    assert 4_000 in kept and not any(4_000 < k < 6_000 for k in kept)
    assert {3_999, 6_000, 0, 9_999} <= set(kept.tolist())


@pytest.mark.parametrize("seed", range(5))
def test_too_many_gaps_for_the_budget_fall_back_to_buckets_that_keep_gaps(seed):
    rng = np.random.default_rng(200 + seed)
    n = 50_000
    ts = np.arange(n, dtype=np.int64) * 1_000
    values = rng.normal(0, 1, n)
    values[rng.random(n) < 0.2] = NAN  # a flapping connection: thousands of short gaps
    values[123] = 50.0
    max_points = 1_000
    kept = downsample(ts, values, max_points)
    assert_budget(kept, max_points)
    assert_gaps_stay_gaps(values, kept)
    assert {0, n - 1, 123} <= set(kept.tolist())
    buckets = (max_points - 2) // 5
    bucket = (ts - ts[0]) * buckets // (ts[-1] - ts[0] + 1)
    kept_set = set(kept.tolist())
    for b in range(buckets):
        idx = np.flatnonzero((bucket == b) & np.isfinite(values))
        assert idx[np.argmax(values[idx])] in kept_set and idx[np.argmin(values[idx])] in kept_set


def test_a_budget_too_small_to_promise_anything_is_refused():
    with pytest.raises(ValueError, match="max_points"):
        downsample(np.arange(100), np.arange(100.0), 3)
    with pytest.raises(ValueError, match="values"):
        downsample(np.arange(3), np.arange(2.0), 10)


def rollup(*rows):
    """rows: (minute_ms, min, max, min_ts, max_ts, first, last, count, bad_count)"""
    columns = list(zip(*rows))
    names = ["minute_ms", "min", "max", "min_ts_ms", "max_ts_ms", "first", "last", "count", "bad_count"]
    return SimpleNamespace(**{name: np.array(col) for name, col in zip(names, columns)})


def test_rollup_rows_become_their_extremes_in_time_order_with_gaps():
    ts, values = rollup_points(rollup(
        (0, 1.0, 9.0, 50_000, 10_000, 5.0, 2.0, 60, 0),            # max before min
        (60_000, 3.0, 3.0, 61_000, 61_000, 3.0, NAN, 2, 1),        # one good sample, then lost
        (120_000, NAN, NAN, 0, 0, NAN, NAN, 1, 1),                 # only bad samples
        (600_000, 4.0, 6.0, 601_000, 602_000, NAN, 6.0, 5, 1),     # starts bad, recovers
    ))
    assert ts.tolist() == [10_000, 50_000, 61_000, 61_001, 120_000, 600_000, 601_000, 602_000]
    assert [None if np.isnan(v) else v for v in values] == [9.0, 1.0, 3.0, None, None, None, 4.0, 6.0]


def test_no_rollup_rows_no_points():
    empty = SimpleNamespace(**{k: np.array([]) for k in ["minute_ms", "min", "max", "min_ts_ms", "max_ts_ms",
                                                          "first", "last", "count", "bad_count"]})
    ts, values = rollup_points(empty)
    assert len(ts) == 0 and len(values) == 0
