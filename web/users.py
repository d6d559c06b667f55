"""Users in Redis (one hash per user: role and an argon2 password hash), and their CLI.

    python -m web.users add NAME --role operator [--password-file FILE]
    python -m web.users passwd NAME [--password-file FILE]      (alias: set-password)
    python -m web.users list | delete NAME | set-role NAME ROLE

The Redis URL comes from --redis-url, then $REDIS_URL, then redis.url of --config.
Without --password-file the password is prompted for twice and both must match.
Exit codes: 0 done; 1 not done (no such user, Redis unreachable, ...); 2 bad input (a password
refused by the policy, two prompts that differ, a usage error), nothing changed.

Every change (user_added, user_deleted, role_changed, password_changed) is written to the audit
trail with `user` = who made it ("cli:<OS user>" for this CLI) and `tag` = "user:<account>", the
account changed: the prefix keeps accounts apart from process tags of the same name in the audit
search. A password, or its hash, is never written there. Deleting a user or changing a password
ends every open session of that user.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from redis.exceptions import RedisError

from tag_store import keys
from web.audit import AuditEvent, append_audit
from web.roles import Role, parse_role

USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
DEMO_USERS = (Role.VIEWER, Role.OPERATOR, Role.ENGINEER, Role.ADMIN)
# Who made a change, when a caller did not say (the audit entry is written all the same).
UNATTRIBUTED = "(not given)"
EXIT_NOT_DONE = 1
EXIT_BAD_INPUT = 2

_hasher = PasswordHasher()
# Verified when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user: constant-time decoy")


class UserError(Exception):
    """A user operation that cannot be done; str() says why."""


class PasswordRejected(UserError):
    """A new password refused (policy, or the two prompts differ); nothing was changed."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    # The plant areas this user may act in (write, acknowledge, shelve); empty: every area.
    areas: tuple[str, ...] = ()


def encode_areas(areas: tuple[str, ...] | list[str]) -> str:
    return json.dumps(sorted(set(areas)))


def decode_areas(raw: bytes | str | None) -> tuple[str, ...]:
    """The stored area list; a field that is not a JSON list of strings grants nothing extra."""
    if not raw:
        return ()
    try:
        areas = json.loads(raw)
    except ValueError:
        return ("(unreadable area list)",)
    if not isinstance(areas, list) or not all(isinstance(a, str) for a in areas):
        return ("(unreadable area list)",)
    return tuple(areas)


@dataclass(frozen=True, slots=True)
class DemoUser:
    name: str
    role: Role
    password: str


def check_user_name(name: str) -> str:
    if not USER_NAME_PATTERN.fullmatch(name or ""):
        raise UserError(f"'{name}' is not a valid user name (letters, digits, _ . -; at most 64)")
    return name


def check_password_policy(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _text(raw: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()}


def _decoded(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


async def _hash(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def save_user(redis: aioredis.Redis, name: str, role: Role, password: str) -> User:
    """Create or replace a user (no password policy here: callers decide)."""
    check_user_name(name)
    await redis.hset(keys.user(name), mapping={
        "role": role.value, "password_hash": await _hash(password), "updated_ms": int(time.time() * 1000),
    })
    return User(name, role)


def account_tag(name: str) -> str:
    """The audit entry's `tag` for a change to the account `name`."""
    return f"user:{name}"


async def _audit_change(redis: aioredis.Redis, by: str, action: str, name: str, *, old: str = "", new: str = "",
                        reason: str = "", source_ip: str = "") -> None:
    await append_audit(redis, AuditEvent(user=by, action=action, result="ok", tag=account_tag(name),
                                         old=old, new=new, reason=reason, source_ip=source_ip))


def _sessions_ended(count: int) -> str:
    return f"{count} open session{'' if count == 1 else 's'} ended"


async def add_user(redis: aioredis.Redis, name: str, role: Role, password: str, *,
                   by: str = UNATTRIBUTED, source_ip: str = "") -> User:
    check_user_name(name)
    check_password_policy(password)
    if await redis.exists(keys.user(name)):
        raise UserError(f"user '{name}' exists already")
    user = await save_user(redis, name, role, password)
    await _audit_change(redis, by, "user_added", name, new=role.value, source_ip=source_ip)
    return user


async def get_user(redis: aioredis.Redis, name: str) -> User | None:
    if not USER_NAME_PATTERN.fullmatch(name or ""):
        return None
    role, areas = await redis.hmget(keys.user(name), ["role", "areas"])
    if role is None:
        return None
    return User(name, Role(role.decode() if isinstance(role, bytes) else role), decode_areas(areas))


async def list_users(redis: aioredis.Redis) -> list[User]:
    users = []
    async for key in redis.scan_iter(match=keys.USER_PATTERN, count=500):
        name = (key.decode() if isinstance(key, bytes) else key).removeprefix(keys.user(""))
        user = await get_user(redis, name)
        if user is not None:
            users.append(user)
    return sorted(users, key=lambda u: u.name)


async def end_sessions_of(redis: aioredis.Redis, name: str) -> int:
    """End every open session of user `name`; returns how many.

    Sessions are keyed by a hash of their token, not by user, so this SCANs all session keys
    and reads each one's "user" field: linear in the open sessions of everyone, which at HMI
    scale (tens to a few hundred) is a handful of round trips, one pipeline per SCAN page.
    """
    check_user_name(name)  # never "": a session hash without a user field is no one's
    ended = 0
    cursor = 0
    while True:
        cursor, page = await redis.scan(cursor, match=keys.session("*"), count=500)
        if page:
            pipe = redis.pipeline(transaction=False)
            for key in page:
                pipe.hget(key, "user")
            owners = await pipe.execute()
            theirs = [key for key, owner in zip(page, owners, strict=True) if _decoded(owner) == name]
            if theirs:
                ended += await redis.delete(*theirs)
        if not cursor:
            return ended


async def delete_user(redis: aioredis.Redis, name: str, *, by: str = UNATTRIBUTED, source_ip: str = "") -> bool:
    """Delete the user and end their open sessions; False if there was no such user.

    Sessions are ended either way: ones left behind by a user deleted earlier must not come
    back to life for a new account of the same name.
    """
    pipe = redis.pipeline(transaction=True)
    pipe.hget(keys.user(check_user_name(name)), "role")
    pipe.delete(keys.user(name))
    old_role, deleted = await pipe.execute()
    ended = await end_sessions_of(redis, name)
    if not deleted:
        return False
    await _audit_change(redis, by, "user_deleted", name, old=_decoded(old_role),
                        reason=_sessions_ended(ended), source_ip=source_ip)
    return True


# Only on an existing user (a HSET on a just deleted one would bring back half an account).
_SET_ROLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local old = redis.call('HGET', KEYS[1], 'role')
redis.call('HSET', KEYS[1], 'role', ARGV[1])
return old or ''
"""
_SET_PASSWORD_HASH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[1], 'updated_ms', ARGV[2])
return 1
"""


async def set_role(redis: aioredis.Redis, name: str, role: Role, *,
                   by: str = UNATTRIBUTED, source_ip: str = "") -> None:
    old = await redis.eval(_SET_ROLE, 1, keys.user(check_user_name(name)), role.value)
    if old is None:
        raise UserError(f"no user '{name}'")
    await _audit_change(redis, by, "role_changed", name, old=_decoded(old) or "(none)", new=role.value,
                        source_ip=source_ip)


async def change_password(redis: aioredis.Redis, name: str, password: str, *,
                          by: str = UNATTRIBUTED, source_ip: str = "") -> int:
    """Store a new argon2 hash for `name` (policy checked) and end all their open sessions.

    Returns how many sessions were ended. The audit entry never carries the password or hash.
    """
    check_user_name(name)
    check_password_policy(password)
    if not await redis.exists(keys.user(name)):
        raise UserError(f"no user '{name}'")
    changed = await redis.eval(_SET_PASSWORD_HASH, 1, keys.user(name), await _hash(password),
                               int(time.time() * 1000))
    if not changed:
        raise UserError(f"no user '{name}'")
    ended = await end_sessions_of(redis, name)
    await _audit_change(redis, by, "password_changed", name, reason=_sessions_ended(ended), source_ip=source_ip)
    return ended


async def verify_password(redis: aioredis.Redis, name: str, password: str) -> User | None:
    """The user if name and password match, else None (same cost either way)."""
    raw = _text(await redis.hgetall(keys.user(name))) if USER_NAME_PATTERN.fullmatch(name or "") else {}
    stored = raw.get("password_hash") or _DUMMY_HASH
    try:
        await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if not raw:
        return None
    if _hasher.check_needs_rehash(stored):
        await redis.hset(keys.user(name), "password_hash", await _hash(password))
    return User(name, Role(raw["role"]), decode_areas(raw.get("areas")))


_CREATE_IF_MISSING = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


async def ensure_demo_users(redis: aioredis.Redis) -> list[DemoUser]:
    """Demo mode only: create the missing ones of viewer/operator/engineer/admin, each with its
    own name as password; returns those it created. An account that exists already is never
    touched: demo mode pointed at a plant's Redis must not reset real accounts to known passwords.
    """
    created = []
    for role in DEMO_USERS:
        user = DemoUser(role.value, role, role.value)
        key = keys.user(user.name)
        if not await redis.exists(key):
            # Created only if still missing when written (atomic: a race never overwrites either).
            made = await redis.eval(_CREATE_IF_MISSING, 1, key, "role", role.value, "password_hash",
                                    await _hash(user.password), "updated_ms", int(time.time() * 1000))
            if made:
                created.append(user)
    return created


# --- command line -------------------------------------------------------------------------

def _redis_url(args: argparse.Namespace) -> str:
    if args.redis_url:
        return args.redis_url
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if args.config:
        from domain.config_loading import load_config  # noqa: PLC0415 - only when asked for

        url = load_config(Path(args.config)).redis.url
        if url:
            return url
    raise UserError("no Redis to talk to: give --redis-url, set REDIS_URL, or --config with redis.url")


def _cli_actor() -> str:
    """Who is changing users from the command line, for the audit trail."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in the environment nor in the password database
        return f"cli:uid {os.getuid()}" if hasattr(os, "getuid") else "cli:(unknown OS user)"


def _read_new_password(args: argparse.Namespace) -> str:
    if args.password_file:
        lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        return check_password_policy(lines[0] if lines else "")
    first = getpass.getpass("Password: ")
    check_password_policy(first)
    if getpass.getpass("Password again: ") != first:
        raise PasswordRejected("the two passwords differ")
    return first


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m web.users", description="Manage Stacklight web users.")
    parser.add_argument("--redis-url", help="redis://host:port/db (default: $REDIS_URL)")
    parser.add_argument("--config", help="plant file whose redis.url to use")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, type=parse_role)
    add.add_argument("--password-file", help="read the password from the first line of this file")
    commands.add_parser("list", help="list users and roles")
    delete = commands.add_parser("delete", help="delete a user and end their open sessions")
    delete.add_argument("name")
    passwd = commands.add_parser("passwd", aliases=["set-password"],
                                 help="change a user's password and end their open sessions")
    passwd.add_argument("name")
    passwd.add_argument("--password-file", help="read the new password from the first line of this file")
    change = commands.add_parser("set-role", help="change a user's role")
    change.add_argument("name")
    change.add_argument("role", type=parse_role)
    return parser


async def _run(args: argparse.Namespace) -> str:
    by = _cli_actor()
    redis = aioredis.Redis.from_url(_redis_url(args))
    try:
        if args.command == "add":
            user = await add_user(redis, args.name, args.role, _read_new_password(args), by=by)
            return f"added {user.name} ({user.role.value})"
        if args.command == "list":
            return "\n".join(f"{u.name}\t{u.role.value}" for u in await list_users(redis)) or "(no users)"
        if args.command == "delete":
            if not await delete_user(redis, args.name, by=by):
                raise UserError(f"no user '{args.name}'")
            return f"deleted {args.name}"
        if args.command in ("passwd", "set-password"):
            if await get_user(redis, check_user_name(args.name)) is None:  # before asking for a password
                raise UserError(f"no user '{args.name}'")
            ended = await change_password(redis, args.name, _read_new_password(args), by=by)
            return f"password of {args.name} changed; {_sessions_ended(ended)}"
        await set_role(redis, args.name, args.role, by=by)
        return f"{args.name} is now {args.role.value}"
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print(asyncio.run(_run(args)))
    except PasswordRejected as exc:
        print(f"error: {exc}; nothing changed", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (UserError, OSError, RedisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
