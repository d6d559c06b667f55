"""Server-side sessions in Redis: the browser holds only a random token.

The Redis key is the token's SHA-256, so reading Redis does not hand out live
sessions. Each session carries a CSRF token that the page echoes in a header
(double submit) on top of the SameSite=Strict cookie. The session's idle timer
is refreshed by every authenticated HTTP request; the user's role is read from
the user record each time, so a role change or deletion takes effect at once.

A session created before its user's `sessions_valid_from_ms` (set by a password change, or
left by a deleted namesake) is no session: every check below refuses it, and load_session
deletes it. Its `created_ms` is when the login read the password hash it verified.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from tag_store import keys
from web.roles import Role
from web.session_expiry import SessionOwner, queue_closed, queue_opened, queue_touched, wall_clock_ms
from web.users import SESSIONS_VALID_FROM, USER_NAME_PATTERN, decode_areas, valid_for_user

SESSION_COOKIE = "stacklight_session"
CSRF_COOKIE = "stacklight_csrf"
CSRF_HEADER = "X-CSRFToken"


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    role: Role
    csrf_token: str
    created_ms: int
    # The user's plant areas (empty: all), read from the user record like the role.
    areas: tuple[str, ...] = ()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def session_id(token: str) -> str:
    """What Redis knows a session by: its token's SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_key(token: str) -> str:
    return keys.session(session_id(token))


def _text(raw: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()}


def _int(raw: bytes | str | None) -> int:
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


_USER_FIELDS = ["role", "areas", SESSIONS_VALID_FROM]


async def create_session(
    redis: aioredis.Redis, user: str, role: Role, idle_timeout_s: int, now_ms: int, source_ip: str = ""
) -> tuple[str, Session]:
    """Store a new session; returns (token for the cookie, session)."""
    token = new_token()
    session = Session(user=user, role=role, csrf_token=new_token(), created_ms=now_ms)
    key = session_key(token)
    pipe = redis.pipeline(transaction=True)
    pipe.hset(key, mapping={"user": user, "role": role.value, "csrf": session.csrf_token,
                            "created_ms": now_ms, "source_ip": source_ip})
    pipe.expire(key, idle_timeout_s)
    queue_opened(pipe, session_id(token), SessionOwner(user, source_ip, now_ms, idle_timeout_s), wall_clock_ms())
    await pipe.execute()
    return token, session


async def load_session(
    redis: aioredis.Redis, token: str | None, idle_timeout_s: int, *, refresh: bool = True
) -> Session | None:
    """The live session for a cookie token, its idle timer restarted; None if expired or unknown."""
    if not token or len(token) > 200:
        return None
    key = session_key(token)
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(key)
    if refresh:
        pipe.expire(key, idle_timeout_s)
    raw = _text((await pipe.execute())[0])
    name = raw.get("user")
    if not name:
        return None
    created_ms = _int(raw.get("created_ms"))
    role, areas, valid_from = None, None, None
    if USER_NAME_PATTERN.fullmatch(name):
        pipe = redis.pipeline(transaction=False)
        pipe.hmget(keys.user(name), _USER_FIELDS)
        if refresh:  # in the round trip we make anyway: the idle-end record's deadline moves on too
            queue_touched(pipe, session_id(token), idle_timeout_s, wall_clock_ms())
        role, areas, valid_from = (await pipe.execute())[0]
    if role is None or not valid_for_user(created_ms, valid_from):
        await redis.delete(key)  # its user is gone, or changed password after it was made
        return None
    return Session(user=name, role=Role(role.decode() if isinstance(role, bytes) else role),
                   csrf_token=raw.get("csrf", ""), created_ms=created_ms, areas=decode_areas(areas))


async def peek_session(redis: aioredis.Redis, token: str | None, user: str) -> Session | None:
    """The session as it stands, for a known user: one round trip, idle timer left alone.

    For the live push loop, which re-checks its page's login but is no user activity.
    None when the session ended (logout, idle timeout), belongs to someone else, or its
    user was deleted; the role is the user's current one.
    """
    if not token or len(token) > 200:
        return None
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(session_key(token))
    pipe.hmget(keys.user(user), _USER_FIELDS)
    raw_session, (raw_role, raw_areas, valid_from) = await pipe.execute()
    raw = _text(raw_session)
    created_ms = _int(raw.get("created_ms"))
    if raw.get("user") != user or raw_role is None or not valid_for_user(created_ms, valid_from):
        return None
    role = raw_role.decode() if isinstance(raw_role, bytes) else raw_role
    return Session(user=user, role=Role(role), csrf_token=raw.get("csrf", ""),
                   created_ms=created_ms, areas=decode_areas(raw_areas))


async def session_exists(redis: aioredis.Redis, token: str | None) -> bool:
    """A live session of a user who still exists; cheap, idle timer untouched (websocket messages)."""
    if not token or len(token) > 200:
        return False
    user, created_ms = await redis.hmget(session_key(token), ["user", "created_ms"])
    if user is None:
        return False
    role, valid_from = await redis.hmget(keys.user(user.decode() if isinstance(user, bytes) else user),
                                         ["role", SESSIONS_VALID_FROM])
    return role is not None and valid_for_user(_int(created_ms), valid_from)


async def end_session(redis: aioredis.Redis, token: str | None) -> None:
    """Logout: the session ends now, and not later as an idle one."""
    if token and len(token) <= 200:
        pipe = redis.pipeline(transaction=True)
        pipe.delete(session_key(token))
        queue_closed(pipe, session_id(token))
        await pipe.execute()
