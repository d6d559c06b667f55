"""Users, passwords, sessions, lock-out and the audit trail, against a real Redis."""
from __future__ import annotations

import pytest

from tag_store import keys
from web import login_throttle, users as users_cli
from web.audit import read_audit
from web.login import WRONG_CREDENTIALS, attempt_login
from web.login_throttle import MAX_FAILURES, lockout_remaining_s
from web.roles import Role
from web.sessions import create_session, end_session, load_session, session_exists, session_key
from web.users import (
    UserError, add_user, delete_user, ensure_demo_users, get_user, list_users, set_role, verify_password,
)


async def test_passwords_are_stored_as_argon2_hashes_and_verified(redis_client):
    await add_user(redis_client, "alice", Role.OPERATOR, "correct horse")
    stored = await redis_client.hget(keys.user("alice"), "password_hash")
    assert stored.startswith(b"$argon2") and b"correct horse" not in stored
    assert await verify_password(redis_client, "alice", "correct horse") == users_cli.User("alice", Role.OPERATOR)
    assert await verify_password(redis_client, "alice", "wrong horse") is None
    assert await verify_password(redis_client, "nobody", "correct horse") is None


async def test_user_management(redis_client):
    await add_user(redis_client, "bob", Role.VIEWER, "12345678")
    with pytest.raises(UserError, match="exists already"):
        await add_user(redis_client, "bob", Role.VIEWER, "12345678")
    with pytest.raises(UserError, match="at least 8"):
        await add_user(redis_client, "carol", Role.VIEWER, "short")
    with pytest.raises(UserError, match="not a valid user name"):
        await add_user(redis_client, "bad name", Role.VIEWER, "12345678")
    await set_role(redis_client, "bob", Role.ENGINEER)
    assert (await get_user(redis_client, "bob")).role is Role.ENGINEER
    assert [u.name for u in await list_users(redis_client)] == ["bob"]
    assert await delete_user(redis_client, "bob")
    assert await get_user(redis_client, "bob") is None


async def test_demo_users_exist_only_after_asking_and_use_their_names_as_passwords(redis_client):
    assert await list_users(redis_client) == []
    demo = await ensure_demo_users(redis_client)
    assert [(d.name, d.role) for d in demo] == [("viewer", Role.VIEWER), ("operator", Role.OPERATOR),
                                                 ("engineer", Role.ENGINEER), ("admin", Role.ADMIN)]
    for d in demo:
        assert (await verify_password(redis_client, d.name, d.password)).role is d.role
    assert await ensure_demo_users(redis_client) == []  # all there now: nothing made, nothing reset


async def test_demo_mode_never_overwrites_an_existing_account(redis_client):
    # A plant's real admin (and its role) survive demo mode run against the plant's Redis.
    await add_user(redis_client, "admin", Role.ADMIN, "the plant's own secret")
    await add_user(redis_client, "operator", Role.VIEWER, "another real one")
    before = await redis_client.hgetall(keys.user("admin"))
    created = await ensure_demo_users(redis_client)
    assert [d.name for d in created] == ["viewer", "engineer"]
    assert await redis_client.hgetall(keys.user("admin")) == before
    assert await verify_password(redis_client, "admin", "admin") is None
    assert (await verify_password(redis_client, "admin", "the plant's own secret")).role is Role.ADMIN
    assert await verify_password(redis_client, "operator", "operator") is None
    assert (await get_user(redis_client, "operator")).role is Role.VIEWER


def test_the_launcher_prints_only_the_demo_accounts_it_created(redis_server):
    from launcher.__main__ import prepare_users, welcome_text  # noqa: PLC0415

    first = prepare_users(redis_server.url, demo=True)
    assert [a.name for a in first.created] == ["viewer", "operator", "engineer", "admin"] and first.kept == ()
    again = prepare_users(redis_server.url, demo=True)
    assert again.created == () and again.kept == ("viewer", "operator", "engineer", "admin")
    text = welcome_text("127.0.0.1", 8050, again)
    assert "Existing accounts left alone (passwords not changed): viewer, operator, engineer, admin" in text
    assert "Demo accounts created" not in text and "admin      admin" not in text
    assert "admin      admin" in welcome_text("127.0.0.1", 8050, first)
    assert prepare_users(redis_server.url, demo=False).created == ()


async def test_sessions_live_in_redis_under_a_hash_of_the_token_and_expire_when_idle(redis_client):
    await add_user(redis_client, "dave", Role.OPERATOR, "12345678")
    token, session = await create_session(redis_client, "dave", Role.OPERATOR, 60, now_ms=1, source_ip="10.0.0.1")
    assert not await redis_client.exists(keys.session(token))  # the raw token is not the key
    assert 55 < await redis_client.ttl(session_key(token)) <= 60
    await redis_client.expire(session_key(token), 5)
    loaded = await load_session(redis_client, token, 60)
    assert loaded.user == "dave" and loaded.csrf_token == session.csrf_token
    assert await redis_client.ttl(session_key(token)) > 50  # refreshed by the activity
    assert await load_session(redis_client, "forged-token", 60) is None
    assert await session_exists(redis_client, token)
    await end_session(redis_client, token)
    assert await load_session(redis_client, token, 60) is None


async def test_a_role_change_or_deletion_applies_to_open_sessions_at_once(redis_client):
    await add_user(redis_client, "erin", Role.OPERATOR, "12345678")
    token, _ = await create_session(redis_client, "erin", Role.OPERATOR, 60, now_ms=1)
    await set_role(redis_client, "erin", Role.VIEWER)
    assert (await load_session(redis_client, token, 60)).role is Role.VIEWER
    assert await session_exists(redis_client, token)
    await delete_user(redis_client, "erin")
    assert not await session_exists(redis_client, token)  # the websocket's message check too
    assert await load_session(redis_client, token, 60) is None


async def test_five_wrong_passwords_lock_the_name_out_even_for_the_right_one(redis_client, monkeypatch):
    monkeypatch.setattr(login_throttle, "FIRST_DELAY_S", 0.0)  # the growing wait: test_login_throttle.py
    await add_user(redis_client, "frank", Role.OPERATOR, "right password")
    for _ in range(MAX_FAILURES - 1):
        result = await attempt_login(redis_client, "frank", "nope", "10.0.0.9")
        assert result.user is None and result.message == WRONG_CREDENTIALS
    locked = await attempt_login(redis_client, "frank", "nope", "10.0.0.9")
    assert "Too many failed attempts" in locked.message
    assert await lockout_remaining_s(redis_client, "frank") > 0
    still_locked = await attempt_login(redis_client, "frank", "right password", "10.0.0.9")
    assert still_locked.user is None and "Try again in 5 minutes" in still_locked.message


async def test_logins_and_failures_are_audited(redis_client):
    await add_user(redis_client, "gina", Role.VIEWER, "right password")
    assert (await attempt_login(redis_client, "gina", "wrong", "10.1.1.1")).user is None
    assert (await attempt_login(redis_client, "gina", "right password", "10.1.1.1")).user.name == "gina"
    newest, older = (await read_audit(redis_client, count=2))
    assert (newest["action"], newest["result"], newest["user"], newest["source_ip"]) == ("login", "ok", "gina",
                                                                                         "10.1.1.1")
    assert (older["action"], older["result"]) == ("login_failed", "refused")
    assert int(newest["time_ms"]) > 0


async def test_a_failed_login_under_a_name_that_is_no_account_never_records_what_was_typed(redis_client):
    await add_user(redis_client, "ivan", Role.VIEWER, "right password")
    for typed in ("S3cret-Pa55!", "s3cretpass", "ivan"):
        assert (await attempt_login(redis_client, typed, "whatever", "10.1.1.2")).user is None
    entries = await read_audit(redis_client, count=3)
    assert [e["user"] for e in entries] == ["ivan", "(unknown name)", "(unknown name)"]
    assert not any("S3cret" in value or "s3cret" in value for e in entries for value in e.values())


def test_cli_adds_lists_and_changes_users(redis_server, tmp_path, capsys):
    password_file = tmp_path / "pw"
    password_file.write_text("long enough password\n")
    url = ["--redis-url", redis_server.url]
    assert users_cli.main([*url, "add", "hank", "--role", "operator", "--password-file", str(password_file)]) == 0
    assert users_cli.main([*url, "set-role", "hank", "engineer"]) == 0
    assert users_cli.main([*url, "list"]) == 0
    assert "hank\tengineer" in capsys.readouterr().out
    assert users_cli.main([*url, "delete", "hank"]) == 0
    assert users_cli.main([*url, "delete", "hank"]) == 1
    assert "no user 'hank'" in capsys.readouterr().err
