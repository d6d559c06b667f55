"""User administration against a real Redis: areas, unlock, the last-admin guard, refusals, the audit,
and the "sessions valid from" stamp that closes the login-versus-password-change race."""
from __future__ import annotations

import time

import pytest

from tag_store import keys
from web import user_admin
from web import users as users_cli
from web.audit import read_audit
from web.auth import RequestIdentity
from web.login import attempt_login
from web.login_throttle import MAX_FAILURES, claim_attempt, lockout_remaining_s
from web.roles import PermissionDenied, Role
from web.sessions import Session, create_session, load_session, peek_session, session_exists, session_key
from web.users import (
    LastAdmin, NoSuchUser, PasswordRejected, UserError, UserExists, add_user, change_password, delete_user,
    get_user, set_areas, set_role, unlock_user, verify_password,
)

PASSWORD = "a good password"


def identity(user: str, role: Role, ip: str = "10.0.0.5") -> RequestIdentity:
    return RequestIdentity(Session(user=user, role=role, csrf_token="x", created_ms=1), ip)


ADMIN = identity("root", Role.ADMIN, "10.0.0.1")


async def user_records(redis) -> dict:
    return {key: await redis.hgetall(key) async for key in redis.scan_iter(match=keys.USER_PATTERN)}


async def changes(redis) -> list[tuple[str, str, str]]:
    return [(e["user"], e["action"], e["result"]) for e in await read_audit(redis, 50)]


async def test_set_areas_stores_sorted_unique_names_and_audits_old_and_new(redis_client):
    await add_user(redis_client, "ann", Role.OPERATOR, PASSWORD)
    assert await set_areas(redis_client, "ann", [" Tanks", "Pumps", "Tanks"], by="root", source_ip="10.0.0.1") == (
        "Pumps", "Tanks")
    assert (await get_user(redis_client, "ann")).areas == ("Pumps", "Tanks")
    assert await set_areas(redis_client, "ann", [], by="root") == ()
    assert (await get_user(redis_client, "ann")).areas == ()
    newest, older = (await read_audit(redis_client, 2))
    assert (older["action"], older["tag"], older["old"], older["new"], older["user"], older["source_ip"]) == (
        "areas_changed", "user:ann", "(all areas)", "Pumps, Tanks", "root", "10.0.0.1")
    assert (newest["old"], newest["new"]) == ("Pumps, Tanks", "(all areas)")


@pytest.mark.parametrize("areas, reason", [
    ("Tanks", "must be a list"), ([""], "non-empty"), (["  "], "non-empty"), ([3], "non-empty"),
    (["x" * 65], "longer than 64"), ([f"a{i}" for i in range(101)], "at most 100"),
])
async def test_bad_area_lists_are_refused_and_change_nothing(redis_client, areas, reason):
    await add_user(redis_client, "ann", Role.OPERATOR, PASSWORD, areas=["Tanks"])
    before = await user_records(redis_client)
    with pytest.raises(UserError, match=reason):
        await set_areas(redis_client, "ann", areas)
    assert await user_records(redis_client) == before
    assert [a for _u, a, _r in await changes(redis_client)] == ["user_added"]


async def test_set_areas_on_a_missing_user_creates_nothing(redis_client):
    with pytest.raises(NoSuchUser):
        await set_areas(redis_client, "ghost", ["Tanks"])
    assert not await redis_client.exists(keys.user("ghost"))


async def test_unlock_clears_the_lock_out_and_is_audited(redis_client):
    await add_user(redis_client, "bo", Role.OPERATOR, PASSWORD)
    for _ in range(MAX_FAILURES):
        await claim_attempt(redis_client, "bo")
    assert await lockout_remaining_s(redis_client, "bo") > 0
    left_s = await unlock_user(redis_client, "bo", by="root", source_ip="10.0.0.1")
    assert left_s > 0 and await lockout_remaining_s(redis_client, "bo") == 0
    entry = (await read_audit(redis_client, 1))[0]
    assert (entry["action"], entry["tag"], entry["user"]) == ("user_unlocked", "user:bo", "root")
    assert "was locked out for" in entry["reason"]
    assert await unlock_user(redis_client, "bo") == 0
    assert (await read_audit(redis_client, 1))[0]["reason"] == "was not locked out"
    with pytest.raises(NoSuchUser):
        await unlock_user(redis_client, "nobody")


async def test_the_last_admin_can_be_neither_demoted_nor_deleted_by_the_admin_functions(redis_client):
    await add_user(redis_client, "root", Role.ADMIN, PASSWORD)
    await add_user(redis_client, "op", Role.OPERATOR, PASSWORD)
    with pytest.raises(LastAdmin, match="the last admin cannot give up the admin role"):
        await user_admin.change_role(redis_client, ADMIN, "root", "engineer")
    with pytest.raises(LastAdmin, match="cannot delete their own account"):
        await user_admin.delete_account(redis_client, ADMIN, "root")
    with pytest.raises(LastAdmin, match="the last admin cannot be deleted"):
        await delete_user(redis_client, "root", keep_an_admin=True)
    assert (await get_user(redis_client, "root")).role is Role.ADMIN
    # With a second admin, the first may step down, and then is no admin to be kept.
    await user_admin.change_role(redis_client, ADMIN, "op", "admin")
    await user_admin.change_role(redis_client, ADMIN, "root", "engineer")
    assert (await get_user(redis_client, "root")).role is Role.ENGINEER
    other = identity("op", Role.ADMIN)
    with pytest.raises(LastAdmin):
        await user_admin.change_role(redis_client, other, "op", "viewer")
    await user_admin.delete_account(redis_client, other, "root")
    assert await get_user(redis_client, "root") is None
    # The command line (someone with the Redis password on the server) is not held back.
    await set_role(redis_client, "op", Role.VIEWER)
    assert (await get_user(redis_client, "op")).role is Role.VIEWER


async def test_the_guard_counts_admins_when_the_change_is_made_not_when_listed(redis_client, monkeypatch):
    """Two admins demoting each other at once: the second finds no other admin and is refused."""
    await add_user(redis_client, "a1", Role.ADMIN, PASSWORD)
    await add_user(redis_client, "a2", Role.ADMIN, PASSWORD)
    real = users_cli._other_admin_keys

    async def listed_then_demoted(redis, name):
        found = await real(redis, name)  # a2 is listed as an admin ...
        await redis.hset(keys.user("a2"), "role", "viewer")  # ... and demoted before a1's change is made
        return found

    monkeypatch.setattr(users_cli, "_other_admin_keys", listed_then_demoted)
    with pytest.raises(LastAdmin):
        await set_role(redis_client, "a1", Role.VIEWER, keep_an_admin=True)
    assert (await get_user(redis_client, "a1")).role is Role.ADMIN


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.ENGINEER, None])
async def test_every_admin_function_refuses_a_non_admin_audits_it_and_changes_nothing(redis_client, role):
    await add_user(redis_client, "ann", Role.OPERATOR, PASSWORD)
    for _ in range(MAX_FAILURES):
        await claim_attempt(redis_client, "ann")
    caller = identity("eve", role) if role else None
    before, audit_before = await user_records(redis_client), await read_audit(redis_client, 100)
    calls = [
        user_admin.list_accounts(redis_client, caller),
        user_admin.add_account(redis_client, caller, "mallory", "admin", PASSWORD),
        user_admin.change_role(redis_client, caller, "ann", "admin"),
        user_admin.change_areas(redis_client, caller, "ann", ["Tanks"]),
        user_admin.reset_password(redis_client, caller, "ann", "another password"),
        user_admin.unlock(redis_client, caller, "ann"),
        user_admin.delete_account(redis_client, caller, "ann"),
        user_admin.apply_changes(redis_client, caller, "ann", role="admin"),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match="may not manage users" if role else "not logged in"):
            await call
    assert await user_records(redis_client) == before
    assert await lockout_remaining_s(redis_client, "ann") > 0
    new_entries = (await read_audit(redis_client, 100))[: len(calls)]
    assert len(await read_audit(redis_client, 100)) == len(audit_before) + len(calls)
    assert {e["result"] for e in new_entries} == {"refused"}
    assert {e["user"] for e in new_entries} == {"eve" if role else "(not logged in)"}


async def test_an_admin_manages_users_and_every_change_is_audited_with_their_name_and_address(redis_client):
    await add_user(redis_client, "root", Role.ADMIN, PASSWORD)
    row = await user_admin.add_account(redis_client, ADMIN, " newbie ", "Operator", PASSWORD, ["Tanks"],
                                       password_again=PASSWORD)
    assert (row.name, row.role, row.areas) == ("newbie", "operator", ("Tanks",))
    assert (await verify_password(redis_client, "newbie", PASSWORD)).areas == ("Tanks",)
    assert await user_admin.apply_changes(redis_client, ADMIN, "newbie", role="engineer", areas=[],
                                          password="brand new secret") == ["role", "areas", "password"]
    assert await verify_password(redis_client, "newbie", "brand new secret") is not None
    await user_admin.unlock(redis_client, ADMIN, "newbie")
    await user_admin.delete_account(redis_client, ADMIN, "newbie")
    entries = [e for e in reversed(await read_audit(redis_client, 20)) if e["tag"] == "user:newbie"]
    assert [(e["action"], e["result"], e["user"], e["source_ip"]) for e in entries] == [
        (action, "ok", "root", "10.0.0.1") for action in
        ("user_added", "role_changed", "areas_changed", "password_changed", "user_unlocked", "user_deleted")]
    assert entries[0]["new"] == "operator; areas: Tanks"
    text = " ".join(" ".join(e.values()) for e in await read_audit(redis_client, 50))
    assert PASSWORD not in text and "brand new secret" not in text and "argon2" not in text


@pytest.mark.parametrize("call, error", [
    (lambda r: user_admin.add_account(r, ADMIN, "x y", "viewer", PASSWORD), "not a valid user name"),
    (lambda r: user_admin.add_account(r, ADMIN, "neo", "boss", PASSWORD), "unknown role 'boss'"),
    (lambda r: user_admin.add_account(r, ADMIN, "neo", "viewer", "short"), "at least 8"),
    (lambda r: user_admin.add_account(r, ADMIN, "neo", "viewer", PASSWORD, password_again="other"), "differ"),
    (lambda r: user_admin.add_account(r, ADMIN, "neo", "viewer", PASSWORD, areas="Tanks"), "list"),
    (lambda r: user_admin.add_account(r, ADMIN, "root", "viewer", PASSWORD), "exists already"),
    (lambda r: user_admin.reset_password(r, ADMIN, "root", "short"), "at least 8"),
    (lambda r: user_admin.apply_changes(r, ADMIN, "root"), "nothing to change"),
    (lambda r: user_admin.apply_changes(r, ADMIN, "root", areas=["ok"], role="boss"), "unknown role"),
    (lambda r: user_admin.apply_changes(r, ADMIN, "ghost", role="viewer"), "no user 'ghost'"),
    (lambda r: user_admin.delete_account(r, ADMIN, "ghost"), "no user 'ghost'"),
])
async def test_bad_input_is_refused_with_the_reason_and_changes_nothing(redis_client, call, error):
    await add_user(redis_client, "root", Role.ADMIN, PASSWORD, areas=["Tanks"])
    before, audit_count = await user_records(redis_client), len(await read_audit(redis_client, 100))
    with pytest.raises(UserError, match=error) as raised:
        await call(redis_client)
    assert await user_records(redis_client) == before
    assert len(await read_audit(redis_client, 100)) == audit_count
    if "exists" in error:
        assert isinstance(raised.value, UserExists)
    if "at least" in error or "differ" in error:
        assert isinstance(raised.value, PasswordRejected)


# --- sessions valid from -----------------------------------------------------------------

async def test_a_session_from_a_login_that_verified_the_old_password_is_refused_after_the_change(redis_client):
    """The race: the login read the old hash, the password changed (its SCAN found no session
    yet), then the login stored its session. That session must be no session."""
    await add_user(redis_client, "hank", Role.OPERATOR, PASSWORD)
    racing = (await attempt_login(redis_client, "hank", PASSWORD, "10.0.0.7")).user  # read before the change
    seconds, micros = await redis_client.time()
    assert racing is not None and 0 <= seconds * 1000 + micros // 1000 - racing.checked_ms < 5_000
    await change_password(redis_client, "hank", "the new password")  # SCAN finds nothing to end
    token, _ = await create_session(redis_client, "hank", Role.OPERATOR, 60, now_ms=racing.checked_ms)
    assert not await session_exists(redis_client, token)
    assert await peek_session(redis_client, token, "hank") is None
    assert await load_session(redis_client, token, 60) is None
    assert not await redis_client.exists(session_key(token))  # deleted, not only refused
    # A login with the new password, after the change, is a session.
    fresh = await verify_password(redis_client, "hank", "the new password")
    token, _ = await create_session(redis_client, "hank", Role.OPERATOR, 60, now_ms=fresh.checked_ms)
    assert (await load_session(redis_client, token, 60)).user == "hank"
    assert await session_exists(redis_client, token) and await peek_session(redis_client, token, "hank")


async def test_the_stamp_is_redis_time_just_after_the_change(redis_client):
    await add_user(redis_client, "hank", Role.OPERATOR, PASSWORD)
    before_ms = int(time.time() * 1000)
    await change_password(redis_client, "hank", "the new password")
    stamp = int(await redis_client.hget(keys.user("hank"), "sessions_valid_from_ms"))
    assert before_ms < stamp <= int(time.time() * 1000) + 1
    old, _ = await create_session(redis_client, "hank", Role.OPERATOR, 60, now_ms=stamp - 1)
    new, _ = await create_session(redis_client, "hank", Role.OPERATOR, 60, now_ms=stamp)
    assert await load_session(redis_client, old, 60) is None
    assert await load_session(redis_client, new, 60) is not None


async def test_a_session_of_a_deleted_user_stays_dead_for_a_new_account_of_the_same_name(redis_client):
    await add_user(redis_client, "ivy", Role.ADMIN, PASSWORD)
    racing = await verify_password(redis_client, "ivy", PASSWORD)
    await delete_user(redis_client, "ivy")
    token, _ = await create_session(redis_client, "ivy", Role.ADMIN, 60, now_ms=racing.checked_ms)
    await add_user(redis_client, "ivy", Role.VIEWER, "someone else's")  # quickly, a different person
    assert not await session_exists(redis_client, token)
    assert await load_session(redis_client, token, 60) is None
    assert not await redis_client.exists(users_cli.deleted_stamp_key("ivy"))  # taken over by the new account
    later = await verify_password(redis_client, "ivy", "someone else's")
    token, _ = await create_session(redis_client, "ivy", Role.VIEWER, 60, now_ms=later.checked_ms)
    assert (await load_session(redis_client, token, 60)).role is Role.VIEWER


async def test_a_role_or_area_change_keeps_open_sessions(redis_client):
    await add_user(redis_client, "jo", Role.OPERATOR, PASSWORD)
    login = await verify_password(redis_client, "jo", PASSWORD)
    token, _ = await create_session(redis_client, "jo", Role.OPERATOR, 60, now_ms=login.checked_ms)
    await set_role(redis_client, "jo", Role.ENGINEER)
    await set_areas(redis_client, "jo", ["Tanks"])
    session = await load_session(redis_client, token, 60)
    assert (session.role, session.areas) == (Role.ENGINEER, ("Tanks",))


def test_cli_sets_areas_unlocks_and_lists_areas(redis_server, tmp_path, capsys):
    url = ["--redis-url", redis_server.url]
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD + "\n")
    assert users_cli.main([*url, "add", "kim", "--role", "operator", "--password-file", str(password_file)]) == 0
    assert users_cli.main([*url, "set-areas", "kim", "Tanks", "Pumps"]) == 0
    assert "kim may now act in: Pumps, Tanks" in capsys.readouterr().out
    assert users_cli.main([*url, "list"]) == 0
    assert "kim\toperator\tPumps, Tanks" in capsys.readouterr().out
    assert users_cli.main([*url, "set-areas", "kim"]) == 0
    assert users_cli.main([*url, "list"]) == 0
    assert "kim\toperator\t(all areas)" in capsys.readouterr().out
    assert users_cli.main([*url, "set-areas", "kim", "x" * 65]) == 1
    assert "longer than 64" in capsys.readouterr().err
    assert users_cli.main([*url, "unlock", "kim"]) == 0
    assert "kim was not locked out" in capsys.readouterr().out
    assert users_cli.main([*url, "unlock", "nobody"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err
