"""The alarm journal: one entry per transition or operator action, and how it is searched."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of the journal, as written by the alarm engine (sl:alarm:journal, then the archive)."""

    entry_id: str  # the Redis stream id it was first written under: unique and time-ordered
    time_ms: int
    alarm_id: str
    tag: str
    kind: str  # high_high, high, low, low_low, deviation, rate_of_change, discrete, bad_quality, device
    area: str
    priority: int
    message: str
    transition: str  # ISA-18.2 number ("T1".."T15") or an action name where no transition happens
    from_state: str  # AlarmState value: A, B, C, D, LU, LA, E, F, G
    to_state: str
    value: float | None = None
    user: str | None = None
    comment: str | None = None
    value_text: str | None = None  # the value as written, also when it is no number ("True", "FAULT")


@dataclass(frozen=True, slots=True)
class JournalQuery:
    """A search of the journal. None means "any"; times are inclusive epoch milliseconds."""

    start_ms: int | None = None
    end_ms: int | None = None
    tag: str | None = None  # exact tag name, or a prefix ending in "*"
    area: str | None = None
    priority: int | None = None
    text: str | None = None  # case-insensitive, in message, user or comment
    limit: int = 10_000


def is_annunciation(entry: JournalEntry) -> bool:
    """Did this entry put an unacknowledged active alarm (state B) in front of the operator?

    T1 and T9 (activations), T7 (re-alarm) and a return from shelving, suppression or out of
    service into B (T13-T15): what the performance page counts as alarms.
    """
    return entry.to_state == "B" and entry.from_state != "B"


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A Redis stream id ("<ms>-<seq>") as numbers, so ids compare in the order Redis made them."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_from_stream_fields(entry_id: str, fields: Mapping[str, str]) -> JournalEntry:
    """One sl:alarm:journal entry (its fields decoded to str; None was written as "").

    Tolerates entries written before tag, kind, area, priority and message were journalled:
    the tag and kind then come from the alarm id "<tag>:<kind>".
    """
    alarm_id = fields.get("alarm_id", "")
    id_tag, _, id_kind = alarm_id.partition(":")
    raw_value = fields.get("value", "")
    return JournalEntry(
        entry_id=entry_id,
        time_ms=_int(fields.get("time_ms"), stream_id_key(entry_id)[0]),
        alarm_id=alarm_id,
        tag=fields.get("tag") or id_tag,
        kind=fields.get("kind") or id_kind,
        area=fields.get("area", ""),
        priority=_int(fields.get("priority"), 0),
        message=fields.get("message", ""),
        transition=fields.get("transition", ""),
        from_state=fields.get("from_state", ""),
        to_state=fields.get("to_state", ""),
        value=_finite_number(raw_value),
        user=fields.get("user") or None,
        comment=fields.get("comment") or None,
        value_text=raw_value or None,
    )


def value_display(entry: JournalEntry) -> str:
    """The value as written, for tables and exports ("" when the entry has none)."""
    if entry.value_text is not None:
        return entry.value_text
    return "" if entry.value is None else str(entry.value)


def matches(entry: JournalEntry, query: JournalQuery) -> bool:
    """Does the entry meet every condition of the query? (The archive's SQL asks the same.)"""
    if query.start_ms is not None and entry.time_ms < query.start_ms:
        return False
    if query.end_ms is not None and entry.time_ms > query.end_ms:
        return False
    if query.tag is not None and not tag_matches(entry.tag, query.tag):
        return False
    if query.area is not None and entry.area != query.area:
        return False
    if query.priority is not None and entry.priority != query.priority:
        return False
    return query.text is None or text_matches(query.text, entry.message, entry.user, entry.comment)


def tag_matches(tag: str, pattern: str) -> bool:
    """Exact tag name, or every tag starting with the text before a final "*" (case-sensitive)."""
    if pattern.endswith("*"):
        return tag.startswith(pattern[:-1])
    return tag == pattern


def text_matches(text: str, *fields: str | None) -> bool:
    """Case-insensitive substring of any of the fields (Unicode case folding)."""
    needle = text.casefold()
    return any(field is not None and needle in field.casefold() for field in fields)


def newest_first_key(entry: JournalEntry) -> tuple[int, int, int]:
    return (entry.time_ms, *stream_id_key(entry.entry_id))


def select(entries: Iterable[JournalEntry], query: JournalQuery) -> list[JournalEntry]:
    """The entries matching the query, each entry id once, newest first, at most query.limit."""
    unique = {e.entry_id: e for e in entries if matches(e, query)}
    return sorted(unique.values(), key=newest_first_key, reverse=True)[:max(query.limit, 0)]


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        try:
            return int(float(text))
        except (ValueError, OverflowError):
            return default


def _finite_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
