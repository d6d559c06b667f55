"""The two-person rule for critical tags, against a real Redis with real accounts (argon2 hashes)."""
from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from domain.quality import GOOD
from domain.tag_value import TagValue
from tag_store import keys
from tag_store.write_requests import WriteOutcome, WriteStatus, answer_write
from tag_store.writer import TagStoreWriter
from tests.unit.web_plant import write_safety_plant
from web.audit import read_audit
from web.auth import RequestIdentity
from web.login_throttle import MAX_FAILURES
from web.pending_writes import NO_SUCH_PENDING_WRITE
from web.roles import Role
from web.runtime import WebRuntime
from web.sessions import Session
from web.users import encode_areas, save_user
from web.write_approval import approve_write
from web.writes import WriteState, confirm_pending, confirmation_step

OLGA = RequestIdentity(Session("olga", Role.OPERATOR, "csrf", 1_733_171_000_000), "10.0.0.7")
PASSWORDS = {"olga": "olga-secret", "otto": "otto-secret", "erik": "erik-secret", "vera": "vera-secret",
             "pia": "pia-secret"}


@pytest.fixture
async def runtime(redis_server, redis_client):
    for name, role in [("olga", Role.OPERATOR), ("otto", Role.OPERATOR), ("erik", Role.ENGINEER),
                       ("vera", Role.VIEWER), ("pia", Role.ENGINEER)]:
        await save_user(redis_client, name, role, PASSWORDS[name])
    await redis_client.hset(keys.user("pia"), "areas", encode_areas(["Packing"]))
    writer = TagStoreWriter(redis_client, 100)
    now = int(time.time() * 1000)
    writer.submit(TagValue("T1.critical_sp", 50.0, GOOD, now, now))
    await writer.drain()
    rt = await WebRuntime(write_safety_plant(write_timeout_s=0.5), redis_server.url).ensure_started()
    while "T1.critical_sp" not in rt.live_cache.values:
        await asyncio.sleep(0.05)
    yield rt
    await rt.close()


async def held_for_approval(runtime, value=55.0, reason="pump swap") -> str:
    step = await confirmation_step(runtime, OLGA, "T1.critical_sp", value)
    outcome = await confirm_pending(runtime, OLGA, step.nonce, reason)
    assert outcome.result.state is WriteState.NEEDS_APPROVAL and outcome.approval_nonce
    return outcome.approval_nonce


async def sent(redis_client) -> list[dict]:
    return [json.loads(f[b"r"]) for _id, f in await redis_client.xrange(keys.write_requests("opc"))]


async def audit_text(redis_client) -> str:
    return json.dumps(await read_audit(redis_client, 100))


async def test_the_requester_may_not_approve_their_own_write(runtime, redis_client):
    nonce = await held_for_approval(runtime)
    result = await approve_write(runtime, OLGA, nonce, "olga", PASSWORDS["olga"])
    assert result.state is WriteState.REFUSED and result.denied
    assert result.message.startswith("the approver must be someone other than olga")
    assert await sent(redis_client) == []
    entry = (await read_audit(redis_client, 1))[0]
    assert (entry["user"], entry["action"], entry["result"], entry["tag"], entry["new"], entry["comment"]) == (
        "olga", "write_approval", "refused", "T1.critical_sp", "55.0", "pump swap")
    assert "someone other than olga" in entry["reason"]
    # The write still waits, under the same nonce, for the right person.
    assert result.still_held and "the write still waits for an approver" in result.message
    assert await approved_and_answered(runtime, redis_client, nonce, "erik") == [("T1.critical_sp", 55.0, "erik")]


async def approved_and_answered(runtime, redis_client, nonce: str, approver: str) -> list[tuple]:
    """approve_write with a data source that confirms the write; (tag, value, approved_by) of what was sent."""
    async def data_source_answers():
        while not (requests := await sent(redis_client)):
            await asyncio.sleep(0.02)
        await answer_write(redis_client, WriteOutcome(requests[0]["request_id"], requests[0]["tag"],
                                                      WriteStatus.DONE, "", readback=requests[0]["value"]))

    answered = asyncio.create_task(data_source_answers())
    result = await approve_write(runtime, OLGA, nonce, approver, PASSWORDS[approver])
    await answered
    assert result.state is WriteState.DONE, result.message
    return [(r["tag"], r["value"], r["approved_by"]) for r in await sent(redis_client)]


async def test_a_refused_approver_leaves_the_write_waiting_only_for_the_time_it_had_left(runtime, redis_client):
    nonce = await held_for_approval(runtime)
    [key] = [k async for k in redis_client.scan_iter(match=keys.pending_write("*"))]
    await redis_client.pexpire(key, 1500)  # as if the write had waited most of its time already
    started = time.monotonic()
    refused = await approve_write(runtime, OLGA, nonce, "erik", "typo-typo")
    assert refused.still_held and re.search(r"\((1|2) s left\)", refused.message), refused.message
    # Put back for what was left after checking the password too (argon2 alone takes tens of ms).
    assert 0 < await redis_client.pttl(key) <= 1500 - (time.monotonic() - started) * 1000 + 10
    await asyncio.sleep(1.6)
    late = await approve_write(runtime, OLGA, nonce, "erik", PASSWORDS["erik"])
    assert late.message == NO_SUCH_PENDING_WRITE and await sent(redis_client) == []


async def test_a_wrong_approver_password_is_refused_and_never_recorded_and_a_retype_sends_it(runtime, redis_client):
    nonce = await held_for_approval(runtime)
    result = await approve_write(runtime, OLGA, nonce, "erik", "guess-guess")
    assert result.state is WriteState.REFUSED and "not verified: Wrong user name or password" in result.message
    assert await sent(redis_client) == []
    entry = (await read_audit(redis_client, 1))[0]
    assert (entry["action"], entry["result"]) == ("write_approval", "refused")
    assert entry["reason"] == "approver erik: wrong user name or password (1 failures)"
    assert "guess-guess" not in await audit_text(redis_client)
    assert await approved_and_answered(runtime, redis_client, nonce, "erik") == [("T1.critical_sp", 55.0, "erik")]


async def test_an_approver_name_that_is_no_account_is_not_recorded_as_typed(runtime, redis_client):
    result = await approve_write(runtime, OLGA, await held_for_approval(runtime), "erik-secret", "erik-secret")
    assert result.state is WriteState.REFUSED
    assert (await read_audit(redis_client, 1))[0]["reason"].startswith("approver (unknown name):")
    assert "erik-secret" not in await audit_text(redis_client)


async def test_approver_guesses_on_one_write_count_towards_the_login_lock_out(runtime, redis_client):
    nonce = await held_for_approval(runtime)
    for _ in range(MAX_FAILURES):
        assert (await approve_write(runtime, OLGA, nonce, "erik", "guess-guess")).still_held
    locked = await approve_write(runtime, OLGA, nonce, "erik", PASSWORDS["erik"])
    assert "Too many failed attempts" in locked.message and await sent(redis_client) == []
    # Erik is locked out for a while; another approver may still approve the waiting write.
    assert locked.still_held
    assert await approved_and_answered(runtime, redis_client, nonce, "otto") == [("T1.critical_sp", 55.0, "otto")]


@pytest.mark.parametrize(("approver", "why"), [
    ("vera", "vera is viewer: an approver must be operator or higher"),
    ("pia", "pia may not approve: T1.critical_sp is in area 'Tanks'; you may write a setpoint only in: Packing"),
])
async def test_an_approver_who_may_not_write_the_tag_is_refused(runtime, redis_client, approver, why):
    result = await approve_write(runtime, OLGA, await held_for_approval(runtime), approver, PASSWORDS[approver])
    assert result.state is WriteState.REFUSED and why in result.message
    assert await sent(redis_client) == []
    assert why in (await read_audit(redis_client, 1))[0]["reason"]


async def test_a_missing_name_or_password_or_a_foreign_nonce_sends_nothing(runtime, redis_client):
    assert "both needed" in (await approve_write(runtime, OLGA, await held_for_approval(runtime), "erik", "")).message
    nonce = await held_for_approval(runtime)
    otto = RequestIdentity(Session("otto", Role.OPERATOR, "csrf", 5), "10.0.0.8")
    assert (await approve_write(runtime, otto, nonce, "erik", PASSWORDS["erik"])).message == NO_SUCH_PENDING_WRITE
    assert (await approve_write(runtime, OLGA, "made-up", "erik", PASSWORDS["erik"])).message == NO_SUCH_PENDING_WRITE
    assert await sent(redis_client) == []


async def test_a_second_person_approves_with_their_password_and_the_write_is_sent_once(runtime, redis_client):
    nonce = await held_for_approval(runtime, 58.0, "pump swap")

    async def data_source_answers():
        while not (requests := await sent(redis_client)):
            await asyncio.sleep(0.02)
        await answer_write(redis_client, WriteOutcome(requests[0]["request_id"], requests[0]["tag"],
                                                      WriteStatus.DONE, "", readback=58.0))

    answered = asyncio.create_task(data_source_answers())
    result = await approve_write(runtime, OLGA, nonce, " erik ", PASSWORDS["erik"])
    await answered
    assert result.state is WriteState.DONE and result.readback == 58.0
    requests = await sent(redis_client)
    assert [(r["tag"], r["value"], r["user"], r["approved_by"], r["reason"]) for r in requests] == [
        ("T1.critical_sp", 58.0, "olga", "erik", "pump swap")]
    done, requested, approved = await read_audit(redis_client, 3)
    assert (approved["user"], approved["action"], approved["result"], approved["reason"]) == (
        "erik", "write_approved", "ok", "approved the write requested by olga")
    assert (requested["user"], requested["result"], requested["reason"], requested["comment"]) == (
        "olga", "requested", "approved by erik", "pump swap")
    assert (done["result"], done["reason"]) == ("done", "approved by erik")
    assert PASSWORDS["erik"] not in await audit_text(redis_client)
    assert (await approve_write(runtime, OLGA, nonce, "erik", PASSWORDS["erik"])).message == NO_SUCH_PENDING_WRITE
    assert len(await sent(redis_client)) == 1


async def test_the_write_is_checked_again_at_approval(runtime, redis_client):
    nonce = await held_for_approval(runtime, 55.0)
    await redis_client.hset(keys.user("olga"), "role", "viewer")  # olga's role taken away meanwhile
    demoted = RequestIdentity(Session("olga", Role.VIEWER, "csrf", OLGA.session.created_ms), "10.0.0.7")
    result = await approve_write(runtime, demoted, nonce, "erik", PASSWORDS["erik"])
    assert result.state is WriteState.REFUSED and "viewer" in result.message
    assert await sent(redis_client) == []
    # A write that no longer passes its checks ends there: it does not wait for another approver.
    assert not result.still_held
    assert (await approve_write(runtime, demoted, nonce, "otto", PASSWORDS["otto"])).message == NO_SUCH_PENDING_WRITE
