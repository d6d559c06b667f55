"""Searching the audit trail (web/audit_query.py) against a real Redis: filters, time range, cap, CSV."""
from __future__ import annotations

import csv
import io

import pytest

import web.audit_query as audit_query
from web.audit_query import INVALID_TIME, NOT_ALLOWED, audit_scope, audit_view, page_range_ms
from tag_store import keys
from web.audit import AuditEvent, audit_fields
from web.audit_query import (AuditQuery, AuditRecord, audit_csv, build_audit_query, query_params,
                             search_audit)
from web.roles import Role

T0 = 1_738_300_000_000  # 2025-01-31T05:06:40Z


async def add(redis, time_ms: int, event: AuditEvent) -> None:
    """As append_audit, with the stream id (the event's time) chosen by the test."""
    await redis.xadd(keys.AUDIT, audit_fields(event, time_ms), id=f"{time_ms}-0")


@pytest.fixture
async def trail(redis_client):
    events = [
        AuditEvent(user="operator", action="login", result="ok", source_ip="10.0.0.5"),
        AuditEvent(user="operator", action="write", result="refused", tag="T1.level", old="2.5", new="3",
                   reason="T1.level is not writable", source_ip="10.0.0.5"),
        AuditEvent(user="operator", action="write", result="done", tag="T1.setpoint", old="50", new="55"),
        AuditEvent(user="engineer", action="acknowledge", result="ok", tag="T2.temp:high", reason="pump CHECKED"),
        AuditEvent(user="operator", action="logout", result="ok"),
        AuditEvent(user="(unknown name)", action="login_failed", result="refused", source_ip="10.0.0.9"),
    ]
    for n, event in enumerate(events):
        await add(redis_client, T0 + n * 1000, event)
    return redis_client


def described(records: list[AuditRecord]) -> list[tuple[str, str, str]]:
    return [(r.user, r.action, r.result) for r in records]


async def test_everything_comes_newest_first_with_its_time_from_the_stream_id(trail):
    found = await search_audit(trail, AuditQuery())
    assert [r.time_ms for r in found.records] == [T0 + n * 1000 for n in (5, 4, 3, 2, 1, 0)]
    assert described(found.records)[0] == ("(unknown name)", "login_failed", "refused")
    refused = found.records[4]
    assert (refused.tag, refused.old, refused.new, refused.reason, refused.source_ip) == (
        "T1.level", "2.5", "3", "T1.level is not writable", "10.0.0.5")
    assert not found.capped


@pytest.mark.parametrize(("query", "expected"), [
    (AuditQuery(user="engineer"), [("engineer", "acknowledge", "ok")]),
    (AuditQuery(action="write"), [("operator", "write", "done"), ("operator", "write", "refused")]),
    (AuditQuery(action="write", result="refused"), [("operator", "write", "refused")]),
    (AuditQuery(tag="T1.*"), [("operator", "write", "done"), ("operator", "write", "refused")]),
    (AuditQuery(tag="T1.level"), [("operator", "write", "refused")]),
    (AuditQuery(tag="T1"), []),
    (AuditQuery(text="checked"), [("engineer", "acknowledge", "ok")]),
    (AuditQuery(text="10.0.0.9"), [("(unknown name)", "login_failed", "refused")]),
    (AuditQuery(from_ms=T0 + 1000, to_ms=T0 + 3000), [("engineer", "acknowledge", "ok"),
                                                      ("operator", "write", "done"),
                                                      ("operator", "write", "refused")]),
    (AuditQuery(to_ms=T0), [("operator", "login", "ok")]),
    (AuditQuery(from_ms=T0 + 5000), [("(unknown name)", "login_failed", "refused")]),
])
async def test_filters(trail, query, expected):
    assert described((await search_audit(trail, query)).records) == expected


async def test_the_limit_caps_and_says_there_are_more_across_read_batches(trail, monkeypatch):
    monkeypatch.setattr(audit_query, "READ_BATCH", 2)  # the search crosses batch boundaries
    capped = await search_audit(trail, AuditQuery(user="operator", limit=3))
    assert described(capped.records) == [("operator", "logout", "ok"), ("operator", "write", "done"),
                                         ("operator", "write", "refused")]
    assert capped.capped
    exact = await search_audit(trail, AuditQuery(user="operator", limit=4))
    assert len(exact.records) == 4 and not exact.capped


async def test_an_empty_trail_finds_nothing(redis_client):
    found = await search_audit(redis_client, AuditQuery(from_ms=T0, to_ms=T0 + 1))
    assert found.records == [] and not found.capped


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"from_": "2025-02-01T00:00:00Z", "to": "2025-01-31T00:00:00Z"}, "from is after to"),
    ({"from_": "yesterday"}, "from: 'yesterday' is neither an ISO 8601 time"),
    ({"to": "31/01/2025"}, "to: '31/01/2025' is neither"),
    ({"action": "DROP TABLE"}, "action: 'DROP TABLE' is not an action name (lowercase letters, digits, _), like login"),
    ({"result": "ok!"}, "result: 'ok!' is not a result name"),
    ({"limit": "lots"}, "limit: 'lots' is not a whole number"),
    ({"limit": "0"}, "limit: 0 is not between 1 and 100,000"),
    ({"limit": "100001"}, "limit: 100001 is not between 1 and 100,000"),
    ({"user": "x" * 201}, "user: longer than 200 characters"),
])
def test_bad_input_says_what_is_wrong(kwargs, reason):
    with pytest.raises(ValueError, match="^" + reason.replace("(", r"\(").replace(")", r"\)")):
        build_audit_query(**kwargs)


def test_a_query_from_url_values_and_back():
    query = build_audit_query("2025-01-31T06:00:00", "1738310400000", " operator ", "", "write", "refused",
                              None, "", default_limit=100_000)
    assert query == AuditQuery(from_ms=1_738_303_200_000, to_ms=1_738_310_400_000, user="operator",
                               action="write", result="refused", limit=100_000)
    assert query_params(query) == {"from": "1738303200000", "to": "1738310400000", "user": "operator",
                                   "action": "write", "result": "refused"}
    assert build_audit_query(**{"from_": query_params(query)["from"]}).limit == audit_query.PAGE_LIMIT


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_has_a_header_iso_and_epoch_times_and_quotes_commas():
    record = AuditRecord(entry_id=f"{T0}-0", time_ms=T0, user="operator", action="write", result="refused",
                         tag="T1.level", old="2.5", new="3", reason='not writable, "really"', source_ip="10.0.0.5")
    header, row = rows(audit_csv([record]))
    assert header == ["time_utc", "time_ms", "user", "action", "result", "tag", "old", "new", "reason",
                      "comment", "source_ip"]
    assert row == ["2025-01-31T05:06:40.000Z", str(T0), "operator", "write", "refused", "T1.level", "2.5", "3",
                   'not writable, "really"', "", "10.0.0.5"]
    commented = AuditRecord(entry_id=f"{T0}-0", time_ms=T0, user="operator", action="write", result="done",
                            comment="=batch 7, restart")
    assert rows(audit_csv([commented]))[1][9] == "'=batch 7, restart"


@pytest.mark.parametrize("typed", ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\r=1"])
def test_csv_cells_a_spreadsheet_would_run_get_a_leading_apostrophe(typed):
    record = AuditRecord(entry_id=f"{T0}-0", time_ms=T0, user=typed, action="write", result="refused",
                         tag=typed, old=typed, new=typed, reason=typed, source_ip="")
    row = rows(audit_csv([record]))[1]
    assert row[2] == row[5] == row[6] == row[7] == row[8] == "'" + typed
    assert row[3:5] == ["write", "refused"]


def test_a_capped_csv_ends_with_a_note_line():
    record = AuditRecord(entry_id=f"{T0}-0", time_ms=T0, user="operator", action="login", result="ok")
    assert len(rows(audit_csv([record]))) == 2
    *_, last = rows(audit_csv([record], capped=True, limit=1))
    assert last == ["# capped: only the newest 1 matching events; narrow the search for the rest"]


def test_page_time_range_presets_and_custom():
    now = T0 + 10 * 86_400_000
    assert page_range_ms({"preset": "hour"}, now) == (now - 3_600_000, now)
    assert page_range_ms({"preset": "week"}, now) == (now - 7 * 86_400_000, now)
    assert page_range_ms({"preset": "custom", "from_ms": T0, "to_ms": None}, now) == (T0, now)
    assert page_range_ms({"preset": "custom", "from_ms": None, "to_ms": T0}, now) == (T0 - 86_400_000, T0)
    with pytest.raises(ValueError, match="A time is incomplete"):
        page_range_ms({"preset": "custom", "from_ms": INVALID_TIME}, now)


async def test_the_page_search_shows_engineers_everyones_actions_and_others_their_own(trail):
    custom = {"preset": "custom", "from_ms": T0, "to_ms": T0 + 5000}
    for refused in (audit_scope(None, None), audit_scope(Role.ADMIN, "(kiosk)", kiosk=True)):
        view = await audit_view(trail, refused, custom, None, "", None, None, None, T0)
        assert (view.rows, view.csv_href) == ([], None)
        assert view.message == NOT_ALLOWED
    view = await audit_view(trail, audit_scope(Role.ENGINEER, "engineer"), custom, "operator", "", "write", None,
                            None, T0)
    assert [(r["action"], r["result"]) for r in view.rows] == [("write", "done"), ("write", "refused")]
    assert view.message == ("2 events. Archive: no archiver has run yet (the historian runs it); "
                            "events are in Redis only.")
    assert view.csv_href == f"/api/audit.csv?from={T0}&to={T0 + 5000}&user=operator&action=write"
    bad = await audit_view(trail, audit_scope(Role.ADMIN, "admin"), custom, None, None, "format disk", None, None, T0)
    assert bad.message.startswith("action: 'format disk' is not an action name")

    # An operator sees their own actions (a blank user filter is theirs), never someone else's.
    own = audit_scope(Role.OPERATOR, "operator")
    mine = await audit_view(trail, own, custom, None, "", None, None, None, T0)
    assert mine.rows and {r["user"] for r in mine.rows} == {"operator"}
    assert "user=operator" in mine.csv_href
    everyone = await audit_view(trail, audit_scope(Role.ENGINEER, "engineer"), custom, None, "", None, None, None, T0)
    assert {r["user"] for r in everyone.rows} > {"operator"}
    other = await audit_view(trail, audit_scope(Role.VIEWER, "viewer"), custom, "operator", "", None, None, None, T0)
    assert other.rows == [] and other.message.startswith("user: you may see only your own actions (viewer)")


async def test_an_action_not_listed_yet_is_still_searchable(trail):
    await add(trail, T0 + 9000, AuditEvent(user="admin", action="token_rotated", result="ok"))
    assert described((await search_audit(trail, AuditQuery(action="token_rotated"))).records) == [
        ("admin", "token_rotated", "ok")]


async def test_the_comment_is_read_searched_and_shown(trail):
    await add(trail, T0 + 9000, AuditEvent(user="operator", action="write", result="done", tag="T1.setpoint",
                                          comment="Batch 7 start-up"))
    found = await search_audit(trail, AuditQuery(text="batch 7"))
    assert [r.comment for r in found.records] == ["Batch 7 start-up"]
    assert audit_query.record_json(found.records[0])["comment"] == "Batch 7 start-up"


def test_the_archive_line_from_the_archivers_heartbeat():
    line = audit_query.archive_line
    now = T0 + 60_000
    alive = {"heartbeat_ms": str(now - 1000), "state": "ok", "archived_entries": "12345", "chain": "intact",
             "chain_verified_ms": str(T0), "chain_verified_rows": "12000"}
    assert line(alive, now) == ("Archive: 12,345 entries, chain verified intact at 2025-01-31T05:06:40.000Z "
                                "(12,000 entries then).")
    assert line({**alive, "chain": "not verified", "chain_verified_ms": "0"}, now) == \
        "Archive: 12,345 entries, chain not verified yet."
    broken = line({**alive, "chain": "broken: row 7 (stream id 1-0): its content does not match its hash"}, now)
    assert "chain BROKEN (row 7 (stream id 1-0)" in broken
    assert line({**alive, "heartbeat_ms": str(now - 60_000)}, now).endswith(
        "The archiver is not running (last seen 2025-01-31T05:06:40.000Z).")
    assert line({**alive, "state": "disk_failing", "last_error": "cannot write x: disk full"}, now).endswith(
        "The archiver is failing: cannot write x: disk full")
    assert line({}, now).startswith("Archive: no archiver has run yet")


def test_the_result_line_counts_in_words():
    one = AuditRecord(entry_id=f"{T0}-0", time_ms=T0, user="operator", action="login", result="ok",
                      tag="", old="", new="", reason="", source_ip="127.0.0.1")
    assert audit_query.result_text(audit_query.AuditResult([], capped=False), 100) == "No events match."
    assert audit_query.result_text(audit_query.AuditResult([one], capped=False), 100) == "1 event."
    assert audit_query.result_text(audit_query.AuditResult([one] * 1200, capped=False), 5000) == "1,200 events."
    capped = audit_query.AuditResult([one] * 3, capped=True, note="Archive unreadable.")
    assert audit_query.result_text(capped, 3) == "The newest 3 events; there are more: narrow the search. Archive unreadable."
