"""The historian: every sample of sl:samples into Parquet files, surviving Redis and disk outages.

One loop follows the feed from the cursor (the last sl:samples entry id on disk, read back from
the file names at start), buffers the decoded samples and writes them as a segment every
flush_interval_s (sooner when the buffer is large): the cursor moves only once the file is on
disk. Beside it, compaction and retention run in a worker thread every compaction_interval_s,
and a heartbeat goes to sl:historian every second. docs/historian.md has the guarantees.

- Fallen behind (the feed no longer holds the entry after the cursor, or first start): the
  missing range is taken from the per-tag streams (historian/backfill.py) before the feed.
- Disk failing: the buffer is kept (at most max_buffer_samples; beyond, the oldest are dropped
  and counted) and the write retried with backoff; the feed is still followed.
- Redis lost: reconnect with backoff; the buffer is still written on time; resume at the cursor.
- stop(): read what the feed holds now, write everything, return True when nothing was lost.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from data_sources.backoff import Backoff
from domain.config_model import DataType, PlantConfig
from historian.backfill import backfill, lost_ranges, tags_with_history
from historian.feed_buffer import Chunk, SampleBuffer, chunk_of_entry, columns_of, entry_before, entry_key, \
    entry_ms, text
from historian.heartbeat import HistorianState, HistorianStatus, write_heartbeat
from historian.paths import HOUR_MS, ZERO_ENTRY
from historian.sample_rows import SampleRows
from historian.storage import compact, disk_bytes, prune, saved_cursor, write_segment
from tag_store import keys
from tag_store.cancellation import cancel_and_wait

log = logging.getLogger(__name__)

FEED_COUNT = 500  # at most this many sl:samples entries per read ...
READ_TARGET_SAMPLES = 20_000  # ... and about this many samples (entries hold 1 to 5,000 samples)
FLUSH_AT_SAMPLES = 100_000  # write at once when this many are buffered
WAIT_MAX_S = 0.5  # the longest blocking read: how quickly a stop is noticed
HEARTBEAT_S = 1.0
DISK_BYTES_EVERY_S = 10.0
STOP_DRAIN_S = 5.0  # at a stop: read what the feed holds for at most this long ...
STOP_WRITE_S = 5.0  # ... and retry a failing write for at most this long
LOG_DROPS_EVERY_S = 60.0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _take(rows: SampleRows, mask) -> SampleRows:
    return SampleRows(rows.tag[mask], rows.ts_ms[mask], rows.value[mask], rows.quality[mask])


def fell_behind(read_cursor: str, first_held: str | None) -> bool:
    """True when the feed may have dropped entries after the cursor (its first is not the next one)."""
    return (first_held is not None and entry_key(first_held) > entry_key(read_cursor)
            and entry_before(first_held) != read_cursor)


class Historian:
    def __init__(self, redis: aioredis.Redis, config: PlantConfig, data_dir: Path,
                 clock_ms: Callable[[], int] | None = None):
        self._redis = redis
        self._config = config
        self._settings = config.historian
        self._data_dir = data_dir
        self._clock_ms = clock_ms or _now_ms
        self._buffer = SampleBuffer(self._settings.max_buffer_samples)
        self._flush_at_samples = min(FLUSH_AT_SAMPLES, self._settings.max_buffer_samples // 2)
        self._skip_tags = frozenset(t.name for t in config.tags if t.data_type is DataType.STRING)
        self.status = HistorianStatus()
        # The newest sl:samples entry read (buffered or on disk); None: not known yet (start).
        self._read_cursor: str | None = None
        self._caught_up = False
        # The feed's entries-added count at the read cursor (None: not known), for behind_entries.
        self._added_at_read: int | None = None
        self._unread: int | None = None
        self._read_count = 100  # entries per read, adapted to READ_TARGET_SAMPLES
        self._last_read_full = False
        self._stopping = asyncio.Event()
        self._next_flush_s = 0.0
        self._disk_backoff = Backoff(initial_s=0.5, max_s=30.0)
        self._disk_failing = False
        self._redis_failing = False
        self._last_drop_log_s = 0.0
        # Writes and compaction never overlap (both name files): held in the worker thread doing either.
        self._disk_lock = threading.Lock()

    def stop(self) -> None:
        """A clean stop: run() reads what the feed holds, writes everything and returns."""
        self._stopping.set()

    async def run(self) -> bool:
        """Follow the feed until stop() (or cancellation); True when everything read is on disk."""
        if not await self._load_cursor():
            return True  # stopped before the disk could be read: nothing was read either
        helpers = [asyncio.create_task(self._heartbeat_loop(), name="historian heartbeat"),
                   asyncio.create_task(self._maintenance_loop(), name="historian compaction")]
        try:
            await self._follow()
            await self._drain_feed()
        finally:
            finishing = asyncio.ensure_future(self._finish(helpers))
            while not finishing.done():
                try:
                    await asyncio.shield(finishing)
                except asyncio.CancelledError:
                    continue  # a second cancel must not cut the last write short
        return finishing.result()

    # --- start and stop ---------------------------------------------------------------------------

    async def _load_cursor(self) -> bool:
        backoff = Backoff(initial_s=0.5, max_s=30.0)
        while not self._stopping.is_set():
            try:
                self._data_dir.mkdir(parents=True, exist_ok=True)
                cursor = await asyncio.to_thread(saved_cursor, self._data_dir)
                self.status.disk_bytes = await asyncio.to_thread(disk_bytes, self._data_dir)
            except Exception as exc:  # noqa: BLE001 - an unreadable data dir: say so, retry, never crash-loop
                self._disk_error(f"cannot read {self._data_dir}: {exc}")
                await self._pause(backoff.next_delay_s())
                continue
            self._read_cursor = cursor
            self.status.cursor = cursor or ""
            self._disk_ok()
            log.info("historian: files in %s; %s", self._data_dir,
                     f"resuming after feed entry {cursor}" if cursor else "no files yet (first start)")
            return True
        return False

    async def _finish(self, helpers: list[asyncio.Task]) -> bool:
        await cancel_and_wait(helpers)
        deadline_s = time.monotonic() + STOP_WRITE_S
        while self._buffer and not await self._flush() and time.monotonic() < deadline_s:
            await asyncio.sleep(0.2)
        complete = not self._buffer
        if complete:
            self.status.state = HistorianState.STOPPED
            log.info("historian stopped: everything up to feed entry %s is on disk", self.status.cursor or "-")
        else:
            log.error("historian stopped with %d samples NOT written (%s); they are lost unless the feed "
                      "or sl:hist still holds them at the next start", self._buffer.samples, self.status.last_error)
        try:
            await self._write_heartbeat()
        except (RedisError, OSError):
            pass
        return complete

    async def _drain_feed(self) -> None:
        """At a stop: read what the feed holds now, so a clean stop leaves nothing behind."""
        deadline_s = time.monotonic() + STOP_DRAIN_S
        try:
            while time.monotonic() < deadline_s and self._caught_up:
                await self._read_once()
                await self._flush_if_due()
                if not self._last_read_full:
                    return
        except (RedisError, OSError) as exc:
            log.warning("historian: could not read the rest of the feed at the stop (%s); the next start will", exc)

    async def _pause(self, delay_s: float) -> None:
        """Sleep, but wake for a stop."""
        try:
            await asyncio.wait_for(self._stopping.wait(), delay_s)
        except TimeoutError:
            pass

    # --- following the feed -----------------------------------------------------------------------

    async def _follow(self) -> None:
        backoff = Backoff(initial_s=0.5, max_s=10.0)
        while not self._stopping.is_set():
            try:
                if not self._caught_up:
                    await self._catch_up()
                if self._buffer.samples >= self._flush_at_samples and self._disk_lock.locked():
                    await self._pause(0.05)  # compaction holds the disk: let the feed hold the rest meanwhile
                    continue
                read = await self._read_once()
                if self._redis_failing:
                    log.info("historian: Redis is back; following the feed after entry %s", self._read_cursor)
                    self._redis_failing = False
                    backoff.reset()
                if read == 0:
                    await self._wait_for_feed()
            except (RedisError, OSError) as exc:
                if not self._redis_failing:
                    log.error("historian: lost Redis (%s); %d samples held, still written to disk; reconnecting",
                              exc, self._buffer.samples)
                self._redis_failing = True
                self.status.last_error = f"redis: {exc}"
                await self._pause_flushing(backoff.next_delay_s())
            await self._flush_if_due()

    async def _pause_flushing(self, delay_s: float) -> None:
        deadline_s = time.monotonic() + delay_s
        while not self._stopping.is_set() and (left_s := deadline_s - time.monotonic()) > 0:
            await self._pause(min(left_s, WAIT_MAX_S))
            await self._flush_if_due()

    async def _read_once(self) -> int:
        """Read entries after the read cursor; how many. Notices a gap (and catches up instead)."""
        count = self._read_count
        pipe = self._redis.pipeline(transaction=True)  # the read and the feed's state at the same instant
        pipe.xread({keys.SAMPLES: self._read_cursor}, count=count)
        pipe.xinfo_stream(keys.SAMPLES)
        read, info = await pipe.execute(raise_on_error=False)
        if isinstance(read, Exception):
            raise read
        info = None if isinstance(info, Exception) else info  # no feed yet
        first = info.get("first-entry") if info else None
        if fell_behind(self._read_cursor, text(first[0]) if first else None):
            await self._catch_up()
            return 0
        entries = read[0][1] if read else []
        samples = 0
        for entry_id, fields in entries:
            try:
                chunk = chunk_of_entry(text(entry_id), fields, self._skip_tags)
            except (ValueError, KeyError, TypeError) as exc:  # never stop on one bad entry: skip it, say so
                log.error("historian: unreadable feed entry %s skipped: %r", text(entry_id), exc)
                chunk = Chunk(text(entry_id))
            self._add(chunk)
            samples += len(chunk) + chunk.skipped_text
            if self._buffer.samples >= self._flush_at_samples:
                await self._flush_if_due()
        if entries:
            self._read_count = max(1, min(FEED_COUNT, READ_TARGET_SAMPLES * len(entries) // max(samples, 1)))
        self._last_read_full = len(entries) >= count
        added = int(info["entries-added"]) if info and "entries-added" in info else None
        if not self._last_read_full:  # read up to the newest entry
            self._added_at_read, self._unread = added, 0
        elif self._added_at_read is not None and added is not None:
            self._added_at_read += len(entries)
            self._unread = max(added - self._added_at_read, 0)
        else:
            self._unread = None
        return len(entries)

    async def _wait_for_feed(self) -> None:
        """Block until a new entry arrives, a flush is due or WAIT_MAX_S passed."""
        wait_s = min(WAIT_MAX_S, max(self._next_flush_s - time.monotonic(), 0.01)) if self._buffer else WAIT_MAX_S
        await self._redis.xread({keys.SAMPLES: self._read_cursor}, count=1, block=max(int(wait_s * 1000), 1))

    async def _catch_up(self) -> None:
        """Take what only sl:hist:<tag> still holds (before the first held feed entry), then follow the feed."""
        info = await self._redis.xinfo_stream(keys.SAMPLES) if await self._redis.exists(keys.SAMPLES) else None
        first = info.get("first-entry") if info else None
        if first:
            first_held = text(first[0])
        else:  # no feed: everything the streams hold until now
            seconds, micros = await self._redis.time()
            first_held = f"{seconds * 1000 + micros // 1000}-0"
        after = self._read_cursor
        if after is not None and not fell_behind(after, first_held):
            self._caught_up = True
            return
        tags = await tags_with_history(self._redis, self._config)
        lost = await lost_ranges(self._redis, tags, entry_ms(after) if after else -1)
        samples = 0
        async for chunk in backfill(self._redis, tags, after, first_held, self._skip_tags):
            samples += len(chunk)
            self._add(chunk)
            if self._buffer.samples >= self._flush_at_samples:
                await self._flush()
            if self._stopping.is_set():
                log.info("historian: stopping in the middle of a backfill; the next start goes on after %s",
                         self._read_cursor)
                return  # what was read is written at the stop; its cursor is the last window's end
        self._added_at_read = self._unread = None
        self._caught_up = True
        self._describe_catch_up(after, first_held, samples, len(tags), lost)
        await self._flush()  # the recovered range goes to disk before the feed is followed

    def _describe_catch_up(self, after: str | None, first_held: str, samples: int, tags: int, lost: list) -> None:
        if after is None:
            log.info("historian: first start: %d samples of %d tags taken from sl:hist:<tag>, then the feed from"
                     " entry %s", samples, tags, first_held)
        else:
            log.warning("historian: the feed no longer holds the entries after %s (%s; down longer than"
                        " sl:samples keeps?): %d samples recovered from sl:hist:<tag> up to %s", after,
                        _utc(entry_ms(after)), samples, first_held)
        if lost:
            examples = ", ".join(f"{r.tag} (kept from {_utc(r.first_kept_ms)})" for r in lost[:5])
            more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
            if after is None:
                log.info("historian: the history of %d tags before their oldest kept sample is gone (before this"
                         " historian): %s%s", len(lost), examples, more)
            else:
                log.error("historian: NOT recovered: samples of %d tags after %s up to their oldest kept sample"
                          " (sl:hist:<tag> was trimmed too): %s%s", len(lost), _utc(entry_ms(after)), examples, more)

    def _add(self, chunk: Chunk) -> None:
        self._read_cursor = chunk.entry_id
        dropped = self._buffer.add(chunk)
        if not dropped:
            return
        self.status.dropped_samples = self._buffer.dropped_samples
        now_s = time.monotonic()
        if now_s - self._last_drop_log_s >= LOG_DROPS_EVERY_S:
            self._last_drop_log_s = now_s
            log.error("historian: buffer full (max_buffer_samples %d) while the disk fails: the oldest samples"
                      " are dropped, %d LOST so far", self._buffer.max_samples, self._buffer.dropped_samples)

    # --- writing ----------------------------------------------------------------------------------

    async def _flush_if_due(self) -> None:
        if not self._buffer:
            return
        due = time.monotonic() >= self._next_flush_s
        if self._disk_lock.locked():
            return  # compaction is running: keep reading, write when it is done
        if due or (self._buffer.samples >= self._flush_at_samples and not self._disk_failing):
            await self._flush()

    async def _flush(self) -> bool:
        """Write everything buffered as one segment; False (buffer kept, retry later) when the disk refuses."""
        chunks = self._buffer.pending()
        if not chunks:
            return True
        cursor = chunks[-1].entry_id
        tags, ts_ms, values, qualities = columns_of(chunks)
        try:
            if ts_ms:
                rows = SampleRows.from_lists(tags, ts_ms, values, qualities)
                self.status.disk_bytes += await asyncio.to_thread(self._write, rows, cursor)
        except Exception as exc:  # noqa: BLE001 - disk full, permissions, I/O: keep the samples, retry
            self._disk_error(f"cannot write to {self._data_dir}: {exc}")
            self._next_flush_s = time.monotonic() + self._disk_backoff.next_delay_s()
            return False
        self._buffer.release(chunks)
        self.status.cursor = cursor
        self.status.last_flush_ms = self._clock_ms()
        if self._disk_failing:
            log.info("historian: writing to %s again (%d samples written; %d samples dropped since the start)",
                     self._data_dir, len(ts_ms), self._buffer.dropped_samples)
        self._disk_ok()
        self._next_flush_s = time.monotonic() + self._settings.flush_interval_s
        return True

    def _write(self, rows: SampleRows, cursor: str) -> int:
        """write_segment, crash-safe across hours: a file per source-time hour, and the files' names carry
        the cursor, so the newest hour's file (with the new cursor) is written last; the others carry the
        previous cursor. A crash in between then repeats a little (read again) instead of losing it."""
        hours = rows.ts_ms // HOUR_MS
        older = hours != hours.max()
        written: list[Path] = []
        with self._disk_lock:
            if older.any():
                written += write_segment(self._data_dir, _take(rows, older), self.status.cursor or ZERO_ENTRY)
                rows = _take(rows, ~older)
            written += write_segment(self._data_dir, rows, cursor)
        return sum(path.stat().st_size for path in written)

    def _maintain(self, now_ms: int) -> tuple[int, int, int]:
        """Compaction, then retention: (partitions merged, partitions removed, disk bytes)."""
        with self._disk_lock:
            merged = compact(self._data_dir, now_ms, int(self._settings.compaction_grace_s * 1000))
            removed = prune(self._data_dir, now_ms, self._settings.retention_days)
        return merged, removed, disk_bytes(self._data_dir)

    def _disk_error(self, message: str) -> None:
        if not self._disk_failing:
            log.error("historian: %s; holding up to %d samples in memory and retrying", message,
                      self._buffer.max_samples)
        else:
            log.debug("historian: still failing: %s", message)
        self._disk_failing = True
        self.status.last_error = f"disk: {message}"

    def _disk_ok(self) -> None:
        self._disk_failing = False
        self._disk_backoff.reset()

    # --- beside the loop --------------------------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        """Compaction and retention in a worker thread, so the feed is followed meanwhile."""
        failing = False
        while True:
            await asyncio.sleep(self._settings.compaction_interval_s)
            now_ms = self._clock_ms()
            try:
                merged, removed, self.status.disk_bytes = await asyncio.to_thread(self._maintain, now_ms)
            except Exception as exc:  # noqa: BLE001 - the next round tries again; the follow loop goes on
                if not failing:
                    log.error("historian: compaction or retention failed (%s); retrying every %.0f s", exc,
                              self._settings.compaction_interval_s)
                failing = True
                continue
            if failing:
                log.info("historian: compaction and retention work again")
                failing = False
            self.status.last_compaction_ms = now_ms
            if removed:
                log.info("historian: %d partitions older than %g days removed", removed,
                         self._settings.retention_days)
            if merged:
                log.debug("historian: compaction merged %d partitions", merged)

    async def _heartbeat_loop(self) -> None:
        next_size_s = time.monotonic() + DISK_BYTES_EVERY_S
        while True:
            try:
                await self._write_heartbeat()
            except (RedisError, OSError):
                pass  # the follow loop reports Redis
            await asyncio.sleep(HEARTBEAT_S)
            if time.monotonic() >= next_size_s:
                next_size_s = time.monotonic() + DISK_BYTES_EVERY_S
                try:
                    self.status.disk_bytes = await asyncio.to_thread(disk_bytes, self._data_dir)
                except Exception:  # noqa: BLE001 - a failing disk shows in state and last_error
                    pass

    async def _write_heartbeat(self) -> None:
        status = self.status
        status.heartbeat_ms = self._clock_ms()
        status.buffered_samples = self._buffer.samples
        status.dropped_samples = self._buffer.dropped_samples
        status.behind_entries = -1 if self._unread is None else self._buffer.feed_entries + self._unread
        if status.state is not HistorianState.STOPPED:
            status.state = (HistorianState.REDIS_LOST if self._redis_failing else
                            HistorianState.DISK_FAILING if self._disk_failing else HistorianState.OK)
        await write_heartbeat(self._redis, status)
