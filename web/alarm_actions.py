"""Operator actions on alarms: role and input checked here, the state changed only by the alarm engine.

perform_alarm_action() checks the user's role before anything is sent, cleans
what the browser (or an API client) sent, refuses each alarm outside the user's
areas (when their account is limited to some: the alarm's area as the engine
recorded it), asks the engine once per alarm (alarm_engine.commands.request_action),
audits every attempt, refused ones too (the person's comment in the audit's
comment field), and returns each alarm's answer; describe_results() puts them in words.
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass

from redis.exceptions import RedisError

from alarm_engine.alarm_store import decode_record
from alarm_engine.commands import ACTIONS, request_action
from tag_store import keys
from web.audit import AuditEvent, append_audit
from web.auth import RequestIdentity
from web.permissions import require_tag_permission
from web.roles import ALARM_ACTION_PERMISSIONS, Action, PermissionDenied, Role, may, require
from web.runtime import WebRuntime

MAX_ALARMS_PER_REQUEST = 200
MAX_ALARM_ID_LENGTH = 300
MAX_COMMENT_LENGTH = 500
ENGINE_ANSWER_TIMEOUT_S = 5.0
ONE_SHOT = "one_shot"  # the shelve duration choice "until the condition clears"
# Shelve durations offered, up to the plant's maximum (which is always offered too).
SHELVE_CHOICES_S = (5 * 60, 15 * 60, 30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 86400,
                    2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)
DEFAULT_SHELVE_S = 3600

# What was done, in words ({n}: "1 alarm", "3 alarms").
DONE_TEXT = {
    "acknowledge": "Acknowledged {n}.", "reset": "Reset {n}.", "shelve": "Shelved {n}.", "unshelve": "Unshelved {n}.",
    "remove_from_service": "Took {n} out of service.", "return_to_service": "Returned {n} to service.",
}


@dataclass(frozen=True, slots=True)
class ActionResult:
    alarm_id: str
    accepted: bool
    reason: str = ""
    # Who decided: "engine" (its answer), "role" (role or area) or "input" (refused here, nothing sent),
    # "redis" (could not be sent); "unknown_alarm" and "no_answer" (the engine has no such alarm, or
    # did not answer: alarm_engine.commands) are the engine's too.
    decided_by: str = "engine"


AckResult = ActionResult  # the name the acknowledge callers know


class RequestRefused(Exception):
    """Input the server will not pass on; str() is the reason."""


@dataclass(frozen=True, slots=True)
class AlarmRequest:
    """A cleaned request: a known action, a bounded list of ids, a short comment, a sane duration."""

    action: str
    alarm_ids: tuple[str, ...]
    comment: str | None = None
    duration_s: float | None = None
    one_shot: bool = False

    def detail(self) -> str:
        """What the request asked beyond the action, for the audit trail."""
        if self.action != "shelve":
            return ""
        limit = "" if self.duration_s is None else duration_words(self.duration_s)
        if self.one_shot:
            return "one-shot" + (f", at most {limit}" if limit else "")
        return f"for {limit}" if limit else ""


# ---- cleaning ---------------------------------------------------------------------------------


def clean_alarm_ids(alarm_ids: object) -> list[str]:
    """Only a bounded list of distinct, non-empty id strings of sane length."""
    if not isinstance(alarm_ids, list | tuple):
        return []
    ids = [a for a in alarm_ids if isinstance(a, str) and 0 < len(a) <= MAX_ALARM_ID_LENGTH]
    return list(dict.fromkeys(ids))[:MAX_ALARMS_PER_REQUEST]


def clean_comment(comment: object) -> str | None:
    return comment.strip()[:MAX_COMMENT_LENGTH] if isinstance(comment, str) and comment.strip() else None


def clean_ack_request(alarm_ids: object, comment: object) -> tuple[list[str], str | None]:
    return clean_alarm_ids(alarm_ids), clean_comment(comment)


def clean_duration_s(duration_s: object) -> float | None:
    """None, or a finite number of seconds above 0 (the engine checks the configured maximum)."""
    if duration_s is None:
        return None
    if isinstance(duration_s, bool) or not isinstance(duration_s, int | float):
        raise RequestRefused("the shelve duration must be a number of seconds")
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise RequestRefused("the shelve duration must be a finite number of seconds above 0")
    return float(duration_s)


def clean_request(action: object, alarm_ids: object, comment: object = None, duration_s: object = None,
                  one_shot: object = False) -> AlarmRequest:
    if action not in ACTIONS:
        raise RequestRefused(f"unknown alarm action {str(action)[:40]!r} (one of: {', '.join(ACTIONS)})")
    if action != "shelve" and (duration_s is not None or one_shot is True):
        raise RequestRefused(f"only a shelve takes a duration or one-shot, not {action}")
    return AlarmRequest(str(action), tuple(clean_alarm_ids(alarm_ids)), clean_comment(comment),
                        clean_duration_s(duration_s), one_shot is True)


def shelve_choice(value: object) -> tuple[float | None, bool]:
    """The shelve form's duration choice as (duration_s, one_shot); checked again by clean_request."""
    if value == ONE_SHOT:
        return None, True
    return value, False  # type: ignore[return-value]  # a number, or whatever a forged request sent


def duration_words(seconds: float) -> str:
    if seconds >= 86400 and seconds % 3600 == 0:
        return f"{seconds / 86400:g} d" if seconds % 86400 == 0 else f"{seconds / 3600:g} h"
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def shelve_duration_options(max_shelve_s: float) -> list[dict[str, object]]:
    """The choices of the shelve form: fixed durations up to the plant's maximum, then one-shot."""
    choices = [s for s in SHELVE_CHOICES_S if s <= max_shelve_s]
    if max_shelve_s not in choices:
        choices.append(max_shelve_s)
    options: list[dict[str, object]] = [{"label": duration_words(s), "value": s} for s in choices]
    options.append({"label": f"One-shot: until it clears (at most {duration_words(max_shelve_s)})",
                    "value": ONE_SHOT})
    return options


def default_shelve_choice(max_shelve_s: float) -> float:
    return DEFAULT_SHELVE_S if DEFAULT_SHELVE_S <= max_shelve_s else max_shelve_s


# ---- "acknowledge all visible": the rows that pass the grid's filters ---------------------------


def unacknowledged_among(rows: object) -> tuple[list[str], int]:
    """Ids of the unacknowledged alarms among the visible rows, and how many rows are visible."""
    rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    return [r.get("alarm_id") for r in rows if r.get("unacked") is True], len(rows)


def acknowledge_all_question(rows: object) -> tuple[list[str], str]:
    """The ids to acknowledge and the question to confirm, or ([], why there is nothing to do)."""
    unacked, shown = unacknowledged_among(rows)
    ids = clean_alarm_ids(unacked)
    if not shown:
        return [], "No alarms are visible."
    if not ids:
        return [], f"No unacknowledged alarm among the {shown} visible."
    total = len(dict.fromkeys(a for a in unacked if isinstance(a, str)))
    if total > len(ids):
        return ids, (f"Acknowledge the first {len(ids)} of the {total} unacknowledged alarms visible?"
                     f" (at most {MAX_ALARMS_PER_REQUEST} at once)")
    if len(ids) == 1:
        return ids, f"Acknowledge 1 unacknowledged alarm (of the {shown} visible)?"
    return ids, f"Acknowledge all {len(ids)} unacknowledged alarms (of the {shown} visible)?"


# ---- doing it ----------------------------------------------------------------------------------


def permission_for(action: str) -> Action:
    return ALARM_ACTION_PERMISSIONS[action]


def may_act(role: Role | None, action: str) -> bool:
    return may(role, permission_for(action))


async def perform_alarm_action(runtime: WebRuntime, identity: RequestIdentity | None, action: object,
                               alarm_ids: object, comment: object = None, duration_s: object = None,
                               one_shot: object = False) -> list[ActionResult]:
    """Check the role, clean the input, ask the engine per alarm, audit each attempt; the answers."""
    user = identity.session.user if identity else ""
    source_ip = identity.source_ip if identity else ""
    ids = clean_alarm_ids(alarm_ids)

    async def refuse_all(reason: str, decided_by: str) -> list[ActionResult]:
        """Nothing sent; one audit entry naming every alarm asked for."""
        await _audit(runtime, AuditEvent(user=user, action=str(action)[:40], result="refused",
                                         tag=",".join(ids)[:MAX_ALARM_ID_LENGTH], reason=reason, source_ip=source_ip,
                                         comment=clean_comment(comment) or ""))
        return [ActionResult(a, False, reason, decided_by) for a in ids] or [ActionResult("", False, reason,
                                                                                          decided_by)]

    if action not in ALARM_ACTION_PERMISSIONS:
        return await refuse_all(f"unknown alarm action {str(action)[:40]!r}", "input")
    try:
        require(identity.session.role if identity else None, permission_for(str(action)))
    except PermissionDenied as denied:
        return await refuse_all(str(denied), "role")
    try:
        request = clean_request(action, alarm_ids, comment, duration_s, one_shot)
    except RequestRefused as refused:
        return await refuse_all(str(refused), "input")
    assert identity is not None
    try:
        outside = await _outside_areas(runtime, identity, request)
    except (RedisError, OSError) as exc:
        return await refuse_all(f"the data server (Redis) is unavailable: {exc}", "redis")

    async def one(alarm_id: str) -> ActionResult:
        if alarm_id in outside:
            await _audit(runtime, AuditEvent(user=user, action=request.action, result="refused", tag=alarm_id,
                                             new=request.detail(), reason=outside[alarm_id], source_ip=source_ip,
                                             comment=request.comment or ""))
            return ActionResult(alarm_id, False, outside[alarm_id], "role")
        try:
            outcome = await request_action(runtime.redis, request.action, alarm_id, user, request.comment,
                                           duration_s=request.duration_s, one_shot=request.one_shot,
                                           timeout_s=ENGINE_ANSWER_TIMEOUT_S)
        except (RedisError, OSError) as exc:
            reason = f"the data server (Redis) is unavailable: {exc}"
            await _audit(runtime, AuditEvent(user=user, action=request.action, result="failed", tag=alarm_id,
                                             new=request.detail(), reason=reason, source_ip=source_ip,
                                             comment=request.comment or ""))
            return ActionResult(alarm_id, False, reason, "redis")
        await _audit(runtime, AuditEvent(user=user, action=request.action,
                                         result="ok" if outcome.accepted else "refused", tag=alarm_id,
                                         new=request.detail(), reason=outcome.reason, source_ip=source_ip,
                                         comment=request.comment or ""))
        return ActionResult(alarm_id, outcome.accepted, outcome.reason, outcome.refused_as or "engine")

    return list(await asyncio.gather(*(one(a) for a in request.alarm_ids)))


async def _outside_areas(runtime: WebRuntime, identity: RequestIdentity, request: AlarmRequest) -> dict[str, str]:
    """alarm id -> why not, for the alarms outside the user's areas (their account limited to some).

    The alarm's area is the one the engine recorded (a process alarm's is its tag's); an alarm
    the engine has no record of is left to the engine, which refuses it as unknown."""
    session = identity.session
    if not session.areas or not request.alarm_ids:
        return {}
    raws = await runtime.redis.hmget(keys.ALARMS, list(request.alarm_ids))
    outside = {}
    for alarm_id, raw in zip(request.alarm_ids, raws):
        if raw is None:
            continue
        try:
            record = decode_record(raw)
        except (ValueError, TypeError, KeyError):
            outside[alarm_id] = "the alarm's record is unreadable: its area cannot be checked"
            continue
        try:
            require_tag_permission(session, permission_for(request.action), area=record.area)
        except PermissionDenied as denied:
            outside[alarm_id] = str(denied).replace("this alarm", alarm_id, 1)
    return outside


async def acknowledge_alarms(runtime: WebRuntime, identity: RequestIdentity | None, alarm_ids: object,
                             comment: object = None) -> list[ActionResult]:
    return await perform_alarm_action(runtime, identity, "acknowledge", alarm_ids, comment)


# ---- in words ------------------------------------------------------------------------------------


def describe_results(action: str, results: Iterable[ActionResult]) -> str:
    """One line for the operator: what was done, then each refusal with the engine's reason."""
    results = list(results)
    if not results:
        return "Select one or more alarms first."
    refused_here = [r for r in results if not r.accepted and r.decided_by in ("role", "input")]
    if refused_here and len(refused_here) == len(results):
        return f"REFUSED: {refused_here[0].reason}"
    accepted = [r for r in results if r.accepted]
    parts = []
    if accepted:
        parts.append(DONE_TEXT.get(action, action + " {n}.").format(n=_alarms(len(accepted))))
        parts.extend(f"({r.alarm_id}: {r.reason})" for r in accepted if r.reason)
    parts.extend(f"REFUSED {r.alarm_id}: {r.reason}" if r.alarm_id else f"REFUSED: {r.reason}"
                 for r in results if not r.accepted)
    return " ".join(parts)


def describe_ack_results(results: list[ActionResult]) -> str:
    return describe_results("acknowledge", results)


def _alarms(n: int) -> str:
    return f"{n} alarm{'s' if n != 1 else ''}"


async def _audit(runtime: WebRuntime, event: AuditEvent) -> None:
    try:
        await append_audit(runtime.redis, event)
    except (RedisError, OSError):
        pass
