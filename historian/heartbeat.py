"""The historian's heartbeat: hash sl:historian, refreshed every second (docs/redis-keys.md).

Defined here, not in tag_store/keys.py: only the historian writes it, and readers (the web,
benchmarks, tests) call read_heartbeat().
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

import redis.asyncio as aioredis

from tag_store.keys import PREFIX

HEARTBEAT_KEY = PREFIX + "historian"


class HistorianState(StrEnum):
    OK = "ok"
    DISK_FAILING = "disk_failing"  # writes fail: samples are held in memory (bounded) and retried
    REDIS_LOST = "redis_lost"  # the feed cannot be read: reconnecting, what was read is still written
    STOPPED = "stopped"  # a clean stop: everything read is on disk


@dataclass(slots=True)
class HistorianStatus:
    heartbeat_ms: int = 0
    # The last sl:samples entry id on disk ("" before the first file).
    cursor: str = ""
    # Feed entries not yet on disk (read and buffered, or not read yet); -1: not known yet.
    behind_entries: int = -1
    buffered_samples: int = 0
    last_flush_ms: int = 0
    last_compaction_ms: int = 0
    disk_bytes: int = 0
    # Samples lost for good: dropped from a full buffer while the disk failed.
    dropped_samples: int = 0
    state: HistorianState = HistorianState.OK
    last_error: str = ""

    def as_fields(self) -> dict[str, str | int]:
        return {name: str(value) if isinstance(value, StrEnum) else value for name, value in asdict(self).items()}


async def write_heartbeat(redis: aioredis.Redis, status: HistorianStatus) -> None:
    await redis.hset(HEARTBEAT_KEY, mapping=status.as_fields())


async def read_heartbeat(redis: aioredis.Redis) -> dict[str, str]:
    """The hash as text; empty when no historian ever ran."""
    raw = await redis.hgetall(HEARTBEAT_KEY)
    return {k.decode(): v.decode() for k, v in raw.items()}
