"""Device alarms (OPC UA Alarms & Conditions): event fields to alarm records, states and journal entries."""
from dataclasses import replace
from pathlib import Path

import pytest

from domain.alarms.records import AlarmState
from domain.config_loading import ConfigError, parse_config
from domain.device_alarms import (
    ConditionEvent,
    OperatorAck,
    SourceEvent,
    apply_condition_event,
    device_alarm_id,
    mark_source_lost,
    not_refreshed,
    priority_for_severity,
    state_of,
    transition_name,
)
from domain.quality import BAD_SENSOR_FAILURE
from tag_store.device_alarms import decode_event, encode_event

THRESHOLDS = (800, 600, 400)
EVENT = ConditionEvent(
    source="plc", condition="nsu=urn:plc;s=TempAlarm", tag="R1.temp", name="TempAlarm",
    message="Temperature high", severity=700, time_ms=1_000, retain=True, active=True, acked=False)


def apply(record, event, now_ms=2_000, operator_ack=None):
    return apply_condition_event(record, event, area="Reactors", thresholds=THRESHOLDS, now_ms=now_ms,
                                 operator_ack=operator_ack)


@pytest.mark.parametrize("severity, priority", [
    (1000, 1), (800, 1), (799, 2), (600, 2), (599, 3), (400, 3), (399, 4), (1, 4)])
def test_severity_maps_to_priority_at_the_thresholds(severity, priority):
    assert priority_for_severity(severity, THRESHOLDS) == priority


@pytest.mark.parametrize("active, acked, state", [
    (True, False, AlarmState.UNACK_ACTIVE), (True, True, AlarmState.ACK_ACTIVE),
    (False, False, AlarmState.RETURNED_UNACK), (False, True, AlarmState.NORMAL)])
def test_active_and_acked_states_map_to_the_isa_states(active, acked, state):
    assert state_of(replace(EVENT, active=active, acked=acked)) is state


def test_a_condition_that_is_no_alarm_is_active_while_retained_and_one_not_acknowledgeable_never_waits():
    assert state_of(replace(EVENT, active=None, acked=False)) is AlarmState.UNACK_ACTIVE
    assert state_of(replace(EVENT, active=None, acked=False, retain=False)) is AlarmState.RETURNED_UNACK
    assert state_of(replace(EVENT, acked=None)) is AlarmState.ACK_ACTIVE


def test_a_new_active_condition_becomes_a_record_with_the_device_fields_and_a_t1_entry():
    record, transitions = apply(None, EVENT)
    assert record.alarm_id == device_alarm_id("plc", EVENT.condition) == "plc:nsu=urn:plc;s=TempAlarm"
    assert (record.state, record.priority, record.message, record.tag, record.kind, record.area) == (
        AlarmState.UNACK_ACTIVE, 2, "Temperature high", "R1.temp", "TempAlarm", "Reactors")
    assert (record.device_source, record.device_condition) == ("plc", EVENT.condition)
    assert record.activated_ms == 1_000 and record.condition_active and not record.input_bad
    assert [(t.transition, t.from_state, t.to_state, t.time_ms) for t in transitions] == [
        ("T1", AlarmState.NORMAL, AlarmState.UNACK_ACTIVE, 1_000)]


def test_the_acknowledging_event_names_the_operator_who_sent_the_acknowledge():
    record, _ = apply(None, EVENT)
    acked = replace(EVENT, acked=True, time_ms=3_000, user="opcua-session-user")
    after, transitions = apply(record, acked, now_ms=3_100, operator_ack=OperatorAck("alice", "seen", 2_900))
    assert after.state is AlarmState.ACK_ACTIVE
    assert (after.acknowledged_by, after.ack_comment, after.acknowledged_ms) == ("alice", "seen", 3_100)
    assert [(t.transition, t.user, t.comment) for t in transitions] == [("T2", "alice", "seen")]


def test_an_acknowledgement_made_elsewhere_names_the_devices_client_user_or_the_device():
    record, _ = apply(None, EVENT)
    after, transitions = apply(record, replace(EVENT, acked=True, user="panel-7", comment="local"))
    assert (transitions[0].user, transitions[0].comment) == ("panel-7", "local")
    stale = OperatorAck("alice", None, sent_ms=-100_000)
    after, transitions = apply(record, replace(EVENT, acked=True), operator_ack=stale)
    assert after.acknowledged_by == "device" and transitions[0].user == "device"


def test_return_to_normal_unacknowledged_then_acknowledged_then_not_retained_is_removed():
    record, _ = apply(None, EVENT)
    record, transitions = apply(record, replace(EVENT, active=False))
    assert record.state is AlarmState.RETURNED_UNACK and not record.condition_active
    assert [t.transition for t in transitions] == ["T3"]
    record, transitions = apply(record, replace(EVENT, active=False, acked=True, retain=False))
    assert record is None
    assert [(t.transition, t.from_state, t.to_state) for t in transitions] == [
        ("T8", AlarmState.RETURNED_UNACK, AlarmState.NORMAL)]


def test_a_retained_inactive_acknowledged_condition_stays_as_normal_until_the_device_releases_it():
    record, _ = apply(None, replace(EVENT, acked=True))
    record, transitions = apply(record, replace(EVENT, active=False, acked=True))
    assert record.state is AlarmState.NORMAL and [t.transition for t in transitions] == ["T5"]
    released, transitions = apply(record, replace(EVENT, active=False, acked=True, retain=False))
    assert released is None and transitions == []


def test_an_event_of_an_unknown_condition_that_is_not_retained_leaves_nothing():
    assert apply(None, replace(EVENT, retain=False, active=False, acked=True)) == (None, [])


def test_a_condition_the_device_disables_while_active_is_removed_with_a_journal_entry():
    record, _ = apply(None, EVENT)
    gone, transitions = apply(record, replace(EVENT, retain=False))
    assert gone is None
    assert [(t.from_state, t.to_state, t.transition) for t in transitions] == [
        (AlarmState.UNACK_ACTIVE, AlarmState.NORMAL, "B>A")]


def test_moves_only_the_device_makes_are_journalled_by_their_letters():
    record, _ = apply(None, replace(EVENT, acked=True))  # first seen already acknowledged (after a refresh)
    assert record.state is AlarmState.ACK_ACTIVE
    record, transitions = apply(record, replace(EVENT, acked=False))  # the device asks again
    assert [t.transition for t in transitions] == ["C>B"]
    assert transition_name(AlarmState.NORMAL, AlarmState.ACK_ACTIVE) == "A>C"


def test_severity_and_message_follow_the_device_without_a_state_change():
    record, _ = apply(None, EVENT)
    after, transitions = apply(record, replace(EVENT, severity=900, message="Temperature high high"))
    assert (after.priority, after.message, after.state) == (1, "Temperature high high", AlarmState.UNACK_ACTIVE)
    assert transitions == []


def test_bad_condition_quality_shows_the_input_bad_and_keeps_the_state():
    record, _ = apply(None, EVENT)
    after, transitions = apply(record, replace(EVENT, quality_code=BAD_SENSOR_FAILURE.code))
    assert after.input_bad and after.state is AlarmState.UNACK_ACTIVE and transitions == []
    after, _ = apply(after, EVENT)
    assert not after.input_bad


def test_branches_are_records_of_their_own():
    main, _ = apply(None, replace(EVENT, acked=True))
    branch_event = replace(EVENT, condition=EVENT.condition + " branch=ns=1;g=0a", branch=True, active=False)
    branch, transitions = apply(None, branch_event)
    assert branch.alarm_id != main.alarm_id and branch.state is AlarmState.RETURNED_UNACK
    assert [t.transition for t in transitions] == ["A>D"]
    gone, _ = apply(branch, replace(branch_event, acked=True, retain=False))
    assert gone is None


def test_a_lost_source_marks_its_records_not_live_once():
    record, _ = apply(None, EVENT)
    [lost] = mark_source_lost([record])
    assert lost.input_bad and lost.state is AlarmState.UNACK_ACTIVE
    assert mark_source_lost([lost]) == []


def test_after_a_refresh_the_records_not_sent_again_are_removed_shown_ones_with_a_journal_entry():
    shown, _ = apply(None, EVENT)
    kept, _ = apply(None, replace(EVENT, condition="c2"))
    quiet, _ = apply(None, replace(EVENT, condition="c3", active=False, acked=True))
    removed, transitions = not_refreshed([shown, kept, quiet], {"c2"}, now_ms=5_000)
    assert removed == [shown.alarm_id, quiet.alarm_id]
    assert [(t.alarm_id, t.from_state, t.to_state) for t in transitions] == [
        (shown.alarm_id, AlarmState.UNACK_ACTIVE, AlarmState.NORMAL)]


PLANT = """
sources:
  plc:
    kind: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    security: {policy: None, mode: None}
    device_alarms: DEVICE_ALARMS
tags: []
"""


def plant(device_alarms: str):
    return parse_config(PLANT.replace("DEVICE_ALARMS", device_alarms), Path("plant.yaml"), {})


def test_device_alarms_config_defaults_to_the_server_object_and_the_documented_priorities():
    settings = plant("{}").sources["plc"].device_alarms
    assert settings.notifiers == ["i=2253"] and settings.area == ""
    assert settings.priority_from_severity == (800, 600, 400)
    custom = plant('{notifiers: ["nsu=urn:plc;s=Line1"], area: Line 1, priority_from_severity: [900, 500, 100]}')
    assert custom.sources["plc"].device_alarms.notifiers == ["nsu=urn:plc;s=Line1"]


@pytest.mark.parametrize("device_alarms, complaint", [
    ("{notifier: [i=2253]}", "sources.plc.device_alarms.notifier"),
    ("{notifiers: [Server]}", "notifiers[0]"),
    ("{notifiers: []}", "notifiers"),
    ("{priority_from_severity: [400, 600, 800]}", "from high to low"),
    ("{priority_from_severity: [1200, 600, 400]}", "priority_from_severity[0]"),
])
def test_device_alarms_config_errors_name_the_key(device_alarms, complaint):
    with pytest.raises(ConfigError) as error:
        plant(device_alarms)
    assert complaint in str(error.value)


def test_events_cross_redis_as_json_and_come_back_equal():
    lost = SourceEvent("plc", "lost", 5, BAD_SENSOR_FAILURE.code, "BadSensorFailure")
    refreshed = SourceEvent("plc", "refresh_end", 6, conditions=("c1", "c2"))
    for event in (EVENT, replace(EVENT, active=None, acked=None, branch=True), lost, refreshed):
        assert decode_event(encode_event(event)) == event
    with pytest.raises(ValueError):
        decode_event(b'{"kind": "condition", "source": "plc"}')
    with pytest.raises(ValueError):
        decode_event(b"not json")


def test_the_event_filter_selects_the_condition_id_and_asks_for_conditions_and_refresh_events():
    from asyncua import ua

    from data_sources.opcua_conditions import SELECT, event_filter, portable_node_id

    selected = event_filter().SelectClauses
    condition_id = selected[[name for name, _type, _path in SELECT].index("condition_id")]
    assert (condition_id.TypeDefinitionId, condition_id.BrowsePath, condition_id.AttributeId) == (
        ua.NodeId(2782), [], ua.AttributeIds.NodeId)
    acked = selected[[name for name, _type, _path in SELECT].index("acked")]
    assert [q.Name for q in acked.BrowsePath] == ["AckedState", "Id"] and acked.TypeDefinitionId == ua.NodeId(2881)
    elements = event_filter().WhereClause.Elements
    of_types = [e.FilterOperands[0].Value.Value for e in elements if e.FilterOperator == ua.FilterOperator.OfType]
    assert of_types == [ua.NodeId(2782), ua.NodeId(2787), ua.NodeId(2788), ua.NodeId(2789)]
    # Every Or points at two later elements; together they reach every OfType.
    reached = {op.Index for e in elements if e.FilterOperator == ua.FilterOperator.Or for op in e.FilterOperands}
    assert reached == set(range(1, len(elements)))
    assert event_filter(with_where_clause=False).WhereClause.Elements == []
    assert portable_node_id(ua.NodeId("Tank.Alarm", 2), ["http://opcfoundation.org/UA/", "urn:a", "urn:plc"]) == (
        "nsu=urn:plc;s=Tank.Alarm")
    assert portable_node_id(ua.NodeId(2253), ["http://opcfoundation.org/UA/"]) == "i=2253"
