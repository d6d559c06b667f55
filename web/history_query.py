"""A tag's history over any range: the historian's files on disk and the recent Redis stream as one
series, downsampled for a trend (query_history) or raw for an export (web/history_csv.py).

The two tiers:
- disk: historian.reader.HistoryReader over <data_dir> (raw samples, 1-minute rollups), read in a
  worker thread; missing or failing, the query answers from Redis alone and says so in `notes`.
- recent: the Redis stream sl:hist:<tag>, whose ids are receive times; it is read by id from
  start - RECEIVE_SKEW_MS to end + RECEIVE_SKEW_MS and filtered by source time. When the disk tier
  answered with samples, only what the disk cannot have yet is read: from (its newest sample's time -
  RECEIVE_SKEW_MS). The historian writes the feed in order, so every sample of the tag missing from
  its files was received after that newest one; a historian that is down or behind has files that
  end earlier, and Redis is read from earlier with them. The disk read comes first for that reason.
Samples present in both (the historian copies the same feed) appear once: exact duplicates (same
source time, value and quality) are dropped, everything else is kept; only the time span the two
tiers share is compared.

Resolution rule: when the disk tier estimates at most RAW_BUDGET_PER_PEN samples in the range, the
whole range is raw. Otherwise the newest part that fits the budget (by the estimate, assuming an even
rate; cut at a minute boundary) is raw and the older part comes from 1-minute rollups, each minute
drawn at its minimum and maximum (domain.downsampling.rollup_points). Either way the result is
downsampled to at most max_points (capped at MAX_POINTS_CAP) with peaks, dips and gaps kept.

Sources report on change, so a value holds until the next sample: the value in force at start_ms is
carried in as a point at start_ms, and the last value is held up to min(end, now) only while the tag
is live (web.trend_history.hold_to_now semantics). Bad samples are gaps (None), never a line.

When the historian is not writing history well (stopped, not running, disk failing, behind; judged
from its heartbeat, read once per query), `notes` says so first (web/historian_health.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import redis.asyncio as aioredis

from domain.config_model import DataType, Tag
from domain.downsampling import downsample, rollup_points
from domain.freshness import Freshness
from tag_store import keys
from domain.quality import quality_from_code
from tag_store.codec import decode_tag_dicts
from web.historian_health import flush_interval_of, historian_health_note, read_historian_health

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
DAY_MS = 86_400_000
RAW_BUDGET_PER_PEN = 200_000
DEFAULT_MAX_POINTS = 2_000
MIN_POINTS = 10
MAX_POINTS_CAP = 10_000
MAX_RANGE_MS = 366 * DAY_MS
# How far a sample's source time may lie from its receive time (the stream id) and still be found.
RECEIVE_SKEW_MS = 600_000
REDIS_PAGE = 10_000
BAD_CODE = 0x80000000


class HistoryQueryError(ValueError):
    """A query that cannot be answered as asked; str() says why (HTTP 400, the page's message)."""


class DiskTier(Protocol):
    """What query_history needs of historian.reader.HistoryReader."""

    def raw(self, tag: str, start_ms: int, end_ms: int) -> Any: ...
    def rollup(self, tag: str, start_ms: int, end_ms: int) -> Any: ...
    def count_estimate(self, tag: str, start_ms: int, end_ms: int) -> int: ...
    def last_sample_before(self, tag: str, ts_ms: int) -> tuple[int, float, int] | None: ...


@dataclass(frozen=True)
class PenHistory:
    """One pen's history over [start_ms, end_ms]: points in time order, None = gap (Bad, lost)."""

    tag: str
    unit: str
    start_ms: int
    end_ms: int
    ts_ms: list[int]
    values: list[float | None]
    # (from_ms, to_ms): from a Bad (Uncertain) sample to the next sample that is not, or the end.
    quality_bad_periods: list[tuple[int, int]]
    quality_uncertain_periods: list[tuple[int, int]]
    raw_count: int  # points before downsampling (rollup minutes count as their points)
    downsampled: bool
    resolution: str  # "raw", or "rollup_1min+raw" (rollups before raw_from_ms)
    raw_from_ms: int
    tiers: tuple[str, ...]  # which tiers answered: "disk", "redis"
    truncated: bool  # a read limit cut samples off (see notes)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Samples:
    """Parallel arrays in time order: source time, value (NaN = Bad or not a number), quality code."""

    ts_ms: np.ndarray
    value: np.ndarray
    quality: np.ndarray
    names: dict[int, str] = field(default_factory=dict)  # quality names a source gave (CSV)

    @staticmethod
    def empty() -> Samples:
        return Samples(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.uint32))

    def __len__(self) -> int:
        return len(self.ts_ms)

    def between(self, start_ms: int, end_ms: int) -> Samples:
        keep = (self.ts_ms >= start_ms) & (self.ts_ms <= end_ms)
        return Samples(self.ts_ms[keep], self.value[keep], self.quality[keep], self.names)


def is_bad(quality: np.ndarray) -> np.ndarray:
    return (quality.astype(np.uint32) >> 30) >= 2


def is_uncertain(quality: np.ndarray) -> np.ndarray:
    return (quality.astype(np.uint32) >> 30) == 1


def check_query(tag: Tag, start_ms: int, end_ms: int, max_points: int) -> int:
    """The max_points to use; HistoryQueryError for what cannot be answered."""
    check_range(tag, start_ms, end_ms)
    if max_points < MIN_POINTS:
        raise HistoryQueryError(f"max_points={max_points}: at least {MIN_POINTS}")
    return min(max_points, MAX_POINTS_CAP)


def check_range(tag: Tag, start_ms: int, end_ms: int) -> None:
    """HistoryQueryError for a tag or range that cannot be answered."""
    if tag.data_type == DataType.STRING:
        raise HistoryQueryError(f"'{tag.name}' is a text tag: text values are not trended")
    if end_ms <= start_ms:
        raise HistoryQueryError("the range must end after it starts")
    if end_ms - start_ms > MAX_RANGE_MS:
        raise HistoryQueryError(f"the range is {(end_ms - start_ms) / DAY_MS:.1f} days long; "
                                f"at most {MAX_RANGE_MS // DAY_MS} days")


# --- the recent tier: Redis ---------------------------------------------------------------------

def decode_entries(raws: list[bytes | str], names: dict[int, str]) -> Samples:
    """sl:hist entries (tag_store.codec's JSON) as Samples in entry order, all at once: a Bad sample's,
    a text's and a missing value are NaN, a bool is 1.0 / 0.0; names gets each quality code's name."""
    if not raws:
        return Samples.empty()
    dicts = decode_tag_dicts(raws)
    ts = np.fromiter((d["ts"] for d in dicts), np.int64, len(dicts))
    codes = np.fromiter((d["q"] for d in dicts), np.int64, len(dicts)) & 0xFFFFFFFF
    values = [d.get("v") for d in dicts]
    if any(type(v) is str for v in values):  # noqa: E721 - exact type is the fast test; subclasses below
        values = [None if isinstance(v, str) else v for v in values]
    value = np.array(values, dtype=np.float64)  # None -> NaN
    unique, first = np.unique(codes, return_index=True)
    bad = []
    for code, at in zip(unique.tolist(), first.tolist()):
        quality = quality_from_code(code, dicts[at].get("qn"))
        names.setdefault(quality.code, quality.name)
        if quality.is_bad:
            bad.append(code)
    if bad:
        value[np.isin(codes, bad)] = np.nan
    return Samples(ts, value, codes.astype(np.uint32), names)


def _entry_data(entries: list) -> list[bytes | str]:
    return [raw for _id, fields in entries if (raw := fields.get(b"d") or fields.get("d")) is not None]


async def read_recent(redis: aioredis.Redis, tag: Tag, start_ms: int, end_ms: int, max_entries: int,
                      *, disk_newest_ms: int | None = None,
                      ) -> tuple[Samples, tuple[int, float, int] | None, bool]:
    """Samples with source times in [start_ms, end_ms], the last one before start_ms (carry-in),
    and whether max_entries cut the read short (the oldest part is then kept, the newest missing).

    disk_newest_ms: the time of a sample of the tag the disk tier returned (its newest): entries
    received RECEIVE_SKEW_MS before it and earlier are on disk, so neither they nor a carry-in
    before them are read (see the module docstring)."""
    key = keys.history(tag.name)
    low_id = max(0, start_ms - RECEIVE_SKEW_MS)
    on_disk_before = disk_newest_ms is not None and disk_newest_ms - RECEIVE_SKEW_MS > low_id
    if on_disk_before:
        low_id = disk_newest_ms - RECEIVE_SKEW_MS
    cursor, raws, names, truncated = str(low_id), [], {}, False
    while True:
        page = await redis.xrange(key, min=cursor, max=str(end_ms + RECEIVE_SKEW_MS), count=REDIS_PAGE)
        raws.extend(_entry_data(page))
        if len(page) < REDIS_PAGE:
            break
        if len(raws) >= max_entries:
            truncated = True
            break
        last_id = page[-1][0]
        cursor = "(" + (last_id.decode() if isinstance(last_id, bytes) else last_id)
    samples = decode_entries(raws, names)
    carry = []
    before = np.flatnonzero(samples.ts_ms < start_ms)
    if len(before):
        at = before[np.argmax(samples.ts_ms[before])]  # the first of the newest (as max() picked)
        carry.append((int(samples.ts_ms[at]), float(samples.value[at]), int(samples.quality[at])))
    if low_id > 0 and not on_disk_before:
        older = decode_entries(_entry_data(await redis.xrevrange(key, max=f"({low_id}", count=1)), names)
        if len(older) and older.ts_ms[0] < start_ms:
            carry.append((int(older.ts_ms[0]), float(older.value[0]), int(older.quality[0])))
    carried = max(carry, key=lambda r: r[0]) if carry else None
    if not len(samples):
        return Samples.empty(), carried, truncated
    return sort_and_dedupe(samples).between(start_ms, end_ms), carried, truncated


# --- the disk tier: the historian's files -------------------------------------------------------

_readers: dict[Path, DiskTier] = {}
_failing: set[Path] = set()


def disk_tier_of(runtime) -> DiskTier | None:
    """The runtime's historian reader (one per data_dir and process), or None without a historian."""
    data_dir = Path(runtime.config.data_dir).resolve()
    if data_dir not in _readers:
        try:
            from historian.reader import HistoryReader  # noqa: PLC0415 - optional until the historian exists
        except ImportError:
            return None
        try:
            _readers[data_dir] = HistoryReader(data_dir)
        except Exception:  # noqa: BLE001 - without its files the recent tier still answers
            if data_dir not in _failing:
                log.exception("history: no historian reader for %s; answering from Redis alone", data_dir)
                _failing.add(data_dir)
            return None
    return _readers[data_dir]


@dataclass(frozen=True)
class DiskPart:
    raw: Samples
    rollup_ts: np.ndarray
    rollup_values: np.ndarray
    rollup_bad_periods: list[tuple[int, int]]
    raw_from_ms: int
    carried: tuple[int, float, int] | None


def series_samples(series: Any) -> Samples:
    """historian.reader.RawSeries as Samples."""
    return Samples(np.asarray(series.ts_ms, dtype=np.int64), np.asarray(series.value, dtype=np.float64),
                   np.asarray(series.quality, dtype=np.uint32))


def read_disk(reader: DiskTier, tag: str, start_ms: int, end_ms: int, raw_budget: int) -> DiskPart:
    """Blocking: all of one query's reads of the disk tier (run in a worker thread)."""
    estimate = reader.count_estimate(tag, start_ms, end_ms)
    rollup_ts, rollup_values = np.empty(0, np.int64), np.empty(0, np.float64)
    bad_periods: list[tuple[int, int]] = []
    raw_from_ms = start_ms
    if estimate > raw_budget:
        cut_ms = end_ms - (end_ms - start_ms) * raw_budget // estimate
        cut_ms -= cut_ms % MINUTE_MS
        if cut_ms > start_ms:
            rows = reader.rollup(tag, start_ms, cut_ms)
            minutes = np.asarray(rows.minute_ms, dtype=np.int64)
            in_use = (minutes < cut_ms) & (np.asarray(rows.count) > 0)
            rows = _select_rows(rows, in_use)
            rollup_ts, rollup_values = rollup_points(rows)
            inside = (rollup_ts >= start_ms) & (rollup_ts < cut_ms)
            rollup_ts, rollup_values = rollup_ts[inside], rollup_values[inside]
            bad_minutes = np.asarray(rows.minute_ms, dtype=np.int64)[np.asarray(rows.bad_count) > 0]
            bad_periods = [(max(int(m), start_ms), int(m) + MINUTE_MS) for m in bad_minutes]
            covered_to = int(rows.minute_ms[-1]) + MINUTE_MS if len(rows.minute_ms) else start_ms
            # Past the last rollup minute (a historian that was down) raw samples, e.g. Redis's, fill in.
            raw_from_ms = max(start_ms, min(cut_ms, covered_to))
    raw = series_samples(reader.raw(tag, raw_from_ms, end_ms)).between(raw_from_ms, end_ms)
    first_ms = int(rollup_ts[0]) if len(rollup_ts) else int(raw.ts_ms[0]) if len(raw) else None
    # The value in force at start_ms is only drawn when no sample lies at start_ms.
    carried = reader.last_sample_before(tag, start_ms) if first_ms != start_ms else None
    return DiskPart(raw, rollup_ts, rollup_values, bad_periods, raw_from_ms,
                    tuple(carried) if carried is not None else None)


def _select_rows(rows: Any, keep: np.ndarray) -> Any:
    names = ("minute_ms", "min", "max", "min_ts_ms", "max_ts_ms", "first", "last", "count", "bad_count")
    return type("Rows", (), {n: np.asarray(getattr(rows, n))[keep] for n in names})()


async def read_disk_or_note(reader: DiskTier | None, tag: str, start_ms: int, end_ms: int,
                            raw_budget: int) -> tuple[DiskPart | None, str | None]:
    """The disk part, or None and why; a failing disk tier is logged once loudly, then quietly."""
    if reader is None:
        return None, None
    key = Path(str(getattr(reader, "data_dir", id(reader))))
    try:
        part = await asyncio.to_thread(read_disk, reader, tag, start_ms, end_ms, raw_budget)
    except Exception as exc:  # noqa: BLE001 - the disk tier failing must not take the recent one down
        if key not in _failing:
            log.exception("history: the historian's files cannot be read; answering from Redis alone")
            _failing.add(key)
        else:
            log.debug("history: disk tier still failing: %s", exc)
        return None, f"older history unavailable (historian files: {exc})"
    if key in _failing:
        _failing.discard(key)
        log.info("history: the historian's files can be read again")
    return part, None


async def historian_note_of(runtime, now_ms: int) -> str | None:
    """A line when the historian is not writing history well (web/historian_health.py); None when it
    is, when no historian ever ran, or when its heartbeat cannot be read (the query goes on without)."""
    try:
        health = await read_historian_health(runtime.redis, now_ms, flush_interval_of(runtime.config))
    except Exception as exc:  # noqa: BLE001 - a note is never worth failing the query over
        log.debug("history: the historian's heartbeat cannot be read: %s", exc)
        return None
    return historian_health_note(health, now_ms)


# --- merging ------------------------------------------------------------------------------------

def sort_and_dedupe(samples: Samples) -> Samples:
    """Time order (stable: same-time samples keep their order) without exact duplicates."""
    if len(samples) == 0:
        return samples
    order = np.argsort(samples.ts_ms, kind="stable")
    ts, value, quality = samples.ts_ms[order], samples.value[order], samples.quality[order]
    bits = np.where(np.isnan(value), np.nan, value).view(np.int64)  # one NaN, so NaN equals NaN
    rows = np.stack([ts, quality.astype(np.int64), bits], axis=1)
    _, first = np.unique(rows, axis=0, return_index=True)
    keep = np.sort(first)
    return Samples(ts[keep], value[keep], quality[keep], samples.names)


def _concat(parts: list[Samples], names: dict[int, str]) -> Samples:
    return Samples(np.concatenate([p.ts_ms for p in parts]), np.concatenate([p.value for p in parts]),
                   np.concatenate([p.quality for p in parts]), names)


def _ordered(samples: Samples) -> Samples:
    """Strictly increasing times as they are; anything else sorted and deduped."""
    ts = samples.ts_ms
    return samples if len(ts) < 2 or np.all(ts[1:] > ts[:-1]) else sort_and_dedupe(samples)


def merge(first: Samples, second: Samples) -> Samples:
    """sort_and_dedupe(first + second), comparing only the time span both tiers hold: each tier is in
    order and without duplicates on its own, so outside that span nothing can be a duplicate."""
    names = {**first.names, **second.names}
    first, second = _ordered(first), _ordered(second)
    if not len(first) or not len(second):
        only = first if len(first) else second
        return Samples(only.ts_ms, only.value, only.quality, names)
    lo = max(int(first.ts_ms[0]), int(second.ts_ms[0]))
    hi = min(int(first.ts_ms[-1]), int(second.ts_ms[-1]))
    if lo > hi:  # apart: one after the other
        parts = [first, second] if first.ts_ms[0] < second.ts_ms[0] else [second, first]
        return _concat(parts, names)
    cuts = [(int(p.ts_ms.searchsorted(lo, "left")), int(p.ts_ms.searchsorted(hi, "right"))) for p in (first, second)]
    slices = [[Samples(p.ts_ms[a:b], p.value[a:b], p.quality[a:b]) for a, b in ((0, x), (x, y), (y, len(p)))]
              for p, (x, y) in zip((first, second), cuts)]
    shared = sort_and_dedupe(_concat([slices[0][1], slices[1][1]], names))
    return _concat([slices[0][0], slices[1][0], shared, slices[0][2], slices[1][2]], names)


def quality_periods(ts_ms: np.ndarray, flagged: np.ndarray, until_ms: int) -> list[tuple[int, int]]:
    """(from, to) per run of flagged samples: to the next sample's time, or until_ms for the last run."""
    edges = np.diff(np.concatenate(([0], flagged.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(ts_ms[s]), int(ts_ms[e]) if e < len(ts_ms) else max(until_ms, int(ts_ms[s])))
            for s, e in zip(starts, ends)]


def merge_periods(periods: list[tuple[int, int]], join_within_ms: int) -> list[tuple[int, int]]:
    """Overlapping periods, or ones closer than join_within_ms (below a pixel), as one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1] + join_within_ms:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def tag_is_live(runtime, name: str) -> bool:
    """Judged like the live board: a live (or uncertain) value may be held up to now."""
    return runtime.board.entries.get(name, {}).get("f") in (Freshness.LIVE, Freshness.UNCERTAIN)


# --- the query ----------------------------------------------------------------------------------

async def query_history(runtime, tag: Tag, start_ms: int, end_ms: int, max_points: int = DEFAULT_MAX_POINTS,
                        *, live: bool | None = None, now_ms: int | None = None,
                        reader: DiskTier | None = None) -> PenHistory:
    """One pen over [start_ms, end_ms] from both tiers (see the module docstring).

    live: whether the tag's value is live now (default: judged from runtime.board); reader: the
    disk tier (default: the runtime's historian reader, if there is a historian).
    Raises HistoryQueryError for a query that cannot be answered; RedisError/OSError if Redis is away.
    """
    max_points = check_query(tag, start_ms, end_ms, max_points)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    reader = reader if reader is not None else disk_tier_of(runtime)
    recent_limit = 2 * runtime.config.history_samples_per_tag + REDIS_PAGE

    async def read_tiers():
        disk, disk_note = await read_disk_or_note(reader, tag.name, start_ms, end_ms, RAW_BUDGET_PER_PEN)
        newest_ms = int(disk.raw.ts_ms[-1]) if disk is not None and len(disk.raw) else None
        return disk, disk_note, await read_recent(runtime.redis, tag, start_ms, end_ms, recent_limit,
                                                  disk_newest_ms=newest_ms)

    (disk, disk_note, (recent, recent_carry, truncated)), historian_note = await asyncio.gather(
        read_tiers(), historian_note_of(runtime, now_ms))
    notes = [n for n in (historian_note, disk_note) if n]
    if truncated:
        notes.append(f"the recent tier was read up to its limit of {recent_limit} samples")
    raw_from_ms = disk.raw_from_ms if disk else start_ms
    raw = merge(disk.raw if disk else Samples.empty(), recent.between(raw_from_ms, end_ms))
    rollup_ts = disk.rollup_ts if disk else np.empty(0, np.int64)
    rollup_values = disk.rollup_values if disk else np.empty(0, np.float64)

    carries = [c for c in ((disk.carried if disk else None), recent_carry) if c is not None]
    carried = max(carries, key=lambda c: c[0]) if carries else None
    first_ms = min([int(a[0]) for a in (rollup_ts, raw.ts_ms) if len(a)], default=None)
    lead = Samples.empty()
    if carried is not None and (first_ms is None or first_ms > start_ms):
        _ts, value, quality = carried
        bad = bool(is_bad(np.array([quality]))[0])
        lead = Samples(np.array([start_ms], np.int64), np.array([np.nan if bad else value], np.float64),
                       np.array([quality], np.uint32))

    ts = np.concatenate([lead.ts_ms, rollup_ts, raw.ts_ms])
    values = np.concatenate([lead.value, rollup_values, raw.value])
    quality = np.concatenate([lead.quality, np.where(np.isnan(rollup_values), BAD_CODE, 0).astype(np.uint32),
                              raw.quality])
    hold_until_ms = min(end_ms, now_ms)
    if live is None:
        live = tag_is_live(runtime, tag.name)
    if live and len(ts) and np.isfinite(values[-1]) and ts[-1] < hold_until_ms:
        ts, values, quality = (np.append(ts, hold_until_ms), np.append(values, values[-1]),
                               np.append(quality, quality[-1]))

    # Rollup gaps count as Bad (quality above) from the gap to the next point, as drawn; a minute with
    # bad samples but no drawn gap adds that minute.
    join_ms = (end_ms - start_ms) // max_points
    bad_periods = merge_periods(quality_periods(ts, is_bad(quality), hold_until_ms)
                                + (disk.rollup_bad_periods if disk else []), join_ms)
    uncertain_periods = merge_periods(quality_periods(ts, is_uncertain(quality), hold_until_ms), join_ms)

    kept = downsample(ts, values, max_points)
    tiers = tuple(name for name, answered in (("disk", disk is not None), ("redis", True)) if answered)
    return PenHistory(
        tag=tag.name, unit=tag.unit or "", start_ms=start_ms, end_ms=end_ms,
        ts_ms=ts[kept].tolist(),
        values=[None if np.isnan(v) else v for v in values[kept].tolist()],
        quality_bad_periods=bad_periods, quality_uncertain_periods=uncertain_periods,
        raw_count=len(ts), downsampled=len(kept) < len(ts),
        resolution="rollup_1min+raw" if raw_from_ms > start_ms else "raw", raw_from_ms=raw_from_ms,
        tiers=tiers, truncated=truncated, notes=tuple(notes),
    )
