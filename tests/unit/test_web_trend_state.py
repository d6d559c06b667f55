"""The trend's state: ranges, pause, zoom, the controls' actions and the address it is kept in."""
from __future__ import annotations

from urllib.parse import parse_qsl

from web.history_query import MAX_RANGE_MS
from web.trend_actions import apply_action, pause_button, zoom_span
from web.trend_ranges import (
    RANGES_MS, check_custom_range, extends_live, local_input_text, max_points_for_width, parse_local_input,
    refresh_interval_s,
)
from web.trend_state import TrendState
from web.trend_url import format_trend_query, parse_trend_query

KNOWN = {"T1.level", "M1.flow", "P1.run"}
NOW = 1_800_000_000_000
HOUR = 3_600_000


def parse(query: str, now_ms: int = NOW):
    return parse_trend_query(dict(parse_qsl(query)), KNOWN, now_ms)


def test_presets_up_to_an_hour_extend_live_longer_ones_are_queried_again():
    assert [k for k in RANGES_MS if extends_live(k)] == ["5m", "15m", "1h"]
    assert [refresh_interval_s(k) for k in RANGES_MS] == [None, None, None, 30, 30, 60, 60]
    assert refresh_interval_s("custom") is None


def test_max_points_are_two_per_pixel_within_bounds():
    assert max_points_for_width(1_000) == 2_000
    assert max_points_for_width(10_000) == 5_000
    assert max_points_for_width(2) == 10
    assert max_points_for_width(None) == 2_400


def test_custom_times_are_typed_in_the_browsers_zone_and_checked():
    assert parse_local_input("2027-01-15 09:30", 60) == parse_local_input("2027-01-15T08:30", 0)
    assert local_input_text(parse_local_input("2027-01-15 09:30", 60), 60) == "2027-01-15 09:30"
    assert parse_local_input("15/01/2027", 0) is None and parse_local_input("", 0) is None
    assert check_custom_range(None, 1, NOW) == "Give a start and an end (date and time)."
    assert check_custom_range(NOW - 5, NOW - 10, NOW) == "The end must be after the start."
    assert check_custom_range(NOW + 1, NOW + 10, NOW) == "The range must start before now."
    assert "at most 366 days" in check_custom_range(NOW - MAX_RANGE_MS - 1, NOW, NOW)
    assert check_custom_range(NOW - HOUR, NOW, NOW) is None


def test_views_of_live_paused_custom_and_zoomed_states():
    live = TrendState(tags=("T1.level",), range_key="1h")
    v = live.view(NOW)
    assert (v.start_ms, v.end_ms, v.live, v.extend, v.refresh_s) == (NOW - HOUR, NOW, True, True, None)
    v = TrendState(range_key="24h").view(NOW)
    assert (v.live, v.extend, v.refresh_s) == (True, False, 30)
    paused = live.paused_at(NOW - 10)
    v = paused.view(NOW)
    assert (v.start_ms, v.end_ms, v.live) == (NOW - 10 - HOUR, NOW - 10, False)
    zoomed = live.zoomed(NOW - 600, NOW - 300, NOW)
    assert zoomed.paused and zoomed.end_ms == NOW and zoomed.zoom == (NOW - 600, NOW - 300)
    v = zoomed.view(NOW + 5_000)
    assert (v.start_ms, v.end_ms, v.live) == (NOW - 600, NOW - 300, False)
    assert zoomed.zoom_reset().view(NOW + 5_000).end_ms == NOW  # back to the paused range
    assert zoomed.resumed() == live
    custom = live.with_custom(NOW - 2 * HOUR, NOW - HOUR)
    assert custom.view(NOW).start_ms == NOW - 2 * HOUR and not custom.view(NOW).live
    assert custom.paused_at(NOW) == custom


def test_the_controls_change_the_state():
    state = TrendState(tags=("T1.level",), range_key="15m")

    def act(trigger, state=state, **values):
        return apply_action(state, trigger, values, 60, NOW)

    assert act("trend-pens", pens=["T1.level", "M1.flow", "T1.level"]).state.tags == ("T1.level", "M1.flow")
    nine = act("trend-pens", pens=[f"T{i}" for i in range(9)])
    assert len(nine.state.tags) == 8 and nine.message == "At most 8 pens: T8 left out."
    assert act("trend-axes", axes="normalised").state.axes == "normalised"
    assert act("trend-axes", axes="log").state.axes == "unit"
    assert act("trend-range", range="7d").state.range_key == "7d"
    custom = act("trend-range", range="custom")
    assert custom.state.is_custom and custom.state.end_ms == NOW
    assert custom.custom_inputs == (local_input_text(NOW - 15 * 60_000, 60), local_input_text(NOW, 60))
    applied = act("trend-custom-apply", custom_start="2027-01-15 08:00", custom_end="2027-01-15 09:00")
    assert applied.state.is_custom and applied.state.end_ms - applied.state.start_ms == HOUR and not applied.message
    refused = act("trend-custom-apply", custom_start="2027-01-15 09:00", custom_end="2027-01-15 08:00")
    assert refused.state == state and refused.message == "The end must be after the start."
    paused = act("trend-pause").state
    assert paused.paused and paused.end_ms == NOW and pause_button(paused)[0] == "Resume"
    assert act("trend-pause", state=paused).state == state and pause_button(state)[0] == "Pause"
    assert pause_button(applied.state)[1] is True  # a custom range is not live: nothing to pause
    zoomed = act("trend-zoom", zoom={"start": "2027-01-15 09:00:00.000", "end": "2027-01-15 09:05:00"}).state
    assert zoomed.zoom == (parse_local_input("2027-01-15 09:00", 60), parse_local_input("2027-01-15 09:05", 60))
    assert zoomed.paused and act("trend-reset-zoom", state=zoomed).state.zoom is None
    assert act("trend-zoom", zoom={"start": "x", "end": 3}).state == state  # nothing that can be read
    assert zoom_span({"start": 5, "end": 5}, 0) is None


def test_the_address_round_trips():
    states = [
        TrendState(tags=("T1.level", "M1.flow"), range_key="24h"),
        TrendState(tags=("T1.level",), range_key="1h", axes="normalised").paused_at(NOW - 60_000),
        TrendState(tags=("P1.run",)).with_custom(NOW - 2 * HOUR, NOW - HOUR),
        TrendState(tags=("T1.level",), range_key="5m").zoomed(NOW - 200_000, NOW - 100_000, NOW - 1_000),
        TrendState(),
    ]
    for state in states:
        assert parse(format_trend_query(state)) == (state, []), format_trend_query(state)
    assert format_trend_query(states[0]) == "tags=T1.level,M1.flow&range=24h"
    assert format_trend_query(states[2]) == ("tags=P1.run&range=custom&start=2027-01-15T06:00:00.000Z"
                                             "&end=2027-01-15T07:00:00.000Z")


def test_bad_addresses_are_read_as_far_as_they_can_be_with_a_note_each():
    state, notes = parse("tags=T1.level,nope,T1.level&range=2w&axes=log")
    assert state == TrendState(tags=("T1.level",)) and notes == [
        "No tag that can be trended named 'nope': left out.",
        "Ignored range='2w': one of 5m, 15m, 1h, 8h, 24h, 7d, 30d or custom; showing 15m.",
        "Ignored axes='log': unit or normalised."]
    state, notes = parse("tags=M1.flow&start=yesterday&end=2027-01-15T07:00:00Z")
    assert state.range_key == "15m" and "start='yesterday' is neither" in notes[0]
    state, notes = parse("tags=M1.flow&start=2027-01-15T08:00:00Z&end=2027-01-15T07:00:00Z")
    assert state.range_key == "15m" and notes == [
        "Ignored the custom range: The end must be after the start. Showing 15m."]
    state, notes = parse("range=1h&zoom=abc")
    assert state.zoom is None and notes == ["Ignored zoom='abc': not two times as <start>/<end>."]
    state, notes = parse("tags=" + ",".join(f"T{i}" for i in range(3)), now_ms=NOW)
    assert state.tags == () and len(notes) == 1


def test_the_old_window_address_still_opens():
    assert parse("tags=T1.level&window=5") == (TrendState(tags=("T1.level",), range_key="5m"), [])
    assert parse("window=60")[0].range_key == "1h"
    assert parse("window=7")[1] == ["Ignored window='7': use range= one of 5m, 15m, 1h, 8h, 24h, 7d, 30d."]


def test_a_paused_address_ends_no_later_than_now():
    state, _ = parse("tags=T1.level&range=1h&paused=1&end=2099-01-01T00:00:00Z")
    assert state.paused and state.end_ms == NOW
