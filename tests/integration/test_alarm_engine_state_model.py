"""The alarm engine against a real Redis: every alarm type, operator actions through the
command stream, time-driven transitions, and a restart in the middle of a sequence."""
import asyncio
import time
from pathlib import Path

import pytest

from alarm_engine.alarm_store import read_all_alarms
from alarm_engine.commands import request_action
from alarm_engine.engine import AlarmEngine
from domain.alarms.records import AlarmState
from domain.config_loading import parse_config
from domain.quality import BAD_NO_COMMUNICATION, BAD_SENSOR_FAILURE, GOOD
from domain.tag_value import TagValue
from tag_store import keys
from tag_store.cancellation import cancel_and_wait
from tag_store.writer import TagStoreWriter

S = AlarmState
CONFIG = parse_config(
    """
sources:
  plc: {kind: opcua, endpoint: "opc.tcp://127.0.0.1:1", security: {policy: None, mode: None}}
alarm_system:
  max_shelve_s: 600
  bad_quality_default: null
tags:
  - name: R1.temp
    source: plc
    node_id: ns=2;s=T
    unit: degC
    alarms:
      high: {limit: 80, priority: 2, deadband: 1, latching: true}
      deviation: {setpoint_tag: R1.temp_sp, limit: 10, deadband: 1, priority: 3}
      rate_of_change: {limit_per_s: 2, window_s: 2, direction: rising, priority: 3}
      bad_quality: {priority: 1, on_delay_s: 0.5}
  - name: R1.temp_sp
    source: plc
    node_id: ns=2;s=TSP
  - name: P1.running
    source: plc
    node_id: ns=2;s=Run
    data_type: bool
    alarms:
      discrete: {normal: true, priority: 3, realarm_s: 1, ack_comment_required: true}
  - name: P1.flow
    source: plc
    node_id: ns=2;s=Flow
    alarms:
      low: {limit: 10, priority: 3, suppressed_when: {tag: P1.running, equals: false}}
""",
    Path("test.yaml"),
    {},
)


async def put(redis, tag, value, quality=GOOD, source_ms=None):
    now_ms = int(time.time() * 1000)
    writer = TagStoreWriter(redis, 100)
    writer.submit(TagValue(tag, value, quality, source_ms or now_ms, now_ms))
    await writer.drain()


async def wait_for_state(redis, alarm_id, state, timeout_s=10.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    records = {}
    while asyncio.get_running_loop().time() < deadline:
        records = {r.alarm_id: r for r in await read_all_alarms(redis)}
        if alarm_id in records and records[alarm_id].state is state:
            return records[alarm_id]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{alarm_id} never reached {state}; now {records.get(alarm_id)}")


async def journal(redis, alarm_id):
    return [(f[b"transition"].decode(), f[b"to_state"].decode(), f[b"user"].decode(), f[b"comment"].decode())
            for _, f in await redis.xrange(keys.ALARM_JOURNAL) if f[b"alarm_id"].decode() == alarm_id]


async def act(redis, action, alarm_id, user="olga", comment=None, **kwargs):
    return await request_action(redis, action, alarm_id, user, comment, timeout_s=5, **kwargs)


@pytest.fixture
async def engine(redis_client):
    task = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    await put(redis_client, "P1.running", True)
    await put(redis_client, "R1.temp_sp", 50.0)
    yield task
    await cancel_and_wait([task])


async def test_latching_alarm_needs_acknowledge_then_reset(redis_client, engine):
    await put(redis_client, "R1.temp", 85.0)
    await wait_for_state(redis_client, "R1.temp:high", S.UNACK_ACTIVE)
    await put(redis_client, "R1.temp", 60.0)
    await wait_for_state(redis_client, "R1.temp:high", S.LATCHED_UNACK)
    refused = await act(redis_client, "reset", "R1.temp:high")
    assert not refused.accepted and "must be acknowledged before" in refused.reason
    assert (await act(redis_client, "acknowledge", "R1.temp:high")).accepted
    await wait_for_state(redis_client, "R1.temp:high", S.LATCHED_ACK)
    repeat = await act(redis_client, "acknowledge", "R1.temp:high", user="piet")
    assert repeat.accepted and "already acknowledged by olga" in repeat.reason
    assert (await act(redis_client, "reset", "R1.temp:high", comment="checked")).accepted
    await wait_for_state(redis_client, "R1.temp:high", S.NORMAL)
    moves = [m[0] for m in await journal(redis_client, "R1.temp:high")]
    assert moves == ["T1", "T4", "T10", "T11"]


async def test_deviation_follows_the_setpoint_tag(redis_client, engine):
    await put(redis_client, "R1.temp", 55.0)
    await asyncio.sleep(0.3)
    await put(redis_client, "R1.temp_sp", 70.0)  # only the setpoint moves: deviation 15
    await wait_for_state(redis_client, "R1.temp:deviation", S.UNACK_ACTIVE)
    await put(redis_client, "R1.temp_sp", 60.5)  # deviation 5.5: clear of limit - deadband
    await wait_for_state(redis_client, "R1.temp:deviation", S.RETURNED_UNACK)


async def test_rate_of_change_over_source_time(redis_client, engine):
    start_ms = int(time.time() * 1000)
    for i, value in enumerate([50.0, 50.5, 51.0]):  # 1 degC/s: below 2/s
        await put(redis_client, "R1.temp", value, source_ms=start_ms + i * 1000)
    await asyncio.sleep(0.5)
    assert {r.alarm_id: r for r in await read_all_alarms(redis_client)}["R1.temp:rate_of_change"].state is S.NORMAL
    await put(redis_client, "R1.temp", 58.0, source_ms=start_ms + 3000)  # +7 in 2 s: 3.5/s
    await wait_for_state(redis_client, "R1.temp:rate_of_change", S.UNACK_ACTIVE)


async def test_bad_quality_is_an_alarm_of_its_own_and_freezes_the_others(redis_client, engine):
    await put(redis_client, "R1.temp", 85.0)
    await wait_for_state(redis_client, "R1.temp:high", S.UNACK_ACTIVE)
    await put(redis_client, "R1.temp", None, BAD_SENSOR_FAILURE)
    bad = await wait_for_state(redis_client, "R1.temp:bad_quality", S.UNACK_ACTIVE)  # after its 0.5 s on-delay
    high = {r.alarm_id: r for r in await read_all_alarms(redis_client)}["R1.temp:high"]
    assert bad.priority == 1 and high.state is S.UNACK_ACTIVE and high.input_bad
    await put(redis_client, "R1.temp", 60.0)
    await wait_for_state(redis_client, "R1.temp:bad_quality", S.RETURNED_UNACK)


async def test_design_suppression_hides_the_alarm_while_the_pump_is_stopped(redis_client, engine):
    await put(redis_client, "P1.flow", 50.0)
    await put(redis_client, "P1.running", False)  # the pump stops: no flow is expected
    await wait_for_state(redis_client, "P1.flow:low", S.SUPPRESSED)
    await put(redis_client, "P1.flow", 0.0)
    await asyncio.sleep(0.3)
    assert {r.alarm_id: r for r in await read_all_alarms(redis_client)}["P1.flow:low"].state is S.SUPPRESSED
    refused = await act(redis_client, "acknowledge", "P1.flow:low")
    assert not refused.accepted and "suppressed by design" in refused.reason
    await put(redis_client, "P1.running", True)  # running again and still no flow: annunciated now
    await wait_for_state(redis_client, "P1.flow:low", S.UNACK_ACTIVE)
    assert [m[0] for m in await journal(redis_client, "P1.flow:low")] == ["T14", "T14"]


async def test_a_bad_suppressing_input_never_hides_an_alarm(redis_client, engine):
    await put(redis_client, "P1.running", False, BAD_NO_COMMUNICATION)
    await put(redis_client, "P1.flow", 0.0)
    await wait_for_state(redis_client, "P1.flow:low", S.UNACK_ACTIVE)


async def test_realarm_and_required_comment(redis_client, engine):
    await put(redis_client, "P1.running", False)
    await wait_for_state(redis_client, "P1.running:discrete", S.UNACK_ACTIVE)
    refused = await act(redis_client, "acknowledge", "P1.running:discrete")
    assert not refused.accepted and "needs a comment" in refused.reason
    assert (await act(redis_client, "acknowledge", "P1.running:discrete", comment="stopped for cleaning")).accepted
    await wait_for_state(redis_client, "P1.running:discrete", S.ACK_ACTIVE)
    await wait_for_state(redis_client, "P1.running:discrete", S.UNACK_ACTIVE, timeout_s=5)  # re-alarm after 1 s
    moves = await journal(redis_client, "P1.running:discrete")
    assert [m[0] for m in moves] == ["T1", "T2", "T7"]
    assert moves[1][2:] == ("olga", "stopped for cleaning")


async def test_shelve_unshelve_and_out_of_service_through_commands(redis_client, engine):
    await put(redis_client, "R1.temp", 85.0)
    await wait_for_state(redis_client, "R1.temp:high", S.UNACK_ACTIVE)
    no_comment = await act(redis_client, "shelve", "R1.temp:high", duration_s=60)
    assert not no_comment.accepted and "needs a comment" in no_comment.reason
    too_long = await act(redis_client, "shelve", "R1.temp:high", comment="x", duration_s=601)
    assert not too_long.accepted and "at most 10 min" in too_long.reason
    assert (await act(redis_client, "shelve", "R1.temp:high", comment="sensor check", duration_s=60)).accepted
    shelved = await wait_for_state(redis_client, "R1.temp:high", S.SHELVED)
    assert (shelved.shelved_by, shelved.shelve_comment) == ("olga", "sensor check")
    assert (await act(redis_client, "unshelve", "R1.temp:high")).accepted
    await wait_for_state(redis_client, "R1.temp:high", S.UNACK_ACTIVE)  # still active: annunciated again
    assert (await act(redis_client, "remove_from_service", "R1.temp:high", "erik", "transmitter swap")).accepted
    await wait_for_state(redis_client, "R1.temp:high", S.OUT_OF_SERVICE)
    await put(redis_client, "R1.temp", 60.0)
    await asyncio.sleep(0.3)
    assert (await act(redis_client, "return_to_service", "R1.temp:high", "erik")).accepted
    await wait_for_state(redis_client, "R1.temp:high", S.NORMAL)
    unknown = await act(redis_client, "dance", "R1.temp:high")
    assert not unknown.accepted and "unknown action" in unknown.reason
    moves = await journal(redis_client, "R1.temp:high")
    assert [m[0] for m in moves] == ["T1", "T12", "T13", "T15", "T15"]
    assert moves[3][2:] == ("erik", "transmitter swap")


async def test_restart_mid_sequence_keeps_shelves_and_latches_and_ends_them_on_time(redis_client):
    first = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    await put(redis_client, "P1.running", True)
    await put(redis_client, "R1.temp_sp", 85.0)
    await put(redis_client, "R1.temp", 85.0)
    await wait_for_state(redis_client, "R1.temp:high", S.UNACK_ACTIVE)
    assert (await act(redis_client, "acknowledge", "R1.temp:high")).accepted
    await put(redis_client, "P1.running", False)
    await wait_for_state(redis_client, "P1.running:discrete", S.UNACK_ACTIVE)
    assert (await act(redis_client, "shelve", "P1.running:discrete", comment="planned stop", duration_s=2)).accepted
    await wait_for_state(redis_client, "P1.running:discrete", S.SHELVED)
    await cancel_and_wait([first])

    await put(redis_client, "R1.temp", 60.0)  # clears while the engine is down: latches (T6)
    await asyncio.sleep(2.2)  # the shelve ends while the engine is down

    second = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    try:
        await wait_for_state(redis_client, "R1.temp:high", S.LATCHED_ACK)
        # Back from the shelf, the pump still stopped: annunciated again (T13 -> B).
        await wait_for_state(redis_client, "P1.running:discrete", S.UNACK_ACTIVE)
        outcome = await act(redis_client, "reset", "R1.temp:high")
        assert outcome.accepted, outcome.reason
        await wait_for_state(redis_client, "R1.temp:high", S.NORMAL)
        assert [m[0] for m in await journal(redis_client, "R1.temp:high")] == ["T1", "T2", "T6", "T11"]
        assert [m[0] for m in await journal(redis_client, "P1.running:discrete")] == ["T1", "T12", "T13"]
    finally:
        await cancel_and_wait([second])


async def test_the_engine_says_it_is_alive_and_how_far_behind_it_is(redis_client, engine):
    await put(redis_client, "R1.temp", 50.0)
    deadline = asyncio.get_running_loop().time() + 5
    status = {}
    while asyncio.get_running_loop().time() < deadline:
        status = {k.decode(): int(v) for k, v in (await redis_client.hgetall(keys.ALARM_ENGINE_STATUS)).items()}
        if status and time.time() * 1000 - status["heartbeat_ms"] < 1500:
            break
        await asyncio.sleep(0.2)
    assert status["alarms"] == 6 and 0 <= status["lag_ms"] < 5000, status


async def test_a_restart_after_the_feed_was_trimmed_judges_the_current_values(redis_client):
    first = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    await put(redis_client, "R1.temp", 50.0)
    await wait_for_state(redis_client, "R1.temp:high", S.NORMAL)
    await asyncio.sleep(0.3)
    await cancel_and_wait([first])
    await put(redis_client, "R1.temp", 90.0)  # while down; then the feed forgets it
    await put(redis_client, "R1.temp_sp", 50.0)
    newest = (await redis_client.xrevrange(keys.CHANGES, count=1))[0][0]
    await redis_client.xtrim(keys.CHANGES, minid=newest)
    second = asyncio.create_task(AlarmEngine(redis_client, CONFIG).run())
    try:
        await wait_for_state(redis_client, "R1.temp:high", S.UNACK_ACTIVE)
    finally:
        await cancel_and_wait([second])


async def test_a_running_engine_that_fell_behind_the_feed_judges_the_current_values(redis_client):
    engine = AlarmEngine(redis_client, CONFIG)
    task = asyncio.create_task(engine.run())
    try:
        await put(redis_client, "R1.temp", 50.0)
        await wait_for_state(redis_client, "R1.temp:high", S.NORMAL)
        # The engine has read that change (a record is NORMAL before it has read anything; moving
        # its cursor back before then would let it read the change after all, and judge nothing new).
        newest = (await redis_client.xrevrange(keys.CHANGES, count=1))[0][0].decode()
        deadline = time.monotonic() + 10
        while engine._cursor != newest and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert engine._cursor == newest
        # As if the engine had stalled while the capped feed moved on: its position is no longer
        # in the feed, and a change it never saw is only in the latest values.
        engine._cursor = "1-0"
        now_ms = int(time.time() * 1000)
        await redis_client.hset(keys.LATEST, "R1.temp",
                                f'{{"v": 95.0, "q": 0, "ts": {now_ms}, "rt": {now_ms}}}')
        await wait_for_state(redis_client, "R1.temp:high", S.UNACK_ACTIVE)
    finally:
        await cancel_and_wait([task])
