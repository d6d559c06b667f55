"""Alarm rows, the lists of removed alarms and the banner summary as the operator sees them,
and the operator's alarm actions decided on the server (role, input) against a real Redis."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from alarm_engine.commands import CommandOutcome, parse_command, queue_outcome
from domain.alarms.records import AlarmRecord, AlarmState
from domain.config_model import Tag
from tag_store import keys
from tests.unit.web_plant import small_plant
from web.alarm_actions import (
    MAX_ALARMS_PER_REQUEST, ONE_SHOT, AckResult, ActionResult, RequestRefused, acknowledge_all_question,
    clean_ack_request, clean_request, default_shelve_choice, describe_ack_results, describe_results,
    perform_alarm_action, shelve_choice, shelve_duration_options,
)
from web.alarm_cache import AlarmCache
from web.alarm_view import alarm_record_json, alarm_summary, build_alarm_view, sort_shown_alarms
from web.audit import read_audit
from web.auth import RequestIdentity
from web.engine_health import (
    AGE_PLACEHOLDER, BEHIND_AFTER_MS, HEARTBEAT_TIMEOUT_MS, EngineState, coarse_lag_ms, duration_text,
    engine_health_json, engine_health_text, engine_health_view, judge_engine_health,
)
from web.roles import Role
from web.runtime import WebRuntime
from web.sessions import Session
from web.tag_directory import TagDirectory

PLANT = small_plant()


def record(alarm_id: str, priority: int, state: AlarmState, activated_ms: int, tag: str = "T1.level",
           value: float | None = 4.6) -> AlarmRecord:
    return AlarmRecord(alarm_id=alarm_id, tag=tag, kind="high", priority=priority, message=f"{alarm_id} message",
                       area="Tanks", state=state, condition_active=state is not AlarmState.RETURNED_UNACK,
                       last_value=value, state_since_ms=activated_ms, activated_ms=activated_ms)


RECORDS = [
    record("a", 3, AlarmState.UNACK_ACTIVE, 1_000),
    record("b", 1, AlarmState.ACK_ACTIVE, 500),
    record("c", 3, AlarmState.RETURNED_UNACK, 3_000),
    record("d", 1, AlarmState.UNACK_ACTIVE, 2_000, tag="M1.flow", value=1200.0),
    record("e", 2, AlarmState.NORMAL, 9_000),
]


def test_shown_alarms_sort_by_priority_then_newest_first_and_normal_ones_are_hidden():
    assert [r.alarm_id for r in sort_shown_alarms(RECORDS)] == ["d", "b", "c", "a"]


def test_rows_say_the_state_in_words_with_the_value_and_unit():
    rows = build_alarm_view(RECORDS, PLANT)["rows"]
    by_id = {r["alarm_id"]: r for r in rows}
    assert by_id["a"]["state_text"] == "UNACK ACTIVE" and by_id["a"]["unacked"]
    assert by_id["b"]["state_text"] == "ACK ACTIVE" and not by_id["b"]["unacked"]
    assert by_id["c"]["state_text"] == "RTN UNACK" and by_id["c"]["unacked"]
    assert by_id["a"]["value"] == "4.60 m"
    assert by_id["d"]["value"] == "1200 m3/h"
    assert by_id["d"]["time_ms"] == 2_000


def test_summary_counts_unacknowledged_per_priority_and_names_the_newest():
    summary = alarm_summary(RECORDS)
    assert summary["unack"] == {"1": 1, "2": 0, "3": 2, "4": 0}
    assert summary["shown"] == 4
    assert summary["newest"]["message"] == "c message"
    assert summary["tags"]["T1.level"] == {"p": 1, "u": True}
    assert alarm_summary([])["newest"] is None


def test_acknowledge_requests_are_cleaned_and_results_described():
    ids, comment = clean_ack_request(["x", "x", 3, "", "y" * 400, "z"], "  checked valve  ")
    assert ids == ["x", "z"] and comment == "checked valve"
    assert clean_ack_request("not a list", 5) == ([], None)
    text = describe_ack_results([AckResult("x", True), AckResult("z", False, "nothing to acknowledge")])
    assert text == "Acknowledged 1 alarm. REFUSED z: nothing to acknowledge"
    assert describe_ack_results([]) == "Select one or more alarms first."


def test_device_alarms_say_they_were_decided_by_the_device_and_show_a_lost_input():
    device = AlarmRecord(alarm_id="plc:nsu=urn:plc;s=TempAlarm", tag="Temperature", kind="TempAlarm", priority=2,
                         message="Temperature high", area="Plant", state=AlarmState.UNACK_ACTIVE, input_bad=True,
                         state_since_ms=1, device_source="plc", device_condition="nsu=urn:plc;s=TempAlarm")
    rows = {r["alarm_id"]: r for r in build_alarm_view([device, *RECORDS], PLANT)["rows"]}
    assert rows[device.alarm_id]["origin"] == "device plc"
    assert rows[device.alarm_id]["value"] == "(input BAD)"
    assert rows["a"]["origin"] == "Stacklight"
    # "Temperature" is no configured tag: no link to a faceplate that does not exist.
    assert rows[device.alarm_id]["has_faceplate"] is False
    assert rows["a"]["has_faceplate"] is True


def test_a_device_alarm_on_a_discovered_tag_links_to_its_faceplate():
    device = AlarmRecord(alarm_id="mq:F9.temp high", tag="F9.temp", kind="high", priority=2, message="F9 hot",
                         area="Plant", state=AlarmState.UNACK_ACTIVE, last_value=81.0, state_since_ms=1,
                         device_source="mq", device_condition="F9.temp high")
    directory = TagDirectory(PLANT)
    assert build_alarm_view([device], directory)["rows"][0]["has_faceplate"] is False
    directory.apply(1, {"F9.temp": Tag(name="F9.temp", source="mq", topic="plant/F9", unit="degC")})
    row = build_alarm_view([device], directory)["rows"][0]
    assert row["has_faceplate"] is True and row["value"] == "81.0 degC"


async def engine_running(_redis, now_ms):
    return judge_engine_health({b"heartbeat_ms": str(now_ms).encode(), b"lag_ms": b"0"}, now_ms)


def test_the_alarm_cache_rebuilds_its_view_when_the_tag_directory_changes(monkeypatch):
    device = AlarmRecord(alarm_id="mq:F9.temp high", tag="F9.temp", kind="high", priority=2, message="F9 hot",
                         area="Plant", state=AlarmState.UNACK_ACTIVE, state_since_ms=1, device_source="mq",
                         device_condition="F9.temp high")
    reads = []

    async def alarm_version(_redis):
        return 7  # the engine's alarms never change in this test

    async def all_alarms(_redis):
        reads.append(1)
        return [device]

    monkeypatch.setattr("web.alarm_cache.read_alarm_version", alarm_version)
    monkeypatch.setattr("web.alarm_cache.read_all_alarms", all_alarms)
    monkeypatch.setattr("web.alarm_cache.read_engine_health", engine_running)
    directory = TagDirectory(PLANT)
    cache = AlarmCache(None, directory, poll_s=0.01)

    async def scenario():
        task = asyncio.create_task(cache.run())
        await asyncio.sleep(0.05)
        assert cache.view["rows"][0]["has_faceplate"] is False
        version = cache.version
        directory.apply(1, {"F9.temp": Tag(name="F9.temp", source="mq", topic="plant/F9")})
        await asyncio.sleep(0.05)
        task.cancel()
        return version

    version = asyncio.run(scenario())
    assert cache.view["rows"][0]["has_faceplate"] is True and cache.version == version + 1
    assert len(reads) == 1  # rebuilt from the records it holds, not read again


# ---- the alarm engine's health ------------------------------------------------------------------

NOW_MS = 1_700_000_000_000


def beat(age_ms: int, lag_ms: int = 0, alarms: int = 12) -> dict:
    """The engine's heartbeat hash as Redis returns it (bytes), written age_ms before NOW_MS."""
    return {b"heartbeat_ms": str(NOW_MS - age_ms).encode(), b"lag_ms": str(lag_ms).encode(),
            b"alarms": str(alarms).encode()}


def test_an_engine_that_never_beat_is_not_running():
    for status in (None, {}, {b"lag_ms": b"0"}, {b"heartbeat_ms": b"not a number"}, {b"heartbeat_ms": b"0"}):
        health = judge_engine_health(status, NOW_MS)
        assert health.state is EngineState.NOT_RUNNING and health.heartbeat_ms is None, status
    assert engine_health_text(judge_engine_health({}, NOW_MS)) == (
        "ALARM ENGINE NOT RUNNING (no heartbeat ever): alarms are not being evaluated")


def test_an_engine_is_running_until_its_heartbeat_is_more_than_five_seconds_old():
    running = judge_engine_health(beat(HEARTBEAT_TIMEOUT_MS), NOW_MS)
    assert running.state is EngineState.RUNNING and running.is_running
    assert (running.heartbeat_age_ms, running.lag_ms, running.alarms) == (5_000, 0, 12)
    stopped = judge_engine_health(beat(HEARTBEAT_TIMEOUT_MS + 1), NOW_MS)
    assert stopped.state is EngineState.NOT_RUNNING and not stopped.is_running
    assert engine_health_text(judge_engine_health(beat(23_400), NOW_MS)) == (
        "ALARM ENGINE NOT RUNNING (no heartbeat for 23 s): alarms are not being evaluated")
    # str keys (a decoding client) read the same; a clock a little ahead of ours is no stop.
    assert judge_engine_health({"heartbeat_ms": str(NOW_MS - 1_000)}, NOW_MS).state is EngineState.RUNNING
    ahead = judge_engine_health(beat(-2_000), NOW_MS)
    assert ahead.state is EngineState.RUNNING and ahead.heartbeat_age_ms == 0


def test_an_engine_more_than_ten_seconds_behind_the_tag_changes_is_behind_and_a_stopped_one_is_not_running():
    assert judge_engine_health(beat(500, lag_ms=BEHIND_AFTER_MS), NOW_MS).state is EngineState.RUNNING
    behind = judge_engine_health(beat(500, lag_ms=BEHIND_AFTER_MS + 1), NOW_MS)
    assert behind.state is EngineState.BEHIND and not behind.is_running
    assert engine_health_text(judge_engine_health(beat(500, lag_ms=47_000), NOW_MS)) == (
        "ALARM ENGINE BEHIND (47 s behind the tag changes): alarms are annunciated late")
    assert judge_engine_health(beat(9_000, lag_ms=60_000), NOW_MS).state is EngineState.NOT_RUNNING


def test_the_pushed_health_changes_with_the_state_not_with_every_heartbeat():
    view = engine_health_view
    # Running: the same view from one heartbeat to the next (the alarm view is not rebuilt every second).
    assert view(judge_engine_health(beat(100), NOW_MS)) == view(judge_engine_health(beat(1_100), NOW_MS + 1_000))
    assert view(judge_engine_health(beat(100), NOW_MS)) == {"state": "running", "heartbeat_ms": None,
                                                             "lag_ms": None, "text": "Alarm engine running"}
    # Not running: the last heartbeat is fixed, the browser counts its age from it.
    stopped = view(judge_engine_health(beat(6_000), NOW_MS))
    assert stopped["state"] == "not_running" and stopped["heartbeat_ms"] == NOW_MS - 6_000
    assert stopped["text"] == f"ALARM ENGINE NOT RUNNING (no heartbeat for {AGE_PLACEHOLDER}):" \
                              " alarms are not being evaluated"
    assert view(judge_engine_health(beat(6_000), NOW_MS + 3_000)) == stopped  # the same stop, later
    # Behind: the lag in coarse steps.
    assert view(judge_engine_health(beat(0, lag_ms=12_300), NOW_MS)) == view(
        judge_engine_health(beat(0, lag_ms=14_900), NOW_MS))
    assert view(judge_engine_health(beat(0, lag_ms=15_000), NOW_MS))["lag_ms"] == 15_000
    assert [coarse_lag_ms(ms) for ms in (12_300, 61_000, 3_700_000)] == [10_000, 60_000, 3_600_000]
    assert [duration_text(ms) for ms in (999, 119_999, 120_000, 7_200_000, 172_800_000)] == [
        "0 s", "119 s", "2 min", "2 h", "2 d"]


def test_the_summary_carries_the_engines_health_and_never_claims_running_without_a_judgement():
    assert alarm_summary(RECORDS)["engine"]["state"] == "unknown"
    assert build_alarm_view([], PLANT)["summary"]["engine"]["state"] == "unknown"
    stopped = build_alarm_view(RECORDS, PLANT, judge_engine_health(beat(23_000), NOW_MS))["summary"]["engine"]
    assert stopped["state"] == "not_running" and stopped["text"].startswith("ALARM ENGINE NOT RUNNING")
    running = alarm_summary(RECORDS, judge_engine_health(beat(0), NOW_MS))
    assert running["engine"]["state"] == "running" and running["unack"] == {"1": 1, "2": 0, "3": 2, "4": 0}
    assert engine_health_json(judge_engine_health(beat(23_000), NOW_MS)) | {"text": ""} == {
        "state": "not_running", "running": False, "heartbeat_ms": NOW_MS - 23_000, "heartbeat_age_ms": 23_000,
        "lag_ms": 0, "alarms": 12, "text": "", "heartbeat_timeout_ms": 5_000, "behind_after_ms": 10_000}


def test_the_alarm_cache_moves_its_version_when_the_engine_stops_or_redis_is_lost_though_no_alarm_changed(
        monkeypatch):
    clock = {"now": NOW_MS}
    engine = {"status": {}}
    redis_up = {"up": True}

    async def alarm_version(_redis):
        if not redis_up["up"]:
            raise RedisConnectionError("connection refused")
        return 7  # no alarm ever changes in this test

    async def all_alarms(_redis):
        return list(RECORDS)

    async def engine_health(_redis, now_ms):
        return judge_engine_health(engine["status"], now_ms)

    monkeypatch.setattr("web.alarm_cache.read_alarm_version", alarm_version)
    monkeypatch.setattr("web.alarm_cache.read_all_alarms", all_alarms)
    monkeypatch.setattr("web.alarm_cache.read_engine_health", engine_health)
    cache = AlarmCache(None, TagDirectory(PLANT), poll_s=0.01, clock_ms=lambda: clock["now"])
    assert cache.view["summary"]["engine"]["state"] == "unknown"

    def state() -> str:
        return cache.view["summary"]["engine"]["state"]

    async def polls(n: int = 5):
        await asyncio.sleep(0.01 * n)

    async def scenario():
        task = asyncio.create_task(cache.run())
        await polls()
        assert state() == "not_running" and cache.view["summary"]["engine"]["heartbeat_ms"] is None
        seen = []
        for _ in range(5):  # the engine starts and beats every second
            engine["status"] = {b"heartbeat_ms": str(clock["now"]).encode(), b"lag_ms": b"0"}
            await polls()
            clock["now"] += 1_000
            seen.append((state(), cache.version))
        assert {s for s, _ in seen} == {"running"} and len({v for _, v in seen}) == 1  # one rebuild, not five
        version = cache.version
        clock["now"] += 6_000  # no heartbeat for more than 5 s
        await polls()
        assert state() == "not_running" and cache.version == version + 1
        assert cache.view["rows"] == build_alarm_view(RECORDS, PLANT)["rows"]  # the alarms are as they were
        redis_up["up"] = False
        await polls()
        assert state() == "unknown" and not cache.connected and cache.version == version + 2
        assert "cannot reach the data server" in cache.view["summary"]["engine"]["text"]
        redis_up["up"] = True
        engine["status"] = {b"heartbeat_ms": str(clock["now"]).encode(), b"lag_ms": b"0"}
        await polls()
        assert state() == "running" and cache.connected
        task.cancel()

    asyncio.run(scenario())


# ---- latched, shelved, suppressed and out-of-service alarms ------------------------------------

REMOVED = [
    record("lu", 2, AlarmState.LATCHED_UNACK, 4_000),
    record("la", 4, AlarmState.LATCHED_ACK, 4_500),
    dataclasses.replace(record("sh", 1, AlarmState.SHELVED, 5_000), shelved_by="olga", shelved_until_ms=99_000,
                        shelve_comment="sensor being replaced"),
    dataclasses.replace(record("os", 1, AlarmState.SHELVED, 5_500), shelved_by="olga", shelved_until_ms=80_000,
                        shelve_one_shot=True, shelve_comment="until it clears", condition_active=False),
    dataclasses.replace(record("su", 1, AlarmState.SUPPRESSED, 6_000), suppressed=True),
    dataclasses.replace(record("oo", 2, AlarmState.OUT_OF_SERVICE, 7_000), out_of_service=True,
                        out_of_service_by="erik", out_of_service_comment="transmitter removed"),
]


def test_latched_alarms_are_listed_and_latched_unacknowledged_counts_in_the_banner():
    view = build_alarm_view([*RECORDS, *REMOVED], PLANT)
    rows = {r["alarm_id"]: r for r in view["rows"]}
    assert rows["lu"]["state_text"] == "LATCHED UNACK" and rows["lu"]["unacked"] and rows["lu"]["latched"]
    assert rows["la"]["state_text"] == "LATCHED (RESET)" and not rows["la"]["unacked"] and rows["la"]["latched"]
    assert not rows["a"]["latched"]
    # Shelved, suppressed and out-of-service alarms are neither in the list nor counted, even at priority 1.
    assert set(rows) == {"a", "b", "c", "d", "lu", "la"}
    assert view["summary"]["unack"] == {"1": 1, "2": 1, "3": 2, "4": 0}
    assert view["summary"]["shown"] == 6
    assert view["summary"]["newest"]["message"] == "la message"
    assert "su" not in str(view["summary"]["tags"]) and view["summary"]["tags"]["T1.level"] == {"p": 1, "u": True}


def test_shelved_suppressed_and_out_of_service_alarms_have_lists_of_their_own():
    view = build_alarm_view([*RECORDS, *REMOVED], PLANT)
    assert [r["alarm_id"] for r in view["shelved"]] == ["os", "sh"]  # priority, then newest first
    shelved = {r["alarm_id"]: r for r in view["shelved"]}
    assert shelved["sh"]["shelved_by"] == "olga" and shelved["sh"]["shelved_until_ms"] == 99_000
    assert shelved["sh"]["shelve_comment"] == "sensor being replaced" and not shelved["sh"]["shelve_one_shot"]
    assert shelved["sh"]["state_text"] == "SHELVED" and shelved["sh"]["condition"] == "ACTIVE"
    assert shelved["os"]["shelve_one_shot"] and shelved["os"]["condition"] == "CLEAR"
    assert [r["alarm_id"] for r in view["suppressed"]] == ["su"]
    assert view["suppressed"][0]["state_text"] == "SUPPRESSED"
    (oos,) = view["out_of_service"]
    assert (oos["alarm_id"], oos["out_of_service_by"], oos["out_of_service_comment"], oos["state_text"]) == (
        "oo", "erik", "transmitter removed", "OUT OF SERVICE")
    assert oos["since_ms"] == 7_000 and oos["has_faceplate"] is True


def test_a_normal_alarms_input_bad_flag_changes_the_view_so_faceplates_redraw():
    view = build_alarm_view(RECORDS, PLANT)
    assert view["normal"] == {"count": 1, "input_bad": []}
    flagged = [dataclasses.replace(r, input_bad=True) if r.alarm_id == "e" else r for r in RECORDS]
    assert build_alarm_view(flagged, PLANT)["normal"] == {"count": 1, "input_bad": ["e"]}
    assert build_alarm_view(flagged, PLANT)["rows"] == view["rows"]  # the alarm list itself is unchanged
    assert build_alarm_view(RECORDS[:-1], PLANT)["normal"]["count"] == 0


def test_an_alarm_as_json_carries_its_shelve_and_service_details():
    by_id = {r.alarm_id: r for r in REMOVED}
    shelved = alarm_record_json(by_id["sh"])
    assert shelved["state"] == "E" and shelved["state_text"] == "SHELVED" and not shelved["in_alarm_list"]
    assert shelved["shelved"] == {"by": "olga", "until_ms": 99_000, "one_shot": False,
                                  "comment": "sensor being replaced"}
    assert shelved["out_of_service"] is None
    assert alarm_record_json(by_id["oo"])["out_of_service"] == {"by": "erik", "comment": "transmitter removed"}
    assert alarm_record_json(by_id["su"])["suppressed_by_design"] is True
    latched = alarm_record_json(by_id["lu"])
    assert latched["unacknowledged"] and latched["in_alarm_list"] and latched["shelved"] is None


# ---- cleaning the request ------------------------------------------------------------------------


@pytest.mark.parametrize(("duration", "reason"), [
    (float("nan"), "finite"), (float("inf"), "finite"), (0, "above 0"), (-60, "above 0"),
    ("600", "number of seconds"), (True, "number of seconds"), ([600], "number of seconds"),
])
def test_a_shelve_duration_must_be_a_finite_positive_number(duration, reason):
    with pytest.raises(RequestRefused, match=reason):
        clean_request("shelve", ["a"], "why", duration)


def test_requests_are_cleaned_before_anything_is_sent():
    request = clean_request("shelve", ["x", "x", 7, None, "", "y" * 400, "z"], "  " + "c" * 900 + " ", 1800)
    assert request.alarm_ids == ("x", "z") and request.comment == "c" * 500 and request.duration_s == 1800.0
    assert request.detail() == "for 30 min"
    assert clean_request("shelve", ["x"], "why", None, True).detail() == "one-shot"
    assert clean_request("shelve", ["x"], "why", None, "yes").one_shot is False  # only a real true counts
    assert len(clean_request("acknowledge", [f"a{i}" for i in range(500)]).alarm_ids) == MAX_ALARMS_PER_REQUEST
    with pytest.raises(RequestRefused, match="unknown alarm action 'delete'"):
        clean_request("delete", ["x"])
    with pytest.raises(RequestRefused, match="only a shelve takes a duration"):
        clean_request("acknowledge", ["x"], None, 600)


def test_the_shelve_form_offers_durations_up_to_the_configured_maximum_and_one_shot():
    options = shelve_duration_options(7200)
    assert [o["label"] for o in options] == ["5 min", "15 min", "30 min", "1 h", "2 h",
                                             "One-shot: until it clears (at most 2 h)"]
    assert options[-1]["value"] == ONE_SHOT
    assert [o["value"] for o in shelve_duration_options(2700)][-2:] == [2700, ONE_SHOT]  # the maximum itself
    assert default_shelve_choice(8 * 3600) == 3600 and default_shelve_choice(1200) == 1200
    assert shelve_choice(ONE_SHOT) == (None, True) and shelve_choice(900) == (900, False)


def test_acknowledge_all_visible_counts_the_unacknowledged_rows_that_pass_the_filters():
    rows = build_alarm_view(RECORDS, PLANT)["rows"]
    ids, question = acknowledge_all_question(rows)
    assert ids == ["d", "c", "a"] and question == "Acknowledge all 3 unacknowledged alarms (of the 4 visible)?"
    ids, question = acknowledge_all_question([r for r in rows if r["alarm_id"] in ("b", "a")])
    assert ids == ["a"] and question == "Acknowledge 1 unacknowledged alarm (of the 2 visible)?"
    assert acknowledge_all_question([r for r in rows if r["alarm_id"] == "b"]) == (
        [], "No unacknowledged alarm among the 1 visible.")
    assert acknowledge_all_question(None) == ([], "No alarms are visible.")
    many = [{"alarm_id": f"x{i}", "unacked": True} for i in range(250)]
    ids, question = acknowledge_all_question(many)
    assert len(ids) == MAX_ALARMS_PER_REQUEST and question.startswith("Acknowledge the first 200 of the 250")


def test_results_are_described_with_each_refusal_and_its_reason():
    assert describe_results("shelve", [ActionResult("a", True), ActionResult("b", True)]) == "Shelved 2 alarms."
    assert describe_results("reset", [ActionResult("a", False, "a must be acknowledged before it can be reset")]) \
        == "REFUSED a: a must be acknowledged before it can be reset"
    assert describe_results("acknowledge", [ActionResult("a", True, "already acknowledged by olga")]) == (
        "Acknowledged 1 alarm. (a: already acknowledged by olga)")
    denied = "your role (viewer) may not shelve or unshelve alarms; operator or higher is needed"
    assert describe_results("shelve", [ActionResult("a", False, denied, "role"),
                                       ActionResult("b", False, denied, "role")]) == f"REFUSED: {denied}"
    assert describe_results("return_to_service", [ActionResult("a", True)]) == "Returned 1 alarm to service."


# ---- perform_alarm_action against a real Redis ---------------------------------------------------


def identity(role: Role, user: str | None = None) -> RequestIdentity:
    return RequestIdentity(Session(user or role.value, role, "csrf", 0), "10.0.0.9")


@pytest.fixture
async def runtime(redis_server):
    rt = await WebRuntime(small_plant(), redis_server.url).ensure_started()
    yield rt
    await rt.close()


async def sent_commands(redis_client) -> list:
    return [parse_command(fields) for _id, fields in await redis_client.xrange(keys.ALARM_COMMANDS)]


async def engine_stand_in(redis_client, answers: dict[str, tuple[bool, str]], expected: int) -> list:
    """Answers `expected` commands like the alarm engine would, by alarm id; returns them."""
    while len(commands := await sent_commands(redis_client)) < expected:
        await asyncio.sleep(0.02)
    pipe = redis_client.pipeline()
    for command in commands:
        accepted, reason = answers[command.alarm_id]
        queue_outcome(pipe, CommandOutcome(command.request_id, accepted, reason))
    await pipe.execute()
    return commands


@pytest.mark.parametrize(("action", "extra"), [
    ("acknowledge", {}), ("reset", {}), ("shelve", {"duration_s": 600}), ("unshelve", {}),
    ("remove_from_service", {}), ("return_to_service", {}),
])
async def test_a_viewers_forged_action_is_refused_audited_and_nothing_is_sent(runtime, redis_client, action, extra):
    results = await perform_alarm_action(runtime, identity(Role.VIEWER), action, ["T1.level:high_high"],
                                         "forged from the browser", **extra)
    assert [(r.alarm_id, r.accepted, r.decided_by) for r in results] == [("T1.level:high_high", False, "role")]
    assert "your role (viewer) may not" in results[0].reason
    assert await redis_client.xlen(keys.ALARM_COMMANDS) == 0
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["user"], audit["action"], audit["result"], audit["tag"], audit["source_ip"]) == (
        "viewer", action, "refused", "T1.level:high_high", "10.0.0.9")


async def test_an_operator_may_not_take_an_alarm_out_of_service_and_nobody_logged_out_may_act(runtime,
                                                                                                 redis_client):
    refused = await perform_alarm_action(runtime, identity(Role.OPERATOR), "remove_from_service",
                                         ["T1.level:high_high"], "maintenance")
    assert not refused[0].accepted and "engineer or higher is needed" in refused[0].reason
    nobody = await perform_alarm_action(runtime, None, "acknowledge", ["T1.level:high_high"])
    assert not nobody[0].accepted and "not logged in" in nobody[0].reason
    assert await redis_client.xlen(keys.ALARM_COMMANDS) == 0
    assert [(a["action"], a["result"]) for a in await read_audit(redis_client, 5)] == [
        ("acknowledge", "refused"), ("remove_from_service", "refused"), ("config_loaded", "ok")]  # last: the start


async def test_bad_input_is_refused_and_audited_before_anything_is_sent(runtime, redis_client):
    results = await perform_alarm_action(runtime, identity(Role.OPERATOR, "olga"), "shelve", ["T1.level:high_high"],
                                         "why", float("nan"))
    assert results[0].decided_by == "input" and "finite" in results[0].reason
    unknown = await perform_alarm_action(runtime, identity(Role.ADMIN), "delete", ["T1.level:high_high"])
    assert unknown[0].decided_by == "input" and "unknown alarm action" in unknown[0].reason
    assert await redis_client.xlen(keys.ALARM_COMMANDS) == 0
    assert [(a["action"], a["result"]) for a in await read_audit(redis_client, 5)] == [
        ("delete", "refused"), ("shelve", "refused"), ("config_loaded", "ok")]  # the last: the runtime's start


async def test_an_operators_shelve_goes_to_the_engine_per_alarm_with_its_answers(runtime, redis_client):
    answers = {"T1.level:high_high": (True, ""),
               "T1.level:low": (False, "T1.level:low cannot be shelved: it is latched and acknowledged")}
    engine = asyncio.create_task(engine_stand_in(redis_client, answers, expected=2))
    results = await perform_alarm_action(runtime, identity(Role.OPERATOR, "olga"), "shelve",
                                         ["T1.level:high_high", "T1.level:low"], " level sensor fouled ", 1800)
    commands = await engine
    assert {(c.action, c.alarm_id, c.user, c.comment, c.duration_s, c.one_shot) for c in commands} == {
        ("shelve", "T1.level:high_high", "olga", "level sensor fouled", 1800.0, False),
        ("shelve", "T1.level:low", "olga", "level sensor fouled", 1800.0, False)}
    assert describe_results("shelve", results) == (
        "Shelved 1 alarm. REFUSED T1.level:low: T1.level:low cannot be shelved: it is latched and acknowledged")
    audit = {a["tag"]: a for a in await read_audit(redis_client, 2)}
    assert (audit["T1.level:high_high"]["result"], audit["T1.level:high_high"]["new"]) == ("ok", "for 30 min")
    assert audit["T1.level:high_high"]["comment"] == "level sensor fouled"
    assert audit["T1.level:low"]["result"] == "refused"
    assert audit["T1.level:low"]["reason"].startswith("T1.level:low cannot be shelved")


async def test_an_engineer_takes_an_alarm_out_of_service_and_a_one_shot_shelve_is_passed_on(runtime, redis_client):
    answers = {"T1.level:high_high": (True, "")}
    engine = asyncio.create_task(engine_stand_in(redis_client, answers, expected=1))
    results = await perform_alarm_action(runtime, identity(Role.ENGINEER, "erik"), "remove_from_service",
                                         ["T1.level:high_high"], "transmitter removed")
    (command,) = await engine
    assert results[0].accepted and (command.action, command.user) == ("remove_from_service", "erik")
    await redis_client.delete(keys.ALARM_COMMANDS)
    engine = asyncio.create_task(engine_stand_in(redis_client, answers, expected=1))
    await perform_alarm_action(runtime, identity(Role.OPERATOR), "shelve", ["T1.level:high_high"], "why",
                               None, True)
    (command,) = await engine
    assert (command.duration_s, command.one_shot) == (None, True)


async def test_no_answer_from_the_engine_is_reported_not_taken_as_done(runtime, redis_client, monkeypatch):
    monkeypatch.setattr("web.alarm_actions.ENGINE_ANSWER_TIMEOUT_S", 0.2)
    results = await perform_alarm_action(runtime, identity(Role.OPERATOR), "acknowledge", ["T1.level:high_high"])
    assert not results[0].accepted and "did not answer" in results[0].reason
    assert results[0].decided_by == "no_answer"  # the API answers it 504, not 200
    assert await redis_client.xlen(keys.ALARM_COMMANDS) == 1
