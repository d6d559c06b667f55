"""Trend history from Redis and the figure built from it."""
from __future__ import annotations

import time

from domain.config_model import Tag
from domain.quality import BAD_SENSOR_FAILURE, GOOD
from domain.tag_value import TagValue
from tag_store.writer import TagStoreWriter
from tests.unit.web_plant import small_plant
from web.trend_figure import local_time_text, parse_pens, pen_options, trend_figure
from web.trend_history import hold_to_now, read_history

PLANT = small_plant()
INDEX = {t.name: t for t in PLANT.tags}


def test_pens_come_from_the_address_known_tags_only_without_repeats():
    assert parse_pens("T1.level, nope,M1.flow,T1.level", INDEX) == ["T1.level", "M1.flow"]
    assert parse_pens(["P1.run"], INDEX) == ["P1.run"]
    assert parse_pens(None, INDEX) == []


def test_the_pen_picker_offers_chosen_pens_and_a_limited_number_of_matching_tags():
    many = [*PLANT.tags, *(Tag(name=f"F{i:04d}.temp", source="mq", topic=f"t/{i}", description="found")
                           for i in range(1000))]
    first = pen_options(many, None, ["F0999.temp"], limit=50)
    assert first[:3] == [{"label": "T1.level: Tank level", "value": "T1.level"},
                         {"label": "T1.setpoint: Valve setpoint", "value": "T1.setpoint"},
                         {"label": "P1.run: Pump run", "value": "P1.run"}]
    assert len(first) == 51 and first[-1]["value"] == "F0999.temp"  # the chosen pen stays, past the limit
    assert [o["value"] for o in pen_options(many, "f050 FOUND", [], limit=50)] == [
        f"F{i:04d}.temp" for i in range(500, 510)]
    text = Tag(name="S1.text", source="mq", topic="t/s", data_type="string")
    assert pen_options([text], "", []) == []


def test_times_are_written_in_the_browsers_zone():
    assert local_time_text(0, 0) == "1970-01-01 00:00:00.000"
    assert local_time_text(1_500, 120) == "1970-01-01 02:00:01.500"


async def test_history_reads_recent_samples_with_bad_ones_as_gaps(redis_client):
    writer = TagStoreWriter(redis_client, 1000)
    for i, quality in enumerate([GOOD, GOOD, BAD_SENSOR_FAILURE, GOOD]):
        writer.submit(TagValue("T1.level", float(i), quality, 1_000 + i, 1_000 + i))
    for i, value in enumerate([True, False]):
        writer.submit(TagValue("P1.run", value, GOOD, 2_000 + i, 2_000 + i))
    await writer.drain()
    assert await read_history(redis_client, INDEX["T1.level"], since_ms=0) == [
        (1_000, 0.0), (1_001, 1.0), (1_002, None), (1_003, 3.0)]
    assert await read_history(redis_client, INDEX["P1.run"], since_ms=0) == [(2_000, 1.0), (2_001, 0.0)]
    assert await read_history(redis_client, INDEX["T1.level"], since_ms=0, max_points=2) == [
        (1_002, None), (1_003, 3.0)]


def test_figure_has_one_line_per_pen_with_gaps_and_the_window():
    figure = trend_figure([(INDEX["T1.level"], [(0, 1.0), (1_000, None), (2_000, 2.0)]), (INDEX["P1.run"], [])],
                          window_min=5, now_ms=600_000, utc_offset_min=0)
    level, run = figure.data
    assert list(level.y) == [1.0, None, 2.0] and level.connectgaps is False
    assert level.name == "T1.level [m]" and level.meta == {"tag": "T1.level", "last_ts": 2_000}
    assert run.line.shape == "hv"
    assert figure.layout.xaxis.range == ("1970-01-01 00:05:00.000", "1970-01-01 00:10:00.000")
    assert figure.layout.meta["window_ms"] == 300_000
    empty = trend_figure([], 15, 0, 0)
    assert empty.layout.annotations[0].text == "Choose tags to trend"


async def test_the_value_in_force_at_the_window_start_is_carried_in(redis_client):
    writer = TagStoreWriter(redis_client, 1000)
    writer.submit(TagValue("T1.level", 4.0, GOOD, 1_000, 1_000))
    writer.submit(TagValue("P1.run", True, GOOD, 1_000, 1_000))
    writer.submit(TagValue("P1.run", None, BAD_SENSOR_FAILURE, 1_001, 1_001))
    await writer.drain()
    window_start_ms = int(time.time() * 1000) + 60_000  # later than every stored sample
    # A setpoint written an hour ago still holds: the pen starts at the window's left edge.
    assert await read_history(redis_client, INDEX["T1.level"], since_ms=window_start_ms) == [(window_start_ms, 4.0)]
    # A Bad last sample carries nothing in: the window starts with a gap.
    assert await read_history(redis_client, INDEX["P1.run"], since_ms=window_start_ms) == []


def test_a_live_value_is_held_up_to_now_and_a_gap_is_not():
    assert hold_to_now([(1_000, 4.0)], 5_000) == [(1_000, 4.0), (5_000, 4.0)]
    assert hold_to_now([(1_000, 4.0), (2_000, None)], 5_000) == [(1_000, 4.0), (2_000, None)]
    assert hold_to_now([], 5_000) == []


def test_setpoints_and_states_are_drawn_in_steps_measurements_as_lines():
    setpoint = INDEX["T1.level"].model_copy(update={"writable": True})
    figure = trend_figure([(INDEX["T1.level"], [(0, 1.0)]), (setpoint, [(0, 1.0)])], 5, 600_000, 0)
    assert [trace.line.shape for trace in figure.data] == ["linear", "hv"]
