"""What an operator may write: every refusal happens before anything is sent."""
import math

import pytest

from domain.config_model import DataType, EngineeringRange, Tag
from domain.quality import BAD, BAD_NO_COMMUNICATION, GOOD, UNCERTAIN_LAST_USABLE_VALUE
from domain.write_rules import WriteRefused, check_reason, check_write, parse_entry, readback_matches

SETPOINT = Tag(
    name="R201.sp", source="plc", node_id="ns=2;s=SP", unit="degC", writable=True,
    range=EngineeringRange(low=0, high=150), limits=EngineeringRange(low=20, high=95), max_step=30,
    write_tolerance=0.01,
)


@pytest.mark.parametrize("entry, expected", [("42.5", 42.5), (" 60 ", 60.0), (70, 70.0), ("1e1", 10.0)])
def test_numbers_are_parsed(entry, expected):
    assert parse_entry(SETPOINT, entry) == expected


@pytest.mark.parametrize(
    "entry, reason",
    [("", "enter a value"), ("abc", "not a number"), ("nan", "finite"), ("inf", "finite"),
     ("-Infinity", "finite"), (math.nan, "finite"), (True, "not on/off"), (None, "enter a value")],
)
def test_non_numbers_are_refused_with_a_reason(entry, reason):
    with pytest.raises(WriteRefused, match=reason):
        parse_entry(SETPOINT, entry)


def test_integer_tags_refuse_fractions():
    counter = SETPOINT.model_copy(update={"data_type": DataType.INT})
    assert parse_entry(counter, "7") == 7 and isinstance(parse_entry(counter, "7.0"), int)
    with pytest.raises(WriteRefused, match="whole numbers"):
        parse_entry(counter, "7.5")


def test_booleans_accept_the_usual_words():
    switch = Tag(name="P1.run", source="plc", node_id="ns=2;s=R", data_type=DataType.BOOL, writable=True)
    assert parse_entry(switch, "Start") is True and parse_entry(switch, "off") is False
    with pytest.raises(WriteRefused, match="not on/off"):
        parse_entry(switch, "maybe")


def test_operator_limits_refuse_without_clamping():
    check_write(SETPOINT, 95.0, 80.0)
    with pytest.raises(WriteRefused, match="outside the operator limits 20 .. 95 degC"):
        check_write(SETPOINT, 95.5, 80.0)
    with pytest.raises(WriteRefused, match="outside the operator limits"):
        check_write(SETPOINT, 19.9, 30.0)


def test_engineering_range_applies_when_there_are_no_operator_limits():
    open_tag = SETPOINT.model_copy(update={"limits": None, "max_step": None})
    check_write(open_tag, 150.0, 0.0)
    with pytest.raises(WriteRefused, match="engineering range"):
        check_write(open_tag, 151.0, 0.0)


def test_steps_larger_than_max_step_are_refused():
    check_write(SETPOINT, 90.0, 60.0)
    with pytest.raises(WriteRefused, match="step of 31 is larger than the allowed 30"):
        check_write(SETPOINT, 91.0, 60.0)


def test_not_writable_is_refused():
    with pytest.raises(WriteRefused, match="not writable"):
        check_write(SETPOINT.model_copy(update={"writable": False}), 50.0, 40.0)


def test_readback_uses_the_tolerance():
    assert readback_matches(SETPOINT, 60.0, 60.009)
    assert not readback_matches(SETPOINT, 60.0, 60.02)
    assert not readback_matches(SETPOINT, 60.0, True)


def test_large_integers_are_parsed_and_compared_exactly():
    counter = SETPOINT.model_copy(update={"data_type": DataType.INT, "range": None, "limits": None,
                                          "max_step": None, "write_tolerance": 0})
    assert parse_entry(counter, str(2**64 - 1)) == 2**64 - 1
    assert parse_entry(counter, 2**53 + 1) == 2**53 + 1
    # A device answering 2**53 (as a double) did not take 2**53 + 1.
    assert not readback_matches(counter, 2**53 + 1, float(2**53))
    assert readback_matches(counter, 2**53, float(2**53))


@pytest.mark.parametrize(
    "current, quality, why",
    [(None, None, "no value"), ("n/a", None, "not a number"), (True, None, "not a number"),
     (math.nan, None, "not a finite number"), (60.0, BAD, "Bad"), (None, BAD_NO_COMMUNICATION, "BadNoCommunication")],
)
def test_max_step_refuses_while_the_current_value_is_unknown(current, quality, why):
    # Without a known current value the step cannot be judged: 0 -> 95 must not pass unchecked.
    with pytest.raises(WriteRefused) as refused:
        check_write(SETPOINT, 61.0, current, quality)
    assert str(refused.value) == f"current value unknown ({why}): the step limit of 30 degC cannot be checked"


def test_max_step_is_judged_from_a_good_or_uncertain_value():
    check_write(SETPOINT, 61.0, 60.0, GOOD)
    check_write(SETPOINT, 61.0, 60, UNCERTAIN_LAST_USABLE_VALUE)


def test_without_max_step_an_unknown_current_value_does_not_block():
    check_write(SETPOINT.model_copy(update={"max_step": None}), 95.0, None, BAD)


def test_a_reason_is_trimmed_and_required_only_where_configured():
    assert check_reason(SETPOINT, None) == "" and check_reason(SETPOINT, "  new batch ") == "new batch"
    needs_reason = SETPOINT.model_copy(update={"reason_required": True})
    for nothing in (None, "", "   "):
        with pytest.raises(WriteRefused, match="a reason is required to write R201.sp"):
            check_reason(needs_reason, nothing)
    assert check_reason(needs_reason, "x" * 500) == "x" * 500
    assert check_reason(needs_reason, "line one\r\nline\ttwo") == "line one line two"


@pytest.mark.parametrize(("reason", "why"), [("x" * 501, "longer than 500 characters"), (42, "must be text"),
                                             (["a"], "must be text")])
def test_a_reason_that_is_not_short_text_is_refused(reason, why):
    with pytest.raises(WriteRefused, match=why):
        check_reason(SETPOINT, reason)


def test_the_demo_plant_shows_a_critical_and_a_reason_required_setpoint():
    from tests.browser.web_app_process import DEMO_PLANT  # noqa: PLC0415
    from domain.config_loading import load_config  # noqa: PLC0415

    plant = load_config(DEMO_PLANT)  # validates as `make run` does
    assert plant.tag("C401.pressure_setpoint").critical
    assert plant.tag("Packaging.Filler1.Speed_setpoint").reason_required
    assert not plant.tag("R201.temperature_setpoint").critical  # the plain flow the end-to-end test drives
