"""API tokens against a real Redis: made, resolved with the user's current role, hashed, expired, revoked."""
from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from domain.config_model import KioskSettings
from tag_store import keys
from web import api_tokens
from web.api_tokens import (DAY_MS, DEFAULT_DAYS, LAST_USED_RESOLUTION_MS, MAX_TOKENS_PER_USER, TokenError,
                            create_token, list_tokens, resolve_token, revoke_all_tokens_of, revoke_token)
from web.audit import read_audit
from web.auth import bearer_token, in_networks
from web.roles import Role
from web.users import add_user, delete_user, encode_areas, set_role


async def everything_in(redis) -> bytes:
    """Every key and every value Redis holds, as one blob to search."""
    blob = []
    async for key in redis.scan_iter(count=1000):
        blob.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                blob += [field, value]
        elif kind == "string":
            blob.append(await redis.get(key))
        elif kind == "stream":
            for _id, fields in await redis.xrange(key):
                for field, value in fields.items():
                    blob += [field, value]
    return b"\n".join(blob)


@pytest.fixture
async def alice(redis_client):
    await add_user(redis_client, "alice", Role.OPERATOR, "correct horse")
    return "alice"


async def test_a_made_token_resolves_to_its_user_and_only_its_hash_is_stored(redis_client, alice):
    plaintext, record = await create_token(redis_client, alice, "  SCADA   link ", by="alice", source_ip="10.0.0.7")
    assert plaintext.startswith("slt_") and len(plaintext) == 4 + 43
    assert record.label == "SCADA link" and record.expires_ms - record.created_ms == DEFAULT_DAYS * DAY_MS
    user, resolved = await resolve_token(redis_client, plaintext)
    assert (user.name, user.role, user.areas) == ("alice", Role.OPERATOR, ())
    assert resolved.id == record.id and resolved.label == "SCADA link"
    blob = await everything_in(redis_client)
    assert plaintext.encode() not in blob and plaintext[4:].encode() not in blob
    assert api_tokens.token_hash(plaintext).encode() in blob  # the key is the hash
    assert [t.id for t in await list_tokens(redis_client, alice)] == [record.id]
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["user"], audit["action"], audit["tag"], audit["source_ip"]) == (
        "alice", "token_created", "user:alice", "10.0.0.7")
    assert record.id in audit["new"] and "SCADA link" in audit["new"]


async def test_what_is_not_a_live_token_resolves_to_nothing(redis_client, alice):
    plaintext, _ = await create_token(redis_client, alice, "x")
    for text in (None, "", "slt_", plaintext[:-1], plaintext[4:], plaintext + "x", "slt_" + "a" * 200,
                 "slt_ünïcode"):
        assert await resolve_token(redis_client, text) is None, text


async def test_a_token_expires(redis_client, alice):
    plaintext, record = await create_token(redis_client, alice, "short", 1)
    assert record.expires_ms - record.created_ms == DAY_MS
    assert await resolve_token(redis_client, plaintext, now_ms=record.expires_ms - 1) is not None
    assert await resolve_token(redis_client, plaintext, now_ms=record.expires_ms) is None
    assert await redis_client.pttl(keys.api_token(api_tokens.token_hash(plaintext))) > DAY_MS - 60_000
    # made long ago: Redis dropped it at its expiry, and the listing forgets it
    old, _ = await create_token(redis_client, alice, "old", 1, now_ms=record.created_ms - 2 * DAY_MS)
    assert await resolve_token(redis_client, old) is None
    assert [t.label for t in await list_tokens(redis_client, alice)] == ["short"]
    assert await redis_client.hlen(keys.api_tokens_of(alice)) == 1


async def test_lifetime_is_checked_against_the_configured_maximum(redis_client, alice):
    for days, reason in ((0, "1 to 30 days"), (31, "1 to 30 days"), ("many", "not a number"), (1.5, "whole")):
        with pytest.raises(TokenError, match=reason):
            await create_token(redis_client, alice, "x", days, max_days=30)
    _, record = await create_token(redis_client, alice, "x", None, max_days=30)  # 90 by default, not above 30
    assert record.expires_ms - record.created_ms == 30 * DAY_MS
    with pytest.raises(TokenError, match="label"):
        await create_token(redis_client, alice, "   ")
    with pytest.raises(TokenError, match="no user 'nobody'"):
        await create_token(redis_client, "nobody", "x")
    assert not await redis_client.exists(keys.user("nobody"))  # no half account made


async def test_a_revoked_token_is_refused_at_once(redis_client, alice):
    await add_user(redis_client, "bob", Role.VIEWER, "12345678")
    plaintext, record = await create_token(redis_client, alice, "to revoke")
    keep, _ = await create_token(redis_client, alice, "to keep")
    assert not await revoke_token(redis_client, "bob", record.id, by="bob")  # not bob's
    assert not await revoke_token(redis_client, alice, "nope", by="alice")
    assert await revoke_token(redis_client, alice, record.id, by="admin", source_ip="10.0.0.9")
    assert await resolve_token(redis_client, plaintext) is None
    assert await resolve_token(redis_client, keep) is not None
    assert not await revoke_token(redis_client, alice, record.id, by="admin")  # once
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["user"], audit["action"], audit["tag"], audit["old"]) == (
        "admin", "token_revoked", "user:alice", f"to revoke (id {record.id})")
    entries = await read_audit(redis_client, 10)
    assert all(plaintext not in str(e) and keep not in str(e) for e in entries)
    assert await revoke_all_tokens_of(redis_client, alice, by="admin") == 1
    assert await resolve_token(redis_client, keep) is None and await list_tokens(redis_client, alice) == []


async def test_a_token_acts_with_its_users_current_role_and_areas(redis_client, alice):
    plaintext, _ = await create_token(redis_client, alice, "x")
    await set_role(redis_client, alice, Role.VIEWER)
    await redis_client.hset(keys.user(alice), "areas", encode_areas(["Tanks"]))
    user, _ = await resolve_token(redis_client, plaintext)
    assert (user.role, user.areas) == (Role.VIEWER, ("Tanks",))


async def test_a_deleted_users_tokens_are_refused_also_for_a_new_account_of_that_name(redis_client, alice):
    plaintext, _ = await create_token(redis_client, alice, "x")
    await delete_user(redis_client, alice, by="admin")
    # Deleting the account removes its tokens from Redis at once, on record.
    assert not await redis_client.exists(keys.api_token(api_tokens.token_hash(plaintext)))
    revoked = [e for e in await read_audit(redis_client, 10) if e["action"] == "token_revoked"]
    assert [(e["user"], e["tag"], e["old"]) for e in revoked] == [("admin", f"user:{alice}", "all (1)")]
    assert await resolve_token(redis_client, plaintext) is None
    await add_user(redis_client, alice, Role.ADMIN, "another password")
    assert await resolve_token(redis_client, plaintext) is None
    assert await list_tokens(redis_client, alice) == []


async def test_a_recreated_account_does_not_inherit_tokens_even_if_never_resolved_in_between(redis_client, alice):
    plaintext, _ = await create_token(redis_client, alice, "x")
    await redis_client.delete(keys.user(alice))  # deleted by any means, then made again
    await add_user(redis_client, alice, Role.ADMIN, "another password")
    assert await list_tokens(redis_client, alice) == []  # not listed as the new account's either
    assert not await redis_client.exists(keys.api_token(api_tokens.token_hash(plaintext)))
    assert await resolve_token(redis_client, plaintext) is None
    mine, _ = await create_token(redis_client, alice, "the new account's")
    assert [t.label for t in await list_tokens(redis_client, alice)] == ["the new account's"]
    assert (await resolve_token(redis_client, mine))[0].role is Role.ADMIN


async def test_last_used_is_written_at_most_once_a_minute(redis_client, alice):
    plaintext, record = await create_token(redis_client, alice, "x")
    key = keys.api_token(api_tokens.token_hash(plaintext))
    t0 = record.created_ms + 1000
    await resolve_token(redis_client, plaintext, now_ms=t0)
    await resolve_token(redis_client, plaintext, now_ms=t0 + LAST_USED_RESOLUTION_MS - 1)
    assert int(await redis_client.hget(key, "last_used_ms")) == t0
    await resolve_token(redis_client, plaintext, now_ms=t0 + LAST_USED_RESOLUTION_MS)
    assert int(await redis_client.hget(key, "last_used_ms")) == t0 + LAST_USED_RESOLUTION_MS
    assert (await list_tokens(redis_client, alice))[0].last_used_ms == t0 + LAST_USED_RESOLUTION_MS


async def test_a_user_has_a_bounded_number_of_tokens(redis_client, alice):
    for n in range(MAX_TOKENS_PER_USER):
        await create_token(redis_client, alice, f"t{n}")
    with pytest.raises(TokenError, match="revoke one first"):
        await create_token(redis_client, alice, "one too many")
    assert len(await list_tokens(redis_client, alice)) == MAX_TOKENS_PER_USER


async def test_the_command_line_makes_lists_and_revokes(redis_server, redis_client, alice, capsys):
    url = ["--redis-url", redis_server.url]

    def main(args: list[str]):  # the CLI runs its own event loop: in a thread
        return asyncio.to_thread(api_tokens.main, args)

    assert await main([*url, "create", alice, "--label", "historian export", "--days", "7"]) == 0
    plaintext = capsys.readouterr().out.splitlines()[0]
    user, record = await resolve_token(redis_client, plaintext)
    assert user.name == alice and record.expires_ms - record.created_ms == 7 * DAY_MS
    assert (await read_audit(redis_client, 1))[0]["user"].startswith("cli:")
    assert await main([*url, "list", alice]) == 0
    listed = capsys.readouterr().out
    assert record.id in listed and "historian export" in listed and plaintext not in listed
    assert await main([*url, "create", alice, "--label", "x", "--days", "9999"]) == 2
    assert "nothing changed" in capsys.readouterr().err
    assert await main([*url, "revoke", alice, "nope"]) == 1
    assert await main([*url, "revoke", alice, record.id]) == 0
    assert await resolve_token(redis_client, plaintext) is None


def test_bearer_header_and_kiosk_networks():
    assert bearer_token("Bearer slt_abc") == "slt_abc" and bearer_token("bearer  slt_abc ") == "slt_abc"
    assert bearer_token("Bearer") == "" and bearer_token("Basic dXNlcjpwdw==") is None and bearer_token(None) is None
    nets = ("127.0.0.1/32", "10.1.2.0/24", "fd00::/8")
    assert in_networks("127.0.0.1", nets) and in_networks("10.1.2.99", nets) and in_networks("fd00::1", nets)
    assert in_networks("::ffff:10.1.2.3", nets)  # IPv4 seen through an IPv6 socket
    for outside in ("127.0.0.2", "10.1.3.1", "::1", "", None, "not an address"):
        assert not in_networks(outside, nets), outside


@pytest.mark.parametrize("everyone", ["0.0.0.0/0", "::/0"])
def test_a_kiosk_for_every_address_is_refused(everyone):
    with pytest.raises(ValidationError, match="no login at all"):
        KioskSettings(allowed_networks=["127.0.0.1/32", everyone])
    assert KioskSettings(allowed_networks=["10.0.0.0/8"]).allowed_networks == ["10.0.0.0/8"]


async def test_the_account_page_acts_only_for_a_logged_in_person(redis_client, alice):
    from web.account_view import KIOSK, NOT_LOGGED_IN, make_token, my_tokens, revoke_mine  # noqa: PLC0415
    from web.auth import BY_TOKEN, RequestIdentity, kiosk_session  # noqa: PLC0415
    from web.sessions import Session  # noqa: PLC0415

    person = RequestIdentity(Session("alice", Role.OPERATOR, "csrf", 0), "10.0.0.5")
    kiosk = RequestIdentity(kiosk_session(), "10.0.0.6", "kiosk")
    by_token = RequestIdentity(Session("alice", Role.OPERATOR, "", 0), "10.0.0.7", BY_TOKEN, "ab12")
    for identity, reason in ((None, NOT_LOGGED_IN), (kiosk, KIOSK), (by_token, "not an API token")):
        outcome = await make_token(redis_client, identity, "x", 7, 365)
        assert not outcome.ok and reason in outcome.message and outcome.token == ""
        assert (await my_tokens(redis_client, identity))[1]
    assert await list_tokens(redis_client, "alice") == []
    made = await make_token(redis_client, person, "mine", "7", 365)
    assert made.ok and made.token.startswith("slt_") and "shown only once" in made.message
    assert [t.label for t in (await my_tokens(redis_client, person))[0]] == ["mine"]
    assert not (await revoke_mine(redis_client, kiosk, made.record.id)).ok
    assert not (await make_token(redis_client, person, "x", "0", 365)).ok
    assert (await revoke_mine(redis_client, person, made.record.id)).ok
    assert not (await revoke_mine(redis_client, person, made.record.id)).ok
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["user"], audit["action"], audit["source_ip"]) == ("alice", "token_revoked", "10.0.0.5")
