"""When each alarm type's condition is true: limits, deviation, rate of change, discrete, bad
quality, design suppression, and the rate-of-change window.

Deadbands: an alarm enters at its limit and leaves only past limit -/+ deadband (a value resting
on the band's edge stays in)."""
from __future__ import annotations

import pytest

from domain.alarms.conditions import AlarmInput, RateWindow, as_number, is_suppressed, raw_condition
from domain.alarms.settings import (
    BadQualityAlarm, DeviationAlarm, DiscreteAlarm, LimitAlarm, RateOfChangeAlarm, SuppressionCondition,
)
from domain.quality import BAD_NO_COMMUNICATION, BAD_SENSOR_FAILURE, GOOD, UNCERTAIN, UNCERTAIN_LAST_USABLE_VALUE


def good(value, **extra) -> AlarmInput:
    return AlarmInput(value, GOOD, **extra)


def follow(kind: str, alarm, inputs: list[AlarmInput]) -> list[bool | None]:
    """The raw condition for each input in turn, each judged against the one before (as the engine does)."""
    active, answers = False, []
    for data in inputs:
        answer = raw_condition(kind, alarm, data, active)
        answers.append(answer)
        if answer is not None:
            active = answer
    return answers


# ---- limits and their deadband ---------------------------------------------------------------

HIGH = LimitAlarm(limit=80, deadband=2)
LOW = LimitAlarm(limit=20, deadband=2)


@pytest.mark.parametrize("kind", ["high", "high_high"])
def test_a_high_limit_enters_at_the_limit_and_leaves_below_the_deadband(kind):
    values = [79.9, 80, 79, 78, 77.99, 79.9, 80.5]  # 78 = limit - deadband: still in
    assert follow(kind, HIGH, [good(v) for v in values]) == [False, True, True, True, False, False, True]


@pytest.mark.parametrize("kind", ["low", "low_low"])
def test_a_low_limit_enters_at_the_limit_and_leaves_above_the_deadband(kind):
    values = [20.1, 20, 21, 22, 22.01, 20.1, 19.5]  # 22 = limit + deadband: still in
    assert follow(kind, LOW, [good(v) for v in values]) == [False, True, True, True, False, False, True]


def test_the_deadband_applies_only_to_leaving_the_alarm():
    # Inside the band (78..80) a clear alarm stays clear and an active one stays active.
    assert raw_condition("high", HIGH, good(79), currently_active=False) is False
    assert raw_condition("high", HIGH, good(79), currently_active=True) is True
    assert raw_condition("low", LOW, good(21), currently_active=False) is False
    assert raw_condition("low", LOW, good(21), currently_active=True) is True


@pytest.mark.parametrize("kind, limit, past", [("high", 80.0, 79.99), ("low", 20.0, 20.01)])
def test_a_value_resting_exactly_on_the_limit_stays_in_alarm_without_a_deadband(kind, limit, past):
    # Entering at the limit and leaving only past it: no chatter B -> D -> B on every sample.
    alarm = LimitAlarm(limit=limit)
    assert follow(kind, alarm, [good(limit)] * 4 + [good(past)]) == [True] * 4 + [False]


def test_an_integer_value_is_a_number_but_a_bool_or_text_is_not():
    assert raw_condition("high", HIGH, good(85), False) is True
    assert as_number(True) is None and as_number("85") is None and as_number(85) == 85.0
    assert raw_condition("high", HIGH, good(True), False) is None
    assert raw_condition("high", HIGH, good("85"), False) is None


# ---- what cannot be judged -------------------------------------------------------------------

PROCESS_ALARMS = [
    ("high", HIGH),
    ("low", LOW),
    ("deviation", DeviationAlarm(setpoint_tag="FIC101.sp", limit=5)),
    ("rate_of_change", RateOfChangeAlarm(limit_per_s=1)),
    ("discrete", DiscreteAlarm(normal=True)),
]


@pytest.mark.parametrize("kind, alarm", PROCESS_ALARMS, ids=[k for k, _ in PROCESS_ALARMS])
@pytest.mark.parametrize("active", [False, True])
def test_bad_input_or_no_value_cannot_be_judged(kind, alarm, active):
    for data in (AlarmInput(85.0, BAD_SENSOR_FAILURE, setpoint=50.0, rate_per_s=9.0),
                 AlarmInput(None, GOOD, setpoint=50.0, rate_per_s=9.0)):
        assert raw_condition(kind, alarm, data, active) is None


@pytest.mark.parametrize("kind, alarm", PROCESS_ALARMS[:2], ids=["high", "low"])
def test_uncertain_input_is_still_judged(kind, alarm):
    assert raw_condition(kind, alarm, AlarmInput(50.0, UNCERTAIN_LAST_USABLE_VALUE), False) is False


# ---- deviation from a setpoint tag -----------------------------------------------------------

DEVIATION = DeviationAlarm(setpoint_tag="FIC101.sp", limit=5, deadband=1)


@pytest.mark.parametrize("value", [55.0, 45.0], ids=["above", "below"])
def test_deviation_counts_both_directions_with_its_deadband(value):
    toward = 1 if value > 50 else -1
    inputs = [good(50 + toward * offset, setpoint=50.0) for offset in (4.9, 5.0, 4.5, 4.0, 3.9)]
    assert follow("deviation", DEVIATION, inputs) == [False, True, True, True, False]


@pytest.mark.parametrize("active", [False, True])
def test_deviation_without_a_usable_setpoint_cannot_be_judged(active):
    # The engine passes setpoint=None when the setpoint tag is missing or Bad.
    assert raw_condition("deviation", DEVIATION, good(99.0, setpoint=None), active) is None


def test_deviation_follows_a_moving_setpoint():
    assert raw_condition("deviation", DEVIATION, good(60.0, setpoint=50.0), False) is True
    assert raw_condition("deviation", DEVIATION, good(60.0, setpoint=58.0), True) is False


# ---- rate of change ----------------------------------------------------------------------------


@pytest.mark.parametrize("direction, rate, expected", [
    ("rising", 2.0, True), ("rising", -2.0, False),
    ("falling", -2.0, True), ("falling", 2.0, False),
    ("both", 2.0, True), ("both", -2.0, True), ("both", 0.5, False),
])
def test_rate_of_change_by_direction(direction, rate, expected):
    alarm = RateOfChangeAlarm(limit_per_s=1.5, direction=direction)
    assert raw_condition("rate_of_change", alarm, good(10.0, rate_per_s=rate), False) is expected


@pytest.mark.parametrize("sign", [1, -1], ids=["rising", "falling"])
def test_rate_of_change_deadband_holds_the_alarm(sign):
    alarm = RateOfChangeAlarm(limit_per_s=2, deadband_per_s=0.5, direction="both")
    rates = [1.9, 2.0, 1.6, 1.5, 1.49, 1.9]
    assert follow("rate_of_change", alarm, [good(0.0, rate_per_s=sign * r) for r in rates]) == \
        [False, True, True, True, False, False]


@pytest.mark.parametrize("active", [False, True])
def test_rate_of_change_without_a_rate_yet_holds(active):
    # Before the window has two samples (after an engine restart) the rate is unknown: an active
    # alarm must not clear on that, nor a clear one come in.
    alarm = RateOfChangeAlarm(limit_per_s=1)
    assert raw_condition("rate_of_change", alarm, good(10.0, rate_per_s=None), active) is active


# ---- discrete ----------------------------------------------------------------------------------


@pytest.mark.parametrize("normal, value, expected", [
    (True, True, False), (True, False, True),
    ("RUN", "RUN", False), ("RUN", "TRIP", True),
    (2, 2, False), (2, 3, True), (2, 2.0, False),
    # A bool and an int compare as numbers (Python: True == 1): a PLC bit read as 0/1 matches.
    (True, 1, False), (False, 0, False), (False, 1, True),
    # Text is not a number or a bool: "1" is off-normal for normal 1.
    (1, "1", True), (True, "true", True),
])
def test_discrete_off_normal(normal, value, expected):
    assert raw_condition("discrete", DiscreteAlarm(normal=normal), good(value), False) is expected


@pytest.mark.parametrize("alarm_on, value, expected", [
    (["TRIP", "FAULT"], "TRIP", True), (["TRIP", "FAULT"], "RUN", False),
    ([3, 4], 4, True), ([3, 4], 5, False),
    ([True], 1, True), ([1], True, True), ([1], False, False),
])
def test_discrete_alarm_on_values(alarm_on, value, expected):
    assert raw_condition("discrete", DiscreteAlarm(alarm_on=alarm_on), good(value), False) is expected


def test_discrete_ignores_the_active_flag():
    alarm = DiscreteAlarm(normal=True)
    assert [raw_condition("discrete", alarm, good(False), active) for active in (False, True)] == [True, True]


# ---- bad quality -------------------------------------------------------------------------------


@pytest.mark.parametrize("include_uncertain, quality, expected", [
    (False, GOOD, False), (False, UNCERTAIN, False), (False, UNCERTAIN_LAST_USABLE_VALUE, False),
    (False, BAD_NO_COMMUNICATION, True), (False, BAD_SENSOR_FAILURE, True),
    (True, GOOD, False), (True, UNCERTAIN, True), (True, UNCERTAIN_LAST_USABLE_VALUE, True),
    (True, BAD_NO_COMMUNICATION, True),
])
def test_bad_quality_alarm(include_uncertain, quality, expected):
    alarm = BadQualityAlarm(include_uncertain=include_uncertain)
    for value in (42.0, None):  # judged on quality alone: a Bad input has no usable value anyway
        assert raw_condition("bad_quality", alarm, AlarmInput(value, quality), False) is expected


# ---- design suppression ----------------------------------------------------------------------


@pytest.mark.parametrize("condition, value, expected", [
    (SuppressionCondition(tag="P101.running", equals=False), False, True),
    (SuppressionCondition(tag="P101.running", equals=False), True, False),
    (SuppressionCondition(tag="P101.running", equals=False), 0, True),  # a 0/1 bit matches the bool
    (SuppressionCondition(tag="P101.mode", equals="MAINT"), "MAINT", True),
    (SuppressionCondition(tag="P101.mode", equals="MAINT"), "AUTO", False),
    (SuppressionCondition(tag="P101.speed", below=5), 4.9, True),
    (SuppressionCondition(tag="P101.speed", below=5), 5, False),
    (SuppressionCondition(tag="P101.speed", above=5), 5.1, True),
    (SuppressionCondition(tag="P101.speed", above=5), 5, False),
    (SuppressionCondition(tag="P101.speed", below=5), "stopped", False),  # not a number: not suppressed
    (SuppressionCondition(tag="P101.speed", below=5), True, False),  # a bool is not a speed
])
def test_design_suppression_with_good_input(condition, value, expected):
    assert is_suppressed(condition, value, GOOD) is expected


@pytest.mark.parametrize("condition, value", [
    (SuppressionCondition(tag="P101.running", equals=False), False),
    (SuppressionCondition(tag="P101.speed", below=5), 0.0),
    (SuppressionCondition(tag="P101.speed", above=5), 10.0),
])
def test_bad_or_missing_input_never_suppresses(condition, value):
    # The same values suppress with Good quality; unknown input must not hide an alarm on a guess.
    assert is_suppressed(condition, value, GOOD) is True
    assert is_suppressed(condition, value, BAD_NO_COMMUNICATION) is False
    assert is_suppressed(condition, value, None) is False
    assert is_suppressed(condition, None, GOOD) is False


def test_uncertain_input_still_suppresses():
    assert is_suppressed(SuppressionCondition(tag="P101.running", equals=False), False, UNCERTAIN) is True


# ---- the rate-of-change window ---------------------------------------------------------------


def test_rate_window_needs_two_samples():
    window = RateWindow(window_s=10)
    assert window.rate_per_s() is None
    assert window.add(1_000, 5.0) is None
    assert window.add(3_000, 9.0) == pytest.approx(2.0)


def test_rate_window_covers_the_last_window_of_samples():
    window = RateWindow(window_s=10)
    for second in range(0, 11):  # rising 1/s for 10 s
        window.add(second * 1000, float(second))
    for second in range(11, 31):  # then flat for 20 s: the rise has left the window
        rate = window.add(second * 1000, 10.0)
    assert rate == pytest.approx(0.0)
    window.add(31_000, 5.0)  # a fall of 5 within the window
    assert window.rate_per_s() < 0


def test_rate_window_falling_rate_is_negative():
    window = RateWindow(window_s=5)
    window.add(0, 100.0)
    assert window.add(2_000, 90.0) == pytest.approx(-5.0)


@pytest.mark.parametrize("replayed_ms", [2_000, 1_500, 0])
def test_rate_window_ignores_replayed_and_duplicate_samples(replayed_ms):
    window = RateWindow(window_s=10)
    window.add(0, 0.0)
    window.add(2_000, 4.0)
    assert window.add(replayed_ms, 1000.0) == pytest.approx(2.0)  # same or older time: changes nothing
    assert window.add(4_000, 8.0) == pytest.approx(2.0)  # and later samples do not see it


def test_rate_window_is_bounded():
    window = RateWindow(window_s=3600, max_samples=3)
    for second, value in enumerate([0.0, 100.0, 0.0, 1.0, 2.0]):
        window.add(second * 1000, value)
    # Only the newest three samples are kept (t = 2, 3, 4 s): the rate is 1/s, not the 0.5/s
    # from t = 0 s, nor distorted by the spike at t = 1 s.
    assert window.rate_per_s() == pytest.approx(1.0)
    for second in range(5, 100_000):
        window.add(second * 1000, float(second))
    assert len(window._samples) == 3  # noqa: SLF001 - the bound itself is the point of this test
