"""Answers to requests (writes, device acknowledges): one list per request id, read with a blocking pop."""
from __future__ import annotations

import json

import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from tag_store import keys


async def post_answer(redis: aioredis.Redis, request_id: str, answer: dict) -> None:
    """The answer for whoever waits on request_id; kept ACTION_RESULT_TTL_S for a late reader."""
    key = keys.action_result(request_id)
    pipe = redis.pipeline(transaction=False)
    pipe.rpush(key, json.dumps(answer))
    pipe.expire(key, keys.ACTION_RESULT_TTL_S)
    await pipe.execute()


async def wait_for_answer(redis: aioredis.Redis, request_id: str, timeout_s: float) -> dict | None:
    """The answer, or None if none came within timeout_s (or the client's socket timeout came first)."""
    try:
        reply = await redis.blpop([keys.action_result(request_id)], timeout=timeout_s)
    except RedisTimeoutError:
        return None
    return None if reply is None else json.loads(reply[1])
