"""The alarm engine loop: tag changes in, alarm state and journal out, commands answered.

State survives restarts: every change of records is written together with the
position in the change feed it came from, so a restarted engine resumes where
the last one stopped and evaluates nothing twice, and nothing is lost.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from typing import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from alarm_engine.actions import decide_command
from alarm_engine.alarm_catalog import AlarmCatalog, build_catalog
from alarm_engine.alarm_store import decode_record, queue_record_writes
from alarm_engine.commands import parse_command, queue_outcome
from alarm_engine.device_alarm_input import DeviceAlarmInput
from domain.alarms import state_model
from domain.alarms.conditions import AlarmInput, as_number, is_suppressed, raw_condition
from domain.alarms.records import AlarmRecord, AlarmTransition
from domain.config_model import PlantConfig
from domain.quality import BAD_NO_COMMUNICATION, Quality, quality_from_code
from tag_store import keys
from tag_store.cancellation import cancel_and_wait

log = logging.getLogger(__name__)

COMMAND_GROUP = "alarm_engine"
TICK_S = 0.25
HEARTBEAT_S = 1.0
NO_INPUT: tuple[object, Quality] = (None, BAD_NO_COMMUNICATION)  # never seen: no value, no communication


class AlarmEngine:
    def __init__(self, redis: aioredis.Redis, config: PlantConfig, clock_ms: Callable[[], int] | None = None):
        self._redis = redis
        self._catalog: AlarmCatalog = build_catalog(config)
        self._alarms = self._catalog.alarms
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.records: dict[str, AlarmRecord] = {}
        # Latest input per tag (value, quality): delays, deviation setpoints and design
        # suppression need other tags' values between their changes.
        self._inputs: dict[str, tuple[object, Quality]] = {}
        # alarm id -> when time alone next changes it (delay, re-alarm, shelve end)
        self._deadlines: dict[str, int] = {}
        self._cursor: str = "0-0"
        # Serialises "decide, then persist", so Redis always holds states in decision order.
        self._lock = asyncio.Lock()
        # Alarms a device decides (OPC UA Alarms & Conditions): mirrored into the same records.
        self._device = DeviceAlarmInput(redis, config, self.records, self._lock, self._clock_ms)

    async def load(self) -> None:
        """Restore persisted records and the feed position; add records for new alarms."""
        # Before any alarm can be seen: a command sent after that must find the group in place.
        await self._ensure_command_group()
        await self._device.ensure_group()
        now = self._clock_ms()
        stored = await self._redis.hgetall(keys.ALARMS)
        for raw in stored.values():
            record = decode_record(raw)
            if record.alarm_id in self._alarms:
                self.records[record.alarm_id] = self._with_current_config(record)
            elif self._device.owns(record):
                self.records[record.alarm_id] = record
        removed = [k.decode() for k in stored if k.decode() not in self.records]
        for alarm_id, alarm in self._alarms.items():
            if alarm_id not in self.records:
                self.records[alarm_id] = alarm.new_record(now)
        for alarm_id in self._alarms:
            self._update_deadline(alarm_id)
        pipe = self._redis.pipeline(transaction=False)
        if removed:
            pipe.hdel(keys.ALARMS, *removed)
        queue_record_writes(pipe, list(self.records.values()), [])
        await pipe.execute()
        cursor = await self._redis.get(keys.ALARM_ENGINE_CURSOR)
        oldest = await self._redis.xrange(keys.CHANGES, count=1)
        if cursor is None:
            await self._evaluate_snapshot()
        elif oldest and stream_id_older(cursor.decode(), oldest[0][0].decode()):
            # Down longer than the feed keeps: changes were missed; judge the current values instead.
            log.warning("alarm engine: the change feed no longer holds change %s (down too long?);"
                        " evaluating the current values", cursor.decode())
            await self._evaluate_snapshot()
        else:
            self._cursor = cursor.decode()
            await self._seed_inputs()
        log.info("alarm engine: %d alarms configured, resuming after change %s", len(self._alarms), self._cursor)

    def _with_current_config(self, record: AlarmRecord) -> AlarmRecord:
        """Keep the persisted state, but take priority, text and area from today's configuration."""
        alarm = self._alarms[record.alarm_id]
        return replace(record, priority=alarm.alarm.priority, message=alarm.message, area=alarm.area)

    async def _seed_inputs(self) -> None:
        """After a restart: the latest value of every tag an alarm reads, for setpoints and suppression."""
        names = sorted(self._catalog.input_tags)
        if not names:
            return
        for name, raw in zip(names, await self._redis.hmget(keys.LATEST, names)):
            if raw is not None:
                self._remember_input(name, json.loads(raw))

    async def _evaluate_snapshot(self) -> None:
        """First start: judge the current values, then follow the feed from its newest entry."""
        newest = await self._redis.xrevrange(keys.CHANGES, count=1)
        latest = await self._redis.hgetall(keys.LATEST)
        batch = {k.decode(): json.loads(v) for k, v in latest.items()}
        cursor = newest[0][0].decode() if newest else "0-0"
        await self._apply_batch(batch, cursor)

    async def run(self) -> None:
        await self.load()
        loops = [asyncio.create_task(loop()) for loop in (
            self._follow_changes, self._serve_commands, self._tick, self._heartbeat, self._device.run)]
        try:
            # If one loop fails (Redis gone) the others stop with it, and its error propagates.
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            # Not a TaskGroup: on Python 3.11 a loop inside redis-py can swallow one cancellation.
            # The clean-up itself is shielded: a repeated cancel of run() must not leave a loop
            # behind, answering commands from a stale memory of the records.
            cleanup = asyncio.ensure_future(cancel_and_wait(loops))
            while not cleanup.done():
                try:
                    await asyncio.shield(cleanup)
                except asyncio.CancelledError:
                    continue

    async def _follow_changes(self) -> None:
        while True:
            # The feed's oldest entry with each read: a cursor older than it means changes were
            # trimmed before they were judged, which the read itself would silently skip.
            pipe = self._redis.pipeline(transaction=False)
            pipe.xrange(keys.CHANGES, count=1)
            pipe.xread({keys.CHANGES: self._cursor}, block=1000, count=200)
            oldest, replies = await pipe.execute()
            if await self._recover_if_behind(oldest[0][0].decode() if oldest else None):
                continue
            for _stream, entries in replies or []:
                for entry_id, fields in entries:
                    if not stream_id_older(self._cursor, entry_id.decode()):
                        continue  # already judged (the feed was re-based on the current values meanwhile)
                    await self._apply_batch(json.loads(fields[b"b"]), entry_id.decode())

    def _remember_input(self, tag: str, encoded: dict) -> Quality:
        quality = quality_from_code(int(encoded["q"]))
        self._inputs[tag] = (encoded.get("v"), quality)
        return quality

    async def _apply_batch(self, batch: dict[str, dict], cursor: str) -> None:
        now = self._clock_ms()
        async with self._lock:
            changed: dict[str, AlarmRecord] = {}
            transitions: list[AlarmTransition] = []
            touched: set[str] = set()
            for tag, encoded in batch.items():
                inputs_of = self._catalog.by_input_tag.get(tag)
                suppressed_by = self._catalog.by_suppressing_tag.get(tag)
                if not inputs_of and not suppressed_by:
                    continue
                quality = self._remember_input(tag, encoded)
                for alarm_id in inputs_of or ():
                    window = self._catalog.rate_windows.get(alarm_id)
                    if window is not None and self._alarms[alarm_id].tag == tag and not quality.is_bad:
                        number = as_number(encoded.get("v"))
                        if number is not None:
                            window.add(int(encoded.get("ts") or now), number)
                    touched.add(alarm_id)
                for alarm_id in suppressed_by or ():
                    self._apply(alarm_id, self._judge_suppression(alarm_id, now), changed, transitions)
            for alarm_id in touched:
                self._apply(alarm_id, self._evaluate(alarm_id, now), changed, transitions)
            self._cursor = cursor
            pipe = self._redis.pipeline(transaction=True)
            queue_record_writes(pipe, list(changed.values()), transitions)
            pipe.set(keys.ALARM_ENGINE_CURSOR, cursor)
            await pipe.execute()

    def _input_for(self, alarm_id: str) -> AlarmInput:
        alarm = self._alarms[alarm_id]
        value, quality = self._inputs.get(alarm.tag, NO_INPUT)
        setpoint = None
        if alarm.setpoint_tag is not None:
            sp_value, sp_quality = self._inputs.get(alarm.setpoint_tag, NO_INPUT)
            setpoint = None if sp_quality.is_bad else as_number(sp_value)
        window = self._catalog.rate_windows.get(alarm_id)
        return AlarmInput(value, quality, setpoint, window.rate_per_s() if window is not None else None)

    def _evaluate(self, alarm_id: str, now: int) -> tuple[AlarmRecord, list[AlarmTransition]]:
        record = self.records[alarm_id]
        alarm = self._alarms[alarm_id]
        data = self._input_for(alarm_id)
        condition = raw_condition(alarm.kind, alarm.alarm, data, record.condition_active)
        return state_model.evaluate(record, alarm.rules, condition, data.value, now)

    def _judge_suppression(self, alarm_id: str, now: int) -> tuple[AlarmRecord, list[AlarmTransition]]:
        condition = self._alarms[alarm_id].alarm.suppressed_when
        value, quality = self._inputs.get(condition.tag, NO_INPUT)
        return state_model.set_design_suppression(self.records[alarm_id], is_suppressed(condition, value, quality), now)

    def _apply(self, alarm_id: str, result: tuple[AlarmRecord, list[AlarmTransition]],
               changed: dict[str, AlarmRecord], transitions: list[AlarmTransition]) -> None:
        after, events = result
        if after is self.records[alarm_id] or after == self.records[alarm_id]:
            return
        self.records[alarm_id] = after
        changed[alarm_id] = after
        transitions.extend(events)
        self._update_deadline(alarm_id)

    def _update_deadline(self, alarm_id: str) -> None:
        deadline = state_model.next_deadline_ms(self.records[alarm_id], self._alarms[alarm_id].rules)
        if deadline is None:
            self._deadlines.pop(alarm_id, None)
        else:
            self._deadlines[alarm_id] = deadline

    async def _tick(self) -> None:
        """Delays, re-alarms and shelves end with time, not only with new values."""
        while True:
            await asyncio.sleep(TICK_S)
            now = self._clock_ms()
            due = [a for a, deadline in self._deadlines.items() if deadline <= now]
            if not due:
                continue
            async with self._lock:
                changed: dict[str, AlarmRecord] = {}
                transitions: list[AlarmTransition] = []
                for alarm_id in due:
                    self._apply(alarm_id, self._evaluate(alarm_id, now), changed, transitions)
                    self._apply(alarm_id, state_model.on_time(self.records[alarm_id], self._alarms[alarm_id].rules,
                                                              now), changed, transitions)
                if changed:
                    pipe = self._redis.pipeline(transaction=True)
                    queue_record_writes(pipe, list(changed.values()), transitions)
                    await pipe.execute()

    async def _recover_if_behind(self, oldest: str | None) -> bool:
        """When the feed dropped changes never judged (its oldest entry is newer than the cursor),
        judge the current values instead; True if it had to."""
        if not oldest or self._cursor == "0-0" or not stream_id_older(self._cursor, oldest):
            return False
        log.error("alarm engine: fell behind the change feed (at %s, oldest kept %s); evaluating the"
                  " current values", self._cursor, oldest)
        await self._evaluate_snapshot()
        return True

    async def _heartbeat(self) -> None:
        """Say every second that alarms are being decided, and how far behind the feed (web banner)."""
        while True:
            info = await self._redis.xinfo_stream(keys.CHANGES) if await self._redis.exists(keys.CHANGES) else None
            newest = _text(info["last-generated-id"]) if info else None
            oldest = _text(info["first-entry"][0]) if info and info.get("first-entry") else None
            await self._recover_if_behind(oldest)
            lag_ms = stream_id_ms(newest) - stream_id_ms(self._cursor) if newest and newest != self._cursor else 0
            await self._redis.hset(keys.ALARM_ENGINE_STATUS, mapping={
                "heartbeat_ms": self._clock_ms(), "lag_ms": max(lag_ms, 0), "alarms": len(self.records)})
            await asyncio.sleep(HEARTBEAT_S)

    async def _ensure_command_group(self) -> None:
        try:
            await self._redis.xgroup_create(keys.ALARM_COMMANDS, COMMAND_GROUP, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _serve_commands(self) -> None:
        next_id = "0"  # our own unanswered commands first (a crash mid-command), then new ones
        while True:
            replies = await self._redis.xreadgroup(
                COMMAND_GROUP, "engine", {keys.ALARM_COMMANDS: next_id}, count=100, block=1000
            )
            entries = replies[0][1] if replies else []
            if next_id != ">":  # pending ones after the last seen: a forwarded acknowledge stays pending a while
                next_id = entries[-1][0].decode() if entries else ">"
            for entry_id, fields in entries:
                await self._handle_command(entry_id, fields)

    async def _handle_command(self, entry_id: bytes, fields: dict) -> None:
        command = parse_command(fields)
        if command is not None and command.action == "acknowledge" and self._device.owns_alarm(command.alarm_id):
            # The device decides: the acknowledge goes to it, answered and XACKed when it answers.
            self._device.start_acknowledge(command, entry_id, COMMAND_GROUP)
            return
        async with self._lock:
            pipe = self._redis.pipeline(transaction=True)
            if command is None:
                log.error("unreadable alarm command %r ignored", fields)
            else:
                outcome, record, events = decide_command(
                    command, self.records.get(command.alarm_id), self._alarms.get(command.alarm_id), self._clock_ms())
                if record is not None:
                    self.records[record.alarm_id] = record
                    self._update_deadline(record.alarm_id)
                    queue_record_writes(pipe, [record], events)
                    log.info("alarm %s: %s by %s", command.alarm_id, command.action, command.user)
                queue_outcome(pipe, outcome)
            pipe.xack(keys.ALARM_COMMANDS, COMMAND_GROUP, entry_id)
            await pipe.execute()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stream_id_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def stream_id_older(entry_id: str, than: str) -> bool:
    def key(i: str) -> tuple[int, int]:
        ms, _, seq = i.partition("-")
        return int(ms), int(seq or 0)
    return key(entry_id) < key(than)


async def run_engine(redis_url: str, config: PlantConfig) -> None:
    """Run forever, surviving Redis outages: state is in Redis, so a reload resumes exactly."""
    delay_s = 0.5
    while True:
        redis = aioredis.Redis.from_url(redis_url)
        try:
            await AlarmEngine(redis, config).run()
        except (RedisError, OSError) as exc:
            log.error("alarm engine lost Redis (%s); retrying in %.1f s", exc, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 10.0)
        finally:
            await redis.aclose()
