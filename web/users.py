"""Users in Redis (one hash per user: role and an argon2 password hash), and their CLI.

    python -m web.users add NAME --role operator [--password-file FILE]
    python -m web.users passwd NAME [--password-file FILE]      (alias: set-password)
    python -m web.users list | delete NAME | set-role NAME ROLE | unlock NAME
    python -m web.users set-areas NAME [AREA ...]               (no areas: all areas)

The Redis URL comes from --redis-url, then $REDIS_URL, then redis.url of --config.
Without --password-file the password is prompted for twice and both must match.
Exit codes: 0 done; 1 not done (no such user, Redis unreachable, ...); 2 bad input (a password
refused by the policy, two prompts that differ, a usage error), nothing changed.

Every change (user_added, user_deleted, role_changed, password_changed, areas_changed,
user_unlocked) is written to the audit trail with `user` = who made it ("cli:<OS user>" for this
CLI) and `tag` = "user:<account>", the account changed: the prefix keeps accounts apart from
process tags of the same name in the audit search. A password, or its hash, is never written there. Deleting a user or changing a password
ends every open session of that user.

Sessions valid from: a password change stamps the account with `sessions_valid_from_ms` (Redis
time), and a deletion leaves that stamp behind for an account later made under the same name.
A session whose `created_ms` (the Redis time its password was verified) is earlier is no session
(web/sessions.py): this closes the race in which a login that verified the old password finishes
after the change, too late for end_sessions_of's SCAN to find it.
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
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from redis.exceptions import RedisError

from tag_store import keys
from web.audit import AuditEvent, append_audit
from web.login_throttle import clear_failures, lockout_remaining_s
from web.roles import Role, parse_role

USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
DEMO_USERS = (Role.VIEWER, Role.OPERATOR, Role.ENGINEER, Role.ADMIN)
# Who made a change, when a caller did not say (the audit entry is written all the same).
UNATTRIBUTED = "(not given)"
MAX_AREAS = 100
MAX_AREA_NAME_LENGTH = 64
# How long a deleted account's "sessions valid from" stamp waits for an account of the same name.
DELETED_STAMP_TTL_S = 30 * 24 * 3600
SESSIONS_VALID_FROM = "sessions_valid_from_ms"
EXIT_NOT_DONE = 1
EXIT_BAD_INPUT = 2

_hasher = PasswordHasher()
# Verified when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user: constant-time decoy")


class UserError(Exception):
    """A user operation that cannot be done; str() says why."""


class NoSuchUser(UserError):
    """The account named does not exist."""


class UserExists(UserError):
    """An account of that name exists already."""


class PasswordRejected(UserError):
    """A new password refused (policy, or the two prompts differ); nothing was changed."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    # The plant areas this user may act in (write, acknowledge, shelve); empty: every area.
    areas: tuple[str, ...] = ()
    # The Redis time (ms) at which a login read the password hash it verified; 0 otherwise.
    checked_ms: int = field(default=0, compare=False)


class LastAdmin(UserError):
    """Refused: the change would leave no admin to manage users."""


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


def valid_for_user(created_ms: int, valid_from_raw: bytes | str | None) -> bool:
    """False for a session made before the user's last password change (or a deleted namesake)."""
    try:
        valid_from = int(valid_from_raw) if valid_from_raw is not None else 0
    except ValueError:
        valid_from = 0
    return created_ms >= valid_from


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


def deleted_stamp_key(name: str) -> str:
    """A deleted account's "sessions valid from" stamp, for an account later made under its name."""
    return f"{keys.PREFIX}user_deleted:{name}"


def check_areas(areas) -> tuple[str, ...]:
    """The area names, trimmed, without repeats, sorted; UserError for a list that is not one."""
    if isinstance(areas, str) or not isinstance(areas, (list, tuple)):
        raise UserError("areas must be a list of area names (empty: all areas)")
    if len(areas) > MAX_AREAS:
        raise UserError(f"at most {MAX_AREAS} areas ({len(areas)} given)")
    cleaned = set()
    for area in areas:
        if not isinstance(area, str) or not area.strip():
            raise UserError("an area name must be a non-empty text")
        if len(area.strip()) > MAX_AREA_NAME_LENGTH:
            raise UserError(f"area name '{area.strip()[:20]}...' is longer than {MAX_AREA_NAME_LENGTH} characters")
        cleaned.add(area.strip())
    return tuple(sorted(cleaned))


def areas_text(areas: tuple[str, ...] | list[str]) -> str:
    """For people and the audit trail: the areas, or that there is no limit."""
    return ", ".join(areas) if areas else "(all areas)"


async def _audit_change(redis: aioredis.Redis, by: str, action: str, name: str, *, old: str = "", new: str = "",
                        reason: str = "", source_ip: str = "") -> None:
    await append_audit(redis, AuditEvent(user=by, action=action, result="ok", tag=account_tag(name),
                                         old=old, new=new, reason=reason, source_ip=source_ip))


def _sessions_ended(count: int) -> str:
    return f"{count} open session{'' if count == 1 else 's'} ended"


# Redis time in ms, plus one: a login whose password hash was read in the same millisecond as
# the change counts as before it (refused; logging in again works), never the other way round.
_NEXT_MS = """
local t = redis.call('TIME')
local stamp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + 1
"""
# Atomic create: never overwrites an account; takes over a deleted namesake's stamp.
_CREATE_USER = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
local stamp = redis.call('GET', KEYS[2])
if stamp then
  redis.call('HSET', KEYS[1], 'sessions_valid_from_ms', stamp)
  redis.call('DEL', KEYS[2])
end
return 1
"""


async def add_user(redis: aioredis.Redis, name: str, role: Role, password: str, *, areas=(),
                   by: str = UNATTRIBUTED, source_ip: str = "") -> User:
    check_user_name(name)
    check_password_policy(password)
    areas = check_areas(list(areas))
    if await redis.exists(keys.user(name)):  # before the slow hash; the script checks again
        raise UserExists(f"user '{name}' exists already")
    fields = ["role", role.value, "password_hash", await _hash(password), "updated_ms", int(time.time() * 1000)]
    if areas:
        fields += ["areas", encode_areas(areas)]
    if not await redis.eval(_CREATE_USER, 2, keys.user(name), deleted_stamp_key(name), *fields):
        raise UserExists(f"user '{name}' exists already")
    new = role.value + (f"; areas: {areas_text(areas)}" if areas else "")
    await _audit_change(redis, by, "user_added", name, new=new, source_ip=source_ip)
    return User(name, role, areas)


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
    A login racing with the change is caught by the "sessions valid from" stamp instead.
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


async def _other_admin_keys(redis: aioredis.Redis, name: str) -> list[str]:
    """The keys of the admins other than `name`, as they stand now (the scripts check them again)."""
    return [keys.user(u.name) for u in await list_users(redis) if u.role is Role.ADMIN and u.name != name]


# The guard (ARGV[1] == '1'): KEYS[3..] are the other admins as last listed; the change is made
# only if one of them is still an admin when it is made. An admin added since is not counted
# (refused, try again), one demoted since is not either: never zero admins, even in a race.
_OTHER_ADMINS = """
local function other_admins(first)
  local n = 0
  for i = first, #KEYS do
    if redis.call('HGET', KEYS[i], 'role') == 'admin' then n = n + 1 end
  end
  return n
end
"""
_DELETE_USER = _OTHER_ADMINS + _NEXT_MS + """
local old = redis.call('HGET', KEYS[1], 'role')
if not old then return {0, ''} end
if ARGV[1] == '1' and old == 'admin' and other_admins(3) == 0 then return {2, old} end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], stamp, 'EX', ARGV[2])
return {1, old}
"""
_SET_ROLE = _OTHER_ADMINS + """
local old = redis.call('HGET', KEYS[1], 'role')
if not old then return {0, ''} end
if ARGV[1] == '1' and old == 'admin' and ARGV[2] ~= 'admin' and other_admins(2) == 0 then return {2, old} end
redis.call('HSET', KEYS[1], 'role', ARGV[2])
return {1, old}
"""
# Only on an existing user (a HSET on a just deleted one would bring back half an account).
_SET_FIELD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local old = redis.call('HGET', KEYS[1], ARGV[1]) or ''
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {1, old}
"""
_SET_PASSWORD_HASH = _NEXT_MS + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[1], 'updated_ms', ARGV[2], 'sessions_valid_from_ms', stamp)
return 1
"""


async def delete_user(redis: aioredis.Redis, name: str, *, by: str = UNATTRIBUTED, source_ip: str = "",
                      keep_an_admin: bool = False) -> bool:
    """Delete the user, end their open sessions and revoke their API tokens; False if there was no such user.

    Sessions are ended either way: ones left behind by a user deleted earlier must not come
    back to life for a new account of the same name (nor can a racing login's: see the stamp).
    With keep_an_admin, the last admin is not deleted (LastAdmin).
    """
    from web.api_tokens import revoke_all_tokens_of  # noqa: PLC0415 - that module imports this one

    check_user_name(name)
    others = await _other_admin_keys(redis, name) if keep_an_admin else []
    status, old_role = await redis.eval(_DELETE_USER, 2 + len(others), keys.user(name), deleted_stamp_key(name),
                                        *others, "1" if keep_an_admin else "0", DELETED_STAMP_TTL_S)
    if status == 2:
        raise LastAdmin("the last admin cannot be deleted: make another user admin first")
    ended = await end_sessions_of(redis, name)
    if not status:
        return False
    await _audit_change(redis, by, "user_deleted", name, old=_decoded(old_role),
                        reason=_sessions_ended(ended), source_ip=source_ip)
    await revoke_all_tokens_of(redis, name, by=by, source_ip=source_ip, reason="the account was deleted")
    return True


async def set_role(redis: aioredis.Redis, name: str, role: Role, *,
                   by: str = UNATTRIBUTED, source_ip: str = "", keep_an_admin: bool = False) -> None:
    """Change the role (open sessions get it at once). With keep_an_admin, the last admin stays one."""
    check_user_name(name)
    others = await _other_admin_keys(redis, name) if keep_an_admin else []
    status, old = await redis.eval(_SET_ROLE, 1 + len(others), keys.user(name), *others,
                                   "1" if keep_an_admin else "0", role.value)
    if not status:
        raise NoSuchUser(f"no user '{name}'")
    if status == 2:
        raise LastAdmin("the last admin cannot give up the admin role: make another user admin first")
    await _audit_change(redis, by, "role_changed", name, old=_decoded(old) or "(none)", new=role.value,
                        source_ip=source_ip)


async def set_areas(redis: aioredis.Redis, name: str, areas, *, by: str = UNATTRIBUTED,
                    source_ip: str = "") -> tuple[str, ...]:
    """Limit `name` to these plant areas (empty: all areas); open sessions get it at once."""
    check_user_name(name)
    areas = check_areas(areas)
    status, old = await redis.eval(_SET_FIELD, 1, keys.user(name), "areas", encode_areas(areas))
    if not status:
        raise NoSuchUser(f"no user '{name}'")
    await _audit_change(redis, by, "areas_changed", name, old=areas_text(decode_areas(old)), new=areas_text(areas),
                        source_ip=source_ip)
    return areas


async def unlock_user(redis: aioredis.Redis, name: str, *, by: str = UNATTRIBUTED, source_ip: str = "") -> int:
    """Clear `name`'s login lock-out (and failure count); returns the seconds it had left (0: not locked)."""
    check_user_name(name)
    if not await redis.exists(keys.user(name)):
        raise NoSuchUser(f"no user '{name}'")
    left_s = await lockout_remaining_s(redis, name)
    await clear_failures(redis, name)
    await _audit_change(redis, by, "user_unlocked", name,
                        reason=f"was locked out for {left_s} s more" if left_s else "was not locked out",
                        source_ip=source_ip)
    return left_s


async def change_password(redis: aioredis.Redis, name: str, password: str, *,
                          by: str = UNATTRIBUTED, source_ip: str = "") -> int:
    """Store a new argon2 hash for `name` (policy checked) and end all their open sessions.

    Returns how many sessions were ended. Sessions from a login that verified the old password
    are refused from now on, even one not yet stored (sessions_valid_from_ms). The audit entry
    never carries the password or hash.
    """
    check_user_name(name)
    check_password_policy(password)
    if not await redis.exists(keys.user(name)):
        raise NoSuchUser(f"no user '{name}'")
    changed = await redis.eval(_SET_PASSWORD_HASH, 1, keys.user(name), await _hash(password),
                               int(time.time() * 1000))
    if not changed:
        raise NoSuchUser(f"no user '{name}'")
    ended = await end_sessions_of(redis, name)
    await _audit_change(redis, by, "password_changed", name, reason=_sessions_ended(ended), source_ip=source_ip)
    return ended


def _redis_time_ms(seconds_micros) -> int:
    seconds, micros = seconds_micros
    return int(seconds) * 1000 + int(micros) // 1000


async def verify_password(redis: aioredis.Redis, name: str, password: str) -> User | None:
    """The user if name and password match, else None (same cost either way).

    The user's checked_ms is the Redis time at which the hash was read (one transaction): a
    session made from this login is created as of then (see sessions_valid_from_ms).
    """
    checked_ms = 0
    raw: dict[str, str] = {}
    if USER_NAME_PATTERN.fullmatch(name or ""):
        pipe = redis.pipeline(transaction=True)
        pipe.hgetall(keys.user(name))
        pipe.time()
        stored_fields, now = await pipe.execute()
        raw, checked_ms = _text(stored_fields), _redis_time_ms(now)
    stored = raw.get("password_hash") or _DUMMY_HASH
    try:
        await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if not raw:
        return None
    if _hasher.check_needs_rehash(stored):
        await redis.hset(keys.user(name), "password_hash", await _hash(password))
    return User(name, Role(raw["role"]), decode_areas(raw.get("areas")), checked_ms=checked_ms)


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
    if args.config:  # $REDIS_URL or redis.url, with redis.username/password from the plant file
        from tag_store.startup import StartupError, load_plant, resolve_redis_url  # noqa: PLC0415

        try:
            return resolve_redis_url(load_plant(args.config))
        except StartupError as exc:
            raise UserError(str(exc)) from None
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
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


def _role_argument(text: str) -> Role:
    """parse_role for argparse, whose own message for a ValueError would not name the roles."""
    try:
        return parse_role(text)
    except ValueError as bad:
        raise argparse.ArgumentTypeError(str(bad)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m web.users", description="Manage Stacklight web users.")
    parser.add_argument("--redis-url", help="redis://host:port/db (default: $REDIS_URL)")
    parser.add_argument("--config", help="plant file whose redis.url to use")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, type=_role_argument)
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
    change.add_argument("role", type=_role_argument)
    areas = commands.add_parser("set-areas", help="limit a user to these plant areas (none given: all areas)")
    areas.add_argument("name")
    areas.add_argument("areas", nargs="*", metavar="AREA")
    unlock = commands.add_parser("unlock", help="end a user's login lock-out after failed passwords")
    unlock.add_argument("name")
    return parser


async def _run(args: argparse.Namespace) -> str:
    by = _cli_actor()
    redis = aioredis.Redis.from_url(_redis_url(args))
    try:
        if args.command == "add":
            user = await add_user(redis, args.name, args.role, _read_new_password(args), by=by)
            return f"added {user.name} ({user.role.value})"
        if args.command == "list":
            return "\n".join(f"{u.name}\t{u.role.value}\t{areas_text(u.areas)}"
                             for u in await list_users(redis)) or "(no users)"
        if args.command == "delete":
            if not await delete_user(redis, args.name, by=by):
                raise NoSuchUser(f"no user '{args.name}'")
            return f"deleted {args.name}"
        if args.command in ("passwd", "set-password"):
            if await get_user(redis, check_user_name(args.name)) is None:  # before asking for a password
                raise NoSuchUser(f"no user '{args.name}'")
            ended = await change_password(redis, args.name, _read_new_password(args), by=by)
            return f"password of {args.name} changed; {_sessions_ended(ended)}"
        if args.command == "set-areas":
            areas = await set_areas(redis, args.name, args.areas, by=by)
            return f"{args.name} may now act in: {areas_text(areas)}"
        if args.command == "unlock":
            left_s = await unlock_user(redis, args.name, by=by)
            return f"{args.name} unlocked" if left_s else f"{args.name} was not locked out (failure count cleared)"
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
