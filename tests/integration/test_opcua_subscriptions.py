"""OPC UA subscriptions done properly, against a real asyncua server: deadbands, spreading, bad nodes."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from asyncua import Server, ua
from asyncua.server.monitored_item_service import MonitoredItemService

from data_sources.opcua_source import OpcUaDataSource
from domain.config_model import OpcUaSource, Tag
from domain.quality import BAD_WAITING_FOR_INITIAL_DATA, GOOD
from launcher.embedded_servers import free_port
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import history, latest, running, wait_for_latest, wait_until

NAMESPACE = "urn:stacklight:test-subscriptions"
SOURCE = "plc"
NODE_COUNT = 9


class ManyNodesServer:
    """An asyncua server with NODE_COUNT Double variables N0..N8."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/test"
        self.server = Server()
        self.nodes: list[ua.NodeId] = []

    async def setup(self) -> ManyNodesServer:
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        index = await self.server.register_namespace(NAMESPACE)
        for i in range(NODE_COUNT):
            node = await self.server.nodes.objects.add_variable(ua.NodeId(f"N{i}", index), f"N{i}", float(i))
            self.nodes.append(node.nodeid)
        await self.server.start()
        return self

    async def set(self, i: int, value: float, status: int = 0) -> None:
        await self.server.write_attribute_value(self.nodes[i], ua.DataValue(
            ua.Variant(value, ua.VariantType.Double), StatusCode=ua.StatusCode(status),
            SourceTimestamp=datetime.now(timezone.utc)))

    def subscriptions(self) -> list:
        return list(self.server.iserver.subscription_service.subscriptions.values())


@pytest.fixture
async def plant():
    server = await ManyNodesServer().setup()
    yield server
    await server.server.stop()


def tag(i: int, name: str | None = None, **kwargs) -> Tag:
    return Tag(name=name or f"t.n{i}", source=SOURCE, node_id=f"nsu={NAMESPACE};s=N{i}", **kwargs)


@pytest.fixture
def make_source(redis_client, tmp_path):
    def make(endpoint: str, tags: list[Tag], **settings) -> tuple[OpcUaDataSource, TagStoreWriter]:
        config = OpcUaSource(kind="opcua", endpoint=endpoint, security={"policy": "None", "mode": "None"},
                             publishing_interval_ms=50, sampling_interval_ms=0, stale_after_s=2.0,
                             reconnect_max_delay_s=0.5, **settings)
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        return OpcUaDataSource(SOURCE, config, tags, writer, data_dir=tmp_path), writer
    return make


def is_good(tv) -> bool:
    return tv.quality == GOOD


@pytest.fixture
def status_changes_pass_the_deadband(monkeypatch):
    """asyncua's server applies the deadband to status changes too; OPC UA (Part 4, 7.22.2) does not.

    This makes the test server follow the specification, so that what is tested is
    what Stacklight asks for (trigger StatusValue, absolute deadband).
    """
    original = MonitoredItemService._is_deadband_exceeded

    def per_specification(self, values, flt):
        old, current = values.get_old_datavalue(), values.get_current_datavalue()
        if old is not None and current is not None and old.StatusCode != current.StatusCode:
            return True
        return original(self, values, flt)

    monkeypatch.setattr(MonitoredItemService, "_is_deadband_exceeded", per_specification)


async def test_an_absolute_deadband_holds_back_small_changes_but_not_quality_changes(
        plant, make_source, redis_client, status_changes_pass_the_deadband):
    # The same node twice: once without a deadband (sees everything), once with one of 1.0.
    tags = [tag(0, "t.raw"), tag(0, "t.banded", deadband={"absolute": 1.0})]
    source, writer = make_source(plant.endpoint, tags)
    async with running(writer.run(), source.run()):
        await plant.set(0, 10.0)
        await wait_for_latest(redis_client, "t.banded", lambda tv: tv.value == 10.0)
        for small_step in (10.3, 10.6):
            await plant.set(0, small_step)
            await wait_for_latest(redis_client, "t.raw", lambda tv, v=small_step: tv.value == v)
        await asyncio.sleep(0.3)  # several publishing intervals
        assert (await latest(redis_client, "t.banded")).value == 10.0
        # Same value, new quality: inside the deadband, and still delivered.
        await plant.set(0, 10.6, status=ua.StatusCodes.UncertainLastUsableValue)
        banded = await wait_for_latest(redis_client, "t.banded", lambda tv: not tv.quality.is_good)
        assert (banded.value, banded.quality.name) == (10.6, "UncertainLastUsableValue")
        await plant.set(0, 12.0)
        await wait_for_latest(redis_client, "t.banded", lambda tv: tv.value == 12.0 and tv.quality == GOOD)
        await plant.set(0, 14.0)  # a value change alone, beyond the deadband
        await wait_for_latest(redis_client, "t.banded", lambda tv: tv.value == 14.0)
        banded_values = [tv.value for tv in await history(redis_client, "t.banded") if tv.value is not None]
        assert banded_values[-4:] == [10.0, 10.6, 12.0, 14.0]
        assert 10.3 in [tv.value for tv in await history(redis_client, "t.raw")]


async def test_items_are_spread_over_subscriptions_of_at_most_max_items(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint, [tag(i) for i in range(NODE_COUNT)], max_items_per_subscription=3)
    async with running(writer.run(), source.run()):
        for i in range(NODE_COUNT):
            await wait_for_latest(redis_client, f"t.n{i}", is_good)
        subscriptions = plant.subscriptions()
        assert sorted(len(s.monitored_item_srv._monitored_items) for s in subscriptions) == [3, 3, 3]
        for i in range(NODE_COUNT):
            await plant.set(i, 100.0 + i)
        for i in range(NODE_COUNT):
            await wait_for_latest(redis_client, f"t.n{i}", lambda tv, v=100.0 + i: tv.value == v)
        assert source.counters.missed_notifications == 0


async def test_more_tags_than_max_items_per_connection_use_two_sessions_both_delivering(
        plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint, [tag(i) for i in range(6)], max_items_per_connection=3)
    async with running(writer.run(), source.run()):
        await wait_until(lambda: source.counters.connects == 2, what="two connections")
        assert source.connection_count == 2
        assert len({s.session_id for s in plant.subscriptions()}) == 2
        for i in range(6):
            await plant.set(i, 50.0 + i)
        for i in range(6):
            await wait_for_latest(redis_client, f"t.n{i}", lambda tv, v=50.0 + i: tv.value == v)
        await wait_until(lambda: source.state == "connected", what="the source showing connected")
        assert "over 2 connections" in source.detail


async def test_a_wrong_node_id_marks_only_its_tag_bad(plant, make_source, redis_client):
    tags = [tag(0), Tag(name="t.wrong", source=SOURCE, node_id=f"nsu={NAMESPACE};s=Nowhere"), tag(1), tag(2)]
    source, writer = make_source(plant.endpoint, tags, max_items_per_subscription=2, max_items_per_connection=2)
    async with running(writer.run(), source.run()):
        wrong = await wait_for_latest(
            redis_client, "t.wrong", lambda tv: tv.quality.is_bad and tv.quality != BAD_WAITING_FOR_INITIAL_DATA)
        assert wrong.quality.name == "BadNodeIdUnknown" and wrong.value is None
        for i in range(3):
            await plant.set(i, 7.0 + i)
        for i in range(3):
            await wait_for_latest(redis_client, f"t.n{i}", lambda tv, v=7.0 + i: tv.value == v and tv.quality == GOOD)
        assert (await latest(redis_client, "t.wrong")).quality.name == "BadNodeIdUnknown"
        assert source.counters.connect_failures == 0


@pytest.fixture
def server_without_percent_deadbands(monkeypatch):
    """A server that, like many, has no EURange-based deadband: it rejects Percent filters."""
    original = MonitoredItemService._create_data_change_monitored_item

    async def rejecting_percent(self, params):
        item_filter = params.RequestedParameters.Filter
        if getattr(item_filter, "DeadbandType", None) == ua.DeadbandType.Percent:
            return ua.MonitoredItemCreateResult(
                StatusCode=ua.StatusCode(ua.StatusCodes.BadMonitoredItemFilterUnsupported))
        return await original(self, params)

    monkeypatch.setattr(MonitoredItemService, "_create_data_change_monitored_item", rejecting_percent)


async def test_a_rejected_percent_deadband_falls_back_to_the_range_share_logged_once(
        plant, make_source, redis_client, server_without_percent_deadbands, caplog):
    tags = [tag(0, "t.ranged", range={"low": 0, "high": 100}, deadband={"percent": 5}),
            tag(0, "t.unranged", deadband={"percent": 5})]
    source, writer = make_source(plant.endpoint, tags)
    async with running(writer.run(), source.run()):
        await plant.set(0, 10.0)
        for name in ("t.ranged", "t.unranged"):
            await wait_for_latest(redis_client, name, lambda tv: tv.value == 10.0 and tv.quality == GOOD)
        await plant.set(0, 12.0)  # within 5 % of 0..100: held back by the fallback; no deadband without a range
        await wait_for_latest(redis_client, "t.unranged", lambda tv: tv.value == 12.0)
        await asyncio.sleep(0.3)
        assert (await latest(redis_client, "t.ranged")).value == 10.0
        await plant.set(0, 20.0)
        await wait_for_latest(redis_client, "t.ranged", lambda tv: tv.value == 20.0 and tv.quality == GOOD)
    assert sum("rejects the deadband filter" in r.getMessage() for r in caplog.records) == 1


async def test_losing_one_connection_spoils_only_its_own_tags(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint, [tag(i) for i in range(4)], max_items_per_connection=2)
    async with running(writer.run(), source.run()):
        await wait_until(lambda: source.counters.connects == 2, what="two connections")
        first, second = source._connections
        first_tags = [source.tags[h].name for h in first.handles]
        second_tags = [source.tags[h].name for h in second.handles]
        seen: list[tuple[str, str]] = []

        async def watch_state() -> None:  # the lost link may come back before a single look would see it
            while True:
                seen.append((source.state, source.detail))
                await asyncio.sleep(0.005)

        for name in first_tags + second_tags:  # live first: a not-yet-good value must not pass for the loss
            await wait_for_latest(redis_client, name, lambda tv: tv.quality == GOOD)
        watcher = asyncio.create_task(watch_state())
        first.client.disconnect_socket()  # as a reset link would
        for name in first_tags:
            await wait_for_latest(redis_client, name, lambda tv: tv.quality.is_bad and tv.value is None)
        watcher.cancel()
        assert any(state in ("disconnected", "connecting") and "connection 1 of 2" in detail
                   for state, detail in seen), seen[-5:]
        for i in range(4):
            await plant.set(i, 30.0 + i)
        for name in second_tags:
            index = int(name.removeprefix("t.n"))
            await wait_for_latest(redis_client, name, lambda tv, v=30.0 + index: tv.value == v and tv.quality == GOOD)
        # The lost one reconnects on its own and its tags come back.
        for name in first_tags:
            index = int(name.removeprefix("t.n"))
            await wait_for_latest(redis_client, name, lambda tv, v=30.0 + index: tv.value == v and tv.quality == GOOD)
        assert source.counters.reconnects == 1
