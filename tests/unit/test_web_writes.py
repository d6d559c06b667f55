"""Setpoint writes and acknowledgements decided on the server, against a real Redis."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from alarm_engine.commands import CommandOutcome, parse_command, queue_outcome
from domain.quality import GOOD
from domain.tag_value import TagValue
from tag_store import keys
from tag_store.write_requests import WriteOutcome, WriteStatus, answer_write
from tag_store.writer import TagStoreWriter
from tests.unit.web_plant import small_plant
from web.alarm_actions import acknowledge_alarms
from web.audit import read_audit
from web.auth import RequestIdentity
from web.roles import Role
from web.runtime import WebRuntime
from web.sessions import Session
from web.writes import WriteState, confirmation_step, execute_write


def identity(role: Role, user: str | None = None) -> RequestIdentity:
    return RequestIdentity(Session(user or role.value, role, "csrf", 0), "10.0.0.7")


@pytest.fixture
async def runtime(redis_server, redis_client):
    writer = TagStoreWriter(redis_client, 100)
    now = int(time.time() * 1000)
    writer.submit(TagValue("T1.setpoint", 50.0, GOOD, now, now))
    await writer.drain()
    rt = await WebRuntime(small_plant(write_timeout_s=0.5), redis_server.url).ensure_started()
    yield rt
    await rt.close()


async def write_requests(redis_client, source: str = "opc") -> list[dict]:
    return [json.loads(f[b"r"]) for _id, f in await redis_client.xrange(keys.write_requests(source))]


async def test_a_viewer_is_refused_and_nothing_is_sent(runtime, redis_client):
    result = await execute_write(runtime, identity(Role.VIEWER), "T1.setpoint", 55)
    assert result.state is WriteState.REFUSED and "viewer" in result.message
    assert await write_requests(redis_client) == []
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["action"], audit["result"], audit["user"], audit["tag"]) == ("write", "refused", "viewer",
                                                                               "T1.setpoint")


@pytest.mark.parametrize(("entry", "reason"), [
    ("nan", "finite"), ("inf", "finite"), ("abc", "not a number"), (95, "outside the operator limits"),
    (75, "step of 25 is larger than the allowed 20"), ("", "enter a value"),
])
async def test_bad_entries_are_refused_before_anything_is_sent(runtime, redis_client, entry, reason):
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", entry)
    assert step.pending is None and reason in step.status.message
    result = await execute_write(runtime, identity(Role.OPERATOR), "T1.setpoint", entry)
    assert result.state is WriteState.REFUSED
    assert await write_requests(redis_client) == []


async def test_unknown_or_read_only_tags_are_refused(runtime, redis_client):
    assert "no tag" in (await execute_write(runtime, identity(Role.ADMIN), "nope", 1)).message
    assert "not writable" in (await execute_write(runtime, identity(Role.ADMIN), "T1.level", 1)).message
    assert (await execute_write(runtime, identity(Role.ADMIN), {"forged": 1}, 1)).state is WriteState.REFUSED
    assert await write_requests(redis_client) == []


async def test_confirmation_shows_old_and_new_value_with_unit(runtime):
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", "60")
    assert step.pending == {"tag": "T1.setpoint", "value": 60.0}
    assert step.question == "T1.setpoint: 50.0 % -> 60.0 %"


async def test_an_operators_write_is_sent_and_the_verified_answer_reported(runtime, redis_client):
    async def data_source_answers():
        while not (requests := await write_requests(redis_client)):
            await asyncio.sleep(0.02)
        request = requests[0]
        await answer_write(redis_client, WriteOutcome(request["request_id"], request["tag"], WriteStatus.DONE,
                                                      "", readback=60.0))

    responder = asyncio.create_task(data_source_answers())
    result = await execute_write(runtime, identity(Role.OPERATOR, "olga"), "T1.setpoint", 60.0)
    await responder
    assert result.state is WriteState.DONE and "60.0 %" in result.message
    request = (await write_requests(redis_client))[0]
    assert (request["tag"], request["value"], request["user"]) == ("T1.setpoint", 60.0, "olga")
    done, requested = await read_audit(redis_client, 2)
    assert (requested["result"], requested["old"], requested["new"]) == ("requested", "50.0", "60.0")
    assert done["result"] == "done"


async def test_no_answer_is_reported_as_such(runtime, redis_client):
    result = await execute_write(runtime, identity(Role.OPERATOR), "P1.run", "on")
    assert result.state is WriteState.NO_ANSWER
    assert (await write_requests(redis_client))[0]["value"] is True
    assert (await read_audit(redis_client, 1))[0]["result"] == "no_answer"


async def test_acknowledge_needs_an_operator_and_goes_to_the_alarm_engine(runtime, redis_client):
    refused = await acknowledge_alarms(runtime, identity(Role.VIEWER), ["T1.level:high_high"])
    assert not refused[0].accepted and "viewer" in refused[0].reason
    assert await redis_client.xlen(keys.ALARM_COMMANDS) == 0

    async def engine_answers():
        while not (entries := await redis_client.xrange(keys.ALARM_COMMANDS)):
            await asyncio.sleep(0.02)
        command = parse_command(entries[0][1])
        assert (command.alarm_id, command.user, command.comment) == ("T1.level:high_high", "olga", "seen it")
        pipe = redis_client.pipeline()
        queue_outcome(pipe, CommandOutcome(command.request_id, True))
        await pipe.execute()

    engine = asyncio.create_task(engine_answers())
    results = await acknowledge_alarms(runtime, identity(Role.OPERATOR, "olga"), ["T1.level:high_high"], "seen it")
    await engine
    assert results[0].accepted
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["action"], audit["result"], audit["tag"]) == ("acknowledge", "ok", "T1.level:high_high")


async def test_a_bad_value_that_still_carries_a_number_cannot_judge_the_step(runtime, redis_client):
    from domain.quality import BAD_NO_COMMUNICATION  # noqa: PLC0415

    writer = TagStoreWriter(redis_client, 100)
    now = int(time.time() * 1000)
    writer.submit(TagValue("T1.setpoint", 50.0, BAD_NO_COMMUNICATION, now, now))
    await writer.drain()
    deadline = time.monotonic() + 5
    while (runtime.live_cache.values.get("T1.setpoint") or {}).get("q") != BAD_NO_COMMUNICATION.code:
        assert time.monotonic() < deadline, "the live cache never saw the Bad value"
        await asyncio.sleep(0.05)
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", 55)
    assert step.pending is None and "step limit" in step.status.message
    result = await execute_write(runtime, identity(Role.OPERATOR), "T1.setpoint", 55)
    assert result.state is WriteState.REFUSED and "BadNoCommunication" in result.message
    assert await write_requests(redis_client) == []
