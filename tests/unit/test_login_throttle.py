"""Lock-out against parallel guessing: attempts are counted before any password is verified."""
from __future__ import annotations

import asyncio
import time

import pytest

from web import login, login_throttle
from web.audit import read_audit
from web.login import BUSY, attempt_login
from web.login_throttle import (
    MAX_FAILURES, Attempt, LoginGate, claim_attempt, failures_key, lockout_remaining_s,
)
from web.roles import Role
from web.sessions import create_session, load_session
from web.users import add_user


@pytest.fixture
def no_delay(monkeypatch):
    monkeypatch.setattr(login_throttle, "FIRST_DELAY_S", 0.0)


@pytest.fixture
def verifications(monkeypatch):
    """Counts the password verifications attempt_login really does, and the most at once."""
    seen = {"calls": 0, "running": 0, "most_at_once": 0}
    real = login.verify_password

    async def counting(redis, name, password):
        seen["calls"] += 1
        seen["running"] += 1
        seen["most_at_once"] = max(seen["most_at_once"], seen["running"])
        try:
            return await real(redis, name, password)
        finally:
            seen["running"] -= 1

    monkeypatch.setattr(login, "verify_password", counting)
    return seen


async def test_parallel_claims_each_get_their_own_number(redis_client):
    attempts = await asyncio.gather(*(claim_attempt(redis_client, "ivy") for _ in range(20)))
    assert sorted(a.number for a in attempts) == list(range(1, 21))
    assert sum(a.allowed for a in attempts) == MAX_FAILURES
    assert 0 < await redis_client.ttl(failures_key("ivy")) <= login_throttle.LOCKOUT_S


async def test_twenty_parallel_wrong_logins_verify_at_most_the_allowed_number(
        redis_client, no_delay, verifications):
    await add_user(redis_client, "jack", Role.OPERATOR, "right password")
    results = await asyncio.gather(*(attempt_login(redis_client, "jack", f"guess {i}", "10.0.0.7")
                                     for i in range(20)))
    assert all(r.user is None for r in results)
    assert verifications["calls"] == MAX_FAILURES
    assert verifications["most_at_once"] <= login_throttle.MAX_CONCURRENT_VERIFICATIONS
    reasons = [e["reason"] for e in await read_audit(redis_client, 20)]
    assert sum(r.startswith("wrong") for r in reasons) == MAX_FAILURES
    assert sum(r.startswith("locked out") and r.endswith("not checked") for r in reasons) == 20 - MAX_FAILURES
    # The right password is refused now, and not even verified.
    locked = await attempt_login(redis_client, "jack", "right password", "10.0.0.7")
    assert locked.user is None and "Too many failed attempts" in locked.message
    assert verifications["calls"] == MAX_FAILURES


async def test_a_successful_login_clears_the_count(redis_client, no_delay):
    await add_user(redis_client, "kate", Role.VIEWER, "right password")
    for _ in range(MAX_FAILURES - 1):
        assert (await attempt_login(redis_client, "kate", "wrong", "10.0.0.8")).user is None
    assert (await attempt_login(redis_client, "kate", "right password", "10.0.0.8")).user.name == "kate"
    assert not await redis_client.exists(failures_key("kate"))


async def test_the_wait_before_verifying_grows_with_the_failures_and_is_capped(redis_client):
    assert [Attempt(n, 300).delay_s for n in range(1, 8)] == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    await add_user(redis_client, "liam", Role.VIEWER, "right password")
    await redis_client.set(failures_key("liam"), 2, ex=300)  # two failures already: the third waits 0.5 s
    started = time.monotonic()
    assert (await attempt_login(redis_client, "liam", "right password", "10.0.0.9")).user is not None
    assert time.monotonic() - started >= 0.5


async def test_names_are_counted_as_users_are_stored(redis_client, no_delay):
    await add_user(redis_client, "mia", Role.VIEWER, "right password")
    for _ in range(MAX_FAILURES):
        await attempt_login(redis_client, "MIA", "wrong", "10.0.0.10")
    assert await lockout_remaining_s(redis_client, "MIA") > 0
    assert await lockout_remaining_s(redis_client, "mia") == 0  # another name: not locked by MIA's failures
    assert (await attempt_login(redis_client, "mia", "right password", "10.0.0.10")).user.name == "mia"


async def test_a_full_gate_refuses_as_busy_without_counting_or_verifying(
        redis_client, monkeypatch, verifications):
    await add_user(redis_client, "noah", Role.VIEWER, "right password")
    monkeypatch.setattr(login, "login_gate", lambda: LoginGate(max_in_flight=0))
    result = await attempt_login(redis_client, "noah", "right password", "10.0.0.11")
    assert result.user is None and result.message == BUSY
    assert verifications["calls"] == 0 and not await redis_client.exists(failures_key("noah"))
    assert (await read_audit(redis_client, 1))[0]["reason"] == "too many logins in flight: not checked"


async def test_the_gate_bounds_verifications_running_at_once(redis_client, monkeypatch, no_delay, verifications):
    gate = LoginGate(max_in_flight=100, max_verifications=2)
    monkeypatch.setattr(login, "login_gate", lambda: gate)
    await asyncio.gather(*(attempt_login(redis_client, f"user{i}", "wrong", "10.0.0.12") for i in range(8)))
    assert verifications["calls"] == 8 and verifications["most_at_once"] == 2


def test_the_gate_admits_up_to_its_bound():
    gate = LoginGate(max_in_flight=1)
    with gate.admit() as first:
        with gate.admit() as second:
            assert first and not second
    with gate.admit() as again:
        assert again


async def test_a_locked_name_keeps_its_open_sessions(redis_client, no_delay):
    # Lock-out stops logging in, never viewing: an operator already logged in keeps the screen.
    await add_user(redis_client, "olivia", Role.OPERATOR, "right password")
    token, _ = await create_session(redis_client, "olivia", Role.OPERATOR, 60, now_ms=1)
    for _ in range(MAX_FAILURES + 1):
        await attempt_login(redis_client, "olivia", "wrong", "10.0.0.13")
    assert await lockout_remaining_s(redis_client, "olivia") > 0
    assert (await load_session(redis_client, token, 60)).user == "olivia"
