"""Compaction: many small files of a partition become one sorted file with its 1-minute rollups.

compact(data_dir, now_ms, grace_ms) does, in order:
1. A closed hour (end + grace <= now) with segments, or with more than one hour file, is merged into
   one hour file: rows sorted by (tag, time), exact duplicates (tag, time, value, quality) dropped,
   rollups beside it, the greatest entry id of its inputs in its name. Late samples for an hour that
   was compacted already arrive as new segments and are merged in on a later pass the same way.
2. An open hour with SEGMENT_MERGE_FILES fresh segments or more has them merged into one run
   (run-<entry id>.parquet), and RUN_MERGE_FILES runs into one, so a reader of the current hour opens
   at most about 55 files and each sample is rewritten only a few times before its hour closes.
3. A closed day with hour files (or more than one day file) is merged into one day file, streamed
   tag chunk by tag chunk (DAY_CHUNK_ROWS rows at a time), so memory stays bounded for any plant size.
   A day query of one tag then reads one file and one or two row groups.
4. Temp files and orphaned rollup files older than STALE_AFTER_S (left by a crash) are deleted; a
   file whose footer cannot be read is moved to <root>/quarantine/ with an error logged.

Crash safety: the output is written to a temp file and renamed into place (rollups first, then the
data file) before any input is deleted, so every sample is always in at least one complete file. A
crash between leaves old and new side by side: readers and the next compaction drop the duplicates,
and the cursor (the greatest entry id in any name) is the same in both.
"""
from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from historian.parquet_files import (
    ROLLUP_COLUMNS, SAMPLE_COLUMNS, FileIndex, TagFileWriter, TagRows, grouped_samples, read_all, read_index,
    read_tags, write_tag_rows,
)
from historian.paths import (
    DAY_MS, HOUR_MS, DataFile, day_name, format_entry_id, fsync_dir, hour_name, list_files, root_of, unique_stem,
)
from historian.rollups import rollup_rows

log = logging.getLogger(__name__)

SEGMENT_MERGE_FILES = 48
RUN_MERGE_FILES = 8
DAY_CHUNK_ROWS = 2_000_000
STALE_AFTER_S = 600


def write_compacted_file(directory: Path, partition: str, entry: str, rows: TagRows) -> Path:
    """A compacted file with its rollups: the rollup file first, so a data file always has its rollups."""
    stem = unique_stem(directory, f"{partition}.{entry}", (".parquet", ".rollup.parquet"))
    write_tag_rows(directory / f"{stem}.rollup.parquet", rollup_rows(rows), ROLLUP_COLUMNS, "minute_ms")
    return write_tag_rows(directory / f"{stem}.parquet", rows, SAMPLE_COLUMNS, "ts_ms")


def compact(data_dir: Path, now_ms: int, grace_ms: int = 300_000) -> int:
    """Merge what can be merged (see the module docstring); returns how many partitions were merged."""
    root = root_of(data_dir)
    listing = list_files(root)
    _remove_stale(listing.temp_files + listing.orphan_rollups)
    merged = 0
    by_hour: dict[int, list[DataFile]] = defaultdict(list)
    for f in listing.files:
        if f.level != "day":
            by_hour[f.start_ms].append(f)
    for hour_ms, files in sorted(by_hour.items()):
        segments = [f for f in files if f.level == "segment"]
        if hour_ms + HOUR_MS + grace_ms <= now_ms:
            if segments or len(files) > 1:
                rows = _merged_rows(files)
                write_compacted_file(root / "hours", hour_name(hour_ms), _entry(files), rows)
                _remove_inputs(files)
                merged += 1
        else:
            fresh = [f for f in segments if f.path.name.startswith("seg-")]
            runs = [f for f in segments if f.path.name.startswith("run-")]
            inputs = fresh if len(fresh) >= SEGMENT_MERGE_FILES else runs if len(runs) >= RUN_MERGE_FILES else []
            if inputs:
                directory = root / "segments" / hour_name(hour_ms)
                stem = unique_stem(directory, f"run-{_entry(inputs)}")
                write_tag_rows(directory / f"{stem}.parquet", _merged_rows(inputs), SAMPLE_COLUMNS, "ts_ms")
                _remove_inputs(inputs)
                merged += 1
    for day_ms, files in sorted(_files_by_day(root).items()):
        if day_ms + DAY_MS + grace_ms <= now_ms and (len(files) > 1 or files[0].level == "hour"):
            _merge_day(root / "days", day_ms, files)
            _remove_inputs(files)
            merged += 1
    return merged


def compact_complete_days(data_dir: Path, days_ms: set[int], now_ms: int, grace_ms: int = 300_000) -> int:
    """Merge those of days_ms that are closed, have no segments and have (at least) 24 hour files: a
    bulk load that completed a day. Returns days merged."""
    root = root_of(data_dir)
    merged = 0
    for day_ms, files in sorted(_files_by_day(root, with_segments=True).items()):
        hours = [f for f in files if f.level == "hour"]
        if (day_ms in days_ms and day_ms + DAY_MS + grace_ms <= now_ms and len(hours) >= 24
                and not any(f.level == "segment" for f in files)):
            _merge_day(root / "days", day_ms, files)
            _remove_inputs(files)
            merged += 1
    return merged


def _files_by_day(root: Path, with_segments: bool = False) -> dict[int, list[DataFile]]:
    by_day: dict[int, list[DataFile]] = defaultdict(list)
    for f in list_files(root).files:
        if with_segments or f.level != "segment":
            by_day[f.start_ms // DAY_MS * DAY_MS].append(f)
    return by_day


def _entry(files: list[DataFile]) -> str:
    return format_entry_id(max(f.entry for f in files))


def _readable(files: list[DataFile]) -> list[tuple[DataFile, FileIndex]]:
    """files with their indexes; one whose footer cannot be read is moved to <root>/quarantine/ with an
    error logged, so one damaged file does not stop every later compaction."""
    readable = []
    for f in files:
        try:
            readable.append((f, read_index(f.path)))
        except FileNotFoundError:
            raise
        except Exception:  # noqa: BLE001 - whatever pyarrow says about a damaged file
            quarantine = f.path.parents[2 if f.level == "segment" else 1] / "quarantine"
            quarantine.mkdir(exist_ok=True)
            os.replace(f.path, quarantine / f"{f.path.parent.name}.{f.path.name}")
            log.exception("historian: %s cannot be read; moved to %s, its samples are not in the history",
                          f.path, quarantine)
    return readable


def _merged_rows(files: list[DataFile]) -> TagRows:
    """Every row of files as one TagRows, grouped by tag, time order, exact duplicates dropped."""
    names: dict[str, int] = {}
    parts = []
    for f, index in sorted(_readable(files), key=lambda item: (item[0].level != "hour", item[0].entry)):
        rows = read_all(f.path, index)
        mapping = np.array([names.setdefault(n, len(names)) for n in rows.names], dtype=np.int32)
        parts.append((mapping[rows.codes] if len(mapping) else rows.codes, rows.columns))
    return _grouped(list(names), parts)


def _grouped(names: list[str], parts: list[tuple[np.ndarray, dict[str, np.ndarray]]]) -> TagRows:
    if not parts:
        return TagRows(names, np.empty(0, np.int32), {c: np.empty(0, t.to_pandas_dtype())
                                                       for c, t in SAMPLE_COLUMNS.items()})
    codes = np.concatenate([p[0] for p in parts]).astype(np.int32)
    order = np.argsort(codes, kind="stable")  # inputs in time order: usually sorted after this alone
    columns = {c: np.concatenate([p[1][c] for p in parts])[order] for c in SAMPLE_COLUMNS}
    return grouped_samples(codes[order], names, columns["ts_ms"], columns["value"], columns["quality"])


def _merge_day(directory: Path, day_ms: int, files: list[DataFile]) -> Path | None:
    """One day file (and rollups) from the day's files, tag chunk by tag chunk."""
    readable = sorted(_readable(files), key=lambda item: (item[0].start_ms, item[0].entry))
    if not readable:
        return None
    files, indexes = [f for f, _i in readable], [i for _f, i in readable]
    names: dict[str, int] = {}
    rows_of: list[int] = []
    for index in indexes:
        for name, count in zip(index.names, index.count.tolist()):
            code = names.setdefault(name, len(names))
            if code == len(rows_of):
                rows_of.append(0)
            rows_of[code] += count
    all_names = list(names)
    stem = unique_stem(directory, f"{day_name(day_ms)}.{_entry(files)}", (".parquet", ".rollup.parquet"))
    with (TagFileWriter(directory / f"{stem}.parquet", SAMPLE_COLUMNS, "ts_ms") as data,
          TagFileWriter(directory / f"{stem}.rollup.parquet", ROLLUP_COLUMNS, "minute_ms") as rollups):
        chunk_start = 0
        while chunk_start < len(all_names):
            chunk_end, rows = chunk_start, 0
            while chunk_end < len(all_names) and (rows < DAY_CHUNK_ROWS or chunk_end == chunk_start):
                rows += rows_of[chunk_end]
                chunk_end += 1
            parts = []
            for f, index in zip(files, indexes):
                positions = [index.positions[n] for n in all_names[chunk_start:chunk_end] if n in index.positions]
                if not positions:
                    continue
                owner, columns = read_tags(f.path, index, sorted(positions), list(SAMPLE_COLUMNS))
                to_global = np.array([names[n] for n in index.names], dtype=np.int32)
                parts.append((to_global[owner], columns))
            chunk = _grouped(all_names, parts)
            data.append(chunk)
            rollups.append(rollup_rows(chunk))
            chunk_start = chunk_end
        rollups.commit()
        return data.commit()


def _remove_inputs(files: list[DataFile]) -> None:
    directories = set()
    for f in files:
        for path in (f.path, f.rollup_path):
            if path is not None:
                path.unlink(missing_ok=True)
                directories.add(path.parent)
    for directory in directories:
        fsync_dir(directory)
        if directory.parent.name == "segments":
            try:
                directory.rmdir()  # only when empty: a writer may just have added a segment
            except OSError:
                pass


def _remove_stale(paths: list[Path]) -> None:
    cutoff = time.time() - STALE_AFTER_S
    for path in paths:
        try:
            if os.stat(path).st_mtime < cutoff:
                path.unlink()
                log.info("historian: removed %s, left by an interrupted write", path)
        except FileNotFoundError:
            pass
