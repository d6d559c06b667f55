"""Acknowledging alarms: role checked here, state changed only by the alarm engine."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.exceptions import RedisError

from alarm_engine.commands import request_acknowledge
from web.audit import AuditEvent, append_audit
from web.auth import RequestIdentity
from web.roles import Action, PermissionDenied, require
from web.runtime import WebRuntime

MAX_ALARMS_PER_REQUEST = 200
MAX_COMMENT_LENGTH = 500
ENGINE_ANSWER_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class AckResult:
    alarm_id: str
    accepted: bool
    reason: str = ""


def clean_ack_request(alarm_ids: object, comment: object) -> tuple[list[str], str | None]:
    """Only what a browser may sensibly send: a bounded list of id strings, a short comment."""
    ids = [a for a in (alarm_ids or []) if isinstance(a, str) and 0 < len(a) <= 300] if isinstance(
        alarm_ids, list) else []
    text = comment.strip()[:MAX_COMMENT_LENGTH] if isinstance(comment, str) and comment.strip() else None
    return list(dict.fromkeys(ids))[:MAX_ALARMS_PER_REQUEST], text


async def acknowledge_alarms(runtime: WebRuntime, identity: RequestIdentity | None, alarm_ids: object,
                             comment: object = None) -> list[AckResult]:
    ids, text = clean_ack_request(alarm_ids, comment)
    user = identity.session.user if identity else ""
    source_ip = identity.source_ip if identity else ""
    try:
        require(identity.session.role if identity else None, Action.ACKNOWLEDGE_ALARM)
    except PermissionDenied as denied:
        await _audit(runtime, AuditEvent(user=user, action="acknowledge", result="refused",
                                         tag=",".join(ids)[:300], reason=str(denied), source_ip=source_ip))
        return [AckResult(a, False, str(denied)) for a in ids] or [AckResult("", False, str(denied))]

    async def one(alarm_id: str) -> AckResult:
        try:
            outcome = await request_acknowledge(runtime.redis, alarm_id, user, text, ENGINE_ANSWER_TIMEOUT_S)
        except (RedisError, OSError) as exc:
            return AckResult(alarm_id, False, f"the data server (Redis) is unavailable: {exc}")
        await _audit(runtime, AuditEvent(user=user, action="acknowledge", result="ok" if outcome.accepted else "refused",
                                         tag=alarm_id, reason=outcome.reason or (text or ""), source_ip=source_ip))
        return AckResult(alarm_id, outcome.accepted, outcome.reason)

    return list(await asyncio.gather(*(one(a) for a in ids)))


def describe_ack_results(results: list[AckResult]) -> str:
    if not results:
        return "Select one or more alarms first."
    accepted = [r for r in results if r.accepted]
    refused = [r for r in results if not r.accepted]
    parts = []
    if accepted:
        parts.append(f"Acknowledged {len(accepted)} alarm{'s' if len(accepted) != 1 else ''}.")
    for r in refused:
        parts.append(f"REFUSED {r.alarm_id}: {r.reason}" if r.alarm_id else f"REFUSED: {r.reason}")
    return " ".join(parts)


async def _audit(runtime: WebRuntime, event: AuditEvent) -> None:
    try:
        await append_audit(runtime.redis, event)
    except (RedisError, OSError):
        pass
