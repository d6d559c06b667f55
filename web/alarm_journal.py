"""The alarm journal on the web: search (archive and stream together), the query from a form or URL, CSV.

The archiver (alarm_engine/journal_archive.py) copies sl:alarm:journal into the archive
every half second, so the newest entries may be in Redis only. A search reads the archive's
resume point, then the stream after it, then the archive: an entry trimmed from the stream
in between was archived before it was trimmed, so it is in the archive read that follows.
Both parts are filtered by the same rule (domain.alarms.journal.matches).
"""
from __future__ import annotations

import asyncio
import csv
import io
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Iterable
from urllib.parse import urlencode

from redis.exceptions import RedisError

from alarm_engine.journal_archive import JournalArchive, journal_archive_path, read_stream_after
from domain.alarms.journal import JournalEntry, JournalQuery, select, value_display
from domain.alarms.records import STATE_TEXT, AlarmState
from web.api import iso_utc
from web.runtime import WebRuntime

STREAM_BATCH = 5000
MAX_LIMIT = 100_000
PRIORITIES = range(1, 5)
PAGE_LIMIT = 5000
DEFAULT_SPAN_MS = 24 * 3_600_000
INVALID_TIME = "invalid"  # what the page's browser code sends for a time it cannot read
CSV_HEADER = ("time_utc", "time_ms", "tag", "alarm_id", "kind", "area", "priority", "transition",
              "from_state", "to_state", "value", "user", "comment", "message", "entry_id")
# A spreadsheet runs a cell starting with one of these as a formula: typed text is exported with a
# leading apostrophe instead (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"\d{1,15}")


async def search_journal(runtime: WebRuntime, query: JournalQuery) -> list[JournalEntry]:
    """Journal entries matching the query, archive and stream together, newest first, at most query.limit.

    Raises RedisError / OSError when Redis is unreachable, sqlite3.Error when the archive is unreadable.
    """
    path = journal_archive_path(runtime.config)
    archived_up_to = await asyncio.to_thread(_last_archived_id, path)
    newest = await _search_stream_after(runtime, archived_up_to, query)
    archived = await asyncio.to_thread(_search_archive, path, query)
    return select([*newest, *archived], query)


async def _search_stream_after(runtime: WebRuntime, after_id: str | None, query: JournalQuery) -> list[JournalEntry]:
    found: list[JournalEntry] = []
    while True:
        batch = await read_stream_after(runtime.redis, after_id, STREAM_BATCH)
        found = select([*found, *batch], query)  # never more than query.limit kept
        if len(batch) < STREAM_BATCH:
            return found
        after_id = batch[-1].entry_id


def _last_archived_id(path: Path) -> str | None:
    if not path.exists():
        return None
    with JournalArchive(path, read_only=True) as archive:
        return archive.last_archived_id()


def _search_archive(path: Path, query: JournalQuery) -> list[JournalEntry]:
    if not path.exists():  # the archiver has not written anything yet: the stream alone answers
        return []
    with JournalArchive(path, read_only=True) as archive:
        return archive.search(query)


def journal_csv(entries: Iterable[JournalEntry]) -> str:
    """The entries as CSV with a header row; times in ISO 8601 UTC (and epoch ms)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for e in entries:
        writer.writerow((iso_utc(e.time_ms), e.time_ms, e.tag, e.alarm_id, e.kind, e.area, e.priority,
                         e.transition, e.from_state, e.to_state, _value_cell(e), _typed_text(e.user),
                         _typed_text(e.comment), _typed_text(e.message), e.entry_id))
    return out.getvalue()


def _value_cell(entry: JournalEntry) -> str:
    """A number as written ("-3.5" stays a number); a text value is guarded like typed text."""
    text = value_display(entry)
    return text if entry.value is not None else _typed_text(text)


def _typed_text(text: str | None) -> str:
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


# --- The query, from URL parameters or the page's form ---------------------------------------------

def parse_time_ms(text: str | None, name: str) -> int | None:
    """ISO 8601 (no zone: UTC) or epoch milliseconds; None for nothing. ValueError says what is wrong."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if _DIGITS.fullmatch(text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is neither an ISO 8601 time (like 2025-01-31T06:00:00Z) "
                         "nor epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def build_query(start: str | None = None, end: str | None = None, tag: str | None = None, area: str | None = None,
                priority: str | int | None = None, text: str | None = None,
                limit: str | int | None = None) -> JournalQuery:
    """A JournalQuery from URL or form values (blank means "any"); ValueError with a reason for bad input."""
    start_ms, end_ms = parse_time_ms(start, "start"), parse_time_ms(end, "end")
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise ValueError("start is after end")
    return JournalQuery(start_ms=start_ms, end_ms=end_ms, tag=_blank_to_none(tag), area=_blank_to_none(area),
                        priority=_priority(priority), text=_blank_to_none(text), limit=_limit(limit))


def query_params(query: JournalQuery, fmt: str = "json") -> dict[str, str]:
    """The URL parameters that build_query turns back into this query (links such as the CSV download)."""
    params = {"start": query.start_ms, "end": query.end_ms, "tag": query.tag, "area": query.area,
              "priority": query.priority, "text": query.text, "limit": query.limit, "format": fmt}
    return {name: str(value) for name, value in params.items() if value is not None}


def _blank_to_none(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.strip()


def _priority(value: str | int | None) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        priority = int(value)
    except ValueError:
        raise ValueError(f"priority: {value!r} is not a whole number") from None
    if priority not in PRIORITIES:
        raise ValueError(f"priority: {priority} is not 1, 2, 3 or 4")
    return priority


def _limit(value: str | int | None) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return JournalQuery().limit
    try:
        limit = int(value)
    except ValueError:
        raise ValueError(f"limit: {value!r} is not a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: {limit} is not between 1 and {MAX_LIMIT:,}")
    return limit


# --- The page (layouts/alarm_journal.py) --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class JournalView:
    rows: list[dict]
    message: str
    csv_href: str | None


def page_query(time_range: dict, tag: str | None, area: str | None, priority: int | None, text: str | None,
               now_ms: int) -> JournalQuery:
    """The page's search: times in epoch ms from the browser; no end is now, no start 24 h before the end."""
    start_ms, end_ms = time_range.get("start_ms"), time_range.get("end_ms")
    if INVALID_TIME in (start_ms, end_ms):
        raise ValueError("A time is incomplete: fill in date and time, or leave it empty.")
    end_ms = now_ms if end_ms is None else int(end_ms)
    start_ms = end_ms - DEFAULT_SPAN_MS if start_ms is None else int(start_ms)
    return build_query(str(start_ms), str(end_ms), tag, area, priority, text, PAGE_LIMIT)


async def journal_view(runtime: WebRuntime, time_range: dict, tag: str | None, area: str | None,
                       priority: int | None, text: str | None, now_ms: int) -> JournalView:
    """Grid rows, a status line and the CSV link (the same query) for the page's search."""
    try:
        query = page_query(time_range, tag, area, priority, text, now_ms)
    except ValueError as exc:
        return JournalView([], str(exc), None)
    try:
        entries = await search_journal(runtime, query)
    except (RedisError, OSError, sqlite3.Error) as exc:
        return JournalView([], f"The alarm journal cannot be read now: {exc}", None)
    return JournalView(journal_rows(runtime, entries), result_text(len(entries), query.limit),
                       "/api/alarms/journal?" + urlencode(query_params(query, "csv")))


def result_text(count: int, limit: int) -> str:
    if count >= limit:
        return f"The newest {limit:,} entries; there are more: narrow the search."
    return "No entries match." if count == 0 else f"{count:,} entries."


def journal_rows(runtime: WebRuntime, entries: list[JournalEntry]) -> list[dict]:
    return [
        {"entry_id": e.entry_id, "time_ms": e.time_ms, "tag": e.tag,
         "has_faceplate": runtime.tags.tag(e.tag) is not None, "area": e.area, "priority": e.priority,
         "transition": e.transition, "states": f"{_state_text(e.from_state)} -> {_state_text(e.to_state)}",
         "value": value_display(e), "user": e.user or "", "comment": e.comment or "", "message": e.message}
        for e in entries
    ]


def _state_text(letter: str) -> str:
    try:
        return STATE_TEXT[AlarmState(letter)]
    except ValueError:
        return letter
