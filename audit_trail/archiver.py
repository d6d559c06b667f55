"""Copy sl:audit into the audit archive, then trim Redis behind it: run inside the historian process.

The archiver follows the stream from the newest archived entry, archives what is new in
batches (one transaction each, at least every POLL_S), and trims the stream below what is
archived AND beyond the newest keep_in_redis_entries (XTRIM MINID, exact; the newest archived
entry itself always stays, it is the resume point). Nothing is trimmed that is not on disk.

- Redis restarted or lost its data: the newest archived entry is no longer in the stream (or
  differs). The stream is then read from its start; entries already archived with the same
  content are skipped, all others archived: the chain goes on across Redis lifetimes.
- Disk failing: logged once (then quietly), retried with backoff; the cursor does not move and
  Redis keeps everything meanwhile. Redis failing: the same, reconnecting.
- The chain is verified at start and every verify_interval_s in a worker thread.
- Heartbeat: hash sl:audit:archiver every second (ArchiverStatus; docs/redis-keys.md).
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from audit_trail.archive import AuditArchive, audit_archive_path, verify
from audit_trail.chain import GENESIS_HASH, ChainReport
from data_sources.backoff import Backoff
from domain.alarms.journal import stream_id_key
from domain.config_model import PlantConfig
from tag_store import keys
from tag_store.cancellation import cancel_and_wait

log = logging.getLogger(__name__)

ARCHIVER_KEY = keys.PREFIX + "audit:archiver"
KEEP_IN_REDIS_ENTRIES = 100_000
COPY_BATCH = 1000
POLL_S = 0.5
TRIM_INTERVAL_S = 10.0
TRIM_CHUNK = 10_000  # at most this many entries trimmed per round
HEARTBEAT_S = 1.0
VERIFY_INTERVAL_S = 24 * 3600.0
LAG_COUNT_CAP = 10_000  # lag_entries counts up to this many

NOT_VERIFIED = "not verified"
INTACT = "intact"

# Trim only while the resume point is still there: a Redis that lost its data in between
# (new entries with lower ids possible) is not trimmed on the strength of an old cursor.
_TRIM_SCRIPT = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1], 'COUNT', 1) == 0 then return -1 end
return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
"""


@dataclass(slots=True)
class ArchiverStatus:
    heartbeat_ms: int = 0
    state: str = "starting"  # ok, redis_lost, disk_failing, stopped
    archived_through: str = ""  # the newest stream entry known to be on disk
    archived_entries: int = 0  # rows in the archive
    head_hash: str = ""  # the chain's last hash: note it somewhere else to pin the archive's end
    lag_entries: int = -1  # stream entries after archived_through (-1: not known yet)
    chain: str = NOT_VERIFIED  # intact, broken: <row and problem>, not verified
    chain_verified_ms: int = 0
    chain_verified_rows: int = 0
    last_error: str = ""

    def as_fields(self) -> dict[str, str | int]:
        return asdict(self)


async def read_archiver_status(redis: aioredis.Redis) -> dict[str, str]:
    """The heartbeat hash as text; empty when no archiver ever ran."""
    raw = await redis.hgetall(ARCHIVER_KEY)
    return {k.decode(): v.decode() for k, v in raw.items()}


class ArchiveUnavailable(Exception):
    """The archive file cannot be opened, read or written (disk full, permissions, I/O, corrupt)."""


async def _on_disk(call, *args):
    """call(*args) in a worker thread; a disk or SQLite failure becomes ArchiveUnavailable."""
    try:
        return await asyncio.to_thread(call, *args)
    except (sqlite3.Error, OSError) as exc:
        raise ArchiveUnavailable(str(exc)) from exc


def _decoded(fields: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()}


def _now_ms() -> int:
    return int(time.time() * 1000)


class AuditArchiver:
    def __init__(self, redis: aioredis.Redis, archive: AuditArchive, *,
                 keep_in_redis_entries: int = KEEP_IN_REDIS_ENTRIES, poll_s: float = POLL_S,
                 trim_interval_s: float = TRIM_INTERVAL_S, verify_interval_s: float = VERIFY_INTERVAL_S,
                 heartbeat_s: float = HEARTBEAT_S, clock_ms: Callable[[], int] | None = None):
        if keep_in_redis_entries < 1:
            raise ValueError("keep_in_redis_entries must be at least 1")
        self._redis = redis
        self._archive = archive
        self._keep = keep_in_redis_entries
        self._poll_s = poll_s
        self._trim_interval_s = trim_interval_s
        self._verify_interval_s = verify_interval_s
        self._heartbeat_s = heartbeat_s
        self._clock_ms = clock_ms or _now_ms
        self._trim_script = redis.register_script(_TRIM_SCRIPT)
        self.status = ArchiverStatus()
        # The newest stream entry known to be on disk (id, fields); None: nothing yet.
        self._cursor: tuple[str, dict[str, str]] | None = None
        self._cursor_loaded = False
        self._lost_reported = False
        self._behind = True
        self._failing: str | None = None

    # --- one step at a time (tests call these) ----------------------------------------------------

    async def copy_new(self) -> int:
        """Archive one batch of stream entries after the cursor; how many were read."""
        if not self._cursor_loaded:
            last = await _on_disk(self._archive.last_entry)
            self._cursor = (last.stream_id, last.fields) if last else None
            self.status.archived_entries, self.status.head_hash = await _on_disk(self._archive.head)
            self._cursor_loaded = True
        after = await self._resume_after()
        raw = await self._redis.xrange(keys.AUDIT, min=f"({after}" if after else "-", max="+", count=COPY_BATCH)
        entries = [(entry_id.decode(), _decoded(fields)) for entry_id, fields in raw]
        if entries:
            await _on_disk(self._archive.append, entries)
            self._cursor = entries[-1]
            self.status.archived_entries, self.status.head_hash = await _on_disk(self._archive.head)
        if self._cursor is not None:
            self.status.archived_through = self._cursor[0]
        self._behind = len(entries) == COPY_BATCH
        if not self._behind:
            self.status.lag_entries = 0
        return len(entries)

    async def _resume_after(self) -> str | None:
        """The stream id to read after; None: read the stream from its start (nothing archived yet,
        or Redis no longer holds the newest archived entry: it lost its data or was replaced)."""
        if self._cursor is None:
            return None
        cursor_id, fields = self._cursor
        held = await self._redis.xrange(keys.AUDIT, min=cursor_id, max=cursor_id, count=1)
        if held and _decoded(held[0][1]) == fields:
            self._lost_reported = False
            return cursor_id
        if not self._lost_reported:
            log.warning("audit archiver: Redis no longer holds the newest archived entry %s (Redis restarted "
                        "without it or lost its data); archiving what the stream holds now, skipping entries "
                        "already archived", cursor_id)
            self._lost_reported = True
        return None

    async def trim(self) -> int:
        """Drop stream entries that are archived and beyond the newest keep_in_redis_entries."""
        if self._cursor is None:
            return 0
        excess = await self._redis.xlen(keys.AUDIT) - self._keep
        if excess <= 0:
            return 0
        chunk = min(excess, TRIM_CHUNK)
        oldest = await self._redis.xrange(keys.AUDIT, min="-", max="+", count=chunk + 1)
        if len(oldest) <= chunk:
            return 0  # the stream shrank meanwhile: next round
        # Before window_start: beyond the window; before the cursor: archived (the cursor stays).
        window_start = oldest[-1][0].decode()
        min_id = min(window_start, self._cursor[0], key=stream_id_key)
        removed = await self._trim_script(keys=[keys.AUDIT], args=[self._cursor[0], min_id])
        return max(int(removed), 0)

    async def verify_chain(self) -> None:
        """Recompute the archive's chain (worker thread); the result goes into the heartbeat."""
        try:
            report = await asyncio.to_thread(verify, self._archive.path)
        except FileNotFoundError:
            report = ChainReport(0, GENESIS_HASH)  # nothing archived yet: an empty chain is intact
        self.status.chain_verified_ms = self._clock_ms()
        self.status.chain_verified_rows = report.rows
        if report.intact:
            if self.status.chain != INTACT:
                log.info("audit archive: chain intact (%d entries, head %s)", report.rows, report.head_hash[:16])
            self.status.chain = INTACT
        else:
            self.status.chain = f"broken: {report.broken}"
            log.error("audit archive %s: the chain is BROKEN at %s; the file was changed outside Stacklight",
                      self._archive.path, report.broken)

    async def write_heartbeat(self) -> None:
        status = self.status
        status.heartbeat_ms = self._clock_ms()
        if self._behind:
            after = f"({self._cursor[0]}" if self._cursor else "-"
            status.lag_entries = len(await self._redis.xrange(keys.AUDIT, min=after, max="+", count=LAG_COUNT_CAP))
        await self._redis.hset(ARCHIVER_KEY, mapping=status.as_fields())

    # --- the loop -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Archive forever (until cancelled), surviving Redis and disk outages."""
        helpers = [asyncio.create_task(self._heartbeat_loop(), name="audit archiver heartbeat"),
                   asyncio.create_task(self._verify_loop(), name="audit chain verification")]
        try:
            await self._follow()
        finally:
            await cancel_and_wait(helpers)
            self.status.state = "stopped"
            try:
                await self.write_heartbeat()
            except (RedisError, OSError):
                pass

    async def _follow(self) -> None:
        backoff = Backoff(initial_s=0.5, max_s=30.0)
        next_trim_s = 0.0
        while True:
            try:
                copied = await self.copy_new()
                if time.monotonic() >= next_trim_s:
                    await self.trim()
                    next_trim_s = time.monotonic() + self._trim_interval_s
            except ArchiveUnavailable as exc:
                self._failed("disk_failing", f"cannot write {self._archive.path}: {exc}")
                await asyncio.sleep(backoff.next_delay_s())
                continue
            except (RedisError, OSError) as exc:
                self._failed("redis_lost", f"redis: {exc}")
                await asyncio.sleep(backoff.next_delay_s())
                continue
            if self._failing:
                log.info("audit archiver: working again (archived through %s)", self.status.archived_through or "-")
                self._failing = None
                backoff.reset()
            self.status.state = "ok"
            if copied < COPY_BATCH:
                await asyncio.sleep(self._poll_s)

    def _failed(self, state: str, message: str) -> None:
        if self._failing != state:
            log.error("audit archiver: %s; the entries stay in Redis, retrying", message)
        else:
            log.debug("audit archiver still failing: %s", message)
        self._failing = state
        self.status.state = state
        self.status.last_error = message

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.write_heartbeat()
            except (RedisError, OSError):
                pass  # the follow loop reports Redis
            await asyncio.sleep(self._heartbeat_s)

    async def _verify_loop(self) -> None:
        while True:
            try:
                await self.verify_chain()
            except (sqlite3.Error, OSError) as exc:
                self.status.chain = f"{NOT_VERIFIED} ({exc})"
                log.warning("audit archive: the chain could not be verified: %s", exc)
            await asyncio.sleep(self._verify_interval_s)


async def run_audit_archiver(redis: aioredis.Redis, config: PlantConfig, restart_delay_s: float = 5.0) -> None:
    """The historian's task: archive sl:audit into <data_dir>/audit_trail.sqlite3 until cancelled.

    Redis and disk failures are waited out inside; an unexpected error (a bug) is logged with its
    traceback and the archiver starts again, so it never dies silently beside a running historian.
    """
    while True:
        archive = AuditArchive(audit_archive_path(config))
        try:
            await AuditArchiver(redis, archive).run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - see above
            log.exception("audit archiver crashed; starting again in %.0f s (entries wait in Redis)",
                          restart_delay_s)
        finally:
            archive.close()
        await asyncio.sleep(restart_delay_s)
