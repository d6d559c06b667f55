"""Sparkplug B host logic: topics, values by type, births, seq, aliases, deaths, names; the decoder on any bytes."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_sources.sparkplug.codec import decode, encode
from domain.config_model import PlantConfig, SparkplugSource, Tag
from domain.quality import BAD_DECODING_ERROR, BAD_TYPE_MISMATCH, GOOD
from domain.sparkplug_host import Problem, RebirthLimiter, SparkplugHost
from domain.sparkplug_model import (
    BAD_NO_DATA,
    MessageType,
    Metric,
    MetricKey,
    NodeKey,
    Payload,
    SparkplugDecodeError,
    check_tag_template,
    coerce_value,
    parse_metric_address,
    parse_topic,
    raw_for_write,
    tag_name_for,
)
from domain.sparkplug_model import (
    SparkplugType as T,
)

NODE = NodeKey("Plant1", "Edge1")
TEMPLATE = "{group}.{node}.{device}.{metric}"


def topic(kind: str, device: str = ""):
    return parse_topic(f"spBv1.0/Plant1/{kind}/Edge1" + (f"/{device}" if device else ""))


def nbirth(seq: int = 0, bd_seq: int = 7) -> Payload:
    return Payload(timestamp_ms=1000, seq=seq, metrics=(
        Metric(name="bdSeq", datatype=T.INT64, raw=bd_seq),
        Metric(name="Node Control/Rebirth", datatype=T.BOOLEAN, raw=False, alias=1),
        Metric(name="Uptime", datatype=T.UINT64, raw=2**64 - 1, alias=2, timestamp_ms=999),
    ))


def dbirth(seq: int) -> Payload:
    return Payload(timestamp_ms=1001, seq=seq, metrics=(
        Metric(name="Inputs/Temp", datatype=T.FLOAT, raw=21.5, alias=10, properties=(("EngineeringUnits", "degC"),)),
        Metric(name="Setpoint", datatype=T.INT32, raw=(-3) & 0xFFFFFFFF, alias=11),
    ))


def born_host() -> SparkplugHost:
    host = SparkplugHost()
    host.on_message(topic("NBIRTH"), nbirth(), 1)
    host.on_message(topic("DBIRTH", "Pump1"), dbirth(1), 1)
    return host


def test_topics():
    assert parse_topic("spBv1.0/G/DDATA/N/D") == parse_topic("spBv1.0/G/DDATA/N/D")
    t = parse_topic("spBv1.0/G/DDATA/N/D")
    assert (t.message_type, t.group, t.node, t.device) == (MessageType.DDATA, "G", "N", "D")
    assert parse_topic("spBv1.0/STATE/scada").message_type is MessageType.STATE
    for bad in ("spBv1.0/G/NDATA", "spBv1.0/G/NDATA/N/D", "spBv1.0/G/DDATA/N", "spBv1.0/G/XDATA/N",
                "other/G/NDATA/N", "spBv1.0//NDATA/N"):
        with pytest.raises(SparkplugDecodeError):
            parse_topic(bad)


@pytest.mark.parametrize(("datatype", "raw", "value"), [
    (T.INT8, 0xFF, -1), (T.INT8, 0xFFFFFFFF, -1), (T.INT16, 0x8000, -32768), (T.INT32, 0xFFFFFFFE, -2),
    (T.INT64, 2**64 - 1, -1), (T.INT64, 2**53 + 1, 2**53 + 1), (T.UINT64, 2**64 - 1, 2**64 - 1),
    (T.UINT8, 255, 255), (T.DATETIME, 1_700_000_000_000, 1_700_000_000_000),
    (T.FLOAT, 0.10000000149011612, 0.1), (T.DOUBLE, 0.1, 0.1), (T.BOOLEAN, True, True),
    (T.STRING, "a", "a"), (T.TEXT, "long", "long"),
])
def test_values_by_type(datatype, raw, value):
    got, quality = coerce_value(datatype, raw)
    assert got == value and type(got) is type(value) and quality == GOOD


def test_unusable_values_are_bad_with_a_reason():
    assert coerce_value(T.DOUBLE, float("nan"))[1] == BAD_DECODING_ERROR
    assert coerce_value(T.BOOLEAN, 1)[1] == BAD_TYPE_MISMATCH
    assert coerce_value(T.DATASET, b"x")[1] == BAD_TYPE_MISMATCH
    assert coerce_value(T.INT32, None)[1] == BAD_NO_DATA


@given(st.sampled_from([T.INT8, T.INT16, T.INT32, T.INT64, T.UINT8, T.UINT16, T.UINT32, T.UINT64]), st.data())
def test_integers_round_trip_exactly_through_a_write(datatype, data):
    bits = {T.INT8: 8, T.INT16: 16, T.INT32: 32, T.INT64: 64, T.UINT8: 8, T.UINT16: 16, T.UINT32: 32, T.UINT64: 64}
    n = bits[datatype]
    low, high = (-(2 ** (n - 1)), 2 ** (n - 1) - 1) if datatype <= T.INT64 else (0, 2**n - 1)
    value = data.draw(st.integers(low, high))
    assert coerce_value(datatype, raw_for_write(datatype, value)) == (value, GOOD)
    with pytest.raises(ValueError):
        raw_for_write(datatype, high + 1)


def test_births_give_values_aliases_and_discovery():
    host = SparkplugHost()
    outcome = host.on_message(topic("NBIRTH"), nbirth(), 5)
    uptime = next(u for u in outcome.updates if u.key.name == "Uptime")
    assert (uptime.value, uptime.source_time_ms, uptime.source_time_is_receive_time) == (2**64 - 1, 999, False)
    outcome = host.on_message(topic("DBIRTH", "Pump1"), dbirth(1), 5)
    assert [(b.key.address, b.unit) for b in outcome.births] == [
        ("Plant1/Edge1/Pump1/Inputs/Temp", "degC"), ("Plant1/Edge1/Pump1/Setpoint", "")]
    assert outcome.rebirth is None and not outcome.problems
    data = host.on_message(topic("DDATA", "Pump1"), Payload(timestamp_ms=2000, seq=2, metrics=(
        Metric(alias=10, raw=22.25), Metric(alias=11, raw=5, timestamp_ms=1990))), 6)
    assert [(u.key.name, u.value, u.source_time_ms) for u in data.updates] == [
        ("Inputs/Temp", 22.25, 2000), ("Setpoint", 5, 1990)]
    assert host.alias_of(MetricKey("Plant1", "Edge1", "Pump1", "Setpoint")) == 11
    assert host.datatype_of(MetricKey("Plant1", "Edge1", "Pump1", "Setpoint")) == T.INT32


def test_is_null_is_bad_at_receive_time():
    host = born_host()
    out = host.on_message(topic("DDATA", "Pump1"), Payload(timestamp_ms=2000, seq=2, metrics=(
        Metric(alias=10, is_null=True),)), 77)
    assert (out.updates[0].value, out.updates[0].quality, out.updates[0].source_time_ms) == (None, BAD_NO_DATA, 77)


def test_seq_wraps_and_gaps_ask_for_rebirth():
    host = SparkplugHost()
    host.on_message(topic("NBIRTH"), nbirth(seq=254), 1)
    for seq in (255, 0, 1):
        assert host.on_message(topic("NDATA"), Payload(seq=seq, metrics=(Metric(alias=2, raw=1),)), 1).rebirth is None
    gap = host.on_message(topic("NDATA"), Payload(seq=5, metrics=(Metric(alias=2, raw=1),)), 1)
    assert gap.rebirth == NODE and gap.problems == [Problem.SEQ_GAP] and len(gap.updates) == 1
    assert host.on_message(topic("NDATA"), Payload(seq=6), 1).rebirth is None


@given(st.integers(0, 255), st.integers(1, 600))
def test_seq_wraps_for_any_start(start, count):
    host = SparkplugHost()
    host.on_message(topic("NBIRTH"), nbirth(seq=start), 1)
    for i in range(1, count):
        assert host.on_message(topic("NDATA"), Payload(seq=(start + i) % 256), 1).rebirth is None


def test_unknown_alias_and_data_before_birth_ask_for_rebirth():
    host = born_host()
    out = host.on_message(topic("DDATA", "Pump1"), Payload(seq=2, metrics=(Metric(alias=99, raw=1),)), 1)
    assert out.rebirth == NODE and out.problems == [Problem.UNKNOWN_ALIAS] and not out.updates
    out = host.on_message(topic("DDATA", "Pump1"), Payload(seq=3, metrics=(Metric(alias=2, raw=1),)), 1)
    assert out.problems == [Problem.UNKNOWN_ALIAS], "a node metric's alias is not the device's"
    fresh = SparkplugHost()
    assert fresh.on_message(topic("NDATA"), Payload(seq=4), 1).problems == [Problem.NOT_BORN]
    assert host.on_message(topic("DDATA", "Other"), Payload(seq=4), 1).problems == [Problem.NOT_BORN]


def test_deaths():
    host = born_host()
    assert host.on_message(topic("DDEATH", "Pump1"), Payload(seq=2), 1).dead == [(NODE, "Pump1")]
    assert not host.is_alive(MetricKey("Plant1", "Edge1", "Pump1", "Setpoint"))
    assert host.is_alive(MetricKey("Plant1", "Edge1", "", "Uptime"))
    old_will = host.on_message(topic("NDEATH"), Payload(metrics=(Metric(name="bdSeq", datatype=T.INT64, raw=6),)), 1)
    assert old_will.ignored and not old_will.dead
    death = host.on_message(topic("NDEATH"), Payload(metrics=(Metric(name="bdSeq", datatype=T.INT64, raw=7),)), 1)
    assert death.dead == [(NODE, None)] and not host.is_alive(MetricKey("Plant1", "Edge1", "", "Uptime"))
    assert host.on_message(topic("NDATA"), Payload(seq=3), 1).problems == [Problem.NOT_BORN]


def test_memory_is_bounded():
    host = SparkplugHost(max_nodes=1, max_metrics_per_node=2)
    host.on_message(topic("NBIRTH"), nbirth(), 1)
    assert Problem.TOO_MANY in host.on_message(topic("NBIRTH"), nbirth(), 1).problems
    other = parse_topic("spBv1.0/Plant1/NBIRTH/Edge2")
    assert host.on_message(other, nbirth(), 1).problems == [Problem.TOO_MANY] and len(host.nodes) == 1


def test_rebirth_limiter():
    limiter = RebirthLimiter(5.0)
    assert limiter.allow(NODE, 100.0) and not limiter.allow(NODE, 104.0) and limiter.allow(NODE, 105.0)
    assert limiter.allow(NodeKey("g", "other"), 104.0)


def test_tag_names_by_template():
    assert tag_name_for(TEMPLATE, MetricKey("Plant1", "Edge1", "", "Inputs/Temp 1")) == "Plant1.Edge1.Inputs.Temp_1"
    assert tag_name_for(TEMPLATE, MetricKey("Plant1", "Edge1", "Pump:1", "/x//y/")) == "Plant1.Edge1.Pump_1.x.y"
    assert tag_name_for("{node}.{device}.{metric}", MetricKey("g", "7up", "", "Ä")) == "T7up._"
    assert tag_name_for(TEMPLATE, MetricKey("g", "n", "d", "m" * 200)) is None
    for bad in ("{node}.{metric}", "{node}.{device}.{metric}.{x}", "a b {node}.{device}.{metric}"):
        with pytest.raises(ValueError):
            check_tag_template(bad)


def test_metric_addresses_and_config():
    assert parse_metric_address("G/N//Node Control/Rebirth") == MetricKey("G", "N", "", "Node Control/Rebirth")
    assert parse_metric_address("G/N/D/a/b").name == "a/b"
    with pytest.raises(ValueError):
        parse_metric_address("G/N/metric")
    source = SparkplugSource(kind="sparkplug", host="127.0.0.1", host_id="scada")
    plant = PlantConfig(sources={"sp": source}, tags=[
        Tag(name="t", source="sp", metric="G/N/D/Setpoint", writable=True)])
    assert plant.tag("t").metric == "G/N/D/Setpoint"
    with pytest.raises(ValueError, match="has no metric"):
        PlantConfig(sources={"sp": source}, tags=[Tag(name="t", source="sp", topic="a/b")])
    with pytest.raises(ValueError, match="not several"):
        Tag(name="t", source="sp", topic="a/b", metric="G/N/D/x")
    with pytest.raises(ValueError):
        Tag(name="t", source="sp", metric="G/N/D/x", value_path="a")
    with pytest.raises(ValueError):
        SparkplugSource(kind="sparkplug", tag_template="{metric}")


def test_payloads_round_trip():
    payload = Payload(timestamp_ms=5, seq=3, uuid="u", metrics=(
        Metric(name="a/b", alias=1, timestamp_ms=4, datatype=T.INT32, raw=(-5) & 0xFFFFFFFF,
               properties=(("EngineeringUnits", "degC"),)),
        Metric(name="n", datatype=T.STRING, is_null=True)))
    assert decode(encode(payload)) == payload


@given(st.binary(max_size=512))
def test_the_decoder_on_any_bytes_raises_only_its_own_error(data):
    try:
        payload = decode(data)
    except SparkplugDecodeError:
        return
    assert all(isinstance(m.name, (str, type(None))) for m in payload.metrics)


def test_historical_metrics_are_not_current_values_and_the_quality_property_counts():
    host = born_host()
    out = host.on_message(topic("DDATA", "Pump1"), Payload(seq=2, metrics=(
        Metric(alias=10, raw=1.0, is_historical=True, timestamp_ms=5),
        Metric(alias=11, raw=7, timestamp_ms=6, properties=(("Quality", 500),)),
        Metric(alias=10, raw=2.0, timestamp_ms=7, properties=(("Quality", 0),)))), 8)
    assert [(u.key.name, u.value, u.quality.family.value) for u in out.updates] == [
        ("Setpoint", 7, "Uncertain"), ("Inputs/Temp", 2.0, "Bad")]
    assert not out.problems


def test_a_configured_metric_must_be_in_the_followed_groups():
    source = SparkplugSource(kind="sparkplug", group_ids=["Plant1"])
    with pytest.raises(ValueError, match="not in the group_ids"):
        PlantConfig(sources={"sp": source}, tags=[Tag(name="t", source="sp", metric="Plant2/N/D/x")])
    PlantConfig(sources={"sp": source}, tags=[Tag(name="t", source="sp", metric="Plant1/N/D/x")])


_metrics = st.builds(
    Metric, name=st.one_of(st.none(), st.sampled_from(["a", "b/c", "bdSeq"])),
    alias=st.one_of(st.none(), st.integers(0, 5)),
    datatype=st.one_of(st.none(), st.integers(0, 20)), is_null=st.booleans(),
    raw=st.one_of(st.none(), st.integers(0, 2**64 - 1), st.floats(), st.booleans(), st.text(max_size=5)))
_messages = st.tuples(
    st.sampled_from(["NBIRTH", "NDATA", "NDEATH", "DBIRTH", "DDATA", "DDEATH"]), st.sampled_from(["N1", "N2"]),
    st.builds(Payload, seq=st.one_of(st.none(), st.integers(0, 255)), metrics=st.lists(_metrics, max_size=4).map(tuple),
              timestamp_ms=st.one_of(st.none(), st.integers(0, 2**63))))


@given(st.lists(_messages, max_size=30))
def test_any_message_sequence_is_handled_within_bounds(messages):
    host = SparkplugHost(max_nodes=1, max_metrics_per_node=3)
    for kind, node, payload in messages:
        device = "/D" if kind.startswith("D") else ""
        outcome = host.on_message(parse_topic(f"spBv1.0/G/{kind}/{node}{device}"), payload, 1)
        assert all(u.value is not None for u in outcome.updates if u.quality.is_good)
    assert len(host.nodes) <= 1 and all(n.metric_count() <= 3 for n in host.nodes.values())


@given(st.integers(0, 200), st.integers(0, 255))
def test_a_damaged_payload_raises_only_the_decode_error(position, byte):
    data = bytearray(encode(Payload(timestamp_ms=1, seq=2, metrics=(
        Metric(name="Inputs/Temp", alias=10, datatype=T.FLOAT, raw=1.5, properties=(("EngineeringUnits", "degC"),)),
        Metric(name="s", datatype=T.STRING, raw="text")))))
    data[position % len(data)] = byte
    try:
        decode(bytes(data))
    except SparkplugDecodeError:
        pass


def test_session_metrics_are_not_process_values():
    from domain.sparkplug_model import is_session_metric
    assert is_session_metric("bdSeq") and is_session_metric("Node Control/Rebirth")
    assert not is_session_metric("Properties/Uptime") and not is_session_metric("Node Controller")
