"""How values, status and age are worded for the operator."""
from __future__ import annotations

import pytest

from domain.freshness import Freshness
from tests.unit.web_plant import small_plant
from web.tag_display import (
    alarm_limit_marks, effective_freshness, format_age, format_value, format_with_unit, judge_encoded, live_entry,
    range_percent, status_text,
)

PLANT = small_plant()
LEVEL, SETPOINT, RUN, COUNT, FLOW = (PLANT.tag(n) for n in ("T1.level", "T1.setpoint", "P1.run", "C1.count", "M1.flow"))


@pytest.mark.parametrize(("tag", "value", "text"), [
    (LEVEL, 2.345678, "2.35"),      # span 5: two decimals
    (SETPOINT, 55.0, "55.0"),       # span 100: one decimal
    (FLOW, 1234.56, "1235"),        # span 1500: none
    (COUNT, 42.0, "42"),
    (RUN, True, "ON"),
    (RUN, 0, "OFF"),
    (LEVEL, None, ""),
])
def test_values_are_formatted_by_type_and_range(tag, value, text):
    assert format_value(tag, value) == text


def test_unit_follows_the_value_only_when_there_is_one():
    assert format_with_unit(LEVEL, 1.0) == "1.00 m"
    assert format_with_unit(LEVEL, None) == ""
    assert format_with_unit(RUN, True) == "ON"


@pytest.mark.parametrize(("freshness", "quality", "text"), [
    (Freshness.LIVE, "Good", "Good"),
    (Freshness.UNCERTAIN, "UncertainLastUsableValue", "UNCERTAIN: UncertainLastUsableValue"),
    (Freshness.STALE, "Good", "STALE"),
    (Freshness.BAD, "BadNoCommunication", "BAD: BadNoCommunication"),
    (Freshness.NO_DATA, None, "NO DATA"),
])
def test_status_is_said_in_words(freshness, quality, text):
    assert status_text(freshness, quality) == text


@pytest.mark.parametrize(("age_ms", "text"), [
    (-50, "just now"), (400, "just now"), (2_000, "2 s ago"), (119_000, "119 s ago"),
    (180_000, "3 min ago"), (3 * 3600_000, "3 h ago"), (3 * 86_400_000, "3 d ago"),
])
def test_age_text(age_ms, text):
    assert format_age(age_ms) == text


def test_without_redis_live_values_count_as_stale_but_bad_stays_bad():
    assert effective_freshness(Freshness.LIVE, cache_connected=False) is Freshness.STALE
    assert effective_freshness(Freshness.UNCERTAIN, cache_connected=False) is Freshness.STALE
    assert effective_freshness(Freshness.BAD, cache_connected=False) is Freshness.BAD
    assert effective_freshness(Freshness.LIVE, cache_connected=True) is Freshness.LIVE


def test_judging_an_encoded_value_uses_heartbeat_and_max_age():
    encoded = {"v": 10.0, "q": 0, "qn": "Good", "ts": 1_000, "rt": 1_000}
    assert judge_encoded(FLOW, encoded, heartbeat_ms=2_000, now_ms=2_000, cache_connected=True) is Freshness.LIVE
    # MQTT tag with max_age_s 5: ten seconds without a message is stale even with a live source
    assert judge_encoded(FLOW, encoded, heartbeat_ms=11_000, now_ms=11_000, cache_connected=True) is Freshness.STALE
    # a silent source makes every one of its tags stale
    assert judge_encoded(LEVEL, encoded, heartbeat_ms=None, now_ms=2_000, cache_connected=True) is Freshness.STALE
    assert judge_encoded(LEVEL, None, heartbeat_ms=2_000, now_ms=2_000, cache_connected=True) is Freshness.NO_DATA


def test_live_entry_of_a_bad_value_keeps_the_last_value_and_names_the_quality():
    encoded = {"v": 3.2, "q": 0x80310000, "qn": "BadNoCommunication", "ts": 5, "rt": 6}
    entry = live_entry(LEVEL, encoded, Freshness.BAD)
    assert entry["d"] == "3.20"
    assert entry["s"] == "BAD: BadNoCommunication"
    assert entry["f"] == "bad"
    assert (entry["ts"], entry["rt"], entry["tsr"]) == (5, 6, False)
    assert live_entry(LEVEL, None, Freshness.NO_DATA)["s"] == "NO DATA"


def test_alarm_limits_are_marked_on_the_range():
    assert alarm_limit_marks(LEVEL) == [("HH 4.5 m", 90.0), ("L 0.5 m", 10.0)]
    assert alarm_limit_marks(SETPOINT) == []
    assert range_percent(LEVEL, 7.0) == 100.0
    assert range_percent(RUN, 1.0) is None
