"""Idle sessions end in Redis by themselves (the key's TTL); this puts each such end on the audit trail.

Every login session has a deadline in keys.SESSION_DEADLINES (when it expires if nobody uses it,
moved on by each request that refreshes it) and an owner record in keys.SESSION_OWNERS (who, from
where). A sweep in each web worker finds deadlines passed whose session key is gone and audits
`session_expired`; taking the deadline out with ZREM decides which worker audits it, so each end is
recorded once. A logout ends a session on purpose and is audited as that: it takes the deadline out
itself. A password change or a deleted user ends sessions too (audited as the change); the sweep
finds those by the user record and drops them silently. Nothing here extends a session.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tag_store import keys
from web.audit import AuditEvent, append_audit
from web.users import SESSIONS_VALID_FROM, valid_for_user

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 5.0
# Redis expires a key within milliseconds of its TTL; wait a little past the deadline before judging.
GRACE_MS = 2_000
SWEEP_BATCH = 200
AUDIT_ACTION = "session_expired"


@dataclass(frozen=True, slots=True)
class SessionOwner:
    user: str
    source_ip: str
    created_ms: int
    idle_timeout_s: int

    def encode(self) -> str:
        return json.dumps({"user": self.user, "ip": self.source_ip, "created_ms": self.created_ms,
                           "idle_s": self.idle_timeout_s}, separators=(",", ":"))

    @staticmethod
    def decode(raw: bytes | str | None) -> SessionOwner | None:
        try:
            fields = json.loads(raw)
            return SessionOwner(str(fields["user"]), str(fields.get("ip", "")), int(fields["created_ms"]),
                                int(fields["idle_s"]))
        except (TypeError, ValueError, KeyError):
            return None


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def queue_opened(pipe, session_id: str, owner: SessionOwner, at_ms: int) -> None:
    pipe.zadd(keys.SESSION_DEADLINES, {session_id: at_ms + owner.idle_timeout_s * 1000})
    pipe.hset(keys.SESSION_OWNERS, session_id, owner.encode())


def queue_touched(pipe, session_id: str, idle_timeout_s: int, at_ms: int) -> None:
    """The session was used: its deadline moves on (only if it is still listed)."""
    pipe.zadd(keys.SESSION_DEADLINES, {session_id: at_ms + idle_timeout_s * 1000}, xx=True)


def queue_closed(pipe, session_id: str) -> None:
    """Logged out: no idle end to record."""
    pipe.zrem(keys.SESSION_DEADLINES, session_id)
    pipe.hdel(keys.SESSION_OWNERS, session_id)


def idle_reason(owner: SessionOwner) -> str:
    return f"no activity for {owner.idle_timeout_s} s (web.session_idle_timeout_s): the session ended"


async def audit_expired_sessions(redis: aioredis.Redis, at_ms: int | None = None) -> int:
    """Audit the sessions that ended by idling since the last sweep; how many this call audited."""
    at_ms = wall_clock_ms() if at_ms is None else at_ms
    due = await redis.zrangebyscore(keys.SESSION_DEADLINES, "-inf", at_ms - GRACE_MS, start=0, num=SWEEP_BATCH)
    audited = 0
    for raw_id in due:
        session_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        remaining_ms = await redis.pttl(keys.session(session_id))
        if remaining_ms > 0:  # used after its deadline was written: judge it at its real end
            await redis.zadd(keys.SESSION_DEADLINES, {session_id: at_ms + remaining_ms}, xx=True)
            continue
        if not await redis.zrem(keys.SESSION_DEADLINES, session_id):
            continue  # another worker took this one
        pipe = redis.pipeline(transaction=False)
        pipe.hget(keys.SESSION_OWNERS, session_id)
        pipe.hdel(keys.SESSION_OWNERS, session_id)
        owner = SessionOwner.decode((await pipe.execute())[0])
        if owner is None or not await _still_valid(redis, owner):
            continue
        await append_audit(redis, AuditEvent(user=owner.user, action=AUDIT_ACTION, result="ok",
                                             reason=idle_reason(owner), source_ip=owner.source_ip))
        audited += 1
    return audited


async def _still_valid(redis: aioredis.Redis, owner: SessionOwner) -> bool:
    """False when the user's deletion or password change had ended the session already (audited as such)."""
    role, valid_from = await redis.hmget(keys.user(owner.user), ["role", SESSIONS_VALID_FROM])
    return role is not None and valid_for_user(owner.created_ms, valid_from)


async def sweep_forever(redis: aioredis.Redis, interval_s: float = SWEEP_INTERVAL_S) -> None:
    """Run by each web worker (web/runtime.py); Redis away only delays the audit."""
    while True:
        try:
            while await audit_expired_sessions(redis) >= SWEEP_BATCH:
                pass
        except (RedisError, OSError) as error:
            log.warning("session expiry sweep: Redis unavailable (%s); retrying", error)
        await asyncio.sleep(interval_s)
