"""Alarm records in Redis: encoding, reading, and the journal."""
from __future__ import annotations

import json
from dataclasses import asdict, fields

import redis.asyncio as aioredis

from domain.alarms.records import AlarmRecord, AlarmState, AlarmTransition
from tag_store import keys

# Bumped on every change of sl:alarms so readers poll one small key, not the hash.
ALARM_VERSION = keys.PREFIX + "alarm:version"
JOURNAL_MAXLEN = 1_000_000
_RECORD_FIELDS = {f.name for f in fields(AlarmRecord)}


_RECORD_FIELD_NAMES = tuple(f.name for f in fields(AlarmRecord))
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode_record(record: AlarmRecord) -> str:
    # Not dataclasses.asdict: its deep copy was three quarters of the engine's time (bench/alarm_engine.py).
    return _ENCODER.encode({name: getattr(record, name) for name in _RECORD_FIELD_NAMES})


def decode_record(raw: str | bytes) -> AlarmRecord:
    data = {k: v for k, v in json.loads(raw).items() if k in _RECORD_FIELDS}
    data["state"] = AlarmState(data["state"])
    return AlarmRecord(**data)


async def read_all_alarms(redis: aioredis.Redis) -> list[AlarmRecord]:
    raw = await redis.hgetall(keys.ALARMS)
    return [decode_record(v) for v in raw.values()]


async def read_alarm_version(redis: aioredis.Redis) -> int:
    return int(await redis.get(ALARM_VERSION) or 0)


def queue_record_writes(pipe, records: list[AlarmRecord], transitions: list[AlarmTransition]) -> None:
    """Add the writes of changed records and their journal entries to a pipeline."""
    if records:
        pipe.hset(keys.ALARMS, mapping={r.alarm_id: encode_record(r) for r in records})
    for t in transitions:
        entry = {k: ("" if v is None else str(v)) for k, v in asdict(t).items()}
        pipe.xadd(keys.ALARM_JOURNAL, entry, maxlen=JOURNAL_MAXLEN, approximate=True)
    if records or transitions:
        pipe.incr(ALARM_VERSION)
