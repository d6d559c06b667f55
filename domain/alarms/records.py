"""One alarm's record and one journal transition, with the ISA-18.2 state letters."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlarmState(StrEnum):
    """ISA-18.2 / IEC 62682 states (docs/alarms.md has the table)."""

    NORMAL = "A"
    UNACK_ACTIVE = "B"
    ACK_ACTIVE = "C"
    RETURNED_UNACK = "D"
    LATCHED_UNACK = "LU"
    LATCHED_ACK = "LA"
    SHELVED = "E"
    SUPPRESSED = "F"
    OUT_OF_SERVICE = "G"

    @property
    def is_unacknowledged(self) -> bool:
        return self in (AlarmState.UNACK_ACTIVE, AlarmState.RETURNED_UNACK, AlarmState.LATCHED_UNACK)

    @property
    def is_shown(self) -> bool:
        """In the alarm list (shelved, suppressed and out-of-service alarms have lists of their own)."""
        return self in _SHOWN

    @property
    def is_removed(self) -> bool:
        """Shelved, suppressed by design or out of service: not annunciated."""
        return self in (AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE)


_SHOWN = frozenset({AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE, AlarmState.RETURNED_UNACK,
                    AlarmState.LATCHED_UNACK, AlarmState.LATCHED_ACK})

STATE_TEXT = {
    AlarmState.NORMAL: "NORMAL",
    AlarmState.UNACK_ACTIVE: "UNACK ACTIVE",
    AlarmState.ACK_ACTIVE: "ACK ACTIVE",
    AlarmState.RETURNED_UNACK: "RTN UNACK",
    AlarmState.LATCHED_UNACK: "LATCHED UNACK",
    AlarmState.LATCHED_ACK: "LATCHED (RESET)",
    AlarmState.SHELVED: "SHELVED",
    AlarmState.SUPPRESSED: "SUPPRESSED",
    AlarmState.OUT_OF_SERVICE: "OUT OF SERVICE",
}


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
    # The condition after on/off delays: what the operator is told. Kept up to date while
    # shelved, suppressed or out of service, so the return re-evaluates to A or B correctly.
    condition_active: bool = False
    # When condition_active last changed: how long the alarm has been continuously active (or clear).
    condition_since_ms: int | None = None
    # When the raw condition started to differ from condition_active (awaiting a delay).
    pending_since_ms: int | None = None
    last_value: float | str | bool | None = None
    input_bad: bool = False
    state_since_ms: int = 0
    activated_ms: int | None = None
    acknowledged_ms: int | None = None
    acknowledged_by: str | None = None
    ack_comment: str | None = None
    # Shelving (T12/T13): until when (epoch ms), or until the condition clears (one-shot; with a
    # deadline too, the configured maximum), by whom and why.
    shelved_until_ms: int | None = None
    shelve_one_shot: bool = False
    shelved_by: str | None = None
    shelve_comment: str | None = None
    # Suppression by design (T14): another tag's condition, decided by the engine.
    suppressed: bool = False
    # Out of service (T15): an engineer's decision, with who and why.
    out_of_service: bool = False
    out_of_service_by: str | None = None
    out_of_service_comment: str | None = None
    # Set for an alarm a device decided (OPC UA Alarms & Conditions, domain/device_alarms.py):
    # the data source it came from and the condition's key there. None: a Stacklight alarm.
    device_source: str | None = None
    device_condition: str | None = None

    @property
    def is_shelved(self) -> bool:
        return self.shelved_by is not None


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One entry for the alarm journal: a state change or an operator action."""

    alarm_id: str
    transition: str  # ISA-18.2 transition number, e.g. "T1"
    from_state: AlarmState
    to_state: AlarmState
    time_ms: int
    value: float | str | bool | None
    user: str | None = None
    comment: str | None = None
    tag: str = ""
    kind: str = ""
    area: str = ""
    priority: int = 0
    message: str = ""


def alarm_id_for(tag: str, kind: str) -> str:
    return f"{tag}:{kind}"
