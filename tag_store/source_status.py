"""Each data source's connection state and heartbeat, so readers can tell live from stale."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis

from tag_store import keys


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source: str
    state: ConnectionState
    detail: str
    heartbeat_ms: int
    # Diagnostics counters (received, dropped, bad payloads ...), as the source reports them.
    counters: dict[str, int]


async def publish_status(redis: aioredis.Redis, status: SourceStatus, ttl_s: int = 3600) -> None:
    mapping: dict[str, str | int] = {
        "state": status.state.value,
        "detail": status.detail,
        "heartbeat_ms": status.heartbeat_ms,
    }
    mapping.update({f"n.{name}": value for name, value in status.counters.items()})
    key = keys.source_status(status.source)
    pipe = redis.pipeline(transaction=False)
    pipe.hset(key, mapping=mapping)
    pipe.expire(key, ttl_s)
    await pipe.execute()


def status_from_hash(source: str, raw: dict) -> SourceStatus | None:
    if not raw:
        return None
    text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
    return SourceStatus(
        source=source,
        state=ConnectionState(text.get("state", "disconnected")),
        detail=text.get("detail", ""),
        heartbeat_ms=int(text.get("heartbeat_ms", 0)),
        counters={k[2:]: int(v) for k, v in text.items() if k.startswith("n.")},
    )


async def read_statuses(redis: aioredis.Redis, sources: list[str]) -> dict[str, SourceStatus | None]:
    pipe = redis.pipeline(transaction=False)
    for source in sources:
        pipe.hgetall(keys.source_status(source))
    raws = await pipe.execute()
    return {source: status_from_hash(source, raw) for source, raw in zip(sources, raws)}
