"""Spreading OPC UA tags over connections and subscriptions, and each item's settings."""
from __future__ import annotations

import pytest

from data_sources.opcua_plan import (
    DeadbandKind,
    DeadbandSetting,
    ItemSettings,
    even_chunks,
    plan_connections,
)
from domain.config_model import DataType, OpcUaSource, Tag


def config(**kwargs) -> OpcUaSource:
    return OpcUaSource(kind="opcua", endpoint="opc.tcp://127.0.0.1:4840",
                       security={"policy": "None", "mode": "None"}, **kwargs)


def tag(i: int, **kwargs) -> Tag:
    return Tag(name=f"t{i}", source="plc", node_id=f"ns=2;s=T{i}", **kwargs)


def test_defaults_put_every_tag_in_one_subscription_with_the_source_settings():
    [connection] = plan_connections([tag(i) for i in range(3)], config())
    [subscription] = connection.subscriptions
    assert subscription.publishing_interval_ms == 250
    assert subscription.items == tuple(ItemSettings(i, 100.0, 10) for i in range(3))


def test_tag_overrides_win_over_source_defaults():
    tags = [tag(0, sampling_interval_ms=1000, queue_size=3, publishing_interval_ms=2000), tag(1)]
    [connection] = plan_connections(tags, config(sampling_interval_ms=50, queue_size=5))
    slow, = [s for s in connection.subscriptions if s.publishing_interval_ms == 2000]
    fast, = [s for s in connection.subscriptions if s.publishing_interval_ms == 250]
    assert slow.items == (ItemSettings(0, 1000.0, 3),)
    assert fast.items == (ItemSettings(1, 50.0, 5),)


def test_subscriptions_hold_at_most_max_items_and_are_even():
    [connection] = plan_connections([tag(i) for i in range(10)], config(max_items_per_subscription=4))
    assert [len(s.items) for s in connection.subscriptions] == [4, 3, 3]
    assert sorted(connection.handles) == list(range(10))


def test_each_publishing_interval_gets_its_own_subscriptions():
    tags = [tag(i, publishing_interval_ms=100 if i % 2 else 1000) for i in range(6)]
    [connection] = plan_connections(tags, config(max_items_per_subscription=2))
    assert [(s.publishing_interval_ms, [it.handle for it in s.items]) for s in connection.subscriptions] == [
        (100, [1, 3]), (100, [5]), (1000, [0, 2]), (1000, [4])]


def test_many_tags_spread_evenly_over_connections():
    plans = plan_connections([tag(i) for i in range(10_000)], config(max_items_per_connection=3000))
    assert [len(p.handles) for p in plans] == [2500] * 4
    assert sorted(h for p in plans for h in p.handles) == list(range(10_000))
    assert all(len(s.items) <= 1000 for p in plans for s in p.subscriptions)
    assert [len(p.subscriptions) for p in plans] == [3] * 4


def test_no_tags_no_connections():
    assert plan_connections([], config()) == []


def test_absolute_deadband_from_the_source_only_for_numeric_tags():
    tags = [tag(0), tag(1, data_type=DataType.BOOL), tag(2, data_type=DataType.INT)]
    [connection] = plan_connections(tags, config(deadband={"absolute": 0.5}))
    items = {it.handle: it for it in connection.subscriptions[0].items}
    assert items[0].deadband == DeadbandSetting(DeadbandKind.ABSOLUTE, 0.5)
    assert items[1].deadband is None and items[1].deadbands_to_try() == [None]
    assert items[2].deadbands_to_try() == [DeadbandSetting(DeadbandKind.ABSOLUTE, 0.5), None]


def test_percent_deadband_falls_back_to_the_share_of_the_configured_range():
    tags = [tag(0, range={"low": -50, "high": 150}, deadband={"percent": 2}), tag(1, deadband={"percent": 2})]
    [connection] = plan_connections(tags, config(deadband={"absolute": 9}))
    with_range, without = connection.subscriptions[0].items
    assert with_range.deadbands_to_try() == [
        DeadbandSetting(DeadbandKind.PERCENT, 2), DeadbandSetting(DeadbandKind.ABSOLUTE, 4.0), None]
    assert without.deadbands_to_try() == [DeadbandSetting(DeadbandKind.PERCENT, 2), None]


def test_even_chunks():
    assert even_chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert even_chunks(list(range(3)), 3) == [[0, 1, 2]]
    assert even_chunks([], 3) == []


def test_a_deadband_setting_checks_itself():
    with pytest.raises(ValueError):
        DeadbandSetting(DeadbandKind.ABSOLUTE, -1)
