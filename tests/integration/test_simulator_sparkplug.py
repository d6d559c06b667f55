"""The demo packaging line as a Sparkplug B edge node, read by the real Sparkplug source as the demo plant has it."""
from __future__ import annotations

from data_sources.sparkplug_source import SparkplugDataSource
from data_sources.write_handler import WriteHandler
from domain.config_loading import DEFAULT_CONFIG_PATH, load_config
from domain.quality import GOOD
from simulator.sparkplug_edge import Filler, SparkplugEdge
from tag_store.tag_catalog import read_discovered_tags
from tag_store.write_requests import WriteStatus
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import request_write, running, wait_for_latest, wait_for_write_group

SOURCE = "packaging_sparkplug"


def test_the_filler_ramps_to_its_setpoint_and_counts_bottles():
    filler = Filler(setpoint_bpm=120.0)
    for _ in range(100):
        filler.step(0.1)   # 10 s at 20 bpm/s: reaches 120 bpm after 6 s
    assert filler.speed_bpm == 120.0
    assert 10 <= filler.bottles <= 14   # 6 s ramping up to 2 bpm/s, then 4 s at 2 bottles/s
    filler.running = False
    filler.step(10.0)
    assert filler.speed_bpm < 120.0


async def test_the_demo_edge_node_is_discovered_read_and_written_through_the_demo_config(
        mqtt_broker, redis_client, tmp_path):
    plant = load_config(DEFAULT_CONFIG_PATH)
    config = plant.sources[SOURCE].model_copy(update={"host": "127.0.0.1", "port": mqtt_broker.port})
    tags = [t for t in plant.tags if t.source == SOURCE]
    writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
    source = SparkplugDataSource(SOURCE, config, tags, writer, data_dir=tmp_path)
    edge = SparkplugEdge("127.0.0.1", mqtt_broker.port, interval_s=0.1)
    handler = WriteHandler(redis_client, source, block_ms=100)
    async with running(writer.run(), source.run(), edge.run(), handler.run()):
        speed = await wait_for_latest(redis_client, "Packaging.Filler1.Speed", lambda tv: tv.quality == GOOD,
                                      timeout_s=10)
        assert 0 <= speed.value <= 600
        bottles = await wait_for_latest(redis_client, "Packaging.Filler1.Bottles", lambda tv: tv.quality == GOOD)
        assert isinstance(bottles.value, int)
        discovered = await read_discovered_tags(redis_client)
        assert {"Packaging.Filler1.Bottles", "Packaging.Filler1.Running"} <= set(discovered)
        assert "Packaging.Filler1.Speed_setpoint" not in discovered   # configured, so not discovered again
        assert not any("bdSeq" in name or "Node_Control" in name for name in discovered)   # session metrics
        await wait_for_write_group(redis_client, SOURCE)
        outcome = await request_write(redis_client, SOURCE, "Packaging.Filler1.Speed_setpoint", 420.0)
        assert outcome.status is WriteStatus.DONE, outcome
        assert edge.filler.setpoint_bpm == 420.0
