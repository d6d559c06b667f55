"""Discovered tags in Redis: published once per change, read back as Tags, configured names win."""
from __future__ import annotations

from domain.config_model import Tag
from tag_store import keys
from tag_store.tag_catalog import catalog_version, merged_tags, publish_discovered_tags, read_discovered_tags


def mqtt_tag(name: str, unit: str = "degC") -> Tag:
    return Tag(name=name, source="broker", topic=f"plant/{name}/temperature", unit=unit)


async def test_published_tags_read_back_and_only_changes_raise_the_version(redis_client):
    assert await catalog_version(redis_client) == 0
    assert await publish_discovered_tags(redis_client, [mqtt_tag("a.temp"), mqtt_tag("b.temp")]) == 2
    assert await catalog_version(redis_client) == 1
    assert await publish_discovered_tags(redis_client, [mqtt_tag("a.temp")]) == 0
    assert await catalog_version(redis_client) == 1
    assert await publish_discovered_tags(redis_client, [mqtt_tag("a.temp", unit="K")]) == 1
    found = await read_discovered_tags(redis_client)
    assert set(found) == {"a.temp", "b.temp"} and found["a.temp"].unit == "K"
    assert found["b.temp"].topic == "plant/b.temp/temperature"


async def test_an_entry_that_no_longer_validates_is_skipped(redis_client):
    await redis_client.hset(keys.TAG_CATALOG, mapping={"x": '{"name": "x"}', "y": "not json"})
    await publish_discovered_tags(redis_client, [mqtt_tag("a.temp")])
    assert set(await read_discovered_tags(redis_client)) == {"a.temp"}


def test_configured_tags_win_and_come_first():
    configured = [mqtt_tag("z.temp", unit="configured")]
    discovered = {"z.temp": mqtt_tag("z.temp"), "b.temp": mqtt_tag("b.temp"), "a.temp": mqtt_tag("a.temp")}
    merged = merged_tags(configured, discovered)
    assert [t.name for t in merged] == ["z.temp", "a.temp", "b.temp"]
    assert merged[0].unit == "configured"
