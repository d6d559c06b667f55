"""Is history being written to disk? Judged from the historian's heartbeat hash sl:historian.

The historian (`python -m historian`, historian/heartbeat.py) writes its status there every second.
judge_historian_health() turns that hash and the time now into one of six states:

    running       a heartbeat within HEARTBEAT_TIMEOUT_MS, state ok, writing on time
    behind        a fresh heartbeat, but samples wait longer than behind_after_ms(flush interval)
                  since the last write, more than BEHIND_AFTER_ENTRIES feed entries are not on disk,
                  or the historian has just got the data server back (state redis_lost)
    disk_failing  a fresh heartbeat saying the disk refuses writes: samples are held in memory
    not_running   no heartbeat for more than HEARTBEAT_TIMEOUT_MS, or never one
    stopped       the historian stopped cleanly (everything it read is on disk) and has not restarted
    unknown       the hash could not be read, or a fresh heartbeat names a state not known here

Nothing here claims "running" without a fresh heartbeat: a missing, stale or malformed heartbeat
reads as not running, an unreadable hash as unknown. historian_health_text() is the operator's
line for the state; historian_health_note() the same line for a trend, or None when there is
nothing to say (running, or no historian ever ran: trends then come from Redis alone, as before).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from historian.heartbeat import HistorianState, read_heartbeat
from tag_store.keys import SAMPLES_BUDGET_SAMPLES
from web.engine_health import duration_text

HEARTBEAT_TIMEOUT_MS = 5_000
# Behind: samples buffered and no write for this many flush intervals (at least BEHIND_MIN_MS) ...
BEHIND_FLUSH_INTERVALS = 3
BEHIND_MIN_MS = 10_000
# ... or this many feed entries not on disk: half of what sl:samples holds in entries of 40 samples (it
# holds SAMPLES_BUDGET_SAMPLES samples, tag_store/keys.py); larger entries fall off the feed sooner (backfilled).
BEHIND_AFTER_ENTRIES = SAMPLES_BUDGET_SAMPLES // 40 // 2
DEFAULT_FLUSH_INTERVAL_S = 2.0


class HistorianHealthState(StrEnum):
    RUNNING = "running"
    BEHIND = "behind"
    DISK_FAILING = "disk_failing"
    NOT_RUNNING = "not_running"
    STOPPED = "stopped"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class HistorianHealth:
    state: HistorianHealthState
    # The last heartbeat (epoch ms) and its age at judgement; None: never one (or unreadable).
    heartbeat_ms: int | None = None
    heartbeat_age_ms: int | None = None
    # The last successful write to disk and its age; None: none since the historian started.
    last_flush_ms: int | None = None
    last_flush_age_ms: int | None = None
    # Feed entries not yet on disk (None: not known yet), samples read but not written,
    # samples lost for good since the start (the buffer overflowed while the disk failed).
    behind_entries: int | None = None
    buffered_samples: int | None = None
    dropped_samples: int | None = None
    disk_bytes: int | None = None
    # The state the historian reported itself (ok, disk_failing, redis_lost, stopped; "" if none).
    reported_state: str = ""
    last_error: str = ""
    # Why the state is unknown or behind, in a few words.
    reason: str = ""

    @property
    def is_running(self) -> bool:
        return self.state is HistorianHealthState.RUNNING


def behind_after_ms(flush_interval_s: float) -> int:
    return max(BEHIND_MIN_MS, int(BEHIND_FLUSH_INTERVALS * flush_interval_s * 1000))


def _text(status: Mapping[Any, Any], name: str) -> str | None:
    raw = status.get(name, status.get(name.encode()))
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    return None if raw is None else str(raw)


def _int(status: Mapping[Any, Any], name: str) -> int | None:
    raw = _text(status, name)
    try:
        return int(float(raw)) if raw is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


def _age(now_ms: int, ms: int | None) -> int | None:
    # A clock a little ahead of ours is no reason to call the historian stopped: age 0.
    return None if ms is None else max(0, now_ms - ms)


def judge_historian_health(status: Mapping[Any, Any] | None, now_ms: int,
                           flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> HistorianHealth:
    """The historian's state from its heartbeat hash (bytes or str keys, as Redis returns it) at now_ms."""
    status = status or {}
    heartbeat_ms = _int(status, "heartbeat_ms")
    heartbeat_ms = heartbeat_ms if heartbeat_ms is not None and heartbeat_ms > 0 else None
    last_flush_ms = _int(status, "last_flush_ms")
    last_flush_ms = last_flush_ms if last_flush_ms is not None and last_flush_ms > 0 else None
    behind_entries = _int(status, "behind_entries")
    reported = (_text(status, "state") or "").strip()
    figures = {
        "heartbeat_ms": heartbeat_ms, "heartbeat_age_ms": _age(now_ms, heartbeat_ms),
        "last_flush_ms": last_flush_ms, "last_flush_age_ms": _age(now_ms, last_flush_ms),
        "behind_entries": behind_entries if behind_entries is not None and behind_entries >= 0 else None,
        "buffered_samples": _int(status, "buffered_samples"), "dropped_samples": _int(status, "dropped_samples"),
        "disk_bytes": _int(status, "disk_bytes"), "reported_state": reported,
        "last_error": _text(status, "last_error") or "",
    }

    def judged(state: HistorianHealthState, reason: str = "") -> HistorianHealth:
        return HistorianHealth(state, reason=reason, **figures)

    if heartbeat_ms is None:
        return judged(HistorianHealthState.NOT_RUNNING)
    if reported == HistorianState.STOPPED:
        return judged(HistorianHealthState.STOPPED)
    if figures["heartbeat_age_ms"] > HEARTBEAT_TIMEOUT_MS:
        return judged(HistorianHealthState.NOT_RUNNING)
    if reported == HistorianState.DISK_FAILING:
        return judged(HistorianHealthState.DISK_FAILING)
    if reported == HistorianState.REDIS_LOST:
        return judged(HistorianHealthState.BEHIND, "catching up after losing the data server")
    if reported != HistorianState.OK:
        return judged(HistorianHealthState.UNKNOWN, f"unrecognised state '{reported[:40]}'")
    buffered = figures["buffered_samples"] or 0
    flush_age_ms = figures["last_flush_age_ms"]
    if buffered > 0 and flush_age_ms is not None and flush_age_ms > behind_after_ms(flush_interval_s):
        return judged(HistorianHealthState.BEHIND, f"no write to disk for {duration_text(flush_age_ms)}")
    if figures["behind_entries"] is not None and figures["behind_entries"] > BEHIND_AFTER_ENTRIES:
        return judged(HistorianHealthState.BEHIND, f"{figures['behind_entries']:,} feed entries not on disk")
    return judged(HistorianHealthState.RUNNING)


def unreadable_health(reason: str) -> HistorianHealth:
    return HistorianHealth(HistorianHealthState.UNKNOWN, reason=reason)


async def read_historian_health(redis: aioredis.Redis, now_ms: int,
                                flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> HistorianHealth:
    """One HGETALL; Redis errors propagate (the caller decides: unknown, no note, or a 503)."""
    return judge_historian_health(await read_heartbeat(redis), now_ms, flush_interval_s)


def flush_interval_of(config: Any) -> float:
    """The plant's historian.flush_interval_s (the web reads the same plant file as the historian)."""
    settings = getattr(config, "historian", None)
    return float(getattr(settings, "flush_interval_s", DEFAULT_FLUSH_INTERVAL_S))


# ---- in words -------------------------------------------------------------------------------


def clock_text(ms: int, now_ms: int) -> str:
    """14:02 UTC today, 2026-12-01 14:02 UTC on another day."""
    moment = datetime.fromtimestamp(ms / 1000, timezone.utc)
    today = datetime.fromtimestamp(now_ms / 1000, timezone.utc).date()
    return moment.strftime("%H:%M UTC" if moment.date() == today else "%Y-%m-%d %H:%M UTC")


def _since(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "since the historian started"
    return f"since {clock_text(ms, now_ms)} ({duration_text(max(0, now_ms - ms))} ago)"


def _lost(health: HistorianHealth) -> str:
    dropped = health.dropped_samples or 0
    return f"; {dropped:,} samples LOST" if dropped > 0 else ""


def historian_health_text(health: HistorianHealth, now_ms: int) -> str:
    """One line for the operator: what is wrong with the history on disk, and what it means."""
    state = health.state
    if state is HistorianHealthState.RUNNING:
        lost = (f" ({health.dropped_samples:,} samples were lost since it started, while the disk failed)"
                if (health.dropped_samples or 0) > 0 else "")
        return f"Historian running: history is written to disk{lost}"
    if state is HistorianHealthState.BEHIND:
        return (f"History is written to disk late ({health.reason or 'behind'}): "
                "the newest part of long trends may be missing for a while")
    if state is HistorianHealthState.DISK_FAILING:
        held = f"{health.buffered_samples or 0:,} samples held in memory{_lost(health)}"
        error = f": {health.last_error}" if health.last_error else ""
        return (f"History is not being written to disk {_since(health.last_flush_ms, now_ms)}"
                f"{error}; {held} — older trends may be incomplete")
    if state is HistorianHealthState.NOT_RUNNING:
        if health.heartbeat_ms is None:
            return "No historian has run: history is kept only in the short recent store (Redis)"
        return (f"History is not being written to disk {_since(health.heartbeat_ms, now_ms)}: "
                "the historian is not running — older trends may be incomplete")
    if state is HistorianHealthState.STOPPED:
        return (f"History is not being written to disk: the historian was stopped at "
                f"{clock_text(health.heartbeat_ms or now_ms, now_ms)} — older trends may be incomplete")
    return f"Historian state unknown ({health.reason or 'cannot be read'}): history may not be written to disk"


def historian_health_note(health: HistorianHealth, now_ms: int) -> str | None:
    """The line a trend carries, or None: running, unreadable (the query says so itself), never a historian."""
    if health.state in (HistorianHealthState.RUNNING, HistorianHealthState.UNKNOWN):
        return None
    if health.state is HistorianHealthState.NOT_RUNNING and health.heartbeat_ms is None:
        return None
    return historian_health_text(health, now_ms)


def historian_health_json(health: HistorianHealth, now_ms: int, flush_interval_s: float) -> dict[str, Any]:
    """For the JSON API: the judgement, its inputs and the line in words."""
    return {
        "state": health.state.value,
        "running": health.is_running,
        "heartbeat_ms": health.heartbeat_ms,
        "heartbeat_age_ms": health.heartbeat_age_ms,
        "last_flush_ms": health.last_flush_ms,
        "last_flush_age_ms": health.last_flush_age_ms,
        "behind_entries": health.behind_entries,
        "buffered_samples": health.buffered_samples,
        "dropped_samples": health.dropped_samples,
        "disk_bytes": health.disk_bytes,
        "reported_state": health.reported_state,
        "last_error": health.last_error,
        "reason": health.reason,
        "text": historian_health_text(health, now_ms),
        "heartbeat_timeout_ms": HEARTBEAT_TIMEOUT_MS,
        "behind_after_ms": behind_after_ms(flush_interval_s),
        "behind_after_entries": BEHIND_AFTER_ENTRIES,
    }


# ---- on the sources page --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistorianFigure:
    name: str  # stable, for the page's data-figure attribute
    label: str
    text: str
    marked: bool = False  # wrong: lost data, a failure or an unknown


def bytes_text(size: int) -> str:
    """123 B, 4.6 kB, 12.3 MB, 1.2 GB (powers of 1,000)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _ago(age_ms: int | None, never: str) -> str:
    return never if age_ms is None else f"{duration_text(age_ms)} ago"


def historian_figures(health: HistorianHealth) -> list[HistorianFigure]:
    """What the sources page shows of the historian, in words, wrong figures marked."""
    dropped = health.dropped_samples
    waiting = ("unknown" if health.behind_entries is None else f"{health.behind_entries:,} feed entries")
    if health.buffered_samples is not None:
        waiting += f", {health.buffered_samples:,} samples in memory"
    return [
        HistorianFigure("state", "State", health.state.value.replace("_", " "), not health.is_running),
        HistorianFigure("last_write", "Last write to disk", _ago(health.last_flush_age_ms, "none since its start")),
        HistorianFigure("heartbeat", "Heartbeat", _ago(health.heartbeat_age_ms, "none"),
                        health.heartbeat_ms is None or (health.heartbeat_age_ms or 0) > HEARTBEAT_TIMEOUT_MS),
        HistorianFigure("waiting", "Not yet on disk", waiting),
        HistorianFigure("disk", "Disk use", "unknown" if health.disk_bytes is None else bytes_text(health.disk_bytes)),
        HistorianFigure("dropped", "Dropped samples", "unknown" if dropped is None else f"{dropped:,}",
                        (dropped or 0) > 0),
        # The historian keeps its last error after a recovery: marked only while it is not running.
        HistorianFigure("last_error", "Last error", health.last_error or "none",
                        bool(health.last_error) and not health.is_running),
    ]
