"""Alarms decided by a device (OPC UA Alarms & Conditions, Part 9) as Stacklight alarm records.

The device decides; Stacklight only mirrors. Each condition (and each of its branches)
is one AlarmRecord, keyed `<source>:<condition>`. Its state comes from the event's
ActiveState and AckedState (ISA-18.2 letters as in domain.alarms.records):

    active, unacknowledged      B (UNACK ACTIVE)
    active, acknowledged        C (ACK ACTIVE)
    inactive, unacknowledged    D (RTN UNACK)
    inactive, acknowledged      A (NORMAL)

A condition the server no longer retains (Retain false) is gone: its record is
removed (moved to A first if it was shown, so the journal says so). A condition
without ActiveState (not an alarm) is active while retained; one without AckedState
never needs an acknowledgement. The Quality of the condition and a lost connection
set input_bad: the state holds, the operator sees that it is not live.
Pure: no I/O, no clock; the engine owns the records.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from domain.alarms.records import AlarmRecord, AlarmState, AlarmTransition
from domain.quality import quality_from_code

# Where the ISA-18.2 path has a name for a move, the journal uses it (as domain.alarms.state_model does).
_ISA_TRANSITIONS = {
    (AlarmState.NORMAL, AlarmState.UNACK_ACTIVE): "T1",
    (AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE): "T2",
    (AlarmState.UNACK_ACTIVE, AlarmState.RETURNED_UNACK): "T3",
    (AlarmState.ACK_ACTIVE, AlarmState.NORMAL): "T5",
    (AlarmState.RETURNED_UNACK, AlarmState.NORMAL): "T8",
    (AlarmState.RETURNED_UNACK, AlarmState.UNACK_ACTIVE): "T9",
}
ACKNOWLEDGING = {("B", "C"), ("D", "A")}
# How long an operator's acknowledgement sent to the device names the acknowledging event that comes back.
OPERATOR_ACK_MATCH_MS = 60_000


@dataclass(frozen=True, slots=True)
class ConditionEvent:
    """One event notification of a condition (or branch), as the data source read it."""

    source: str
    condition: str          # the condition's key on its source: its node id, plus the branch for a branch
    tag: str                # the Stacklight tag of the condition's source node, else SourceName
    name: str               # ConditionName, else the event type's name
    message: str
    severity: int           # 1 (low) .. 1000 (high)
    time_ms: int
    retain: bool
    active: bool | None     # None: the condition is not an alarm (no ActiveState)
    acked: bool | None      # None: the condition is not acknowledgeable
    quality_code: int = 0   # the condition's Quality (its input), an OPC UA StatusCode
    branch: bool = False
    user: str = ""          # ClientUserId: who last acknowledged or commented, as the device says
    comment: str = ""


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """Not a condition but the state of the feed: `lost`, `refresh_start`, `refresh_end`.

    `lost`: the connection is gone, every record of the source is no longer live.
    `refresh_end` lists every condition the refresh delivered: the server retains no other.
    """

    source: str
    kind: str
    time_ms: int
    quality_code: int = 0
    quality_name: str = ""
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OperatorAck:
    """An operator's acknowledgement, sent to the device, waiting for the device's acknowledged event."""

    user: str
    comment: str | None
    sent_ms: int


def device_alarm_id(source: str, condition: str) -> str:
    return f"{source}:{condition}"


def priority_for_severity(severity: int, thresholds: tuple[int, int, int]) -> int:
    """OPC UA Severity (1..1000) to Stacklight priority 1 (highest) .. 4, given three descending thresholds."""
    for priority, lowest in enumerate(thresholds, start=1):
        if severity >= lowest:
            return priority
    return 4


def state_of(event: ConditionEvent) -> AlarmState:
    active = event.retain if event.active is None else event.active
    acked = True if event.acked is None else event.acked
    if active:
        return AlarmState.ACK_ACTIVE if acked else AlarmState.UNACK_ACTIVE
    return AlarmState.NORMAL if acked else AlarmState.RETURNED_UNACK


def transition_name(from_state: AlarmState, to_state: AlarmState) -> str:
    """The ISA-18.2 number where there is one; otherwise `A>C` (a move only the device makes)."""
    return _ISA_TRANSITIONS.get((from_state, to_state), f"{from_state.value}>{to_state.value}")


def apply_condition_event(
    record: AlarmRecord | None, event: ConditionEvent, *, area: str, thresholds: tuple[int, int, int],
    now_ms: int, operator_ack: OperatorAck | None = None,
) -> tuple[AlarmRecord | None, list[AlarmTransition]]:
    """The record after this event (None: removed) and the journal entries of the move.

    `operator_ack` is the acknowledgement Stacklight sent for this alarm, if any: an
    acknowledging move names that user and comment; otherwise the device's ClientUserId.
    """
    alarm_id = device_alarm_id(event.source, event.condition)
    before = record.state if record is not None else AlarmState.NORMAL
    target = state_of(event) if event.retain else AlarmState.NORMAL
    if record is None:
        if not event.retain:
            return None, []  # nothing shown, nothing to keep
        record = AlarmRecord(
            alarm_id=alarm_id, tag=event.tag, kind=event.name, priority=4, message="", area=area,
            state_since_ms=now_ms, device_source=event.source, device_condition=event.condition)
    record = replace(
        record, tag=event.tag, kind=event.name, area=area, message=event.message,
        priority=priority_for_severity(event.severity, thresholds), condition_active=target in (
            AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE),
        input_bad=quality_from_code(event.quality_code).is_bad)
    transitions: list[AlarmTransition] = []
    if target is not before:
        user, comment = _who_acknowledged(before, target, event, operator_ack, now_ms)
        transitions.append(AlarmTransition(
            alarm_id=alarm_id, transition=transition_name(before, target), from_state=before, to_state=target,
            time_ms=event.time_ms or now_ms, value=None, user=user, comment=comment))
        changes: dict = {"state": target, "state_since_ms": now_ms}
        if target is AlarmState.UNACK_ACTIVE and before in (AlarmState.NORMAL, AlarmState.RETURNED_UNACK):
            changes.update(activated_ms=event.time_ms or now_ms, acknowledged_ms=None, acknowledged_by=None,
                           ack_comment=None)
        elif before is AlarmState.NORMAL and target is not AlarmState.NORMAL:
            changes.update(activated_ms=event.time_ms or now_ms)
        if (before.value, target.value) in ACKNOWLEDGING:
            changes.update(acknowledged_ms=now_ms, acknowledged_by=user, ack_comment=comment)
        record = replace(record, **changes)
    if not event.retain:
        return None, transitions
    return record, transitions


def _who_acknowledged(
    before: AlarmState, target: AlarmState, event: ConditionEvent, operator_ack: OperatorAck | None, now_ms: int,
) -> tuple[str | None, str | None]:
    if (before.value, target.value) not in ACKNOWLEDGING:
        return None, None
    if operator_ack is not None and now_ms - operator_ack.sent_ms <= OPERATOR_ACK_MATCH_MS:
        return operator_ack.user, operator_ack.comment
    return (event.user or "device"), (event.comment or None)


def mark_source_lost(records: list[AlarmRecord]) -> list[AlarmRecord]:
    """The source's connection is gone: its alarms keep their state and show that it is not live."""
    return [replace(r, input_bad=True) for r in records if not r.input_bad]


def not_refreshed(
    records: list[AlarmRecord], refreshed: set[str], now_ms: int,
) -> tuple[list[str], list[AlarmTransition]]:
    """After a refresh, the source's records the server did not send again: removed (ids), with journal entries."""
    removed, transitions = [], []
    for record in records:
        if record.device_condition in refreshed:
            continue
        removed.append(record.alarm_id)
        if record.state is not AlarmState.NORMAL:
            transitions.append(AlarmTransition(
                alarm_id=record.alarm_id, transition=transition_name(record.state, AlarmState.NORMAL),
                from_state=record.state, to_state=AlarmState.NORMAL, time_ms=now_ms, value=None,
                comment="no longer retained by the device (condition refresh)"))
    return removed, transitions
