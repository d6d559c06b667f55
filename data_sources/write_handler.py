"""Answering one source's write requests: refuse early, re-check the rules, write, verify, answer.

Requests come from the source's stream (consumer group, see tag_store/write_requests.py)
and are handled one at a time, in order. Whatever can be refused is refused before
anything is sent to the device. Each request is acknowledged only after it is answered.
"""
from __future__ import annotations

import asyncio
import logging
import socket

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from data_sources.backoff import Backoff
from data_sources.base import DataSource, WriteResult, now_ms
from domain.write_rules import WriteRefused, check_write, parse_entry
from tag_store.write_requests import (
    WriteOutcome,
    WriteRequest,
    WriteStatus,
    ack_request,
    answer_write,
    consume_requests,
)

log = logging.getLogger(__name__)

MIN_WRITE_TIMEOUT_S = 0.5


def consumer_name(source_name: str) -> str:
    """Stable per host, so a restarted process first answers what it left unanswered."""
    return f"{source_name}@{socket.gethostname()}"


class WriteHandler:
    def __init__(self, redis: aioredis.Redis, source: DataSource, *, consumer: str | None = None,
                 block_ms: int = 1000):
        self._redis = redis
        self._source = source
        self._consumer = consumer or consumer_name(source.name)
        self._block_ms = block_ms

    async def run(self) -> None:
        backoff = Backoff(initial_s=0.5, max_s=10.0)
        redis_failing = False
        while True:
            try:
                async for entry_id, request in consume_requests(
                        self._redis, self._source.name, self._consumer, self._block_ms):
                    if redis_failing:
                        log.info("source %s: write requests are read again", self._source.name)
                        redis_failing = False
                        backoff.reset()
                    if request is not None:
                        await answer_write(self._redis, await self.handle(request))
                    await ack_request(self._redis, self._source.name, entry_id)
            except (RedisError, OSError) as exc:
                if not redis_failing:
                    log.error("source %s: cannot read write requests from Redis: %s", self._source.name, exc)
                    redis_failing = True
                await asyncio.sleep(backoff.next_delay_s())

    async def handle(self, request: WriteRequest) -> WriteOutcome:
        source = self._source
        try:
            result = await self._write(request)
        except WriteRefused as exc:
            result = WriteResult.rejected(str(exc))
        counter = {WriteStatus.DONE: "writes_done", WriteStatus.REJECTED: "writes_rejected"}.get(
            result.status, "writes_timed_out")
        setattr(source.counters, counter, getattr(source.counters, counter) + 1)
        readback = f", readback {result.readback!r}" if result.readback is not None else ""
        log.info("source %s: write %s = %r by %s: %s (%s)%s", source.name, request.tag, request.value,
                 request.user, result.status.value, result.reason, readback)
        return WriteOutcome(request.request_id, request.tag, result.status, result.reason, result.readback,
                            result.device_status, now_ms())

    async def _write(self, request: WriteRequest) -> WriteResult:
        source = self._source
        remaining_s = (request.deadline_ms - now_ms()) / 1000
        if remaining_s <= 0:
            raise WriteRefused("the request expired before it could be sent")
        tag = source.tags_by_name.get(request.tag)
        if tag is None:
            raise WriteRefused(f"{request.tag} is not a tag of source {source.name}")
        if not tag.writable:
            raise WriteRefused(f"{tag.name} is not writable")
        # Defence in depth: the web app checked this too, but the device is ours to protect.
        value = parse_entry(tag, request.value)
        latest = source.latest(tag.name)  # with its quality: a Bad value does not judge a step
        check_write(tag, value, latest.value if latest else None, latest.quality if latest else None)
        timeout_s = max(MIN_WRITE_TIMEOUT_S, min(source.config.write_timeout_s, remaining_s))
        return await source.write(tag, value, timeout_s)
