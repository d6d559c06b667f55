"""An idle session's end goes on the audit trail once, and only an idle end (web/session_expiry.py).

Against a real Redis whose keys really expire: sessions here idle out after 1 s.
"""
from __future__ import annotations

import asyncio
import time

from tag_store import keys
from web.audit import read_audit
from web.roles import Role
from web.session_expiry import GRACE_MS, AUDIT_ACTION, audit_expired_sessions, sweep_forever
from web.sessions import create_session, end_session, load_session, session_key
from web.users import add_user, change_password, delete_user

IDLE_S = 1


async def expired_entries(redis) -> list[dict]:
    return [e for e in await read_audit(redis, 200) if e["action"] == AUDIT_ACTION]


async def open_session(redis, user: str = "olga", ip: str = "10.0.0.7") -> str:
    token, _ = await create_session(redis, user, Role.OPERATOR, IDLE_S, int(time.time() * 1000), ip)
    return token


async def wait_until_gone(redis, token: str) -> None:
    while await redis.exists(session_key(token)):
        await asyncio.sleep(0.05)


def past_the_deadline() -> int:
    """A sweep's clock after every session opened until now has idled out (and the grace passed)."""
    return int(time.time() * 1000) + IDLE_S * 1000 + GRACE_MS + 10


async def test_an_idle_session_is_audited_once_with_who_where_and_why(redis_client):
    await add_user(redis_client, "olga", Role.OPERATOR, "a long password")
    token = await open_session(redis_client)
    assert await audit_expired_sessions(redis_client) == 0  # not due yet
    await wait_until_gone(redis_client, token)
    assert await audit_expired_sessions(redis_client, past_the_deadline()) == 1
    [entry] = await expired_entries(redis_client)
    assert (entry["user"], entry["result"], entry["source_ip"]) == ("olga", "ok", "10.0.0.7")
    assert entry["reason"] == "no activity for 1 s (web.session_idle_timeout_s): the session ended"
    assert await audit_expired_sessions(redis_client, past_the_deadline()) == 0
    assert len(await expired_entries(redis_client)) == 1
    assert await redis_client.zcard(keys.SESSION_DEADLINES) == 0
    assert await redis_client.hlen(keys.SESSION_OWNERS) == 0


async def test_a_session_in_use_is_not_ended_at_its_first_deadline(redis_client):
    await add_user(redis_client, "olga", Role.OPERATOR, "a long password")
    token = await open_session(redis_client)
    first_deadline_ms = int(time.time() * 1000) + IDLE_S * 1000
    await asyncio.sleep(0.6)
    assert await load_session(redis_client, token, IDLE_S) is not None  # activity: the timer restarts
    await asyncio.sleep(0.6)
    assert await audit_expired_sessions(redis_client, first_deadline_ms + GRACE_MS + 10) == 0
    assert await redis_client.exists(session_key(token))
    await wait_until_gone(redis_client, token)
    assert await audit_expired_sessions(redis_client, past_the_deadline()) == 1


async def test_a_deadline_written_too_early_is_moved_to_the_sessions_real_end(redis_client):
    await add_user(redis_client, "olga", Role.OPERATOR, "a long password")
    token = await open_session(redis_client)
    await redis_client.expire(session_key(token), 30)  # as if refreshed after the deadline was read
    assert await audit_expired_sessions(redis_client, past_the_deadline()) == 0
    score = await redis_client.zscore(keys.SESSION_DEADLINES, session_key(token).rsplit(":", 1)[1])
    assert score > past_the_deadline() + 20_000  # its real end, not its first deadline
    assert not await expired_entries(redis_client)


async def test_logout_password_change_and_deletion_are_not_idle_ends(redis_client):
    for name in ("lena", "paul", "dora"):
        await add_user(redis_client, name, Role.OPERATOR, "a long password")
    logged_out = await open_session(redis_client, "lena")
    changed = await open_session(redis_client, "paul")
    deleted = await open_session(redis_client, "dora")
    await end_session(redis_client, logged_out)
    await change_password(redis_client, "paul", "another long password")
    await delete_user(redis_client, "dora")
    for token in (changed, deleted):
        await wait_until_gone(redis_client, token)
    assert await audit_expired_sessions(redis_client, past_the_deadline()) == 0
    assert not await expired_entries(redis_client)
    assert await redis_client.zcard(keys.SESSION_DEADLINES) == 0  # nothing left for later sweeps


async def test_workers_sweeping_at_once_audit_each_end_once(redis_client):
    await add_user(redis_client, "olga", Role.OPERATOR, "a long password")
    tokens = [await open_session(redis_client) for _ in range(5)]
    for token in tokens:
        await wait_until_gone(redis_client, token)
    at_ms = past_the_deadline()
    counts = await asyncio.gather(*(audit_expired_sessions(redis_client, at_ms) for _ in range(4)))
    assert sum(counts) == 5
    assert len(await expired_entries(redis_client)) == 5


async def test_the_sweep_keeps_running_in_the_background(redis_client):
    await add_user(redis_client, "olga", Role.OPERATOR, "a long password")
    sweeper = asyncio.create_task(sweep_forever(redis_client, interval_s=0.2))
    try:
        await open_session(redis_client)
        deadline = time.monotonic() + 10
        while not await expired_entries(redis_client):
            assert time.monotonic() < deadline, "the idle end was never audited"
            await asyncio.sleep(0.1)
    finally:
        sweeper.cancel()
