"""Which period to analyse, and the alarm performance report for it (journal + current alarms).

Shared by GET /api/alarms/performance and the /alarms/performance page. The journal comes
from web/alarm_journal.py (SQLite archive + Redis tail); "stale now" from this worker's
alarm cache. The report is computed in a thread: a month of journal must not stall the
live pushes of every other session on this worker.
"""
from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, date, datetime, timedelta

from redis.exceptions import RedisError

from domain.alarms.journal import JournalQuery
from domain.alarms.performance import DAY_MS, PerformanceReport, build_report
from web.alarm_journal import search_journal
from web.runtime import WebRuntime

MAX_PERIOD_DAYS = 31
MAX_PERIOD_MS = MAX_PERIOD_DAYS * DAY_MS
DEFAULT_PERIOD_MS = DAY_MS
# The most journal entries read for one report; a period holding more is reported as incomplete.
JOURNAL_LIMIT = 200_000
PRESET_PERIODS_MS = {"24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}
# What search_journal raises when Redis or the archive cannot be read.
JOURNAL_ERRORS = (RedisError, OSError, sqlite3.Error)
_EPOCH_MS = re.compile(r"-?\d+")


class PeriodError(ValueError):
    """A period that cannot be analysed; str() says why, for the HTTP 400 and the page."""


def parse_instant_ms(text: str, name: str) -> int:
    """Epoch milliseconds, or ISO 8601 (a time without an offset is UTC)."""
    text = text.strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{name}='{text}' is neither an ISO 8601 time (e.g. 2026-01-31T08:00:00Z) "
                          "nor epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def check_period(start_ms: int, end_ms: int, now_ms: int) -> tuple[int, int]:
    """The period as analysed: an end in the future is taken as now; at most MAX_PERIOD_DAYS."""
    end_ms = min(end_ms, now_ms)
    if end_ms <= start_ms:
        raise PeriodError("the period must end after it starts, and start before now")
    if end_ms - start_ms > MAX_PERIOD_MS:
        raise PeriodError(f"the period is {(end_ms - start_ms) / DAY_MS:.1f} days long; "
                          f"at most {MAX_PERIOD_DAYS} days can be analysed at once")
    return start_ms, end_ms


def period_from_query(start: str | None, end: str | None, now_ms: int) -> tuple[int, int]:
    """?start=&end= of the API: either may be left out (end: now; start: 24 h before the end)."""
    end_ms = min(parse_instant_ms(end, "end"), now_ms) if end else now_ms
    start_ms = parse_instant_ms(start, "start") if start else end_ms - DEFAULT_PERIOD_MS
    return check_period(start_ms, end_ms, now_ms)


def period_from_choice(choice: str | None, start_date: str | None, end_date: str | None, utc_offset_min: int,
                       now_ms: int) -> tuple[int, int]:
    """The page's picker: a preset ending now, or whole local days from start_date to end_date inclusive."""
    if choice in PRESET_PERIODS_MS:
        return check_period(now_ms - PRESET_PERIODS_MS[choice], now_ms, now_ms)
    if choice != "custom":
        raise PeriodError(f"unknown period '{choice}'")
    if not start_date or not end_date:
        raise PeriodError("choose the first and the last day of the period")
    first, last = _day(start_date), _day(end_date)
    return check_period(_local_midnight_ms(first, utc_offset_min),
                        _local_midnight_ms(last + timedelta(days=1), utc_offset_min), now_ms)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise PeriodError(f"'{text}' is not a date") from None


def _local_midnight_ms(day: date, utc_offset_min: int) -> int:
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(minutes=utc_offset_min)
    return int(midnight.timestamp() * 1000)


async def load_report(runtime: WebRuntime, start_ms: int, end_ms: int) -> PerformanceReport:
    """Raises one of JOURNAL_ERRORS when the journal cannot be read."""
    query = JournalQuery(start_ms=start_ms, end_ms=end_ms - 1, limit=JOURNAL_LIMIT)  # the query's end is inclusive
    entries = await search_journal(runtime, query)
    records = list(runtime.alarm_cache.records)
    return await asyncio.to_thread(build_report, entries, start_ms, end_ms, records,
                                   journal_complete=len(entries) < JOURNAL_LIMIT)
