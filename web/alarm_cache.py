"""A per-worker mirror of the alarm engine's records, polled cheaply by version number.

Reads one small key (the alarm version) every poll_s and the whole alarm hash
only when it changed. `view` holds the sorted rows and banner summary, rebuilt
once per change for every session of this worker; `version` counts those changes.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from alarm_engine.alarm_store import read_alarm_version, read_all_alarms
from domain.alarm_logic import AlarmRecord
from domain.config_model import PlantConfig
from web.alarm_view import build_alarm_view

log = logging.getLogger(__name__)


class AlarmCache:
    def __init__(self, redis: aioredis.Redis, config: PlantConfig, poll_s: float = 0.5):
        self._redis = redis
        self._config = config
        self._poll_s = poll_s
        self.records: list[AlarmRecord] = []
        self.view: dict[str, Any] = build_alarm_view([], config)
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
        view = build_alarm_view(records, self._config)
        self.records = records
        self.loaded = True
        if view != self.view:
            self.view = view
            self.version += 1
