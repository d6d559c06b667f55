"""History over HTTP: one pen as JSON, several as a raw CSV download. Needs a session like every /api route.

    GET /api/tags/T1.level/history?start=2026-01-31T08:00:00Z&end=2026-01-31T09:00:00Z&max_points=2000
    GET /api/history.csv?tags=T1.level,M1.flow&start=1767225600000&end=1767229200000
    GET /api/history/health    is history being written to disk? the historian's state as JSON
                               (web/historian_health.py: running, behind, disk_failing, not_running,
                               stopped; 503 when Redis is away)

start and end: ISO 8601 (without an offset: UTC) or epoch ms; either may be left out (end: now;
start: one hour before the end). An end in the future is taken as now. max_points: 10 to 10,000
(default 2,000). The JSON is the PenHistory of web/history_query.py with ISO times beside the
epoch ms; the CSV is described in web/history_csv.py. 400 says what is wrong with the query,
404 names an unknown tag, 503 means Redis is away.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from redis.exceptions import RedisError

from domain.config_model import Tag
from web.api import iso_utc
from web.historian_health import flush_interval_of, historian_health_json, read_historian_health
from web.history_csv import csv_filename, raw_history_csv
from web.history_query import (
    DEFAULT_MAX_POINTS, MAX_POINTS_CAP, MIN_POINTS, HistoryQueryError, PenHistory, query_history,
)
from web.performance_data import PeriodError, parse_instant_ms
from web.runtime import WebRuntime, current_runtime

router = APIRouter(prefix="/api")

DEFAULT_RANGE_MS = 3_600_000
MAX_CSV_TAGS = 32


def range_from_query(start: str | None, end: str | None, now_ms: int) -> tuple[int, int]:
    """?start=&end=, each ISO 8601 or epoch ms; HTTP 400 with the reason for anything else."""
    try:
        end_ms = min(parse_instant_ms(end, "end"), now_ms) if end else now_ms
        start_ms = parse_instant_ms(start, "start") if start else end_ms - DEFAULT_RANGE_MS
    except PeriodError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    if end_ms <= start_ms:
        raise HTTPException(status_code=400, detail="the range must end after it starts, and start before now")
    return start_ms, end_ms


def max_points_from_query(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_MAX_POINTS
    try:
        value = int(text)
    except ValueError:
        raise HTTPException(status_code=400, detail=f"max_points='{text}' is not a whole number") from None
    if not MIN_POINTS <= value <= MAX_POINTS_CAP:
        raise HTTPException(status_code=400, detail=f"max_points={value}: between {MIN_POINTS} and {MAX_POINTS_CAP}")
    return value


def known_tag(runtime: WebRuntime, name: str) -> Tag:
    tag = runtime.tags.tag(name)
    if tag is None:
        raise HTTPException(status_code=404, detail=f"no tag named '{name}'")
    return tag


def history_json(history: PenHistory) -> dict[str, Any]:
    body = asdict(history)
    body.update(
        start=iso_utc(history.start_ms), end=iso_utc(history.end_ms), times=[iso_utc(t) for t in history.ts_ms],
        tiers=list(history.tiers), notes=list(history.notes),
        quality_bad_periods=[_period(p) for p in history.quality_bad_periods],
        quality_uncertain_periods=[_period(p) for p in history.quality_uncertain_periods],
    )
    return body


def _period(period: tuple[int, int]) -> dict[str, Any]:
    start_ms, end_ms = period
    return {"from_ms": start_ms, "to_ms": end_ms, "from": iso_utc(start_ms), "to": iso_utc(end_ms)}


@router.get("/tags/{name}/history")
async def tag_history(name: str, start: str | None = None, end: str | None = None,
                      max_points: str | None = None) -> dict[str, Any]:
    points = max_points_from_query(max_points)
    start_ms, end_ms = range_from_query(start, end, int(time.time() * 1000))
    runtime = await current_runtime().ensure_started()
    tag = known_tag(runtime, name)
    try:
        return history_json(await query_history(runtime, tag, start_ms, end_ms, points))
    except HistoryQueryError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except (RedisError, OSError) as exc:
        raise HTTPException(status_code=503, detail=f"history unavailable (Redis): {exc}") from None


@router.get("/history/health")
async def history_health() -> dict[str, Any]:
    """The historian's health judged from its heartbeat, with the figures and the operator's line."""
    runtime = await current_runtime().ensure_started()
    now_ms = int(time.time() * 1000)
    flush_interval_s = flush_interval_of(runtime.config)
    try:
        health = await read_historian_health(runtime.redis, now_ms, flush_interval_s)
    except (RedisError, OSError) as exc:
        raise HTTPException(status_code=503, detail=f"the data server (Redis) is unavailable: {exc}") from None
    return historian_health_json(health, now_ms, flush_interval_s)


@router.get("/history.csv", response_model=None)
async def history_csv(tags: str = "", start: str | None = None, end: str | None = None) -> Response:
    names = list(dict.fromkeys(n.strip() for n in tags.split(",") if n.strip()))
    if not names:
        raise HTTPException(status_code=400, detail="tags= names at least one tag, e.g. tags=T1.level,M1.flow")
    if len(names) > MAX_CSV_TAGS:
        raise HTTPException(status_code=400, detail=f"{len(names)} tags: at most {MAX_CSV_TAGS} per export")
    start_ms, end_ms = range_from_query(start, end, int(time.time() * 1000))
    runtime = await current_runtime().ensure_started()
    chosen = [known_tag(runtime, n) for n in names]
    try:
        export = await raw_history_csv(runtime, chosen, start_ms, end_ms)
    except HistoryQueryError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except (RedisError, OSError) as exc:
        raise HTTPException(status_code=503, detail=f"history unavailable (Redis): {exc}") from None
    return Response(export.text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{csv_filename(chosen, start_ms, end_ms)}"',
        "X-Stacklight-Rows": str(export.rows),
        "X-Stacklight-Truncated": "true" if export.truncated else "false",
    })
