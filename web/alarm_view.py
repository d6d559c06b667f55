"""Alarm records as the operator sees them: sorted rows and the banner summary."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from domain.alarms.records import STATE_TEXT, AlarmRecord
from domain.config_model import Tag
from web.tag_display import format_with_unit

PRIORITIES = (1, 2, 3, 4)


class TagLookup(Protocol):
    """The plant file (PlantConfig) or the web's TagDirectory, which adds discovered tags."""

    def tag(self, name: str) -> Tag | None: ...


def alarm_time_ms(record: AlarmRecord) -> int:
    """When the alarm last became active (or changed state, if it never did)."""
    return record.activated_ms or record.state_since_ms


def sort_shown_alarms(records: Iterable[AlarmRecord]) -> list[AlarmRecord]:
    """Shown alarms (state != A): highest priority (1) first, newest first within a priority."""
    shown = [r for r in records if r.state.is_shown]
    return sorted(shown, key=lambda r: (r.priority, -alarm_time_ms(r), r.alarm_id))


def alarm_origin(record: AlarmRecord) -> str:
    """Who decided the alarm: Stacklight's own limits, or the device (OPC UA Alarms & Conditions)."""
    return "Stacklight" if record.device_source is None else f"device {record.device_source}"


def alarm_row(record: AlarmRecord, tags: TagLookup) -> dict[str, Any]:
    tag = tags.tag(record.tag)
    value = format_with_unit(tag, record.last_value) if tag is not None else (
        "" if record.last_value is None else f"{record.last_value:g}")
    return {
        "alarm_id": record.alarm_id,
        "priority": record.priority,
        "time_ms": alarm_time_ms(record),
        "tag": record.tag,
        "has_faceplate": tag is not None,
        "message": record.message,
        "value": " ".join(part for part in (value, "(input BAD)" if record.input_bad else "") if part),
        "state": record.state.value,
        "state_text": STATE_TEXT[record.state],
        "area": record.area,
        "origin": alarm_origin(record),
        "unacked": record.state.is_unacknowledged,
    }


def alarm_summary(records: Iterable[AlarmRecord]) -> dict[str, Any]:
    """Banner counts (unacknowledged per priority), the newest alarm, and each tag's worst alarm."""
    shown = sort_shown_alarms(records)
    unack = {str(p): 0 for p in PRIORITIES}
    tags: dict[str, dict[str, Any]] = {}
    for record in shown:
        if record.state.is_unacknowledged:
            unack[str(record.priority)] = unack.get(str(record.priority), 0) + 1
        worst = tags.setdefault(record.tag, {"p": record.priority, "u": False})
        worst["p"] = min(worst["p"], record.priority)
        worst["u"] = worst["u"] or record.state.is_unacknowledged
    newest = max(shown, key=alarm_time_ms, default=None)
    return {
        "unack": unack,
        "shown": len(shown),
        "newest": None if newest is None else {
            "message": newest.message, "priority": newest.priority, "tag": newest.tag,
            "state_text": STATE_TEXT[newest.state],
        },
        "tags": tags,
    }


def build_alarm_view(records: Iterable[AlarmRecord], tags: TagLookup) -> dict[str, Any]:
    records = list(records)
    return {
        "rows": [alarm_row(r, tags) for r in sort_shown_alarms(records)],
        "summary": alarm_summary(records),
    }
