"""The web's tag directory: configured plus discovered tags, configured names win, reloads only on a new version."""
from __future__ import annotations

import asyncio

from domain.config_model import Tag
from tag_store import keys
from tag_store.tag_catalog import decode_tag, encode_tag
from tests.unit.web_plant import small_plant
from web.discovered_view import MAX_ROWS, discovered_view, group_title
from web.tag_directory import TagDirectory

PLANT = small_plant()


def found(name: str, source: str = "mq", **fields) -> Tag:
    return Tag(name=name, source=source, topic=f"plant/{name}", **fields)


def test_discovered_tags_join_the_configured_ones_and_a_configured_name_wins():
    directory = TagDirectory(PLANT)
    assert [t.name for t in directory.tags()] == [t.name for t in PLANT.tags] and directory.version == 0
    directory.apply(3, {"Z.temp": found("Z.temp"), "A.temp": found("A.temp"),
                        "M1.flow": found("M1.flow", unit="l/s")})
    assert [t.name for t in directory.tags()][-2:] == ["A.temp", "Z.temp"]
    assert directory.version == 3
    assert directory.tag("M1.flow").unit == "m3/h"  # the plant file's definition
    assert not directory.is_discovered("M1.flow") and directory.is_discovered("A.temp")
    assert [t.name for t in directory.discovered()] == ["A.temp", "Z.temp"]
    assert [t.name for t in directory.by_source("mq")] == ["M1.flow", "A.temp", "Z.temp"]
    assert directory.tag("nope") is None and directory.tag(None) is None


def test_a_discovered_tag_on_a_source_the_plant_does_not_have_is_left_out(caplog):
    directory = TagDirectory(PLANT)
    directory.apply(1, {"X.temp": found("X.temp", source="elsewhere"), "A.temp": found("A.temp")})
    assert directory.tag("X.temp") is None and directory.tag("A.temp") is not None
    assert "X.temp" in caplog.text


class FakeCatalogRedis:
    """The two keys TagDirectory reads (sl:tag_catalog:version, sl:tag_catalog), reads counted."""

    def __init__(self):
        self.version, self.catalog, self.catalog_reads = 0, {}, 0

    def publish(self, tag: Tag) -> None:
        self.catalog[tag.name.encode()] = encode_tag(tag).encode()

    async def get(self, key):
        assert key == keys.TAG_CATALOG_VERSION
        return str(self.version).encode() if self.version else None

    async def hgetall(self, key):
        assert key == keys.TAG_CATALOG
        self.catalog_reads += 1
        return dict(self.catalog)


def test_the_catalog_is_read_only_when_its_version_moved_and_only_changed_entries_are_decoded(monkeypatch):
    redis, decoded = FakeCatalogRedis(), []

    def counting_decode(raw):
        decoded.append(raw)
        return decode_tag(raw)

    monkeypatch.setattr("web.tag_directory.decode_tag", counting_decode)
    directory = TagDirectory(PLANT)

    async def polls():
        assert not await directory.reload_if_changed(redis)  # version 0: nothing discovered yet
        redis.publish(found("A.temp"))
        redis.version = 1
        assert await directory.reload_if_changed(redis)
        assert not await directory.reload_if_changed(redis)
        redis.publish(found("B.temp"))  # written, but no version bump yet: not seen
        assert not await directory.reload_if_changed(redis)
        assert directory.tag("B.temp") is None
        redis.catalog[b"junk"] = b"not json"
        redis.version = 2
        assert await directory.reload_if_changed(redis)

    asyncio.run(polls())
    assert redis.catalog_reads == 2
    assert [t.name for t in directory.discovered()] == ["A.temp", "B.temp"] and directory.version == 2
    assert len(decoded) == 3  # A once, then B and the junk entry (skipped); A was not decoded again


def test_discovered_tags_group_by_area_if_set_else_source_and_are_limited():
    tags = [found(f"n{i:05d}.temp") for i in range(MAX_ROWS + 50)] + [found("pump.speed", area="Pumps")]
    assert group_title(tags[0]) == "from mq" and group_title(tags[-1]) == "Pumps"
    view = discovered_view(tags)
    assert [g.title for g in view.groups] == ["Pumps", "from mq"]
    assert view.shown == MAX_ROWS and view.matching == view.total == MAX_ROWS + 51
    assert len(view.groups[0].tags) == 1 and len(view.groups[1].tags) == MAX_ROWS - 1
    assert view.groups[1].matching == MAX_ROWS + 50
    assert "Showing 200 of 251 matching" in view.summary and "filter" in view.summary

    narrowed = discovered_view(tags, "N0001")
    assert narrowed.matching == 10 and narrowed.shown == 10 and narrowed.groups[0].title == "from mq"
    assert discovered_view(tags, "pump SPEED").groups[0].tags[0].name == "pump.speed"
    assert discovered_view([found("a.temp")]).summary == "1 discovered tag."
    assert discovered_view([]).summary == "No tags discovered."
