"""Users in Redis (one hash per user: role and an argon2 password hash), and their CLI.

    python -m web.users add NAME --role operator [--password-file FILE]
    python -m web.users list | delete NAME | set-role NAME ROLE

The Redis URL comes from --redis-url, then $REDIS_URL, then redis.url of --config.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
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
from web.roles import Role, parse_role

USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
DEMO_USERS = (Role.VIEWER, Role.OPERATOR, Role.ENGINEER, Role.ADMIN)

_hasher = PasswordHasher()
# Verified when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user: constant-time decoy")


class UserError(Exception):
    """A user operation that cannot be done; str() says why."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role


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
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _text(raw: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()}


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


async def add_user(redis: aioredis.Redis, name: str, role: Role, password: str) -> User:
    check_user_name(name)
    check_password_policy(password)
    if await redis.exists(keys.user(name)):
        raise UserError(f"user '{name}' exists already")
    return await save_user(redis, name, role, password)


async def get_user(redis: aioredis.Redis, name: str) -> User | None:
    if not USER_NAME_PATTERN.fullmatch(name or ""):
        return None
    role = await redis.hget(keys.user(name), "role")
    if role is None:
        return None
    return User(name, Role(role.decode() if isinstance(role, bytes) else role))


async def list_users(redis: aioredis.Redis) -> list[User]:
    users = []
    async for key in redis.scan_iter(match=keys.USER_PATTERN, count=500):
        name = (key.decode() if isinstance(key, bytes) else key).removeprefix(keys.user(""))
        user = await get_user(redis, name)
        if user is not None:
            users.append(user)
    return sorted(users, key=lambda u: u.name)


async def delete_user(redis: aioredis.Redis, name: str) -> bool:
    return bool(await redis.delete(keys.user(check_user_name(name))))


async def set_role(redis: aioredis.Redis, name: str, role: Role) -> None:
    if not await redis.exists(keys.user(check_user_name(name))):
        raise UserError(f"no user '{name}'")
    await redis.hset(keys.user(name), "role", role.value)


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
    return User(name, Role(raw["role"]))


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


def _read_new_password(args: argparse.Namespace) -> str:
    if args.password_file:
        lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        return check_password_policy(lines[0] if lines else "")
    first = getpass.getpass("Password: ")
    check_password_policy(first)
    if getpass.getpass("Password again: ") != first:
        raise UserError("the two passwords differ")
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
    delete = commands.add_parser("delete", help="delete a user")
    delete.add_argument("name")
    change = commands.add_parser("set-role", help="change a user's role")
    change.add_argument("name")
    change.add_argument("role", type=parse_role)
    return parser


async def _run(args: argparse.Namespace) -> str:
    redis = aioredis.Redis.from_url(_redis_url(args))
    try:
        if args.command == "add":
            user = await add_user(redis, args.name, args.role, _read_new_password(args))
            return f"added {user.name} ({user.role.value})"
        if args.command == "list":
            return "\n".join(f"{u.name}\t{u.role.value}" for u in await list_users(redis)) or "(no users)"
        if args.command == "delete":
            if not await delete_user(redis, args.name):
                raise UserError(f"no user '{args.name}'")
            return f"deleted {args.name}"
        await set_role(redis, args.name, args.role)
        return f"{args.name} is now {args.role.value}"
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print(asyncio.run(_run(args)))
    except (UserError, OSError, RedisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
