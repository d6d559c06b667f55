"""OPC UA source (asyncua Client): subscribe to every tag's node, stream into the tag store, write.

One session per connection attempt, in our own reconnect loop with capped
backoff (asyncua's auto_reconnect is off: it was seen not to resume). Values
arrive through a subscription whose publish results we read directly, without
asyncua's per-event objects, queue or tasks; the items wait in a bounded inbox
(overflow counted as n.dropped) so that the next Publish request goes out at
once, and are converted in slices into the tag store's bounded, counted buffer.

Time to Bad: a closed connection (server stopped, socket reset) is noticed by the
next watchdog check, at most 0.5 s later, and every tag turns BadCommunicationError.
A silent one (cable pulled, server hung) when neither data nor keep-alive arrived
for stale_after_s (keep-alives are requested at least twice per stale_after_s):
at most stale_after_s + 0.5 s after the last message, every tag turns BadNoCommunication.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState

from data_sources.backoff import Backoff
from data_sources.base import DataSource, SourceConfigError, WriteResult, now_ms
from data_sources.notification_inbox import NotificationInbox
from data_sources.opcua_client import (
    REQUEST_TIMEOUT_S,
    disconnect_quietly,
    item_queue_size,
    monitored_item_request,
    new_client,
    subscription_parameters,
)
from data_sources.opcua_values import (
    UnknownNamespace,
    overflow_flagged,
    resolve_node_id,
    tag_value_from_data_value,
    value_for_variant,
    variant_type_of,
)
from domain.config_model import OpcUaSource, Tag
from domain.quality import (
    BAD_COMMUNICATION_ERROR,
    BAD_NO_COMMUNICATION,
    BAD_NODE_ID_UNKNOWN,
    BAD_OUT_OF_RANGE,
    BAD_TYPE_MISMATCH,
    Quality,
    quality_from_code,
)
from domain.secrets import SecretUnavailable, read_secret
from domain.tag_value import ScalarValue
from domain.write_rules import readback_matches
from tag_store.source_status import ConnectionState
from tag_store.write_requests import WriteStatus

BAD_NODE_ID_INVALID = quality_from_code(0x80330000, "BadNodeIdInvalid")
ITEMS_PER_REQUEST = 1000
# Received data changes waiting for conversion; beyond this the oldest are dropped and counted.
MAX_QUEUED_ITEMS = 200_000
READBACK_POLL_S = 0.1


class ConnectionLost(Exception):
    """The session is gone; `quality` is what the tags become."""

    def __init__(self, reason: str, quality: Quality = BAD_COMMUNICATION_ERROR):
        super().__init__(reason)
        self.quality = quality


@dataclass(frozen=True, slots=True)
class WritableNode:
    node_id: ua.NodeId
    variant_type: ua.VariantType | None


class OpcUaDataSource(DataSource):
    kind = "opcua"
    config: OpcUaSource

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._password: str | None = None
        if self.config.credentials is not None:
            try:
                self._password = read_secret(self.config.credentials.password)
            except SecretUnavailable as exc:
                raise SourceConfigError(f"source {self.name}: password: {exc}") from None
        self._client: Client | None = None
        self._writable: dict[str, WritableNode] = {}
        self._last_publish_s = 0.0
        self._last_sequence_number: int | None = None
        self._lost: ConnectionLost | None = None
        # False from a failure until the next subscription: a late response must not undo the Bad marks.
        self._accepting_data = False
        self._inbox = NotificationInbox(MAX_QUEUED_ITEMS, self._convert_items, self._count_dropped)

    async def run(self) -> None:
        self.publish_waiting_for_initial_data()
        converter = asyncio.create_task(self._inbox.run(), name=f"{self.name}-convert")
        try:
            await self._connect_forever()
        finally:
            converter.cancel()
            self._inbox.convert_now()  # a clean stop loses nothing that arrived

    async def _connect_forever(self) -> None:
        backoff = Backoff(initial_s=0.5, max_s=self.config.reconnect_max_delay_s)
        while True:
            self.set_state(ConnectionState.CONNECTING, f"connecting to {self.config.endpoint}")
            client: Client | None = None
            try:
                client = await new_client(self.name, self.config, self._password, self.data_dir)
                await self._one_session(client, backoff)
            except ConnectionLost as exc:
                self._on_failure(str(exc), exc.quality)
            except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
                self._on_failure(f"{type(exc).__name__}: {exc}", BAD_NO_COMMUNICATION)
            except Exception as exc:  # noqa: BLE001 - library errors stop here; the loop must go on
                self._on_failure(f"unexpected {type(exc).__name__}: {exc}", BAD_NO_COMMUNICATION)
            finally:
                # After the tags are marked: closing a dead session may take a moment.
                self._client = None
                if client is not None:
                    await disconnect_quietly(client)
            await asyncio.sleep(backoff.next_delay_s())

    def _on_failure(self, reason: str, quality: Quality) -> None:
        self._accepting_data = False
        self._inbox.convert_now()  # what arrived before the loss goes first, then the Bad marks
        self.mark_all_bad(quality)
        self.counters.connect_failures += 1
        self.set_state(ConnectionState.DISCONNECTED, reason)
        self.connection_log.failed(f"{self.config.endpoint}: {reason}")

    async def _one_session(self, client: Client, backoff: Backoff) -> None:
        await asyncio.wait_for(client.connect(), REQUEST_TIMEOUT_S * 2)
        namespace_uris = await client.get_namespace_array()
        monitored = self._resolve_nodes(namespace_uris)
        self._writable = await self._read_writable_types(client, monitored)
        self._lost = None
        self._last_sequence_number = None
        self._accepting_data = True
        await self._subscribe(client, monitored)
        self._client = client
        self.counters.reconnects += self.counters.connects > 0
        self.counters.connects += 1
        self.set_state(ConnectionState.CONNECTED, f"{len(monitored)} nodes subscribed on {self.config.endpoint}")
        self.connection_log.connected(f"connected to {self.config.endpoint}, {len(monitored)} nodes")
        backoff.reset()
        await self._watch(client)

    def _resolve_nodes(self, namespace_uris: list[str]) -> dict[int, ua.NodeId]:
        """Client handle (index into self.tags) -> node id; tags that do not resolve turn Bad."""
        monitored = {}
        for handle, tag in enumerate(self.tags):
            try:
                monitored[handle] = resolve_node_id(tag.node_id or "", namespace_uris)
            except ValueError as exc:
                quality = BAD_NODE_ID_UNKNOWN if isinstance(exc, UnknownNamespace) else BAD_NODE_ID_INVALID
                self._tag_unavailable(tag, quality, str(exc))
        return monitored

    def _tag_unavailable(self, tag: Tag, quality: Quality, reason: str) -> None:
        if self.latest(tag.name) is None or self.latest(tag.name).quality != quality:
            self.log.error("source %s: tag %s (%s) is unavailable: %s", self.name, tag.name, tag.node_id, reason)
        self.mark_tag_bad(tag.name, quality)

    async def _read_writable_types(self, client: Client, monitored: dict[int, ua.NodeId]) -> dict[str, WritableNode]:
        """Each writable node's DataType, read once per session: writes use that exact VariantType."""
        handles = [h for h in monitored if self.tags[h].writable]
        if not handles:
            return {}
        nodes = [client.get_node(monitored[h]) for h in handles]
        data_types = await client.read_attributes(nodes, ua.AttributeIds.DataType)
        values = await client.read_attributes(nodes, ua.AttributeIds.Value)
        writable = {}
        for handle, data_type, value in zip(handles, data_types, values, strict=True):
            data_type_node = data_type.Value.Value if data_type.Value is not None else None
            variant_type = variant_type_of(data_type_node, value.Value)
            writable[self.tags[handle].name] = WritableNode(monitored[handle], variant_type)
        return writable

    async def _subscribe(self, client: Client, monitored: dict[int, ua.NodeId]) -> None:
        self._last_publish_s = time.monotonic()
        result = await client.uaclient.create_subscription(subscription_parameters(self.config), self._on_publish)
        sampling_ms = float(self.config.sampling_interval_ms)
        queue_size = item_queue_size(result.RevisedPublishingInterval, sampling_ms)
        handles = list(monitored)
        for start in range(0, len(handles), ITEMS_PER_REQUEST):
            chunk = handles[start:start + ITEMS_PER_REQUEST]
            request = ua.CreateMonitoredItemsParameters(
                SubscriptionId=result.SubscriptionId,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                ItemsToCreate=[monitored_item_request(monitored[h], h, sampling_ms, queue_size) for h in chunk],
            )
            results = await client.uaclient.create_monitored_items(request)
            for handle, item in zip(chunk, results, strict=True):
                if not item.StatusCode.is_good():
                    code = item.StatusCode.value
                    self._tag_unavailable(self.tags[handle], quality_from_code(code, item.StatusCode.name),
                                          item.StatusCode.name)

    def _on_publish(self, result: ua.PublishResult) -> None:
        """Every publish response, keep-alives included: file the items and return at once."""
        self._last_publish_s = time.monotonic()
        message = result.NotificationMessage
        if not message.NotificationData or not self._accepting_data:
            return
        receive_ms = now_ms()
        for notification in message.NotificationData:
            items = getattr(notification, "MonitoredItems", None)
            if items is not None:
                self._count_sequence_gap(message.SequenceNumber)
                self._inbox.put(items, receive_ms)
            elif isinstance(notification, ua.StatusChangeNotification):
                self._on_status_change(notification.Status)

    def _convert_items(self, items: list[ua.MonitoredItemNotification], receive_ms: int) -> None:
        """The hot path: data change items to TagValues into the tag store."""
        tags, counters = self.tags, self.counters
        for item in items:
            if not 0 <= item.ClientHandle < len(tags):
                continue
            tv = tag_value_from_data_value(tags[item.ClientHandle], item.Value, receive_ms)
            if tv.quality is BAD_TYPE_MISMATCH or tv.quality is BAD_OUT_OF_RANGE:
                counters.bad_payloads += 1
            elif tv.quality.code and overflow_flagged(tv.quality.code):
                counters.server_queue_overflows += 1
            self.publish_value(tv)

    def _count_dropped(self, count: int) -> None:
        if not self.counters.dropped:
            self.log.error("source %s: conversion cannot keep up; dropping the oldest updates (counted in n.dropped)",
                           self.name)
        self.counters.dropped += count

    def _count_sequence_gap(self, sequence_number: int) -> None:
        last = self._last_sequence_number
        if last is not None and sequence_number > last + 1:
            self.counters.missed_notifications += sequence_number - last - 1
        self._last_sequence_number = sequence_number

    def _on_status_change(self, status: ua.StatusCode) -> None:
        if status is not None and not status.is_good():
            self._lost = ConnectionLost(f"subscription ended by {status.name}")

    async def _watch(self, client: Client) -> None:
        """Return never; raise ConnectionLost when the session dies or goes silent."""
        stale_after_s = self.config.stale_after_s
        check_s = min(0.5, stale_after_s / 4)
        while True:
            await asyncio.sleep(check_s)
            if self._lost is not None:
                raise self._lost
            if client.state is not UaClientState.CONNECTED:
                raise ConnectionLost("connection to the server lost")
            silent_s = time.monotonic() - self._last_publish_s
            if silent_s > stale_after_s:
                raise ConnectionLost(
                    f"no data and no keep-alive for {silent_s:.1f} s (stale_after_s={stale_after_s:g})",
                    BAD_NO_COMMUNICATION)

    async def write(self, tag: Tag, value: ScalarValue, timeout_s: float) -> WriteResult:
        client, node = self._client, self._writable.get(tag.name)
        if client is None:
            return WriteResult.rejected(f"not connected to {self.config.endpoint}")
        if node is None or node.variant_type is None:
            return WriteResult.rejected(f"node {tag.node_id} is not available for writing")
        try:
            device_value = value_for_variant(value, node.variant_type)
        except ValueError as exc:
            return WriteResult.rejected(str(exc), device_status="BadTypeMismatch")
        write_value = ua.WriteValue(
            NodeId=node.node_id, AttributeId=ua.AttributeIds.Value,
            Value=ua.DataValue(ua.Variant(device_value, node.variant_type)))
        deadline_s = time.monotonic() + timeout_s
        try:
            [status] = await asyncio.wait_for(
                client.get_node(node.node_id).write_params(ua.WriteParameters(NodesToWrite=[write_value])), timeout_s)
        except TimeoutError:
            return WriteResult(WriteStatus.TIMED_OUT, f"no answer from the server within {timeout_s:g} s")
        except Exception as exc:  # noqa: BLE001 - library errors stop here
            return WriteResult.rejected(f"the write could not be sent: {type(exc).__name__}: {exc}")
        if not status.is_good():
            return WriteResult.rejected(f"the server refused the write: {status.name}", device_status=status.name)
        return await self._read_back(client, tag, node, device_value, deadline_s)

    async def _read_back(
        self, client: Client, tag: Tag, node: WritableNode, expected: ScalarValue, deadline_s: float
    ) -> WriteResult:
        readback: ScalarValue = None
        while True:
            try:
                [dv] = await client.read_attributes([client.get_node(node.node_id)], ua.AttributeIds.Value)
                readback = dv.Value.Value if dv.Value is not None else None
                if dv.StatusCode.is_good() and readback_matches(tag, expected, readback):
                    return WriteResult(WriteStatus.DONE, "written and confirmed", readback, "Good")
            except Exception as exc:  # noqa: BLE001 - keep trying until the deadline
                self.log.debug("source %s: readback of %s failed: %s", self.name, tag.name, exc)
            if time.monotonic() + READBACK_POLL_S > deadline_s:
                return WriteResult(WriteStatus.TIMED_OUT, f"written, but the readback is {readback!r}",
                                   readback, "Good")
            await asyncio.sleep(READBACK_POLL_S)

