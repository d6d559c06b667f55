"""Page building blocks render the hooks the live script needs, and the app wires every page."""
from __future__ import annotations

import json
import sys

import pytest

from components.limit_bar import limit_bar
from components.live_fields import live_attrs
from components.priority_indicator import priority_indicator
from components.setpoint_entry import SetpointEntry
from components.tag_table import TagTable, faceplate_href, tag_row_model
from tests.unit.web_plant import small_plant

PLANT = small_plant()


def walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            yield from walk(child)


def live_fields_of(component) -> set[tuple[str, str]]:
    return {(getattr(c, "data-sl-tag", None), getattr(c, "data-sl-field", None))
            for c in walk(component) if getattr(c, "data-sl-field", None)}


def test_tag_table_is_one_component_carrying_its_row_model():
    table = TagTable(PLANT.tags[:2], title="Tanks", aio_id="t")
    host = next(c for c in walk(table) if getattr(c, "data-sl-rows", None))
    assert host.id == {"component": "TagTable", "subcomponent": "table", "aio_id": "t"}
    model = json.loads(getattr(host, "data-sl-rows"))
    assert model["columns"][1] == "Tag" and len(model["rows"]) == 2
    assert model["rows"][0] == tag_row_model(PLANT.tag("T1.level")) == {
        "tag": "T1.level", "href": "/tag/T1.level", "description": "Tank level", "unit": "m", "range": [0.0, 5.0],
        "marks": [["HH 4.5 m", 90.0], ["L 0.5 m", 10.0]],
    }
    assert tag_row_model(PLANT.tag("P1.run"))["range"] is None
    assert faceplate_href("a b/c") == "/tag/a%20b%2Fc"
    with pytest.raises(ValueError):
        live_attrs("T1.level", "colour")


def test_priority_indicator_carries_shape_class_and_number():
    indicator = priority_indicator(2, unacknowledged=True)
    assert indicator.className == "sl-prio sl-prio-2 sl-unack"
    assert indicator.children.children == "2"


def test_limit_bar_draws_operator_limits_and_alarm_limits():
    bar = limit_bar(PLANT.tag("T1.level"))
    labels = [c.children for c in walk(bar) if getattr(c, "className", "") == "sl-limitbar-alarm-label"]
    assert labels == ["HH 4.5 m", "L 0.5 m"]
    assert ("T1.level", "marker") in live_fields_of(bar)


def test_setpoint_entry_ids_are_dicts_per_instance():
    entry = SetpointEntry(PLANT.tag("P1.run"), aio_id="sp1")
    ids = [c.id for c in walk(entry) if getattr(c, "id", None)]
    assert {"component": "SetpointEntry", "subcomponent": "confirm", "aio_id": "sp1"} in ids
    assert all(isinstance(i, dict) and i["aio_id"] == "sp1" for i in ids)
    assert len(SetpointEntry(PLANT.tag("T1.setpoint")).children[0].id["aio_id"]) == 36  # a uuid by default


@pytest.fixture(scope="module")
def app():
    from app import create_app  # noqa: PLC0415 - one Dash app per process, made here

    return create_app(PLANT, redis_url="redis://127.0.0.1:1/0")


def test_the_app_builds_every_page(app):
    overview = sys.modules["layouts.overview"].layout()
    assert '"tag":"M1.flow"' in str(overview)
    faceplate = sys.modules["layouts.faceplate"].layout(name="T1.setpoint")
    assert "needs the operator role" in str(faceplate)  # no session here: the controls are not offered
    assert "Unknown tag" in str(sys.modules["layouts.faceplate"].layout(name="nope"))
    trend = sys.modules["layouts.trend"].layout(tags="T1.level,nope", window="60")
    dropdown = next(c for c in walk(trend) if getattr(c, "id", None) == "trend-pens")
    assert dropdown.value == ["T1.level"]
    assert "alarm-grid" in str(sys.modules["layouts.alarms"].layout())


def test_the_app_registers_the_live_push_as_a_persistent_websocket_callback(app):
    from dash._callback import GLOBAL_CALLBACK_LIST  # noqa: PLC0415

    persistent = [spec for spec in GLOBAL_CALLBACK_LIST + app._callback_list  # noqa: SLF001
                  if spec.get("persistent")]
    assert len(persistent) == 1 and persistent[0]["websocket"] and persistent[0]["inputs"] == []
