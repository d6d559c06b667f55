"""HistoryReader: one tag's history from the historian's files, what web/history_query.py reads.

Every call lists the partitions its range overlaps (a few directory scans: days/, hours/, and the
segment hours in range), so files written or renamed by the historian in another process are seen at
once. A file's tag index (parquet_files.FileIndex, small) is parsed once and cached by path, inode,
mtime and size; files are never rewritten in place, so a cached index is valid while the file is.
The parsed Parquet footers, much bigger, are kept in an LRU bounded by FOOTER_CACHE_BYTES.
A file that vanishes between listing and reading (a compaction moved its rows into a bigger file)
makes the call list again and retry (RETRY_PAUSES_S: up to four times within 0.3 s). A file whose
footer cannot be read is logged once and skipped.

raw(): samples in [start, end] from every file that has the tag (segments, hours, days), in time
order, exact duplicates (a crash between a compaction's write and its deletes) dropped.
rollup(): stored 1-minute rollups wherever one compacted file alone holds the tag's hour; hours with
more (segments, late samples, an interrupted compaction) are rolled up from raw(), so the answer is
the same either way. Stored rollups are decoded once per (file, tag) and kept in a bounded LRU cache
(ROLLUP_CACHE_BYTES): compacted files never change, and decoding nine narrow columns costs more
than the rows themselves (about 0.4 ms per file and tag), so a month of pens would cost 100 ms each time.

raw() and last_sample_before() read a tag's rows of a file whole, once, and keep them decoded in a
bounded LRU (RAW_CACHE_BYTES; files never change, so a repeated trend reads no file). A file opened
for one tag also yields the rows of the other tags asked for lately (a trend's pens, asked at once),
and threads wanting the same file's index, footer or rows wait for the one reading it: each file's
footer is parsed once per query, not once per pen (an hour of 1000 tags: 180 kB, ~1 ms; 426 kB and
~3 ms for files written one tag a row group, before 2026-12). A thread first takes the files no other
thread is reading (their indexes, then their rows), and only then waits for the others, so pens asked
at once read different files side by side instead of queueing for the same one in turn.

Measured on the shared 2-core development machine (1000 tags at 1 s, the open day in 16 hour files,
bench/history_query.py's data): raw() of 8 tags over 24 h (690k samples) 7 ms warm (530 ms before the
samples were kept: every hour file's footer parsed again for every pen), about 0.15 s from a new reader
with the 8 tags asked at once and the files not in the page cache (0.3 s with one tag a row group and
the pens queueing file by file); rollup() of 8 tags over 30 days 22 ms warm.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow.parquet as pq

from historian.parquet_files import (
    ROLLUP_COLUMNS, SAMPLE_COLUMNS, FileIndex, TagRows, canonical_bits, read_index, read_tags,
)
from historian.paths import HOUR_MS, MINUTE_MS, DataFile, list_files, root_of
from historian.rollups import rollup_rows

log = logging.getLogger(__name__)

T = TypeVar("T")
_BUSY = object()  # _index_entry(wait=False): another thread is reading that index now
_LEVEL_ORDER = {"day": 0, "hour": 1, "segment": 2}
_CACHE_LIMIT = 4_096
# Parsed Parquet footers take about eight times their size in memory (7 MB for a day of 1000 tags
# before row groups were made fewer): only the most recently used are kept, the rest parsed on open.
FOOTER_CACHE_BYTES = 48 * 2 ** 20
FOOTER_MEMORY_FACTOR = 8
# A compaction deletes its inputs one by one after writing its output: a listing taken meanwhile can
# still hold some of them, so a vanished file makes the reader list again, after these pauses.
RETRY_PAUSES_S = (0.0, 0.01, 0.05, 0.2)
# Decoded rollups of one tag in one compacted file (a day: 1,440 rows, 100 kB), least recently used
# dropped beyond this: a month of eight pens is 24 MB, and a repeated trend query reads no file.
ROLLUP_CACHE_BYTES = 64 * 2 ** 20
# Decoded samples of one tag in one file (an hour of a 1 s tag: 3,600 rows, 72 kB; a day: 1.7 MB),
# least recently used dropped beyond this: 24 h of eight 1 s pens is 14 MB. Files are never rewritten,
# so a repeated query reads no file; without it every query re-parses the footers of the day's hour
# files (4 MB each in memory for 1000 tags, too many for FOOTER_CACHE_BYTES), about 3 ms a file.
# A tag's rows in one file bigger than an eighth of it are read by range, not kept.
RAW_CACHE_BYTES = 96 * 2 ** 20
_SAMPLE_ROW_BYTES = 20
# A trend asks for its pens together (a request each, at once): a file opened for one tag's rows also
# yields those of the other tags asked for within COMPANION_WINDOW_S (at most COMPANION_TAGS), so a
# day's hour files are opened (and their footers parsed) about once, not once per pen.
COMPANION_TAGS = 16
COMPANION_WINDOW_S = 30.0


@dataclass(frozen=True)
class RawSeries:
    """Samples in time order: ts_ms int64, value float64 (NaN when Bad), quality uint32."""

    ts_ms: np.ndarray
    value: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ms)

    @staticmethod
    def empty() -> RawSeries:
        return RawSeries(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.uint32))


@dataclass(frozen=True)
class RollupSeries:
    """1-minute rows in minute order (historian.rollups has what each column means)."""

    minute_ms: np.ndarray
    min: np.ndarray
    max: np.ndarray
    min_ts_ms: np.ndarray
    max_ts_ms: np.ndarray
    first: np.ndarray
    last: np.ndarray
    count: np.ndarray
    bad_count: np.ndarray

    def __len__(self) -> int:
        return len(self.minute_ms)


_ROLLUP_DTYPES = {"minute_ms": np.int64, "min": np.float64, "max": np.float64, "min_ts_ms": np.int64,
                  "max_ts_ms": np.int64, "first": np.float64, "last": np.float64, "count": np.int64,
                  "bad_count": np.int64}


def _rollup_series(columns: dict[str, np.ndarray]) -> RollupSeries:
    return RollupSeries(**{f.name: np.asarray(columns[f.name], dtype=_ROLLUP_DTYPES[f.name])
                           for f in fields(RollupSeries)})


class HistoryReader:
    """Reads <data_dir>/historian; safe while the historian writes and compacts in another process,
    and from several threads. An empty or missing directory reads as no history."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.root = root_of(self.data_dir)
        self._indexes: dict[Path, tuple[tuple[int, int, int], FileIndex]] = {}
        self._unreadable: set[Path] = set()
        self._lock = threading.Lock()
        self._footers: OrderedDict[Path, tuple[tuple[int, int, int], pq.FileMetaData, int]] = OrderedDict()
        self._footer_bytes = 0
        self._parsing: dict[Path, threading.Lock] = {}
        self._loading: dict[Path, threading.Lock] = {}
        self._indexing: dict[Path, threading.Lock] = {}
        self._asked: OrderedDict[str, float] = OrderedDict()  # tag -> when it was last asked for
        self._rollups: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._rollup_bytes = 0
        self._samples: OrderedDict[tuple[Path, int], tuple[FileIndex, dict[str, np.ndarray], int]] = OrderedDict()
        self._sample_bytes = 0

    # --- the four questions ---------------------------------------------------------------------

    def raw(self, tag: str, start_ms: int, end_ms: int) -> RawSeries:
        """Samples with start_ms <= ts <= end_ms, in time order, exact duplicates dropped."""
        self._asked_for(tag)
        return self._retrying(lambda: self._raw(tag, start_ms, end_ms))

    def rollup(self, tag: str, start_ms: int, end_ms: int) -> RollupSeries:
        """1-minute rows of the minutes overlapping [start_ms, end_ms] that have samples."""
        return self._retrying(lambda: self._rollup(tag, start_ms, end_ms))

    def count_estimate(self, tag: str, start_ms: int, end_ms: int) -> int:
        """Roughly how many samples raw() would return, from the footers alone (an even rate assumed
        within each file's span of the tag)."""
        self._asked_for(tag)
        return self._retrying(lambda: self._count_estimate(tag, start_ms, end_ms))

    def last_sample_before(self, tag: str, ts_ms: int) -> tuple[int, float, int] | None:
        """(ts_ms, value, quality) of the newest sample with ts < ts_ms, or None; searches back from the
        newest partition before ts_ms and stops at the first that answers."""
        self._asked_for(tag)
        return self._retrying(lambda: self._last_sample_before(tag, ts_ms))

    # --- files ----------------------------------------------------------------------------------

    def _asked_for(self, tag: str) -> None:
        with self._lock:
            self._asked[tag] = time.monotonic()
            self._asked.move_to_end(tag)
            while len(self._asked) > COMPANION_TAGS:
                self._asked.popitem(last=False)

    def _companions(self, path: Path, index: FileIndex, position: int) -> list[int]:
        """Positions in the file of the other tags asked for lately whose rows are not kept yet."""
        since = time.monotonic() - COMPANION_WINDOW_S
        with self._lock:
            asked = [tag for tag, at in self._asked.items() if at >= since]
            found = []
            for tag in asked:
                other = index.positions.get(tag)
                if other is None or other == position:
                    continue
                if int(index.count[other]) * _SAMPLE_ROW_BYTES > RAW_CACHE_BYTES // 8:
                    continue
                cached = self._samples.get((path, other))
                if cached is None or cached[0] is not index:
                    found.append(other)
        return found

    def _retrying(self, call: Callable[[], T]) -> T:
        for pause_s in RETRY_PAUSES_S:
            try:
                return call()
            except FileNotFoundError:  # a compaction removed its inputs between listing and reading
                time.sleep(pause_s)
        return call()

    def _tag_files(self, tag: str, start_ms: int | None, end_ms: int | None) -> list[tuple[DataFile, FileIndex, int]]:
        """(file, its index, the tag's position in it) for every file in range that has the tag.

        Indexes another thread is reading now are taken last, so pens asked at once read different
        files' footers side by side instead of queueing for the same one."""
        listed = list_files(self.root, start_ms, end_ms).files
        entries: list = [None] * len(listed)
        busy = []
        for i, f in enumerate(listed):
            entries[i] = self._index_entry(f.path, wait=False)
            if entries[i] is _BUSY:
                busy.append(i)
        for i in busy:
            entries[i] = self._index_entry(listed[i].path)
        found = []
        for f, entry in zip(listed, entries):
            if entry is not None and (position := entry[1].positions.get(tag)) is not None:
                found.append((f, entry[1], position))
        found.sort(key=lambda item: (item[0].start_ms, _LEVEL_ORDER[item[0].level], item[0].entry))
        return found

    def _index_entry(self, path: Path, wait: bool = True) -> tuple[tuple[int, int, int], FileIndex] | object | None:
        """(file key, index), None if unreadable; _BUSY if not wait and another thread reads it now."""
        st = os.stat(path)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._indexes.get(path)
        if cached is not None and cached[0] == key:
            return cached
        with self._alone(self._indexing, path, wait) as alone:  # pens asked at once list the same new files
            if not alone:
                return _BUSY
            cached = self._indexes.get(path)
            if cached is not None and cached[0] == key:
                return cached
            return self._read_index_entry(path, key)

    @contextmanager
    def _alone(self, table: dict[Path, threading.Lock], path: Path, wait: bool = True) -> Iterator[bool]:
        """One thread at a time per path for one kind of work: the others wait, then find it done.
        Yields False at once (nothing done) if not wait and another thread is at it."""
        with self._lock:
            lock = table.setdefault(path, threading.Lock())
        if not lock.acquire(blocking=wait):
            yield False
            return
        try:
            yield True
        finally:
            with self._lock:
                if table.get(path) is lock:
                    del table[path]
            lock.release()

    def _read_index_entry(self, path: Path, key: tuple[int, int, int]) -> tuple[tuple[int, int, int], FileIndex] | None:
        try:
            index = read_index(path)
        except FileNotFoundError:
            raise
        except Exception:  # noqa: BLE001 - one unreadable file must not hide every other one
            if path not in self._unreadable:
                log.exception("historian: cannot read the footer of %s; skipping it", path)
                self._unreadable.add(path)
            return None
        footer, index = index.metadata, replace(index, metadata=None)
        with self._lock:
            if len(self._indexes) >= _CACHE_LIMIT:
                for old in [p for p in self._indexes if not p.exists()]:
                    del self._indexes[old]
            self._indexes[path] = (key, index)
            self._keep_footer(path, key, footer)
        return key, index

    def _footer(self, path: Path) -> pq.FileMetaData | None:
        """The file's parsed footer from the LRU, or parsed now (and kept); None if unknown."""
        entry = self._indexes.get(path)
        if entry is None:
            return None
        with self._lock:
            cached = self._footers.get(path)
            if cached is not None and cached[0] == entry[0]:
                self._footers.move_to_end(path)
                return cached[1]
        with self._alone(self._parsing, path):  # pens read at once walk the same files
            with self._lock:
                cached = self._footers.get(path)
                if cached is not None and cached[0] == entry[0]:
                    self._footers.move_to_end(path)
                    return cached[1]
            footer = pq.read_metadata(path)
            with self._lock:
                self._keep_footer(path, entry[0], footer)
        return footer

    def _keep_footer(self, path: Path, key: tuple[int, int, int], footer: pq.FileMetaData) -> None:
        """Under the lock: footer into the LRU; the least recently used beyond FOOTER_CACHE_BYTES out."""
        old = self._footers.pop(path, None)
        if old is not None:
            self._footer_bytes -= old[2]
        size = FOOTER_MEMORY_FACTOR * footer.serialized_size
        self._footers[path] = (key, footer, size)
        self._footer_bytes += size
        while self._footer_bytes > FOOTER_CACHE_BYTES and len(self._footers) > 1:
            _p, (_k, _f, evicted) = self._footers.popitem(last=False)
            self._footer_bytes -= evicted

    # --- raw ------------------------------------------------------------------------------------

    def _tag_samples(self, path: Path, index: FileIndex, position: int, start_ms: int | None,
                     end_ms: int | None, wait: bool = True) -> dict[str, np.ndarray] | None:
        """The tag's rows in one file with start_ms <= ts <= end_ms (None: unbounded), in time order:
        sliced from its cached rows (read whole on first use), or read by range when too big to keep.
        None if not wait and another thread is reading the file now (for this tag too, if asked lately)."""
        if int(index.count[position]) * _SAMPLE_ROW_BYTES > RAW_CACHE_BYTES // 8:
            return read_tags(path, index, [position], list(SAMPLE_COLUMNS), start_ms, end_ms, self._footer(path))[1]
        columns = self._kept_samples((path, position), index)
        if columns is None:
            with self._alone(self._loading, path, wait) as alone:  # one reads a file for every tag asked
                if not alone:
                    return None
                columns = self._kept_samples((path, position), index)
                if columns is None:
                    companions = self._companions(path, index, position)
                    owner, read = read_tags(path, index, [*companions, position], list(SAMPLE_COLUMNS),
                                            footer=self._footer(path))
                    for t in [*companions, position]:  # the asked tag last: the most recently used
                        mine = read if not companions else {c: v[owner == t] for c, v in read.items()}
                        if len(mine["ts_ms"]) > 1 and not np.all(np.diff(mine["ts_ms"]) >= 0):  # never so written
                            order = np.argsort(mine["ts_ms"], kind="stable")
                            mine = {c: v[order] for c, v in mine.items()}
                        self._keep_samples((path, t), index, mine)
                    columns = mine
        ts = columns["ts_ms"]
        a = 0 if start_ms is None else int(ts.searchsorted(start_ms, "left"))
        b = len(ts) if end_ms is None else int(ts.searchsorted(end_ms, "right"))
        if a == 0 and b == len(ts):
            return columns
        return {c: v[a:b] for c, v in columns.items()}

    def _kept_samples(self, cache_key: tuple[Path, int], index: FileIndex) -> dict[str, np.ndarray] | None:
        with self._lock:
            cached = self._samples.get(cache_key)
            if cached is None or cached[0] is not index:
                return None
            self._samples.move_to_end(cache_key)
            return cached[1]

    def _keep_samples(self, cache_key: tuple[Path, int], index: FileIndex, columns: dict[str, np.ndarray]) -> None:
        """Into the LRU; the least recently used beyond RAW_CACHE_BYTES out."""
        size = sum(a.nbytes for a in columns.values())
        with self._lock:
            old = self._samples.pop(cache_key, None)
            if old is not None:
                self._sample_bytes -= old[2]
            self._samples[cache_key] = (index, columns, size)
            self._sample_bytes += size
            while self._sample_bytes > RAW_CACHE_BYTES and len(self._samples) > 1:
                _k, (_i, _c, evicted) = self._samples.popitem(last=False)
                self._sample_bytes -= evicted

    def _raw(self, tag: str, start_ms: int, end_ms: int) -> RawSeries:
        tagged = self._tag_files(tag, start_ms, end_ms)
        read: list = [None] * len(tagged)
        busy = []  # files another thread is reading now (for every pen asked): taken last, so pens
        for i, (f, index, position) in enumerate(tagged):  # asked at once read different files side by side
            read[i] = self._tag_samples(f.path, index, position, start_ms, end_ms, wait=False)
            if read[i] is None:
                busy.append(i)
        for i in busy:
            f, index, position = tagged[i]
            read[i] = self._tag_samples(f.path, index, position, start_ms, end_ms)
        pieces = [columns for columns in read if len(columns["ts_ms"])]
        if not pieces:
            return RawSeries.empty()
        if len(pieces) == 1:
            ts, value, quality = pieces[0]["ts_ms"], pieces[0]["value"], pieces[0]["quality"]
        else:
            ts, value, quality = (np.concatenate([p[c] for p in pieces]) for c in SAMPLE_COLUMNS)
        if len(ts) > 1 and not np.all(np.diff(ts) > 0):
            order = np.lexsort((canonical_bits(value), quality, ts))
            ts, value, quality = ts[order], value[order], quality[order]
            bits = canonical_bits(value)
            keep = np.concatenate(([True], (ts[1:] != ts[:-1]) | (quality[1:] != quality[:-1])
                                   | (bits[1:] != bits[:-1])))
            ts, value, quality = ts[keep], value[keep], quality[keep]
        return RawSeries(ts.astype(np.int64, copy=False), value.astype(np.float64, copy=False),
                         quality.astype(np.uint32, copy=False))

    # --- rollups --------------------------------------------------------------------------------

    def _rollup(self, tag: str, start_ms: int, end_ms: int) -> RollupSeries:
        first_minute = start_ms // MINUTE_MS * MINUTE_MS
        last_minute = end_ms // MINUTE_MS * MINUTE_MS
        tagged = self._tag_files(tag, first_minute, end_ms)
        if not tagged or last_minute < first_minute:
            return _rollup_series({c: np.empty(0) for c in _ROLLUP_DTYPES})
        hour0 = first_minute // HOUR_MS * HOUR_MS
        hours = int((last_minute - hour0) // HOUR_MS) + 1
        cover = np.zeros(hours, np.int32)
        owner = np.full(hours, -1, np.int64)
        for i, (f, _index, _position) in enumerate(tagged):
            a = max(0, (f.start_ms - hour0) // HOUR_MS)
            b = min(hours, (f.end_ms - hour0) // HOUR_MS)
            cover[a:b] += 1
            owner[a:b] = i
        has_rollup = np.array([f.rollup_path is not None for f, _i, _p in tagged])
        clean = (cover == 1) & has_rollup[np.maximum(owner, 0)]
        pieces = []
        for i in np.unique(owner[clean]).tolist():
            f = tagged[i][0]
            columns = self._stored_rollups(f.rollup_path, tag)
            if columns is None:
                clean[owner == i] = False  # no usable rollups after all: roll up from raw
                continue
            a = int(columns["minute_ms"].searchsorted(first_minute, "left"))
            b = int(columns["minute_ms"].searchsorted(last_minute, "right"))
            hour_of = (columns["minute_ms"][a:b] - hour0) // HOUR_MS
            mine = clean[hour_of] & (owner[hour_of] == i)
            pieces.append({c: v[a:b] if mine.all() else v[a:b][mine] for c, v in columns.items()})
        dirty = (cover > 0) & ~clean
        edges = np.diff(np.concatenate(([0], dirty.astype(np.int8), [0])))
        for a, b in zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()):
            lo = max(first_minute, hour0 + a * HOUR_MS)
            hi = min(last_minute + MINUTE_MS, hour0 + b * HOUR_MS) - 1
            raw = self._raw(tag, lo, hi)
            rows = TagRows([tag], np.zeros(len(raw), np.int32),
                           {"ts_ms": raw.ts_ms, "value": raw.value, "quality": raw.quality})
            pieces.append(rollup_rows(rows).columns)
        if not pieces:
            return _rollup_series({c: np.empty(0) for c in _ROLLUP_DTYPES})
        columns = {c: np.concatenate([p[c] for p in pieces]) for c in _ROLLUP_DTYPES}
        if len(pieces) > 1 and not np.all(np.diff(columns["minute_ms"]) > 0):
            order = np.argsort(columns["minute_ms"], kind="stable")
            columns = {c: a[order] for c, a in columns.items()}
        return _rollup_series(columns)

    def _stored_rollups(self, path: Path, tag: str) -> dict[str, np.ndarray] | None:
        """All of a tag's rows in a rollup file, from the cache when the file is unchanged."""
        entry = self._index_entry(path)
        position = entry[1].positions.get(tag) if entry is not None else None
        if position is None:
            return None
        cache_key = (path, entry[0], position)
        with self._lock:
            columns = self._rollups.get(cache_key)
            if columns is not None:
                self._rollups.move_to_end(cache_key)
                return columns
        _o, columns = read_tags(path, entry[1], [position], list(ROLLUP_COLUMNS), footer=self._footer(path))
        size = sum(a.nbytes for a in columns.values())
        with self._lock:
            self._rollups[cache_key] = columns
            self._rollup_bytes += size
            while self._rollup_bytes > ROLLUP_CACHE_BYTES and len(self._rollups) > 1:
                _k, old = self._rollups.popitem(last=False)
                self._rollup_bytes -= sum(a.nbytes for a in old.values())
        return columns

    # --- estimates and the value in force -------------------------------------------------------

    def _count_estimate(self, tag: str, start_ms: int, end_ms: int) -> int:
        total = 0.0
        for _f, index, position in self._tag_files(tag, start_ms, end_ms):
            lo, hi = int(index.key_min[position]), int(index.key_max[position])
            overlap = min(end_ms, hi) - max(start_ms, lo) + 1
            if overlap > 0:
                total += index.count[position] * min(1.0, overlap / (hi - lo + 1))
        return int(round(total))

    def _last_sample_before(self, tag: str, ts_ms: int) -> tuple[int, float, int] | None:
        tagged = self._tag_files(tag, None, ts_ms - 1)
        tagged.sort(key=lambda item: (item[0].end_ms, -_LEVEL_ORDER[item[0].level]), reverse=True)
        best: tuple[int, float, int] | None = None
        for f, index, position in tagged:
            if best is not None and f.end_ms <= best[0]:
                break
            if index.key_min[position] >= ts_ms:
                continue
            if int(index.count[position]) * _SAMPLE_ROW_BYTES <= RAW_CACHE_BYTES // 8:
                columns = self._tag_samples(f.path, index, position, None, ts_ms - 1)
                sample = (None if not len(columns["ts_ms"]) else
                          (int(columns["ts_ms"][-1]), float(columns["value"][-1]), int(columns["quality"][-1])))
            else:
                sample = _last_row_before(f.path, index, position, ts_ms, self._footer(f.path))
            if sample is not None and (best is None or sample[0] > best[0]):
                best = sample
        return best


def _last_row_before(path: Path, index: FileIndex, position: int, ts_ms: int,
                     footer: pq.FileMetaData | None) -> tuple[int, float, int] | None:
    """The tag's last row before ts_ms in one file: first from its last row group that starts before
    ts_ms alone, then (a group shared with other tags may hold none of its rows there) from all."""
    first = int(np.searchsorted(index.group_start, index.start[position], "right")) - 1
    last = int(np.searchsorted(index.group_start, index.start[position] + index.count[position] - 1, "right")) - 1
    starts_before = [g for g in range(first, last + 1) if index.group_key_min[g] < ts_ms]
    for lo in ([int(index.group_key_min[starts_before[-1]])] if starts_before else []) + [None]:
        _o, columns = read_tags(path, index, [position], list(SAMPLE_COLUMNS), lo, ts_ms - 1, footer)
        if len(columns["ts_ms"]):
            return int(columns["ts_ms"][-1]), float(columns["value"][-1]), int(columns["quality"][-1])
    return None
