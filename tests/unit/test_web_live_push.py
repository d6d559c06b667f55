"""The live board and push cursor: only what changed goes out, merged, with keep-alives."""
from __future__ import annotations

from dash import Patch

from domain.config_model import Tag
from tag_store.source_status import ConnectionState, SourceStatus
from tests.unit.web_plant import small_plant
from web.live_board import LiveBoard
from web.live_push import (
    KEEPALIVE_MS, SESSION_RECHECK_S, PushCursor, SessionVerdict, SessionWatch, as_store_update, judge_session,
    session_end_update,
)
from web.roles import Role
from web.sessions import Session
from web.tag_directory import TagDirectory

PLANT = small_plant()


class FakeCache:
    """The parts of tag_store.live_cache.LiveCache the board reads."""

    def __init__(self):
        self.values: dict = {}
        self._changed: dict[str, int] = {}
        self.version = 0
        self.connected = True
        self.source_statuses: dict = {}

    def put(self, tag: str, value, rt: int, q: int = 0, qn: str = "Good"):
        self.version += 1
        self.values[tag] = {"v": value, "q": q, "qn": qn, "ts": rt, "rt": rt}
        self._changed[tag] = self.version

    def heartbeat(self, now_ms: int):
        self.source_statuses = {s: SourceStatus(s, ConnectionState.CONNECTED, "", now_ms, {}) for s in PLANT.sources}

    def changes_since(self, version: int):
        if version == 0:
            return self.version, dict(self.values)
        return self.version, {t: self.values[t] for t, v in self._changed.items() if v > version}


class FakeAlarms:
    def __init__(self):
        self.version = 0
        self.connected = True
        self.view = {"rows": [], "summary": {"unack": {}}}


def test_board_rejudges_freshness_once_a_second_without_new_messages():
    cache = FakeCache()
    cache.heartbeat(1_000)
    cache.put("M1.flow", 100.0, rt=1_000)
    board = LiveBoard(TagDirectory(PLANT), cache)
    board.refresh(1_000)
    assert board.entries["M1.flow"]["f"] == "live"
    assert board.entries["T1.level"]["f"] == "no_data"
    version = board.version
    board.refresh(1_500)  # nothing new, not yet time to re-judge
    assert board.version == version
    cache.heartbeat(8_000)
    board.refresh(8_000)  # MQTT max_age_s 5 passed: stale, though no message came
    assert board.entries["M1.flow"]["f"] == "stale"
    assert set(board.entries_since(version)) == {"M1.flow"}


def test_board_marks_everything_stale_when_redis_is_lost():
    cache = FakeCache()
    cache.heartbeat(1_000)
    cache.put("T1.level", 2.0, rt=1_000)
    board = LiveBoard(TagDirectory(PLANT), cache)
    board.refresh(1_000)
    cache.connected = False
    board.refresh(1_100)
    assert board.entries["T1.level"]["f"] == "stale"
    assert board.entries["T1.level"]["s"] == "STALE"


def test_cursor_sends_everything_first_then_only_changes_then_keepalives():
    cache, alarms = FakeCache(), FakeAlarms()
    cache.heartbeat(1_000)
    cache.put("T1.level", 2.0, rt=1_000)
    board = LiveBoard(TagDirectory(PLANT), cache)
    board.refresh(1_000)
    cursor = PushCursor()

    first = cursor.next_message(board, alarms, 1_000)
    assert first["full"] and set(first["values"]) == {t.name for t in PLANT.tags}
    assert first["alarms"]["version"] == 0

    assert cursor.next_message(board, alarms, 1_100) is None  # nothing new

    cache.put("T1.level", 2.5, rt=1_200)
    board.refresh(1_200)
    second = cursor.next_message(board, alarms, 1_200)
    assert not second["full"] and set(second["values"]) == {"T1.level"}
    assert second["values"]["T1.level"]["d"] == "2.50"
    assert "alarms" not in second

    keepalive = cursor.next_message(board, alarms, 1_200 + KEEPALIVE_MS)
    assert keepalive["values"] == {} and keepalive["seq"] == 3

    alarms.version = 1
    assert "alarms" in cursor.next_message(board, alarms, 2_300)


def test_a_delta_merges_into_the_store_and_a_full_message_replaces_it():
    full = {"epoch": "e", "seq": 1, "full": True, "now": 1, "connected": True, "values": {"a": {"n": 1}}}
    assert as_store_update(full) is full
    delta = as_store_update({**full, "seq": 2, "full": False, "values": {"a": {"n": 2}},
                             "alarms": {"version": 3}})
    assert isinstance(delta, Patch)
    operations = delta.to_plotly_json()["operations"]
    assert {"operation": "Merge", "location": ["values"], "params": {"value": {"a": {"n": 2}}}} in operations
    assert {"operation": "Assign", "location": ["alarms"], "params": {"value": {"version": 3}}} in operations


def test_a_newly_discovered_tag_is_judged_and_pushed_with_the_directory_version():
    cache, alarms = FakeCache(), FakeAlarms()
    cache.heartbeat(1_000)
    cache.put("F9.temp", 21.5, rt=1_000)  # values of unknown tags already sit in the cache
    directory = TagDirectory(PLANT)
    board = LiveBoard(directory, cache)
    board.refresh(1_000)
    cursor = PushCursor()
    first = cursor.next_message(board, alarms, 1_000)
    assert "F9.temp" not in first["values"] and first["tags"] == 0

    directory.apply(4, {"F9.temp": Tag(name="F9.temp", source="mq", topic="plant/F9/temp", unit="degC")})
    board.refresh(1_100)  # well within the once-a-second re-judging: the directory change alone does it
    second = cursor.next_message(board, alarms, 1_100)
    assert set(second["values"]) == {"F9.temp"} and second["values"]["F9.temp"]["d"] == "21.5"
    assert second["tags"] == 4
    assert as_store_update(second).to_plotly_json()["operations"][-1] == {
        "operation": "Assign", "location": ["tags"], "params": {"value": 4}}
    assert "tags" not in cursor.next_message(board, alarms, 1_100 + KEEPALIVE_MS)


def test_the_session_verdict_ends_changes_or_keeps_the_live_page():
    as_operator = Session(user="ann", role=Role.OPERATOR, csrf_token="c", created_ms=1)
    assert judge_session(Role.OPERATOR, as_operator) is SessionVerdict.LIVE
    assert judge_session(Role.OPERATOR, None) is SessionVerdict.ENDED  # logged out, timed out, deleted
    assert judge_session(Role.ADMIN, as_operator) is SessionVerdict.CHANGED


def test_the_session_is_read_first_then_every_recheck_interval():
    watch = SessionWatch(next_check_s=100.0)
    assert watch.due(100.0)
    assert not watch.due(100.0 + SESSION_RECHECK_S / 2)
    assert watch.due(100.0 + SESSION_RECHECK_S)
    assert not watch.due(100.0 + SESSION_RECHECK_S * 1.5)


def test_the_page_is_told_its_session_ended_by_a_patch_or_before_any_push():
    cursor = PushCursor()
    first = session_end_update(cursor, SessionVerdict.ENDED)
    assert first["session"] == "ended" and first["values"] == {}
    cache, alarms = FakeCache(), FakeAlarms()
    cursor.next_message(LiveBoard(TagDirectory(PLANT), cache), alarms, 1_000)
    later = session_end_update(cursor, SessionVerdict.CHANGED)
    assert isinstance(later, Patch)
    assert later.to_plotly_json()["operations"] == [
        {"operation": "Assign", "location": ["session"], "params": {"value": "changed"}}]
