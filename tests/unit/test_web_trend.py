"""The trend figure and its history: pens, axes per unit or normalised, limits, setpoints, Bad bands,
times in the browser's zone, the pen picker, and every pen queried at once."""
from __future__ import annotations

import json
import time

from domain.config_model import Tag
from domain.quality import BAD_NO_COMMUNICATION, GOOD
from domain.tag_value import TagValue
from tag_store.writer import TagStoreWriter
from tests.unit.web_plant import small_plant
from web.history_query import PenHistory
from web.trend_axes import PenAxis, assign_axes, axes_layout, normal_scale
from web.trend_figure import (
    FigureView, Pen, axis_ms, axis_x, local_time_text, parse_pens, pen_options, png_name, trend_figure,
)
from web.trend_history import answer_notes, hold_to_now, query_pens, setpoints_to_query
from web.trend_overlays import band_trace, limit_lines, limit_shapes, setpoint_tag

PLANT = small_plant()
INDEX = {t.name: t for t in PLANT.tags}
LEVEL, SETPOINT, RUN, COUNT, FLOW = (INDEX[n] for n in ("T1.level", "T1.setpoint", "P1.run", "C1.count", "M1.flow"))


def history(tag: Tag, points: list[tuple[int, float | None]], **fields) -> PenHistory:
    base = {"tag": tag.name, "unit": tag.unit, "start_ms": points[0][0] if points else 0,
            "end_ms": points[-1][0] if points else 1, "ts_ms": [t for t, _ in points],
            "values": [v for _, v in points], "quality_bad_periods": [], "quality_uncertain_periods": [],
            "raw_count": len(points), "downsampled": False, "resolution": "raw",
            "raw_from_ms": points[0][0] if points else 0, "tiers": ("redis",), "truncated": False}
    return PenHistory(**{**base, **fields})


def view(start_ms=0, end_ms=600_000, offset=0, **fields) -> FigureView:
    return FigureView(start_ms, end_ms, offset, **fields)


def pen_traces(figure):
    return [t for t in figure["data"] if t["meta"].get("role") == "pen"]


def test_pens_come_from_the_address_known_tags_only_without_repeats():
    assert parse_pens("T1.level, nope,M1.flow,T1.level", INDEX) == ["T1.level", "M1.flow"]
    assert parse_pens(["P1.run"], INDEX) == ["P1.run"]
    assert parse_pens(None, INDEX) == []


def test_the_pen_picker_searches_name_description_and_unit_and_limits_what_it_sends():
    many = [*PLANT.tags, *(Tag(name=f"F{i:04d}.temp", source="mq", topic=f"t/{i}", description="found")
                           for i in range(1000))]
    first = pen_options(many, None, ["F0999.temp"], limit=50)
    assert first[:3] == [{"label": "T1.level: Tank level [m]", "value": "T1.level"},
                         {"label": "T1.setpoint: Valve setpoint [%]", "value": "T1.setpoint"},
                         {"label": "P1.run: Pump run", "value": "P1.run"}]
    assert len(first) == 51 and first[-1]["value"] == "F0999.temp"  # the chosen pen stays, past the limit
    assert [o["value"] for o in pen_options(many, "f050 FOUND", [], limit=50)] == [
        f"F{i:04d}.temp" for i in range(500, 510)]
    assert [o["value"] for o in pen_options(PLANT.tags, "m3/h", [])] == ["M1.flow"]  # by unit
    assert [o["value"] for o in pen_options(PLANT.tags, "tank", [])] == ["T1.level"]  # by description
    text = Tag(name="S1.text", source="mq", topic="t/s", data_type="string")
    assert pen_options([text], "", []) == []


def test_times_are_the_browsers_wall_clock_and_read_back_from_plotly():
    assert local_time_text(0, 0) == "1970-01-01 00:00:00.000"
    assert local_time_text(1_500, 120) == "1970-01-01 02:00:01.500"
    assert axis_x(1_500, 120) == 7_201_500
    assert axis_ms(7_201_500, 120) == 1_500
    assert axis_ms("1970-01-01 02:00:01.5", 120) == 1_500
    assert axis_ms("1970-01-01 02:00:01.500", 120) == 1_500
    assert axis_ms("1970-01-01 02:00", 120) == 0
    assert axis_ms("1970-01-01", 0) == 0
    assert axis_ms("yesterday", 0) is None and axis_ms(None, 0) is None and axis_ms(True, 0) is None


def test_one_axis_per_unit_and_normalised_beyond_four_units():
    mode, axes, titles, notes = assign_axes([LEVEL, FLOW, LEVEL.model_copy(update={"name": "T2.level"})], "unit")
    assert mode == "unit" and titles == ["m", "m3/h"] and [a.ref for a in axes] == ["y2", "y3", "y2"]
    assert all(a.scale is None for a in axes) and notes == []
    five = [LEVEL, FLOW, SETPOINT, COUNT, RUN]  # m, m3/h, %, items, 0/1
    mode, axes, titles, notes = assign_axes(five, "unit")
    assert mode == "normalised" and titles == ["% of range"] and "5 units" in notes[0]
    layout = axes_layout(["m", "m3/h", "%", "items"])
    assert [layout[f"yaxis{i}"]["side"] for i in (2, 3, 4, 5)] == ["left", "right", "left", "right"]
    assert layout["yaxis4"]["anchor"] == "free" and layout["yaxis"]["visible"] is False
    assert 0 < layout["xaxis"]["domain"][0] and layout["xaxis"]["domain"][1] < 1


def test_normalised_pens_are_percent_of_their_engineering_range():
    assert normal_scale(LEVEL) == (0.0, 5.0)
    assert normal_scale(RUN) == (0.0, 1.0)
    assert normal_scale(COUNT, [3.0, None, 7.0]) == (3.0, 7.0)  # no range: the values' own span
    assert normal_scale(COUNT, [4.0]) == (3.0, 5.0)
    mode, axes, _titles, notes = assign_axes([LEVEL, COUNT], "normalised", [[1.0], [3.0, 7.0]])
    assert axes[0].to_axis(1.0) == 20.0 and axes[1].to_axis(5.0) == 50.0
    assert notes == ["No engineering range, scaled to the values shown: C1.count."]
    figure = trend_figure([Pen(LEVEL, history(LEVEL, [(0, 1.0), (1_000, None), (2_000, 2.5)]))],
                          view(axes="normalised"))
    level = pen_traces(figure)[0]
    assert level["y"] == [20.0, None, 50.0] and level["customdata"] == [1.0, None, 2.5]
    assert "%{customdata" in level["hovertemplate"] and " m" in level["hovertemplate"]
    assert level["meta"]["scale"] == [0.0, 5.0]


def test_limits_are_grey_dashed_labelled_lines_on_the_pens_axis():
    assert limit_lines(LEVEL) == [("HH", 4.5), ("L", 0.5)]
    assert limit_lines(FLOW) == [] and setpoint_tag(LEVEL) is None
    shapes = limit_shapes(LEVEL, PenAxis(1, None))
    assert [s["label"]["text"] for s in shapes] == ["T1.level HH 4.5", "T1.level L 0.5"]
    assert {s["yref"] for s in shapes} == {"y3"} and shapes[0]["y0"] == 4.5
    assert shapes[0]["line"]["dash"] == "dash" and shapes[0]["line"]["color"] == "#6f6f6f"
    assert limit_shapes(LEVEL, PenAxis(0, (0.0, 5.0)))[0]["y0"] == 90.0  # normalised: % of range


def test_a_deviation_alarms_setpoint_is_queried_once_and_drawn_dotted_on_the_pens_axis():
    temperature = Tag.model_validate({
        "name": "R1.temp", "source": "opc", "node_id": "ns=2;s=T", "unit": "degC",
        "alarms": {"deviation": {"setpoint_tag": "R1.sp", "limit": 5}}})
    sp = Tag(name="R1.sp", source="opc", node_id="ns=2;s=SP", unit="degC", writable=True)
    index = {**INDEX, "R1.temp": temperature, "R1.sp": sp}
    assert setpoint_tag(temperature) == "R1.sp"
    assert setpoints_to_query([temperature, LEVEL], index) == [sp]
    assert setpoints_to_query([temperature, sp], index) == []  # already a pen
    figure = trend_figure([Pen(temperature, history(temperature, [(0, 60.0)]), (sp, history(sp, [(0, 65.0)])))],
                          view())
    pen_line, setpoint_line = figure["data"]
    assert setpoint_line["meta"]["role"] == "setpoint" and setpoint_line["line"]["dash"] == "dot"
    assert setpoint_line["yaxis"] == pen_line["yaxis"] and setpoint_line["line"]["color"] == pen_line["line"]["color"]
    assert setpoint_line["line"]["shape"] == "hv" and setpoint_line["name"] == "R1.sp (setpoint of R1.temp)"


def test_bad_and_uncertain_periods_are_hatched_bands_with_one_legend_entry_each():
    bad = band_trace("bad", [(1_000, 2_000), (1_500, 3_000), (5_000, 6_000)], lambda ms: ms, 10_000)
    assert bad["x"] == [1_000, 1_000, 3_000, 3_000, 1_000, None, 5_000, 5_000, 6_000, 6_000, 5_000, None]
    assert bad["yaxis"] == "y" and bad["fill"] == "toself" and bad["name"] == "Bad/no data"
    assert bad["fillpattern"]["shape"] == "/" and bad["hoverinfo"] == "skip"
    assert band_trace("bad", [], lambda ms: ms, 10_000) is None
    many = band_trace("uncertain", [(i * 10, i * 10 + 1) for i in range(5_000)], lambda ms: ms, 50_000)
    assert len(many["x"]) <= 400 * 6 and many["name"] == "Uncertain"

    pens = [Pen(LEVEL, history(LEVEL, [(0, 1.0), (1_000, None), (2_000, 2.0)], quality_bad_periods=[(1_000, 2_000)])),
            Pen(FLOW, history(FLOW, [(0, 1.0)], quality_bad_periods=[(4_000, 5_000)],
                              quality_uncertain_periods=[(0, 500)]))]
    figure = trend_figure(pens, view())
    bands = {t["meta"]["band"]: t for t in figure["data"] if "band" in t["meta"]}
    assert set(bands) == {"bad", "uncertain"} and bands["bad"]["x"].count(None) == 2


def test_the_figure_has_gapped_lines_per_pen_a_crosshair_and_the_view():
    figure = trend_figure([Pen(LEVEL, history(LEVEL, [(0, 1.0), (1_000, None), (2_000, 2.0)])),
                           Pen(RUN, history(RUN, []))],
                          view(0, 600_000, 60, live=True, extend=True, png_name="trend-x"))
    level, run = pen_traces(figure)
    assert level["y"] == [1.0, None, 2.0] and level["connectgaps"] is False
    assert level["x"] == [3_600_000, 3_601_000, 3_602_000]  # shifted by the browser's offset
    assert level["name"] == "T1.level [m]" and level["meta"]["tag"] == "T1.level" and level["meta"]["last_ts"] == 2_000
    assert level["line"]["shape"] == "linear" and run["line"]["shape"] == "hv"
    assert level["line"]["color"] != run["line"]["color"]
    layout = figure["layout"]
    assert layout["hovermode"] == "x unified" and layout["xaxis"]["showspikes"] is True
    assert layout["hoverdistance"] == -1
    assert layout["xaxis"]["range"] == [3_600_000, 4_200_000] and layout["xaxis"]["type"] == "date"
    assert layout["meta"]["window_ms"] == 600_000 and layout["meta"]["live"] and layout["meta"]["extend"]
    assert layout["meta"]["png_name"] == "trend-x"
    empty = trend_figure([], view())
    assert empty["layout"]["annotations"][0]["text"] == "Choose tags to trend"


def test_pen_colours_are_stable_per_position():
    first = trend_figure([Pen(LEVEL, None), Pen(FLOW, None)], view())
    second = trend_figure([Pen(COUNT, None), Pen(LEVEL, None)], view())
    assert [t["line"]["color"] for t in pen_traces(first)] == [t["line"]["color"] for t in pen_traces(second)]


def test_eight_pens_over_thirty_days_stay_small():
    start = int(time.time() * 1000) - 30 * 86_400_000
    pens = [Pen(LEVEL.model_copy(update={"name": f"T{i}.level"}),
                history(LEVEL, [(start + j * 518_400, 1.234567891 + j / 7) for j in range(5_000)]))
            for i in range(8)]
    body = json.dumps(trend_figure(pens, view(start, start + 30 * 86_400_000)))
    assert len(body) < 8 * 5_000 * 30  # about 24 bytes a point: shifted epoch ms and six digits


def test_png_names_say_what_and_when():
    assert png_name(["T1.level"], 0, 0) == "trend-T1.level-19700101-0000"
    assert png_name(["a", "b"], 0, 60) == "trend-2-pens-19700101-0100"


def test_notes_say_what_the_answers_mean():
    tagged = history(LEVEL, [(0, None)], quality_bad_periods=[(0, 10)], notes=("older history unavailable (x)",))
    coarse = history(FLOW, [(0, 1.0), (60_000, 2.0)], resolution="rollup_1min+raw", raw_from_ms=60_000)
    thin = history(COUNT, [(0, 1.0)], raw_count=12_345, downsampled=True)
    from web.trend_history import PenAnswer  # noqa: PLC0415

    notes = answer_notes([PenAnswer(LEVEL, tagged), PenAnswer(FLOW, coarse), PenAnswer(COUNT, thin),
                          PenAnswer(RUN, None, "history unavailable (Redis): gone")], 0)
    assert notes == [
        "T1.level: no data in this range.",
        "T1.level: Bad or no data in 1 period (hatched).",
        "T1.level: older history unavailable (x)",
        "M1.flow: 1-minute min/max before 1970-01-01 00:01, raw samples after; zoom in for more detail.",
        "C1.count: 12,345 samples drawn as 1 points (peaks, dips and gaps kept); zoom in for every sample.",
        "P1.run: history unavailable (Redis): gone",
    ]


def test_a_note_every_pen_got_is_said_once_first():
    from web.trend_history import PenAnswer  # noqa: PLC0415

    down = "History is not being written to disk (historian not running)"
    notes = answer_notes([PenAnswer(LEVEL, history(LEVEL, [(0, 1.0)], notes=(down,))),
                          PenAnswer(FLOW, history(FLOW, [(0, 2.0)], notes=(down, "older history unavailable")))], 0)
    assert notes == [down, "M1.flow: older history unavailable"]


def test_a_live_value_is_held_up_to_now_and_a_gap_is_not():
    assert hold_to_now([(1_000, 4.0)], 5_000) == [(1_000, 4.0), (5_000, 4.0)]
    assert hold_to_now([(1_000, 4.0), (2_000, None)], 5_000) == [(1_000, 4.0), (2_000, None)]
    assert hold_to_now([], 5_000) == []


class _Runtime:
    def __init__(self, redis):
        self.redis = redis
        self.config = PLANT
        self.board = type("Board", (), {"entries": {}})()


async def test_every_pen_is_queried_at_once_and_a_text_tag_answers_with_its_reason(redis_client):
    now = int(time.time() * 1000)
    writer = TagStoreWriter(redis_client, 1000)
    for i, quality in enumerate([GOOD, BAD_NO_COMMUNICATION, GOOD]):
        writer.submit(TagValue("T1.level", float(i), quality, now - 3_000 + i * 1_000, now - 3_000 + i * 1_000))
    writer.submit(TagValue("M1.flow", 7.0, GOOD, now - 2_000, now - 2_000))
    await writer.drain()
    text = Tag(name="S1.text", source="mq", topic="t/s", data_type="string")
    answers, setpoints = await query_pens(_Runtime(redis_client), [LEVEL, FLOW, text], [], now - 10_000, now, 100)
    level, flow, words = answers
    assert level.history.values[-3:] == [0.0, None, 2.0] and level.history.quality_bad_periods
    assert flow.history.values[0] == 7.0 and setpoints == {}
    assert words.history is None and "text values are not trended" in words.error
