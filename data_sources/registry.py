"""Which class serves which source kind: one entry per protocol module."""
from __future__ import annotations

from pathlib import Path

from data_sources.base import DataSource, SourceConfig
from data_sources.mqtt_source import MqttDataSource
from data_sources.opcua_source import OpcUaDataSource
from data_sources.sparkplug_source import SparkplugDataSource
from domain.config_model import Tag
from tag_store.writer import TagStoreWriter

SOURCE_CLASSES: dict[str, type[DataSource]] = {
    OpcUaDataSource.kind: OpcUaDataSource,
    MqttDataSource.kind: MqttDataSource,
    SparkplugDataSource.kind: SparkplugDataSource,
}


def create_source(
    name: str, config: SourceConfig, tags: list[Tag], store: TagStoreWriter, *, data_dir: Path
) -> DataSource:
    return SOURCE_CLASSES[config.kind](name, config, tags, store, data_dir=data_dir)
