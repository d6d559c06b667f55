"""The alarm engine's device-alarm input against a real Redis: events in as a source writes them.

No OPC UA here (tests/integration/test_opcua_device_alarms.py has the whole road): the events go
through the same outbox and stream a source uses, so the engine's side can be tested on its own:
restarts keep device alarms, a refresh drops what the device no longer has, and an acknowledge
nobody answers is answered as such.
"""
import asyncio
import json
import time
from pathlib import Path

from alarm_engine.alarm_store import read_all_alarms
from alarm_engine.commands import request_acknowledge
from alarm_engine.engine import AlarmEngine
from domain.alarms.records import AlarmState
from domain.config_loading import parse_config
from domain.device_alarms import ConditionEvent, SourceEvent
from tag_store import keys
from tag_store.device_alarms import DeviceAckRequest, DeviceAlarmOutbox
from tests.integration.data_source_helpers import running

CONFIG = parse_config("""
sources:
  plc:
    kind: opcua
    endpoint: "opc.tcp://127.0.0.1:1"
    security: {policy: None, mode: None}
    device_alarms: {area: Utilities, priority_from_severity: [900, 500, 100]}
tags:
  - {name: R1.temp, source: plc, node_id: "ns=2;s=T", alarms: {high: {limit: 80}}}
""", Path("test.yaml"), {})
HIGH = ConditionEvent(source="plc", condition="ns=2;s=HighAlarm", tag="R1.temp", name="HighAlarm",
                      message="Temperature high", severity=950, time_ms=1_000, retain=True, active=True, acked=False)
PUMP = ConditionEvent(source="plc", condition="ns=2;s=PumpTrip", tag="P1", name="PumpTrip",
                      message="Pump tripped", severity=300, time_ms=1_000, retain=True, active=True, acked=True)


async def send(redis, *events) -> None:
    """What the source's device alarm handler does with its outbox."""
    outbox = DeviceAlarmOutbox()
    for event in events:
        outbox.put(event)
    assert await outbox.flush(redis) == len(events)


async def wait_for(redis, accept, what: str, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = {r.alarm_id: r for r in await read_all_alarms(redis)}
        if accept(records):
            return records
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout_s} s; records: {records}")


async def test_device_alarms_survive_a_restart_and_a_refresh_drops_what_the_device_no_longer_has(redis_client):
    # Sent before the engine ever ran: the engine's group starts at the stream's beginning.
    await send(redis_client, HIGH, PUMP)
    async with running(AlarmEngine(redis_client, CONFIG).run()):
        records = await wait_for(redis_client, lambda r: "plc:ns=2;s=PumpTrip" in r and "plc:ns=2;s=HighAlarm" in r,
                                 "both device alarms")
    high, pump = records["plc:ns=2;s=HighAlarm"], records["plc:ns=2;s=PumpTrip"]
    assert (high.state, high.priority, high.area) == (AlarmState.UNACK_ACTIVE, 1, "Utilities")
    assert (pump.state, pump.priority) == (AlarmState.ACK_ACTIVE, 3)
    assert "R1.temp:high" in records  # the configured limit alarm is untouched

    # A restarted engine keeps them (they are not in the plant file, but their source follows device alarms).
    async with running(AlarmEngine(redis_client, CONFIG).run()):
        await asyncio.sleep(0.3)
        assert {"plc:ns=2;s=PumpTrip", "plc:ns=2;s=HighAlarm"} <= {r.alarm_id for r in await read_all_alarms(
            redis_client)}
        await send(redis_client, SourceEvent("plc", "lost", 2_000, 0x80050000, "BadCommunicationError"))
        await wait_for(redis_client, lambda r: r["plc:ns=2;s=PumpTrip"].input_bad and r[
            "plc:ns=2;s=HighAlarm"].input_bad, "both not live")
        # The new session's refresh sends only the pump trip: the high alarm is gone, the pump trip live again.
        await send(redis_client, SourceEvent("plc", "refresh_start", 3_000), PUMP,
                   SourceEvent("plc", "refresh_end", 3_001, conditions=("ns=2;s=PumpTrip",)))
        records = await wait_for(redis_client, lambda r: "plc:ns=2;s=HighAlarm" not in r, "the high alarm gone")
        assert not records["plc:ns=2;s=PumpTrip"].input_bad
    journal = [(f[b"alarm_id"].decode(), f[b"transition"].decode(), f[b"comment"].decode())
               for _, f in await redis_client.xrange(keys.ALARM_JOURNAL)]
    assert journal == [("plc:ns=2;s=HighAlarm", "T1", ""), ("plc:ns=2;s=PumpTrip", "A>C", ""),
                       ("plc:ns=2;s=HighAlarm", "B>A", "no longer retained by the device (condition refresh)")]


async def test_an_acknowledge_goes_to_the_source_and_one_nobody_answers_is_answered_as_such(redis_client):
    await send(redis_client, HIGH)
    async with running(AlarmEngine(redis_client, CONFIG).run()):
        await wait_for(redis_client, lambda r: "plc:ns=2;s=HighAlarm" in r, "the device alarm")
        started = time.monotonic()
        outcome = await request_acknowledge(redis_client, "plc:ns=2;s=HighAlarm", "alice", "seen", timeout_s=5.0)
        assert not outcome.accepted and "data source plc did not answer" in outcome.reason
        assert time.monotonic() - started < 5.0  # the engine answers before the web app gives up
        # The engine did not decide it: still unacknowledged, and the request waits on the source's stream.
        records = {r.alarm_id: r for r in await read_all_alarms(redis_client)}
        assert records["plc:ns=2;s=HighAlarm"].state is AlarmState.UNACK_ACTIVE
        [(_entry_id, fields)] = await redis_client.xrange(keys.device_acks("plc"))
        request = DeviceAckRequest(**json.loads(fields[b"r"]))
        assert (request.condition, request.user, request.comment) == ("ns=2;s=HighAlarm", "alice", "seen")
