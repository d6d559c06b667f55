"""Limit alarms and their ISA-18.2 states, as pure functions of (record, input, time).

States follow ISA-18.2 / IEC 62682 (see docs/alarms.md): A normal, B active and
unacknowledged, C active and acknowledged, D returned to normal unacknowledged.
The alarm engine owns the records; this module only decides.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from domain.config_model import LimitAlarm, is_high_kind
from domain.quality import Quality


class AlarmState(StrEnum):
    NORMAL = "A"
    UNACK_ACTIVE = "B"
    ACK_ACTIVE = "C"
    RETURNED_UNACK = "D"

    @property
    def is_unacknowledged(self) -> bool:
        return self in (AlarmState.UNACK_ACTIVE, AlarmState.RETURNED_UNACK)

    @property
    def is_shown(self) -> bool:
        return self is not AlarmState.NORMAL


KIND_LABELS = {"high_high": "HH", "high": "H", "low": "L", "low_low": "LL"}


class ActionRefused(Exception):
    """An operator action that the alarm's state does not allow; str() is the reason."""


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    alarm_id: str
    tag: str
    kind: str
    priority: int
    message: str
    area: str
    state: AlarmState = AlarmState.NORMAL
    # The condition after on/off delays: what the operator is told.
    condition_active: bool = False
    # When the raw condition started to differ from condition_active (awaiting a delay).
    pending_since_ms: int | None = None
    last_value: float | None = None
    input_bad: bool = False
    state_since_ms: int = 0
    activated_ms: int | None = None
    acknowledged_ms: int | None = None
    acknowledged_by: str | None = None
    ack_comment: str | None = None
    # Set for an alarm a device decided (OPC UA Alarms & Conditions, domain/device_alarms.py):
    # the data source it came from and the condition's key there. None: a Stacklight limit alarm.
    device_source: str | None = None
    device_condition: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One entry for the alarm journal."""

    alarm_id: str
    transition: str  # ISA-18.2 transition number, e.g. "T1"
    from_state: AlarmState
    to_state: AlarmState
    time_ms: int
    value: float | None
    user: str | None = None
    comment: str | None = None


def alarm_id_for(tag: str, kind: str) -> str:
    return f"{tag}:{kind}"


def new_record(tag: str, kind: str, alarm: LimitAlarm, area: str, unit: str, now_ms: int) -> AlarmRecord:
    label = KIND_LABELS[kind]
    comparison = ">=" if is_high_kind(kind) else "<="
    message = alarm.message or f"{tag} {label} ({comparison} {alarm.limit:g} {unit})".strip()
    return AlarmRecord(
        alarm_id=alarm_id_for(tag, kind), tag=tag, kind=kind, priority=alarm.priority,
        message=message, area=area, state_since_ms=now_ms,
    )


def raw_condition(kind: str, alarm: LimitAlarm, value: float, currently_active: bool) -> bool:
    """Is the limit violated, honouring the deadband once the alarm is active?"""
    if is_high_kind(kind):
        return value > alarm.limit - alarm.deadband if currently_active else value >= alarm.limit
    return value < alarm.limit + alarm.deadband if currently_active else value <= alarm.limit


def evaluate(
    record: AlarmRecord, alarm: LimitAlarm, value: float | None, quality: Quality, now_ms: int
) -> tuple[AlarmRecord, list[AlarmTransition]]:
    """Advance one alarm with the latest input (also called on a timer for delays).

    A Bad input is not evaluated as normal: the state holds and `input_bad` is set.
    """
    if quality.is_bad or value is None:
        return (replace(record, input_bad=True) if not record.input_bad else record), []
    record = replace(record, input_bad=False, last_value=value)
    violated = raw_condition(record.kind, alarm, value, record.condition_active)
    if violated == record.condition_active:
        return (replace(record, pending_since_ms=None) if record.pending_since_ms is not None else record), []
    pending_since = record.pending_since_ms if record.pending_since_ms is not None else now_ms
    delay_s = alarm.on_delay_s if violated else alarm.off_delay_s
    if now_ms - pending_since < delay_s * 1000:
        return replace(record, pending_since_ms=pending_since), []
    record = replace(record, condition_active=violated, pending_since_ms=None)
    return _on_condition_change(record, now_ms)


def _on_condition_change(record: AlarmRecord, now_ms: int) -> tuple[AlarmRecord, list[AlarmTransition]]:
    state = record.state
    if record.condition_active:
        if state is AlarmState.NORMAL:
            return _move(record, "T1", AlarmState.UNACK_ACTIVE, now_ms, activated=True)
        if state is AlarmState.RETURNED_UNACK:
            return _move(record, "T9", AlarmState.UNACK_ACTIVE, now_ms, activated=True)
        return record, []
    if state is AlarmState.UNACK_ACTIVE:
        return _move(record, "T3", AlarmState.RETURNED_UNACK, now_ms)
    if state is AlarmState.ACK_ACTIVE:
        return _move(record, "T5", AlarmState.NORMAL, now_ms)
    return record, []


def acknowledge(
    record: AlarmRecord, user: str, now_ms: int, comment: str | None = None
) -> tuple[AlarmRecord, list[AlarmTransition]]:
    """Acknowledge (T2 / T8). Refused where nothing is unacknowledged."""
    if record.state is AlarmState.UNACK_ACTIVE:
        transition, target = "T2", AlarmState.ACK_ACTIVE
    elif record.state is AlarmState.RETURNED_UNACK:
        transition, target = "T8", AlarmState.NORMAL
    else:
        raise ActionRefused(f"{record.alarm_id} has nothing to acknowledge (state {record.state.name})")
    record = replace(record, acknowledged_ms=now_ms, acknowledged_by=user, ack_comment=comment)
    return _move(record, transition, target, now_ms, user=user, comment=comment)


def _move(
    record: AlarmRecord, transition: str, target: AlarmState, now_ms: int, *,
    activated: bool = False, user: str | None = None, comment: str | None = None,
) -> tuple[AlarmRecord, list[AlarmTransition]]:
    event = AlarmTransition(
        alarm_id=record.alarm_id, transition=transition, from_state=record.state,
        to_state=target, time_ms=now_ms, value=record.last_value, user=user, comment=comment,
    )
    changes: dict = {"state": target, "state_since_ms": now_ms}
    if activated:
        changes.update(activated_ms=now_ms, acknowledged_ms=None, acknowledged_by=None, ack_comment=None)
    return replace(record, **changes), [event]
