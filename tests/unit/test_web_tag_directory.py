"""The web's tag directory: configured plus discovered tags, configured names win, reloads only on a new version."""
from __future__ import annotations

import asyncio

from domain.config_model import Tag
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


class FakeCatalog:
    """The two reads TagDirectory makes (tag_store.tag_catalog), counted."""

    def __init__(self):
        self.version, self.tags, self.catalog_reads = 0, {}, 0


def test_the_catalog_is_read_only_when_its_version_moved(monkeypatch):
    catalog = FakeCatalog()

    async def version(_redis):
        return catalog.version

    async def read(_redis):
        catalog.catalog_reads += 1
        return dict(catalog.tags)

    monkeypatch.setattr("web.tag_directory.catalog_version", version)
    monkeypatch.setattr("web.tag_directory.read_discovered_tags", read)
    directory = TagDirectory(PLANT)

    async def polls():
        assert not await directory.reload_if_changed(None)  # version 0: nothing discovered yet
        catalog.version, catalog.tags = 1, {"A.temp": found("A.temp")}
        assert await directory.reload_if_changed(None)
        assert not await directory.reload_if_changed(None)
        catalog.tags["B.temp"] = found("B.temp")  # written but no version bump yet: not seen
        assert not await directory.reload_if_changed(None)
        catalog.version = 2
        assert await directory.reload_if_changed(None)

    asyncio.run(polls())
    assert catalog.catalog_reads == 2
    assert [t.name for t in directory.discovered()] == ["A.temp", "B.temp"] and directory.version == 2


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
