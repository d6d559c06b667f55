"""The device-alarm road through Redis: source -> events stream -> alarm engine; acknowledges back.

A data source that follows OPC UA Alarms & Conditions puts each event in its
DeviceAlarmOutbox (bounded, never blocking); the source's DeviceAlarmHandler
writes them to DEVICE_ALARMS, which the alarm engine (the only writer of alarm
state) reads in its consumer group. An operator's acknowledge of a device alarm
goes the other way: the engine puts a DeviceAckRequest on the source's
`sl:device_acks:<source>` stream, the source calls the condition's Acknowledge
method, and answers on `sl:result:<request_id>` with the server's StatusCode.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from domain.device_alarms import ConditionEvent, SourceEvent
from tag_store import keys
from tag_store.action_results import post_answer, wait_for_answer
from tag_store.consumer_groups import consume_group

log = logging.getLogger(__name__)

DeviceAlarmEvent = ConditionEvent | SourceEvent


def encode_event(event: DeviceAlarmEvent) -> str:
    data = asdict(event)
    if isinstance(event, ConditionEvent):
        data["kind"] = "condition"
    return json.dumps(data, separators=(",", ":"))


def decode_event(raw: str | bytes) -> DeviceAlarmEvent:
    """ValueError for an entry that is not a device alarm event."""
    try:
        data = json.loads(raw)
        if data["kind"] == "condition":
            del data["kind"]
            return ConditionEvent(**data)
        data["conditions"] = tuple(data.get("conditions", ()))
        return SourceEvent(**data)
    except (TypeError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a device alarm event: {raw!r}") from exc


class DeviceAlarmOutbox:
    """Events waiting for Redis. Bounded: when full (Redis away), the oldest is dropped and counted.

    A dropped event leaves a record behind the device until the next refresh (reconnect).
    """

    def __init__(self, max_events: int = 10_000):
        self._events: deque[DeviceAlarmEvent] = deque()
        self._max_events = max_events
        self.dropped = 0

    def put(self, event: DeviceAlarmEvent) -> None:
        if len(self._events) >= self._max_events:
            self._events.popleft()
            if not self.dropped:
                log.error("device alarm events cannot reach Redis; dropping the oldest (counted)")
            self.dropped += 1
        self._events.append(event)

    def __len__(self) -> int:
        return len(self._events)

    async def flush(self, redis: aioredis.Redis, max_batch: int = 500) -> int:
        """Write up to max_batch events in one pipeline; they leave the outbox only once written."""
        batch = [self._events[i] for i in range(min(len(self._events), max_batch))]
        if not batch:
            return 0
        pipe = redis.pipeline(transaction=False)
        for event in batch:
            pipe.xadd(keys.DEVICE_ALARMS, {"e": encode_event(event)}, maxlen=keys.DEVICE_ALARMS_MAXLEN,
                      approximate=True)
        await pipe.execute()
        for _ in batch:
            self._events.popleft()
        return len(batch)


@dataclass(frozen=True, slots=True)
class DeviceAckRequest:
    request_id: str
    alarm_id: str
    condition: str
    user: str
    comment: str
    # Answer only while the engine still waits.
    deadline_ms: int

    @staticmethod
    def new(alarm_id: str, condition: str, user: str, comment: str, now_ms: int, timeout_s: float) -> DeviceAckRequest:
        return DeviceAckRequest(uuid.uuid4().hex, alarm_id, condition, user, comment, now_ms + int(timeout_s * 1000))


@dataclass(frozen=True, slots=True)
class DeviceAckAnswer:
    request_id: str
    accepted: bool
    reason: str
    device_status: str = ""  # the StatusCode name the device answered, e.g. BadConditionBranchAlreadyAcked


async def submit_device_ack(redis: aioredis.Redis, source: str, request: DeviceAckRequest) -> None:
    await redis.xadd(keys.device_acks(source), {"r": json.dumps(asdict(request))}, maxlen=10_000, approximate=True)


async def answer_device_ack(redis: aioredis.Redis, answer: DeviceAckAnswer) -> None:
    await post_answer(redis, answer.request_id, asdict(answer))


async def wait_for_device_ack(redis: aioredis.Redis, request_id: str, timeout_s: float) -> DeviceAckAnswer | None:
    data = await wait_for_answer(redis, request_id, timeout_s)
    return None if data is None else DeviceAckAnswer(**data)


async def consume_device_acks(
    redis: aioredis.Redis, source: str, consumer: str, block_ms: int = 1000
) -> AsyncIterator[tuple[str, DeviceAckRequest | None]]:
    """(entry id, request) for this source, own unanswered ones first; None for an entry that does not parse."""
    async for entry_id, fields in consume_group(redis, keys.device_acks(source), keys.WRITE_GROUP, consumer,
                                                block_ms):
        raw = fields.get(b"r")
        try:
            request = DeviceAckRequest(**json.loads(raw))
        except (TypeError, ValueError):
            log.error("unreadable device acknowledge request %r", raw)
            request = None
        yield entry_id, request


async def ack_device_ack(redis: aioredis.Redis, source: str, entry_id: str) -> None:
    await redis.xack(keys.device_acks(source), keys.WRITE_GROUP, entry_id)
