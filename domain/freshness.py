"""Is a value live, stale or bad? The honest answer the operator is shown."""
from __future__ import annotations

from enum import StrEnum

from domain.config_model import Tag
from domain.tag_value import TagValue

# A data source process refreshes its heartbeat every second; after this long
# without one, its tags cannot be trusted to be current even if they say Good.
SOURCE_HEARTBEAT_TIMEOUT_S = 5.0


class Freshness(StrEnum):
    LIVE = "live"
    UNCERTAIN = "uncertain"
    STALE = "stale"
    BAD = "bad"
    NO_DATA = "no_data"


def judge_freshness(
    tv: TagValue | None, tag: Tag, source_heartbeat_ms: int | None, now_ms: int
) -> Freshness:
    if tv is None:
        return Freshness.NO_DATA
    if tv.quality.is_bad:
        return Freshness.BAD
    if source_heartbeat_ms is None or now_ms - source_heartbeat_ms > SOURCE_HEARTBEAT_TIMEOUT_S * 1000:
        return Freshness.STALE
    if tag.max_age_s is not None and now_ms - tv.receive_time_ms > tag.max_age_s * 1000:
        return Freshness.STALE
    if not tv.quality.is_good:
        return Freshness.UNCERTAIN
    return Freshness.LIVE
