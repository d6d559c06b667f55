"""A per-worker mirror of the alarm engine's records, polled cheaply by version number.

Reads one small key (the alarm version) every poll_s and the whole alarm hash
only when it changed; the view is also rebuilt when the tag directory changes
(a device alarm's tag may become a discovered tag with a faceplate). `view` holds the sorted rows and banner summary, rebuilt
once per change for every session of this worker; `version` counts those changes.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from alarm_engine.alarm_store import read_alarm_version, read_all_alarms
from domain.alarms.records import AlarmRecord
from web.alarm_view import build_alarm_view
from web.tag_directory import TagDirectory

log = logging.getLogger(__name__)


class AlarmCache:
    def __init__(self, redis: aioredis.Redis, tags: TagDirectory, poll_s: float = 0.5):
        self._redis = redis
        self._tags = tags
        self._tags_version = tags.version
        self._poll_s = poll_s
        self.records: list[AlarmRecord] = []
        self.view: dict[str, Any] = build_alarm_view([], tags)
        self.version = 0
        self.loaded = False
        self.connected = False

    async def run(self) -> None:
        engine_version_seen: int | None = None
        while True:
            try:
                engine_version = await read_alarm_version(self._redis)
                if engine_version != engine_version_seen:
                    self.apply(await read_all_alarms(self._redis))
                    engine_version_seen = engine_version
                elif self._tags.version != self._tags_version:
                    self.apply(self.records)
                if not self.connected:
                    log.info("alarm cache reading Redis (alarm version %d)", engine_version)
                self.connected = True
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.error("alarm cache lost Redis: %s", exc)
                self.connected = False
                engine_version_seen = None
            await asyncio.sleep(self._poll_s)

    def apply(self, records: list[AlarmRecord]) -> None:
        self._tags_version = self._tags.version
        view = build_alarm_view(records, self._tags)
        self.records = records
        self.loaded = True
        if view != self.view:
            self.view = view
            self.version += 1
