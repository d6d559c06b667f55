"""Setpoint writes and acknowledgements decided on the server, against a real Redis.

The faceplate's road (Write… holds the write under a nonce, Confirm takes it back and checks
everything again) and the API's road (execute_write) refuse the same things, send the same
request and leave the same audit entries.
"""
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
from tests.unit.web_plant import write_safety_plant
from web.alarm_actions import acknowledge_alarms
from web.audit import read_audit
from web.auth import RequestIdentity
from web.pending_writes import NO_SUCH_PENDING_WRITE
from web.roles import Role
from web.runtime import WebRuntime
from web.sessions import Session
from web.writes import WriteState, confirm_pending, confirmation_step, execute_write

STARTING_VALUES = {"T1.setpoint": 50.0, "T1.reason_sp": 40.0, "T1.eng_sp": 30.0, "C1.speed_sp": 100.0,
                   "T1.critical_sp": 50.0}


def identity(role: Role, user: str | None = None, areas: tuple[str, ...] = (), created_ms: int = 0
             ) -> RequestIdentity:
    return RequestIdentity(Session(user or role.value, role, "csrf", created_ms, areas), "10.0.0.7")


async def put(redis_client, runtime: WebRuntime, tag: str, value, quality=GOOD) -> None:
    writer = TagStoreWriter(redis_client, 100)
    now = int(time.time() * 1000)
    writer.submit(TagValue(tag, value, quality, now, now))
    await writer.drain()
    deadline = time.monotonic() + 5
    while (runtime.live_cache.values.get(tag) or {}).get("q") != quality.code or \
            runtime.live_cache.values.get(tag, {}).get("v") != value:
        assert time.monotonic() < deadline, f"the live cache never saw {tag} = {value}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def runtime(redis_server, redis_client):
    writer = TagStoreWriter(redis_client, 100)
    now = int(time.time() * 1000)
    for tag, value in STARTING_VALUES.items():
        writer.submit(TagValue(tag, value, GOOD, now, now))
    await writer.drain()
    rt = await WebRuntime(write_safety_plant(write_timeout_s=0.5), redis_server.url).ensure_started()
    deadline = time.monotonic() + 5
    while any(t not in rt.live_cache.values for t in STARTING_VALUES):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    yield rt
    await rt.close()


async def write_requests(redis_client, source: str = "opc") -> list[dict]:
    return [json.loads(f[b"r"]) for _id, f in await redis_client.xrange(keys.write_requests(source))]


def answer_the_first_write(redis_client, status: WriteStatus = WriteStatus.DONE, reason: str = ""):
    """A stand-in data source: answers the first request in the stream (readback = the value)."""
    async def data_source_answers():
        while not (requests := await write_requests(redis_client)):
            await asyncio.sleep(0.02)
        request = requests[0]
        await answer_write(redis_client, WriteOutcome(request["request_id"], request["tag"], status, reason,
                                                      readback=request["value"]))
    return asyncio.create_task(data_source_answers())


async def test_a_viewer_is_refused_and_nothing_is_sent(runtime, redis_client):
    result = await execute_write(runtime, identity(Role.VIEWER), "T1.setpoint", 55)
    assert result.state is WriteState.REFUSED and "viewer" in result.message and result.denied
    step = await confirmation_step(runtime, identity(Role.VIEWER), "T1.setpoint", 55)
    assert step.nonce is None and "viewer" in step.status.message
    assert await write_requests(redis_client) == []
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["action"], audit["result"], audit["user"], audit["tag"]) == ("write", "refused", "viewer",
                                                                               "T1.setpoint")


@pytest.mark.parametrize(("entry", "reason"), [
    ("nan", "finite"), ("inf", "finite"), ("-inf", "finite"), (float("nan"), "finite"), ("abc", "not a number"),
    (95, "outside the operator limits 10 .. 90 %"), (5, "outside the operator limits"),
    (75, "step of 25 is larger than the allowed 20"), ("", "enter a value"), (True, "a number is needed"),
])
async def test_bad_entries_are_refused_before_anything_is_sent(runtime, redis_client, entry, reason):
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", entry)
    assert step.nonce is None and reason in step.status.message
    result = await execute_write(runtime, identity(Role.OPERATOR), "T1.setpoint", entry)
    assert result.state is WriteState.REFUSED and reason in result.message and not result.denied
    assert await write_requests(redis_client) == []
    assert (await read_audit(redis_client, 1))[0]["result"] == "refused"


async def test_unknown_or_read_only_tags_are_refused(runtime, redis_client):
    assert "no tag" in (await execute_write(runtime, identity(Role.ADMIN), "nope", 1)).message
    assert "not writable" in (await execute_write(runtime, identity(Role.ADMIN), "T1.level", 1)).message
    assert (await execute_write(runtime, identity(Role.ADMIN), {"forged": 1}, 1)).state is WriteState.REFUSED
    assert await write_requests(redis_client) == []


async def test_a_step_limit_is_refused_while_the_current_value_is_unknown(runtime, redis_client):
    await redis_client.hdel(keys.LATEST, "T1.setpoint")
    runtime.live_cache.values.pop("T1.setpoint", None)  # as after a restart before any value came
    result = await execute_write(runtime, identity(Role.OPERATOR), "T1.setpoint", 55)
    assert result.state is WriteState.REFUSED and "current value unknown (no value)" in result.message
    assert await write_requests(redis_client) == []


async def test_a_tags_write_role_and_the_users_areas_are_checked(runtime, redis_client):
    operator = await execute_write(runtime, identity(Role.OPERATOR), "T1.eng_sp", 35)
    assert operator.denied and "T1.eng_sp may be written by engineer or higher only" in operator.message
    tanks_only = identity(Role.ENGINEER, "tina", areas=("Tanks",))
    elsewhere = await execute_write(runtime, tanks_only, "C1.speed_sp", 120)
    assert elsewhere.denied and "area 'Packing'" in elsewhere.message and "only in: Tanks" in elsewhere.message
    step = await confirmation_step(runtime, tanks_only, "C1.speed_sp", 120)
    assert step.nonce is None and step.status.denied
    assert await write_requests(redis_client) == []
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["user"], audit["result"], audit["tag"]) == ("tina", "refused", "C1.speed_sp")
    answered = answer_the_first_write(redis_client)
    assert (await execute_write(runtime, tanks_only, "T1.eng_sp", 35)).state is WriteState.DONE
    await answered


async def test_confirmation_holds_the_write_on_the_server_and_shows_old_and_new(runtime, redis_client):
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", "60")
    assert step.question == "T1.setpoint: 50.0 % -> 60.0 %" and (step.old, step.new) == (50.0, 60.0)
    assert isinstance(step.nonce, str) and len(step.nonce) >= 24 and "60" not in step.nonce
    assert await write_requests(redis_client) == []  # nothing is sent before Confirm
    answered = answer_the_first_write(redis_client)
    outcome = await confirm_pending(runtime, identity(Role.OPERATOR), step.nonce)
    await answered
    assert outcome.result.state is WriteState.DONE and outcome.result.readback == 60.0
    assert "CONFIRMED by readback" in outcome.result.message
    assert [r["value"] for r in await write_requests(redis_client)] == [60.0]


async def test_a_confirm_with_a_made_up_used_or_foreign_nonce_sends_nothing(runtime, redis_client):
    olga = identity(Role.OPERATOR, "olga", created_ms=1)
    step = await confirmation_step(runtime, olga, "T1.setpoint", 55)
    for who, nonce in [(olga, "made-up"), (olga, {"tag": "T1.setpoint", "value": 55}), (olga, None),
                       (identity(Role.OPERATOR, "otto"), step.nonce),          # someone else
                       (identity(Role.OPERATOR, "olga", created_ms=2), step.nonce)]:  # olga's other session
        outcome = await confirm_pending(runtime, who, nonce)
        assert outcome.result.text == f"REFUSED: {NO_SUCH_PENDING_WRITE}", (who, nonce)
    assert await write_requests(redis_client) == []
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["action"], audit["result"], audit["reason"]) == ("write", "refused", NO_SUCH_PENDING_WRITE)
    answered = answer_the_first_write(redis_client)
    assert (await confirm_pending(runtime, olga, step.nonce)).result.state is WriteState.DONE  # still hers
    await answered
    used = await confirm_pending(runtime, olga, step.nonce)  # single use
    assert used.result.text == f"REFUSED: {NO_SUCH_PENDING_WRITE}"
    assert len(await write_requests(redis_client)) == 1


async def test_confirm_checks_against_the_value_now_not_when_it_was_asked(runtime, redis_client):
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", 65)
    assert step.nonce is not None
    await put(redis_client, runtime, "T1.setpoint", 30.0)  # moved meanwhile: 65 is now a step of 35
    outcome = await confirm_pending(runtime, identity(Role.OPERATOR), step.nonce)
    assert outcome.result.state is WriteState.REFUSED and "step of 35" in outcome.result.message
    assert await write_requests(redis_client) == []


async def test_a_role_taken_away_before_confirm_is_refused(runtime, redis_client):
    step = await confirmation_step(runtime, identity(Role.OPERATOR, "olga"), "T1.setpoint", 55)
    outcome = await confirm_pending(runtime, identity(Role.VIEWER, "olga"), step.nonce)
    assert outcome.result.denied and "viewer" in outcome.result.message
    assert await write_requests(redis_client) == []


async def test_a_reason_is_required_where_configured_and_recorded_as_the_comment(runtime, redis_client):
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.reason_sp", 45)
    none_given = await confirm_pending(runtime, identity(Role.OPERATOR), step.nonce, "   ")
    assert none_given.result.text == "REFUSED: a reason is required to write T1.reason_sp"
    api = await execute_write(runtime, identity(Role.OPERATOR), "T1.reason_sp", 45)
    assert api.message == "a reason is required to write T1.reason_sp"
    too_long = await execute_write(runtime, identity(Role.OPERATOR), "T1.reason_sp", 45, "x" * 501)
    assert "longer than 500" in too_long.message
    assert await write_requests(redis_client) == []
    answered = answer_the_first_write(redis_client)
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.reason_sp", 45)
    done = await confirm_pending(runtime, identity(Role.OPERATOR), step.nonce, " batch 17 needs it ")
    await answered
    assert done.result.state is WriteState.DONE
    assert (await write_requests(redis_client))[0]["reason"] == "batch 17 needs it"
    finished, requested = await read_audit(redis_client, 2)
    assert (requested["result"], requested["comment"]) == ("requested", "batch 17 needs it")
    assert (finished["result"], finished["comment"]) == ("done", "batch 17 needs it")


async def test_an_operators_write_is_sent_and_the_verified_answer_reported(runtime, redis_client):
    answered = answer_the_first_write(redis_client)
    result = await execute_write(runtime, identity(Role.OPERATOR, "olga"), "T1.setpoint", 60.0)
    await answered
    assert result.state is WriteState.DONE and "60.0 %" in result.message
    request = (await write_requests(redis_client))[0]
    assert (request["tag"], request["value"], request["user"]) == ("T1.setpoint", 60.0, "olga")
    done, requested = await read_audit(redis_client, 2)
    assert (requested["result"], requested["old"], requested["new"]) == ("requested", "50.0", "60.0")
    assert done["result"] == "done"


async def test_a_device_refusal_is_reported_with_its_reason(runtime, redis_client):
    answered = answer_the_first_write(redis_client, WriteStatus.REJECTED, "BadUserAccessDenied")
    result = await execute_write(runtime, identity(Role.OPERATOR), "T1.setpoint", 60.0)
    await answered
    assert result.text == "FAILED (refused by the device): BadUserAccessDenied"
    assert ((await read_audit(redis_client, 1))[0]["result"], (await read_audit(redis_client, 1))[0]["reason"]) == (
        "rejected", "BadUserAccessDenied")


async def test_a_write_nobody_answers_is_recorded_as_failed(runtime, redis_client):
    result = await execute_write(runtime, identity(Role.OPERATOR), "P1.run", "on")
    assert result.state is WriteState.NO_ANSWER
    assert (await write_requests(redis_client))[0]["value"] is True
    audit = (await read_audit(redis_client, 1))[0]
    assert audit["result"] == "failed" and audit["reason"].startswith("no answer: ")


async def test_a_write_the_device_never_confirms_is_recorded_as_failed(runtime, redis_client):
    answered = answer_the_first_write(redis_client, WriteStatus.TIMED_OUT, "readback 50.0 after 0.5 s")
    result = await execute_write(runtime, identity(Role.OPERATOR), "T1.setpoint", 60.0)
    await answered
    assert result.text == "TIMED OUT (write failed): readback 50.0 after 0.5 s"
    audit = (await read_audit(redis_client, 1))[0]
    assert (audit["result"], audit["reason"]) == ("failed", "timed out: readback 50.0 after 0.5 s")


async def test_a_critical_tag_is_not_written_without_a_second_person(runtime, redis_client):
    api = await execute_write(runtime, identity(Role.ADMIN), "T1.critical_sp", 55)
    assert api.state is WriteState.NEEDS_APPROVAL and "second person" in api.message
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.critical_sp", 55)
    outcome = await confirm_pending(runtime, identity(Role.OPERATOR), step.nonce)
    assert outcome.result.state is WriteState.NEEDS_APPROVAL and outcome.approval_nonce
    assert await write_requests(redis_client) == []
    # The approval's nonce is no Confirm nonce: confirming it again sends nothing either.
    again = await confirm_pending(runtime, identity(Role.OPERATOR), outcome.approval_nonce)
    assert again.result.message == NO_SUCH_PENDING_WRITE
    assert await write_requests(redis_client) == []


async def test_a_bad_value_that_still_carries_a_number_cannot_judge_the_step(runtime, redis_client):
    from domain.quality import BAD_NO_COMMUNICATION  # noqa: PLC0415

    await put(redis_client, runtime, "T1.setpoint", 50.0, BAD_NO_COMMUNICATION)
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", 55)
    assert step.nonce is None and "step limit" in step.status.message
    result = await execute_write(runtime, identity(Role.OPERATOR), "T1.setpoint", 55)
    assert result.state is WriteState.REFUSED and "BadNoCommunication" in result.message
    assert await write_requests(redis_client) == []


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
    assert (audit["action"], audit["result"], audit["tag"], audit["comment"]) == (
        "acknowledge", "ok", "T1.level:high_high", "seen it")


async def test_an_alarm_outside_the_users_areas_is_refused_and_audited(runtime, redis_client):
    from alarm_engine.alarm_store import queue_record_writes  # noqa: PLC0415
    from domain.alarms.records import AlarmRecord, AlarmState  # noqa: PLC0415
    from web.alarm_actions import describe_results, perform_alarm_action  # noqa: PLC0415

    now = int(time.time() * 1000)
    pipe = redis_client.pipeline()
    queue_record_writes(pipe, [
        AlarmRecord("T1.level:high_high", "T1.level", "high_high", 1, "Tank high", "Tanks", AlarmState.UNACK_ACTIVE,
                    True, state_since_ms=now),
        AlarmRecord("C1.count:high", "C1.count", "high", 2, "Too many", "Packing", AlarmState.UNACK_ACTIVE, True,
                    state_since_ms=now)], [])
    await pipe.execute()

    async def engine_answers():
        while not (entries := await redis_client.xrange(keys.ALARM_COMMANDS)):
            await asyncio.sleep(0.02)
        command = parse_command(entries[0][1])
        pipe = redis_client.pipeline()
        queue_outcome(pipe, CommandOutcome(command.request_id, True))
        await pipe.execute()
        return command

    engine = asyncio.create_task(engine_answers())
    tanks_only = identity(Role.OPERATOR, "tina", areas=("Tanks",))
    results = await perform_alarm_action(runtime, tanks_only, "acknowledge", ["T1.level:high_high", "C1.count:high"],
                                         "checked")
    assert (await engine).alarm_id == "T1.level:high_high"
    assert await redis_client.xlen(keys.ALARM_COMMANDS) == 1  # nothing asked for the Packing alarm
    by_id = {r.alarm_id: r for r in results}
    assert by_id["T1.level:high_high"].accepted and not by_id["C1.count:high"].accepted
    assert by_id["C1.count:high"].reason == ("C1.count:high is in area 'Packing';"
                                             " you may acknowledge alarms only in: Tanks")
    assert "REFUSED C1.count:high: C1.count:high is in area 'Packing'" in describe_results("acknowledge", results)
    audit = {a["tag"]: a for a in await read_audit(redis_client, 2)}
    assert (audit["C1.count:high"]["result"], audit["C1.count:high"]["comment"]) == ("refused", "checked")
    assert audit["T1.level:high_high"]["result"] == "ok"


def test_the_faceplate_says_why_a_user_may_not_write(runtime):
    from web.writes import why_not_write  # noqa: PLC0415

    tags = runtime.tags
    assert why_not_write(tags.tag("T1.setpoint"), None) == "Changing this value needs the operator role."
    assert why_not_write(tags.tag("T1.setpoint"), identity(Role.VIEWER).session) == (
        "Changing this value needs the operator role.")
    assert why_not_write(tags.tag("T1.eng_sp"), identity(Role.OPERATOR).session) == (
        "Only engineer or higher may write this tag; your role is operator.")
    assert why_not_write(tags.tag("T1.eng_sp"), identity(Role.ENGINEER).session) == ""
    limited = identity(Role.OPERATOR, areas=("Packing", "Utilities")).session
    assert why_not_write(tags.tag("T1.setpoint"), limited) == (
        "This tag is in area 'Tanks'; your account is limited to areas: Packing, Utilities.")
    assert why_not_write(tags.tag("C1.speed_sp"), limited) == ""


def test_the_confirmation_draws_the_value_now_and_the_proposed_one_on_the_range():
    from components.limit_bar import proposal_bar  # noqa: PLC0415

    plant = write_safety_plant()
    bar = proposal_bar(plant.tag("T1.setpoint"), 50.0, 65.0)
    track = bar.children[0]
    drawn = {c.className: c for c in track.children}
    assert drawn["sl-limitbar-oplimits"].style == {"left": "10.00%", "width": "80.00%"}
    assert drawn["sl-limitbar-marker sl-proposal-old"].style == {"left": "50.00%"}
    ghost = drawn["sl-limitbar-ghost"]
    assert ghost.style == {"left": "65.00%"} and ghost.title == "new 65.0 %"
    unknown_now = proposal_bar(plant.tag("T1.setpoint"), None, 65.0)
    assert [c.className for c in unknown_now.children[0].children] == ["sl-limitbar-oplimits", "sl-limitbar-ghost"]
    assert proposal_bar(plant.tag("P1.run"), False, True) is None  # no range to draw on


async def test_a_confirm_after_the_held_write_expired_sends_nothing(runtime, redis_client):
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", 55)
    [held] = [k async for k in redis_client.scan_iter(keys.PREFIX + "pending_write:*")]
    assert 110 < await redis_client.ttl(held) <= 120  # PENDING_TTL_S
    await redis_client.pexpire(held, 1)
    await asyncio.sleep(0.05)
    outcome = await confirm_pending(runtime, identity(Role.OPERATOR), step.nonce)
    assert outcome.result.text == f"REFUSED: {NO_SUCH_PENDING_WRITE}"
    assert await write_requests(redis_client) == []


async def test_two_confirms_of_one_held_write_at_once_send_it_once(runtime, redis_client):
    """A double click, or a replayed request racing the real one: the take is atomic."""
    step = await confirmation_step(runtime, identity(Role.OPERATOR), "T1.setpoint", 55)
    answered = answer_the_first_write(redis_client)
    outcomes = await asyncio.gather(*(confirm_pending(runtime, identity(Role.OPERATOR), step.nonce)
                                      for _ in range(5)))
    await answered
    states = sorted(o.result.state.name for o in outcomes)
    assert states == ["DONE", "REFUSED", "REFUSED", "REFUSED", "REFUSED"]
    assert len(await write_requests(redis_client)) == 1
