"""The alarm engine against a real Redis: values in, states out, restarts lose nothing."""
import asyncio
from pathlib import Path

import pytest

from alarm_engine.alarm_store import read_all_alarms
from alarm_engine.commands import UNKNOWN_ALARM, request_acknowledge
from alarm_engine.engine import AlarmEngine
from domain.alarms.records import AlarmState
from domain.config_loading import parse_config
from domain.quality import BAD_NO_COMMUNICATION, GOOD
from domain.tag_value import TagValue
from tag_store import keys
from tag_store.cancellation import cancel_and_wait
from tag_store.writer import TagStoreWriter

CONFIG = parse_config(
    """
sources:
  plc: {kind: opcua, endpoint: "opc.tcp://127.0.0.1:1", security: {policy: None, mode: None}}
tags:
  - name: R1.temp
    source: plc
    node_id: ns=2;s=T
    unit: degC
    alarms:
      high: {limit: 80, priority: 2, deadband: 1}
      low: {limit: 10, priority: 4}
  - name: R1.speed
    source: plc
    node_id: ns=2;s=S
""",
    Path("test.yaml"),
    {},
)


async def put(redis, tag, value, quality=GOOD):
    writer = TagStoreWriter(redis, 100)
    writer.submit(TagValue(tag, value, quality, 1, 1))
    await writer.drain()
    assert writer.stats.written == 1


async def wait_for_state(redis, alarm_id, state, timeout_s=10.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        records = {r.alarm_id: r for r in await read_all_alarms(redis)}
        if alarm_id in records and records[alarm_id].state is state:
            return records[alarm_id]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{alarm_id} never reached {state}; now {records.get(alarm_id)}")


async def journal(redis):
    return [(f[b"alarm_id"].decode(), f[b"transition"].decode()) for _, f in await redis.xrange(keys.ALARM_JOURNAL)]


@pytest.fixture
async def engine_task(redis_client):
    task = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    yield task
    await cancel_and_wait([task])


async def test_limit_violation_raises_an_alarm_that_an_operator_acknowledges(redis_client, engine_task):
    await put(redis_client, "R1.temp", 50)
    await wait_for_state(redis_client, "R1.temp:high", AlarmState.NORMAL)
    await put(redis_client, "R1.temp", 85)
    await wait_for_state(redis_client, "R1.temp:high", AlarmState.UNACK_ACTIVE)

    outcome = await request_acknowledge(redis_client, "R1.temp:high", "olga", "checking cooling")
    assert outcome.accepted, outcome.reason
    record = await wait_for_state(redis_client, "R1.temp:high", AlarmState.ACK_ACTIVE)
    assert (record.acknowledged_by, record.ack_comment) == ("olga", "checking cooling")

    refused = await request_acknowledge(redis_client, "R1.temp:low", "olga")
    assert not refused.accepted and "nothing to acknowledge" in refused.reason
    unknown = await request_acknowledge(redis_client, "R1.nothing:high", "olga")
    assert (unknown.accepted, unknown.reason, unknown.refused_as) == (False, "unknown alarm R1.nothing:high",
                                                                      UNKNOWN_ALARM)
    assert refused.refused_as == ""  # a refusal of the state model is the engine's plain answer

    await put(redis_client, "R1.temp", 60)
    await wait_for_state(redis_client, "R1.temp:high", AlarmState.NORMAL)
    assert [t for a, t in await journal(redis_client) if a == "R1.temp:high"] == ["T1", "T2", "T5"]


async def test_bad_input_freezes_the_state_and_is_flagged(redis_client, engine_task):
    await put(redis_client, "R1.temp", 90)
    await wait_for_state(redis_client, "R1.temp:high", AlarmState.UNACK_ACTIVE)
    await put(redis_client, "R1.temp", None, BAD_NO_COMMUNICATION)
    for _ in range(50):
        record = {r.alarm_id: r for r in await read_all_alarms(redis_client)}["R1.temp:high"]
        if record.input_bad:
            break
        await asyncio.sleep(0.05)
    assert record.input_bad and record.state is AlarmState.UNACK_ACTIVE


async def test_engine_restart_loses_no_state_and_misses_no_change(redis_client):
    first = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    await put(redis_client, "R1.temp", 95)
    await wait_for_state(redis_client, "R1.temp:high", AlarmState.UNACK_ACTIVE)
    assert (await request_acknowledge(redis_client, "R1.temp:high", "olga")).accepted
    await cancel_and_wait([first])

    # While the engine is down the value returns to normal and then violates the low limit.
    await put(redis_client, "R1.temp", 50)
    await put(redis_client, "R1.temp", 5)

    second = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    try:
        await wait_for_state(redis_client, "R1.temp:high", AlarmState.NORMAL)
        low = await wait_for_state(redis_client, "R1.temp:low", AlarmState.UNACK_ACTIVE)
        assert low.last_value == 5
        transitions = await journal(redis_client)
        assert transitions.count(("R1.temp:high", "T1")) == 1  # nothing evaluated twice
        assert ("R1.temp:high", "T5") in transitions
    finally:
        await cancel_and_wait([second])


async def test_engine_survives_redis_restart(redis_server, redis_client):
    from alarm_engine.engine import run_engine

    task = asyncio.create_task(run_engine(redis_server.url, CONFIG))
    try:
        await put(redis_client, "R1.temp", 95)
        await wait_for_state(redis_client, "R1.temp:high", AlarmState.UNACK_ACTIVE)
        await asyncio.to_thread(redis_server.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis_server.start)
        # State came back from the append-only file; the engine reconnected and goes on.
        await put(redis_client, "R1.temp", 50)
        await wait_for_state(redis_client, "R1.temp:high", AlarmState.RETURNED_UNACK, timeout_s=15)
        assert not task.done()
    finally:
        await cancel_and_wait([task])


async def test_a_command_sent_as_soon_as_the_first_alarm_shows_is_answered(redis_client):
    """The command group exists before any alarm is visible, so no early command is lost."""
    await put(redis_client, "R1.temp", 95)  # the alarm is already there when the engine starts
    engine = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    try:
        await wait_for_state(redis_client, "R1.temp:high", AlarmState.UNACK_ACTIVE)
        outcome = await request_acknowledge(redis_client, "R1.temp:high", "olga", timeout_s=3)
        assert outcome.accepted, outcome.reason
    finally:
        await cancel_and_wait([engine])
