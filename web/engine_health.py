"""Is the alarm engine deciding alarms? Judged from its heartbeat hash (keys.ALARM_ENGINE_STATUS).

The engine writes heartbeat_ms, lag_ms and alarms there every second
(alarm_engine/engine.py). judge_engine_health() turns that hash and the time now
into one of four states:

    running      a heartbeat within HEARTBEAT_TIMEOUT_MS, its cursor close behind the tag changes
    behind       a fresh heartbeat, but more than BEHIND_AFTER_MS behind the tag changes
    not_running  no heartbeat for more than HEARTBEAT_TIMEOUT_MS, or never one
    unknown      the hash could not be read (the data server is unreachable)

Nothing here claims "running" without a fresh heartbeat: an unreadable or missing
hash, a malformed field or no judgement yet all read as not running or unknown.
engine_health_view() is what the live push carries to every page: it changes only
when the state (or, while behind, the coarse lag) changes, so the alarm view is not
rebuilt every second; the browser counts the age of a stopped heartbeat itself.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from tag_store import keys

HEARTBEAT_TIMEOUT_MS = 5_000
BEHIND_AFTER_MS = 10_000
# Stands for the age in a notice's text; the browser replaces it as the seconds go by.
AGE_PLACEHOLDER = "{age}"


class EngineState(StrEnum):
    RUNNING = "running"
    BEHIND = "behind"
    NOT_RUNNING = "not_running"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class EngineHealth:
    state: EngineState
    # The engine's last heartbeat (epoch ms) and how long ago it was at judgement; None: never one.
    heartbeat_ms: int | None = None
    heartbeat_age_ms: int | None = None
    # How far the engine's cursor was behind the newest tag change, and how many alarms it holds.
    lag_ms: int | None = None
    alarms: int | None = None
    # Why the state is unknown (the read failed).
    reason: str = ""

    @property
    def is_running(self) -> bool:
        return self.state is EngineState.RUNNING


NOT_YET_JUDGED = EngineHealth(EngineState.UNKNOWN, reason="not read yet")


def _field(status: Mapping[Any, Any], name: str) -> int | None:
    raw = status.get(name, status.get(name.encode()))
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    try:
        return int(float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def judge_engine_health(status: Mapping[Any, Any] | None, now_ms: int) -> EngineHealth:
    """The engine's state from its heartbeat hash (bytes or str keys, as Redis returns it) at now_ms."""
    status = status or {}
    heartbeat_ms, lag_ms, alarms = (_field(status, name) for name in ("heartbeat_ms", "lag_ms", "alarms"))
    if heartbeat_ms is None or heartbeat_ms <= 0:
        return EngineHealth(EngineState.NOT_RUNNING, lag_ms=lag_ms, alarms=alarms)
    # A clock a little ahead of ours is no reason to call the engine stopped: age 0.
    age_ms = max(0, now_ms - heartbeat_ms)
    if age_ms > HEARTBEAT_TIMEOUT_MS:
        state = EngineState.NOT_RUNNING
    elif lag_ms is not None and lag_ms > BEHIND_AFTER_MS:
        state = EngineState.BEHIND
    else:
        state = EngineState.RUNNING
    return EngineHealth(state, heartbeat_ms, age_ms, lag_ms, alarms)


def unreadable_health(reason: str) -> EngineHealth:
    return EngineHealth(EngineState.UNKNOWN, reason=reason)


async def read_engine_health(redis: aioredis.Redis, now_ms: int) -> EngineHealth:
    """One HGETALL; Redis errors propagate (the caller decides: unknown, or a 503)."""
    return judge_engine_health(await redis.hgetall(keys.ALARM_ENGINE_STATUS), now_ms)


# ---- in words -------------------------------------------------------------------------------


def duration_text(ms: int) -> str:
    """23 s, 4 min, 2 h, 3 d (whole units, rounded down; mirrored in assets/live_render.js)."""
    s = max(0, ms // 1000)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172_800:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def coarse_lag_ms(lag_ms: int) -> int:
    """The lag rounded down to 5 s (under a minute), a minute (under an hour) or an hour."""
    step = 5_000 if lag_ms < 60_000 else 60_000 if lag_ms < 3_600_000 else 3_600_000
    return lag_ms - lag_ms % step


def _text_template(health: EngineHealth, lag_ms: int | None) -> str:
    """The notice, with AGE_PLACEHOLDER where the age of a stopped heartbeat goes."""
    if health.state is EngineState.RUNNING:
        return "Alarm engine running"
    if health.state is EngineState.BEHIND:
        return (f"ALARM ENGINE BEHIND ({duration_text(lag_ms or 0)} behind the tag changes):"
                " alarms are annunciated late")
    if health.state is EngineState.NOT_RUNNING:
        since = "no heartbeat ever" if health.heartbeat_ms is None else f"no heartbeat for {AGE_PLACEHOLDER}"
        return f"ALARM ENGINE NOT RUNNING ({since}): alarms are not being evaluated"
    why = health.reason or "cannot be read"
    return f"ALARM ENGINE STATE UNKNOWN ({why}): alarms may not be evaluated"


def engine_health_text(health: EngineHealth) -> str:
    """The whole notice as the operator reads it at the moment of judgement."""
    return _text_template(health, health.lag_ms).replace(AGE_PLACEHOLDER,
                                                          duration_text(health.heartbeat_age_ms or 0))


def engine_health_view(health: EngineHealth) -> dict[str, Any]:
    """For the pushed alarm summary: stable from one heartbeat to the next while the state holds.

    Carries no age and no fresh heartbeat time while running (they change every second);
    a stopped engine's last heartbeat_ms is fixed, so the browser counts its age.
    """
    lag_ms = coarse_lag_ms(health.lag_ms or 0) if health.state is EngineState.BEHIND else None
    return {
        "state": health.state.value,
        "heartbeat_ms": health.heartbeat_ms if health.state is EngineState.NOT_RUNNING else None,
        "lag_ms": lag_ms,
        "text": _text_template(health, lag_ms),
    }


def engine_health_json(health: EngineHealth) -> dict[str, Any]:
    """For the JSON API: the judgement, its inputs and the notice in words."""
    return {
        "state": health.state.value,
        "running": health.is_running,
        "heartbeat_ms": health.heartbeat_ms,
        "heartbeat_age_ms": health.heartbeat_age_ms,
        "lag_ms": health.lag_ms,
        "alarms": health.alarms,
        "text": engine_health_text(health),
        "heartbeat_timeout_ms": HEARTBEAT_TIMEOUT_MS,
        "behind_after_ms": BEHIND_AFTER_MS,
    }
