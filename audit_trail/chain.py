"""The hash chain over the audit archive: pure functions, no I/O.

Each archived entry is encoded canonically (its stream id and every field, as sorted, compact
JSON) and hashed together with the hash of the entry before it:

    hash = sha256(prev_hash + canonical(stream_id, fields))

so changing, removing or reordering any entry changes every hash after it. The first entry's
prev_hash is GENESIS_HASH.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Mapping

GENESIS_HASH = "0" * 64


def canonical(stream_id: str, fields: Mapping[str, str]) -> str:
    """The entry as sorted, compact JSON text: {"fields": {...}, "stream_id": "..."}."""
    return json.dumps({"fields": dict(fields), "stream_id": stream_id}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def chain_hash(prev_hash: str, stream_id: str, fields: Mapping[str, str]) -> str:
    return hashlib.sha256((prev_hash + canonical(stream_id, fields)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainRow:
    seq: int  # 1, 2, 3 ...: the order entries were archived in
    stream_id: str
    fields: Mapping[str, str]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int  # the first row that does not fit
    stream_id: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.seq} (stream id {self.stream_id}): {self.problem}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    rows: int  # rows checked (all of them when intact)
    head_hash: str  # the last row's hash (GENESIS_HASH for an empty archive)
    broken: ChainBreak | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None


def verify_rows(rows: Iterable[ChainRow]) -> ChainReport:
    """Recompute the chain in seq order; the first row that does not fit, if any.

    A missing row shows as a gap in seq or as the next row's prev_hash not matching; an edited
    row as its own hash not matching; a reordered row as its prev_hash not matching.
    """
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for row in rows:
        if row.seq != expected_seq:
            return ChainReport(checked, expected_prev, ChainBreak(
                row.seq, row.stream_id, f"row {expected_seq} is missing (found row {row.seq} next)"))
        if row.prev_hash != expected_prev:
            return ChainReport(checked, expected_prev, ChainBreak(
                row.seq, row.stream_id, "does not follow the row before it (a row was removed, inserted or moved)"))
        if chain_hash(row.prev_hash, row.stream_id, row.fields) != row.hash:
            return ChainReport(checked, expected_prev, ChainBreak(
                row.seq, row.stream_id, "its content does not match its hash (it was changed)"))
        expected_prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
    return ChainReport(checked, expected_prev)
