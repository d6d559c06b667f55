"""Device alarms in the alarm engine: the sources' condition events in, records and journal out.

The device decides these alarms (domain/device_alarms.py maps its events); the engine
only mirrors them, under the same lock and in the same kind of transaction as its own
alarms, so it stays the one writer of sl:alarms. Events are read in a consumer group
and acknowledged (XACK) in the transaction that stores what they changed: a restarted
engine re-reads exactly the unapplied ones.

An operator's acknowledge of a device alarm is not decided here: it is forwarded to
the data source, which calls the condition's Acknowledge method; the device's answer
is the operator's answer, and the acknowledged state arrives later as an event.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from alarm_engine.alarm_store import ALARM_VERSION, queue_record_writes
from alarm_engine.commands import AlarmCommand, CommandOutcome, queue_outcome, unknown_alarm
from domain import device_alarms
from domain.alarms.records import AlarmRecord, AlarmTransition
from domain.config_model import DeviceAlarms, PlantConfig
from domain.device_alarms import ConditionEvent, OperatorAck, SourceEvent
from tag_store import keys
from tag_store.device_alarms import DeviceAckRequest, decode_event, submit_device_ack, wait_for_device_ack
from tag_store.source_status import read_statuses

log = logging.getLogger(__name__)

GROUP = "alarm_engine"
# The web app waits 5 s for the engine; the source gets most of it, the engine answers before.
FORWARD_TIMEOUT_S = 3.5
ANSWER_WAIT_S = 4.0
# A source process silent this long (no heartbeat, no event) is gone: its device alarms are not live.
SOURCE_SILENT_S = 5.0


def device_alarm_sources(config: PlantConfig) -> dict[str, DeviceAlarms]:
    return {name: source.device_alarms for name, source in config.sources.items()
            if source.kind == "opcua" and source.device_alarms is not None}


class DeviceAlarmInput:
    """Shares the engine's records and lock; owns the records whose device_source it follows."""

    def __init__(self, redis: aioredis.Redis, config: PlantConfig, records: dict[str, AlarmRecord],
                 lock: asyncio.Lock, clock_ms: Callable[[], int]):
        self._redis = redis
        self._config = config
        self._sources = device_alarm_sources(config)
        self._records = records
        self._lock = lock
        self._clock_ms = clock_ms
        self._operator_acks: dict[str, OperatorAck] = {}
        self._ack_tasks: set[asyncio.Task] = set()
        self._last_event_ms: dict[str, int] = {}

    def owns(self, record: AlarmRecord) -> bool:
        return record.device_source is not None and record.device_source in self._sources

    def owns_alarm(self, alarm_id: str) -> bool:
        record = self._records.get(alarm_id)
        return record is not None and self.owns(record)

    async def ensure_group(self) -> None:
        """From the stream's start on first creation: events sent before the engine ever ran count too."""
        if not self._sources:
            return
        try:
            await self._redis.xgroup_create(keys.DEVICE_ALARMS, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        if not self._sources:
            return  # no source follows device alarms
        await asyncio.gather(self._follow(), self._watch_sources())

    async def _watch_sources(self) -> None:
        """A dead source process sends no `lost`: its silence marks its device alarms not live.

        Nothing is unmarked here: the restarted source sends `lost`, then refreshes every condition.
        """
        while True:
            await asyncio.sleep(1.0)
            now = self._clock_ms()
            statuses = await read_statuses(self._redis, list(self._sources))
            for source, status in statuses.items():
                heard_ms = max(status.heartbeat_ms if status else 0, self._last_event_ms.get(source, 0))
                if now - heard_ms > SOURCE_SILENT_S * 1000:
                    await self._apply_source_event(SourceEvent(source, "lost", now, quality_name="source silent"))

    async def _apply_source_event(self, event: SourceEvent) -> None:
        async with self._lock:
            updated = [r for _id, r in self._apply(event, [])]
            if not updated:
                return
            for record in updated:
                self._records[record.alarm_id] = record
            pipe = self._redis.pipeline(transaction=True)
            queue_record_writes(pipe, updated, [])
            await pipe.execute()

    async def _follow(self) -> None:
        next_id = "0"  # our own unapplied events first (a crash mid-batch), then new ones
        try:
            while True:
                replies = await self._redis.xreadgroup(
                    GROUP, "engine", {keys.DEVICE_ALARMS: next_id}, count=200, block=1000)
                entries = replies[0][1] if replies else []
                if next_id == "0" and not entries:
                    next_id = ">"
                    continue
                if entries:
                    await self._apply_entries(entries)
        finally:
            for task in self._ack_tasks:
                task.cancel()

    async def _apply_entries(self, entries: list) -> None:
        async with self._lock:
            changed: dict[str, AlarmRecord] = {}
            removed: set[str] = set()
            transitions: list[AlarmTransition] = []
            for _entry_id, fields in entries:
                try:
                    event = decode_event(fields[b"e"])
                except (KeyError, ValueError) as exc:
                    log.error("device alarm entry ignored: %s", exc)
                    continue
                if event.source not in self._sources:
                    continue  # a source that no longer follows device alarms
                self._last_event_ms[event.source] = self._clock_ms()
                for alarm_id, record in self._apply(event, transitions):
                    if record is None:
                        self._records.pop(alarm_id, None)
                        changed.pop(alarm_id, None)
                        removed.add(alarm_id)
                    else:
                        self._records[alarm_id] = record
                        changed[alarm_id] = record
                        removed.discard(alarm_id)
            pipe = self._redis.pipeline(transaction=True)
            queue_record_writes(pipe, list(changed.values()), transitions)
            if removed:
                pipe.hdel(keys.ALARMS, *removed)
                pipe.incr(ALARM_VERSION)
            pipe.xack(keys.DEVICE_ALARMS, GROUP, *[entry_id for entry_id, _ in entries])
            await pipe.execute()

    def _apply(self, event: ConditionEvent | SourceEvent,
               transitions: list[AlarmTransition]) -> list[tuple[str, AlarmRecord | None]]:
        """(alarm id, record after; None = removed) for every record the event touches."""
        now = self._clock_ms()
        if isinstance(event, ConditionEvent):
            alarm_id = device_alarms.device_alarm_id(event.source, event.condition)
            settings = self._sources[event.source]
            tag = self._config.tag(event.tag)
            area = settings.area or (tag.area if tag is not None else "Plant")
            record, moves = device_alarms.apply_condition_event(
                self._records.get(alarm_id), event, area=area, thresholds=settings.priority_from_severity,
                now_ms=now, operator_ack=self._operator_acks.get(alarm_id))
            if any((t.from_state.value, t.to_state.value) in device_alarms.ACKNOWLEDGING for t in moves):
                self._operator_acks.pop(alarm_id, None)
            transitions.extend(moves)
            return [(alarm_id, record)]
        of_source = [r for r in self._records.values() if r.device_source == event.source]
        if event.kind == "lost":
            lost = device_alarms.mark_source_lost(of_source)
            if lost:
                log.info("device alarms of %s: not live (%s)", event.source, event.quality_name)
            return [(r.alarm_id, r) for r in lost]
        if event.kind == "refresh_end":
            gone, moves = device_alarms.not_refreshed(of_source, set(event.conditions), now)
            transitions.extend(moves)
            return [(alarm_id, None) for alarm_id in gone]
        return []

    # --- acknowledge: forwarded to the device -----------------------------------------------------

    def start_acknowledge(self, command: AlarmCommand, entry_id: bytes, command_group: str) -> None:
        """Forward in a task: the engine keeps serving commands and changes while the device answers."""
        task = asyncio.create_task(self._acknowledge(command, entry_id, command_group))
        self._ack_tasks.add(task)
        task.add_done_callback(self._ack_tasks.discard)

    async def _acknowledge(self, command: AlarmCommand, entry_id: bytes, command_group: str) -> None:
        try:
            outcome = await self._forward(command)
        except (RedisError, OSError) as exc:
            log.error("acknowledge of %s could not be forwarded: %s", command.alarm_id, exc)
            return  # unanswered and not XACKed: served again after the engine's restart
        pipe = self._redis.pipeline(transaction=True)
        queue_outcome(pipe, outcome)
        pipe.xack(keys.ALARM_COMMANDS, command_group, entry_id)
        await pipe.execute()

    async def _forward(self, command: AlarmCommand) -> CommandOutcome:
        record = self._records.get(command.alarm_id)
        if record is None or record.device_source is None or record.device_condition is None:
            return unknown_alarm(command)
        if command.action != "acknowledge":
            return CommandOutcome(command.request_id, False, f"unknown action {command.action}")
        request = DeviceAckRequest.new(command.alarm_id, record.device_condition, command.user,
                                       command.comment or "", self._clock_ms(), FORWARD_TIMEOUT_S)
        self._operator_acks[command.alarm_id] = OperatorAck(command.user, command.comment, self._clock_ms())
        await submit_device_ack(self._redis, record.device_source, request)
        answer = await wait_for_device_ack(self._redis, request.request_id, ANSWER_WAIT_S)
        if answer is None:
            self._operator_acks.pop(command.alarm_id, None)
            return CommandOutcome(command.request_id, False,
                                  f"data source {record.device_source} did not answer (is it running?)")
        if not answer.accepted:
            self._operator_acks.pop(command.alarm_id, None)
        log.info("device alarm %s: acknowledge by %s %s: %s", command.alarm_id, command.user,
                 "accepted" if answer.accepted else "refused", answer.reason)
        return CommandOutcome(command.request_id, answer.accepted, answer.reason)
