"""A source's device alarms and Redis: its events out to the engine, acknowledges in from it.

Like the write handler, one per source that follows device alarms (OPC UA Alarms &
Conditions): it writes the source's DeviceAlarmOutbox to the device-alarm stream and
answers the acknowledge requests the alarm engine forwards, one at a time, each
acknowledged (XACK) only after it was answered.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from data_sources.backoff import Backoff
from data_sources.base import now_ms
from data_sources.write_handler import consumer_name
from tag_store.device_alarms import (
    DeviceAckAnswer,
    DeviceAckRequest,
    DeviceAlarmOutbox,
    ack_device_ack,
    answer_device_ack,
    consume_device_acks,
)

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.02
MIN_ACK_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class ConditionAckResult:
    accepted: bool
    reason: str
    device_status: str = ""


@runtime_checkable
class DeviceAlarmSource(Protocol):
    """A source that can follow device alarms; `device_alarm_outbox` is None when it does not."""

    name: str

    @property
    def device_alarm_outbox(self) -> DeviceAlarmOutbox | None: ...

    async def acknowledge_condition(self, condition: str, comment: str, timeout_s: float) -> ConditionAckResult:
        """Ask the device to acknowledge the condition; its answer."""


def device_alarm_handlers(redis: aioredis.Redis, sources: list) -> list[DeviceAlarmHandler]:
    """One handler per source that follows device alarms."""
    return [DeviceAlarmHandler(redis, source, source.device_alarm_outbox,
                               ack_timeout_s=getattr(source.config, "write_timeout_s", 5.0))
            for source in sources
            if isinstance(source, DeviceAlarmSource) and source.device_alarm_outbox is not None]


class DeviceAlarmHandler:
    def __init__(self, redis: aioredis.Redis, source: DeviceAlarmSource, outbox: DeviceAlarmOutbox, *,
                 ack_timeout_s: float = 5.0, consumer: str | None = None, block_ms: int = 1000):
        self._redis = redis
        self._source = source
        self._outbox = outbox
        self._ack_timeout_s = ack_timeout_s
        self._consumer = consumer or consumer_name(source.name)
        self._block_ms = block_ms

    async def run(self) -> None:
        await asyncio.gather(self._write_events(), self._serve_acknowledges())

    async def _write_events(self) -> None:
        failing = False
        while True:
            try:
                while await self._outbox.flush(self._redis):
                    pass
                if failing:
                    log.info("source %s: device alarm events reach Redis again", self._source.name)
                    failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    log.error("source %s: cannot write device alarm events to Redis (kept, up to a bound): %s",
                              self._source.name, exc)
                    failing = True
                await asyncio.sleep(0.5)
            await asyncio.sleep(FLUSH_INTERVAL_S)

    async def _serve_acknowledges(self) -> None:
        backoff = Backoff(initial_s=0.5, max_s=10.0)
        failing = False
        while True:
            try:
                async for entry_id, request in consume_device_acks(
                        self._redis, self._source.name, self._consumer, self._block_ms):
                    if failing:
                        log.info("source %s: acknowledge requests are read again", self._source.name)
                        failing = False
                        backoff.reset()
                    if request is not None:
                        await answer_device_ack(self._redis, await self.handle(request))
                    await ack_device_ack(self._redis, self._source.name, entry_id)
            except (RedisError, OSError) as exc:
                if not failing:
                    log.error("source %s: cannot read acknowledge requests from Redis: %s", self._source.name, exc)
                    failing = True
                await asyncio.sleep(backoff.next_delay_s())

    async def handle(self, request: DeviceAckRequest) -> DeviceAckAnswer:
        remaining_s = (request.deadline_ms - now_ms()) / 1000
        if remaining_s <= 0:
            result = ConditionAckResult(False, "the request expired before it could be sent")
        else:
            timeout_s = max(MIN_ACK_TIMEOUT_S, min(self._ack_timeout_s, remaining_s))
            result = await self._source.acknowledge_condition(request.condition, request.comment, timeout_s)
        log.info("source %s: acknowledge of %s by %s: %s (%s)", self._source.name, request.alarm_id, request.user,
                 "accepted" if result.accepted else "refused", result.reason)
        return DeviceAckAnswer(request.request_id, result.accepted, result.reason, result.device_status)
