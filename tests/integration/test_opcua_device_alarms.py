"""Device alarms end to end: a real A&C server (node-opcua), the OPC UA source, Redis, the alarm engine.

node-opcua's ExclusiveLimitAlarm Interop.TemperatureAlarm watches Interop.Temperature (high 150,
high-high 180). The source follows it through the Server object's events, the engine mirrors it in
sl:alarms; acknowledging in Stacklight calls the condition's Acknowledge method on the server, and
the acknowledged state comes back as an event. Losing the server leaves the alarm in place, shown
not live; a new session's ConditionRefresh brings back the server's truth.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from asyncua import Client

from alarm_engine.alarm_store import read_all_alarms
from alarm_engine.commands import request_acknowledge
from alarm_engine.device_alarm_input import SOURCE_SILENT_S
from alarm_engine.engine import AlarmEngine
from data_sources.opcua_values import resolve_node_id
from data_sources.service import DataSourceService
from domain.alarms.records import AlarmRecord, AlarmState
from domain.config_loading import parse_config
from tag_store import keys
from tests.integration.data_source_helpers import running, wait_for_latest
from tests.interop.node_opcua import node_id, serve_or_skip

SOURCE = "node-plc"
ALARM_ID = f"{SOURCE}:{node_id('TemperatureAlarm')}"


@pytest.fixture
def node_server(tmp_path):
    yield from serve_or_skip(tmp_path / "node-opcua")


def plant(endpoint: str, data_dir: Path):
    return parse_config(f"""
data_dir: {data_dir}
sources:
  {SOURCE}:
    kind: opcua
    endpoint: {endpoint}
    security: {{policy: None, mode: None}}
    publishing_interval_ms: 50
    stale_after_s: 1.5
    reconnect_max_delay_s: 0.5
    device_alarms: {{}}
tags:
  - name: R1.temp
    source: {SOURCE}
    node_id: "{node_id('Temperature')}"
    area: Reactors
""", Path("plant.yaml"), {})


async def device_alarm(redis) -> AlarmRecord | None:
    return {r.alarm_id: r for r in await read_all_alarms(redis)}.get(ALARM_ID)


async def wait_for_alarm(redis, accept, what: str, timeout_s: float = 10.0) -> AlarmRecord | None:
    deadline = time.monotonic() + timeout_s
    record = None
    while time.monotonic() < deadline:
        record = await device_alarm(redis)
        if accept(record):
            return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"the device alarm did not become {what} within {timeout_s} s; now {record}")


async def journal(redis) -> list[tuple[str, str, str, str]]:
    """(transition, from, to, user) of the device alarm, in order."""
    return [(f[b"transition"].decode(), f[b"from_state"].decode(), f[b"to_state"].decode(), f[b"user"].decode())
            for _, f in await redis.xrange(keys.ALARM_JOURNAL) if f[b"alarm_id"].decode() == ALARM_ID]


async def acked_on_the_server(endpoint: str) -> bool:
    """AckedState/Id of the condition, read by a client of our own: the server's own view."""
    async with Client(endpoint) as client:
        namespaces = await client.get_namespace_array()
        condition = client.get_node(resolve_node_id(node_id("TemperatureAlarm"), namespaces))
        return await (await condition.get_child(["0:AckedState", "0:Id"])).read_value()


def is_state(state: AlarmState, input_bad: bool = False):
    return lambda r: r is not None and r.state is state and r.input_bad is input_bad


async def test_a_device_alarm_is_shown_acknowledged_on_the_device_and_returns_to_normal(
        tmp_path, redis_client, node_server):
    config = plant(node_server.endpoint, tmp_path / "data")
    service = DataSourceService(config, redis_client, [SOURCE], data_dir=tmp_path / "data")
    stop = asyncio.Event()
    async with running(service.run(stop), AlarmEngine(redis_client, config).run()):
        await wait_for_latest(redis_client, "R1.temp", lambda tv: tv.quality.is_good and tv.value == 20)
        assert await device_alarm(redis_client) is None

        await node_server.set("Temperature", 160)
        record = await wait_for_alarm(redis_client, is_state(AlarmState.UNACK_ACTIVE), "active and unacknowledged")
        # The condition's source node is a configured tag: the alarm names it, in its area.
        assert (record.tag, record.kind, record.area, record.device_source) == (
            "R1.temp", "TemperatureAlarm", "Reactors", SOURCE)
        assert record.message and 1 <= record.priority <= 4

        outcome = await request_acknowledge(redis_client, ALARM_ID, "alice", "checked the jacket")
        assert outcome.accepted, outcome.reason
        record = await wait_for_alarm(redis_client, is_state(AlarmState.ACK_ACTIVE), "acknowledged")
        assert (record.acknowledged_by, record.ack_comment) == ("alice", "checked the jacket")
        assert await acked_on_the_server(node_server.endpoint) is True

        # Already acknowledged: the device refuses, and that refusal is the operator's answer.
        again = await request_acknowledge(redis_client, ALARM_ID, "alice")
        assert not again.accepted and "the device refused: Bad" in again.reason

        await node_server.set("Temperature", 20)
        await wait_for_alarm(redis_client, lambda r: r is None or r.state is AlarmState.NORMAL, "normal")
        assert await journal(redis_client) == [
            ("T1", "A", "B", ""), ("T2", "B", "C", "alice"), ("T5", "C", "A", "")]
        counters = service.sources[0].counters
        assert counters.device_alarm_events >= 4 and counters.device_alarm_events_dropped == 0
        stop.set()


async def test_a_lost_server_leaves_the_alarm_not_live_and_a_new_session_refreshes_the_truth(
        tmp_path, redis_client, node_server):
    config = plant(node_server.endpoint, tmp_path / "data")
    engine = asyncio.create_task(AlarmEngine(redis_client, config).run())
    try:
        stop = asyncio.Event()
        async with running(DataSourceService(config, redis_client, [SOURCE], data_dir=tmp_path / "data").run(stop)):
            await wait_for_latest(redis_client, "R1.temp", lambda tv: tv.quality.is_good)
            await node_server.set("Temperature", 170)
            await wait_for_alarm(redis_client, is_state(AlarmState.UNACK_ACTIVE), "active")

            node_server.kill()
            # Not cleared: still active and unacknowledged, shown as not live.
            await wait_for_alarm(redis_client, is_state(AlarmState.UNACK_ACTIVE, input_bad=True), "not live")
            refused = await request_acknowledge(redis_client, ALARM_ID, "alice")
            assert not refused.accepted and "not connected" in refused.reason

            # The restarted server has no active condition: the refresh says so, and the alarm goes.
            await asyncio.to_thread(node_server.start)
            await wait_for_alarm(redis_client, lambda r: r is None, "gone after the refresh")
            await node_server.set("Temperature", 170)
            await wait_for_alarm(redis_client, is_state(AlarmState.UNACK_ACTIVE), "active again")
            stop.set()

        # The data source process is gone (no heartbeat, no events): the engine shows the alarm not live.
        await wait_for_alarm(redis_client, is_state(AlarmState.UNACK_ACTIVE, input_bad=True), "not live",
                             timeout_s=SOURCE_SILENT_S + 3)
        # A new data source process: its first session's refresh sends the condition again.
        stop = asyncio.Event()
        async with running(DataSourceService(config, redis_client, [SOURCE], data_dir=tmp_path / "data").run(stop)):
            await wait_for_alarm(redis_client, is_state(AlarmState.UNACK_ACTIVE), "refreshed", timeout_s=10)
            stop.set()
        transitions = [(t, a, b) for t, a, b, _user in await journal(redis_client)]
        assert transitions == [("T1", "A", "B"), ("B>A", "B", "A"), ("T1", "A", "B")]
    finally:
        engine.cancel()
        await asyncio.gather(engine, return_exceptions=True)
