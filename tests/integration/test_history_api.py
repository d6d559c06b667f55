"""GET /api/tags/{name}/history and GET /api/history.csv on the web app as a process, against a real Redis."""
from __future__ import annotations

import csv
import io
import time

import pytest
import requests

from domain.quality import BAD_NO_COMMUNICATION
from tests.browser.web_app_process import login_session


def test_history_needs_a_session(web_app):
    assert requests.get(web_app.url + "/api/tags/T1.level/history", timeout=10).status_code == 401
    assert requests.get(web_app.url + "/api/history.csv?tags=T1.level", timeout=10).status_code == 401


def test_history_as_json_with_gaps_bad_periods_and_iso_times(web_app, feeder):
    base = int(time.time() * 1000) - 60_000
    feeder.put("T1.level", 1.0, source_time_ms=base)
    feeder.put("T1.level", 2.0, source_time_ms=base + 1_000)
    feeder.put("T1.level", None, quality=BAD_NO_COMMUNICATION, source_time_ms=base + 2_000)
    feeder.put("T1.level", 3.0, source_time_ms=base + 5_000)
    session = login_session(web_app.url, "viewer", "viewer")
    response = session.get(web_app.url + "/api/tags/T1.level/history",
                           params={"start": str(base - 1), "end": str(base + 10_000)}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tag"] == "T1.level" and body["unit"] == "m"
    assert body["ts_ms"] == [base, base + 1_000, base + 2_000, base + 5_000]
    assert body["values"] == [1.0, 2.0, None, 3.0]
    assert body["times"][0].endswith("Z") and body["start_ms"] == base - 1 and body["end_ms"] == base + 10_000
    assert body["quality_bad_periods"] == [{"from_ms": base + 2_000, "to_ms": base + 5_000,
                                            "from": body["times"][2], "to": body["times"][3]}]
    assert body["raw_count"] == 4 and body["downsampled"] is False and "redis" in body["tiers"]
    # ISO 8601 works as well as epoch ms; the default range is the last hour, held to now while live.
    iso = session.get(web_app.url + "/api/tags/T1.level/history",
                      params={"start": body["times"][0], "end": body["end"], "max_points": "10"}, timeout=10).json()
    assert iso["ts_ms"] == body["ts_ms"]
    recent = session.get(web_app.url + "/api/tags/T1.level/history", timeout=10).json()
    assert recent["end_ms"] - recent["start_ms"] == 3_600_000
    assert recent["ts_ms"][:4] == body["ts_ms"]


@pytest.mark.parametrize(("query", "reason"), [
    ({"start": "yesterday"}, "neither an ISO 8601 time"),
    ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end after it starts"),
    ({"max_points": "many"}, "not a whole number"),
    ({"max_points": "5"}, "between 10 and 10000"),
    ({"start": "2020-01-01T00:00:00Z"}, "days long"),
])
def test_bad_queries_get_400_with_the_reason(web_app, query, reason):
    session = login_session(web_app.url, "viewer", "viewer")
    response = session.get(web_app.url + "/api/tags/T1.level/history", params=query, timeout=10)
    assert response.status_code == 400 and reason in response.json()["detail"]


def test_unknown_tags_get_404(web_app):
    session = login_session(web_app.url, "viewer", "viewer")
    response = session.get(web_app.url + "/api/tags/nope/history", timeout=10)
    assert response.status_code == 404 and response.json()["detail"] == "no tag named 'nope'"
    response = session.get(web_app.url + "/api/history.csv", params={"tags": "T1.level,nope"}, timeout=10)
    assert response.status_code == 404
    assert session.get(web_app.url + "/api/history.csv", timeout=10).status_code == 400


def test_history_csv_is_an_attachment_that_parses_back(web_app, feeder):
    base = int(time.time() * 1000) - 30_000
    feeder.put("T1.level", 1.25, source_time_ms=base)
    feeder.put("C1.count", 7, source_time_ms=base + 1)
    feeder.put("T1.level", None, quality=BAD_NO_COMMUNICATION, source_time_ms=base + 2)
    session = login_session(web_app.url, "viewer", "viewer")
    response = session.get(web_app.url + "/api/history.csv",
                           params={"tags": "T1.level,C1.count", "start": str(base), "end": str(base + 1_000)},
                           timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="history-2-tags-')
    assert response.headers["x-stacklight-truncated"] == "false"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["tag"], r["value"], r["quality_name"]) for r in rows] == [
        ("T1.level", "1.25", "Good"), ("C1.count", "7", "Good"), ("T1.level", "", "BadNoCommunication")]
    assert rows[2]["quality"] == str(BAD_NO_COMMUNICATION.code) and rows[0]["time"].endswith("Z")
