"""The MQTT source against a real broker (mosquitto, or the Python fallback) and a real Redis."""
from __future__ import annotations

import asyncio
import json
import time

import aiomqtt
import pytest

from data_sources.base import SourceConfigError
from data_sources.mqtt_connection import EMBEDDED_BROKER_ENV_VAR
from data_sources.mqtt_source import MqttDataSource
from data_sources.write_handler import WriteHandler
from domain.config_model import DataType, MqttSource, Tag
from domain.payload_paths import MAX_PAYLOAD_BYTES
from domain.quality import BAD_COMMUNICATION_ERROR, BAD_DECODING_ERROR, BAD_TYPE_MISMATCH, GOOD
from launcher.embedded_servers import free_port
from tag_store.source_status import ConnectionState
from tag_store.write_requests import WriteStatus
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import (
    BlackholeProxy,
    changes,
    history,
    latest,
    request_write,
    running,
    wait_for_latest,
    wait_for_write_group,
    wait_until,
)

SOURCE = "skid"
STATE = "plant/c401/state"
COMMAND = "plant/c401/cmd"
KEEPALIVE_S = 1


def skid_tags() -> list[Tag]:
    return [
        Tag(name="c.pressure", source=SOURCE, topic=STATE, value_path="discharge.pressure", timestamp_path="ts"),
        Tag(name="c.setpoint", source=SOURCE, topic=STATE, value_path="pressure_setpoint", writable=True,
            command_topic=COMMAND, command_template='{"pressure_setpoint": {value}}',
            range={"low": 0, "high": 12}, write_tolerance=0.001),
        Tag(name="c.running", source=SOURCE, topic=STATE, value_path="motor.running", data_type=DataType.BOOL,
            writable=True, command_topic=COMMAND, command_template='{"run": {value}}', timestamp_path="ts"),
        Tag(name="c.third", source=SOURCE, topic=STATE, value_path="sensors[2].value", data_type=DataType.INT,
            timestamp_path="ts"),
        Tag(name="u.power", source=SOURCE, topic="plant/utilities/power_kw"),
        Tag(name="u.mode", source=SOURCE, topic="plant/utilities/mode", data_type=DataType.STRING),
    ]


def skid_state(**changes) -> dict:
    state = {"discharge": {"pressure": 7.5}, "pressure_setpoint": 7.0, "motor": {"running": True},
             "sensors": [{"value": 1}, {"value": 2}, {"value": 3}]}
    state.update(changes)
    return state


def source_config(port: int, host: str | None = "127.0.0.1") -> MqttSource:
    return MqttSource(kind="mqtt", host=host, port=port if host else None, keepalive_s=KEEPALIVE_S,
                      reconnect_max_delay_s=0.5, write_timeout_s=1.5)


@pytest.fixture
def make_source(redis_client, tmp_path):
    def make(port: int, host: str | None = "127.0.0.1") -> tuple[MqttDataSource, TagStoreWriter]:
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        return MqttDataSource(SOURCE, source_config(port, host), skid_tags(), writer, data_dir=tmp_path), writer
    return make


@pytest.fixture
async def device(mqtt_broker):
    """The test's own MQTT client: it plays the device."""
    async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as client:
        yield client


def connected(source: MqttDataSource):
    return lambda: source.state is ConnectionState.CONNECTED


async def publish_json(client: aiomqtt.Client, topic: str, document: dict) -> None:
    await client.publish(topic, json.dumps(document), qos=1)


async def test_plain_and_json_payloads_reach_redis(mqtt_broker, make_source, device, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        await publish_json(device, STATE, skid_state(ts="2023-11-14T22:13:20.250Z"))
        await device.publish("plant/utilities/power_kw", b"812.5", qos=1)
        await device.publish("plant/utilities/mode", b"auto", qos=1)
        third = await wait_for_latest(redis_client, "c.third", lambda tv: tv.quality == GOOD)
        assert third.value == 3 and third.source_time_ms == 1_700_000_000_250 and not third.source_time_is_receive_time
        for tag, value in [("c.pressure", 7.5), ("c.running", True)]:
            tv = await latest(redis_client, tag)
            assert (tv.value, tv.quality, tv.source_time_ms) == (value, GOOD, 1_700_000_000_250), tag
        # A tag without timestamp_path takes the receive time, even when the document has a time field.
        setpoint = await latest(redis_client, "c.setpoint")
        assert (setpoint.value, setpoint.quality, setpoint.source_time_is_receive_time) == (7.0, GOOD, True)
        power = await wait_for_latest(redis_client, "u.power", lambda tv: tv.quality == GOOD)
        assert power.value == 812.5 and power.source_time_is_receive_time
        assert (await wait_for_latest(redis_client, "u.mode", lambda tv: tv.quality == GOOD)).value == "auto"
        # History: first not-yet-live, then the value; the change feed carries the same.
        assert [(tv.value, tv.quality.name) for tv in await history(redis_client, "u.power")] == [
            (None, "BadWaitingForInitialData"), (812.5, "Good")]
        assert ("u.power", 812.5) in [(tv.tag, tv.value) for tv in await changes(redis_client)]
        assert source.counters.received == 6 and source.counters.bad_payloads == 0


GARBAGE = [
    (b"{not json", BAD_DECODING_ERROR),
    (b'{"discharge": {"pressure": NaN}}', BAD_DECODING_ERROR),
    (b"\xff\xfe\xfd", BAD_DECODING_ERROR),
    (b'{"discharge": {"pressure": "high"}}', BAD_TYPE_MISMATCH),
    (b'{"discharge": {}}', BAD_TYPE_MISMATCH),
    (b'{"discharge": {"pressure": 1}, "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}', BAD_DECODING_ERROR),
]


async def test_garbage_is_counted_and_marks_its_tags_bad_while_others_keep_updating(
        mqtt_broker, make_source, device, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        for count, (payload, quality) in enumerate(GARBAGE, start=1):
            await device.publish(STATE, payload, qos=1)
            await device.publish("plant/utilities/power_kw", str(count).encode(), qos=1)
            # Messages are handled in order: once the meter's value is in, so is the garbage's verdict.
            await wait_for_latest(redis_client, "u.power", lambda tv: tv.value == float(count))  # noqa: B023
            pressure = await latest(redis_client, "c.pressure")
            assert (pressure.quality, pressure.value) == (quality, None), payload[:40]
            assert source.counters.bad_payloads == count
        await publish_json(device, STATE, skid_state())
        await wait_for_latest(redis_client, "c.pressure", lambda tv: tv.value == 7.5 and tv.quality == GOOD)
        assert source.state is ConnectionState.CONNECTED


async def test_broker_loss_turns_tags_bad_and_they_recover_when_messages_flow(
        mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as device:
            await publish_json(device, STATE, skid_state())
        await wait_for_latest(redis_client, "c.pressure", lambda tv: tv.quality == GOOD)
        mqtt_broker.stop()
        lost_at = time.monotonic()
        pressure = await wait_for_latest(redis_client, "c.pressure", lambda tv: tv.quality.is_bad, timeout_s=3)
        assert pressure.quality == BAD_COMMUNICATION_ERROR and time.monotonic() - lost_at < 1.5
        assert (await latest(redis_client, "u.power")).quality == BAD_COMMUNICATION_ERROR
        mqtt_broker.start()
        await wait_until(connected(source), timeout_s=10, what="reconnecting")
        async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as device:
            await publish_json(device, STATE, skid_state(discharge={"pressure": 8.25}))
        await wait_for_latest(redis_client, "c.pressure", lambda tv: tv.value == 8.25 and tv.quality == GOOD)
        assert source.counters.reconnects == 1


async def test_a_silent_broker_link_turns_tags_bad_within_two_keepalives(mqtt_broker, make_source, redis_client):
    proxy = await BlackholeProxy(mqtt_broker.port, free_port()).start()
    source, writer = make_source(proxy.port)
    try:
        async with running(writer.run(), source.run()):
            await wait_until(connected(source), what="connecting")
            async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as device:
                await device.publish("plant/utilities/power_kw", b"5", qos=1)
                await wait_for_latest(redis_client, "u.power", lambda tv: tv.quality == GOOD)
                proxy.blackhole()
                silent_at = time.monotonic()
                power = await wait_for_latest(redis_client, "u.power", lambda tv: tv.quality.is_bad, timeout_s=6)
                assert power.quality == BAD_COMMUNICATION_ERROR
                assert time.monotonic() - silent_at <= 2 * KEEPALIVE_S + 1.5
                await wait_until(connected(source), timeout_s=10, what="reconnecting through the proxy")
                await device.publish("plant/utilities/power_kw", b"6", qos=1)
                await wait_for_latest(redis_client, "u.power", lambda tv: tv.value == 6.0 and tv.quality == GOOD)
    finally:
        await proxy.close()


async def echo_commands_to_state(port: int, ready: asyncio.Event) -> None:
    """The device: applies each command to its state document and publishes the new state."""
    state = skid_state()
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(COMMAND, qos=1)
        ready.set()
        async for message in client.messages:
            command = json.loads(message.payload)
            if "pressure_setpoint" in command:
                state["pressure_setpoint"] = command["pressure_setpoint"]
            if "run" in command:
                state["motor"] = {"running": command["run"]}
            await publish_json(client, STATE, state)


async def test_writes_are_published_and_confirmed_by_the_state_topic(mqtt_broker, make_source, device, redis_client):
    source, writer = make_source(mqtt_broker.port)
    responder_ready = asyncio.Event()
    handler = WriteHandler(redis_client, source, block_ms=100)
    responder = echo_commands_to_state(mqtt_broker.port, responder_ready)
    async with running(writer.run(), source.run(), handler.run(), responder):
        await wait_until(connected(source), what="connecting")
        await asyncio.wait_for(responder_ready.wait(), 5)
        await wait_for_write_group(redis_client, SOURCE)
        await publish_json(device, STATE, skid_state())
        await wait_for_latest(redis_client, "c.setpoint", lambda tv: tv.quality == GOOD)
        outcome = await request_write(redis_client, SOURCE, "c.setpoint", 8.5)
        assert (outcome.status, outcome.readback) == (WriteStatus.DONE, 8.5)
        outcome = await request_write(redis_client, SOURCE, "c.running", False)
        assert (outcome.status, outcome.readback) == (WriteStatus.DONE, False)
        assert (await wait_for_latest(redis_client, "c.running", lambda tv: tv.value is False)).quality == GOOD
        refused = await request_write(redis_client, SOURCE, "c.setpoint", 13)
        assert refused.status is WriteStatus.REJECTED and "engineering range" in refused.reason
        assert source.counters.writes_done == 2 and source.counters.writes_rejected == 1


async def test_a_write_nobody_confirms_times_out(mqtt_broker, make_source, device, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        await wait_until(connected(source), what="connecting")
        await wait_for_write_group(redis_client, SOURCE)
        await device.subscribe(COMMAND, qos=1)
        await publish_json(device, STATE, skid_state())
        await wait_for_latest(redis_client, "c.setpoint", lambda tv: tv.quality == GOOD)
        started = time.monotonic()
        outcome = await request_write(redis_client, SOURCE, "c.setpoint", 6.5)
        assert outcome.status is WriteStatus.TIMED_OUT and outcome.readback == 7.0
        assert 1.4 < time.monotonic() - started < 3
        # The command itself was sent, with the template filled in.
        message = await asyncio.wait_for(anext(device.messages), 2)
        assert (message.topic.value, json.loads(message.payload), message.qos) == (
            COMMAND, {"pressure_setpoint": 6.5}, 1)
        assert source.counters.writes_timed_out == 1


async def test_a_tag_not_configured_writable_is_refused_before_anything_is_sent(
        mqtt_broker, make_source, device, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        await wait_until(connected(source), what="connecting")
        await wait_for_write_group(redis_client, SOURCE)
        await device.subscribe("#", qos=1)
        await publish_json(device, STATE, skid_state())
        await asyncio.wait_for(anext(device.messages), 2)   # our own state message
        outcome = await request_write(redis_client, SOURCE, "c.pressure", 8.0)
        assert outcome.status is WriteStatus.REJECTED and "not writable" in outcome.reason
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(device.messages), 0.5)   # nothing was published
        assert source.counters.writes_rejected == 1


async def test_no_host_means_the_embedded_broker_from_the_environment(
        mqtt_broker, make_source, device, redis_client, monkeypatch):
    monkeypatch.delenv(EMBEDDED_BROKER_ENV_VAR, raising=False)
    with pytest.raises(SourceConfigError, match=EMBEDDED_BROKER_ENV_VAR):
        make_source(mqtt_broker.port, host=None)
    monkeypatch.setenv(EMBEDDED_BROKER_ENV_VAR, f"mqtt://127.0.0.1:{mqtt_broker.port}")
    source, writer = make_source(mqtt_broker.port, host=None)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        await device.publish("plant/utilities/power_kw", b"1.5", qos=1)
        assert (await wait_for_latest(redis_client, "u.power", lambda tv: tv.quality == GOOD)).value == 1.5


async def test_a_write_while_the_broker_is_away_is_rejected_with_the_reason(mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        await wait_until(connected(source), what="connecting")
        await wait_for_write_group(redis_client, SOURCE)
        mqtt_broker.stop()
        await wait_until(lambda: source.state is ConnectionState.DISCONNECTED, what="losing the broker")
        outcome = await request_write(redis_client, SOURCE, "c.setpoint", 8.0)
        assert outcome.status is WriteStatus.REJECTED and "not connected to the MQTT broker" in outcome.reason
