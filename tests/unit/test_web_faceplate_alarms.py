"""A tag's alarms on its faceplate: the rows, the actions a state offers and a role may use, and a
click passed to the same server-side function as the alarm page (role, input, engine) against a real Redis."""
from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from alarm_engine.commands import CommandOutcome, parse_command, queue_outcome
from domain.alarms.records import AlarmRecord, AlarmState
from domain.config_loading import parse_config
from tag_store import keys
from tests.unit.web_plant import WEB_TEST_PLANT, small_plant
from web.alarm_actions import ONE_SHOT
from web.auth import RequestIdentity
from web.faceplate_alarms import (
    act_on_tag_alarm, configured_rules, longest_shelve_s, offered_actions, rows_key, shelve_limit_text,
    tag_alarm_rows,
)
from web.roles import Role
from web.runtime import WebRuntime
from web.sessions import Session

# T1.level's low alarm may be shelved for at most 30 min and needs a comment to acknowledge.
PLANT = parse_config(
    WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "0.5").replace(
        "low: {limit: 0.5, priority: 3}",
        "low: {limit: 0.5, priority: 3, max_shelve_s: 1800, ack_comment_required: true}"),
    Path("web_test_plant.yaml"))
TAG = PLANT.tag("T1.level")
SYSTEM = PLANT.alarm_system


def record(kind: str, state: AlarmState, **changes) -> AlarmRecord:
    base = AlarmRecord(alarm_id=f"T1.level:{kind}", tag="T1.level", kind=kind, priority=2,
                       message=f"T1.level {kind}", area="Tanks", state=state, state_since_ms=1_000,
                       condition_active=state in (AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE))
    return dataclasses.replace(base, **changes)


def actions(row) -> dict[str, bool]:
    return {b.action: b.enabled for b in row.buttons}


def by_id(rows) -> dict:
    return {r.alarm_id: r for r in rows}


def test_every_alarm_record_of_the_tag_is_listed_in_the_usual_order_with_the_implicit_bad_quality_alarm():
    records = [
        record("bad_quality", AlarmState.UNACK_ACTIVE, input_bad=True, priority=3),
        record("low", AlarmState.NORMAL, priority=3),
        AlarmRecord(alarm_id="M1.flow:high", tag="M1.flow", kind="high", priority=1, message="other tag",
                    area="Utilities", state=AlarmState.UNACK_ACTIVE),
        record("high_high", AlarmState.ACK_ACTIVE, priority=1, acknowledged_by="olga", acknowledged_ms=2_000,
               ack_comment="checked the sight glass"),
    ]
    rows = tag_alarm_rows(records, TAG, SYSTEM, Role.OPERATOR)
    assert [r.alarm_id for r in rows] == ["T1.level:high_high", "T1.level:low", "T1.level:bad_quality"]
    hh, low, bad = rows
    assert (hh.kind_label, hh.state_text, hh.condition_active, hh.unacknowledged) == ("HH", "ACK ACTIVE", True, False)
    assert (hh.acknowledged_by, hh.acknowledged_ms, hh.ack_comment) == ("olga", 2_000, "checked the sight glass")
    assert (low.state, low.state_text, low.condition_active, low.since_ms) == ("A", "NORMAL", False, 1_000)
    assert (bad.kind_label, bad.state_text, bad.input_bad, bad.unacknowledged) == ("BADPV", "UNACK ACTIVE", True, True)
    assert set(configured_rules(TAG, SYSTEM)) == {"high_high", "low", "bad_quality"}  # the plant's default added


def test_a_normal_alarm_can_be_shelved_or_taken_out_of_service_ahead_of_time():
    (row,) = tag_alarm_rows([record("high_high", AlarmState.NORMAL)], TAG, SYSTEM, Role.ENGINEER)
    assert actions(row) == {"shelve": True, "remove_from_service": True}


@pytest.mark.parametrize(("state", "changes", "offered"), [
    (AlarmState.UNACK_ACTIVE, {}, ["acknowledge", "shelve", "remove_from_service"]),
    (AlarmState.ACK_ACTIVE, {}, ["shelve", "remove_from_service"]),
    (AlarmState.RETURNED_UNACK, {}, ["acknowledge", "shelve", "remove_from_service"]),
    (AlarmState.LATCHED_UNACK, {}, ["acknowledge", "remove_from_service"]),
    (AlarmState.LATCHED_ACK, {}, ["reset", "remove_from_service"]),
    (AlarmState.SHELVED, {"shelved_by": "olga"}, ["unshelve", "remove_from_service"]),
    (AlarmState.SUPPRESSED, {"suppressed": True}, ["remove_from_service"]),
    # Shelved, then taken out of service: both ends can be undone.
    (AlarmState.OUT_OF_SERVICE, {"out_of_service": True, "shelved_by": "olga"}, ["unshelve", "return_to_service"]),
    # A device decides its alarms: only acknowledge is passed on.
    (AlarmState.UNACK_ACTIVE, {"device_source": "plc"}, ["acknowledge"]),
    (AlarmState.ACK_ACTIVE, {"device_source": "plc"}, []),
])
def test_each_state_offers_the_actions_it_allows(state, changes, offered):
    assert offered_actions(record("high_high", state, **changes)) == offered


def test_buttons_a_role_may_not_use_are_disabled_with_the_reason():
    records = [record("high_high", AlarmState.UNACK_ACTIVE)]
    (viewer,) = tag_alarm_rows(records, TAG, SYSTEM, Role.VIEWER)
    assert actions(viewer) == {"acknowledge": False, "shelve": False, "remove_from_service": False}
    assert {b.action: b.why_not for b in viewer.buttons} == {
        "acknowledge": "Acknowledge needs the operator role", "shelve": "Shelve needs the operator role",
        "remove_from_service": "Remove from service needs the engineer role"}
    (operator,) = tag_alarm_rows(records, TAG, SYSTEM, Role.OPERATOR)
    assert actions(operator) == {"acknowledge": True, "shelve": True, "remove_from_service": False}
    assert all(b.why_not == "" for b in operator.buttons if b.enabled)
    (nobody,) = tag_alarm_rows(records, TAG, SYSTEM, None)
    assert not any(b.enabled for b in nobody.buttons)
    (engineer,) = tag_alarm_rows([record("high_high", AlarmState.OUT_OF_SERVICE, out_of_service=True,
                                         out_of_service_by="erik", out_of_service_comment="LT-1 removed")],
                                 TAG, SYSTEM, Role.ENGINEER)
    assert actions(engineer) == {"return_to_service": True}
    assert (engineer.state_text, engineer.out_of_service_by, engineer.out_of_service_comment) == (
        "OUT OF SERVICE", "erik", "LT-1 removed")


def test_shelve_and_service_details_are_shown_only_while_they_apply():
    shelved = record("high_high", AlarmState.SHELVED, shelved_by="olga", shelved_until_ms=90_000,
                     shelve_one_shot=True, shelve_comment="until the level settles")
    (row,) = tag_alarm_rows([shelved], TAG, SYSTEM, Role.OPERATOR)
    assert (row.shelved_by, row.shelved_until_ms, row.shelve_one_shot, row.shelve_comment) == (
        "olga", 90_000, True, "until the level settles")
    # Back in A: last time's acknowledgement and shelve leave nothing behind on the faceplate.
    stale = record("high_high", AlarmState.NORMAL, acknowledged_by="olga", ack_comment="old", shelve_comment="old",
                   shelved_until_ms=90_000, out_of_service_comment="old")
    (row,) = tag_alarm_rows([stale], TAG, SYSTEM, Role.OPERATOR)
    assert (row.acknowledged_by, row.ack_comment, row.shelved_by, row.shelve_comment, row.shelved_until_ms,
            row.out_of_service_comment) == (None, None, None, None, None, None)


def test_the_configured_shelve_maximum_and_comment_rule_are_shown_per_alarm():
    assert longest_shelve_s(TAG, SYSTEM) == SYSTEM.max_shelve_s  # high_high and bad_quality allow the plant's
    rows = by_id(tag_alarm_rows([record("low", AlarmState.UNACK_ACTIVE), record("high_high", AlarmState.UNACK_ACTIVE)],
                                TAG, SYSTEM, Role.OPERATOR))
    low, hh = rows["T1.level:low"], rows["T1.level:high_high"]
    assert (low.max_shelve_s, shelve_limit_text(low)) == (1800, "May be shelved for at most 30 min.")
    assert low.ack_comment_required and not hh.ack_comment_required
    assert hh.max_shelve_s is None and shelve_limit_text(hh) == ""
    no_alarms = PLANT.tag("C1.count")
    assert tag_alarm_rows([record("low", AlarmState.UNACK_ACTIVE)], no_alarms, SYSTEM, Role.OPERATOR) == []
    assert longest_shelve_s(no_alarms, SYSTEM) == SYSTEM.max_shelve_s


def test_the_rows_key_moves_exactly_when_what_is_shown_changes():
    records = [record("high_high", AlarmState.UNACK_ACTIVE)]
    key = rows_key(tag_alarm_rows(records, TAG, SYSTEM, Role.OPERATOR))
    assert rows_key(tag_alarm_rows(list(records), TAG, SYSTEM, Role.OPERATOR)) == key
    assert rows_key(tag_alarm_rows([record("high_high", AlarmState.ACK_ACTIVE)], TAG, SYSTEM, Role.OPERATOR)) != key
    assert rows_key(tag_alarm_rows(records, TAG, SYSTEM, Role.VIEWER)) != key


# ---- a click, decided like every alarm action ----------------------------------------------------


def identity(role: Role) -> RequestIdentity:
    return RequestIdentity(Session(role.value, role, "csrf", 0), "10.0.0.7")


@pytest.fixture
async def runtime(redis_server):
    rt = await WebRuntime(small_plant(), redis_server.url).ensure_started()
    yield rt
    await rt.close()


async def answer_one(redis_client, accepted: bool, reason: str = ""):
    """Answers the first command like the alarm engine would; returns it."""
    while not (entries := await redis_client.xrange(keys.ALARM_COMMANDS)):
        await asyncio.sleep(0.02)
    command = parse_command(entries[0][1])
    pipe = redis_client.pipeline()
    queue_outcome(pipe, CommandOutcome(command.request_id, accepted, reason))
    await pipe.execute()
    return command


async def test_a_one_shot_shelve_from_the_faceplate_goes_to_the_engine_and_is_described(runtime, redis_client):
    engine = asyncio.create_task(answer_one(redis_client, True))
    outcome = await act_on_tag_alarm(runtime, identity(Role.OPERATOR), "shelve", "T1.level:high_high",
                                     " before the tank is cleaned ", ONE_SHOT)
    command = await engine
    assert (command.action, command.alarm_id, command.user, command.comment, command.duration_s,
            command.one_shot) == ("shelve", "T1.level:high_high", "operator", "before the tank is cleaned", None, True)
    assert outcome.accepted and outcome.text == "Shelved 1 alarm."


async def test_the_engines_refusal_and_a_forbidden_role_come_back_in_words(runtime, redis_client):
    engine = asyncio.create_task(answer_one(redis_client, False, "shelving T1.level:low needs a comment"))
    refused = await act_on_tag_alarm(runtime, identity(Role.OPERATOR), "shelve", "T1.level:low", None, 900)
    command = await engine
    assert command.duration_s == 900 and not refused.accepted
    assert refused.text == "REFUSED T1.level:low: shelving T1.level:low needs a comment"
    await redis_client.delete(keys.ALARM_COMMANDS)
    forbidden = await act_on_tag_alarm(runtime, identity(Role.OPERATOR), "remove_from_service", "T1.level:low",
                                       "maintenance", None)
    assert not forbidden.accepted and forbidden.text.startswith("REFUSED: your role (operator) may not")
    forged = await act_on_tag_alarm(runtime, identity(Role.VIEWER), "acknowledge", "T1.level:low", None, None)
    assert not forged.accepted and "your role (viewer) may not" in forged.text
    assert await redis_client.xlen(keys.ALARM_COMMANDS) == 0  # nothing was sent for either
