"""The audit trail: one stream entry per login, logout, write attempt and acknowledgement.

Fields: time_ms, user, action, tag, old, new, reason, result, source_ip, comment. Append-only:
nothing is trimmed here. The audit archiver (audit_trail/archiver.py, in the historian process)
copies the stream into the SQLite archive and only then trims Redis to a recent window
(docs/audit.md).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from tag_store import keys


@dataclass(frozen=True, slots=True)
class AuditEvent:
    user: str
    action: str  # login, login_failed, logout, write, acknowledge, ... (docs/audit.md lists them all)
    result: str  # ok, refused, requested, done, rejected, timed_out, no_answer, failed
    tag: str = ""
    old: str = ""
    new: str = ""
    reason: str = ""      # the system's explanation: why refused, the device's answer
    source_ip: str = ""
    comment: str = ""     # what the person gave: a write's reason, an acknowledge comment


def audit_fields(event: AuditEvent, now_ms: int) -> dict[str, str]:
    fields = {"time_ms": str(now_ms)}
    fields.update({k: "" if v is None else str(v) for k, v in asdict(event).items()})
    return fields


async def append_audit(redis: aioredis.Redis, event: AuditEvent, now_ms: int | None = None) -> None:
    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    await redis.xadd(keys.AUDIT, audit_fields(event, stamp))


async def read_audit(redis: aioredis.Redis, count: int = 100) -> list[dict[str, str]]:
    """Newest first; for tests and a later audit page."""
    entries = await redis.xrevrange(keys.AUDIT, count=count)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in entries]
