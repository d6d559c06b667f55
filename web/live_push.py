"""One persistent websocket callback per browser page: live values and alarms into `live-store`.

The loop wakes push_rate_hz times a second, refreshes this worker's LiveBoard
and sends what changed since its last push: the first message replaces the
store, later ones are Dash Patches that merge into it, so even if the browser
coalesces two messages nothing is lost. It skips a tick while its socket still
has unsent messages (the per-socket queue is unbounded) and sends a keep-alive
at least once a second so the page can tell a live link from a dead one.
"tags" carries the tag directory version (first message and whenever it moved),
so a page that lists tags (the overview) knows when discovered tags came or changed.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from dash import Patch, callback, ctx, set_props

from web.alarm_cache import AlarmCache
from web.live_board import LiveBoard
from web.runtime import current_runtime

LIVE_STORE_ID = "live-store"
KEEPALIVE_MS = 1000
# Unsent messages tolerated in the socket's queue before a tick is skipped (changes merge meanwhile).
MAX_OUTBOUND_BACKLOG = 2


@dataclass
class PushCursor:
    """What one browser page has been sent so far."""

    epoch: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    seq: int = 0
    board_version: int = 0
    alarm_version: int = -1
    tags_version: int = -1
    last_push_ms: int = 0
    connected: bool | None = None

    def next_message(self, board: LiveBoard, alarms: AlarmCache, now_ms: int) -> dict[str, Any] | None:
        """The next message for this page, or None when nothing is due."""
        full = self.seq == 0
        values = board.entries_since(0 if full else self.board_version)
        connected = board.connected and alarms.connected
        alarms_changed = alarms.version != self.alarm_version
        tags_changed = board.tags_version != self.tags_version
        due = full or values or alarms_changed or tags_changed or connected != self.connected
        if not due and now_ms - self.last_push_ms < KEEPALIVE_MS:
            return None
        self.seq += 1
        message: dict[str, Any] = {
            "epoch": self.epoch, "seq": self.seq, "full": full, "now": now_ms,
            "connected": connected, "values": values,
        }
        if full or alarms_changed:
            message["alarms"] = {"version": alarms.version, **alarms.view}
        if full or tags_changed:
            message["tags"] = board.tags_version
        self.board_version = board.version
        self.alarm_version = alarms.version
        self.tags_version = board.tags_version
        self.last_push_ms = now_ms
        self.connected = connected
        return message


def as_store_update(message: dict[str, Any]) -> dict[str, Any] | Patch:
    """A full message replaces the store's data; a delta merges into it."""
    if message["full"]:
        return message
    patch = Patch()
    for key in ("seq", "full", "now", "connected"):
        patch[key] = message[key]
    if message["values"]:
        patch["values"].update(message["values"])
    if "alarms" in message:
        patch["alarms"] = message["alarms"]
    if "tags" in message:
        patch["tags"] = message["tags"]
    return patch


def outbound_backlog(websocket) -> int:
    """Messages queued for this socket and not yet sent (0 if Dash's internals change)."""
    queue = getattr(websocket, "_outbound_queue", None)
    try:
        return queue.sync_q.qsize() if queue is not None else 0
    except (AttributeError, RuntimeError):
        return 0


@callback(websocket=True, persistent=True)
async def push_live_values() -> None:
    websocket = ctx.websocket
    runtime = await current_runtime().ensure_started()
    interval_s = 1.0 / runtime.config.web.push_rate_hz
    cursor = PushCursor()
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while websocket is not None and not websocket.is_shutdown:
        now_ms = int(time.time() * 1000)
        runtime.board.refresh(now_ms)
        if outbound_backlog(websocket) <= MAX_OUTBOUND_BACKLOG:
            message = cursor.next_message(runtime.board, runtime.alarm_cache, now_ms)
            if message is not None:
                set_props(LIVE_STORE_ID, {"data": as_store_update(message)})
        # Fixed rate: the work of this tick counts against the interval; never faster than push_rate_hz.
        next_tick = max(next_tick + interval_s, loop.time())
        await asyncio.sleep(next_tick - loop.time())
