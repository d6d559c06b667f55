"""The Sparkplug B source against a real broker and Redis, with a test edge node (sparkplug_edge.py)."""
from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from data_sources.sparkplug_source import SparkplugDataSource
from data_sources.write_handler import WriteHandler
from domain.config_model import DataType, SparkplugSource, Tag
from domain.quality import BAD_COMMUNICATION_ERROR, BAD_NO_COMMUNICATION, GOOD
from launcher.embedded_servers import free_port
from tag_store.source_status import ConnectionState
from tag_store.tag_catalog import read_discovered_tags
from tag_store.write_requests import WriteStatus
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import (
    BlackholeProxy,
    latest,
    request_write,
    running,
    wait_for_latest,
    wait_for_write_group,
    wait_until,
)
from tests.integration.sparkplug_edge import EdgeNode

SOURCE = "sp"
HOST_ID = "stacklight-test"
TEMP = "Plant1.Edge1.Pump1.Inputs.Temp"
COUNT = "Plant1.Edge1.Pump1.Count"
OPEN = "Plant1.Edge1.Valve1.Open"
UPTIME = "Plant1.Edge1.Properties.Uptime"
SETPOINT = "pump1.setpoint"      # configured: writable, its own name


def configured_tags() -> list[Tag]:
    return [Tag(name=SETPOINT, source=SOURCE, metric="Plant1/Edge1/Pump1/Setpoint", writable=True,
                range={"low": 0, "high": 100}, write_tolerance=0.001)]


@pytest.fixture
def make_source(redis_client, tmp_path):
    def make(port: int, **settings) -> tuple[SparkplugDataSource, TagStoreWriter]:
        settings = {"keepalive_s": 1, "host_id": HOST_ID, "reconnect_max_delay_s": 0.5, "write_timeout_s": 1.0,
                    "rebirth_min_interval_s": 0.2, **settings}
        config = SparkplugSource(kind="sparkplug", host="127.0.0.1", port=port, **settings)
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        return SparkplugDataSource(SOURCE, config, configured_tags(), writer, data_dir=tmp_path), writer
    return make


def connected(source: SparkplugDataSource):
    return lambda: source.state is ConnectionState.CONNECTED


def good(value):
    return lambda tv: tv.quality == GOOD and tv.value == value


async def test_births_discover_tags_and_data_by_alias_flows(mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        async with EdgeNode(mqtt_broker.port) as edge:
            temp = await wait_for_latest(redis_client, TEMP, good(21.5))
            assert not temp.source_time_is_receive_time
            assert (await wait_for_latest(redis_client, UPTIME, good(2**64 - 1))).value == 2**64 - 1
            assert (await wait_for_latest(redis_client, COUNT, good(-(2**63)))).value == -(2**63)
            await wait_for_latest(redis_client, SETPOINT, good(50.0))
            measured_ms = temp.source_time_ms + 1234   # the metric's own timestamp, not the receive time
            await edge.data("Pump1", {"Inputs/Temp": 22.25, "Count": 2**53 + 1}, timestamp_ms=measured_ms)
            temp = await wait_for_latest(redis_client, TEMP, good(22.25))
            assert temp.source_time_ms == measured_ms
            assert (await wait_for_latest(redis_client, COUNT, good(2**53 + 1))).value == 2**53 + 1
            await edge.data("", {"Status": "stopped"})
            await wait_for_latest(redis_client, "Plant1.Edge1.Status", good("stopped"))
        catalog = await read_discovered_tags(redis_client)
        assert catalog[TEMP].unit == "degC" and catalog[TEMP].data_type is DataType.FLOAT
        assert catalog[TEMP].metric == "Plant1/Edge1/Pump1/Inputs/Temp" and not catalog[TEMP].writable
        assert catalog[OPEN].data_type is DataType.BOOL and catalog[COUNT].data_type is DataType.INT
        assert "Plant1.Edge1.Pump1.Setpoint" not in catalog, "a configured metric is not discovered again"
        assert source.counters.sparkplug_births == 3 and source.counters.sparkplug_rebirths_requested == 0


async def test_seq_gap_and_unknown_alias_ask_for_rebirth(mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        async with EdgeNode(mqtt_broker.port) as edge:
            await wait_for_latest(redis_client, TEMP, good(21.5))
            await edge.data("Pump1", {"Inputs/Temp": 30.0}, seq=(edge.seq + 5) % 256)
            await wait_until(lambda: edge.rebirth_requests == 1, what="a rebirth request after a seq gap")
            assert source.counters.sparkplug_seq_gaps == 1
            await edge.data("Pump1", {"Inputs/Temp": 31.0})
            await wait_for_latest(redis_client, TEMP, good(31.0))
            await asyncio.sleep(0.3)   # past rebirth_min_interval_s
            await edge.data("Pump1", {"NoSuchMetric": 1.0})
            await wait_until(lambda: edge.rebirth_requests == 2, what="a rebirth request after an unknown alias")
            assert source.counters.sparkplug_unknown_aliases >= 1
            await edge.data("Pump1", {"Inputs/Temp": 32.0})
            await wait_for_latest(redis_client, TEMP, good(32.0))


async def test_rebirth_requests_are_rate_limited(mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port, rebirth_min_interval_s=30)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        async with EdgeNode(mqtt_broker.port) as edge:
            await wait_for_latest(redis_client, TEMP, good(21.5))
            edge.birth = _no_birth   # this node ignores rebirth requests
            for _ in range(5):
                await edge.data("Pump1", {"NoSuchMetric": 1.0})
            await wait_until(lambda: source.counters.sparkplug_unknown_aliases == 5, what="five unknown aliases")
            await asyncio.sleep(0.2)
            assert edge.rebirth_requests == 1 and source.counters.sparkplug_rebirths_requested == 1


async def _no_birth() -> None:
    return None


async def test_node_death_turns_all_its_metrics_bad_and_device_death_only_the_device(
        mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port)
    proxy = await BlackholeProxy(mqtt_broker.port, free_port()).start()
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        async with EdgeNode(proxy.port) as edge:
            await wait_for_latest(redis_client, OPEN, good(True))
            await edge.device_death("Valve1")
            await wait_for_latest(redis_client, OPEN, lambda tv: tv.quality == BAD_NO_COMMUNICATION)
            assert (await latest(redis_client, TEMP)).quality == GOOD
            await edge.device_birth("Valve1")
            await wait_for_latest(redis_client, OPEN, good(True))
            await proxy.close()   # the link drops without DISCONNECT: the broker publishes the NDEATH will
            for tag in (TEMP, COUNT, OPEN, UPTIME, SETPOINT, "Plant1.Edge1.Status"):
                await wait_for_latest(redis_client, tag, lambda tv: tv.quality == BAD_NO_COMMUNICATION)
        assert source.counters.sparkplug_deaths == 2


async def test_writes_by_dcmd_are_confirmed_by_ddata_or_time_out(mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port)
    handler = WriteHandler(redis_client, source, block_ms=100)
    async with running(writer.run(), source.run(), handler.run()):
        await wait_until(connected(source), what="connecting")
        await wait_for_write_group(redis_client, SOURCE)
        async with EdgeNode(mqtt_broker.port) as edge:
            await wait_for_latest(redis_client, SETPOINT, good(50.0))
            outcome = await request_write(redis_client, SOURCE, SETPOINT, 62.5)
            assert (outcome.status, outcome.readback) == (WriteStatus.DONE, 62.5), outcome.reason
            topic, command = edge.commands[-1]
            assert topic == "spBv1.0/Plant1/DCMD/Edge1/Pump1"
            sent = command.metrics[0]
            assert (sent.name, sent.alias, sent.datatype, sent.raw) == ("Setpoint", 11, 10, 62.5)
            refused = await request_write(redis_client, SOURCE, TEMP, 1.0)
            assert refused.status is WriteStatus.REJECTED and "not writable" in refused.reason
            edge.answer_writes = False
            commands = len(edge.commands)
            timed_out = await request_write(redis_client, SOURCE, SETPOINT, 70.0)
            assert timed_out.status is WriteStatus.TIMED_OUT and len(edge.commands) == commands + 1
        assert source.counters.writes_done == 1 and source.counters.writes_timed_out == 1


async def test_garbage_is_counted_and_the_source_goes_on(mqtt_broker, make_source, redis_client):
    source, writer = make_source(mqtt_broker.port)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        async with EdgeNode(mqtt_broker.port) as edge:
            await wait_for_latest(redis_client, TEMP, good(21.5))
            await edge.publish_raw(edge.topic("DDATA", "Pump1"), b"\xff\x00garbage" * 10)
            await edge.publish_raw("spBv1.0/Plant1/NOPE/Edge1", b"")
            await edge.publish_raw(edge.topic("NDATA"), b"\x0a\x05\xff")
            await wait_until(lambda: source.counters.bad_payloads == 3, what="three bad messages counted")
            assert source.counters.sparkplug_decode_errors == 2
            await edge.data("Pump1", {"Inputs/Temp": 40.0})
            await wait_for_latest(redis_client, TEMP, good(40.0))
            assert source.state is ConnectionState.CONNECTED


async def test_state_is_online_while_connected_and_the_will_says_offline(mqtt_broker, make_source, redis_client):
    proxy = await BlackholeProxy(mqtt_broker.port, free_port()).start()
    source, writer = make_source(proxy.port)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        online = await retained_state(mqtt_broker.port)
        assert online["online"] is True and isinstance(online["timestamp"], int)
        # An old offline will (e.g. of an earlier session) arriving while connected is answered with online.
        async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as other:
            await other.publish(f"spBv1.0/STATE/{HOST_ID}", json.dumps({"online": False, "timestamp": 1}),
                                qos=1, retain=True)
        for _ in range(50):
            if (await retained_state(mqtt_broker.port))["online"] is True:
                break
            await asyncio.sleep(0.05)
        assert await retained_state(mqtt_broker.port) == online
        await proxy.close()
        await wait_until(lambda: source.state is not ConnectionState.CONNECTED, what="the source noticing")
        await wait_for_latest(redis_client, SETPOINT, lambda tv: tv.quality == BAD_COMMUNICATION_ERROR)
        for _ in range(50):
            offline = await retained_state(mqtt_broker.port)
            if offline["online"] is False:
                break
            await asyncio.sleep(0.1)
        assert offline == {"online": False, "timestamp": online["timestamp"]}


async def retained_state(port: int) -> dict:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(f"spBv1.0/STATE/{HOST_ID}", qos=1)
        async with asyncio.timeout(3):
            async for message in client.messages:
                assert message.retain
                return json.loads(message.payload)


async def test_after_a_lost_broker_connection_the_source_asks_for_births_again(mqtt_broker, make_source, redis_client):
    proxy_port = free_port()
    proxy = await BlackholeProxy(mqtt_broker.port, proxy_port).start()
    source, writer = make_source(proxy_port)
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        async with EdgeNode(mqtt_broker.port) as edge:
            await wait_for_latest(redis_client, TEMP, good(21.5))
            await proxy.close()
            await wait_for_latest(redis_client, TEMP, lambda tv: tv.quality == BAD_COMMUNICATION_ERROR)
            proxy = await BlackholeProxy(mqtt_broker.port, proxy_port).start()
            await wait_until(connected(source), what="reconnecting")
            # The source missed whatever happened meanwhile: the next data makes it ask for births.
            await edge.data("Pump1", {"Inputs/Temp": 23.0})
            await wait_until(lambda: edge.rebirth_requests == 1, what="a rebirth request after the reconnect")
            await wait_for_latest(redis_client, TEMP, good(23.0))
    await proxy.close()
