"""How a tag's value is shown: text, status wording, age; and the entry the browser receives.

One place decides the wording so the overview, faceplate, alarm list and API agree.
"""
from __future__ import annotations

from typing import Any

from domain.alarms.settings import (
    KIND_LABELS, AnyAlarm, DeviationAlarm, DiscreteAlarm, LimitAlarm, RateOfChangeAlarm,
)
from domain.config_model import DataType, Tag
from domain.freshness import Freshness, judge_freshness
from tag_store.codec import tag_value_from_dict

STALE_TEXT = "STALE"
NO_DATA_TEXT = "NO DATA"


def decimals_for(tag: Tag, value: float) -> int:
    """Digits after the point: from the engineering span, or from the value when there is none."""
    if tag.range is not None:
        span = tag.range.high - tag.range.low
        return 0 if span >= 1000 else 1 if span >= 10 else 2
    size = abs(value)
    return 0 if size >= 1000 else 1 if size >= 10 else 2 if size >= 1 else 3


def format_value(tag: Tag, value: Any) -> str:
    """The value as the operator reads it, without unit; "" when there is none."""
    if value is None:
        return ""
    if tag.data_type is DataType.BOOL:
        return "ON" if bool(value) else "OFF"
    if tag.data_type is DataType.STRING or isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if tag.data_type is DataType.INT:
        return str(int(value))
    number = float(value)
    return f"{number:.{decimals_for(tag, number)}f}"


def format_with_unit(tag: Tag, value: Any) -> str:
    text = format_value(tag, value)
    return f"{text} {tag.unit}".strip() if text and tag.unit else text


def status_text(freshness: Freshness, quality_name: str | None) -> str:
    """The words next to a value; never only a colour."""
    if freshness is Freshness.LIVE:
        return quality_name or "Good"
    if freshness is Freshness.UNCERTAIN:
        return f"UNCERTAIN: {quality_name}" if quality_name else "UNCERTAIN"
    if freshness is Freshness.STALE:
        return STALE_TEXT
    if freshness is Freshness.BAD:
        return f"BAD: {quality_name}" if quality_name else "BAD"
    return NO_DATA_TEXT


def format_age(age_ms: int) -> str:
    """'just now', '4 s ago', '3 min ago', '2 h ago', '5 d ago'."""
    seconds = max(0, age_ms) // 1000
    if seconds < 1:
        return "just now"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def effective_freshness(judged: Freshness, cache_connected: bool) -> Freshness:
    """Without Redis nothing is current: live and uncertain values become stale."""
    if not cache_connected and judged in (Freshness.LIVE, Freshness.UNCERTAIN):
        return Freshness.STALE
    return judged


def judge_encoded(
    tag: Tag, encoded: dict[str, Any] | None, heartbeat_ms: int | None, now_ms: int, cache_connected: bool
) -> Freshness:
    tv = tag_value_from_dict(tag.name, encoded) if encoded else None
    return effective_freshness(judge_freshness(tv, tag, heartbeat_ms, now_ms), cache_connected)


def live_entry(tag: Tag, encoded: dict[str, Any] | None, freshness: Freshness) -> dict[str, Any]:
    """What the browser receives for one tag (see assets/live_render.js)."""
    if not encoded:
        return {"v": None, "d": "", "q": None, "qn": "", "f": freshness.value,
                "s": status_text(freshness, None), "ts": None, "rt": None, "tsr": False}
    value = encoded.get("v")
    return {
        "v": value,
        "d": format_value(tag, value),
        "q": encoded.get("q"),
        "qn": encoded.get("qn", ""),
        "f": freshness.value,
        "s": status_text(freshness, encoded.get("qn")),
        "ts": encoded.get("ts"),
        "rt": encoded.get("rt"),
        "tsr": bool(encoded.get("tsr")),
    }


def range_percent(tag: Tag, value: float) -> float | None:
    """Where `value` sits on the engineering range, 0..100 (clamped); None without a range."""
    if tag.range is None:
        return None
    span = tag.range.high - tag.range.low
    return max(0.0, min(100.0, (value - tag.range.low) / span * 100.0))


def alarm_limit_marks(tag: Tag) -> list[tuple[str, float]]:
    """("HH 4.7 m", percent of range) for each configured alarm limit that lies on the range."""
    if tag.alarms is None or tag.range is None:
        return []
    marks = []
    for kind, alarm in tag.alarms.limit_items():
        percent = range_percent(tag, alarm.limit)
        label = f"{KIND_LABELS[kind]} {alarm.limit:g} {tag.unit}".strip()
        marks.append((label, percent))
    return marks


def alarm_setting_text(kind: str, alarm: AnyAlarm, unit: str) -> str:
    """One alarm's trip point in words, for the faceplate: "95 degC, deadband 1"."""
    if isinstance(alarm, LimitAlarm):
        text = f"{alarm.limit:g} {unit}, deadband {alarm.deadband:g}"
    elif isinstance(alarm, DeviationAlarm):
        text = f"|value - {alarm.setpoint_tag}| >= {alarm.limit:g} {unit}, deadband {alarm.deadband:g}"
    elif isinstance(alarm, RateOfChangeAlarm):
        text = f"{alarm.direction} faster than {alarm.limit_per_s:g} {unit}/s over {alarm.window_s:g} s"
    elif isinstance(alarm, DiscreteAlarm):
        text = f"not {alarm.normal}" if alarm.normal is not None else "in " + ", ".join(map(str, alarm.alarm_on or []))
    else:
        text = "Bad quality" + (" or Uncertain" if alarm.include_uncertain else "")
    extras = [f"on-delay {alarm.on_delay_s:g} s" if alarm.on_delay_s else "",
              "latching" if alarm.latching else "",
              f"re-alarm after {alarm.realarm_s:g} s" if alarm.realarm_s else "",
              f"suppressed while {alarm.suppressed_when.tag} is "
              f"{_suppression_words(alarm.suppressed_when)}" if alarm.suppressed_when else ""]
    return ", ".join([text.replace("  ", " ").strip(), *[e for e in extras if e]])


def _suppression_words(condition) -> str:
    if condition.equals is not None:
        return str(condition.equals)
    return f"below {condition.below:g}" if condition.below is not None else f"above {condition.above:g}"
