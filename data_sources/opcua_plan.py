"""Which OPC UA connection and subscription each tag goes in, with which monitored item settings.

Pure: tags and the source's settings in, a plan out; nothing here talks to a server.
Tags are grouped by publishing interval; the items are spread evenly over as few
connections as max_items_per_connection allows, and within a connection over as
few subscriptions per interval as max_items_per_subscription allows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from typing import Sequence

from domain.config_model import Deadband, OpcUaSource, Tag


class DeadbandKind(StrEnum):
    ABSOLUTE = "absolute"
    PERCENT = "percent"  # of the node's EURange, judged by the server


@dataclass(frozen=True, slots=True)
class DeadbandSetting:
    kind: DeadbandKind
    value: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"a deadband is a finite number >= 0, not {self.value!r}")


@dataclass(frozen=True, slots=True)
class ItemSettings:
    """One monitored item; `handle` is the tag's index in the source's tag list."""

    handle: int
    sampling_interval_ms: float
    queue_size: int
    # What to ask for first, then what to ask for if the server rejects the filter (None: no deadband).
    deadband: DeadbandSetting | None = None
    fallback_deadband: DeadbandSetting | None = None

    def deadbands_to_try(self) -> list[DeadbandSetting | None]:
        """The filters to request in turn until the server accepts one; ends with no deadband."""
        tries: list[DeadbandSetting | None] = [self.deadband]
        if self.deadband is not None:
            if self.fallback_deadband is not None and self.fallback_deadband != self.deadband:
                tries.append(self.fallback_deadband)
            tries.append(None)
        return tries


@dataclass(frozen=True, slots=True)
class SubscriptionPlan:
    publishing_interval_ms: int
    items: tuple[ItemSettings, ...]


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    subscriptions: tuple[SubscriptionPlan, ...]

    @property
    def handles(self) -> list[int]:
        return [item.handle for sub in self.subscriptions for item in sub.items]


def deadband_settings(tag: Tag, config: OpcUaSource) -> tuple[DeadbandSetting | None, DeadbandSetting | None]:
    """(requested deadband, fallback if the server rejects it) for one tag.

    Only numeric tags get one. A percent deadband falls back to the same share of
    the tag's configured range as an absolute deadband, or to none without a range.
    """
    if not tag.data_type.is_numeric:
        return None, None
    configured: Deadband | None = tag.deadband if tag.deadband is not None else config.deadband
    if configured is None:
        return None, None
    if configured.absolute is not None:
        return DeadbandSetting(DeadbandKind.ABSOLUTE, configured.absolute), None
    percent = DeadbandSetting(DeadbandKind.PERCENT, configured.percent)
    if tag.range is None:
        return percent, None
    span = tag.range.high - tag.range.low
    return percent, DeadbandSetting(DeadbandKind.ABSOLUTE, configured.percent / 100 * span)


def item_settings(handle: int, tag: Tag, config: OpcUaSource) -> ItemSettings:
    deadband, fallback = deadband_settings(tag, config)
    sampling_ms = tag.sampling_interval_ms if tag.sampling_interval_ms is not None else config.sampling_interval_ms
    return ItemSettings(
        handle=handle,
        sampling_interval_ms=float(sampling_ms),
        queue_size=tag.queue_size if tag.queue_size is not None else config.queue_size,
        deadband=deadband,
        fallback_deadband=fallback,
    )


def publishing_interval_ms(tag: Tag, config: OpcUaSource) -> int:
    return tag.publishing_interval_ms if tag.publishing_interval_ms is not None else config.publishing_interval_ms


def even_chunks(items: Sequence, max_size: int) -> list[Sequence]:
    """`items` in as few consecutive chunks of at most max_size as possible, their sizes differing by at most 1."""
    if not items:
        return []
    count = math.ceil(len(items) / max_size)
    base, extra = divmod(len(items), count)
    chunks, start = [], 0
    for i in range(count):
        end = start + base + (i < extra)
        chunks.append(items[start:end])
        start = end
    return chunks


def plan_connections(tags: Sequence[Tag], config: OpcUaSource) -> list[ConnectionPlan]:
    """Every tag (by its index in `tags`) in exactly one subscription of exactly one connection."""
    by_interval = sorted(range(len(tags)), key=lambda h: (publishing_interval_ms(tags[h], config), h))
    plans = []
    for handles in even_chunks(by_interval, config.max_items_per_connection):
        subscriptions = []
        for interval_ms, group in groupby(handles, key=lambda h: publishing_interval_ms(tags[h], config)):
            items = [item_settings(h, tags[h], config) for h in group]
            subscriptions += [SubscriptionPlan(interval_ms, tuple(chunk))
                              for chunk in even_chunks(items, config.max_items_per_subscription)]
        plans.append(ConnectionPlan(tuple(subscriptions)))
    return plans
