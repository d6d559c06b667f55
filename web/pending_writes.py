"""Prepared setpoint writes held on the server between "Write…" and "Confirm" (or an approval).

The page gets only a random nonce; what was prepared (user, session, tag, value, the old value
shown, the reason) stays in Redis for PENDING_TTL_S. Taking it is single use and atomic (one Lua
script): it is handed out, and deleted, only to the same user in the same session and at the
stage it was held for; anyone else's take leaves it alone and gets nothing. A write waiting for
its approver is put back for the time it had left when an approver is refused
(web/write_approval.py). The Redis key is the nonce's SHA-256, so reading Redis does not hand
out usable nonces.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from enum import StrEnum

import redis.asyncio as aioredis

from domain.tag_value import ScalarValue
from tag_store import keys
from web.sessions import Session

PENDING_TTL_S = 120
MAX_NONCE_LENGTH = 100
NO_SUCH_PENDING_WRITE = "no such pending write (expired, already used or not yours)"


class Stage(StrEnum):
    CONFIRM = "confirm"    # waits for the requester's Confirm
    APPROVAL = "approval"  # confirmed, waits for a second person's approval (critical tags)


@dataclass(frozen=True, slots=True)
class PendingWrite:
    user: str
    session_created_ms: int
    tag: str
    value: ScalarValue
    old: ScalarValue       # the value the question showed
    created_ms: int
    stage: Stage = Stage.CONFIRM
    reason: str = ""       # given at Confirm; carried to the approval


# GET the held write; hand it out (and delete it) only when user, session and stage match,
# with the milliseconds it had left.
_TAKE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local held = cjson.decode(raw)
if held['user'] ~= ARGV[1] or held['session_created_ms'] ~= tonumber(ARGV[2]) or held['stage'] ~= ARGV[3] then
  return false
end
local left_ms = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return {raw, left_ms}
"""


def _key(nonce: str) -> str:
    return keys.pending_write(hashlib.sha256(nonce.encode()).hexdigest())


async def hold_write(redis: aioredis.Redis, pending: PendingWrite, ttl_s: int = PENDING_TTL_S) -> str:
    """Keep `pending` for ttl_s; the nonce that takes it back."""
    nonce = secrets.token_urlsafe(24)
    await redis.set(_key(nonce), json.dumps(asdict(pending)), ex=ttl_s)
    return nonce


async def take_write(redis: aioredis.Redis, nonce: object, session: Session | None,
                     stage: Stage = Stage.CONFIRM) -> PendingWrite | None:
    """The held write, removed; None when it is unknown, expired, used, not this session's or not at `stage`."""
    taken = await take_write_with_time_left(redis, nonce, session, stage)
    return taken[0] if taken else None


async def take_write_with_time_left(redis: aioredis.Redis, nonce: object, session: Session | None,
                                    stage: Stage = Stage.CONFIRM) -> tuple[PendingWrite, int] | None:
    """take_write, and how many milliseconds the write had left to wait (for put_back)."""
    if session is None or not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        return None
    taken = await redis.eval(_TAKE, 1, _key(nonce), session.user, str(session.created_ms), stage.value)
    if not taken:
        return None
    raw, left_ms = taken
    data = json.loads(raw)
    data["stage"] = Stage(data["stage"])
    return PendingWrite(**data), int(left_ms)


async def put_back(redis: aioredis.Redis, nonce: str, pending: PendingWrite, left_ms: int) -> bool:
    """Hold a taken write again under the same nonce for the time it had left; False if none was left.
    (NX: a nonce is never reused for anything else, this only guards against a double put_back.)"""
    if left_ms <= 0:
        return False
    return bool(await redis.set(_key(nonce), json.dumps(asdict(pending)), px=left_ms, nx=True))
