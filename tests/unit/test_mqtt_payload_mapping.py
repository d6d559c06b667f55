"""Per-tag timestamp and quality paths, error kinds, topic templates and availability bookkeeping (pure)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_sources.mqtt_availability import AvailabilityTracker
from data_sources.mqtt_templates import Outcome, TopicTemplate, fill_template, topic_matches
from domain.config_model import DataType, MqttSource, MqttTopicTemplate, Tag
from domain.payload_paths import PAYLOAD_ERROR_KINDS, PayloadError, parse_quality, read_tags_from_payload
from domain.quality import BAD, BAD_SENSOR_FAILURE, BAD_TYPE_MISMATCH, GOOD, UNCERTAIN

RECEIVED_MS = 1_700_000_000_000


def tag(name="x", **settings) -> Tag:
    return Tag(name=name, source="m", topic="t", **{"value_path": "v", **settings})


@pytest.mark.parametrize(("raw", "quality"), [
    (True, GOOD), (False, BAD), ("good", GOOD), (" GOOD ", GOOD), ("Uncertain", UNCERTAIN), ("bad", BAD),
    ("BadSensorFailure", BAD_SENSOR_FAILURE), (0, GOOD), (0x808C0000, BAD_SENSOR_FAILURE),
    (192, GOOD), (216, GOOD), (64, UNCERTAIN), (68, UNCERTAIN), (8, BAD), (24, BAD), (128, BAD), (192.0, GOOD),
])
def test_quality_fields_map_to_status_codes(raw, quality):
    assert parse_quality(raw) == quality


@pytest.mark.parametrize("raw", ["fine", None, [], {}, -1, 256, 0x3FFFFFFF, 2**32, 1.5, float("nan")])
def test_anything_else_as_quality_is_refused(raw):
    with pytest.raises(ValueError, match="quality"):
        parse_quality(raw)


def read(document: object, *tags: Tag):
    return read_tags_from_payload(json.dumps(document).encode(), list(tags), RECEIVED_MS)


def test_timestamp_and_quality_come_from_each_tags_own_paths():
    [(a, _), (b, _)] = read({"v": 1.5, "meta": {"t": 1_700_000_001, "q": 64}, "t2": "2023-11-14T22:13:25.5Z"},
                            tag("a", timestamp_path="meta.t", quality_path="meta.q"), tag("b", timestamp_path="t2"))
    assert (a.value, a.quality, a.source_time_ms, a.source_time_is_receive_time) == (
        1.5, UNCERTAIN, 1_700_000_001_000, False)
    assert (b.quality, b.source_time_ms) == (GOOD, 1_700_000_005_500)


def test_epoch_milliseconds_and_a_missing_time_field():
    [(tv, _)] = read({"v": 1, "t": 1_700_000_000_123}, tag(timestamp_path="t"))
    assert tv.source_time_ms == 1_700_000_000_123
    [(tv, error)] = read({"v": 1}, tag(timestamp_path="t"))
    assert error is None and tv.source_time_is_receive_time and tv.source_time_ms == RECEIVED_MS


@pytest.mark.parametrize(("document", "kind"), [
    ({"v": 1, "t": "yesterday"}, "bad_timestamp"),
    ({"v": 1, "t": True}, "bad_timestamp"),
    ({"v": 1, "q": "fine"}, "bad_quality"),
    ({"v": 1}, "bad_quality"),
])
def test_an_unusable_time_or_quality_makes_the_tag_bad(document, kind):
    [(tv, error)] = read(document, tag(timestamp_path="t", quality_path="q" if kind == "bad_quality" else None))
    assert (tv.value, tv.quality, error.kind) == (None, BAD_TYPE_MISMATCH, kind)


@pytest.mark.parametrize(("payload", "kind"), [
    (b"{oops", "not_json"), (b'{"v": NaN}', "not_finite"), (b'{"v": 1e999}', "not_finite"),
    (b"\xc3\x28", "not_utf8"), (b'{"v": "x"}', "wrong_type"), (b'{"v": [1]}', "wrong_type"),
    (b'{"v": 1, "pad": "' + b"x" * 100 + b'"}', "too_large"), (b"[" * 100_000, "not_json"),
])
def test_each_bad_payload_has_a_kind(payload, kind):
    [(tv, error)] = read_tags_from_payload(payload, [tag()], RECEIVED_MS, max_payload_bytes=64 if kind == "too_large"
                                           else 1_000_000)
    assert tv.quality.is_bad and error.kind == kind


def test_topic_filters_match_like_mqtt():
    assert topic_matches("plant/+/temperature".split("/"), "plant/r1/temperature".split("/"))
    assert not topic_matches("plant/+/temperature".split("/"), "plant/r1/x/temperature".split("/"))
    assert topic_matches("plant/#".split("/"), "plant/a/b".split("/"))
    assert topic_matches("plant/#".split("/"), ["plant"])
    assert not topic_matches("+/x".split("/"), "$SYS/x".split("/"))


def test_levels_are_counted_from_zero():
    assert fill_template("{1}.temperature", ["plant", "r201", "temperature"]) == "r201.temperature"
    assert fill_template("{0}-{2}", ["a", "b", "c"]) == "a-c"
    assert fill_template("{3}", ["a"]) is None


def test_a_template_makes_each_tag_once_and_no_more_than_max_tags():
    template = TopicTemplate(MqttTopicTemplate(topic="plant/+/temperature", tag="{1}.temperature", unit="degC",
                                               area="{1}", max_tags=2), "broker", 30.0, 1)
    outcome, made = template.make_tag("plant/r1/temperature", ["plant", "r1", "temperature"], set())
    assert outcome is Outcome.CREATED and (made.name, made.area, made.unit, made.max_age_s, made.topic) == (
        "r1.temperature", "r1", "degC", 30.0, "plant/r1/temperature")
    assert template.make_tag("plant/bad name/temperature", ["plant", "bad name", "temperature"], set())[0] \
        is Outcome.INVALID_NAME
    assert template.make_tag("plant/r2/temperature", ["plant", "r2", "temperature"], {"r2.temperature"})[0] \
        is Outcome.NAME_TAKEN
    assert template.make_tag("plant/r3/temperature", ["plant", "r3", "temperature"], set())[0] is Outcome.CREATED
    assert template.make_tag("plant/r4/temperature", ["plant", "r4", "temperature"], set())[0] is Outcome.LIMIT_REACHED
    assert len(template.made) == 2


def test_availability_by_device_levels():
    config = MqttSource(kind="mqtt", availability={"topic": "site/gateway"}, topic_templates=[
        {"topic": "plant/+/temperature", "tag": "{1}.t", "availability": {"topic": "plant/+/status"}},
        {"topic": "other/+/v", "tag": "{1}.v"}])
    templates = [TopicTemplate(t, "m", None, 1) for t in config.topic_templates]
    configured = [Tag(name="fixed", source="m", topic="site/x")]
    tracker = AvailabilityTracker(config, templates, configured)
    assert sorted(tracker.topics()) == ["plant/+/status", "site/gateway"]
    for template, topic in [(templates[0], "plant/r1/temperature"), (templates[0], "plant/r2/temperature"),
                            (templates[1], "other/k/v")]:
        _outcome, made = template.make_tag(topic, topic.split("/"), set())
        tracker.add_template_tag(made, template, topic.split("/"))
    assert tracker.watches("plant/r1/status") and not tracker.watches("plant/r1/temperature")
    assert tracker.announce("plant/r1/status", b"offline") == (False, ["r1.t"])
    assert tracker.is_offline("r1.t") and not tracker.is_offline("r2.t")
    assert tracker.announce("site/gateway", b" OFFLINE\n") == (False, ["fixed", "k.v"])
    assert tracker.announce("plant/r1/status", b"maybe") == (None, [])
    assert tracker.announce("plant/r1/status", b"online") == (True, ["r1.t"])
    assert not tracker.is_offline("r1.t") and tracker.is_offline("fixed")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["v", "t", "q"]), inner, max_size=3),
    max_leaves=8)


@given(st.one_of(json_values, st.floats()))
def test_a_quality_field_is_a_quality_or_a_payload_error(raw):
    try:
        quality = parse_quality(raw)
    except PayloadError as exc:
        assert exc.kind == "bad_quality"
    else:
        assert 0 <= quality.code <= 0xFFFFFFFF


@given(st.one_of(st.binary(max_size=60), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_payload_gives_one_reading_per_tag_with_a_known_kind(payload):
    tags = [tag("a", timestamp_path="t", quality_path="q"), tag("b", value_path=None, data_type=DataType.INT)]
    readings = read_tags_from_payload(payload, tags, RECEIVED_MS)
    assert [tv.tag for tv, _ in readings] == ["a", "b"]
    for tv, error in readings:
        assert (error is None) == (tv.value is not None)
        assert error is None or error.kind in PAYLOAD_ERROR_KINDS
