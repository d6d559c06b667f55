"""The ISA-18.2 state model: transitions T1-T15 and the operator actions, as pure functions.

Every function takes a record and returns the new record with the journal
transitions it caused; an action the state does not allow raises ActionRefused
with the reason the operator will read. The table is in docs/alarms.md.

Beyond the table, two moves have to exist and are named after their nearest
neighbour: a latched alarm that becomes active again goes to B, as "T9" from
LU (still unacknowledged) and as "T1" from LA (a new activation).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from domain.alarms.records import ActionRefused, AlarmRecord, AlarmState, AlarmTransition
from domain.alarms.settings import AlarmAttributes, AlarmSystemSettings, comment_required, max_shelve_s

S = AlarmState


@dataclass(frozen=True, slots=True)
class AlarmRules:
    """What the state model needs of an alarm's configuration (any alarm type)."""

    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    realarm_s: float | None = None
    latching: bool = False
    comment_required: bool = False
    max_shelve_s: float = 8 * 3600


def rules_for(alarm: AlarmAttributes, system: AlarmSystemSettings) -> AlarmRules:
    return AlarmRules(
        on_delay_s=alarm.on_delay_s, off_delay_s=alarm.off_delay_s, realarm_s=alarm.realarm_s,
        latching=alarm.latching, comment_required=comment_required(alarm, system),
        max_shelve_s=max_shelve_s(alarm, system),
    )


Result = tuple[AlarmRecord, list[AlarmTransition]]

# ---- the process side: condition changes and time ------------------------------------------


def evaluate(record: AlarmRecord, rules: AlarmRules, condition: bool | None, value: object, now_ms: int) -> Result:
    """Advance one alarm with its latest input (also called on a timer while a delay runs).

    `condition` is the raw condition (domain.alarms.conditions.raw_condition); None means the
    input cannot be judged: the state holds and the record is flagged input_bad.
    """
    if condition is None:
        # Unknown is not "still true": a running on-/off-delay starts again once the input is good.
        if record.input_bad and record.pending_since_ms is None:
            return record, []
        return replace(record, input_bad=True, pending_since_ms=None), []
    if condition == record.condition_active and not record.input_bad and record.pending_since_ms is None:
        # The hot path: nothing changes. last_value stays the value of the last change of state or
        # condition (what the journal and the alarm list show), so no record is rewritten per sample.
        return record, []
    if record.input_bad or record.last_value != value:
        record = replace(record, input_bad=False, last_value=value)
    if condition == record.condition_active:
        return (replace(record, pending_since_ms=None) if record.pending_since_ms is not None else record), []
    pending_since = record.pending_since_ms if record.pending_since_ms is not None else now_ms
    delay_s = rules.on_delay_s if condition else rules.off_delay_s
    if now_ms - pending_since < delay_s * 1000:
        return (record if record.pending_since_ms == pending_since else replace(record, pending_since_ms=pending_since)), []
    record = replace(record, condition_active=condition, condition_since_ms=now_ms, pending_since_ms=None)
    return _on_condition_change(record, rules, now_ms)


def _on_condition_change(record: AlarmRecord, rules: AlarmRules, now_ms: int) -> Result:
    state = record.state
    if record.shelve_one_shot and record.is_shelved and not record.condition_active:
        return _end_shelve(record, now_ms, "T13", user=None, comment="one-shot shelve ended: condition cleared")
    if state.is_removed:
        return record, []  # the condition is tracked, not annunciated
    if record.condition_active:
        if state is S.NORMAL or state is S.LATCHED_ACK:
            return _move(record, "T1", S.UNACK_ACTIVE, now_ms, activated=True)
        if state is S.RETURNED_UNACK or state is S.LATCHED_UNACK:
            return _move(record, "T9", S.UNACK_ACTIVE, now_ms, activated=True)
        return record, []
    if state is S.UNACK_ACTIVE:
        return _move(record, "T4", S.LATCHED_UNACK, now_ms) if rules.latching else _move(record, "T3", S.RETURNED_UNACK, now_ms)
    if state is S.ACK_ACTIVE:
        return _move(record, "T6", S.LATCHED_ACK, now_ms) if rules.latching else _move(record, "T5", S.NORMAL, now_ms)
    return record, []


def next_deadline_ms(record: AlarmRecord, rules: AlarmRules) -> int | None:
    """When time alone will next change this alarm (delay, re-alarm, shelve end); None: never."""
    deadlines = []
    if record.pending_since_ms is not None:
        delay_s = rules.off_delay_s if record.condition_active else rules.on_delay_s
        deadlines.append(record.pending_since_ms + int(delay_s * 1000))
    if record.state is S.ACK_ACTIVE and rules.realarm_s is not None:
        deadlines.append(record.state_since_ms + int(rules.realarm_s * 1000))
    if record.is_shelved and record.shelved_until_ms is not None:
        deadlines.append(record.shelved_until_ms)
    return min(deadlines, default=None)


def on_time(record: AlarmRecord, rules: AlarmRules, now_ms: int) -> Result:
    """What time alone does: re-alarm (T7) and the end of a timed shelve (T13)."""
    if record.is_shelved and record.shelved_until_ms is not None and now_ms >= record.shelved_until_ms:
        return _end_shelve(record, now_ms, "T13", user=None, comment="shelve time expired")
    if (record.state is S.ACK_ACTIVE and rules.realarm_s is not None
            and now_ms - record.state_since_ms >= rules.realarm_s * 1000):
        return _move(record, "T7", S.UNACK_ACTIVE, now_ms, activated=True, comment="re-alarm")
    return record, []


def set_design_suppression(record: AlarmRecord, suppressed: bool, now_ms: int) -> Result:
    """T14: the suppressing condition (another tag) starts or ends."""
    if record.suppressed == suppressed:
        return record, []
    record = replace(record, suppressed=suppressed)
    if record.state is S.OUT_OF_SERVICE:
        return record, []  # out of service wins; the flag is remembered for the return
    if suppressed:
        return _move(record, "T14", S.SUPPRESSED, now_ms, comment="suppressed by design")
    return _reenter(record, "T14", now_ms, comment="design suppression ended")


# ---- operator actions ------------------------------------------------------------------------


def acknowledge(record: AlarmRecord, rules: AlarmRules, user: str, now_ms: int, comment: str | None = None) -> Result:
    """T2 / T8 / T10. A repeat (C or LA) changes nothing and returns no transition."""
    if record.state in (S.ACK_ACTIVE, S.LATCHED_ACK):
        return record, []
    moves = {S.UNACK_ACTIVE: ("T2", S.ACK_ACTIVE), S.RETURNED_UNACK: ("T8", S.NORMAL),
             S.LATCHED_UNACK: ("T10", S.LATCHED_ACK)}
    if record.state not in moves:
        raise ActionRefused(f"{record.alarm_id} has nothing to acknowledge: it is {_state_words(record.state)}")
    if rules.comment_required and not comment:
        raise ActionRefused(f"{record.alarm_id} needs a comment to be acknowledged")
    transition, target = moves[record.state]
    record = replace(record, acknowledged_ms=now_ms, acknowledged_by=user, ack_comment=comment)
    return _move(record, transition, target, now_ms, user=user, comment=comment)


def reset(record: AlarmRecord, user: str, now_ms: int, comment: str | None = None) -> Result:
    """T11: a latched, acknowledged alarm back to normal."""
    if record.state is S.LATCHED_UNACK:
        raise ActionRefused(f"{record.alarm_id} must be acknowledged before it can be reset")
    if record.state is not S.LATCHED_ACK:
        raise ActionRefused(f"{record.alarm_id} is not latched: it is {_state_words(record.state)}; only a latched,"
                            " acknowledged alarm can be reset")
    return _move(record, "T11", S.NORMAL, now_ms, user=user, comment=comment)


def shelve(record: AlarmRecord, rules: AlarmRules, user: str, now_ms: int, comment: str | None, *,
           duration_s: float | None = None, one_shot: bool = False) -> Result:
    """T12: take the alarm off the list for a time, or (one-shot) until its condition clears.

    Both are bounded by the configured maximum; a comment is always required.
    """
    if record.state not in (S.NORMAL, S.UNACK_ACTIVE, S.ACK_ACTIVE, S.RETURNED_UNACK):
        raise ActionRefused(f"{record.alarm_id} cannot be shelved: it is {_state_words(record.state)}"
                            + (" (acknowledge and reset a latched alarm instead)" if record.state in (
                                S.LATCHED_ACK, S.LATCHED_UNACK) else ""))
    if not comment:
        raise ActionRefused(f"shelving {record.alarm_id} needs a comment (why it is shelved)")
    limit_s = rules.max_shelve_s
    if duration_s is None:
        if not one_shot:
            raise ActionRefused("a shelve needs a duration, or one-shot")
        duration_s = limit_s
    if not (0 < duration_s <= limit_s):
        raise ActionRefused(f"shelve duration must be more than 0 and at most {_duration_words(limit_s)}")
    record = replace(record, shelved_until_ms=now_ms + int(duration_s * 1000), shelve_one_shot=one_shot,
                     shelved_by=user, shelve_comment=comment)
    return _move(record, "T12", S.SHELVED, now_ms, user=user, comment=comment)


def unshelve(record: AlarmRecord, user: str, now_ms: int, comment: str | None = None) -> Result:
    """T13 by hand."""
    if not record.is_shelved:
        raise ActionRefused(f"{record.alarm_id} is not shelved")
    return _end_shelve(record, now_ms, "T13", user=user, comment=comment)


def remove_from_service(record: AlarmRecord, user: str, now_ms: int, comment: str | None) -> Result:
    """T15: out of service (maintenance), with a comment."""
    if record.out_of_service:
        raise ActionRefused(f"{record.alarm_id} is already out of service (since {record.out_of_service_by} took it out)")
    if not comment:
        raise ActionRefused(f"taking {record.alarm_id} out of service needs a comment (why)")
    record = replace(record, out_of_service=True, out_of_service_by=user, out_of_service_comment=comment)
    return _move(record, "T15", S.OUT_OF_SERVICE, now_ms, user=user, comment=comment)


def return_to_service(record: AlarmRecord, user: str, now_ms: int, comment: str | None = None) -> Result:
    """T15 back: re-evaluated to what the alarm is now."""
    if not record.out_of_service:
        raise ActionRefused(f"{record.alarm_id} is in service")
    record = replace(record, out_of_service=False, out_of_service_by=None, out_of_service_comment=None)
    return _reenter(record, "T15", now_ms, user=user, comment=comment)


# ---- helpers ---------------------------------------------------------------------------------


def _end_shelve(record: AlarmRecord, now_ms: int, transition: str, *, user: str | None, comment: str | None) -> Result:
    record = replace(record, shelved_until_ms=None, shelve_one_shot=False, shelved_by=None, shelve_comment=None)
    if record.state is not S.SHELVED:
        # Also suppressed or out of service: that state stays, but the end of the shelve is journalled.
        return _move(record, transition, record.state, now_ms, user=user, comment=comment)
    return _reenter(record, transition, now_ms, user=user, comment=comment)


def _reenter(record: AlarmRecord, transition: str, now_ms: int, *, user: str | None = None,
             comment: str | None = None) -> Result:
    """Back from E, F or G: to whichever removal still applies, else A or B by the condition."""
    if record.out_of_service:
        target = S.OUT_OF_SERVICE
    elif record.suppressed:
        target = S.SUPPRESSED
    elif record.is_shelved:
        target = S.SHELVED
    else:
        target = S.UNACK_ACTIVE if record.condition_active else S.NORMAL
    return _move(record, transition, target, now_ms, activated=target is S.UNACK_ACTIVE, user=user, comment=comment)


def _move(record: AlarmRecord, transition: str, target: AlarmState, now_ms: int, *, activated: bool = False,
          user: str | None = None, comment: str | None = None) -> Result:
    event = AlarmTransition(
        alarm_id=record.alarm_id, transition=transition, from_state=record.state, to_state=target,
        time_ms=now_ms, value=record.last_value, user=user, comment=comment, tag=record.tag,
        kind=record.kind, area=record.area, priority=record.priority, message=record.message,
    )
    if target is record.state:  # journalled, not a change of state (e.g. a shelve ending beneath G)
        return record, [event]
    changes: dict = {"state": target, "state_since_ms": now_ms}
    if activated:
        changes.update(activated_ms=now_ms, acknowledged_ms=None, acknowledged_by=None, ack_comment=None)
    return replace(record, **changes), [event]


_STATE_WORDS = {
    S.NORMAL: "normal", S.ACK_ACTIVE: "already acknowledged", S.LATCHED_ACK: "latched and acknowledged",
    S.UNACK_ACTIVE: "active and unacknowledged", S.RETURNED_UNACK: "returned to normal, unacknowledged",
    S.LATCHED_UNACK: "latched and unacknowledged", S.SHELVED: "shelved", S.SUPPRESSED: "suppressed by design",
    S.OUT_OF_SERVICE: "out of service",
}


def _state_words(state: AlarmState) -> str:
    return _STATE_WORDS[state]


def _duration_words(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
