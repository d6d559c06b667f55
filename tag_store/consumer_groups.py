"""Reading a Redis stream as one consumer of a group: own unacknowledged entries first, then new ones."""
from __future__ import annotations

from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import ResponseError


async def ensure_group(redis: aioredis.Redis, stream: str, group: str, start_id: str = "$") -> None:
    try:
        await redis.xgroup_create(stream, group, id=start_id, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def consume_group(
    redis: aioredis.Redis, stream: str, group: str, consumer: str, block_ms: int = 1000
) -> AsyncIterator[tuple[str, dict]]:
    """(entry id, fields) forever. The caller XACKs each entry once it is handled.

    Entries this consumer read but never acknowledged (it crashed mid-way) come first, so none is lost.
    """
    await ensure_group(redis, stream, group)
    next_id = "0"
    while True:
        replies = await redis.xreadgroup(group, consumer, {stream: next_id}, count=100, block=block_ms)
        entries = replies[0][1] if replies else []
        if next_id == "0" and not entries:
            next_id = ">"
            continue
        for entry_id, fields in entries:
            yield (entry_id.decode() if isinstance(entry_id, bytes) else entry_id), (fields or {})
