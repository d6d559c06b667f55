"""OPC UA Alarms & Conditions (Part 9) for the OPC UA source: follow a server's conditions, acknowledge them.

Per session, one event subscription on the configured notifiers (default the Server
object) with an EventFilter that selects the ConditionType fields by browse path,
each with the type that defines it (a field an event's type does not have comes back
null), and the ConditionId (ConditionType, empty browse path, attribute NodeId).
The where clause asks for ConditionType events and the three refresh events (servers
should send those regardless, not all do); a server that rejects it gets no where
clause, and events that are no condition are skipped here. Then ConditionRefresh
(Part 9 5.5.7) sends the current state of every retained condition between a
RefreshStartEvent and a RefreshEndEvent; the RefreshEnd carries the list of what came,
so the engine can drop what the server no longer retains. A RefreshRequiredEvent
refreshes again.

Events become plain ConditionEvents in the source's DeviceAlarmOutbox; losing the
session puts a `lost` marker there (the alarms keep their state, shown not live).
Acknowledge calls AcknowledgeableConditionType.Acknowledge on the condition with the
EventId of the condition's latest notification that asked for acknowledgement (AckedState
false), as Part 9 5.7.3 wants; the server's StatusCode is the answer.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from asyncua import Client, ua

from data_sources.base import SourceCounters
from data_sources.device_alarm_handler import ConditionAckResult
from data_sources.opcua_items import subscription_parameters
from data_sources.opcua_values import resolve_node_id, source_time_ms
from domain.config_model import DeviceAlarms, Tag
from domain.device_alarms import ConditionEvent, SourceEvent
from domain.quality import (
    BAD_CONFIGURATION_ERROR,
    BAD_NODE_ID_UNKNOWN,
    BAD_WAITING_FOR_INITIAL_DATA,
    Quality,
    quality_from_code,
)
from tag_store.device_alarms import DeviceAlarmOutbox

BASE_EVENT_TYPE = ua.NodeId(ua.ObjectIds.BaseEventType)
CONDITION_TYPE = ua.NodeId(ua.ObjectIds.ConditionType)
ACKNOWLEDGEABLE_CONDITION_TYPE = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType)
ALARM_CONDITION_TYPE = ua.NodeId(ua.ObjectIds.AlarmConditionType)
REFRESH_START = ua.NodeId(ua.ObjectIds.RefreshStartEventType)
REFRESH_END = ua.NodeId(ua.ObjectIds.RefreshEndEventType)
REFRESH_REQUIRED = ua.NodeId(ua.ObjectIds.RefreshRequiredEventType)
CONDITION_REFRESH = ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh)
ACKNOWLEDGE = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
EVENT_QUEUE_SIZE = 1000
EVENT_CLIENT_HANDLE = 0xFFFF_FFFF
CALL_TIMEOUT_S = 5.0
FILTER_REFUSED_CODES = frozenset({
    ua.StatusCodes.BadEventFilterInvalid, ua.StatusCodes.BadFilterNotAllowed,
    ua.StatusCodes.BadMonitoredItemFilterUnsupported, ua.StatusCodes.BadFilterOperatorUnsupported,
    ua.StatusCodes.BadFilterOperandInvalid})

# (name, the type that defines the field, browse path; None = the ConditionId, attribute NodeId), in select order.
SELECT = (
    ("event_id", BASE_EVENT_TYPE, "EventId"),
    ("event_type", BASE_EVENT_TYPE, "EventType"),
    ("source_node", BASE_EVENT_TYPE, "SourceNode"),
    ("source_name", BASE_EVENT_TYPE, "SourceName"),
    ("time", BASE_EVENT_TYPE, "Time"),
    ("message", BASE_EVENT_TYPE, "Message"),
    ("severity", BASE_EVENT_TYPE, "Severity"),
    ("condition_id", CONDITION_TYPE, None),
    ("condition_name", CONDITION_TYPE, "ConditionName"),
    ("branch_id", CONDITION_TYPE, "BranchId"),
    ("retain", CONDITION_TYPE, "Retain"),
    ("quality", CONDITION_TYPE, "Quality"),
    ("user", CONDITION_TYPE, "ClientUserId"),
    ("comment", CONDITION_TYPE, "Comment"),
    ("acked", ACKNOWLEDGEABLE_CONDITION_TYPE, "AckedState/Id"),
    ("active", ALARM_CONDITION_TYPE, "ActiveState/Id"),
)
_INDEX = {name: i for i, (name, _type, _path) in enumerate(SELECT)}


def event_filter(with_where_clause: bool = True) -> ua.EventFilter:
    select = [
        ua.SimpleAttributeOperand(
            TypeDefinitionId=type_id,
            BrowsePath=[ua.QualifiedName(part, 0) for part in path.split("/")] if path else [],
            AttributeId=ua.AttributeIds.Value if path else ua.AttributeIds.NodeId)
        for _name, type_id, path in SELECT]
    where = ua.ContentFilter()
    if with_where_clause:
        # OfType ConditionType or RefreshStart or RefreshEnd or RefreshRequired, as a chain of Or elements.
        types = [CONDITION_TYPE, REFRESH_START, REFRESH_END, REFRESH_REQUIRED]
        elements = []
        for i, type_id in enumerate(types):
            of_type = ua.ContentFilterElement(
                FilterOperator=ua.FilterOperator.OfType, FilterOperands=[ua.LiteralOperand(Value=ua.Variant(type_id))])
            if i < len(types) - 1:
                base = len(elements)
                elements.append(ua.ContentFilterElement(
                    FilterOperator=ua.FilterOperator.Or,
                    FilterOperands=[ua.ElementOperand(Index=base + 1), ua.ElementOperand(Index=base + 2)]))
            elements.append(of_type)
        where = ua.ContentFilter(Elements=elements)
    return ua.EventFilter(SelectClauses=select, WhereClause=where)


def portable_node_id(node_id: ua.NodeId, namespace_uris: list[str]) -> str:
    """`nsu=<uri>;s=...` for a server namespace (stable across the server's namespace order), else as is."""
    text = node_id.to_string()
    if node_id.NamespaceIndex and node_id.NamespaceIndex < len(namespace_uris):
        return f"nsu={namespace_uris[node_id.NamespaceIndex]};{text.split(';', 1)[1]}"
    return text


def _value(fields: list[ua.Variant], name: str):
    i = _INDEX[name]
    return fields[i].Value if i < len(fields) and fields[i] is not None else None


def _text(value) -> str:
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    return value if isinstance(value, str) else ""


def _node(value) -> ua.NodeId | None:
    return value if isinstance(value, ua.NodeId) and not value.is_null() else None


@dataclass(slots=True)
class _Known:
    """What acknowledging a condition (or branch) needs: the object to call, the event to name."""

    condition_id: ua.NodeId
    event_id: bytes
    ack_event_id: bytes | None  # latest notification with AckedState false


@dataclass(slots=True)
class _Session:
    client: Client
    namespace_uris: list[str]
    subscription_id: int
    tag_by_node: dict[ua.NodeId, str]


class ConditionWatcher:
    """One source's view of its server's conditions; events go to `outbox`."""

    def __init__(self, source_name: str, settings: DeviceAlarms, tags: list[Tag], counters: SourceCounters,
                 log: logging.Logger):
        self.source_name = source_name
        self.settings = settings
        self.tags = tags
        self.outbox = DeviceAlarmOutbox()
        self.log = log
        self.counters = counters
        self._session: _Session | None = None
        self._known: dict[str, _Known] = {}
        self._refreshed: set[str] | None = None  # conditions seen since the RefreshStart
        self._lost: Quality | None = None
        self._where_clause_refused = False
        self._tasks: set[asyncio.Task] = set()

    # --- session life cycle --------------------------------------------------------------------

    def waiting_for_initial_data(self, now_ms: int) -> None:
        """Before the first session: alarms kept from before are not live until the refresh."""
        self.session_lost(BAD_WAITING_FOR_INITIAL_DATA, now_ms)

    def session_lost(self, quality: Quality, now_ms: int) -> None:
        self._session, self._known, self._refreshed = None, {}, None
        for task in self._tasks:
            task.cancel()
        if self._lost != quality:
            self._lost = quality
            self.outbox.put(SourceEvent(self.source_name, "lost", now_ms, quality.code, quality.name))

    async def start_session(
        self, client: Client, namespace_uris: list[str], publishing_interval_ms: int, stale_after_s: float,
        on_publish: Callable[[ua.PublishResult], None], now_ms: int,
    ) -> None:
        """Event subscription, then ConditionRefresh.

        What the server refuses is logged and leaves these alarms not live; the session (and its
        tags) goes on. A refused refresh leaves them not live until each condition's next event.
        """
        self._known, self._refreshed = {}, None
        try:
            notifiers = [resolve_node_id(n, namespace_uris) for n in self.settings.notifiers]
            created = await client.uaclient.create_subscription(
                subscription_parameters(publishing_interval_ms, stale_after_s), on_publish)
            # Events may come as soon as an item exists: the session is in place before.
            self._session = _Session(client, namespace_uris, created.SubscriptionId,
                                     self._tags_by_node(namespace_uris))
            refused = await self._monitor(client, created.SubscriptionId, notifiers)
        except ValueError as exc:  # a notifier in a namespace the server does not have
            self._unavailable(f"notifier: {exc}", BAD_NODE_ID_UNKNOWN, now_ms)
            return
        except ua.UaStatusCodeError as exc:
            name = ua.StatusCode(exc.code).name
            self._unavailable(f"the server refused the event subscription: {name}",
                              quality_from_code(exc.code, name), now_ms)
            return
        if len(refused) == len(notifiers):
            self._unavailable(f"the server refused every notifier ({', '.join(refused)})",
                              BAD_CONFIGURATION_ERROR, now_ms)
            return
        for problem in refused:
            self.log.error("source %s: device alarms: notifier refused: %s", self.source_name, problem)
        if await self.refresh():
            self._lost = None

    def _unavailable(self, reason: str, quality: Quality, now_ms: int) -> None:
        self.log.error("source %s: device alarms unavailable: %s", self.source_name, reason)
        self.session_lost(quality, now_ms)

    async def _monitor(self, client: Client, subscription_id: int, notifiers: list[ua.NodeId]) -> list[str]:
        """One event item per notifier; a refused where clause is retried without one. The refusals."""
        async def create(nodes: list[ua.NodeId], with_where: bool) -> list[ua.MonitoredItemCreateResult]:
            return await client.uaclient.create_monitored_items(ua.CreateMonitoredItemsParameters(
                SubscriptionId=subscription_id, TimestampsToReturn=ua.TimestampsToReturn.Neither,
                ItemsToCreate=[ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.EventNotifier),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=ua.MonitoringParameters(
                        ClientHandle=EVENT_CLIENT_HANDLE, SamplingInterval=0.0, QueueSize=EVENT_QUEUE_SIZE,
                        DiscardOldest=True, Filter=event_filter(with_where)))
                    for node_id in nodes]))

        with_where = not self._where_clause_refused
        outcome = dict(zip(notifiers, await create(notifiers, with_where), strict=True))
        filter_refused = [n for n, r in outcome.items() if with_where and r.StatusCode.value in FILTER_REFUSED_CODES]
        if filter_refused:
            self._where_clause_refused = True
            self.log.warning("source %s: device alarms: the server refuses the where clause (%s); filtering here",
                             self.source_name, outcome[filter_refused[0]].StatusCode.name)
            outcome.update(zip(filter_refused, await create(filter_refused, False), strict=True))
        return [f"{n.to_string()}: {r.StatusCode.name}" for n, r in outcome.items() if not r.StatusCode.is_good()]

    async def refresh(self) -> bool:
        """ConditionRefresh on this session's event subscription (the conditions arrive as events); accepted?"""
        session = self._session
        if session is None:
            return False
        request = ua.CallMethodRequest(
            ObjectId=CONDITION_TYPE, MethodId=CONDITION_REFRESH,
            InputArguments=[ua.Variant(session.subscription_id, ua.VariantType.UInt32)])
        try:
            [result] = await asyncio.wait_for(session.client.uaclient.call([request]), CALL_TIMEOUT_S)
        except TimeoutError:
            self.log.error("source %s: device alarms: no answer to ConditionRefresh within %g s",
                           self.source_name, CALL_TIMEOUT_S)
            return False
        except ua.UaStatusCodeError as exc:
            self.log.error("source %s: device alarms: ConditionRefresh failed: %s", self.source_name,
                           ua.StatusCode(exc.code).name)
            return False
        if not result.StatusCode.is_good():
            self.log.error("source %s: device alarms: ConditionRefresh refused: %s (alarms not live until "
                           "their next event)", self.source_name, result.StatusCode.name)
            return False
        return True

    def _tags_by_node(self, namespace_uris: list[str]) -> dict[ua.NodeId, str]:
        found = {}
        for tag in self.tags:
            try:
                found[resolve_node_id(tag.node_id or "", namespace_uris)] = tag.name
            except ValueError:
                continue
        return found

    # --- events --------------------------------------------------------------------------------

    def on_events(self, events: list[ua.EventFieldList], receive_ms: int) -> None:
        """From the publish handler: every event of the event subscription, in order."""
        session = self._session
        if session is None:
            return
        self.counters.device_alarm_events += len(events)
        for event in events:
            fields = event.EventFields
            event_type = _node(_value(fields, "event_type"))
            if event_type == REFRESH_START:
                self._refreshed = set()
                self.outbox.put(SourceEvent(self.source_name, "refresh_start", receive_ms))
            elif event_type == REFRESH_END:
                if self._refreshed is not None:
                    self.outbox.put(SourceEvent(self.source_name, "refresh_end", receive_ms,
                                                conditions=tuple(sorted(self._refreshed))))
                self._refreshed = None
            elif event_type == REFRESH_REQUIRED:
                self.log.info("source %s: the server asks for a condition refresh", self.source_name)
                task = asyncio.get_running_loop().create_task(self.refresh())
                self._tasks.add(task)
                task.add_done_callback(self._refresh_done)
            else:
                condition = self._condition_event(session, fields, event_type, receive_ms)
                if condition is not None:
                    self.outbox.put(condition)
        self.counters.device_alarm_events_dropped = self.outbox.dropped

    def _refresh_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("source %s: device alarms: refresh failed: %s", self.source_name, task.exception())

    def _condition_event(self, session: _Session, fields: list[ua.Variant], event_type: ua.NodeId | None,
                         receive_ms: int) -> ConditionEvent | None:
        condition_id = _node(_value(fields, "condition_id"))
        event_id = _value(fields, "event_id")
        if condition_id is None or not isinstance(event_id, bytes):
            return None  # not a condition (no where clause, or a server that sends more)
        uris = session.namespace_uris
        key = portable_node_id(condition_id, uris)
        branch = _node(_value(fields, "branch_id"))
        if branch is not None:
            key += f" branch={portable_node_id(branch, uris)}"
        acked = _value(fields, "acked")
        known = self._known.get(key)
        ack_event_id = event_id if acked is False else (known.ack_event_id if known else None)
        self._known[key] = _Known(condition_id, event_id, ack_event_id)
        if self._refreshed is not None:
            self._refreshed.add(key)
        source_node = _node(_value(fields, "source_node"))
        tag = (session.tag_by_node.get(source_node) if source_node is not None else None) or _text(
            _value(fields, "source_name")) or (portable_node_id(source_node, uris) if source_node else "device")
        quality = _value(fields, "quality")
        severity = _value(fields, "severity")
        retain = _value(fields, "retain")
        active = _value(fields, "active")
        return ConditionEvent(
            source=self.source_name, condition=key, tag=tag,
            name=_text(_value(fields, "condition_name")) or _type_name(event_type, uris),
            message=_text(_value(fields, "message")),
            severity=int(severity) if isinstance(severity, int) else 1,
            time_ms=source_time_ms(_value(fields, "time")) or receive_ms,
            retain=bool(retain) if retain is not None else True,
            active=active if isinstance(active, bool) else None,
            acked=acked if isinstance(acked, bool) else None,
            quality_code=quality.value if isinstance(quality, ua.StatusCode) else 0,
            branch=branch is not None,
            user=_text(_value(fields, "user")), comment=_text(_value(fields, "comment")))

    # --- acknowledge ---------------------------------------------------------------------------

    async def acknowledge(self, condition: str, comment: str, timeout_s: float) -> ConditionAckResult:
        session, known = self._session, self._known.get(condition)
        if session is None:
            return ConditionAckResult(False, "not connected to the device")
        if known is None:
            return ConditionAckResult(False, f"the device has no retained condition {condition}")
        request = ua.CallMethodRequest(
            ObjectId=known.condition_id, MethodId=ACKNOWLEDGE,
            InputArguments=[ua.Variant(known.ack_event_id or known.event_id, ua.VariantType.ByteString),
                            ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText)])
        try:
            [result] = await asyncio.wait_for(session.client.uaclient.call([request]), timeout_s)
        except TimeoutError:
            return ConditionAckResult(False, f"no answer from the device within {timeout_s:g} s")
        except Exception as exc:  # noqa: BLE001 - library errors stop here
            return ConditionAckResult(False, f"the acknowledge could not be sent: {type(exc).__name__}: {exc}")
        status = result.StatusCode
        if status.is_good():
            return ConditionAckResult(True, "acknowledged by the device", status.name)
        return ConditionAckResult(False, f"the device refused: {status.name}", status.name)


def _type_name(event_type: ua.NodeId | None, namespace_uris: list[str]) -> str:
    if event_type is None:
        return "condition"
    if event_type.NamespaceIndex == 0 and isinstance(event_type.Identifier, int):
        return ua.ObjectIdNames.get(event_type.Identifier, event_type.to_string())
    return portable_node_id(event_type, namespace_uris)
