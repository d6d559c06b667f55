"""The alarm journal on disk: sl:alarm:journal copied into SQLite, kept for the retention period.

The alarm engine appends every transition to the Redis stream; the archiver in the
engine's process copies new entries into <data_dir>/alarm_journal.sqlite3 (keyed by
the stream id, so copying an entry twice is harmless), prunes entries older than
alarm_system.journal_retention_days about hourly, and trims from the stream what is
archived and older than an hour, so Redis stays small and the newest entries stay in
Redis too. An entry is only ever trimmed after it is in the archive. The web reads both
(web/alarm_journal.py).
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import astuple, fields
from pathlib import Path
from typing import Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from domain.alarms.journal import JournalEntry, JournalQuery, entry_from_stream_fields, stream_id_key, text_matches
from domain.config_model import PlantConfig
from tag_store import keys
from tag_store.sqlite_archive import ArchiveFile, open_archive_db, tag_condition

log = logging.getLogger(__name__)

ARCHIVE_FILE_NAME = "alarm_journal.sqlite3"
COPY_BATCH = 1000
KEEP_IN_REDIS_MS = 3_600_000
PRUNE_INTERVAL_S = 3600.0
TRIM_INTERVAL_S = 60.0

_COLUMNS = [f.name for f in fields(JournalEntry)]  # entry_id first, as in the table
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS journal (
    entry_id TEXT PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    alarm_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    kind TEXT NOT NULL,
    area TEXT NOT NULL,
    priority INTEGER NOT NULL,
    message TEXT NOT NULL,
    transition TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    value REAL,
    user TEXT,
    comment TEXT,
    value_text TEXT,
    id_ms INTEGER NOT NULL,
    id_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_time ON journal (time_ms);
CREATE INDEX IF NOT EXISTS journal_tag_time ON journal (tag, time_ms);
CREATE INDEX IF NOT EXISTS journal_area_time ON journal (area, time_ms);
CREATE INDEX IF NOT EXISTS journal_priority_time ON journal (priority, time_ms);
-- The newest stream id ever archived: where copying resumes, also after pruning emptied the table.
CREATE TABLE IF NOT EXISTS archive_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INSERT = (f"INSERT OR IGNORE INTO journal ({', '.join(_COLUMNS)}, id_ms, id_seq) "
           f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM journal"


def journal_archive_path(config: PlantConfig) -> Path:
    """<data_dir>/alarm_journal.sqlite3; a relative data_dir is relative to the working directory."""
    return Path(config.data_dir) / ARCHIVE_FILE_NAME


class JournalArchive(ArchiveFile):
    """The alarm journal's SQLite file (tag_store.sqlite_archive.ArchiveFile: opened on first use,
    one call at a time; read_only never creates or changes it)."""

    def append(self, entries: Iterable[JournalEntry]) -> int:
        """Archive entries (those already there are skipped); returns how many were new."""
        rows = [(*astuple(e), *stream_id_key(e.entry_id)) for e in entries]
        if not rows:
            return 0
        newest = max((row[0] for row in rows), key=stream_id_key)
        with self._lock:
            db = self._connection()
            with db:  # one transaction: the rows and the resume point together
                before = db.total_changes
                db.executemany(_INSERT, rows)
                added = db.total_changes - before
                last = self._last_id(db)
                if last is None or stream_id_key(newest) > stream_id_key(last):
                    db.execute("INSERT OR REPLACE INTO archive_state (name, value) VALUES ('last_id', ?)",
                               (newest,))
        return added

    def last_archived_id(self) -> str | None:
        """The newest stream id archived so far (None: nothing yet)."""
        with self._lock:
            return self._last_id(self._connection())

    def search(self, query: JournalQuery) -> list[JournalEntry]:
        """Entries matching the query (domain.alarms.journal.matches), newest first, at most query.limit."""
        where, params = _where(query)
        sql = f"{_SELECT}{where} ORDER BY time_ms DESC, id_ms DESC, id_seq DESC LIMIT ?"
        with self._lock:
            rows = self._connection().execute(sql, (*params, max(query.limit, 0))).fetchall()
        return [JournalEntry(*row) for row in rows]

    def prune(self, older_than_ms: int) -> int:
        """Delete entries with time_ms before the given time; returns how many."""
        with self._lock:
            db = self._connection()
            with db:
                return db.execute("DELETE FROM journal WHERE time_ms < ?", (older_than_ms,)).rowcount

    def count(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT count(*) FROM journal").fetchone()[0]

    def _open(self) -> sqlite3.Connection:
        db = open_archive_db(self.path, read_only=self.read_only, schema=_SCHEMA, what="alarm journal archive")
        # The same text test as domain.alarms.journal.matches (Unicode case folding, not SQL LIKE).
        db.create_function("sl_text_matches", 4, text_matches, deterministic=True)
        return db

    @staticmethod
    def _last_id(db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT value FROM archive_state WHERE name = 'last_id'").fetchone()
        return row[0] if row else None


def _where(query: JournalQuery) -> tuple[str, list]:
    """SQL conditions that ask exactly what domain.alarms.journal.matches asks."""
    conditions: list[str] = []
    params: list = []
    if query.start_ms is not None:
        conditions.append("time_ms >= ?")
        params.append(query.start_ms)
    if query.end_ms is not None:
        conditions.append("time_ms <= ?")
        params.append(query.end_ms)
    if query.tag is not None:
        condition, values = tag_condition(query.tag)
        if condition is not None:
            conditions.append(condition)
            params += values
    if query.area is not None:
        conditions.append("area = ?")
        params.append(query.area)
    if query.priority is not None:
        conditions.append("priority = ?")
        params.append(query.priority)
    if query.text is not None:
        conditions.append("sl_text_matches(?, message, user, comment)")
        params.append(query.text)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


def decode_stream_entries(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[JournalEntry]:
    return [entry_from_stream_fields(entry_id.decode(), {k.decode(): v.decode() for k, v in data.items()})
            for entry_id, data in entries]


async def read_stream_after(redis: aioredis.Redis, after_id: str | None, count: int = COPY_BATCH) -> list[JournalEntry]:
    """Up to `count` stream entries with ids after after_id (None: from the start), oldest first."""
    low = f"({after_id}" if after_id else "-"
    return decode_stream_entries(await redis.xrange(keys.ALARM_JOURNAL, min=low, max="+", count=count))


async def trim_journal_stream(redis: aioredis.Redis, archived_up_to: str | None, older_than_ms: int) -> int:
    """XTRIM MINID: drop stream entries written before older_than_ms, but only archived ones.

    Entries up to archived_up_to are in the archive; that entry itself stays, so the stream
    never looks as if entries were lost (see _Archiver.warn_about_gap). Returns how many went.
    """
    if archived_up_to is None:
        return 0
    ms, seq = min((older_than_ms, 0), stream_id_key(archived_up_to))
    return await redis.xtrim(keys.ALARM_JOURNAL, minid=f"{ms}-{seq}", approximate=False)


async def run_journal_archiver(redis: aioredis.Redis, archive: JournalArchive, retention_days: int,
                               poll_s: float = 0.5, *, clock_ms: Callable[[], int] | None = None,
                               keep_in_redis_ms: int = KEEP_IN_REDIS_MS, prune_interval_s: float = PRUNE_INTERVAL_S,
                               trim_interval_s: float = TRIM_INTERVAL_S) -> None:
    """Copy the journal stream into the archive forever, surviving Redis and disk outages.

    The first failure is logged as an error, repeats quietly, the recovery at info. Nothing is
    trimmed from the stream that is not archived, so an outage of the disk loses nothing (up to
    the stream's own cap, alarm_store.JOURNAL_MAXLEN).
    """
    archiver = _Archiver(redis, archive, retention_days * 86_400_000, clock_ms or _now_ms, keep_in_redis_ms)
    delay_s, failing, gap_checked = poll_s, False, False
    next_prune_s = next_trim_s = 0.0
    while True:
        try:
            if not gap_checked:  # at start and after every outage (a Redis without persistence forgets)
                await archiver.warn_about_gap()
                gap_checked = True
            copied = await archiver.copy_new()
            now_s = time.monotonic()
            if now_s >= next_trim_s:
                await archiver.trim_stream()
                next_trim_s = now_s + trim_interval_s
            if now_s >= next_prune_s:
                await archiver.prune()
                next_prune_s = now_s + prune_interval_s
            if failing:
                log.info("alarm journal archiver: working again")
                failing, delay_s = False, poll_s
            if copied < COPY_BATCH:
                await asyncio.sleep(poll_s)
        except (RedisError, OSError, sqlite3.Error) as exc:
            if not failing:
                log.error("alarm journal archiver failed (%s); the entries stay in Redis, retrying", exc)
            else:
                log.debug("alarm journal archiver still failing: %s", exc)
            failing, gap_checked = True, False
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 10.0)


class _Archiver:
    """One step at a time; SQLite runs in a worker thread so the event loop never waits on the disk."""

    def __init__(self, redis: aioredis.Redis, archive: JournalArchive, retention_ms: int,
                 clock_ms: Callable[[], int], keep_in_redis_ms: int):
        self._redis = redis
        self._archive = archive
        self._retention_ms = retention_ms
        self._clock_ms = clock_ms
        self._keep_in_redis_ms = keep_in_redis_ms

    async def copy_new(self) -> int:
        """Copy one batch of new stream entries; how many there were."""
        last = await asyncio.to_thread(self._archive.last_archived_id)
        entries = await read_stream_after(self._redis, last)
        if entries:
            await asyncio.to_thread(self._archive.append, entries)
        return len(entries)

    async def trim_stream(self) -> None:
        last = await asyncio.to_thread(self._archive.last_archived_id)
        await trim_journal_stream(self._redis, last, self._clock_ms() - self._keep_in_redis_ms)

    async def prune(self) -> None:
        removed = await asyncio.to_thread(self._archive.prune, self._clock_ms() - self._retention_ms)
        if removed:
            log.info("alarm journal archive: %d entries older than the retention period removed", removed)

    async def warn_about_gap(self) -> None:
        """After a start: entries the stream dropped before they were archived are lost; say so."""
        last = await asyncio.to_thread(self._archive.last_archived_id)
        oldest = await self._redis.xrange(keys.ALARM_JOURNAL, count=1)
        if last is not None and oldest and stream_id_key(oldest[0][0].decode()) > stream_id_key(last):
            log.warning("alarm journal: the stream now starts at %s, after the last archived entry %s; "
                        "entries in between may be missing from the archive", oldest[0][0].decode(), last)


def _now_ms() -> int:
    return int(time.time() * 1000)
