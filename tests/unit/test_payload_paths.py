"""Value paths, timestamps and payload decoding: the pure part of the MQTT source."""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.config_model import DataType, Tag
from domain.payload_paths import (
    MAX_PAYLOAD_BYTES,
    PayloadDecodingError,
    PayloadTypeMismatch,
    ValuePathSyntaxError,
    coerce_to_data_type,
    extract_value,
    format_value_path,
    parse_json_document,
    parse_timestamp_ms,
    parse_value_path,
    read_tags_from_payload,
)
from domain.quality import BAD_DECODING_ERROR, BAD_TYPE_MISMATCH, GOOD

RECEIVED_MS = 1_700_000_000_000


def mqtt_tag(name: str, value_path: str | None = None, data_type: DataType = DataType.FLOAT) -> Tag:
    return Tag(name=name, source="m", topic="t", value_path=value_path, data_type=data_type)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("value", ("value",)),
        ("discharge.pressure", ("discharge", "pressure")),
        ("sensors[2].value", ("sensors", 2, "value")),
        ("grid[1][0]", ("grid", 1, 0)),
        ("[0].reading", (0, "reading")),
        ("a-b.c_d", ("a-b", "c_d")),
    ],
)
def test_value_paths_parse_into_keys_and_indices(path, parts):
    assert parse_value_path(path) == parts


@pytest.mark.parametrize("path", ["", ".a", "a.", "a..b", "a[x]", "a[-1]", "a[1", "a]", "a[1]b", "a.[0]"])
def test_malformed_value_paths_are_refused(path):
    with pytest.raises(ValuePathSyntaxError):
        parse_value_path(path)


def test_extract_follows_keys_and_indices():
    document = {"sensors": [{"value": 1}, {"value": 2}, {"value": 3.5}]}
    assert extract_value(document, parse_value_path("sensors[2].value")) == 3.5


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("missing", "key 'missing' is missing at the top level"),
        ("sensors[5].value", "index [5] is past the end of the list at sensors (1 items)"),
        ("sensors.value", "no object at sensors for key 'value'"),
        ("sensors[0].value[0]", "no list at sensors[0].value for index [0]"),
    ],
)
def test_extract_names_what_is_missing(path, reason):
    with pytest.raises(PayloadTypeMismatch, match=re.escape(reason)):
        extract_value({"sensors": [{"value": 1}]}, parse_value_path(path))


keys = st.text(st.characters(blacklist_characters=".[]", blacklist_categories=("Cs",)), min_size=1, max_size=8)
path_parts = st.lists(st.one_of(keys, st.integers(0, 50)), min_size=1, max_size=6)


@given(path_parts)
def test_format_then_parse_gives_back_the_parts(parts):
    assert parse_value_path(format_value_path(tuple(parts))) == tuple(parts)


def nest(parts: list, leaf):
    """The smallest document in which `parts` leads to `leaf`."""
    node = leaf
    for part in reversed(parts):
        node = [None] * part + [node] if isinstance(part, int) else {part: node}
    return node


@given(path_parts, st.integers() | st.text(max_size=5) | st.booleans())
def test_extract_finds_the_leaf_of_any_document_built_along_the_path(parts, leaf):
    document = nest(parts, leaf)
    # Through JSON and back: what a broker would carry.
    assert extract_value(json.loads(json.dumps(document)), parse_value_path(format_value_path(tuple(parts)))) == leaf


@given(st.text(max_size=30))
def test_any_text_parses_or_is_refused_cleanly(text):
    try:
        parts = parse_value_path(text)
    except ValuePathSyntaxError:
        return
    assert parts and format_value_path(parts) == text


@pytest.mark.parametrize(
    ("raw", "expected_ms"),
    [
        (1_700_000_000, 1_700_000_000_000),
        (1_700_000_000.25, 1_700_000_000_250),
        (1_700_000_000_123, 1_700_000_000_123),
        ("1700000000", 1_700_000_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T23:13:20.5+01:00", 1_700_000_000_500),
        ("2023-11-14T22:13:20", 1_700_000_000_000),  # naive means UTC
    ],
)
def test_timestamps_in_iso_and_epoch_forms(raw, expected_ms):
    assert parse_timestamp_ms(raw) == expected_ms


@pytest.mark.parametrize("raw", [True, None, "yesterday", -5, float("nan"), [1], "2023-13-40T00:00:00Z"])
def test_bad_timestamps_are_refused(raw):
    with pytest.raises(ValueError):
        parse_timestamp_ms(raw)


@given(st.integers(min_value=0, max_value=4_000_000_000_000))
def test_epoch_milliseconds_and_seconds_agree(ms):
    whole_seconds_ms = (ms // 1000) * 1000
    if ms >= 1e11:
        assert parse_timestamp_ms(ms) == ms
    assert parse_timestamp_ms(whole_seconds_ms / 1000) == whole_seconds_ms


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)))
def test_iso_timestamps_round_trip(moment):
    assert parse_timestamp_ms(moment.isoformat()) == round(moment.timestamp() * 1000)


@pytest.mark.parametrize("text", ["NaN", "[1, Infinity]", '{"v": -Infinity}'])
def test_json_nan_and_infinity_are_decoding_errors(text):
    with pytest.raises(PayloadDecodingError):
        parse_json_document(text)


@pytest.mark.parametrize(
    ("raw", "data_type", "value"),
    [
        (3, DataType.FLOAT, 3.0),
        ("2.5", DataType.FLOAT, 2.5),
        (4.0, DataType.INT, 4),
        ("7", DataType.INT, 7),
        (True, DataType.BOOL, True),
        (0, DataType.BOOL, False),
        ("ON", DataType.BOOL, True),
        ("open", DataType.STRING, "open"),
        (12, DataType.STRING, "12"),
    ],
)
def test_coercion_to_the_tag_data_type(raw, data_type, value):
    coerced = coerce_to_data_type(raw, data_type)
    assert coerced == value and type(coerced) is type(value)


@pytest.mark.parametrize(
    ("raw", "data_type"),
    [(True, DataType.FLOAT), ("abc", DataType.FLOAT), ({"a": 1}, DataType.FLOAT), (4.5, DataType.INT),
     (2, DataType.BOOL), ("maybe", DataType.BOOL), ([1], DataType.STRING), (None, DataType.FLOAT)],
)
def test_wrong_types_are_type_mismatches(raw, data_type):
    with pytest.raises(PayloadTypeMismatch):
        coerce_to_data_type(raw, data_type)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_floats_survive_coercion(number):
    assert coerce_to_data_type(number, DataType.FLOAT) == number


def test_one_message_feeds_several_tags_with_the_source_time_from_ts():
    tags = [mqtt_tag("p", "discharge.pressure"), mqtt_tag("run", "motor.running", DataType.BOOL),
            mqtt_tag("third", "sensors[1].value", DataType.INT)]
    tags = [tag.model_copy(update={"timestamp_path": "ts"}) for tag in tags]
    payload = json.dumps({"ts": "2023-11-14T22:13:20Z", "discharge": {"pressure": 7.5},
                          "motor": {"running": True}, "sensors": [{"value": 1}, {"value": 2}]}).encode()
    readings = read_tags_from_payload(payload, tags, RECEIVED_MS + 5)
    assert [(tv.tag, tv.value, tv.quality, error) for tv, error in readings] == [
        ("p", 7.5, GOOD, None), ("run", True, GOOD, None), ("third", 2, GOOD, None)]
    assert {tv.source_time_ms for tv, _ in readings} == {1_700_000_000_000}
    assert not any(tv.source_time_is_receive_time for tv, _ in readings)


def test_plain_payload_uses_the_receive_time_and_says_so():
    [(tv, error)] = read_tags_from_payload(b" 42.5\n", [mqtt_tag("power")], RECEIVED_MS)
    assert (tv.value, tv.quality, error, tv.source_time_ms, tv.source_time_is_receive_time) == (
        42.5, GOOD, None, RECEIVED_MS, True)


@pytest.mark.parametrize(
    ("payload", "quality"),
    [
        (b"not json", BAD_DECODING_ERROR),
        (b'{"v": NaN}', BAD_DECODING_ERROR),
        (b"\xff\xfe\x00", BAD_DECODING_ERROR),
        (b'{"other": 1}', BAD_TYPE_MISMATCH),
        (b'{"v": "high"}', BAD_TYPE_MISMATCH),
        (b'{"v": ' + b"1" * (MAX_PAYLOAD_BYTES + 1) + b"}", BAD_DECODING_ERROR),
    ],
)
def test_bad_payloads_give_a_bad_value_and_the_reason(payload, quality):
    [(tv, error)] = read_tags_from_payload(payload, [mqtt_tag("x", "v")], RECEIVED_MS)
    assert tv.quality == quality and tv.value is None and error is not None and error.quality == quality


def test_a_missing_path_spoils_only_its_own_tag():
    tags = [mqtt_tag("present", "a"), mqtt_tag("absent", "b")]
    good, bad = read_tags_from_payload(b'{"a": 1}', tags, RECEIVED_MS)
    assert good[0].quality == GOOD and good[1] is None
    assert bad[0].quality == BAD_TYPE_MISMATCH and "key 'b' is missing" in str(bad[1])


@pytest.mark.parametrize("payload", [b"nan", b"inf", b"-Infinity"])
def test_plain_nan_and_infinity_are_bad(payload):
    [(tv, _error)] = read_tags_from_payload(payload, [mqtt_tag("x")], RECEIVED_MS)
    assert tv.quality == BAD_DECODING_ERROR


def test_nan_never_reaches_a_good_value():
    for tv, _ in read_tags_from_payload(b'{"v": 1e400}', [mqtt_tag("x", "v")], RECEIVED_MS):
        assert tv.quality != GOOD or math.isfinite(tv.value)
