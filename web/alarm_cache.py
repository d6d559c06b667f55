"""A per-worker mirror of the alarm engine's records and health, polled cheaply by version number.

Every poll_s it reads one small key (the alarm version) and the engine's heartbeat
hash (web/engine_health.py), and the whole alarm hash only when the version moved.
`view` holds the sorted rows and banner summary, rebuilt for every session of this
worker when the records change, when the tag directory changes (a device alarm's tag
may become a discovered tag with a faceplate) and when the engine's health changes
(running, behind, not running, unknown), so a stopped engine reaches every page
although no alarm changed; `version` counts those rebuilds. While Redis cannot be
read the health is "unknown", never the last "running".
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from alarm_engine.alarm_store import read_alarm_version, read_all_alarms
from domain.alarms.records import AlarmRecord
from web.alarm_view import build_alarm_view
from web.engine_health import (
    NOT_YET_JUDGED, EngineHealth, EngineState, engine_health_text, engine_health_view, read_engine_health,
    unreadable_health,
)
from web.tag_directory import TagDirectory

log = logging.getLogger(__name__)

REDIS_LOST = unreadable_health("the web server cannot reach the data server (Redis)")


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class AlarmCache:
    def __init__(self, redis: aioredis.Redis, tags: TagDirectory, poll_s: float = 0.5,
                 clock_ms: Callable[[], int] = _wall_clock_ms):
        self._redis = redis
        self._tags = tags
        self._tags_version = tags.version
        self._poll_s = poll_s
        self._clock_ms = clock_ms
        self.records: list[AlarmRecord] = []
        self.engine_health: EngineHealth = NOT_YET_JUDGED
        self.view: dict[str, Any] = build_alarm_view([], tags, self.engine_health)
        self.version = 0
        self.loaded = False
        self.connected = False

    async def run(self) -> None:
        engine_version_seen: int | None = None
        while True:
            try:
                engine_version = await read_alarm_version(self._redis)
                health = await read_engine_health(self._redis, self._clock_ms())
                if engine_version != engine_version_seen:
                    self.apply(await read_all_alarms(self._redis), health)
                    engine_version_seen = engine_version
                elif self._tags.version != self._tags_version or self._health_changed(health):
                    self.apply(self.records, health)
                else:
                    self.engine_health = health  # the same view; the fresher figures for this worker
                if not self.connected:
                    log.info("alarm cache reading Redis (alarm version %d)", engine_version)
                self.connected = True
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.error("alarm cache lost Redis: %s", exc)
                self.connected = False
                engine_version_seen = None
                if self._health_changed(REDIS_LOST):
                    self._rebuild(self.records, REDIS_LOST)
            await asyncio.sleep(self._poll_s)

    def _health_changed(self, health: EngineHealth) -> bool:
        return engine_health_view(health) != engine_health_view(self.engine_health)

    def apply(self, records: list[AlarmRecord], engine: EngineHealth | None = None) -> None:
        """Records as read from Redis (and the engine's health read with them)."""
        self._rebuild(records, engine)
        self.loaded = True

    def _rebuild(self, records: list[AlarmRecord], engine: EngineHealth | None) -> None:
        if engine is not None:
            self._log_health_change(engine)
            self.engine_health = engine
        self._tags_version = self._tags.version
        view = build_alarm_view(records, self._tags, self.engine_health)
        self.records = records
        if view != self.view:
            self.view = view
            self.version += 1

    def _log_health_change(self, health: EngineHealth) -> None:
        """The engine stopping or falling behind loudly, its recovery at info; Redis loss is logged above."""
        before = self.engine_health.state
        if health.state is before or health.state is EngineState.UNKNOWN:
            return
        if health.is_running:
            if before is not EngineState.UNKNOWN:
                log.info("alarm engine running again")
        else:
            log.error("%s", engine_health_text(health))
