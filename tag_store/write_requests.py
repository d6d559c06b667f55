"""The write road through Redis: web -> request stream -> data source -> answer.

The web app XADDs a WriteRequest to the owning source's stream; the source
consumes it in a consumer group, writes, verifies by readback, and answers on a
per-request list that the requester BLPOPs. Requests are never lost: an
unanswered one stays pending in the group and is visible with XPENDING.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import AsyncIterator

import redis.asyncio as aioredis

from domain.tag_value import ScalarValue
from tag_store import keys
from tag_store.action_results import post_answer, wait_for_answer
from tag_store.consumer_groups import consume_group

log = logging.getLogger(__name__)


class WriteStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"          # written and confirmed by readback
    REJECTED = "rejected"  # refused (by Stacklight's rules or by the device), with a reason
    TIMED_OUT = "timed_out"  # sent, but readback never confirmed it in time


@dataclass(frozen=True, slots=True)
class WriteRequest:
    request_id: str
    tag: str
    value: ScalarValue
    user: str
    requested_ms: int
    # Respond only while the requester still waits; later is pointless and unsafe.
    deadline_ms: int
    # What the operator said, and who approved a critical tag's write (for the source's log).
    reason: str = ""
    approved_by: str = ""

    @staticmethod
    def new(tag: str, value: ScalarValue, user: str, now_ms: int, timeout_s: float, *, reason: str = "",
            approved_by: str = "") -> WriteRequest:
        return WriteRequest(uuid.uuid4().hex, tag, value, user, now_ms, now_ms + int(timeout_s * 1000),
                            reason, approved_by)


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    request_id: str
    tag: str
    status: WriteStatus
    reason: str
    readback: ScalarValue = None
    device_status: str = ""
    finished_ms: int = 0


async def submit_write(redis: aioredis.Redis, source: str, request: WriteRequest) -> None:
    await redis.xadd(keys.write_requests(source), {"r": json.dumps(asdict(request))}, maxlen=100_000, approximate=True)


async def answer_write(redis: aioredis.Redis, outcome: WriteOutcome) -> None:
    await post_answer(redis, outcome.request_id, asdict(outcome))


async def wait_for_outcome(redis: aioredis.Redis, request_id: str, timeout_s: float) -> WriteOutcome | None:
    """The answer, or None if none came within timeout_s."""
    data = await wait_for_answer(redis, request_id, timeout_s)
    if data is None:
        return None
    data["status"] = WriteStatus(data["status"])
    return WriteOutcome(**data)


async def consume_requests(
    redis: aioredis.Redis, source: str, consumer: str, block_ms: int = 1000
) -> AsyncIterator[tuple[str, WriteRequest | None]]:
    """Yield (stream entry id, request) for this source; None for an entry that does not parse.

    The caller acknowledges each entry with ack_request once it has answered it.
    """
    async for entry_id, fields in consume_group(redis, keys.write_requests(source), keys.WRITE_GROUP, consumer,
                                                block_ms):
        yield entry_id, _parse_request(fields)


def _parse_request(fields: dict | None) -> WriteRequest | None:
    raw = (fields or {}).get(b"r") or (fields or {}).get("r")
    try:
        return WriteRequest(**json.loads(raw))
    except (TypeError, ValueError) as exc:
        log.error("unreadable write request %r: %s", raw, exc)
        return None


async def ack_request(redis: aioredis.Redis, source: str, entry_id: str) -> None:
    await redis.xack(keys.write_requests(source), keys.WRITE_GROUP, entry_id)
