"""Fewer points for a trend without losing what an operator looks for: peaks, dips and gaps.

`downsample(ts_ms, values, max_points)` returns the indices to keep, in time order. A NaN value is
a gap (Bad quality, communication loss). What it promises, and tests/unit/test_downsampling.py checks
on random data with spikes:

1. At most `max_points` indices, strictly increasing. A series of `max_points` points or fewer comes
   back whole (every index).
2. Gaps stay gaps: the first NaN of every run of NaNs is kept, so between two consecutive kept finite
   points there is never a NaN of the original unless a kept NaN lies between them: a line drawn
   through the kept points (connectgaps off) never crosses a gap.
3. Every finite run (the points between two gaps) keeps its first and its last point, its minimum and
   its maximum; so the series' global minimum and maximum are always kept.
4. The rest of a run's share of the budget (shares in proportion to run length) is chosen by
   MinMaxLTTB (tsdownsample: a min/max preselection of 4 points per output point, then
   Largest-Triangle-Three-Buckets). A spike that stands out from everything else in its LTTB bucket
   survives in practice; only 3. is a promise.
5. When there are too many gaps for that (more finite runs than max_points // 5), time buckets take
   over: max_points // 5 buckets of equal width, each keeping its minimum and maximum, its first NaN
   and the first NaN after each kept extreme. Then 1. and 2. hold, and instead of 3.: every bucket's
   minimum and maximum are kept, and the first and last point of the series.

`rollup_points` turns 1-minute rollup rows into points at the times of each minute's minimum and
maximum, so extremes survive at that resolution too (see its docstring for the gaps).

Pure numpy (and tsdownsample): no I/O, nothing from the outer layers.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
from tsdownsample import MinMaxLTTBDownsampler

MIN_POINTS_PER_RUN = 4  # first, last, min, max
MINMAX_RATIO = 4
_LTTB = MinMaxLTTBDownsampler()


def downsample(ts_ms: np.ndarray, values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices (int64, increasing) of at most max_points points to keep; see the module docstring."""
    ts_ms = np.ascontiguousarray(ts_ms, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    if len(ts_ms) != len(values):
        raise ValueError(f"ts_ms has {len(ts_ms)} points, values {len(values)}")
    if max_points < 2 * MIN_POINTS_PER_RUN:
        raise ValueError(f"max_points={max_points}: at least {2 * MIN_POINTS_PER_RUN}")
    n = len(values)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    finite = np.isfinite(values)
    run_starts, run_ends = _runs(finite)  # finite runs, end exclusive
    gap_starts, _ = _runs(~finite)
    if len(run_starts) * (MIN_POINTS_PER_RUN + 1) > max_points:
        return _bucketed(ts_ms, values, finite, max_points)
    budget = max_points - len(gap_starts)
    shares = _shares(run_ends - run_starts, budget)
    kept = [gap_starts]
    for start, end, share in zip(run_starts, run_ends, shares):
        kept.append(start + _run_indices(ts_ms[start:end], values[start:end], int(share)))
    return np.unique(np.concatenate(kept).astype(np.int64))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of the runs of True in mask."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _shares(lengths: np.ndarray, budget: int) -> np.ndarray:
    """Points per run: at least min(length, 4) each, the rest in proportion to length; sum <= budget."""
    base = np.minimum(lengths, MIN_POINTS_PER_RUN)
    need = lengths - base
    spare, total_need = budget - int(base.sum()), int(need.sum())
    if spare >= total_need:
        return lengths
    return base + (need * spare) // max(total_need, 1)


def _run_indices(ts_ms: np.ndarray, values: np.ndarray, share: int) -> np.ndarray:
    """At most share indices into one finite run: first, last, min, max, the rest by MinMaxLTTB."""
    n = len(values)
    if share >= n:
        return np.arange(n, dtype=np.int64)
    forced = np.unique(np.array([0, n - 1, int(np.argmin(values)), int(np.argmax(values))], dtype=np.int64))
    lttb_points = share - (len(forced) - 2)  # MinMaxLTTB keeps the first and last itself
    if lttb_points < 3:
        return forced
    chosen = _LTTB.downsample(ts_ms, values, n_out=lttb_points, minmax_ratio=MINMAX_RATIO)
    return np.union1d(forced, chosen.astype(np.int64))


def _bucketed(ts_ms: np.ndarray, values: np.ndarray, finite: np.ndarray, max_points: int) -> np.ndarray:
    """Many gaps: per equal-time bucket its min and max, its first NaN and the first NaN after each."""
    buckets = max(1, (max_points - 2) // 5)
    span = int(ts_ms[-1] - ts_ms[0]) + 1
    bucket = ((ts_ms - ts_ms[0]).astype(np.float64) * buckets / span).astype(np.int64)
    finite_idx = np.flatnonzero(finite)
    nan_idx = np.flatnonzero(~finite)
    kept = [np.array([0, len(values) - 1], dtype=np.int64)]
    if len(finite_idx):
        order = finite_idx[np.lexsort((values[finite_idx], bucket[finite_idx]))]
        sorted_buckets = bucket[order]
        firsts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1]])
        lasts = np.r_[firsts[1:] - 1, len(order) - 1]
        extremes = np.union1d(order[firsts], order[lasts])
        kept.append(extremes)
        if len(nan_idx):
            after = np.searchsorted(nan_idx, extremes, side="right")
            kept.append(nan_idx[after[after < len(nan_idx)]])
    if len(nan_idx):
        _, first_of_bucket = np.unique(bucket[nan_idx], return_index=True)
        kept.append(nan_idx[first_of_bucket])
    return np.unique(np.concatenate(kept))


class RollupRows(Protocol):
    """1-minute rollup rows (historian.reader.RollupSeries): parallel arrays, one row per minute."""

    minute_ms: np.ndarray
    min: np.ndarray
    max: np.ndarray
    min_ts_ms: np.ndarray
    max_ts_ms: np.ndarray
    first: np.ndarray
    last: np.ndarray
    count: np.ndarray
    bad_count: np.ndarray


def rollup_points(rollup: RollupRows) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ms, values) in time order from 1-minute rows, extremes at their own times.

    A minute with good samples gives its minimum at min_ts and its maximum at max_ts (one point when
    they coincide). Gaps: a minute with only bad samples gives a NaN at its start; a minute that
    starts bad (first is NaN) gets a NaN at its start before its extremes, and one that ends bad
    (last is NaN) a NaN just after its later extreme, so a communication loss that outlasts the
    minute shows as a gap up to the next minute with data, never as a straight line.
    """
    minute = np.asarray(rollup.minute_ms, dtype=np.int64)
    count = np.asarray(rollup.count, dtype=np.int64)
    good = (count - np.asarray(rollup.bad_count, dtype=np.int64)) > 0
    lo_ts = np.asarray(rollup.min_ts_ms, dtype=np.float64)
    hi_ts = np.asarray(rollup.max_ts_ms, dtype=np.float64)
    lo = np.asarray(rollup.min, dtype=np.float64)
    hi = np.asarray(rollup.max, dtype=np.float64)
    first_bad = ~np.isfinite(np.asarray(rollup.first, dtype=np.float64))
    last_bad = ~np.isfinite(np.asarray(rollup.last, dtype=np.float64))
    early_is_lo = lo_ts <= hi_ts
    early_ts = np.where(early_is_lo, lo_ts, hi_ts)
    late_ts = np.where(early_is_lo, hi_ts, lo_ts)
    # Slots per row, in time order: gap at start, earlier extreme, later extreme, gap at the end.
    slots = [
        ((count > 0) & (~good | first_bad), minute.astype(np.float64), np.full(len(minute), np.nan)),
        (good, early_ts, np.where(early_is_lo, lo, hi)),
        (good & (lo_ts != hi_ts), late_ts, np.where(early_is_lo, hi, lo)),
        (good & last_bad, late_ts + 1, np.full(len(minute), np.nan)),
    ]
    ts = np.concatenate([t[m] for m, t, _ in slots]).astype(np.int64)
    vals = np.concatenate([v[m] for m, _, v in slots])
    slot = np.concatenate([np.full(int(m.sum()), i) for i, (m, _, _) in enumerate(slots)])
    order = np.lexsort((slot, ts))
    return ts[order], vals[order]
