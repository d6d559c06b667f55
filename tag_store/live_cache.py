"""A process-wide mirror of the latest tag values, fed by the CHANGES stream.

One LiveCache per process (web worker, alarm engine) reads Redis once for all
its sessions: a snapshot of LATEST, then XREAD BLOCK on CHANGES from the
snapshot's position. Each reader asks changes_since(version) and gets only what
changed, which is how the push loops send deltas and never the whole plant.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tag_store import keys
from tag_store.source_status import SourceStatus, read_statuses

log = logging.getLogger(__name__)

# Readers (push loops) run at up to 10 Hz; a few hundred batches covers any live reader.
RECENT_VERSIONS_KEPT = 512


class LiveCache:
    def __init__(self, redis: aioredis.Redis, sources: list[str], status_poll_s: float = 1.0):
        self._redis = redis
        self._sources = sources
        self._status_poll_s = status_poll_s
        # tag -> encoded value dict (see codec.py), and the version at which it last changed
        self.values: dict[str, dict[str, Any]] = {}
        # Which tags each recent version changed, so a reader that is a few versions behind
        # is answered from these sets, not by walking every tag. Bounded: older readers get all.
        self._recent_changes: deque[tuple[int, frozenset[str]]] = deque(maxlen=RECENT_VERSIONS_KEPT)
        self.version = 0
        self.source_statuses: dict[str, SourceStatus | None] = {}
        self.connected = False
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        await asyncio.gather(self._follow_changes(), self._poll_source_statuses())

    async def _follow_changes(self) -> None:
        delay_s = 0.5
        while True:
            try:
                last_id = await self._load_snapshot()
                self.connected = True
                delay_s = 0.5
                while True:
                    replies = await self._redis.xread({keys.CHANGES: last_id}, block=1000, count=500)
                    for _stream, entries in replies or []:
                        for entry_id, fields in entries:
                            last_id = entry_id
                            self._apply(json.loads(fields[b"b"]))
                        await self._notify()
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.error("live cache lost Redis: %s", exc)
                self.connected = False
                await self._notify()
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)

    async def _load_snapshot(self) -> bytes | str:
        # Take the stream position first: changes after it are replayed, none are missed.
        newest = await self._redis.xrevrange(keys.CHANGES, count=1)
        last_id = newest[0][0] if newest else "0-0"
        latest = await self._redis.hgetall(keys.LATEST)
        self._apply({k.decode(): json.loads(v) for k, v in latest.items()})
        await self._notify()
        log.info("live cache loaded %d tags", len(latest))
        return last_id

    def _apply(self, batch: dict[str, dict[str, Any]]) -> None:
        self.version += 1
        self.values.update(batch)
        self._recent_changes.append((self.version, frozenset(batch)))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _poll_source_statuses(self) -> None:
        while True:
            try:
                self.source_statuses = await read_statuses(self._redis, self._sources)
            except (RedisError, OSError):
                self.source_statuses = {}
            await asyncio.sleep(self._status_poll_s)

    def changes_since(self, version: int) -> tuple[int, dict[str, dict[str, Any]]]:
        """(current version, {tag: value} changed after `version`); version 0 gives everything."""
        if version == self.version:
            return version, {}
        oldest_kept = self._recent_changes[0][0] if self._recent_changes else self.version + 1
        if version == 0 or version < oldest_kept - 1:
            return self.version, dict(self.values)
        changed: set[str] = set()
        for batch_version, tags in reversed(self._recent_changes):
            if batch_version <= version:
                break
            changed |= tags
        return self.version, {t: self.values[t] for t in changed}

    async def wait_for_change(self, version: int, timeout_s: float) -> None:
        if self.version != version:
            return
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout_s)
            except TimeoutError:
                pass


def now_ms() -> int:
    return int(time.time() * 1000)
