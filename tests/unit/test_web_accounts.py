"""Users, passwords, sessions, lock-out and the audit trail, against a real Redis."""
from __future__ import annotations

import asyncio

import pytest

from tag_store import keys
from web import login_throttle, users as users_cli
from web.audit import read_audit
from web.login import WRONG_CREDENTIALS, attempt_login
from web.login_throttle import MAX_FAILURES, lockout_remaining_s
from web.roles import Role
from web.sessions import create_session, end_session, load_session, session_exists, session_key
from web.users import (
    UserError, add_user, change_password, delete_user, ensure_demo_users, get_user, list_users, set_role,
    verify_password,
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


def test_cli_names_the_roles_when_given_an_unknown_one(redis_server, capsys):
    with pytest.raises(SystemExit) as refused:
        users_cli.main(["--redis-url", redis_server.url, "set-role", "hank", "superuser"])
    assert refused.value.code == 2
    assert "unknown role 'superuser' (one of: viewer, operator, engineer, admin)" in capsys.readouterr().err


# --- passwd, ending sessions, and the audit of user changes -------------------------------

_OLD_PASSWORD = "old horse battery"
_NEW_PASSWORD = "new staple 2026!"


def _prompts(monkeypatch, *answers: str) -> list[str]:
    """getpass answers the CLI's prompts in turn; returns the prompts it was asked."""
    asked, queue = [], list(answers)

    def fake_getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return queue.pop(0)

    monkeypatch.setattr(users_cli.getpass, "getpass", fake_getpass)
    return asked


async def _cli(redis_server, *argv: str) -> int:
    # main() runs its own event loop: give it a thread, this test's loop keeps the fixture client.
    return await asyncio.to_thread(users_cli.main, ["--redis-url", redis_server.url, *argv])


async def _stored_hash(redis_client, name: str) -> bytes:
    return await redis_client.hget(keys.user(name), "password_hash")


async def test_cli_passwd_replaces_the_hash_and_ends_only_that_users_sessions(
        redis_client, redis_server, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(users_cli.getpass, "getuser", lambda: "jane")
    await add_user(redis_client, "hank", Role.OPERATOR, _OLD_PASSWORD)
    await add_user(redis_client, "ivy", Role.OPERATOR, "ivy's own password")
    before = await _stored_hash(redis_client, "hank")
    hank_tokens = [(await create_session(redis_client, "hank", Role.OPERATOR, 60, now_ms=1))[0] for _ in range(2)]
    ivy_token, _ = await create_session(redis_client, "ivy", Role.OPERATOR, 60, now_ms=1)
    password_file = tmp_path / "pw"
    password_file.write_text(_NEW_PASSWORD + "\n")

    assert await _cli(redis_server, "passwd", "hank", "--password-file", str(password_file)) == 0
    assert "password of hank changed; 2 open sessions ended" in capsys.readouterr().out
    after = await _stored_hash(redis_client, "hank")
    assert after != before and after.startswith(b"$argon2") and _NEW_PASSWORD.encode() not in after
    assert await verify_password(redis_client, "hank", _OLD_PASSWORD) is None
    assert (await verify_password(redis_client, "hank", _NEW_PASSWORD)).role is Role.OPERATOR
    for token in hank_tokens:
        assert await load_session(redis_client, token, 60) is None and not await session_exists(redis_client, token)
    assert (await load_session(redis_client, ivy_token, 60)).user == "ivy"  # another user's login stays
    newest = (await read_audit(redis_client, count=1))[0]
    assert {k: newest[k] for k in ("user", "action", "result", "tag", "old", "new", "reason")} == {
        "user": "cli:jane", "action": "password_changed", "result": "ok", "tag": "user:hank",
        "old": "", "new": "", "reason": "2 open sessions ended"}


async def test_cli_passwd_asks_twice_when_no_file_is_given_and_the_alias_works(
        redis_client, redis_server, monkeypatch):
    await add_user(redis_client, "hank", Role.VIEWER, _OLD_PASSWORD)
    asked = _prompts(monkeypatch, _NEW_PASSWORD, _NEW_PASSWORD)
    assert await _cli(redis_server, "set-password", "hank") == 0
    assert asked == ["Password: ", "Password again: "]
    assert await verify_password(redis_client, "hank", _NEW_PASSWORD) is not None
    assert await verify_password(redis_client, "hank", _OLD_PASSWORD) is None


@pytest.mark.parametrize(("answers", "file_text", "message"), [
    ((_NEW_PASSWORD, _NEW_PASSWORD + "x"), None, "error: the two passwords differ; nothing changed"),
    (("short", "short"), None, "error: the password must have at least 8 characters; nothing changed"),
    ((), "short\n", "error: the password must have at least 8 characters; nothing changed"),
    ((), "", "error: the password must have at least 8 characters; nothing changed"),
], ids=["prompts-differ", "prompt-too-short", "file-too-short", "file-empty"])
async def test_cli_passwd_refuses_a_bad_password_with_exit_2_and_changes_nothing(
        redis_client, redis_server, tmp_path, capsys, monkeypatch, answers, file_text, message):
    await add_user(redis_client, "hank", Role.OPERATOR, _OLD_PASSWORD)
    token, _ = await create_session(redis_client, "hank", Role.OPERATOR, 60, now_ms=1)
    before = await redis_client.hgetall(keys.user("hank"))
    audit_before = await read_audit(redis_client, count=100)
    _prompts(monkeypatch, *answers)
    argv = ["passwd", "hank"]
    if file_text is not None:
        (tmp_path / "pw").write_text(file_text)
        argv += ["--password-file", str(tmp_path / "pw")]

    assert await _cli(redis_server, *argv) == 2
    assert message in capsys.readouterr().err
    assert await redis_client.hgetall(keys.user("hank")) == before
    assert await verify_password(redis_client, "hank", _OLD_PASSWORD) is not None
    assert (await load_session(redis_client, token, 60)).user == "hank"
    assert await read_audit(redis_client, count=100) == audit_before


async def test_cli_passwd_of_no_such_user_fails_before_asking_for_a_password(
        redis_client, redis_server, capsys, monkeypatch):
    asked = _prompts(monkeypatch)
    assert await _cli(redis_server, "passwd", "nobody") == 1
    assert "no user 'nobody'" in capsys.readouterr().err and asked == []
    with pytest.raises(UserError, match="no user 'nobody'"):
        await change_password(redis_client, "nobody", _NEW_PASSWORD)
    assert not await redis_client.exists(keys.user("nobody"))  # no half account made
    assert await read_audit(redis_client, count=10) == []


async def test_deleting_a_user_ends_their_sessions_so_a_new_account_of_that_name_does_not_inherit_them(
        redis_client):
    await add_user(redis_client, "kim", Role.ENGINEER, _OLD_PASSWORD)
    await add_user(redis_client, "lou", Role.VIEWER, _OLD_PASSWORD)
    kim_token, _ = await create_session(redis_client, "kim", Role.ENGINEER, 60, now_ms=1)
    lou_token, _ = await create_session(redis_client, "lou", Role.VIEWER, 60, now_ms=1)
    assert await delete_user(redis_client, "kim", by="admin-page:root")
    assert not await redis_client.exists(session_key(kim_token))  # gone from Redis, not only refused
    await add_user(redis_client, "kim", Role.ADMIN, "someone else entirely")
    assert await load_session(redis_client, kim_token, 60) is None
    assert not await session_exists(redis_client, kim_token)
    assert (await load_session(redis_client, lou_token, 60)).user == "lou"
    deleted = next(e for e in await read_audit(redis_client, count=10) if e["action"] == "user_deleted")
    assert (deleted["user"], deleted["tag"], deleted["old"], deleted["reason"]) == (
        "admin-page:root", "user:kim", "engineer", "1 open session ended")


async def test_end_sessions_of_walks_every_scan_page_and_touches_no_one_else(redis_client):
    for i in range(700):  # more than one SCAN page (COUNT 500)
        await create_session(redis_client, f"other{i % 7}", Role.VIEWER, 60, now_ms=1)
    mine = [(await create_session(redis_client, "max", Role.VIEWER, 60, now_ms=1))[0] for _ in range(3)]
    await redis_client.hset(keys.user("max"), "role", "viewer")  # a key under sl:user: is no session
    assert await users_cli.end_sessions_of(redis_client, "max") == 3
    assert not any([await redis_client.exists(session_key(t)) for t in mine])
    assert len([k async for k in redis_client.scan_iter(match=keys.session("*"))]) == 700
    assert await redis_client.exists(keys.user("max"))
    assert await users_cli.end_sessions_of(redis_client, "max") == 0


async def test_every_cli_user_change_is_audited_with_who_and_what_and_never_a_password(
        redis_client, redis_server, tmp_path, monkeypatch):
    monkeypatch.setattr(users_cli.getpass, "getuser", lambda: "jane")
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text(_OLD_PASSWORD + "\n")
    second.write_text(_NEW_PASSWORD + "\n")
    assert await _cli(redis_server, "add", "nora", "--role", "operator", "--password-file", str(first)) == 0
    assert await _cli(redis_server, "set-role", "nora", "engineer") == 0
    await create_session(redis_client, "nora", Role.ENGINEER, 60, now_ms=1)
    assert await _cli(redis_server, "passwd", "nora", "--password-file", str(second)) == 0
    assert await _cli(redis_server, "delete", "nora") == 0

    entries = list(reversed(await read_audit(redis_client, count=100)))  # oldest first
    assert [(e["user"], e["action"], e["result"], e["tag"], e["old"], e["new"], e["reason"]) for e in entries] == [
        ("cli:jane", "user_added", "ok", "user:nora", "", "operator", ""),
        ("cli:jane", "role_changed", "ok", "user:nora", "operator", "engineer", ""),
        ("cli:jane", "password_changed", "ok", "user:nora", "", "", "1 open session ended"),
        ("cli:jane", "user_deleted", "ok", "user:nora", "engineer", "", "0 open sessions ended"),
    ]
    raw = repr(await redis_client.xrange(keys.AUDIT))
    for secret in (_OLD_PASSWORD, _NEW_PASSWORD, "$argon2", "password_hash"):
        assert secret not in raw


async def test_library_changes_are_audited_even_when_the_caller_names_no_one(redis_client):
    await add_user(redis_client, "olga", Role.VIEWER, _OLD_PASSWORD)
    await set_role(redis_client, "olga", Role.OPERATOR, by="admin-page:root", source_ip="10.2.2.2")
    assert await change_password(redis_client, "olga", _NEW_PASSWORD) == 0
    newest, role_change, added = await read_audit(redis_client, count=3)
    assert (added["user"], added["action"]) == (users_cli.UNATTRIBUTED, "user_added")
    assert (role_change["user"], role_change["source_ip"], role_change["old"], role_change["new"]) == (
        "admin-page:root", "10.2.2.2", "viewer", "operator")
    assert (newest["user"], newest["action"]) == (users_cli.UNATTRIBUTED, "password_changed")
    with pytest.raises(UserError, match="at least 8"):
        await change_password(redis_client, "olga", "short")
    assert len(await read_audit(redis_client, count=10)) == 3
