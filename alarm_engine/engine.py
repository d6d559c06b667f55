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
from dataclasses import dataclass, replace
from typing import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from alarm_engine.alarm_store import decode_record, queue_record_writes
from alarm_engine.commands import CommandOutcome, parse_command, queue_outcome
from alarm_engine.device_alarm_input import DeviceAlarmInput
from domain import alarm_logic
from domain.alarm_logic import AlarmRecord, AlarmTransition
from domain.config_model import LimitAlarm, PlantConfig
from domain.quality import quality_from_code
from tag_store import keys
from tag_store.cancellation import cancel_and_wait

log = logging.getLogger(__name__)

COMMAND_GROUP = "alarm_engine"


@dataclass(frozen=True, slots=True)
class ConfiguredAlarm:
    tag: str
    kind: str
    limit: LimitAlarm
    area: str
    unit: str


def configured_alarms(config: PlantConfig) -> dict[str, ConfiguredAlarm]:
    found = {}
    for tag in config.tags:
        if tag.alarms is None:
            continue
        for kind, limit in tag.alarms.items():
            alarm_id = alarm_logic.alarm_id_for(tag.name, kind)
            found[alarm_id] = ConfiguredAlarm(tag.name, kind, limit, tag.area, tag.unit)
    return found


class AlarmEngine:
    def __init__(self, redis: aioredis.Redis, config: PlantConfig, clock_ms: Callable[[], int] | None = None):
        self._redis = redis
        self._alarms = configured_alarms(config)
        self._alarms_by_tag: dict[str, list[str]] = {}
        for alarm_id, alarm in self._alarms.items():
            self._alarms_by_tag.setdefault(alarm.tag, []).append(alarm_id)
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.records: dict[str, AlarmRecord] = {}
        # Latest input per tag, for re-evaluating on-/off-delays between changes.
        self._inputs: dict[str, tuple[float | None, int]] = {}
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
                self.records[alarm_id] = alarm_logic.new_record(alarm.tag, alarm.kind, alarm.limit, alarm.area, alarm.unit, now)
        pipe = self._redis.pipeline(transaction=False)
        if removed:
            pipe.hdel(keys.ALARMS, *removed)
        queue_record_writes(pipe, list(self.records.values()), [])
        await pipe.execute()
        cursor = await self._redis.get(keys.ALARM_ENGINE_CURSOR)
        if cursor is None:
            await self._evaluate_snapshot()
        else:
            self._cursor = cursor.decode()
        log.info("alarm engine: %d alarms configured, resuming after change %s", len(self._alarms), self._cursor)

    def _with_current_config(self, record: AlarmRecord) -> AlarmRecord:
        """Keep the persisted state, but take priority and text from today's configuration."""
        alarm = self._alarms[record.alarm_id]
        fresh = alarm_logic.new_record(alarm.tag, alarm.kind, alarm.limit, alarm.area, alarm.unit, 0)
        return replace(record, priority=fresh.priority, message=fresh.message, area=fresh.area)

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
            self._follow_changes, self._serve_commands, self._tick_delays, self._device.run)]
        try:
            # If one loop fails (Redis gone) the others stop with it, and its error propagates.
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            # Not a TaskGroup: on Python 3.11 a loop inside redis-py can swallow one cancellation.
            await cancel_and_wait(loops)

    async def _follow_changes(self) -> None:
        while True:
            replies = await self._redis.xread({keys.CHANGES: self._cursor}, block=1000, count=200)
            for _stream, entries in replies or []:
                for entry_id, fields in entries:
                    await self._apply_batch(json.loads(fields[b"b"]), entry_id.decode())

    async def _apply_batch(self, batch: dict[str, dict], cursor: str) -> None:
        now = self._clock_ms()
        async with self._lock:
            changed: list[AlarmRecord] = []
            transitions: list[AlarmTransition] = []
            for tag, encoded in batch.items():
                alarm_ids = self._alarms_by_tag.get(tag)
                if not alarm_ids:
                    continue
                value = encoded.get("v")
                numeric = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
                self._inputs[tag] = (numeric, int(encoded["q"]))
                for alarm_id in alarm_ids:
                    self._evaluate_one(alarm_id, numeric, int(encoded["q"]), now, changed, transitions)
            self._cursor = cursor
            pipe = self._redis.pipeline(transaction=True)
            queue_record_writes(pipe, changed, transitions)
            pipe.set(keys.ALARM_ENGINE_CURSOR, cursor)
            await pipe.execute()

    def _evaluate_one(
        self, alarm_id: str, value: float | None, quality_code: int, now: int,
        changed: list[AlarmRecord], transitions: list[AlarmTransition],
    ) -> None:
        before = self.records[alarm_id]
        after, events = alarm_logic.evaluate(before, self._alarms[alarm_id].limit, value, quality_from_code(quality_code), now)
        if after != before:
            self.records[alarm_id] = after
            changed.append(after)
            transitions.extend(events)

    async def _tick_delays(self) -> None:
        """On-/off-delays expire with time, not only with new values: re-evaluate waiting alarms."""
        while True:
            await asyncio.sleep(0.5)
            waiting = [a for a, r in self.records.items() if r.pending_since_ms is not None]
            if not waiting:
                continue
            now = self._clock_ms()
            async with self._lock:
                changed: list[AlarmRecord] = []
                transitions: list[AlarmTransition] = []
                for alarm_id in waiting:
                    value, quality_code = self._inputs.get(self._alarms[alarm_id].tag, (None, 0x80000000))
                    self._evaluate_one(alarm_id, value, quality_code, now, changed, transitions)
                if changed:
                    pipe = self._redis.pipeline(transaction=True)
                    queue_record_writes(pipe, changed, transitions)
                    await pipe.execute()

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
        if command is not None and self._device.owns_alarm(command.alarm_id):
            # The device decides: the acknowledge goes to it, answered and XACKed when it answers.
            self._device.start_acknowledge(command, entry_id, COMMAND_GROUP)
            return
        async with self._lock:
            pipe = self._redis.pipeline(transaction=True)
            if command is None:
                log.error("unreadable alarm command %r ignored", fields)
            else:
                outcome, record, events = self._decide_command(command)
                if record is not None:
                    self.records[record.alarm_id] = record
                    queue_record_writes(pipe, [record], events)
                queue_outcome(pipe, outcome)
            pipe.xack(keys.ALARM_COMMANDS, COMMAND_GROUP, entry_id)
            await pipe.execute()

    def _decide_command(self, command) -> tuple[CommandOutcome, AlarmRecord | None, list[AlarmTransition]]:
        record = self.records.get(command.alarm_id)
        if record is None:
            return CommandOutcome(command.request_id, False, f"unknown alarm {command.alarm_id}"), None, []
        if command.action != "acknowledge":
            return CommandOutcome(command.request_id, False, f"unknown action {command.action}"), None, []
        try:
            updated, events = alarm_logic.acknowledge(record, command.user, self._clock_ms(), command.comment)
        except alarm_logic.ActionRefused as refusal:
            return CommandOutcome(command.request_id, False, str(refusal)), None, []
        log.info("alarm %s acknowledged by %s", command.alarm_id, command.user)
        return CommandOutcome(command.request_id, True, ""), updated, events


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
