"""Brute-force protection: after MAX_FAILURES wrong passwords a name is locked for LOCKOUT_S.

The counter lives in Redis so every web worker sees it; each failure restarts the
lock-out window, a successful login clears it.
"""
from __future__ import annotations

import redis.asyncio as aioredis

from tag_store import keys

MAX_FAILURES = 5
LOCKOUT_S = 300


def failures_key(name: str) -> str:
    return f"{keys.PREFIX}login_failures:{name.lower()[:64]}"


async def lockout_remaining_s(redis: aioredis.Redis, name: str) -> int:
    """Seconds until `name` may try again; 0 when not locked."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(failures_key(name))
    pipe.ttl(failures_key(name))
    count, ttl = await pipe.execute()
    if count is None or int(count) < MAX_FAILURES:
        return 0
    return max(int(ttl), 1)


async def record_failure(redis: aioredis.Redis, name: str) -> int:
    """Count one more failure; returns the count within the current window."""
    pipe = redis.pipeline(transaction=True)
    pipe.incr(failures_key(name))
    pipe.expire(failures_key(name), LOCKOUT_S)
    count, _ = await pipe.execute()
    return int(count)


async def clear_failures(redis: aioredis.Redis, name: str) -> None:
    await redis.delete(failures_key(name))
