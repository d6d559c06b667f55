"""Held writes in a real Redis: single use, only for the same user and session, only at their stage, expiring."""
from __future__ import annotations

import asyncio

import pytest

from tag_store import keys
from web.pending_writes import PendingWrite, Stage, hold_write, take_write
from web.roles import Role
from web.sessions import Session

OLGA = Session("olga", Role.OPERATOR, "csrf", 1_733_171_000_123)
HELD = PendingWrite("olga", OLGA.created_ms, "T1.setpoint", 55.0, 50.0, 1_733_171_001_000)


async def test_the_same_user_and_session_take_it_once(redis_client):
    nonce = await hold_write(redis_client, HELD)
    assert await take_write(redis_client, nonce, OLGA) == HELD
    assert await take_write(redis_client, nonce, OLGA) is None  # used


@pytest.mark.parametrize("other", [
    Session("otto", Role.OPERATOR, "csrf", OLGA.created_ms),        # someone else
    Session("olga", Role.OPERATOR, "csrf", OLGA.created_ms + 1),    # olga's other session
    None,                                                           # nobody logged in
])
async def test_anyone_else_gets_nothing_and_leaves_it_alone(redis_client, other):
    nonce = await hold_write(redis_client, HELD)
    assert await take_write(redis_client, nonce, other) is None
    assert await take_write(redis_client, nonce, OLGA) == HELD


async def test_it_is_taken_only_at_the_stage_it_was_held_for(redis_client):
    confirm = await hold_write(redis_client, HELD)
    assert await take_write(redis_client, confirm, OLGA, Stage.APPROVAL) is None
    approval = await hold_write(redis_client, PendingWrite("olga", OLGA.created_ms, "T1.setpoint", 55.0, 50.0, 1,
                                                           Stage.APPROVAL, "batch 17"))
    assert await take_write(redis_client, approval, OLGA, Stage.CONFIRM) is None
    taken = await take_write(redis_client, approval, OLGA, Stage.APPROVAL)
    assert (taken.stage, taken.reason) == (Stage.APPROVAL, "batch 17")
    assert await take_write(redis_client, confirm, OLGA) == HELD


@pytest.mark.parametrize("nonce", ["made-up", "", None, 42, {"tag": "T1.setpoint", "value": 55}, "x" * 5000])
async def test_made_up_nonces_get_nothing(redis_client, nonce):
    await hold_write(redis_client, HELD)
    assert await take_write(redis_client, nonce, OLGA) is None


async def test_it_expires_and_redis_holds_no_usable_nonce(redis_client):
    nonce = await hold_write(redis_client, HELD, ttl_s=1)
    stored = [k.decode() async for k in redis_client.scan_iter(keys.PREFIX + "pending_write:*")]
    assert len(stored) == 1 and nonce not in stored[0]
    assert 0 < await redis_client.ttl(stored[0]) <= 1
    await asyncio.sleep(1.3)
    assert await take_write(redis_client, nonce, OLGA) is None


async def test_values_of_every_type_come_back_as_held(redis_client):
    for value, old in [(True, False), (7, None), ("text", "old text"), (2**60 + 1, 2**60)]:
        held = PendingWrite("olga", OLGA.created_ms, "X", value, old, 1)
        taken = await take_write(redis_client, await hold_write(redis_client, held), OLGA)
        assert taken == held and type(taken.value) is type(value)
