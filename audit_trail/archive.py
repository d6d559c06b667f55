"""The audit archive: <data_dir>/audit_trail.sqlite3, append-only, one hash chain (audit_trail.chain).

One row per sl:audit entry, in the order archived (seq 1, 2, 3 ...): its stream id, its time
(the stream id's milliseconds, when Redis stored it), every field in a column of its own
(NULL: the entry had no such field; fields unknown today go to `extra` as JSON), prev_hash and
hash. Triggers abort any UPDATE or DELETE, so the file only grows through this module; the
chain makes an edit behind SQLite's back (or a deleted file row) evident to verify().

Stream ids are unique only within one Redis lifetime (a Redis that lost its data starts again),
so a row is not keyed by its stream id: append() skips an entry only when a row with the same
stream id has exactly the same content (the same entry read twice), and archives it otherwise.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from audit_trail.chain import GENESIS_HASH, ChainReport, ChainRow, chain_hash, verify_rows
from domain.alarms.journal import stream_id_key
from domain.config_model import PlantConfig
from tag_store.sqlite_archive import ArchiveFile, open_archive_db, tag_condition

ARCHIVE_FILE_NAME = "audit_trail.sqlite3"
# Stream field -> column. The stream's own "time_ms" field (the appender's clock) is `written_ms`.
FIELD_COLUMNS = {"time_ms": "written_ms", "user": "user", "action": "action", "result": "result", "tag": "tag",
                 "old": "old", "new": "new", "reason": "reason", "source_ip": "source_ip", "comment": "comment"}
TEXT_FIELDS = ("user", "tag", "old", "new", "reason", "source_ip", "comment")  # what a text search looks in
_COLUMNS = ", ".join(FIELD_COLUMNS.values())
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,      -- 1, 2, 3 ...: the chain's order
    stream_id TEXT NOT NULL,      -- the sl:audit entry id ("<ms>-<n>"), unique per Redis lifetime only
    time_ms INTEGER NOT NULL,     -- the stream id's milliseconds: when Redis stored the entry
    id_seq INTEGER NOT NULL,      -- the stream id's sequence part
    written_ms TEXT, user TEXT, action TEXT, result TEXT, tag TEXT, old TEXT, new TEXT, reason TEXT,
    source_ip TEXT, comment TEXT,
    extra TEXT,                   -- other fields as JSON; NULL when none
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_ms, id_seq);
CREATE INDEX IF NOT EXISTS audit_user_time ON audit (user, time_ms);
CREATE INDEX IF NOT EXISTS audit_tag_time ON audit (tag, time_ms);
CREATE INDEX IF NOT EXISTS audit_action_time ON audit (action, time_ms);
CREATE INDEX IF NOT EXISTS audit_stream_id ON audit (stream_id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: rows cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: rows cannot be deleted'); END;
"""
_SELECT = f"SELECT seq, stream_id, {_COLUMNS}, extra, prev_hash, hash FROM audit"
_INSERT = (f"INSERT INTO audit (seq, stream_id, time_ms, id_seq, {_COLUMNS}, extra, prev_hash, hash) "
           f"VALUES ({', '.join('?' * (len(FIELD_COLUMNS) + 7))})")


def audit_archive_path(config: PlantConfig) -> Path:
    """<data_dir>/audit_trail.sqlite3; a relative data_dir is relative to the working directory."""
    return Path(config.data_dir) / ARCHIVE_FILE_NAME


@dataclass(frozen=True, slots=True)
class ArchivedEntry:
    seq: int
    stream_id: str
    fields: dict[str, str]  # exactly the stream entry's fields


@dataclass(frozen=True, slots=True)
class ArchiveSearch:
    """What search() selects; None matches anything. tag: exact, or a prefix ending in "*";
    text: ignoring case, in TEXT_FIELDS. Times (stream id milliseconds) inclusive."""
    from_ms: int | None = None
    to_ms: int | None = None
    user: str | None = None
    tag: str | None = None
    action: str | None = None
    result: str | None = None
    text: str | None = None
    limit: int = 5000


class AuditArchive(ArchiveFile):
    """The audit trail's SQLite file (tag_store.sqlite_archive.ArchiveFile: opened on first use, one
    call at a time). read_only=True (the web): never creates or changes the file; FileNotFoundError
    if it is missing or not set up yet (the archiver has created the file but not its table).
    """

    def append(self, entries: Iterable[tuple[str, Mapping[str, str]]]) -> int:
        """Archive (stream_id, fields) entries in one transaction, continuing the chain; an entry
        already archived with the same content is skipped. Returns how many rows were added."""
        entries = list(entries)
        if not entries:
            return 0
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")  # the chain's head read and extended by one writer at a time
            try:
                row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev_hash = row if row else (0, GENESIS_HASH)
                added = 0
                for stream_id, fields in entries:
                    fields = {str(k): str(v) for k, v in fields.items()}
                    if _already_archived(db, stream_id, fields):
                        continue
                    seq += 1
                    digest = chain_hash(prev_hash, stream_id, fields)
                    db.execute(_INSERT, _row_values(seq, stream_id, fields, prev_hash, digest))
                    prev_hash, added = digest, added + 1
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a failed COMMIT may have ended it already
                    db.execute("ROLLBACK")
                raise
        return added

    def last_entry(self) -> ArchivedEntry | None:
        """The newest row (the chain's head); None for an empty archive."""
        with self._lock:
            row = self._connection().execute(f"{_SELECT} ORDER BY seq DESC LIMIT 1").fetchone()
        return _entry(row) if row else None

    def head(self) -> tuple[int, str]:
        """(rows, the last row's hash): GENESIS_HASH for an empty archive."""
        with self._lock:
            row = self._connection().execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS_HASH)

    def count(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT count(*) FROM audit").fetchone()[0]

    def last_of_actions(self, actions: tuple[str, ...], result: str = "ok") -> ArchivedEntry | None:
        """The newest row with one of these actions and this result."""
        marks = ", ".join("?" * len(actions))
        with self._lock:
            row = self._connection().execute(
                f"{_SELECT} WHERE action IN ({marks}) AND result = ? ORDER BY seq DESC LIMIT 1",
                (*actions, result)).fetchone()
        return _entry(row) if row else None

    def search(self, search: ArchiveSearch) -> list[ArchivedEntry]:
        """Rows matching, newest first (by time, then archive order), at most search.limit."""
        where, params = _where(search)
        sql = f"{_SELECT}{where} ORDER BY time_ms DESC, id_seq DESC, seq DESC LIMIT ?"
        with self._lock:
            rows = self._connection().execute(sql, (*params, max(search.limit, 0))).fetchall()
        return [_entry(row) for row in rows]

    def chain_rows(self) -> Iterator[ChainRow]:
        """Every row in chain order (for verify); reads in pages, holding the lock per page only."""
        after = 0
        while True:
            with self._lock:
                rows = self._connection().execute(f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT 5000",
                                                  (after,)).fetchall()
            for row in rows:
                entry = _entry(row)
                yield ChainRow(entry.seq, entry.stream_id, entry.fields, row[-2], row[-1])
            if len(rows) < 5000:
                return
            after = rows[-1][0]

    def _open(self) -> sqlite3.Connection:
        db = open_archive_db(self.path, read_only=self.read_only, schema=_SCHEMA, synchronous="FULL",
                             what="audit archive")
        if self.read_only and not db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone():
            db.close()
            raise FileNotFoundError(f"the audit archive {self.path} is not set up yet")
        db.isolation_level = None  # transactions are explicit (append)
        db.create_function("sl_text_matches", 1 + len(TEXT_FIELDS), _text_matches, deterministic=True)
        return db


def verify(path: Path | str) -> ChainReport:
    """Recompute the whole chain of the archive at path (read-only). FileNotFoundError if missing."""
    with AuditArchive(path, read_only=True) as archive:
        return verify_rows(archive.chain_rows())


def _row_values(seq: int, stream_id: str, fields: dict[str, str], prev_hash: str, digest: str) -> tuple:
    ms, id_seq = stream_id_key(stream_id)
    extra = {k: v for k, v in fields.items() if k not in FIELD_COLUMNS}
    return (seq, stream_id, ms, id_seq, *(fields.get(name) for name in FIELD_COLUMNS),
            json.dumps(extra, sort_keys=True, ensure_ascii=False) if extra else None, prev_hash, digest)


def _entry(row: tuple) -> ArchivedEntry:
    seq, stream_id, *values = row
    column_values, extra = values[:len(FIELD_COLUMNS)], values[len(FIELD_COLUMNS)]
    fields = {name: value for name, value in zip(FIELD_COLUMNS, column_values) if value is not None}
    if extra:
        fields.update(json.loads(extra))
    return ArchivedEntry(seq, stream_id, fields)


def _already_archived(db: sqlite3.Connection, stream_id: str, fields: dict[str, str]) -> bool:
    rows = db.execute(f"{_SELECT} WHERE stream_id = ?", (stream_id,)).fetchall()
    return any(_entry(row).fields == fields for row in rows)


def _text_matches(needle: str, *haystack: str | None) -> bool:
    folded = needle.casefold()
    return any(part is not None and folded in part.casefold() for part in haystack)


def _where(search: ArchiveSearch) -> tuple[str, list]:
    conditions: list[str] = []
    params: list = []
    if search.from_ms is not None:
        conditions.append("time_ms >= ?")
        params.append(search.from_ms)
    if search.to_ms is not None:
        conditions.append("time_ms <= ?")
        params.append(search.to_ms)
    for name in ("user", "action", "result"):
        value = getattr(search, name)
        if value is not None:
            conditions.append(f"{name} = ?")  # a filter is never blank, so NULL (no such field) never matches
            params.append(value)
    if search.tag is not None:
        condition, values = tag_condition(search.tag)
        if condition is not None:
            conditions.append(condition)
            params += values
    if search.text is not None:
        conditions.append(f"sl_text_matches(?, {', '.join(TEXT_FIELDS)})")
        params.append(search.text)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params
