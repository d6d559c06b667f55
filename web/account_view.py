"""The account page's decisions, apart from Dash: who you are, your API tokens, make and revoke one.

Every function takes the caller's identity and refuses (with the reason) when there is no
login, or it is the kiosk or an API token (the page is for people logged in). Making and
revoking are audited by web/api_tokens.py.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from web.api_tokens import TokenError, TokenRecord, create_token, list_tokens, revoke_token
from web.auth import BY_SESSION, RequestIdentity

NOT_LOGGED_IN = "Not logged in: log in to see your account."
KIOSK = "This is the read-only kiosk view: it has no account. Log in to see yours."


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """What a make or revoke came to: the token (make, shown once) or none, and the message."""

    ok: bool
    message: str
    token: str = ""
    record: TokenRecord | None = None


def refusal(identity: RequestIdentity | None) -> str:
    """Why this caller has no account page; "" when they have one."""
    if identity is None:
        return NOT_LOGGED_IN
    if identity.is_kiosk:
        return KIOSK
    if identity.method != BY_SESSION:
        return "The account page needs a login (not an API token)."
    return ""


def areas_text(areas: tuple[str, ...]) -> str:
    return ", ".join(areas) if areas else "all areas"


def time_text(ms: int | None) -> str:
    if not ms:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def token_rows(tokens: list[TokenRecord]) -> list[dict[str, str]]:
    return [{"id": t.id, "label": t.label, "created": time_text(t.created_ms), "expires": time_text(t.expires_ms),
             "last_used": time_text(t.last_used_ms)} for t in tokens]


async def my_tokens(redis: aioredis.Redis, identity: RequestIdentity | None) -> tuple[list[TokenRecord], str]:
    """The caller's tokens, or none and why not."""
    why_not = refusal(identity)
    if why_not:
        return [], why_not
    assert identity is not None
    try:
        return await list_tokens(redis, identity.session.user), ""
    except (RedisError, OSError) as exc:
        return [], f"The data server (Redis) is unavailable: {exc}"


async def make_token(redis: aioredis.Redis, identity: RequestIdentity | None, label: str | None,
                     days: int | str | None, max_days: int) -> AccountOutcome:
    why_not = refusal(identity)
    if why_not:
        return AccountOutcome(False, why_not)
    assert identity is not None
    try:
        plaintext, record = await create_token(redis, identity.session.user, label, days,
                                               by=identity.session.user, source_ip=identity.source_ip,
                                               max_days=max_days)
    except TokenError as exc:
        return AccountOutcome(False, f"Not created: {exc}.")
    except (RedisError, OSError) as exc:
        return AccountOutcome(False, f"Not created: the data server (Redis) is unavailable: {exc}")
    return AccountOutcome(True, f"Token '{record.label}' created (id {record.id}), valid until"
                                f" {time_text(record.expires_ms)}. Copy it now: it is shown only once.",
                          plaintext, record)


async def revoke_mine(redis: aioredis.Redis, identity: RequestIdentity | None, token_id: str | None) -> AccountOutcome:
    why_not = refusal(identity)
    if why_not:
        return AccountOutcome(False, why_not)
    assert identity is not None
    try:
        done = await revoke_token(redis, identity.session.user, token_id or "", by=identity.session.user,
                                  source_ip=identity.source_ip)
    except (RedisError, OSError) as exc:
        return AccountOutcome(False, f"Not revoked: the data server (Redis) is unavailable: {exc}")
    if not done:
        return AccountOutcome(False, f"You have no token with id '{token_id}' (expired or revoked already).")
    return AccountOutcome(True, f"Token {token_id} revoked: it is refused from now on.")
