"""Parquet files of rows grouped by tag, each tag in time order, with an index of where each tag is.

Both kinds of file (samples, and their 1-minute rollups) have the same shape: a dictionary-encoded
`tag` column, a key column (`ts_ms` or `minute_ms`) and value columns. Rows are grouped by tag (tags
in the file's own order, the index's) and ordered by key within a tag.

Row groups follow tag boundaries: a tag with at least `solo_rows` rows has row groups of its own (split
evenly below `max_rows`), smaller tags share one until it holds `pack_rows`. So reading one tag reads
one or a few row groups and little of anyone else's: a day of a 1 s tag is one group of 86,400 rows,
an hour of 1 s tags packs three tags (10,800 rows) a group. Few row groups keep the footer small: an
hour of 1000 tags at one tag a group (files written before 2026-12) has a 426 kB footer, 4 MB and
~3 ms to parse, more than reading a tag's rows; three a group make it 180 kB and ~1 ms, for ~0.15 ms
more decoding per tag read (measured: 8 tags from a cold hour file 8.0 -> 6.7 ms; ten a group,
92 kB, made that 10.8 ms). Readers take both layouts alike: the index says where every group is.
The footer carries `stacklight.index` (JSON): per tag its first row, row count and key range, per row
group its rows and key range. A reader parses it once per file (cached by the reader) and then finds
a tag's rows without touching the tag column or the row-group statistics; the statistics are still
written, for other tools.

Encodings: zstd; ts_ms delta-encoded; values byte-stream-split; quality and tag dictionary-encoded.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

try:  # the reader behind pq.ParquetFile, without its per-open overhead (pyarrow 21-26)
    from pyarrow._parquet import ParquetReader as _LowLevelReader
except ImportError:  # pragma: no cover - a pyarrow that moved it: the public API still works
    _LowLevelReader = None

from historian.paths import ensure_dir, fsync_dir, fsync_file
from historian.sample_rows import SampleRows

INDEX_KEY = b"stacklight.index"
SAMPLE_COLUMNS = {"ts_ms": pa.int64(), "value": pa.float64(), "quality": pa.uint32()}
ROLLUP_COLUMNS = {"minute_ms": pa.int64(), "min": pa.float64(), "max": pa.float64(), "min_ts_ms": pa.int64(),
                  "max_ts_ms": pa.int64(), "first": pa.float64(), "last": pa.float64(), "count": pa.int32(),
                  "bad_count": pa.int32()}
# Row groups (rows): (a tag alone from, small tags packed up to, at most); rollups are 9 columns wide.
# Few row groups keep footers small (a reader caches a few, and parses the others on open): a day of
# a 1 s tag is one group of 86,400 rows, an hour of 1 s tags (3,600 rows) packs three tags a group
# (a tag alone from 2,048 rows made a 1000-tag hour 1000 groups), a day of rollups three tags a group.
SAMPLE_GROUPS = (32_768, 8_192, 131_072)
ROLLUP_GROUPS = (2_048, 4_096, 131_072)
ZSTD_LEVEL = 1


@dataclass(frozen=True)
class TagRows:
    """Rows grouped by tag: codes (int32, non-decreasing) index names; columns in the same row order."""

    names: list[str]
    codes: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, index: np.ndarray | slice) -> TagRows:
        return TagRows(self.names, self.codes[index], {k: v[index] for k, v in self.columns.items()})


def canonical_bits(value: np.ndarray) -> np.ndarray:
    """The float64 bits with every NaN made the same NaN, so NaN equals NaN when deduping."""
    return np.where(np.isnan(value), np.nan, value).view(np.int64)


def grouped_samples(codes: np.ndarray, names: list[str], ts_ms: np.ndarray, value: np.ndarray,
                    quality: np.ndarray) -> TagRows:
    """Rows grouped by code (kept in code order), time order within a tag, exact duplicates dropped.

    Already grouped input with strictly increasing times per tag (the usual case) is taken as it is.
    """
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    ts_ms = np.ascontiguousarray(ts_ms, dtype=np.int64)
    value = np.ascontiguousarray(value, dtype=np.float64)
    quality = np.ascontiguousarray(quality, dtype=np.uint32)
    if len(codes) > 1:
        step_code, step_ts = np.diff(codes), np.diff(ts_ms)
        if not (np.all(step_code >= 0) and np.all((step_code > 0) | (step_ts > 0))):
            order = np.lexsort((canonical_bits(value), quality, ts_ms, codes))
            codes, ts_ms, value, quality = codes[order], ts_ms[order], value[order], quality[order]
            bits = canonical_bits(value)
            same = ((codes[1:] == codes[:-1]) & (ts_ms[1:] == ts_ms[:-1]) & (quality[1:] == quality[:-1])
                    & (bits[1:] == bits[:-1]))
            if same.any():
                keep = np.concatenate(([True], ~same))
                codes, ts_ms, value, quality = codes[keep], ts_ms[keep], value[keep], quality[keep]
    return TagRows(names, codes, {"ts_ms": ts_ms, "value": value, "quality": quality})


def samples_to_tag_rows(rows: SampleRows) -> TagRows:
    """SampleRows grouped by tag (in order of first appearance), Bad samples' values made NaN."""
    codes, uniques = pd.factorize(np.asarray(rows.tag, dtype=object), sort=False)
    quality = np.asarray(rows.quality, dtype=np.uint32)
    value = np.asarray(rows.value, dtype=np.float64)
    bad = (quality >> 30) >= 2
    if bad.any():
        value = np.where(bad, np.nan, value)
    return grouped_samples(codes, [str(u) for u in uniques], rows.ts_ms, value, quality)


def _group_bounds(counts: np.ndarray, solo_rows: int, pack_rows: int, max_rows: int) -> list[int]:
    bounds, pos, pack = [0], 0, 0
    for n in counts.tolist():
        if n >= solo_rows:
            if pack:
                bounds.append(pos)
                pack = 0
            parts = -(-n // max_rows)
            bounds.extend(pos + n * k // parts for k in range(1, parts + 1))
            pos += n
        else:
            pos += n
            pack += n
            if pack >= pack_rows:
                bounds.append(pos)
                pack = 0
    if bounds[-1] != pos:
        bounds.append(pos)
    return bounds


class TagFileWriter:
    """Writes a file of rows grouped by tag, chunk by chunk (a tag never in two chunks), atomically:
    rows go to a hidden temp file; commit() adds the index, fsyncs and renames it into place."""

    def __init__(self, path: Path, types: dict[str, pa.DataType], key: str):
        self.path, self.types, self.key = path, types, key
        self.temp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        fields = [pa.field("tag", pa.dictionary(pa.int32(), pa.string()))] + [pa.field(k, t) for k, t in types.items()]
        self.schema = pa.schema(fields)
        self.index: dict = {"v": 1, "key": key, "tags": [], "start": [], "count": [], "min": [], "max": [],
                            "groups": []}
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> TagFileWriter:
        ensure_dir(self.path.parent)
        encodings = {k: "DELTA_BINARY_PACKED" for k, t in self.types.items() if t == pa.int64()}
        encodings.update({k: "BYTE_STREAM_SPLIT" for k, t in self.types.items() if t == pa.float64()})
        options = dict(compression="zstd", compression_level=ZSTD_LEVEL, column_encoding=encodings,
                       use_dictionary=["tag", "quality"] if "quality" in self.types else ["tag"], store_schema=False,
                       write_statistics=["tag", self.key])
        try:
            self._writer = pq.ParquetWriter(self.temp, self.schema, **options)
        except FileNotFoundError:  # a compaction removed the (empty) directory just now
            ensure_dir(self.path.parent)
            self._writer = pq.ParquetWriter(self.temp, self.schema, **options)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:  # not committed: an error on the way
            self._writer.close()
            self._writer = None
        self.temp.unlink(missing_ok=True)

    def append(self, rows: TagRows) -> None:
        codes = rows.codes
        n = len(codes)
        if n == 0:
            return
        tag_starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
        tag_ends = np.append(tag_starts[1:], n).astype(np.int64)
        keys = rows.columns[self.key]
        index = self.index
        index["tags"].extend(rows.names[c] for c in codes[tag_starts].tolist())
        index["start"].extend((tag_starts + self.rows).tolist())
        index["count"].extend((tag_ends - tag_starts).tolist())
        index["min"].extend(np.minimum.reduceat(keys, tag_starts).tolist())
        index["max"].extend(np.maximum.reduceat(keys, tag_starts).tolist())
        bounds = _group_bounds(tag_ends - tag_starts, *(SAMPLE_GROUPS if "quality" in self.types else ROLLUP_GROUPS))
        all_names = np.array(rows.names, dtype=object)
        for a, b in zip(bounds[:-1], bounds[1:]):
            lo, hi = int(codes[a]), int(codes[b - 1])
            tag = pa.DictionaryArray.from_arrays(pa.array(codes[a:b] - lo, pa.int32()),
                                                 pa.array(all_names[lo:hi + 1], pa.string()))
            arrays = [tag] + [pa.array(rows.columns[k][a:b], t) for k, t in self.types.items()]
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=b - a)
            index["groups"].append([b - a, int(keys[a:b].min()), int(keys[a:b].max())])
        self.rows += n

    def commit(self) -> Path:
        self._writer.add_key_value_metadata({INDEX_KEY.decode(): json.dumps(self.index, separators=(",", ":"))})
        self._writer.close()
        self._writer = None
        fsync_file(self.temp)
        os.replace(self.temp, self.path)
        fsync_dir(self.path.parent)
        return self.path


def write_tag_rows(path: Path, rows: TagRows, types: dict[str, pa.DataType], key: str) -> Path:
    """Write rows (grouped by tag, key order within a tag) atomically to path, with the tag index."""
    with TagFileWriter(path, types, key) as writer:
        writer.append(rows)
        return writer.commit()


@dataclass(frozen=True)
class FileIndex:
    """What a file's footer says: where each tag's rows are and each row group's key range."""

    metadata: pq.FileMetaData | None  # the parsed footer (large: a reader keeps it apart, or not at all)
    key: str
    positions: dict[str, int]
    names: list[str]
    start: np.ndarray
    count: np.ndarray
    key_min: np.ndarray
    key_max: np.ndarray
    group_start: np.ndarray  # len = groups + 1
    group_key_min: np.ndarray
    group_key_max: np.ndarray
    column_index: dict[str, int]

    @property
    def rows(self) -> int:
        return int(self.group_start[-1])


def read_index(path: Path) -> FileIndex:
    metadata = pq.read_metadata(path)
    index = json.loads(metadata.metadata[INDEX_KEY])
    groups = np.asarray(index["groups"], dtype=np.int64).reshape(-1, 3)
    names = [sys.intern(t) for t in index["tags"]]  # one string per tag name, however many files name it
    return FileIndex(metadata, index["key"], {t: i for i, t in enumerate(names)}, names,
                     np.asarray(index["start"], np.int64), np.asarray(index["count"], np.int64),
                     np.asarray(index["min"], np.int64), np.asarray(index["max"], np.int64),
                     np.concatenate(([0], np.cumsum(groups[:, 0]))), groups[:, 1], groups[:, 2],
                     {name: i for i, name in enumerate(metadata.schema.names)})


_DTYPES = {name: np.dtype(t.to_pandas_dtype()) for name, t in {**SAMPLE_COLUMNS, **ROLLUP_COLUMNS}.items()}


def _read_groups(path: Path, index: FileIndex, groups: list[int], columns: list[str],
                 footer: pq.FileMetaData | None) -> pa.Table:
    """Row groups of a file, opened with its parsed footer if given (the low-level reader: a third of
    the cost of pq.ParquetFile). Pre-buffered: the column chunks wanted are fetched in a few coalesced
    reads, not a read per page (8 tags from an hour file not in the page cache: 4.6 -> 2.4 ms)."""
    if _LowLevelReader is None:
        return pq.ParquetFile(path, metadata=footer, pre_buffer=True).read_row_groups(
            groups, columns=columns, use_threads=False)
    reader = _LowLevelReader()
    reader.open(str(path), metadata=footer, pre_buffer=True)
    try:
        return reader.read_row_groups(groups, column_indices=[index.column_index[c] for c in columns],
                                      use_threads=False)
    finally:
        reader.close()


def read_tags(path: Path, index: FileIndex, tags: list[int], columns: list[str],
              key_lo: int | None = None, key_hi: int | None = None,
              footer: pq.FileMetaData | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The rows of the tags at positions `tags` (each tag in key order, tags in the order given) whose key
    is in [key_lo, key_hi]: (position of each row's tag, columns). Reads only the row groups needed;
    footer: the file's parsed footer (default index.metadata; None: parsed on open)."""
    lo = -(2 ** 62) if key_lo is None else key_lo
    hi = 2 ** 62 if key_hi is None else key_hi
    gs = index.group_start
    spans = []  # (tag, first row, end row, first group, last group)
    wanted: set[int] = set()
    for t in tags:
        if index.count[t] and index.key_max[t] >= lo and index.key_min[t] <= hi:
            a, b = int(index.start[t]), int(index.start[t] + index.count[t])
            first, last = int(gs.searchsorted(a, "right")) - 1, int(gs.searchsorted(b - 1, "right")) - 1
            spans.append((t, a, b, first, last))
            wanted.update(g for g in range(first, last + 1)
                          if index.group_key_max[g] >= lo and index.group_key_min[g] <= hi)
    if not wanted:
        return np.empty(0, np.int32), {c: np.empty(0, _DTYPES[c]) for c in columns}
    groups = sorted(wanted)
    wanted_columns = list(dict.fromkeys([index.key, *columns]))
    table = _read_groups(path, index, groups, wanted_columns, footer if footer is not None else index.metadata)
    offsets, at = {}, 0
    for g in groups:
        offsets[g] = at
        at += int(gs[g + 1] - gs[g])
    pieces, owners = [], []
    for t, a, b, first, last in spans:
        for g in range(first, last + 1):
            if g in offsets:
                s, e = max(a, int(gs[g])), min(b, int(gs[g + 1]))
                pieces.append((offsets[g] + s - int(gs[g]), offsets[g] + e - int(gs[g])))
                owners.append((t, e - s))
    arrays = {c: table.column(c).to_numpy() for c in wanted_columns}
    if len(pieces) == 1 or all(pieces[i][1] == pieces[i + 1][0] for i in range(len(pieces) - 1)):
        arrays = {c: v[pieces[0][0]:pieces[-1][1]] for c, v in arrays.items()}
    else:
        take = np.concatenate([np.arange(s, e) for s, e in pieces])
        arrays = {c: v[take] for c, v in arrays.items()}
    owner = np.repeat(np.array([t for t, _n in owners], np.int32), [n for _t, n in owners])
    keys = arrays[index.key]
    if key_lo is not None or key_hi is not None:
        inside = (keys >= lo) & (keys <= hi)
        if not inside.all():
            owner = owner[inside]
            arrays = {c: v[inside] for c, v in arrays.items()}
    return owner, {c: arrays[c] for c in columns}


def read_all(path: Path, index: FileIndex | None = None) -> TagRows:
    """Every row of a samples file as TagRows (names: the file's tags)."""
    index = index or read_index(path)
    table = pq.ParquetFile(path, metadata=index.metadata).read(columns=list(SAMPLE_COLUMNS), use_threads=False)
    codes = np.repeat(np.arange(len(index.names), dtype=np.int32), index.count)
    return TagRows(list(index.names), codes, {c: table.column(c).to_numpy() for c in SAMPLE_COLUMNS})
