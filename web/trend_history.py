"""Recent history of a tag from its Redis stream, as (source time ms, value or None) points.

For any range, from the historian's files and Redis together, downsampled, use
web.history_query.query_history and pen_points() below.

Bad samples become None so the trend shows a gap instead of a false line. Sources
report on change, so a value holds until the next sample: the value in force at
the window's start is carried in, and a live value is held up to now.
"""
from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from domain.config_model import DataType, Tag
from tag_store import keys
from tag_store.codec import decode_tag_value
from web.history_query import PenHistory

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
    """Oldest first: the newest max_points samples since since_ms, led by the value in force then."""
    key = keys.history(tag.name)
    entries = await redis.xrevrange(key, max="+", min=str(since_ms), count=max_points)
    before = await redis.xrevrange(key, max=f"({since_ms}", count=1)
    points = sorted((p for p in (sample_to_point(tag, f) for _id, f in reversed(entries)) if p is not None),
                    key=lambda p: p[0])
    carried = sample_to_point(tag, before[0][1]) if before else None
    if carried is not None and carried[1] is not None and (not points or points[0][0] > since_ms):
        points.insert(0, (since_ms, carried[1]))
    return points


def hold_to_now(points: list[Point], now_ms: int) -> list[Point]:
    """The last value held up to now; only for a value known to be live (else the line would lie)."""
    if points and points[-1][1] is not None and points[-1][0] < now_ms:
        return [*points, (now_ms, points[-1][1])]
    return points


def pen_points(history: PenHistory) -> list[Point]:
    """query_history's answer as the points trend_figure draws (held to now already if live)."""
    return list(zip(history.ts_ms, history.values))
