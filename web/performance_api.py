"""GET /api/alarms/performance: alarm system performance over a period, as JSON or CSV.

    /api/alarms/performance?start=2026-01-01T00:00:00Z&end=2026-01-08T00:00:00Z&format=csv
    /api/alarms/performance?start=1767225600000&format=csv&section=bad_actors

start and end: ISO 8601 (without an offset: UTC) or epoch ms; default the 24 h up to now; at most
31 days. format=csv gives every table in one file, or with section= one table (summary, rate,
floods, chattering, stale, bad_actors, priorities). Needs a session like every /api route.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from domain.alarms.performance import BENCHMARK_LINES, PRIORITY_TARGETS, PerformanceReport
from domain.alarms.performance_csv import SECTION_TITLES, report_csv_sections, section_csv, utc_text
from domain.alarms.performance_verdicts import headline_verdicts
from web.api import iso_utc
from web.performance_data import JOURNAL_ERRORS, PeriodError, load_report, period_from_query
from web.runtime import current_runtime

router = APIRouter(prefix="/api")
FORMATS = ("json", "csv")


def report_json(report: PerformanceReport) -> dict[str, Any]:
    body = asdict(report)
    body.update(
        start=iso_utc(report.start_ms), end=iso_utc(report.end_ms),
        verdicts=[{**asdict(v), "level": v.level.value} for v in headline_verdicts(report)],
        benchmark_lines=[asdict(line) for line in BENCHMARK_LINES],
        priority_targets=[asdict(target) for target in PRIORITY_TARGETS],
    )
    return body


def csv_filename(report: PerformanceReport, section: str | None) -> str:
    stamp = "-".join(utc_text(ms).replace("-", "").replace(":", "").replace(" ", "T")[:13] + "Z"
                     for ms in (report.start_ms, report.end_ms))
    return f"alarm-performance-{section + '-' if section else ''}{stamp}.csv"


def check_output(output_format: str, section: str | None) -> None:
    if output_format not in FORMATS:
        raise HTTPException(status_code=400, detail=f"format='{output_format}': use json or csv")
    if section is not None and output_format != "csv":
        raise HTTPException(status_code=400, detail="section= needs format=csv")
    if section is not None and section not in SECTION_TITLES:
        raise HTTPException(status_code=400, detail=f"section='{section}': one of {', '.join(SECTION_TITLES)}")


@router.get("/alarms/performance", response_model=None)
async def alarm_performance(start: str | None = None, end: str | None = None,
                            output_format: str = Query("json", alias="format"),
                            section: str | None = None) -> dict[str, Any] | Response:
    check_output(output_format, section)
    try:
        start_ms, end_ms = period_from_query(start, end, int(time.time() * 1000))
    except PeriodError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    runtime = await current_runtime().ensure_started()
    try:
        report = await load_report(runtime, start_ms, end_ms)
    except JOURNAL_ERRORS as exc:
        raise HTTPException(status_code=503, detail=f"alarm journal unavailable: {exc}") from None
    if output_format == "json":
        return report_json(report)
    text = section_csv(report, section) if section else report_csv_sections(report)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{csv_filename(report, section)}"'})
