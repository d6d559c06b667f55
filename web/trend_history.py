"""Recent history of a tag from its Redis stream, as (source time ms, value or None) points.

Bad samples become None so the trend shows a gap instead of a false line.
"""
from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from domain.config_model import DataType, Tag
from tag_store import keys
from tag_store.codec import decode_tag_value

MAX_POINTS_PER_PEN = 20_000

Point = tuple[int, float | None]


def sample_to_point(tag: Tag, fields: dict[Any, Any]) -> Point | None:
    raw = fields.get(b"d") or fields.get("d")
    if raw is None:
        return None
    tv = decode_tag_value(tag.name, raw)
    if tv.quality.is_bad or tv.value is None:
        return tv.source_time_ms, None
    if tag.data_type is DataType.BOOL or isinstance(tv.value, bool):
        return tv.source_time_ms, 1.0 if tv.value else 0.0
    if isinstance(tv.value, (int, float)):
        return tv.source_time_ms, float(tv.value)
    return None  # text values are not trended


async def read_history(redis: aioredis.Redis, tag: Tag, since_ms: int,
                       max_points: int = MAX_POINTS_PER_PEN) -> list[Point]:
    """Oldest first; the newest max_points samples received since since_ms."""
    entries = await redis.xrevrange(keys.history(tag.name), max="+", min=str(since_ms), count=max_points)
    points = [sample_to_point(tag, fields) for _id, fields in reversed(entries)]
    return sorted((p for p in points if p is not None), key=lambda p: p[0])
