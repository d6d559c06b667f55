"""A PerformanceReport as CSV a plant engineer can open in a spreadsheet.

One table per figure (`section_csv`), or all of them in one file (`report_csv_sections`): each
table under a title row, with its own header row, separated by an empty row. Times are UTC as
"YYYY-MM-DD HH:MM:SS" (a form spreadsheets read as a date) in columns named *_utc; units are in the
column names. The rate table carries the benchmark lines as columns so a chart of it shows them.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime

from domain.alarms.performance import BENCHMARK_LINES, HOUR_MS, PerformanceReport
from domain.alarms.performance_verdicts import headline_verdicts

Table = tuple[tuple[str, ...], list[tuple[object, ...]]]
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

SECTION_TITLES = {
    "summary": "Summary",
    "rate": "Alarms per 10 min",
    "floods": "Flood periods",
    "chattering": "Chattering alarms",
    "stale": "Stale alarms",
    "bad_actors": "Top 10 bad actors",
    "priorities": "Priority distribution",
}


def utc_text(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def text_cell(text: str | None) -> str:
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def summary_table(report: PerformanceReport) -> Table:
    rows: list[tuple[object, ...]] = [
        ("period_start_utc", utc_text(report.start_ms), "", ""),
        ("period_end_utc", utc_text(report.end_ms), "", ""),
        ("period_h", f"{report.period_ms / HOUR_MS:.2f}", "", ""),
        ("annunciations", report.annunciations, "", ""),
        ("average_per_hour", f"{report.average_per_hour:.2f}", "", ""),
        ("average_per_day", f"{report.average_per_day:.1f}", "", ""),
        ("peak_fixed_bucket_per_10min", report.peak_bucket_count, "", ""),
        ("journal_complete", "yes" if report.journal_complete else "no: older entries missing", "", ""),
    ]
    rows += [(v.figure, v.value_text, v.level.value, v.text) for v in headline_verdicts(report)]
    return ("figure", "value", "level", "benchmark"), rows


def rate_table(report: PerformanceReport) -> Table:
    header = ("bucket_start_utc", "bucket_end_utc", "annunciations", "in_flood",
              *(f"benchmark_{b.per_10min}_per_10min" for b in BENCHMARK_LINES))
    rows = [(utc_text(b.start_ms), utc_text(b.end_ms), b.count,
             "yes" if any(f.start_ms < b.end_ms and b.start_ms < f.end_ms for f in report.floods) else "no",
             *(line.per_10min for line in BENCHMARK_LINES)) for b in report.buckets]
    return header, rows


def floods_table(report: PerformanceReport) -> Table:
    header = ("start_utc", "end_utc", "duration_min", "annunciations", "peak_in_10min", "ongoing_at_period_end")
    return header, [(utc_text(f.start_ms), utc_text(f.end_ms), f"{(f.end_ms - f.start_ms) / 60_000:.1f}", f.count,
                     f.peak_in_10min, "yes" if f.ongoing_at_end else "no") for f in report.floods]


def chattering_table(report: PerformanceReport) -> Table:
    header = ("alarm_id", "tag", "priority", "annunciations", "most_in_60s", "first_chatter_utc")
    return header, [(text_cell(c.alarm_id), text_cell(c.tag), c.priority, c.annunciations, c.most_in_60s,
                     utc_text(c.first_chatter_ms)) for c in report.chattering]


def stale_table(report: PerformanceReport) -> Table:
    header = ("alarm_id", "tag", "priority", "message", "active_since_utc", "cleared_utc", "active_h",
              "active_since_is_period_start", "source")
    return header, [(text_cell(s.alarm_id), text_cell(s.tag), s.priority, text_cell(s.message),
                     utc_text(s.active_since_ms), utc_text(s.cleared_ms), f"{s.active_ms / HOUR_MS:.1f}",
                     "yes" if s.since_before_period else "no", s.source) for s in report.stale]


def bad_actors_table(report: PerformanceReport) -> Table:
    header = ("rank", "alarm_id", "tag", "priority", "message", "annunciations", "share_percent", "cumulative_percent")
    rows, cumulative = [], 0.0
    for rank, actor in enumerate(report.bad_actors, start=1):
        cumulative += actor.share_percent
        rows.append((rank, text_cell(actor.alarm_id), text_cell(actor.tag), actor.priority, text_cell(actor.message),
                     actor.count, f"{actor.share_percent:.2f}", f"{cumulative:.2f}"))
    return header, rows


def priorities_table(report: PerformanceReport) -> Table:
    header = ("priority", "label", "annunciations", "percent", "target_percent", "target")
    rows: list[tuple[object, ...]] = [(p.priority, p.label, p.count, f"{p.percent:.2f}", f"{p.target_percent:g}",
                                       p.target_text) for p in report.priorities]
    if report.other_priority_count:
        rows.append(("other", "outside 1-4", report.other_priority_count, "", "", ""))
    return header, rows


_TABLES = {
    "summary": summary_table, "rate": rate_table, "floods": floods_table, "chattering": chattering_table,
    "stale": stale_table, "bad_actors": bad_actors_table, "priorities": priorities_table,
}


def section_csv(report: PerformanceReport, section: str) -> str:
    """One table with its header row; KeyError for an unknown section (SECTION_TITLES lists them)."""
    header, rows = _TABLES[section](report)
    out = io.StringIO()
    _write(csv.writer(out, lineterminator="\r\n"), header, rows)
    return out.getvalue()


def report_csv_sections(report: PerformanceReport) -> str:
    """Every table in one file: a title row, the header row, the rows, an empty row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for name, make_table in _TABLES.items():
        writer.writerow((SECTION_TITLES[name],))
        _write(writer, *make_table(report))
        writer.writerow(())
    return out.getvalue()


def _write(writer, header: Sequence[str], rows: list[tuple[object, ...]]) -> None:
    writer.writerow(header)
    writer.writerows(rows)
