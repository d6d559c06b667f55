"""A tag's alarms on its faceplate: every alarm record of the tag, and what this user may do to each.

tag_alarm_rows() is pure: the worker's alarm records (web/alarm_cache.py), the tag, the
plant's alarm settings and the user's role in; one frozen FaceplateAlarmRow per alarm out
(state in words, since when, the condition now, who acknowledged / shelved / took it out of
service and why, "input BAD", and the action buttons). The layout (layouts/faceplate.py)
only draws them. The buttons a state allows are offered; those the role may not use are
disabled with the reason. This is also where an alarm in the normal state (A) can be shelved
or taken out of service ahead of time, e.g. before maintenance.

act_on_tag_alarm() passes a click to web.alarm_actions.perform_alarm_action, the same
function the alarm page and the JSON API use: the role is checked on the server, every
attempt is audited and the alarm engine decides; refusals come back with its reason.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from domain.alarms.records import STATE_TEXT, AlarmRecord, AlarmState
from domain.alarms.settings import ALARM_KINDS, KIND_LABELS, AlarmSystemSettings, alarms_with_defaults
from domain.alarms.state_model import AlarmRules, rules_for
from domain.config_model import Tag
from web.alarm_actions import describe_results, duration_words, may_act, perform_alarm_action, permission_for, \
    shelve_choice
from web.alarm_view import alarm_origin
from web.auth import RequestIdentity
from web.roles import MINIMUM_ROLE, Role
from web.runtime import WebRuntime

ACTION_LABELS = {
    "acknowledge": "Acknowledge", "reset": "Reset", "shelve": "Shelve", "unshelve": "Unshelve",
    "remove_from_service": "Remove from service", "return_to_service": "Return to service",
}
# Shelving is possible from these states only (ISA-18.2 T12); latched alarms need a reset first.
SHELVABLE = frozenset({AlarmState.NORMAL, AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE,
                       AlarmState.RETURNED_UNACK})


@dataclass(frozen=True, slots=True)
class AlarmButton:
    action: str
    label: str
    enabled: bool
    why_not: str = ""  # why the role may not: shown as the disabled button's title


@dataclass(frozen=True, slots=True)
class FaceplateAlarmRow:
    alarm_id: str
    kind_label: str
    priority: int
    message: str
    state: str  # the ISA-18.2 letter
    state_text: str
    unacknowledged: bool
    since_ms: int
    condition_active: bool
    input_bad: bool
    origin: str
    acknowledged_by: str | None
    acknowledged_ms: int | None
    ack_comment: str | None
    shelved_by: str | None
    shelved_until_ms: int | None
    shelve_one_shot: bool
    shelve_comment: str | None
    out_of_service_by: str | None
    out_of_service_comment: str | None
    ack_comment_required: bool
    # Set when this alarm may be shelved for less than the longest choice the faceplate offers.
    max_shelve_s: float | None
    buttons: tuple[AlarmButton, ...]


def configured_rules(tag: Tag, system: AlarmSystemSettings) -> dict[str, AlarmRules]:
    """Each alarm kind of the tag as the engine runs it (bad-quality default included) and its rules."""
    return {kind: rules_for(alarm, system) for kind, alarm in alarms_with_defaults(tag.alarms, system)}


def longest_shelve_s(tag: Tag, system: AlarmSystemSettings) -> float:
    """The longest shelve any alarm of the tag allows: the faceplate's duration choices go up to it."""
    return max((rules.max_shelve_s for rules in configured_rules(tag, system).values()),
               default=system.max_shelve_s)


def offered_actions(record: AlarmRecord) -> list[str]:
    """The actions the alarm's state allows (the engine decides again, and says why not)."""
    if record.device_source is not None:  # the device decides; only acknowledge is passed on
        return ["acknowledge"] if record.state.is_unacknowledged else []
    actions = []
    if record.state.is_unacknowledged:
        actions.append("acknowledge")
    if record.state is AlarmState.LATCHED_ACK:
        actions.append("reset")
    if record.state in SHELVABLE:
        actions.append("shelve")
    if record.is_shelved:  # also beneath out of service or suppression
        actions.append("unshelve")
    actions.append("return_to_service" if record.out_of_service else "remove_from_service")
    return actions


def button(action: str, role: Role | None) -> AlarmButton:
    label = ACTION_LABELS[action]
    if may_act(role, action):
        return AlarmButton(action, label, True)
    needed = MINIMUM_ROLE[permission_for(action)].value
    return AlarmButton(action, label, False, f"{label} needs the {needed} role")


def _kind_order(record: AlarmRecord) -> tuple[int, int, str]:
    own = record.device_source is None and record.kind in ALARM_KINDS
    return (0 if own else 1, ALARM_KINDS.index(record.kind) if own else 0, record.alarm_id)


def tag_alarm_rows(records: Iterable[AlarmRecord], tag: Tag, system: AlarmSystemSettings,
                   role: Role | None) -> list[FaceplateAlarmRow]:
    """Every alarm record of the tag, configured kinds in their usual order (HH, H, L, LL, ...), then device ones."""
    rules = configured_rules(tag, system)
    offered_max_s = longest_shelve_s(tag, system)
    rows = []
    for record in sorted((r for r in records if r.tag == tag.name), key=_kind_order):
        own_rules = rules.get(record.kind) if record.device_source is None else None
        acknowledged = record.state in (AlarmState.ACK_ACTIVE, AlarmState.LATCHED_ACK)
        rows.append(FaceplateAlarmRow(
            alarm_id=record.alarm_id,
            kind_label=KIND_LABELS.get(record.kind, record.kind) if record.device_source is None else record.kind,
            priority=record.priority,
            message=record.message,
            state=record.state.value,
            state_text=STATE_TEXT[record.state],
            unacknowledged=record.state.is_unacknowledged,
            since_ms=record.state_since_ms,
            condition_active=record.condition_active,
            input_bad=record.input_bad,
            origin=alarm_origin(record),
            acknowledged_by=record.acknowledged_by if acknowledged else None,
            acknowledged_ms=record.acknowledged_ms if acknowledged else None,
            ack_comment=record.ack_comment if acknowledged else None,
            shelved_by=record.shelved_by,
            shelved_until_ms=record.shelved_until_ms if record.is_shelved else None,
            shelve_one_shot=record.shelve_one_shot and record.is_shelved,
            shelve_comment=record.shelve_comment if record.is_shelved else None,
            out_of_service_by=record.out_of_service_by if record.out_of_service else None,
            out_of_service_comment=record.out_of_service_comment if record.out_of_service else None,
            ack_comment_required=bool(own_rules and own_rules.comment_required),
            max_shelve_s=own_rules.max_shelve_s if own_rules and own_rules.max_shelve_s < offered_max_s else None,
            buttons=tuple(button(action, role) for action in offered_actions(record)),
        ))
    return rows


def rows_key(rows: list[FaceplateAlarmRow]) -> str:
    """Changes exactly when what the section shows changes (the section is redrawn only then)."""
    return hashlib.sha1(repr(rows).encode(), usedforsecurity=False).hexdigest()


def shelve_limit_text(row: FaceplateAlarmRow) -> str:
    return f"May be shelved for at most {duration_words(row.max_shelve_s)}." if row.max_shelve_s else ""


@dataclass(frozen=True, slots=True)
class FaceplateActionOutcome:
    text: str
    accepted: bool


async def act_on_tag_alarm(runtime: WebRuntime, identity: RequestIdentity | None, action: object,
                           alarm_id: object, comment: object, shelve_duration: object) -> FaceplateActionOutcome:
    """One button of one alarm, decided like every alarm action (role, input, engine) and put in words."""
    duration_s, one_shot = shelve_choice(shelve_duration) if action == "shelve" else (None, False)
    results = await perform_alarm_action(runtime, identity, action, [alarm_id], comment, duration_s, one_shot)
    return FaceplateActionOutcome(describe_results(str(action), results), any(r.accepted for r in results))
