"""Per-user API tokens: `Authorization: Bearer slt_...` for scripts and other systems on /api/*.

    python -m web.api_tokens create NAME --label L [--days N]
    python -m web.api_tokens list NAME
    python -m web.api_tokens revoke NAME ID

(--redis-url / --config / $REDIS_URL as for `python -m web.users`.)

A token is "slt_" + 43 random URL-safe characters, shown once when it is made. Redis keeps only
its SHA-256 (`sl:api_token:<sha256>`, a hash that expires with the token) and, per user, the
public token id -> hash (`sl:api_tokens_of:<name>`) for listing and revoking. A token acts with
its user's *current* role and areas, read from the account on every request, so a role change
or a deletion applies at once. A token is tied to the account it was made for (a random
`api_account` field in the user hash): an account deleted and made again under the same name
does not inherit the old account's tokens.

Made and revoked tokens are audited (token_created / token_revoked, tag "user:<name>"); the
token and its hash are never written there nor logged.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import sys
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tag_store import keys
from web.audit import AuditEvent, append_audit
from web.roles import Role
from web.users import (EXIT_BAD_INPUT, EXIT_NOT_DONE, UNATTRIBUTED, User, UserError, _cli_actor, _redis_url,
                       account_tag, check_user_name, decode_areas)

TOKEN_PREFIX = "slt_"
MAX_TOKEN_LENGTH = 100          # anything longer is not one of ours (checked before hashing)
DEFAULT_DAYS = 90
MAX_LABEL_LENGTH = 80
MAX_TOKENS_PER_USER = 50
LAST_USED_RESOLUTION_MS = 60_000
DAY_MS = 24 * 3600 * 1000
# The field of the user hash that ties tokens to one account (not to a name used again later).
ACCOUNT_FIELD = "api_account"


class TokenError(Exception):
    """A token operation refused; str() says why."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What is known of a token, never the token itself."""

    id: str
    user: str
    label: str
    created_ms: int
    expires_ms: int
    last_used_ms: int = 0
    created_by: str = ""

    def as_json(self) -> dict:
        return {"id": self.id, "user": self.user, "label": self.label, "created_ms": self.created_ms,
                "expires_ms": self.expires_ms, "last_used_ms": self.last_used_ms or None,
                "created_by": self.created_by}


def token_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def looks_like_token(text: str | None) -> bool:
    return bool(text) and text.startswith(TOKEN_PREFIX) and len(text) <= MAX_TOKEN_LENGTH and text.isascii()


def clean_label(label: str | None) -> str:
    text = " ".join((label or "").split())
    if not text:
        raise TokenError("give the token a label (what or who uses it)")
    if len(text) > MAX_LABEL_LENGTH:
        raise TokenError(f"the label may have at most {MAX_LABEL_LENGTH} characters")
    return text


def token_days(days: int | float | str | None, max_days: int) -> int:
    """The lifetime asked for, checked against web.api_token_max_days; none given: 90 (or the maximum)."""
    if days is None or days == "":
        return min(DEFAULT_DAYS, max_days)
    try:
        value = int(days)
    except (TypeError, ValueError):
        raise TokenError(f"'{days}' is not a number of days") from None
    if isinstance(days, float) and days != value:
        raise TokenError(f"'{days}' is not a whole number of days")
    if not 1 <= value <= max_days:
        raise TokenError(f"a token may last 1 to {max_days} days (web.api_token_max_days)")
    return value


def _text(raw: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()}


def _record(raw: dict[str, str]) -> TokenRecord | None:
    try:
        return TokenRecord(id=raw["id"], user=raw["user"], label=raw.get("label", ""),
                           created_ms=int(raw["created_ms"]), expires_ms=int(raw["expires_ms"]),
                           last_used_ms=int(raw.get("last_used_ms") or 0), created_by=raw.get("created_by", ""))
    except (KeyError, ValueError):
        return None


# Gives an existing account its token binding if it has none yet; returns the binding, or false
# when there is no such account (a HSET on a deleted one would bring back half an account).
_ACCOUNT_ID = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
"""

# Stores a token unless its user already has the most allowed; returns 1 stored, 0 refused.
_STORE = """
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], KEYS[1])
return 1
"""

# last_used_ms only on a token that still exists (never recreate a revoked one).
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_used_ms', ARGV[1])
return 1
"""


async def _prune(redis: aioredis.Redis, user: str) -> dict[str, str]:
    """The user's index (id -> token key), entries of expired tokens removed."""
    index = _text(await redis.hgetall(keys.api_tokens_of(user)))
    if not index:
        return {}
    pipe = redis.pipeline(transaction=False)
    for key in index.values():
        pipe.exists(key)
    alive = await pipe.execute()
    gone = [token_id for (token_id, _), exists in zip(index.items(), alive, strict=True) if not exists]
    if gone:
        await redis.hdel(keys.api_tokens_of(user), *gone)
    return {token_id: key for token_id, key in index.items() if token_id not in gone}


async def create_token(redis: aioredis.Redis, user: str, label: str | None, days: int | str | None = None, *,
                       by: str = UNATTRIBUTED, source_ip: str = "", max_days: int = 365,
                       now_ms: int | None = None) -> tuple[str, TokenRecord]:
    """Make a token for `user`; returns (the token, shown once and never again; its record)."""
    check_user_name(user)
    label = clean_label(label)
    lifetime_days = token_days(days, max_days)
    account = await redis.eval(_ACCOUNT_ID, 1, keys.user(user), ACCOUNT_FIELD, secrets.token_hex(8))
    if account is None:
        raise TokenError(f"no user '{user}'")
    await _prune(redis, user)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(id=secrets.token_hex(4), user=user, label=label, created_ms=now,
                         expires_ms=now + lifetime_days * DAY_MS, created_by=by)
    fields = {"id": record.id, "user": user, "label": label, "created_ms": now, "expires_ms": record.expires_ms,
              "last_used_ms": 0, "created_by": by,
              "account": account.decode() if isinstance(account, bytes) else account}
    flat = [str(item) for pair in fields.items() for item in pair]
    stored = await redis.eval(_STORE, 2, keys.api_token(token_hash(plaintext)), keys.api_tokens_of(user),
                              MAX_TOKENS_PER_USER, record.expires_ms, record.id, *flat)
    if not stored:
        raise TokenError(f"{user} has {MAX_TOKENS_PER_USER} API tokens already; revoke one first")
    await append_audit(redis, AuditEvent(user=by, action="token_created", result="ok", tag=account_tag(user),
                                         new=f"{label} (id {record.id}, {lifetime_days} days)",
                                         source_ip=source_ip))
    return plaintext, record


async def list_tokens(redis: aioredis.Redis, user: str) -> list[TokenRecord]:
    """The user's live tokens, newest first."""
    if check_user_name_or_none(user) is None:
        return []
    index = await _prune(redis, user)
    if not index:
        return []
    pipe = redis.pipeline(transaction=False)
    pipe.hget(keys.user(user), ACCOUNT_FIELD)
    for key in index.values():
        pipe.hgetall(key)
    account, *raws = await pipe.execute()
    account_text = account.decode() if isinstance(account, bytes) else account
    records, stale = [], []
    for (token_id, key), raw in zip(index.items(), raws, strict=True):
        fields = _text(raw)
        record = _record(fields)
        if record is None or not account_text or fields.get("account") != account_text:
            stale.append((token_id, key))  # made for an account deleted since (maybe of the same name)
        else:
            records.append(record)
    if stale:
        await redis.delete(*[key for _, key in stale])
        await redis.hdel(keys.api_tokens_of(user), *[token_id for token_id, _ in stale])
    return sorted(records, key=lambda r: r.created_ms, reverse=True)


def check_user_name_or_none(user: str) -> str | None:
    try:
        return check_user_name(user)
    except UserError:
        return None


async def revoke_token(redis: aioredis.Redis, user: str, token_id: str, *, by: str = UNATTRIBUTED,
                       source_ip: str = "") -> bool:
    """Revoke one of `user`'s tokens by its public id; False if there is no such token."""
    if check_user_name_or_none(user) is None or not token_id or len(token_id) > 32:
        return False
    key = await redis.hget(keys.api_tokens_of(user), token_id)
    if key is None:
        return False
    pipe = redis.pipeline(transaction=True)
    pipe.hget(key, "label")
    pipe.delete(key)
    pipe.hdel(keys.api_tokens_of(user), token_id)
    label, deleted, _ = await pipe.execute()
    if not deleted:
        return False  # expired meanwhile, or revoked by a parallel request (which audited it)
    label_text = label.decode() if isinstance(label, bytes) else (label or "")
    await append_audit(redis, AuditEvent(user=by, action="token_revoked", result="ok", tag=account_tag(user),
                                         old=f"{label_text} (id {token_id})", source_ip=source_ip))
    return True


async def revoke_all_tokens_of(redis: aioredis.Redis, user: str, *, by: str = UNATTRIBUTED,
                               source_ip: str = "", reason: str = "") -> int:
    """Revoke every token of `user` (e.g. when the account is deleted); returns how many."""
    if check_user_name_or_none(user) is None:
        return 0
    index = _text(await redis.hgetall(keys.api_tokens_of(user)))
    pipe = redis.pipeline(transaction=True)
    for key in index.values():
        pipe.delete(key)
    pipe.delete(keys.api_tokens_of(user))
    deleted = sum((await pipe.execute())[:-1]) if index else 0
    if deleted:
        await append_audit(redis, AuditEvent(user=by, action="token_revoked", result="ok", tag=account_tag(user),
                                             old=f"all ({deleted})", reason=reason, source_ip=source_ip))
    return deleted


async def resolve_token(redis: aioredis.Redis, plaintext: str | None,
                        now_ms: int | None = None) -> tuple[User, TokenRecord] | None:
    """The token's user (current role and areas) and record; None if unknown, expired or revoked,
    or its account was deleted (a token of a deleted account is removed here)."""
    if not looks_like_token(plaintext):
        return None
    key = keys.api_token(token_hash(plaintext))
    raw = _text(await redis.hgetall(key))
    record = _record(raw)
    if record is None:
        return None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if record.expires_ms <= now:
        return None
    role, areas, account = await redis.hmget(keys.user(record.user), ["role", "areas", ACCOUNT_FIELD])
    account_text = account.decode() if isinstance(account, bytes) else account
    if role is None or not account_text or account_text != raw.get("account"):
        await redis.delete(key)  # the account it was made for is gone
        await redis.hdel(keys.api_tokens_of(record.user), record.id)
        return None
    try:
        user = User(record.user, Role(role.decode() if isinstance(role, bytes) else role), decode_areas(areas))
    except ValueError:
        return None  # an unknown role grants nothing
    if now - record.last_used_ms >= LAST_USED_RESOLUTION_MS:
        await redis.eval(_TOUCH, 1, key, now)
    return user, record


# --- command line -------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m web.api_tokens", description="Manage users' API tokens.")
    parser.add_argument("--redis-url", help="redis://host:port/db (default: $REDIS_URL)")
    parser.add_argument("--config", help="plant file whose redis settings and web.api_token_max_days to use")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a token for a user (printed once)")
    create.add_argument("name")
    create.add_argument("--label", required=True, help="what or who uses the token")
    create.add_argument("--days", type=int, help=f"lifetime (default {DEFAULT_DAYS}, at most web.api_token_max_days)")
    listing = commands.add_parser("list", help="a user's tokens (never the tokens themselves)")
    listing.add_argument("name")
    revoke = commands.add_parser("revoke", help="revoke one of a user's tokens by its id")
    revoke.add_argument("name")
    revoke.add_argument("id")
    return parser


def _max_days(args: argparse.Namespace) -> int:
    if not args.config:
        from domain.config_model import WebSettings  # noqa: PLC0415

        return WebSettings().api_token_max_days
    from tag_store.startup import StartupError, load_plant  # noqa: PLC0415

    try:
        return load_plant(args.config).web.api_token_max_days
    except StartupError as exc:
        raise UserError(str(exc)) from None


def _day(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000)) if ms else "never"


async def _run(args: argparse.Namespace) -> str:
    by = _cli_actor()
    redis = aioredis.Redis.from_url(_redis_url(args))
    try:
        if args.command == "create":
            plaintext, record = await create_token(redis, args.name, args.label, args.days, by=by,
                                                   max_days=_max_days(args))
            return (f"{plaintext}\n(token id {record.id} for {record.user}, expires {_day(record.expires_ms)};"
                    " shown only now: store it safely)")
        if args.command == "list":
            rows = [f"{r.id}\t{r.label}\tcreated {_day(r.created_ms)}\texpires {_day(r.expires_ms)}"
                    f"\tlast used {_day(r.last_used_ms)}" for r in await list_tokens(redis, check_user_name(args.name))]
            return "\n".join(rows) or f"({args.name} has no API tokens)"
        if not await revoke_token(redis, check_user_name(args.name), args.id, by=by):
            raise UserError(f"{args.name} has no token with id '{args.id}'")
        return f"revoked token {args.id} of {args.name}"
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print(asyncio.run(_run(args)))
    except TokenError as exc:
        print(f"error: {exc}; nothing changed", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (UserError, OSError, RedisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
