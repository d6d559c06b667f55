"""The alarm performance page's figures, its period picker and GET /api/alarms/performance, in process.

The route runs on a bare FastAPI app with the journal search replaced (no Redis, no archive,
no session: test_web_api_auth.py shows every /api route needs one).
"""
from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from domain.alarms.journal import JournalEntry, JournalQuery, select
from domain.alarms.performance import DAY_MS, HOUR_MS, build_report
from web import performance_api, performance_data
from web.performance_data import JOURNAL_LIMIT, PeriodError, period_from_choice, period_from_query
from web.performance_view import build_performance_figures, stale_rows

START_MS = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
NOW_MS = START_MS + 2 * DAY_MS


def alarm(time_ms: int, alarm_id: str) -> JournalEntry:
    tag, _, kind = alarm_id.partition(":")
    return JournalEntry(entry_id=f"{time_ms}-0", time_ms=time_ms, alarm_id=alarm_id, tag=tag, kind=kind, area="A",
                        priority=3, message="m", transition="T1", from_state="A", to_state="B")


def flood_entries(first_ms: int) -> list[JournalEntry]:
    return [alarm(first_ms + i * 30_000, f"X{i}.pv:high") for i in range(11)]


# ---- figures ---------------------------------------------------------------------------------


def test_the_rate_figure_has_the_benchmark_lines_and_shades_the_flood():
    report = build_report(flood_entries(START_MS + HOUR_MS), START_MS, START_MS + 3 * HOUR_MS)
    rate = build_performance_figures(report).rate
    lines = [s for s in rate.layout.shapes if s.type == "line"]
    assert sorted((s.y0, s.y1) for s in lines) == [(1, 1), (2, 2), (10, 10)]
    [shade] = [s for s in rate.layout.shapes if s.type == "rect"]
    assert (shade.x0, shade.x1) == ("2026-01-01 01:05:00.000", "2026-01-01 01:13:00.000")
    assert "FLOOD" in [a.text for a in rate.layout.annotations]
    [bars] = rate.data
    assert len(bars.y) == 18 and bars.y[6] == 11 and sum(bars.y) == 11


def test_the_rate_figure_uses_the_browsers_time_zone_and_says_when_there_are_no_alarms():
    report = build_report([], START_MS, START_MS + HOUR_MS)
    figures = build_performance_figures(report, utc_offset_min=60)
    assert figures.rate.data[0].x[0] == "2026-01-01 01:00:00.000"
    assert not [s for s in figures.rate.layout.shapes if s.type == "rect"]
    assert "No alarms in this period" in [a.text for a in figures.rate.layout.annotations]


def test_priority_and_bad_actor_figures():
    report = build_report(flood_entries(START_MS) + [alarm(START_MS + HOUR_MS, "X0.pv:high")], START_MS,
                          START_MS + 2 * HOUR_MS)
    figures = build_performance_figures(report)
    actual, guidance = figures.priorities.data
    assert list(guidance.y) == [1.0, 5.0, 15.0, 80.0] and list(actual.y) == [0.0, 0.0, 100.0, 0.0]
    [bars] = figures.bad_actors.data
    assert bars.y[-1] == "X0.pv:high" and bars.x[-1] == 2  # most frequent on top
    assert bars.text[-1] == f"{100 * 2 / 12:.1f} %"


def test_stale_rows_say_when_the_start_is_only_a_lower_bound():
    entries = [JournalEntry(entry_id=f"{START_MS + 30 * HOUR_MS}-0", time_ms=START_MS + 30 * HOUR_MS,
                            alarm_id="S.pv:high", tag="S.pv", kind="high", area="A", priority=2, message="stuck",
                            transition="T5", from_state="C", to_state="A")]
    [row] = stale_rows(build_report(entries, START_MS, START_MS + 2 * DAY_MS))
    assert row == ("S.pv:high", "2", "stuck", "before 2026-01-01 00:00:00", "2026-01-02 06:00:00", "over 30.0 h",
                   "journal")


# ---- periods ---------------------------------------------------------------------------------


def test_api_periods_default_to_the_last_24_h_and_take_iso_or_epoch_ms():
    assert period_from_query(None, None, NOW_MS) == (NOW_MS - DAY_MS, NOW_MS)
    assert period_from_query("2026-01-01T00:00:00Z", str(START_MS + HOUR_MS), NOW_MS) == (START_MS, START_MS + HOUR_MS)
    assert period_from_query("2026-01-01T01:00:00+01:00", None, NOW_MS) == (START_MS, NOW_MS)
    assert period_from_query("2026-01-01", "2026-01-01T06:00", NOW_MS) == (START_MS, START_MS + 6 * HOUR_MS)
    assert period_from_query(None, str(NOW_MS + DAY_MS), NOW_MS) == (NOW_MS - DAY_MS, NOW_MS)  # future end: now


@pytest.mark.parametrize(("start", "end", "message"), [
    ("yesterday", None, "start='yesterday' is neither an ISO 8601 time"),
    (None, "2026-13-01", "end='2026-13-01' is neither"),
    ("2026-01-02", "2026-01-01", "must end after it starts"),
    ("2025-11-01", None, "at most 31 days"),
])
def test_bad_api_periods_say_what_is_wrong(start, end, message):
    with pytest.raises(PeriodError, match=message):
        period_from_query(start, end, NOW_MS)


def test_the_page_picker_presets_and_whole_local_days():
    assert period_from_choice("7d", None, None, 0, NOW_MS) == (NOW_MS - 7 * DAY_MS, NOW_MS)
    # 1 January in UTC+2 is 31 Dec 22:00 UTC to 1 Jan 22:00 UTC.
    assert period_from_choice("custom", "2026-01-01", "2026-01-01", 120, NOW_MS) == (
        START_MS - 2 * HOUR_MS, START_MS + 22 * HOUR_MS)
    with pytest.raises(PeriodError, match="choose the first and the last day"):
        period_from_choice("custom", "2026-01-01", None, 0, NOW_MS)
    with pytest.raises(PeriodError, match="at most 31 days"):
        period_from_choice("custom", "2025-11-01", "2026-01-01", 0, NOW_MS)


# ---- the route -------------------------------------------------------------------------------


@pytest.fixture
def api(monkeypatch):
    """A client for the route alone; `searches` records the journal queries it made."""
    entries = flood_entries(NOW_MS - 5 * HOUR_MS)
    searches: list[JournalQuery] = []
    state = SimpleNamespace(error=None, entries=entries)

    async def search_journal(_runtime, query):
        searches.append(query)
        if state.error:
            raise state.error
        return select(state.entries, query)

    class Runtime:
        alarm_cache = SimpleNamespace(records=[])

        async def ensure_started(self):
            return self

    monkeypatch.setattr(performance_data, "search_journal", search_journal)
    monkeypatch.setattr(performance_api, "current_runtime", Runtime)
    monkeypatch.setattr(performance_api.time, "time", lambda: NOW_MS / 1000)
    app = FastAPI()
    app.include_router(performance_api.router)
    with TestClient(app) as client:
        yield SimpleNamespace(client=client, searches=searches, state=state)


def test_json_by_default_over_the_last_24_h(api):
    body = api.client.get("/api/alarms/performance").json()
    assert (body["start_ms"], body["end_ms"]) == (NOW_MS - DAY_MS, NOW_MS)
    assert body["start"] == "2026-01-02T00:00:00.000Z" and body["annunciations"] == 11
    assert len(body["floods"]) == 1 and body["journal_complete"] is True
    assert {v["figure"]: v["level"] for v in body["verdicts"]}["peak_rate"] == "over"
    assert [line["per_10min"] for line in body["benchmark_lines"]] == [1, 2, 10]
    [query] = api.searches
    assert (query.start_ms, query.end_ms, query.limit) == (NOW_MS - DAY_MS, NOW_MS - 1, JOURNAL_LIMIT)


def test_csv_parses_and_one_section_can_be_asked_for(api):
    response = api.client.get("/api/alarms/performance", params={"start": "2026-01-02T00:00:00Z", "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="alarm-performance-20260102T0000Z-20260103T0000Z.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["Summary"] and ["Alarms per 10 min"] in rows and ["Flood periods"] in rows
    section = api.client.get("/api/alarms/performance", params={"format": "csv", "section": "floods"})
    [flood] = list(csv.DictReader(io.StringIO(section.text)))
    assert flood["start_utc"] == "2026-01-02 19:05:00" and flood["annunciations"] == "1"


@pytest.mark.parametrize(("params", "message"), [
    ({"start": "soon"}, "start='soon' is neither an ISO 8601 time"),
    ({"start": "2025-11-01T00:00:00Z"}, "at most 31 days"),
    ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "must end after it starts"),
    ({"format": "xlsx"}, "format='xlsx': use json or csv"),
    ({"section": "rate"}, "section= needs format=csv"),
    ({"format": "csv", "section": "all"}, "section='all': one of summary, rate"),
])
def test_bad_input_is_a_400_that_says_why(api, params, message):
    response = api.client.get("/api/alarms/performance", params=params)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert api.searches == []


def test_an_unreadable_journal_is_a_503_and_a_full_one_is_flagged(api, monkeypatch):
    api.state.error = RedisConnectionError("connection refused")
    response = api.client.get("/api/alarms/performance")
    assert response.status_code == 503 and "alarm journal unavailable: connection refused" in response.json()["detail"]
    api.state.error = None
    monkeypatch.setattr(performance_data, "JOURNAL_LIMIT", 5)
    assert api.client.get("/api/alarms/performance").json()["journal_complete"] is False
