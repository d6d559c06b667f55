"""What one web worker process holds: config, the tag directory, one Redis client, the live caches.

Created by create_app() without any I/O; started on first use inside the
running event loop (the first request, websocket or push loop), so uvicorn's
workers each start their own. Background tasks are supervised: an unexpected
crash is logged loudly and the task restarts.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from audit_trail.config_changes import record_config_at_start
from domain.config_model import PlantConfig
from tag_store.live_cache import LiveCache
from web.alarm_cache import AlarmCache
from web.live_board import LiveBoard
from web.session_expiry import sweep_forever
from web.tag_directory import TagDirectory

log = logging.getLogger(__name__)

INITIAL_SNAPSHOT_WAIT_S = 3.0
# redis-py 8 times reads out after 5 s by default, shorter than our blocking waits for
# write and acknowledge answers; allow the longest of those plus a margin.
BLOCKING_READ_MARGIN_S = 10.0


class WebRuntime:
    def __init__(self, config: PlantConfig, redis_url: str):
        self.config = config
        self.redis_url = redis_url
        # Configured tags at once; discovered ones once started (follow_catalog).
        self.tags = TagDirectory(config)
        self._redis: aioredis.Redis | None = None
        self._live_cache: LiveCache | None = None
        self._alarm_cache: AlarmCache | None = None
        self._board: LiveBoard | None = None
        self._tasks: list[asyncio.Task] = []
        self._lock: asyncio.Lock | None = None
        self._started = False

    @property
    def redis(self) -> aioredis.Redis:
        return self._require(self._redis)

    @property
    def live_cache(self) -> LiveCache:
        return self._require(self._live_cache)

    @property
    def alarm_cache(self) -> AlarmCache:
        return self._require(self._alarm_cache)

    @property
    def board(self) -> LiveBoard:
        return self._require(self._board)

    @staticmethod
    def _require(part):
        if part is None:
            raise RuntimeError("the web runtime is not started: await ensure_started() first")
        return part

    async def ensure_started(self) -> WebRuntime:
        if self._started:
            return self
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._started:
                await self._start()
        return self

    async def _start(self) -> None:
        longest_wait_s = max((s.write_timeout_s for s in self.config.sources.values()), default=5.0)
        self._redis = aioredis.Redis.from_url(
            self.redis_url, socket_connect_timeout=2, socket_timeout=longest_wait_s + BLOCKING_READ_MARGIN_S,
            health_check_interval=10,
        )
        self._live_cache = LiveCache(self._redis, list(self.config.sources))
        self._alarm_cache = AlarmCache(self._redis, self.tags)
        self._board = LiveBoard(self.tags, self._live_cache)
        try:
            await self.tags.reload_if_changed(self._redis)
        except (RedisError, OSError) as exc:
            log.warning("web runtime: discovered tags not loaded yet (%s); retrying in the background", exc)
        self._tasks = [
            asyncio.create_task(_supervised("tag directory", lambda: self.tags.follow(self.redis))),
            asyncio.create_task(_supervised("live cache", self._live_cache.run)),
            asyncio.create_task(_supervised("alarm cache", self._alarm_cache.run)),
            asyncio.create_task(_supervised("session expiry audit", lambda: sweep_forever(self.redis))),
        ]
        if (config_retry := await record_config_at_start(self._redis, self.config)) is not None:  # docs/audit.md
            self._tasks.append(config_retry)
        self._started = True
        await self._wait_for_first_snapshot()

    async def _wait_for_first_snapshot(self) -> None:
        cache, sources = self.live_cache, self.config.sources
        deadline = asyncio.get_running_loop().time() + INITIAL_SNAPSHOT_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            if cache.connected and len(cache.source_statuses) >= len(sources) and self.alarm_cache.loaded:
                return
            await asyncio.sleep(0.05)
        log.warning("web runtime: no complete snapshot from Redis after %.0f s; showing what there is",
                    INITIAL_SNAPSHOT_WAIT_S)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
        self._started = False


async def _supervised(name: str, run: Callable[[], Awaitable[None]], restart_delay_s: float = 1.0) -> None:
    while True:
        try:
            await run()
            log.error("%s stopped unexpectedly; restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a crashed cache must come back, loudly
            log.exception("%s crashed; restarting in %.0f s", name, restart_delay_s)
        await asyncio.sleep(restart_delay_s)


_current: WebRuntime | None = None


def install_runtime(runtime: WebRuntime) -> WebRuntime:
    global _current  # noqa: PLW0603 - one runtime per process, set once by create_app
    _current = runtime
    return runtime


def current_runtime() -> WebRuntime:
    if _current is None:
        raise RuntimeError("no web runtime: create_app(config) installs it")
    return _current
