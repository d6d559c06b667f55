"""Topic templates, availability (a real Last Will), payload mapping and bad input against mosquitto."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import aiomqtt
import pytest

from data_sources.mqtt_source import MAX_TRACKED_FAILING_TOPICS, MqttDataSource
from domain.config_model import DataType, MqttSource, Tag
from domain.quality import (
    BAD_DECODING_ERROR,
    BAD_NO_COMMUNICATION,
    BAD_TYPE_MISMATCH,
    BAD_WAITING_FOR_INITIAL_DATA,
    GOOD,
    UNCERTAIN,
)
from tag_store.source_status import ConnectionState
from tag_store.tag_catalog import read_discovered_tags
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import latest, running, wait_for_latest, wait_until

SOURCE = "site"

# A device process: connects with a Last Will ("offline", retained), says "online", then waits to be killed.
DEVICE_WITH_WILL = """
import sys, time
import paho.mqtt.client as mqtt
port, status = int(sys.argv[1]), sys.argv[2]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="device-" + status.replace("/", "-"))
client.will_set(status, "offline", qos=1, retain=True)
client.connect("127.0.0.1", port, keepalive=60)
client.loop_start()
client.publish(status, "online", qos=1, retain=True).wait_for_publish(5)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def make_source(redis_client, tmp_path):
    def make(port: int, tags: list[Tag] = (), **settings) -> tuple[MqttDataSource, TagStoreWriter]:
        config = MqttSource(kind="mqtt", host="127.0.0.1", port=port, keepalive_s=5, reconnect_max_delay_s=0.5,
                            **settings)
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        return MqttDataSource(SOURCE, config, list(tags), writer, data_dir=tmp_path), writer
    return make


@pytest.fixture
async def device(mqtt_broker):
    async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as client:
        yield client


def connected(source: MqttDataSource):
    return lambda: source.state is ConnectionState.CONNECTED


TEMPERATURES = {"topic": "plant/+/temperature", "tag": "{1}.temperature", "unit": "degC", "area": "{1}",
                "value_path": "value", "timestamp_path": "time", "quality_path": "quality", "max_age_s": 20,
                "availability": {"topic": "plant/+/status"}}


async def test_a_template_makes_tags_that_reach_the_catalog_and_carry_values(
        mqtt_broker, make_source, device, redis_client):
    source, writer = make_source(mqtt_broker.port, topic_templates=[
        TEMPERATURES, {"topic": "plant/+/pressure", "tag": "{1}.pressure", "max_tags": 1}], max_age_s=60)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        await device.publish("plant/r1/temperature", json.dumps(
            {"value": 71.5, "time": 1_700_000_000_500, "quality": 192}), qos=1)
        await device.publish("plant/r2/temperature", json.dumps({"value": 65, "quality": "uncertain"}), qos=1)
        await device.publish("plant/r1/pressure", b"2.5", qos=1)
        await device.publish("plant/r2/pressure", b"3.5", qos=1)            # over max_tags: no tag
        await device.publish("plant/bad name/temperature", b'{"value": 1}', qos=1)   # not a tag name
        r1 = await wait_for_latest(redis_client, "r1.temperature", lambda tv: tv.quality == GOOD)
        assert (r1.value, r1.source_time_ms) == (71.5, 1_700_000_000_500)
        r2 = await wait_for_latest(redis_client, "r2.temperature", lambda tv: tv.value == 65.0)
        assert (r2.quality, r2.source_time_is_receive_time) == (UNCERTAIN, True)
        assert (await wait_for_latest(redis_client, "r1.pressure", lambda tv: tv.quality == GOOD)).value == 2.5
        await wait_until(lambda: source.counters.template_names_invalid == 1, what="the invalid name counted")
        assert source.counters.template_limit_reached == 1 and source.counters.template_tags == 3
        # The same topic again makes no second tag; a quality the tag cannot use makes it Bad.
        await device.publish("plant/r1/temperature", b'{"value": 72, "quality": "so-so"}', qos=1)
        assert (await wait_for_latest(redis_client, "r1.temperature", lambda tv: tv.quality.is_bad)).quality \
            == BAD_TYPE_MISMATCH
        assert source.counters.template_tags == 3 and source.counters.payload_bad_quality == 1
        catalog = {}
        for _ in range(100):
            catalog = await read_discovered_tags(redis_client)
            if len(catalog) == 3:
                break
            await asyncio.sleep(0.02)
        assert sorted(catalog) == ["r1.pressure", "r1.temperature", "r2.temperature"]
        made = catalog["r1.temperature"]
        assert (made.source, made.topic, made.area, made.unit, made.max_age_s) == (
            SOURCE, "plant/r1/temperature", "r1", "degC", 20)
        assert catalog["r1.pressure"].max_age_s == 60    # the source's default
        assert (await latest(redis_client, "r2.pressure")) is None


async def test_a_killed_devices_last_will_turns_its_tags_bad_at_once(mqtt_broker, make_source, device, redis_client):
    source, writer = make_source(mqtt_broker.port, topic_templates=[TEMPERATURES])
    process = subprocess.Popen([sys.executable, "-c", DEVICE_WITH_WILL, str(mqtt_broker.port), "plant/r1/status"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        async with running(writer.run(), source.run()):
            await wait_until(connected(source), what="connecting")
            for reactor in ("r1", "r2"):
                await device.publish(f"plant/{reactor}/temperature", b'{"value": 20, "quality": true}', qos=1)
                await wait_for_latest(redis_client, f"{reactor}.temperature", lambda tv: tv.quality == GOOD)
            process.kill()
            killed_at = time.monotonic()
            r1 = await wait_for_latest(redis_client, "r1.temperature", lambda tv: tv.quality.is_bad, timeout_s=3)
            assert r1.quality == BAD_NO_COMMUNICATION and time.monotonic() - killed_at < 1.5
            assert source.counters.devices_offline == 1
            # Values of an offline device are not shown; the other device goes on.
            await device.publish("plant/r1/temperature", b'{"value": 21, "quality": true}', qos=1)
            await device.publish("plant/r2/temperature", b'{"value": 22, "quality": true}', qos=1)
            await wait_for_latest(redis_client, "r2.temperature", lambda tv: tv.value == 22.0)
            assert (await latest(redis_client, "r1.temperature")).quality == BAD_NO_COMMUNICATION
            # Back online: waiting for data, then values flow again.
            await device.publish("plant/r1/status", b"online", qos=1, retain=True)
            await wait_for_latest(redis_client, "r1.temperature", lambda tv: tv.quality == BAD_WAITING_FOR_INITIAL_DATA)
            await device.publish("plant/r1/temperature", b'{"value": 23, "quality": true}', qos=1)
            assert (await wait_for_latest(redis_client, "r1.temperature", lambda tv: tv.quality == GOOD)).value == 23.0
    finally:
        process.kill()
        process.wait()


async def test_a_sources_availability_topic_speaks_for_all_its_tags(mqtt_broker, make_source, device, redis_client):
    tags = [Tag(name="gw.a", source=SOURCE, topic="gw/a"), Tag(name="gw.b", source=SOURCE, topic="gw/b")]
    source, writer = make_source(mqtt_broker.port, tags, availability={
        "topic": "gw/state", "payload_online": "UP", "payload_offline": "DOWN"})
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        await device.publish("gw/a", b"1", qos=1)
        await wait_for_latest(redis_client, "gw.a", lambda tv: tv.quality == GOOD)
        await device.publish("gw/state", b"DOWN", qos=1)
        for name in ("gw.a", "gw.b"):
            await wait_for_latest(redis_client, name, lambda tv: tv.quality == BAD_NO_COMMUNICATION)
        await device.publish("gw/state", b"sideways", qos=1)
        await wait_until(lambda: source.counters.payload_wrong_type == 1, what="the odd announcement counted")
        await device.publish("gw/state", b"UP", qos=1)
        await device.publish("gw/b", b"2", qos=1)
        assert (await wait_for_latest(redis_client, "gw.b", lambda tv: tv.quality == GOOD)).value == 2.0


async def test_bad_input_is_counted_by_kind_and_the_source_stays_bounded_and_working(
        mqtt_broker, make_source, device, redis_client):
    tags = [Tag(name="meter", source=SOURCE, topic="m/state", value_path="v"),
            Tag(name="mode", source=SOURCE, topic="m/mode", data_type=DataType.BOOL)]
    source, writer = make_source(mqtt_broker.port, tags, topic_templates=[
        {"topic": "flood/+/v", "tag": "flood.{1}", "max_tags": 20}])
    garbage = [
        (b"{not json", "payload_not_json", BAD_DECODING_ERROR),
        (b'{"v": NaN}', "payload_not_finite", BAD_DECODING_ERROR),
        (b'{"v": Infinity}', "payload_not_finite", BAD_DECODING_ERROR),
        (b'{"v": "high"}', "payload_wrong_type", BAD_TYPE_MISMATCH),
        (b"\xff\xfe\xfd", "payload_not_utf8", BAD_DECODING_ERROR),
        (b'{"v": 1, "pad": "' + b"x" * 1024 * 1024 + b'"}', "payload_too_large", BAD_DECODING_ERROR),
    ]
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        for number, (payload, counter, quality) in enumerate(garbage):
            await device.publish("m/state", payload, qos=1)
            await wait_until(lambda: getattr(source.counters, counter) >= 1, what=counter)  # noqa: B023
            await wait_for_latest(redis_client, "meter", lambda tv: tv.quality == quality)  # noqa: B023
            await device.publish("m/state", json.dumps({"v": number}).encode(), qos=1)
            await wait_for_latest(redis_client, "meter", lambda tv: tv.value == float(number))  # noqa: B023
        await device.publish("m/mode", b"maybe", qos=1)
        await wait_until(lambda: source.counters.payload_wrong_type == 2, what="a word that is not on/off")
        assert source.counters.bad_payloads == len(garbage) + 1
        # A burst of new topics under a template: 20 tags, the rest counted; nothing grows past its bound.
        for number in range(2000):
            await device.publish(f"flood/d{number}/v", b"1", qos=0)
            await device.publish(f"flood/d{number}/v", b"oops", qos=0)
        await device.publish("m/state", b'{"v": 99}', qos=1)
        await wait_for_latest(redis_client, "meter", lambda tv: tv.value == 99.0, timeout_s=10)
        await wait_until(lambda: source.counters.template_limit_reached == 2 * (2000 - 20), timeout_s=10,
                         what="the burst counted")
        assert source.counters.template_tags == 20 and len(source.tags) == 22
        assert len(source._routes) <= 22 and len(source._failing_topics) <= MAX_TRACKED_FAILING_TOPICS
        assert source.state is ConnectionState.CONNECTED and source.counters.reconnects == 0


async def test_topics_left_over_in_a_persistent_session_are_counted_as_unknown(
        mqtt_broker, make_source, device, redis_client):
    settings = {"client_id": "leftovers", "clean_session": False}
    old, writer = make_source(mqtt_broker.port, topic_templates=[{"topic": "legacy/+/v", "tag": "legacy.{1}"}],
                              **settings)
    async with running(writer.run(), old.run()):
        await wait_until(connected(old), what="connecting")
    new, writer = make_source(mqtt_broker.port, [Tag(name="now", source=SOURCE, topic="now")], **settings)
    async with running(writer.run(), new.run()):
        await wait_until(connected(new), what="connecting")
        for number in range(500):
            await device.publish(f"legacy/d{number}/v", b"1", qos=0)
        await device.publish("now", b"5", qos=1)
        await wait_for_latest(redis_client, "now", lambda tv: tv.quality == GOOD)
        await wait_until(lambda: new.counters.unknown_topics == 500, what="the unknown topics counted")
        assert len(new._routes) == 1 and len(new.tags) == 1


async def test_template_tags_go_bad_with_the_broker_and_flow_again_after_it_restarts(
        mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port, topic_templates=[{"topic": "plant/+/level", "tag": "{1}.level"}])
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as device:
            await device.publish("plant/t1/level", b"40", qos=1)
        await wait_for_latest(redis_client, "t1.level", lambda tv: tv.quality == GOOD)
        mqtt_broker.stop()
        assert (await wait_for_latest(redis_client, "t1.level", lambda tv: tv.quality.is_bad)).quality.name \
            == "BadCommunicationError"
        mqtt_broker.start()
        await wait_until(connected(source), timeout_s=10, what="reconnecting")
        async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as device:
            await device.publish("plant/t1/level", b"41", qos=1)
        assert (await wait_for_latest(redis_client, "t1.level", lambda tv: tv.quality == GOOD)).value == 41.0
        assert source.counters.template_tags == 1 and source.counters.reconnects == 1
