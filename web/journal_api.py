"""GET /api/alarms/journal: search the alarm journal, as JSON or as a CSV download.

    /api/alarms/journal?start=2025-01-31T06:00:00Z&end=1738310400000&tag=T1.*&area=Tanks
        &priority=1&text=pump&limit=1000&format=csv

start and end (inclusive) are ISO 8601 (without a zone: UTC) or epoch milliseconds; tag is an
exact name or a prefix ending in "*"; text is searched, ignoring case, in message, user and
comment; limit is 1 to 100,000 (default 10,000), newest first. Bad input: 400 with the reason.
Needs a session like every /api route (web/auth.py); any role may read.
"""
from __future__ import annotations

import sqlite3
import time
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from redis.exceptions import RedisError

from domain.alarms.journal import JournalEntry
from web.alarm_journal import build_query, journal_csv, search_journal
from web.api import iso_utc
from web.auth import current_session
from web.runtime import current_runtime

router = APIRouter(prefix="/api")

FORMATS = ("json", "csv")


def entry_record(entry: JournalEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id, "time": iso_utc(entry.time_ms), "time_ms": entry.time_ms,
        "alarm_id": entry.alarm_id, "tag": entry.tag, "kind": entry.kind, "area": entry.area,
        "priority": entry.priority, "message": entry.message, "transition": entry.transition,
        "from_state": entry.from_state, "to_state": entry.to_state, "value": entry.value,
        "value_text": entry.value_text, "user": entry.user, "comment": entry.comment,
    }


@router.get("/alarms/journal")
async def alarm_journal(
    start: str | None = None, end: str | None = None, tag: str | None = None, area: str | None = None,
    priority: str | None = None, text: str | None = None, limit: str | None = None,
    format: str = "json",  # noqa: A002 - the public parameter name
):
    if current_session() is None:  # the middleware lets no such request through; defence in depth
        raise HTTPException(status_code=401, detail="not logged in")
    try:
        if format not in FORMATS:
            raise ValueError(f"format: {format!r} is not json or csv")
        query = build_query(start, end, tag, area, priority, text, limit)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    runtime = await current_runtime().ensure_started()
    try:
        entries = await search_journal(runtime, query)
    except (RedisError, OSError) as exc:
        raise HTTPException(status_code=503, detail=f"alarm journal unavailable (Redis: {exc})") from None
    except sqlite3.Error as exc:
        raise HTTPException(status_code=503, detail=f"alarm journal archive unreadable: {exc}") from None
    if format == "csv":
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return Response(journal_csv(entries), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="alarm-journal-{stamp}.csv"'})
    return {"count": len(entries), "limit": query.limit, "entries": [entry_record(e) for e in entries]}
