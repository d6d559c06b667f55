"""What only a stricter server shows: node-opcua flags queue overflows and revises what it cannot grant."""
from __future__ import annotations

import pytest

from data_sources.opcua_source import OpcUaDataSource
from domain.config_model import OpcUaSource, Tag
from domain.quality import GOOD
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import history, running, wait_for_latest, wait_until
from tests.interop.node_opcua import node_id, serve_or_skip

SOURCE = "node-plc"


@pytest.fixture(scope="module")
def node_server(tmp_path_factory):
    yield from serve_or_skip(tmp_path_factory.mktemp("node-opcua-diagnostics"))


def source_for(endpoint: str, tags: list[Tag], redis_client, data_dir, **settings) -> tuple[OpcUaDataSource,
                                                                                           TagStoreWriter]:
    config = OpcUaSource(kind="opcua", endpoint=endpoint, security={"policy": "None", "mode": "None"},
                         stale_after_s=3.0, reconnect_max_delay_s=0.5, **settings)
    writer = TagStoreWriter(redis_client, history_samples_per_tag=1000, flush_interval_s=0.01)
    return OpcUaDataSource(SOURCE, config, tags, writer, data_dir=data_dir), writer


async def test_values_the_server_queue_dropped_are_counted(node_server, redis_client, tmp_path):
    # Counter changes every 100 ms; sampled every 10 ms, published once a second, with room for 2:
    # the server must drop about 8 values per second and say so with the Overflow bit.
    counter = Tag(name="n.counter", source=SOURCE, node_id=node_id("Counter"), sampling_interval_ms=10, queue_size=2)
    source, writer = source_for(node_server.endpoint, [counter], redis_client, tmp_path, publishing_interval_ms=1000)
    async with running(writer.run(), source.run()):
        await wait_until(lambda: source.counters.server_queue_overflows >= 2, timeout_s=8,
                         what="overflows reported by the server")
        # The values that did arrive are still Good: an overflow is a diagnostic, not a bad value.
        assert (await wait_for_latest(redis_client, "n.counter", lambda tv: tv.quality == GOOD)).value > 0
    assert source.counters.dropped == 0
    received = [tv.value for tv in await history(redis_client, "n.counter") if tv.quality == GOOD]
    assert len(received) >= 2
    assert received == sorted(received)


async def test_what_the_server_will_not_grant_is_counted_and_shown(node_server, redis_client, tmp_path):
    # Each Interop variable declares a minimum sampling interval of 10 ms: 1 ms cannot be granted.
    fast = [Tag(name=f"n.{name.lower()}", source=SOURCE, node_id=node_id(name), sampling_interval_ms=1)
            for name in ("Counter", "Double", "Int32")]
    source, writer = source_for(node_server.endpoint, fast, redis_client, tmp_path, publishing_interval_ms=100)
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "n.double", lambda tv: tv.quality == GOOD, timeout_s=10)
        assert source.counters.items_sampling_revised == 3
        assert "server revised: sampling slower on 3 items" in source.detail
