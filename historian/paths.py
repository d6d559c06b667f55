"""Where the historian's files live and what their names say.

Layout under <data_dir>/historian/ (all times are source times, UTC):

    segments/<YYYYmmddTHH>/seg-<entry id>.parquet    what the service flushed, one file per hour touched
    segments/<YYYYmmddTHH>/run-<entry id>.parquet    segments of a still open hour, merged
    hours/<YYYYmmddTHH>.<entry id>.parquet           a closed hour, compacted (+ .rollup.parquet)
    days/<YYYYmmdd>.<entry id>.parquet               a closed day, compacted again (+ .rollup.parquet)

A partition is the source-time hour (segments, hours) or day (days) its rows belong to; a file never
holds rows outside its partition, so a query lists only the partitions it overlaps and a day query of
one tag touches one file. The entry id is the sl:samples stream id ("ms-seq") of the newest feed entry
the file's rows came from ("0-0" for bulk loads): the greatest one over all names is the cursor, so
no separate cursor file can disagree with the data. Two files with the same name stem get "~1", "~2".

Writes are atomic: a hidden temp file (".<name>.<pid>.tmp") in the target directory, flushed and
fsynced, renamed into place, then the directory fsynced. Readers only ever see complete files; a temp
file left by a crash matches no pattern and is removed by the next compaction once it is old.
"""
from __future__ import annotations

import calendar
import functools
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MINUTE_MS = 60_000
ZERO_ENTRY = "0-0"

_HOUR_NAME = re.compile(r"^\d{8}T\d{2}$")
_SEGMENT = re.compile(r"^(seg|run)-(\d+)-(\d+)(?:~\d+)?\.parquet$")
_COMPACTED = re.compile(r"^(\d{8}(?:T\d{2})?)\.(\d+)-(\d+)(?:~\d+)?(\.rollup)?\.parquet$")


def root_of(data_dir: Path) -> Path:
    return Path(data_dir) / "historian"


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """'1763780000123-5' as (1763780000123, 5); ValueError for anything else."""
    ms, sep, seq = str(entry_id).partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit():
        raise ValueError(f"not a stream entry id: {entry_id!r}")
    return int(ms), int(seq)


def format_entry_id(entry: tuple[int, int]) -> str:
    return f"{entry[0]}-{entry[1]}"


def hour_name(hour_ms: int) -> str:
    return time.strftime("%Y%m%dT%H", time.gmtime(hour_ms // 1000))


def day_name(day_ms: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(day_ms // 1000))


@functools.lru_cache(maxsize=65_536)
def partition_start(name: str) -> int:
    """Epoch ms of a partition name ('20261202T15' or '20261202')."""
    hour = int(name[9:11]) if len(name) > 8 else 0
    return calendar.timegm((int(name[:4]), int(name[4:6]), int(name[6:8]), hour, 0, 0)) * 1000


@dataclass(frozen=True)
class DataFile:
    """One file of samples: its level ('segment', 'hour', 'day'), partition [start_ms, end_ms) and entry."""

    path: Path
    level: str
    start_ms: int
    end_ms: int
    entry: tuple[int, int]
    rollup_path: Path | None = None

    @property
    def partition(self) -> tuple[str, int]:
        return self.level if self.level != "segment" else "hour", self.start_ms


@dataclass(frozen=True)
class Listing:
    files: list[DataFile]
    orphan_rollups: list[Path]
    temp_files: list[Path]


def _scan(directory: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except FileNotFoundError:
        return []


def list_files(root: Path, start_ms: int | None = None, end_ms: int | None = None) -> Listing:
    """Every complete data file whose partition overlaps [start_ms, end_ms] (all when None)."""
    lo = -(2 ** 62) if start_ms is None else start_ms
    hi = 2 ** 62 if end_ms is None else end_ms
    files: list[DataFile] = []
    orphans: list[Path] = []
    temps: list[Path] = []
    for level, span in (("day", DAY_MS), ("hour", HOUR_MS)):
        directory = root / f"{level}s"
        entries = _scan(directory)
        names = {e.name for e in entries}
        for e in entries:
            m = _COMPACTED.match(e.name)
            if m is None:
                if e.name.endswith(".tmp"):
                    temps.append(Path(e.path))
                continue
            start = partition_start(m.group(1))
            if m.group(4):
                if e.name.replace(".rollup.parquet", ".parquet") not in names:
                    orphans.append(Path(e.path))
                continue
            if start + span <= lo or start > hi:
                continue
            rollup = e.name[: -len(".parquet")] + ".rollup.parquet"
            files.append(DataFile(Path(e.path), level, start, start + span, (int(m.group(2)), int(m.group(3))),
                                  directory / rollup if rollup in names else None))
    for hour_dir in _scan(root / "segments"):
        if not _HOUR_NAME.match(hour_dir.name):
            if hour_dir.name.endswith(".tmp"):
                temps.append(Path(hour_dir.path))
            continue
        start = partition_start(hour_dir.name)
        if start + HOUR_MS <= lo or start > hi:
            continue
        for e in _scan(Path(hour_dir.path)):
            m = _SEGMENT.match(e.name)
            if m is None:
                if e.name.endswith(".tmp"):
                    temps.append(Path(e.path))
                continue
            files.append(DataFile(Path(e.path), "segment", start, start + HOUR_MS, (int(m.group(2)), int(m.group(3)))))
    return Listing(files, orphans, temps)


def unique_stem(directory: Path, stem: str, suffixes: tuple[str, ...] = (".parquet",)) -> str:
    """stem, or stem~1, stem~2 ... the first for which no file with any of the suffixes exists."""
    candidate, n = stem, 0
    while any((directory / f"{candidate}{s}").exists() for s in suffixes):
        n += 1
        candidate = f"{stem}~{n}"
    return candidate


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(directory: Path) -> None:
    """The directory, created (and its creation made durable) if missing."""
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        fsync_dir(directory.parent)
