"""Creating one OPC UA subscription and its monitored items, and what the server granted.

Items go ITEMS_PER_REQUEST at a time. A deadband filter the server rejects is
retried with the item's next choice (see ItemSettings.deadbands_to_try). A server
may revise what was asked: a slower sampling interval or a smaller queue than
requested is counted here, so the source can report it instead of hiding it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from asyncua import Client, ua

from data_sources.opcua_plan import ItemSettings, SubscriptionPlan
from data_sources.opcua_values import FILTER_REJECTED_CODES, monitored_item_request

ITEMS_PER_REQUEST = 1000


def subscription_parameters(publishing_interval_ms: int, stale_after_s: float) -> ua.CreateSubscriptionParameters:
    publishing_ms = float(publishing_interval_ms)
    # Keep-alives at least twice per stale_after_s, so silence means the link is gone.
    keepalive_count = max(1, math.floor(stale_after_s * 1000 / 2 / publishing_ms))
    return ua.CreateSubscriptionParameters(
        RequestedPublishingInterval=publishing_ms,
        RequestedLifetimeCount=max(3 * keepalive_count, math.ceil(60_000 / publishing_ms)),
        RequestedMaxKeepAliveCount=keepalive_count,
        MaxNotificationsPerPublish=0,
        PublishingEnabled=True,
        Priority=0,
    )


@dataclass(slots=True)
class Granted:
    """What the server made of a request: fewer or slower than asked is worth telling the engineer."""

    subscriptions: int = 0
    items: int = 0
    publishing_slower: int = 0       # subscriptions whose publishing interval the server raised
    sampling_slower: int = 0         # items sampled slower than requested
    slowest_sampling_ms: float = 0.0
    queue_smaller: int = 0           # items whose queue the server shrank

    def add(self, other: Granted) -> None:
        self.subscriptions += other.subscriptions
        self.items += other.items
        self.publishing_slower += other.publishing_slower
        self.sampling_slower += other.sampling_slower
        self.slowest_sampling_ms = max(self.slowest_sampling_ms, other.slowest_sampling_ms)
        self.queue_smaller += other.queue_smaller

    def describe(self) -> str:
        """'' when the server granted everything; otherwise one line for logs and the status detail."""
        parts = []
        if self.publishing_slower:
            parts.append(f"publishing slower on {self.publishing_slower} subscriptions")
        if self.sampling_slower:
            parts.append(f"sampling slower on {self.sampling_slower} items"
                         f" (slowest {self.slowest_sampling_ms:g} ms)")
        if self.queue_smaller:
            parts.append(f"smaller queues on {self.queue_smaller} items")
        return "server revised: " + ", ".join(parts) if parts else ""


@dataclass(slots=True)
class SubscriptionResult:
    subscription_id: int
    granted: Granted
    # Items the server refused for their own reason: (item, status code); their tags turn Bad.
    refused: list[tuple[ItemSettings, ua.StatusCode]] = field(default_factory=list)
    # Filters the server rejected and what was tried instead: (item, index of the rejected deadband, status name).
    filter_fallbacks: list[tuple[ItemSettings, int, str]] = field(default_factory=list)


def note_granted(granted: Granted, item: ItemSettings, outcome: ua.MonitoredItemCreateResult) -> None:
    granted.items += 1
    revised_ms = float(outcome.RevisedSamplingInterval)
    # A requested 0 means "as fast as you can": whatever the server picks is what was asked.
    if item.sampling_interval_ms > 0 and revised_ms > item.sampling_interval_ms:
        granted.sampling_slower += 1
        granted.slowest_sampling_ms = max(granted.slowest_sampling_ms, revised_ms)
    if 0 < outcome.RevisedQueueSize < item.queue_size:
        granted.queue_smaller += 1


async def create_subscription(
    client: Client, plan: SubscriptionPlan, node_ids: dict[int, ua.NodeId], stale_after_s: float,
    on_publish: Callable[[ua.PublishResult], None],
) -> SubscriptionResult:
    """One subscription with the plan's items whose node ids resolved (client handle -> node id)."""
    created = await client.uaclient.create_subscription(
        subscription_parameters(plan.publishing_interval_ms, stale_after_s), on_publish)
    result = SubscriptionResult(created.SubscriptionId, Granted(subscriptions=1))
    if created.RevisedPublishingInterval > plan.publishing_interval_ms:
        result.granted.publishing_slower = 1
    # (item, index of the deadband to try) until each item is accepted or has failed for its own reason.
    pending = [(item, 0) for item in plan.items if item.handle in node_ids]
    while pending:
        retry = []
        for start in range(0, len(pending), ITEMS_PER_REQUEST):
            chunk = pending[start:start + ITEMS_PER_REQUEST]
            request = ua.CreateMonitoredItemsParameters(
                SubscriptionId=created.SubscriptionId,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                ItemsToCreate=[monitored_item_request(node_ids[item.handle], item, item.deadbands_to_try()[i])
                               for item, i in chunk])
            outcomes = await client.uaclient.create_monitored_items(request)
            for (item, i), outcome in zip(chunk, outcomes, strict=True):
                if outcome.StatusCode.is_good():
                    note_granted(result.granted, item, outcome)
                elif outcome.StatusCode.value in FILTER_REJECTED_CODES and i + 1 < len(item.deadbands_to_try()):
                    result.filter_fallbacks.append((item, i, outcome.StatusCode.name))
                    retry.append((item, i + 1))
                else:
                    result.refused.append((item, outcome.StatusCode))
        pending = retry
    return result
