"""Samples on their way to disk: decoded for the files, held in a bounded buffer until written.

Pure logic, no Redis and no disk. A chunk is the samples of one sl:samples entry (or one
backfill window) with the entry id it brings the cursor to; chunks leave the buffer only
when a file with them is on disk, so the cursor never runs ahead of the files.
"""
from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from domain.tag_value import TagValue
from tag_store.codec import tag_value_from_dict

MAX_SEQ = 2**64 - 1


# --- stream entry ids ("<ms>-<seq>") ----------------------------------------------------------------

def entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_ms(entry_id: str) -> int:
    return entry_key(entry_id)[0]


def entry_before(entry_id: str) -> str:
    """The greatest id below entry_id ("0-0" for the first possible one)."""
    ms, seq = entry_key(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{MAX_SEQ}" if ms > 0 else "0-0"


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --- samples as file rows --------------------------------------------------------------------------

def trend_value(tv: TagValue) -> float | None:
    """The value as a file stores it: a number, NaN when Bad (or missing); None: not trended (text)."""
    value = tv.value
    if isinstance(value, str):
        return None
    if tv.quality.is_bad or value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    number = float(value)
    return number if math.isfinite(number) else math.nan


@dataclass(slots=True)
class Chunk:
    """Rows for the files, and the sl:samples entry id they bring the cursor to."""

    entry_id: str
    # Feed entries in it (0 for a backfill window): for the heartbeat's behind_entries.
    feed_entries: int = 1
    tags: list[str] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    qualities: list[int] = field(default_factory=list)
    skipped_text: int = 0

    def add(self, tv: TagValue) -> None:
        value = trend_value(tv)
        if value is None:
            self.skipped_text += 1
            return
        self.tags.append(tv.tag)
        self.ts_ms.append(tv.source_time_ms)
        self.values.append(value)
        self.qualities.append(tv.quality.code)

    def __len__(self) -> int:
        return len(self.ts_ms)


def samples_of_entry(fields: dict[Any, Any]) -> list[TagValue]:
    """The samples of one sl:samples entry: field "s" = JSON [[tag, encoded value], ...]."""
    raw = fields.get(b"s", fields.get("s"))
    return [tag_value_from_dict(tag, encoded) for tag, encoded in json.loads(raw)]


def chunk_of_entry(entry_id: str, fields: dict[Any, Any], skip_tags: frozenset[str] = frozenset()) -> Chunk:
    chunk = Chunk(entry_id)
    for tv in samples_of_entry(fields):
        if tv.tag in skip_tags:
            chunk.skipped_text += 1
        else:
            chunk.add(tv)
    return chunk


class SampleBuffer:
    """Chunks read but not yet on disk, oldest first, at most max_samples samples.

    Overflow policy (only while the disk refuses writes): the oldest chunks are dropped and
    counted in dropped_samples; the newest chunk is always kept.
    """

    def __init__(self, max_samples: int):
        self.max_samples = max_samples
        self._chunks: deque[Chunk] = deque()
        self.samples = 0
        self.feed_entries = 0
        self.dropped_samples = 0
        # The newest entry id ever added (read cursor), even when its chunk had no rows.
        self.last_entry_id: str | None = None

    def add(self, chunk: Chunk) -> int:
        """Append a chunk; returns how many samples were dropped to stay within max_samples."""
        self.last_entry_id = chunk.entry_id
        self._chunks.append(chunk)
        self.samples += len(chunk)
        self.feed_entries += chunk.feed_entries
        dropped = 0
        while self.samples > self.max_samples and len(self._chunks) > 1:
            oldest = self._chunks.popleft()
            self.samples -= len(oldest)
            self.feed_entries -= oldest.feed_entries
            dropped += len(oldest)
        self.dropped_samples += dropped
        return dropped

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def pending(self) -> list[Chunk]:
        """Everything held, oldest first: write them, then release() them."""
        return list(self._chunks)

    def release(self, written: list[Chunk]) -> None:
        """These chunks are on disk (those dropped meanwhile are simply gone already)."""
        done = {id(chunk) for chunk in written}
        while self._chunks and id(self._chunks[0]) in done:
            chunk = self._chunks.popleft()
            self.samples -= len(chunk)
            self.feed_entries -= chunk.feed_entries


def columns_of(chunks: list[Chunk]) -> tuple[list[str], list[int], list[float], list[int]]:
    """The chunks' rows as four columns: tags, ts_ms, values, qualities."""
    tags: list[str] = []
    ts_ms: list[int] = []
    values: list[float] = []
    qualities: list[int] = []
    for chunk in chunks:
        tags.extend(chunk.tags)
        ts_ms.extend(chunk.ts_ms)
        values.extend(chunk.values)
        qualities.extend(chunk.qualities)
    return tags, ts_ms, values, qualities
