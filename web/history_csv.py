"""Raw history of several pens as CSV: one row per sample, from both tiers (web/history_query.py).

Columns: time (ISO 8601 UTC, milliseconds), tag, value, quality (StatusCode), quality_name. Rows are
in time order across the pens. A Bad sample, or one without a number, has an empty value. Only the
samples themselves: no carried-in or held value.

At most CSV_CAP_ROWS rows. Beyond that the export keeps the oldest rows and ends with one line
"# truncated: ..." saying where it stops; the range is first narrowed by the historian's estimate
so that no more than about the cap is read from disk.
"""
from __future__ import annotations

import asyncio
import csv
import io
import time
from dataclasses import dataclass

import numpy as np

from domain.config_model import DataType, Tag
from domain.quality import quality_from_code
from web.history_query import (
    DiskTier, HistoryQueryError, Samples, check_range, disk_tier_of, merge, read_recent, series_samples,
)

CSV_CAP_ROWS = 500_000
HEADER = ("time", "tag", "value", "quality", "quality_name")


@dataclass(frozen=True)
class HistoryCsv:
    text: str
    rows: int
    truncated: bool
    notes: tuple[str, ...] = ()


def iso_times(ts_ms: np.ndarray) -> list[str]:
    return [t + "Z" for t in np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms").tolist()]


def _value_text(tag: Tag, value: float) -> str:
    if value != value:  # NaN
        return ""
    if tag.data_type in (DataType.INT, DataType.BOOL) and float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _estimated_end(reader: DiskTier, tags: list[Tag], start_ms: int, end_ms: int, cap_rows: int) -> int:
    """Blocking: the latest end whose estimated samples (all pens) fit cap_rows (bisection)."""
    def estimate(end: int) -> int:
        return sum(reader.count_estimate(t.name, start_ms, end) for t in tags)

    if estimate(end_ms) <= cap_rows:
        return end_ms
    low, high = start_ms, end_ms
    while high - low > 1_000:
        middle = (low + high) // 2
        low, high = (middle, high) if estimate(middle) <= cap_rows else (low, middle)
    return low


def _read_disk_raw(reader: DiskTier, tags: list[Tag], start_ms: int, end_ms: int) -> list[Samples]:
    return [series_samples(reader.raw(t.name, start_ms, end_ms)).between(start_ms, end_ms) for t in tags]


async def raw_history_csv(runtime, tags: list[Tag], start_ms: int, end_ms: int, cap_rows: int = CSV_CAP_ROWS,
                          *, reader: DiskTier | None = None) -> HistoryCsv:
    """The raw samples of tags over [start_ms, end_ms] as CSV text (see the module docstring)."""
    if not tags:
        raise HistoryQueryError("choose at least one tag")
    for tag in tags:
        check_range(tag, start_ms, end_ms)
    if cap_rows < 1:
        raise HistoryQueryError(f"cap_rows={cap_rows}: at least 1")
    reader = reader if reader is not None else disk_tier_of(runtime)
    notes: list[str] = []
    read_end_ms = end_ms
    disk_parts: list[Samples] = [Samples.empty() for _ in tags]
    if reader is not None:
        try:
            read_end_ms = await asyncio.to_thread(_estimated_end, reader, tags, start_ms, end_ms, cap_rows)
            disk_parts = await asyncio.to_thread(_read_disk_raw, reader, tags, start_ms, read_end_ms)
        except Exception as exc:  # noqa: BLE001 - export what Redis has, and say what is missing
            notes.append(f"older history unavailable (historian files: {exc})")
            read_end_ms = end_ms
    recent_limit = 2 * runtime.config.history_samples_per_tag + 10_000
    recents = await asyncio.gather(*(read_recent(runtime.redis, t, start_ms, read_end_ms, recent_limit)
                                     for t in tags))
    series = [merge(disk, recent) for disk, (recent, _carry, _cut) in zip(disk_parts, recents)]
    truncated = read_end_ms < end_ms or any(cut for _s, _c, cut in recents)

    ts = np.concatenate([s.ts_ms for s in series])
    pen = np.concatenate([np.full(len(s), i) for i, s in enumerate(series)]).astype(np.int64)
    order = np.lexsort((pen, ts))
    if len(order) > cap_rows:
        order, truncated = order[:cap_rows], True
    values = np.concatenate([s.value for s in series])[order]
    quality = np.concatenate([s.quality for s in series])[order]
    ts, pen = ts[order], pen[order]
    names: dict[int, str] = {}
    for s in series:
        names.update(s.names)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for when, i, value, code in zip(iso_times(ts), pen.tolist(), values.tolist(), quality.tolist()):
        name = names.get(code) or quality_from_code(code).name
        writer.writerow((when, tags[i].name, _value_text(tags[i], value), code, name))
    if truncated:
        last = iso_times(ts[-1:])[0] if len(ts) else iso_times(np.array([start_ms]))[0]
        out.write(f"# truncated: at most {cap_rows} rows; the export stops at {last}. "
                  "Narrow the range or choose fewer tags for the rest.\n")
    for note in notes:
        out.write(f"# {note}\n")
    return HistoryCsv(out.getvalue(), len(order), truncated, tuple(notes))


def csv_filename(tags: list[Tag], start_ms: int, end_ms: int) -> str:
    stamp = "-".join(time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ms / 1000)) for ms in (start_ms, end_ms))
    first = tags[0].name if len(tags) == 1 else f"{len(tags)}-tags"
    return f"history-{first}-{stamp}.csv"
