"""ISA-18.2 state model: every transition T1-T15 as a table, every refused action, and the
condition-side details (deadband, delays, Bad input)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from domain.alarms import state_model as sm
from domain.alarms.conditions import AlarmInput, raw_condition
from domain.alarms.records import ActionRefused, AlarmRecord, AlarmState
from domain.alarms.settings import LimitAlarm
from domain.alarms.state_model import AlarmRules
from domain.quality import BAD_NO_COMMUNICATION, GOOD

S = AlarmState
PLAIN = AlarmRules()
LATCHING = AlarmRules(latching=True)
REALARM = AlarmRules(realarm_s=60)
T0 = 1_000_000


def record_in(state: AlarmState, *, active: bool | None = None, **extra) -> AlarmRecord:
    """A record in `state`, with the condition that state implies (A, D, LU, LA clear; B, C active)."""
    if active is None:
        active = state in (S.UNACK_ACTIVE, S.ACK_ACTIVE)
    flags = {S.SHELVED: {"shelved_by": "olga", "shelve_comment": "x", "shelved_until_ms": T0 + 600_000},
             S.SUPPRESSED: {"suppressed": True},
             S.OUT_OF_SERVICE: {"out_of_service": True, "out_of_service_by": "erik"}}.get(state, {})
    return AlarmRecord("R1.temp:high", "R1.temp", "high", 2, "R1 high", "Reactor", state=state,
                       condition_active=active, state_since_ms=T0, **flags, **extra)


def condition(active: bool):
    return lambda r, rules, now: sm.evaluate(r, rules, active, 90.0 if active else 70.0, now)


# (transition, from state, event, rules, to state): the table in docs/alarms.md, row by row.
TABLE = [
    ("T1", S.NORMAL, condition(True), PLAIN, S.UNACK_ACTIVE),
    ("T2", S.UNACK_ACTIVE, lambda r, rules, now: sm.acknowledge(r, rules, "olga", now), PLAIN, S.ACK_ACTIVE),
    ("T3", S.UNACK_ACTIVE, condition(False), PLAIN, S.RETURNED_UNACK),
    ("T4", S.UNACK_ACTIVE, condition(False), LATCHING, S.LATCHED_UNACK),
    ("T5", S.ACK_ACTIVE, condition(False), PLAIN, S.NORMAL),
    ("T6", S.ACK_ACTIVE, condition(False), LATCHING, S.LATCHED_ACK),
    ("T7", S.ACK_ACTIVE, lambda r, rules, now: sm.on_time(r, rules, now + 60_000), REALARM, S.UNACK_ACTIVE),
    ("T8", S.RETURNED_UNACK, lambda r, rules, now: sm.acknowledge(r, rules, "olga", now), PLAIN, S.NORMAL),
    ("T9", S.RETURNED_UNACK, condition(True), PLAIN, S.UNACK_ACTIVE),
    ("T10", S.LATCHED_UNACK, lambda r, rules, now: sm.acknowledge(r, rules, "olga", now), LATCHING, S.LATCHED_ACK),
    ("T11", S.LATCHED_ACK, lambda r, rules, now: sm.reset(r, "olga", now), LATCHING, S.NORMAL),
    *[("T12", state, lambda r, rules, now: sm.shelve(r, rules, "olga", now, "valve in repair", duration_s=600),
       PLAIN, S.SHELVED) for state in (S.NORMAL, S.UNACK_ACTIVE, S.ACK_ACTIVE, S.RETURNED_UNACK)],
    ("T13", S.SHELVED, lambda r, rules, now: sm.unshelve(r, "olga", now), PLAIN, S.NORMAL),
    ("T13", S.SHELVED, lambda r, rules, now: sm.on_time(r, rules, T0 + 600_000), PLAIN, S.NORMAL),
    *[("T14", state, lambda r, rules, now: sm.set_design_suppression(r, True, now), PLAIN, S.SUPPRESSED)
      for state in (S.NORMAL, S.UNACK_ACTIVE, S.ACK_ACTIVE, S.RETURNED_UNACK, S.LATCHED_UNACK, S.LATCHED_ACK,
                    S.SHELVED)],
    ("T14", S.SUPPRESSED, lambda r, rules, now: sm.set_design_suppression(r, False, now), PLAIN, S.NORMAL),
    *[("T15", state, lambda r, rules, now: sm.remove_from_service(r, "erik", now, "sensor replaced"), PLAIN,
       S.OUT_OF_SERVICE) for state in (S.NORMAL, S.UNACK_ACTIVE, S.ACK_ACTIVE, S.RETURNED_UNACK,
                                       S.LATCHED_UNACK, S.LATCHED_ACK, S.SHELVED, S.SUPPRESSED)],
    ("T15", S.OUT_OF_SERVICE, lambda r, rules, now: sm.return_to_service(r, "erik", now), PLAIN, S.NORMAL),
]


@pytest.mark.parametrize("transition, start, event, rules, target", TABLE,
                         ids=[f"{t}-{s.value}-{d.value}" for t, s, _, _, d in TABLE])
def test_every_transition_of_the_table(transition, start, event, rules, target):
    record = record_in(start)
    if transition == "T14" and start is S.SHELVED:
        record = replace(record, condition_active=False)
    after, events = event(record, rules, T0 + 1000)
    assert after.state is target
    assert [(e.transition, e.from_state, e.to_state) for e in events] == [(transition, start, target)]
    assert events[0].tag == "R1.temp" and events[0].priority == 2 and events[0].area == "Reactor"


@pytest.mark.parametrize("removed, back", [
    (S.SHELVED, lambda r, now: sm.unshelve(r, "olga", now)),
    (S.SUPPRESSED, lambda r, now: sm.set_design_suppression(r, False, now)),
    (S.OUT_OF_SERVICE, lambda r, now: sm.return_to_service(r, "erik", now)),
], ids=["T13", "T14", "T15"])
def test_returning_while_the_condition_is_active_annunciates_anew(removed, back):
    record = record_in(removed, active=True)
    after, events = back(record, T0 + 5000)
    assert after.state is S.UNACK_ACTIVE and after.activated_ms == T0 + 5000
    assert events[0].to_state is S.UNACK_ACTIVE


def test_a_removal_underneath_a_stronger_one_is_remembered():
    record = record_in(S.SHELVED)
    record, _ = sm.remove_from_service(record, "erik", T0, "calibration")
    record, _ = sm.set_design_suppression(record, True, T0 + 1)
    assert record.state is S.OUT_OF_SERVICE
    record, events = sm.return_to_service(record, "erik", T0 + 2)
    assert record.state is S.SUPPRESSED and events[0].transition == "T15"
    record, events = sm.set_design_suppression(record, False, T0 + 3)
    assert record.state is S.SHELVED and events[0].transition == "T14"
    record, events = sm.on_time(record, PLAIN, T0 + 600_000)
    assert record.state is S.NORMAL and events[0].transition == "T13"


def test_one_shot_shelve_ends_when_the_condition_clears():
    record = record_in(S.UNACK_ACTIVE)
    record, _ = sm.shelve(record, PLAIN, "olga", T0, "known fault, repair booked", one_shot=True)
    assert record.state is S.SHELVED and record.shelved_until_ms == T0 + int(PLAIN.max_shelve_s * 1000)
    record, events = sm.evaluate(record, PLAIN, True, 95.0, T0 + 1000)
    assert record.state is S.SHELVED and events == []  # still active: stays shelved, silently
    record, events = sm.evaluate(record, PLAIN, False, 60.0, T0 + 2000)
    assert record.state is S.NORMAL and [e.transition for e in events] == ["T13"]
    assert not record.is_shelved


def test_a_condition_change_while_removed_is_tracked_not_annunciated():
    record = record_in(S.OUT_OF_SERVICE, active=False)
    record, events = sm.evaluate(record, PLAIN, True, 95.0, T0)
    assert (record.state, record.condition_active, events) == (S.OUT_OF_SERVICE, True, [])


def test_latched_alarm_that_returns_goes_back_to_b():
    after, events = sm.evaluate(record_in(S.LATCHED_UNACK), LATCHING, True, 99.0, T0)
    assert (after.state, events[0].transition) == (S.UNACK_ACTIVE, "T9")
    after, events = sm.evaluate(record_in(S.LATCHED_ACK), LATCHING, True, 99.0, T0)
    assert (after.state, events[0].transition) == (S.UNACK_ACTIVE, "T1")


def test_realarm_is_not_due_before_its_time_and_clears_the_acknowledgement():
    record = record_in(S.ACK_ACTIVE, acknowledged_by="olga", acknowledged_ms=T0)
    assert sm.on_time(record, REALARM, T0 + 59_999) == (record, [])
    assert sm.next_deadline_ms(record, REALARM) == T0 + 60_000
    after, _ = sm.on_time(record, REALARM, T0 + 60_000)
    assert after.acknowledged_by is None and after.activated_ms == T0 + 60_000


# ---- refused actions: the reason, and nothing changed ---------------------------------------

REFUSALS = [
    *[("acknowledge", state, "nothing to acknowledge") for state in (
        S.NORMAL, S.SHELVED, S.SUPPRESSED, S.OUT_OF_SERVICE)],
    *[("reset", state, "not latched") for state in (
        S.NORMAL, S.UNACK_ACTIVE, S.ACK_ACTIVE, S.RETURNED_UNACK, S.SHELVED, S.OUT_OF_SERVICE)],
    ("reset", S.LATCHED_UNACK, "must be acknowledged before"),
    *[("shelve", state, "cannot be shelved") for state in (
        S.LATCHED_UNACK, S.LATCHED_ACK, S.SHELVED, S.SUPPRESSED, S.OUT_OF_SERVICE)],
    *[("unshelve", state, "is not shelved") for state in (S.NORMAL, S.UNACK_ACTIVE, S.SUPPRESSED)],
    ("remove_from_service", S.OUT_OF_SERVICE, "already out of service"),
    *[("return_to_service", state, "is in service") for state in (S.NORMAL, S.UNACK_ACTIVE, S.SHELVED)],
]

ACTIONS = {
    "acknowledge": lambda r, rules: sm.acknowledge(r, rules, "olga", T0, "seen"),
    "reset": lambda r, rules: sm.reset(r, "olga", T0),
    "shelve": lambda r, rules: sm.shelve(r, rules, "olga", T0, "why", duration_s=60),
    "unshelve": lambda r, rules: sm.unshelve(r, "olga", T0),
    "remove_from_service": lambda r, rules: sm.remove_from_service(r, "erik", T0, "why"),
    "return_to_service": lambda r, rules: sm.return_to_service(r, "erik", T0),
}


@pytest.mark.parametrize("action, state, reason", REFUSALS, ids=[f"{a}-{s.value}" for a, s, _ in REFUSALS])
def test_refused_actions_say_why(action, state, reason):
    with pytest.raises(ActionRefused, match=reason):
        ACTIONS[action](record_in(state), PLAIN)


@pytest.mark.parametrize("state", [S.ACK_ACTIVE, S.LATCHED_ACK])
def test_a_repeated_acknowledge_is_harmless(state):
    record = record_in(state, acknowledged_by="olga", acknowledged_ms=T0 - 5)
    assert sm.acknowledge(record, PLAIN, "piet", T0) == (record, [])


def test_acknowledge_needs_a_comment_where_configured():
    rules = AlarmRules(comment_required=True)
    with pytest.raises(ActionRefused, match="needs a comment"):
        sm.acknowledge(record_in(S.UNACK_ACTIVE), rules, "olga", T0)
    after, _ = sm.acknowledge(record_in(S.UNACK_ACTIVE), rules, "olga", T0, "checked on site")
    assert (after.acknowledged_by, after.ack_comment) == ("olga", "checked on site")


@pytest.mark.parametrize("comment, duration_s, one_shot, reason", [
    (None, 600, False, "needs a comment"),
    ("why", None, False, "needs a duration"),
    ("why", 0, False, "more than 0"),
    ("why", 3601, False, "at most 1 h"),
])
def test_shelve_needs_a_comment_and_a_bounded_duration(comment, duration_s, one_shot, reason):
    rules = AlarmRules(max_shelve_s=3600)
    with pytest.raises(ActionRefused, match=reason):
        sm.shelve(record_in(S.UNACK_ACTIVE), rules, "olga", T0, comment, duration_s=duration_s, one_shot=one_shot)


def test_out_of_service_needs_a_comment():
    with pytest.raises(ActionRefused, match="needs a comment"):
        sm.remove_from_service(record_in(S.NORMAL), "erik", T0, "")


# ---- the condition side ---------------------------------------------------------------------

HIGH = LimitAlarm(limit=80, priority=2, deadband=2)


def feed(record, values, rules=PLAIN, alarm=HIGH, start_ms=0, step_ms=1000):
    moves = []
    for i, value in enumerate(values):
        data = AlarmInput(value, GOOD)
        active = raw_condition("high", alarm, data, record.condition_active)
        record, events = sm.evaluate(record, rules, active, value, start_ms + i * step_ms)
        moves += [e.transition for e in events]
    return record, moves


def fresh():
    return AlarmRecord("R1.temp:high", "R1.temp", "high", 2, "R1 high", "Reactor")


def test_deadband_holds_the_alarm_until_the_value_is_clear():
    record, moves = feed(fresh(), [80, 79, 78.5, 77.9])
    assert moves == ["T1", "T3"] and record.state is S.RETURNED_UNACK


def test_on_delay_needs_the_condition_to_persist():
    rules = AlarmRules(on_delay_s=3)
    record, moves = feed(fresh(), [85, 85, 70, 85, 85, 85, 85], rules)
    assert moves == ["T1"]  # the first excursion lasted 1 s only
    assert record.state is S.UNACK_ACTIVE and record.activated_ms == 6000


def test_off_delay_keeps_the_alarm_active_briefly():
    record, moves = feed(fresh(), [85, 70, 70, 70], AlarmRules(off_delay_s=2))
    assert moves == ["T1", "T3"] and record.state_since_ms == 3000


def test_bad_input_is_not_evaluated_as_normal():
    record, _ = feed(fresh(), [90])
    data = AlarmInput(None, BAD_NO_COMMUNICATION)
    record, events = sm.evaluate(record, PLAIN, raw_condition("high", HIGH, data, True), None, 5000)
    assert events == [] and record.state is S.UNACK_ACTIVE and record.input_bad
    record, moves = feed(record, [60], start_ms=6000)
    assert moves == ["T3"] and not record.input_bad


def test_bad_input_restarts_a_running_on_delay():
    rules = AlarmRules(on_delay_s=3)
    record, _ = sm.evaluate(fresh(), rules, True, 85.0, 0)
    record, _ = sm.evaluate(record, rules, None, None, 500)  # unknown is not "still true"
    record, events = sm.evaluate(record, rules, True, 85.0, 3000)
    assert events == [] and record.pending_since_ms == 3000
    record, events = sm.evaluate(record, rules, True, 85.0, 6000)
    assert [e.transition for e in events] == ["T1"]


def test_a_sample_that_changes_nothing_returns_the_same_record():
    record, _ = sm.evaluate(fresh(), PLAIN, True, 85.0, 0)
    assert sm.evaluate(record, PLAIN, True, 86.0, 1000) == (record, [])
    assert record.last_value == 85.0  # the value of the last change, as journalled


def test_unshelving_beneath_out_of_service_is_an_accepted_journalled_action():
    from alarm_engine.actions import decide_command
    from alarm_engine.alarm_catalog import ConfiguredAlarm
    from alarm_engine.commands import AlarmCommand

    record, _ = sm.shelve(record_in(S.NORMAL), PLAIN, "olga", T0, "why", duration_s=600)
    record, _ = sm.remove_from_service(record, "erik", T0 + 1, "calibration")
    configured = ConfiguredAlarm(record.alarm_id, "R1.temp", "high", HIGH, PLAIN, "Reactor", "R1 high")
    outcome, after, events = decide_command(AlarmCommand("r1", "unshelve", record.alarm_id, "piet"), record,
                                            configured, T0 + 2)
    assert outcome.accepted and outcome.reason == ""
    assert after.state is S.OUT_OF_SERVICE and not after.is_shelved
    assert [(e.transition, e.from_state, e.to_state, e.user) for e in events] == [
        ("T13", S.OUT_OF_SERVICE, S.OUT_OF_SERVICE, "piet")]
