"""The data source process: one tag store writer, the sources, their write and device-alarm handlers, heartbeats.

Wiring only; every part can be built and run on its own (the tests do).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import asdict
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from data_sources.base import DataSource
from data_sources.device_alarm_handler import device_alarm_handlers
from data_sources.registry import create_source
from data_sources.write_handler import WriteHandler
from domain.config_model import PlantConfig
from tag_store.source_status import publish_status
from tag_store.cancellation import cancel_and_wait
from tag_store.writer import TagStoreWriter

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0
DRAIN_TIMEOUT_S = 10.0


class DataSourceService:
    def __init__(self, config: PlantConfig, redis: aioredis.Redis, source_names: list[str], *, data_dir: Path):
        self.redis = redis
        self.writer = TagStoreWriter(redis, config.history_samples_per_tag)
        self.sources: list[DataSource] = [
            create_source(name, config.sources[name], config.tags_of_source(name), self.writer, data_dir=data_dir)
            for name in source_names
        ]
        self.write_handlers = [WriteHandler(redis, source) for source in self.sources]
        self.device_alarm_handlers = device_alarm_handlers(redis, self.sources)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then stop the sources and drain the writer (no sample lost)."""
        writer_task = asyncio.create_task(self.writer.run(), name="tag-store-writer")
        tasks = [asyncio.create_task(source.run(), name=f"source-{source.name}") for source in self.sources]
        tasks += [asyncio.create_task(handler.run(), name=f"writes-{source.name}")
                  for handler, source in zip(self.write_handlers, self.sources, strict=True)]
        tasks += [asyncio.create_task(handler.run(), name="device-alarms") for handler in self.device_alarm_handlers]
        tasks.append(asyncio.create_task(self._heartbeats(), name="heartbeats"))
        log.info("data sources running: %s",
                 ", ".join(f"{s.name} ({s.kind}, {len(s.tags)} tags)" for s in self.sources))
        try:
            await _until_stop_or_crash(stop, tasks + [writer_task])
        finally:
            await cancel_and_wait(tasks)
            await stop_writer(self.writer, writer_task)
            log.info("data sources stopped; %d samples written to Redis", self.writer.stats.written)

    async def _heartbeats(self) -> None:
        failing = False
        while True:
            store_counters = {f"store_{k}": v for k, v in asdict(self.writer.stats).items()}
            try:
                for source in self.sources:
                    status = source.status()
                    status.counters.update(store_counters)
                    await publish_status(self.redis, status)
                if failing:
                    log.info("heartbeats reach Redis again")
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    log.error("cannot publish source heartbeats to Redis: %s", exc)
                failing = True
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)


async def stop_writer(writer: TagStoreWriter, writer_task: asyncio.Task, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Let the writer write everything pending and end; if Redis is away, give it timeout_s."""
    writer.stop()
    await asyncio.wait([writer_task], timeout=timeout_s)
    await cancel_and_wait([writer_task])
    await writer.drain(timeout_s)


async def _until_stop_or_crash(stop: asyncio.Event, tasks: list[asyncio.Task]) -> None:
    stop_task = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stop_task, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_task.cancel()
    for task in done:
        if task is not stop_task and not task.cancelled() and task.exception() is not None:
            raise RuntimeError(f"{task.get_name()} failed") from task.exception()


async def serve(config: PlantConfig, redis_url: str, source_names: list[str], data_dir: Path) -> None:
    """The process body: Redis client, service, and SIGINT / SIGTERM as a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        service = DataSourceService(config, redis, source_names, data_dir=data_dir)
        await service.run(stop)
    finally:
        with contextlib.suppress(RedisError, OSError):
            await redis.aclose()
