"""OPC UA source (asyncua Client): subscribe to every tag's node, stream into the tag store, write.

The tags are planned (opcua_plan) into subscriptions by publishing interval, at
most max_items_per_subscription each, and spread over several connections when
there are more than max_items_per_connection. Each connection is its own session
with its own reconnect loop and capped backoff (asyncua's auto_reconnect is off:
it was seen not to resume) and its own watchdog; losing one turns only its tags
Bad. Each item has its own sampling interval, queue (oldest discarded; values the
server flags as overflowed are counted in n.server_queue_overflows) and, for
numeric tags, a deadband filter with trigger StatusValue; a filter the server
rejects falls back to an absolute deadband from the tag's range, or none (logged
once). Values arrive through subscriptions whose publish results we read
directly, without asyncua's per-event objects, queue or tasks; the items wait in
a bounded inbox (overflow counted as n.dropped) so that the next Publish request
goes out at once, and are converted in slices into the tag store's bounded,
counted buffer.

Time to Bad: a closed connection (server stopped, socket reset) is noticed by the
next watchdog check, at most 0.5 s later, and every tag of that connection turns BadCommunicationError.
A silent one (cable pulled, server hung) when neither data nor keep-alive arrived
for stale_after_s (keep-alives are requested at least twice per stale_after_s):
at most stale_after_s + 0.5 s after the last message, its tags turn BadNoCommunication.
"""
from __future__ import annotations

import asyncio
import functools
import time

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState

from data_sources.backoff import Backoff
from data_sources.base import ConnectionLog, DataSource, SourceConfigError, WriteResult, now_ms
from data_sources.device_alarm_handler import ConditionAckResult
from data_sources.notification_inbox import NotificationInbox
from data_sources.opcua_client import REQUEST_TIMEOUT_S, disconnect_quietly, new_client
from data_sources.opcua_conditions import ConditionWatcher
from data_sources.opcua_items import Granted, SubscriptionResult, create_subscription
from data_sources.opcua_plan import ConnectionPlan, SubscriptionPlan, plan_connections
from data_sources.opcua_values import UnknownNamespace, overflow_flagged, resolve_node_id, tag_value_from_data_value
from data_sources.opcua_writes import WritableNode, read_writable_nodes, write_and_confirm
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
from tag_store.device_alarms import DeviceAlarmOutbox
from tag_store.source_status import ConnectionState

BAD_NODE_ID_INVALID = quality_from_code(0x80330000, "BadNodeIdInvalid")
# Received data changes waiting for conversion; beyond this the oldest are dropped and counted.
MAX_QUEUED_ITEMS = 200_000


class ConnectionLost(Exception):
    """The session is gone; `quality` is what the tags become."""

    def __init__(self, reason: str, quality: Quality = BAD_COMMUNICATION_ERROR):
        super().__init__(reason)
        self.quality = quality


class _Connection:
    """One client session of the source: its share of the tags, its own watchdog, its own reconnect loop."""

    def __init__(self, number: int, plan: ConnectionPlan, connection_log: ConnectionLog):
        self.number = number
        self.plan = plan
        self.handles = plan.handles
        self.connection_log = connection_log
        self.state = ConnectionState.CONNECTING
        self.detail = "starting"
        self.client: Client | None = None
        self.writable: dict[str, WritableNode] = {}
        self.subscribed = 0
        self.granted = Granted()
        self.connects = 0
        self.last_publish_s = 0.0
        self.sequence_numbers: dict[int, int] = {}  # subscription id -> last sequence number
        self.lost: ConnectionLost | None = None
        # False from a failure until the next subscription: a late response must not undo the Bad marks.
        self.accepting_data = False


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
        plans = plan_connections(self.tags, self.config) or [
            ConnectionPlan((SubscriptionPlan(self.config.publishing_interval_ms, ()),))]
        self._connections = [
            _Connection(i, plan, self.connection_log if len(plans) == 1 else ConnectionLog(self.log, f"{self.name}#{i}"))
            for i, plan in enumerate(plans)]
        self._connection_of = {self.tags[h].name: c for c in self._connections for h in c.handles}
        self._filter_fallback_logged = False
        self._overflow_logged = False
        self._inbox = NotificationInbox(MAX_QUEUED_ITEMS, self._convert_items, self._count_dropped)
        # OPC UA Alarms & Conditions (opcua_conditions.py), on the first connection's session.
        self._conditions = (ConditionWatcher(self.name, self.config.device_alarms, self.tags, self.counters,
                                             self.log)
                            if self.config.device_alarms is not None else None)

    @property
    def device_alarm_outbox(self) -> DeviceAlarmOutbox | None:
        return self._conditions.outbox if self._conditions is not None else None

    async def acknowledge_condition(self, condition: str, comment: str, timeout_s: float) -> ConditionAckResult:
        if self._conditions is None:
            return ConditionAckResult(False, f"source {self.name} does not follow device alarms")
        return await self._conditions.acknowledge(condition, comment, timeout_s)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def run(self) -> None:
        self.publish_waiting_for_initial_data()
        if self._conditions is not None:
            self._conditions.waiting_for_initial_data(now_ms())
        converter = asyncio.create_task(self._inbox.run(), name=f"{self.name}-convert")
        try:
            await asyncio.gather(*(self._connect_forever(c) for c in self._connections))
        finally:
            converter.cancel()
            self._inbox.convert_now()  # a clean stop loses nothing that arrived

    async def _connect_forever(self, conn: _Connection) -> None:
        backoff = Backoff(initial_s=0.5, max_s=self.config.reconnect_max_delay_s)
        while True:
            self._set_connection_state(conn, ConnectionState.CONNECTING, f"connecting to {self.config.endpoint}")
            client: Client | None = None
            try:
                client = await new_client(self.name, self.config, self._password, self.data_dir)
                await self._one_session(conn, client, backoff)
            except ConnectionLost as exc:
                self._on_failure(conn, str(exc), exc.quality)
            except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
                self._on_failure(conn, f"{type(exc).__name__}: {exc}", BAD_NO_COMMUNICATION)
            except Exception as exc:  # noqa: BLE001 - library errors stop here; the loop must go on
                self._on_failure(conn, f"unexpected {type(exc).__name__}: {exc}", BAD_NO_COMMUNICATION)
            finally:
                # After the tags are marked: closing a dead session may take a moment.
                conn.client = None
                if client is not None:
                    await disconnect_quietly(client)
            await asyncio.sleep(backoff.next_delay_s())

    def _set_connection_state(self, conn: _Connection, state: ConnectionState, detail: str) -> None:
        """The source is connected when every connection is; otherwise it shows the first one that is not."""
        conn.state, conn.detail = state, detail
        if len(self._connections) == 1:
            self.set_state(state, detail)
            return
        if all(c.state is ConnectionState.CONNECTED for c in self._connections):
            nodes = sum(c.subscribed for c in self._connections)
            self.set_state(ConnectionState.CONNECTED, f"{nodes} nodes subscribed on {self.config.endpoint}"
                                                      f" over {len(self._connections)} connections")
            return
        worst = next((c for c in self._connections if c.state is ConnectionState.DISCONNECTED),
                     next(c for c in self._connections if c.state is not ConnectionState.CONNECTED))
        self.set_state(worst.state, f"connection {worst.number + 1} of {len(self._connections)}: {worst.detail}")

    def _on_failure(self, conn: _Connection, reason: str, quality: Quality) -> None:
        conn.accepting_data = False
        self._inbox.convert_now()  # what arrived before the loss goes first, then the Bad marks
        at_ms = now_ms()
        for handle in conn.handles:
            self.mark_tag_bad(self.tags[handle].name, quality, at_ms)
        if self._conditions is not None and conn.number == 0:
            self._conditions.session_lost(quality, at_ms)
        self.counters.connect_failures += 1
        self._set_connection_state(conn, ConnectionState.DISCONNECTED, reason)
        conn.connection_log.failed(f"{self.config.endpoint}: {reason}")

    async def _one_session(self, conn: _Connection, client: Client, backoff: Backoff) -> None:
        await asyncio.wait_for(client.connect(), REQUEST_TIMEOUT_S * 2)
        namespace_uris = await client.get_namespace_array()
        monitored = self._resolve_nodes(conn.handles, namespace_uris)
        conn.writable = await self._read_writable_types(client, monitored)
        conn.lost = None
        conn.sequence_numbers = {}
        conn.accepting_data = True
        conn.last_publish_s = time.monotonic()
        conn.subscribed, conn.granted = 0, Granted()
        for subscription in conn.plan.subscriptions:
            conn.subscribed += await self._subscribe(conn, client, subscription, monitored)
        if self._conditions is not None and conn.number == 0:
            await self._conditions.start_session(client, namespace_uris, self.config.publishing_interval_ms,
                                                 self.config.stale_after_s, functools.partial(self._on_publish, conn),
                                                 now_ms())
        conn.client = client
        self.counters.reconnects += conn.connects > 0
        self.counters.connects += 1
        conn.connects += 1
        self._count_revisions()
        revised = conn.granted.describe()
        detail = f"{conn.subscribed} nodes subscribed on {self.config.endpoint}" + (f"; {revised}" if revised else "")
        self._set_connection_state(conn, ConnectionState.CONNECTED, detail)
        conn.connection_log.connected(f"connected to {self.config.endpoint}, {conn.subscribed} nodes"
                                      f" in {len(conn.plan.subscriptions)} subscriptions"
                                      + (f"; {revised}" if revised else ""))
        backoff.reset()
        await self._watch(conn, client)

    def _resolve_nodes(self, handles: list[int], namespace_uris: list[str]) -> dict[int, ua.NodeId]:
        """Client handle (index into self.tags) -> node id; tags that do not resolve turn Bad."""
        monitored = {}
        for handle in handles:
            tag = self.tags[handle]
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
        return await read_writable_nodes(
            client, [(self.tags[h], node_id) for h, node_id in monitored.items() if self.tags[h].writable])

    async def _subscribe(
        self, conn: _Connection, client: Client, plan: SubscriptionPlan, monitored: dict[int, ua.NodeId]
    ) -> int:
        """One subscription with its items; how many items the server took."""
        result: SubscriptionResult = await create_subscription(
            client, plan, monitored, self.config.stale_after_s, functools.partial(self._on_publish, conn))
        for item, tried, status_name in result.filter_fallbacks:
            self._log_filter_fallback(item, tried, status_name)
        for item, status in result.refused:
            self._tag_unavailable(self.tags[item.handle], quality_from_code(status.value, status.name), status.name)
        conn.granted.add(result.granted)
        return result.granted.items

    def _count_revisions(self) -> None:
        """Diagnostics: items the servers granted less than asked, over the current sessions."""
        self.counters.items_sampling_revised = sum(c.granted.sampling_slower for c in self._connections)
        self.counters.items_queue_revised = sum(c.granted.queue_smaller for c in self._connections)

    def _log_filter_fallback(self, item, tried: int, status_name: str) -> None:
        if self._filter_fallback_logged:
            return
        self._filter_fallback_logged = True
        rejected, instead = item.deadbands_to_try()[tried], item.deadbands_to_try()[tried + 1]
        self.log.warning(
            "source %s: the server rejects the deadband filter (%s) for %s with %s; using %s instead "
            "(logged once, for the first such tag)", self.name, rejected, self.tags[item.handle].name, status_name,
            "no deadband" if instead is None else instead)

    def _on_publish(self, conn: _Connection, result: ua.PublishResult) -> None:
        """Every publish response, keep-alives included: file the items and return at once."""
        conn.last_publish_s = time.monotonic()
        message = result.NotificationMessage
        if not message.NotificationData or not conn.accepting_data:
            return
        receive_ms = now_ms()
        for notification in message.NotificationData:
            items = getattr(notification, "MonitoredItems", None)
            if items is not None:
                self._count_sequence_gap(conn, result.SubscriptionId, message.SequenceNumber)
                self._inbox.put(items, receive_ms)
            elif isinstance(notification, ua.EventNotificationList) and self._conditions is not None:
                self._conditions.on_events(notification.Events, receive_ms)
            elif isinstance(notification, ua.StatusChangeNotification):
                self._on_status_change(conn, notification.Status)

    def _convert_items(self, items: list[ua.MonitoredItemNotification], receive_ms: int) -> None:
        """The hot path: data change items to TagValues into the tag store."""
        tags, counters = self.tags, self.counters
        for item in items:
            if not 0 <= item.ClientHandle < len(tags):
                continue
            status = item.Value.StatusCode
            if status is not None and status.value and overflow_flagged(status.value):
                self._count_overflow(tags[item.ClientHandle])
            tv = tag_value_from_data_value(tags[item.ClientHandle], item.Value, receive_ms)
            if tv.quality is BAD_TYPE_MISMATCH or tv.quality is BAD_OUT_OF_RANGE:
                counters.bad_payloads += 1
            self.publish_value(tv)

    def _count_overflow(self, tag: Tag) -> None:
        """The server's item queue was full and it dropped values (oldest first): counted, first one logged."""
        if not self._overflow_logged:
            self._overflow_logged = True
            self.log.warning("source %s: the server dropped values of %s (item queue overflow); raise its queue_size"
                             " or sampling_interval_ms (further ones counted in n.server_queue_overflows)",
                             self.name, tag.name)
        self.counters.server_queue_overflows += 1

    def _count_dropped(self, count: int) -> None:
        if not self.counters.dropped:
            self.log.error("source %s: conversion cannot keep up; dropping the oldest updates (counted in n.dropped)",
                           self.name)
        self.counters.dropped += count

    def _count_sequence_gap(self, conn: _Connection, subscription_id: int, sequence_number: int) -> None:
        last = conn.sequence_numbers.get(subscription_id)
        if last is not None and sequence_number > last + 1:
            self.counters.missed_notifications += sequence_number - last - 1
        conn.sequence_numbers[subscription_id] = sequence_number

    def _on_status_change(self, conn: _Connection, status: ua.StatusCode) -> None:
        if status is not None and not status.is_good():
            # asyncua reports a dropped connection as BadShutdown too: do not claim the server shut down.
            reason = "the server shut down or the connection dropped" if status.name == "BadShutdown" \
                else "subscription ended"
            conn.lost = ConnectionLost(f"{reason} ({status.name})")

    async def _watch(self, conn: _Connection, client: Client) -> None:
        """Return never; raise ConnectionLost when the session dies or goes silent."""
        stale_after_s = self.config.stale_after_s
        check_s = min(0.5, stale_after_s / 4)
        while True:
            await asyncio.sleep(check_s)
            if conn.lost is not None:
                raise conn.lost
            if client.state is not UaClientState.CONNECTED:
                raise ConnectionLost("connection to the server lost")
            silent_s = time.monotonic() - conn.last_publish_s
            if silent_s > stale_after_s:
                raise ConnectionLost(
                    f"no data and no keep-alive for {silent_s:.1f} s (stale_after_s={stale_after_s:g})",
                    BAD_NO_COMMUNICATION)

    async def write(self, tag: Tag, value: ScalarValue, timeout_s: float) -> WriteResult:
        conn = self._connection_of.get(tag.name)
        if conn is None:
            return WriteResult.rejected(f"tag {tag.name} is not on source {self.name}")
        client, node = conn.client, conn.writable.get(tag.name)
        if client is None:
            return WriteResult.rejected(f"not connected to {self.config.endpoint}")
        if node is None:
            return WriteResult.rejected(f"node {tag.node_id} is not available for writing")
        return await write_and_confirm(client, tag, node, value, timeout_s)
