"""Alarm records as the operator sees them: sorted rows, the banner summary, and the lists of
shelved, suppressed-by-design and out-of-service alarms (ISA-18.2 states E, F, G).

The summary also carries whether the alarm engine is deciding alarms at all
(web/engine_health.py); without a judgement it says "unknown", never "running".
"normal" covers the alarms in state A, which only a faceplate shows (web/faceplate_alarms.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from domain.alarms.records import STATE_TEXT, AlarmRecord, AlarmState
from domain.config_model import Tag
from web.engine_health import NOT_YET_JUDGED, EngineHealth, engine_health_view
from web.tag_display import format_with_unit

PRIORITIES = (1, 2, 3, 4)


class TagLookup(Protocol):
    """The plant file (PlantConfig) or the web's TagDirectory, which adds discovered tags."""

    def tag(self, name: str) -> Tag | None: ...


def alarm_time_ms(record: AlarmRecord) -> int:
    """When the alarm last became active (or changed state, if it never did)."""
    return record.activated_ms or record.state_since_ms


def _by_priority_then_newest(records: Iterable[AlarmRecord]) -> list[AlarmRecord]:
    return sorted(records, key=lambda r: (r.priority, -alarm_time_ms(r), r.alarm_id))


def sort_shown_alarms(records: Iterable[AlarmRecord]) -> list[AlarmRecord]:
    """The alarm list (B, C, D, LU, LA): highest priority (1) first, newest first within a priority."""
    return _by_priority_then_newest(r for r in records if r.state.is_shown)


# The lists of alarms taken off the alarm list, by the state that put them there.
REMOVED_LISTS = {"shelved": AlarmState.SHELVED, "suppressed": AlarmState.SUPPRESSED,
                 "out_of_service": AlarmState.OUT_OF_SERVICE}


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
        "latched": record.state in (AlarmState.LATCHED_UNACK, AlarmState.LATCHED_ACK),
    }


def removed_row(record: AlarmRecord, tags: TagLookup) -> dict[str, Any]:
    """A shelved, suppressed or out-of-service alarm: who took it off the list, why, and until when."""
    return {
        **alarm_row(record, tags),
        # What the alarm would be now: the engine keeps following the condition.
        "condition": "ACTIVE" if record.condition_active else "CLEAR",
        "since_ms": record.state_since_ms,
        "shelved_by": record.shelved_by or "",
        "shelved_until_ms": record.shelved_until_ms,
        "shelve_one_shot": record.shelve_one_shot,
        "shelve_comment": record.shelve_comment or "",
        "out_of_service_by": record.out_of_service_by or "",
        "out_of_service_comment": record.out_of_service_comment or "",
    }


def alarm_summary(records: Iterable[AlarmRecord], engine: EngineHealth = NOT_YET_JUDGED) -> dict[str, Any]:
    """Banner counts (unacknowledged per priority), the newest alarm, each tag's worst alarm, the engine's health."""
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
        "engine": engine_health_view(engine),
    }


def build_alarm_view(records: Iterable[AlarmRecord], tags: TagLookup,
                     engine: EngineHealth = NOT_YET_JUDGED) -> dict[str, Any]:
    """What every page receives: the alarm list's rows, the three lists of removed alarms, the banner."""
    records = list(records)
    view: dict[str, Any] = {"rows": [alarm_row(r, tags) for r in sort_shown_alarms(records)]}
    for name, state in REMOVED_LISTS.items():
        view[name] = [removed_row(r, tags) for r in _by_priority_then_newest(r for r in records if r.state is state)]
    view["summary"] = alarm_summary(records, engine)
    view["normal"] = normal_alarms(records)
    return view


def normal_alarms(records: list[AlarmRecord]) -> dict[str, Any]:
    """What a faceplate shows of the alarms in no list (state A): how many, and which have their input BAD.

    In the view so that its version moves when these change too (layouts/faceplate.py redraws then).
    """
    normal = [r for r in records if r.state is AlarmState.NORMAL]
    return {"count": len(normal), "input_bad": sorted(r.alarm_id for r in normal if r.input_bad)}


def alarm_record_json(record: AlarmRecord) -> dict[str, Any]:
    """One alarm for the JSON API (times in epoch ms, as the engine keeps them)."""
    return {
        "alarm_id": record.alarm_id,
        "tag": record.tag,
        "kind": record.kind,
        "priority": record.priority,
        "message": record.message,
        "area": record.area,
        "state": record.state.value,
        "state_text": STATE_TEXT[record.state],
        "unacknowledged": record.state.is_unacknowledged,
        "in_alarm_list": record.state.is_shown,
        "condition_active": record.condition_active,
        "value": record.last_value,
        "input_bad": record.input_bad,
        "state_since_ms": record.state_since_ms,
        "activated_ms": record.activated_ms,
        "acknowledged_ms": record.acknowledged_ms,
        "acknowledged_by": record.acknowledged_by,
        "ack_comment": record.ack_comment,
        "shelved": None if not record.is_shelved else {
            "by": record.shelved_by, "until_ms": record.shelved_until_ms, "one_shot": record.shelve_one_shot,
            "comment": record.shelve_comment,
        },
        "suppressed_by_design": record.suppressed,
        "out_of_service": None if not record.out_of_service else {
            "by": record.out_of_service_by, "comment": record.out_of_service_comment,
        },
        "origin": alarm_origin(record),
    }
