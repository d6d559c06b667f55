"""ISA-18.2 limit-alarm states: each transition the foundation supports, and refusals."""
import pytest

from domain.alarm_logic import ActionRefused, AlarmState, acknowledge, evaluate, new_record, raw_condition
from domain.config_model import LimitAlarm
from domain.quality import BAD_NO_COMMUNICATION, GOOD

HIGH = LimitAlarm(limit=80, priority=2, deadband=2)


def fresh(kind="high", alarm=HIGH):
    return new_record("R1.temp", kind, alarm, "Reactor", "degC", 0)


def feed(record, values, alarm=HIGH, start_ms=0, step_ms=1000):
    transitions = []
    for i, value in enumerate(values):
        record, events = evaluate(record, alarm, value, GOOD, start_ms + i * step_ms)
        transitions += [e.transition for e in events]
    return record, transitions


def test_t1_activation_and_t2_acknowledge_then_t5_return():
    record, moves = feed(fresh(), [70, 81])
    assert (record.state, moves) == (AlarmState.UNACK_ACTIVE, ["T1"])
    record, events = acknowledge(record, "olga", 5000, "seen")
    assert record.state is AlarmState.ACK_ACTIVE and events[0].transition == "T2"
    assert (record.acknowledged_by, record.ack_comment) == ("olga", "seen")
    record, moves = feed(record, [77], start_ms=6000)
    assert (record.state, moves) == (AlarmState.NORMAL, ["T5"])


def test_t3_return_unacknowledged_then_t8_acknowledge():
    record, moves = feed(fresh(), [85, 70])
    assert (record.state, moves) == (AlarmState.RETURNED_UNACK, ["T1", "T3"])
    record, events = acknowledge(record, "olga", 9000)
    assert record.state is AlarmState.NORMAL and events[0].transition == "T8"


def test_t9_reactivation_before_acknowledge():
    record, moves = feed(fresh(), [85, 70, 90])
    assert (record.state, moves) == (AlarmState.UNACK_ACTIVE, ["T1", "T3", "T9"])


def test_deadband_holds_the_alarm_until_the_value_is_clear():
    record, moves = feed(fresh(), [80, 79, 78.5, 77.9])
    assert moves == ["T1", "T3"]
    assert record.state is AlarmState.RETURNED_UNACK


def test_low_alarm_mirrors_the_high_one():
    low = LimitAlarm(limit=10, deadband=1)
    assert raw_condition("low", low, 10, False) and not raw_condition("low", low, 10.1, False)
    assert raw_condition("low", low, 10.9, True) and not raw_condition("low", low, 11, True)


def test_on_delay_needs_the_condition_to_persist():
    delayed = LimitAlarm(limit=80, on_delay_s=3)
    record, moves = feed(fresh(alarm=delayed), [85, 85, 70, 85, 85, 85, 85], alarm=delayed)
    assert moves == ["T1"]  # the first excursion lasted 1 s only
    assert record.state is AlarmState.UNACK_ACTIVE and record.activated_ms == 6000


def test_off_delay_keeps_the_alarm_active_briefly():
    delayed = LimitAlarm(limit=80, off_delay_s=2)
    record, moves = feed(fresh(alarm=delayed), [85, 70, 70, 70], alarm=delayed)
    assert moves == ["T1", "T3"]
    assert record.state_since_ms == 3000


@pytest.mark.parametrize("values", [[], [85, 70, 70]])
def test_acknowledge_refused_when_nothing_is_unacknowledged(values):
    record, _ = feed(fresh(), values)
    if values:
        record, _ = acknowledge(record, "olga", 1)
    with pytest.raises(ActionRefused, match="nothing to acknowledge"):
        acknowledge(record, "olga", 2)


def test_acknowledged_active_refuses_a_second_acknowledge():
    record, _ = feed(fresh(), [90])
    record, _ = acknowledge(record, "olga", 1)
    with pytest.raises(ActionRefused):
        acknowledge(record, "piet", 2)
    assert record.acknowledged_by == "olga"


def test_bad_input_is_not_evaluated_as_normal():
    record, _ = feed(fresh(), [90])
    record, events = evaluate(record, HIGH, None, BAD_NO_COMMUNICATION, 5000)
    assert events == [] and record.state is AlarmState.UNACK_ACTIVE and record.input_bad
    record, moves = feed(record, [60], start_ms=6000)
    assert moves == ["T3"] and not record.input_bad
