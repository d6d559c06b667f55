"""User administration for the /users page and /api/users: one implementation, checked on the server.

Every function takes the caller's identity (web.auth.RequestIdentity, None when logged out) and
checks it first: only a role that may manage users (admin) gets anything done. A refusal raises
PermissionDenied and is written to the audit trail (result "refused"); a done change is audited by
web.users (user = the admin's name, their address). Bad input raises UserError (nothing changed),
an unknown account NoSuchUser, a name taken UserExists, and a change that would leave no admin
(or an admin deleting their own account) LastAdmin.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from web.audit import AuditEvent, append_audit
from web.auth import RequestIdentity
from web.login_throttle import lockout_remaining_s
from web.roles import Action, PermissionDenied, Role, parse_role, require
from web.users import (
    LastAdmin, NoSuchUser, PasswordRejected, UserError, account_tag, add_user, areas_text, change_password,
    check_areas, check_password_policy, check_user_name, delete_user, get_user, list_users, set_areas, set_role,
    unlock_user,
)

NOT_LOGGED_IN = "(not logged in)"
DELETE_SELF = "an admin cannot delete their own account (another admin can)"


@dataclass(frozen=True, slots=True)
class AccountRow:
    name: str
    role: str
    areas: tuple[str, ...]
    locked_out_s: int  # seconds until the name may log in again; 0: not locked out

    def json(self) -> dict:
        return {"name": self.name, "role": self.role, "areas": list(self.areas), "locked_out_s": self.locked_out_s}


def may_manage_users(identity: RequestIdentity | None) -> bool:
    try:
        require(identity.session.role if identity else None, Action.MANAGE_USERS)
    except PermissionDenied:
        return False
    return True


def refusal_text(identity: RequestIdentity | None) -> str:
    """Why this caller may not manage users ("" when they may)."""
    try:
        require(identity.session.role if identity else None, Action.MANAGE_USERS)
    except PermissionDenied as exc:
        return str(exc)
    return ""


async def require_admin(redis: aioredis.Redis, identity: RequestIdentity | None, action: str, name: str) -> str:
    """The admin's name, for the audit trail; a refusal is audited (as `action` on account `name`) and raised."""
    reason = refusal_text(identity)
    if not reason:
        assert identity is not None
        return identity.session.user
    await append_audit(redis, AuditEvent(
        user=identity.session.user if identity else NOT_LOGGED_IN, action=action, result="refused",
        tag=account_tag(str(name)[:64]), reason=reason, source_ip=identity.source_ip if identity else ""))
    raise PermissionDenied(reason)


def _ip(identity: RequestIdentity) -> str:
    return identity.source_ip


def parse_areas_text(text: str | None) -> list[str]:
    """Areas typed on the page, separated by commas; empty: all areas."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _role(text) -> Role:
    if not isinstance(text, str):
        raise UserError("role must be one of: " + ", ".join(r.value for r in Role))
    try:
        return parse_role(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _password(password, again) -> str:
    if not isinstance(password, str):
        raise PasswordRejected("a password is needed")
    check_password_policy(password)
    if again is not None and again != password:
        raise PasswordRejected("the two passwords differ")
    return password


def _name(name) -> str:
    if not isinstance(name, str):
        raise UserError("a user name is needed")
    return check_user_name(name.strip())


async def list_accounts(redis: aioredis.Redis, identity: RequestIdentity | None) -> list[AccountRow]:
    await require_admin(redis, identity, "users_listed", "*")
    return [AccountRow(u.name, u.role.value, u.areas, await lockout_remaining_s(redis, u.name))
            for u in await list_users(redis)]


async def account(redis: aioredis.Redis, identity: RequestIdentity | None, name: str) -> AccountRow:
    await require_admin(redis, identity, "users_listed", name)
    user = await get_user(redis, name)
    if user is None:
        raise NoSuchUser(f"no user '{name}'")
    return AccountRow(user.name, user.role.value, user.areas, await lockout_remaining_s(redis, user.name))


async def add_account(redis: aioredis.Redis, identity: RequestIdentity | None, name, role, password,
                      areas=(), password_again: str | None = None) -> AccountRow:
    """A new account; `password_again` (the page's second box) must match when given."""
    by = await require_admin(redis, identity, "user_added", name)
    name, role = _name(name), _role(role)
    areas = check_areas(areas)
    user = await add_user(redis, name, role, _password(password, password_again), areas=areas, by=by,
                          source_ip=_ip(identity))
    return AccountRow(user.name, user.role.value, user.areas, 0)


async def change_role(redis: aioredis.Redis, identity: RequestIdentity | None, name, role) -> None:
    by = await require_admin(redis, identity, "role_changed", name)
    await set_role(redis, _name(name), _role(role), by=by, source_ip=_ip(identity), keep_an_admin=True)


async def change_areas(redis: aioredis.Redis, identity: RequestIdentity | None, name, areas) -> tuple[str, ...]:
    by = await require_admin(redis, identity, "areas_changed", name)
    return await set_areas(redis, _name(name), areas, by=by, source_ip=_ip(identity))


async def reset_password(redis: aioredis.Redis, identity: RequestIdentity | None, name, password,
                         password_again: str | None = None) -> int:
    """A new password; every open session of the account ends. Returns how many."""
    by = await require_admin(redis, identity, "password_changed", name)
    return await change_password(redis, _name(name), _password(password, password_again), by=by,
                                 source_ip=_ip(identity))


async def unlock(redis: aioredis.Redis, identity: RequestIdentity | None, name) -> int:
    """End the account's login lock-out; the seconds it had left (0: it was not locked out)."""
    by = await require_admin(redis, identity, "user_unlocked", name)
    return await unlock_user(redis, _name(name), by=by, source_ip=_ip(identity))


async def ask_delete(redis: aioredis.Redis, identity: RequestIdentity | None, name) -> AccountRow:
    """The page's first delete step: the account to name in the question (refusals as for deleting)."""
    by = await require_admin(redis, identity, "user_deleted", name)
    name = _name(name)
    if name == by:
        raise LastAdmin(DELETE_SELF)
    user = await get_user(redis, name)
    if user is None:
        raise NoSuchUser(f"no user '{name}'")
    return AccountRow(user.name, user.role.value, user.areas, 0)


async def delete_account(redis: aioredis.Redis, identity: RequestIdentity | None, name) -> None:
    by = await require_admin(redis, identity, "user_deleted", name)
    name = _name(name)
    if name == by:
        raise LastAdmin(DELETE_SELF)
    if not await delete_user(redis, name, by=by, source_ip=_ip(identity), keep_an_admin=True):
        raise NoSuchUser(f"no user '{name}'")


async def apply_changes(redis: aioredis.Redis, identity: RequestIdentity | None, name, *, role=None,
                        areas=None, password=None) -> list[str]:
    """Several changes to one account (the API's PATCH): all inputs are checked before any is made.

    Returns what was changed, in order; nothing given is a bad request.
    """
    await require_admin(redis, identity, "user_changed", name)
    name = _name(name)
    if role is None and areas is None and password is None:
        raise UserError("nothing to change: give role, areas and/or password")
    if role is not None:
        _role(role)
    if areas is not None:
        check_areas(areas)
    if password is not None:
        _password(password, None)
    if await get_user(redis, name) is None:
        raise NoSuchUser(f"no user '{name}'")
    changed = []
    if role is not None:
        await change_role(redis, identity, name, role)
        changed.append("role")
    if areas is not None:
        await change_areas(redis, identity, name, areas)
        changed.append("areas")
    if password is not None:
        await reset_password(redis, identity, name, password)
        changed.append("password")
    return changed


def describe(row: AccountRow) -> str:
    return f"{row.name} ({row.role}; {areas_text(row.areas)})"
