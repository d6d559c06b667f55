"""One persistent websocket callback per browser page: live values and alarms into `live-store`.

The loop wakes push_rate_hz times a second, refreshes this worker's LiveBoard
and sends what changed since its last push: the first message replaces the
store, later ones are Dash Patches that merge into it, so even if the browser
coalesces two messages nothing is lost. It skips a tick while its socket still
has unsent messages (the per-socket queue is unbounded) and sends a keep-alive
at least once a second so the page can tell a live link from a dead one.
"tags" carries the tag directory version (first message and whenever it moved),
so a page that lists tags (the overview) knows when discovered tags came or changed.

Every SESSION_RECHECK_S the loop re-reads its page's login (web.sessions.peek_session:
one Redis round trip that does not restart the idle timer, so pushing is no activity).
Once the session is gone (logout, idle timeout, user deleted) or the user's role
changed, it stops pushing and tells the page ("session": "ended" or "changed"; the page
goes to /login or reloads). An ended session's websocket is closed with 4001 after
SESSION_END_GRACE_S, which leaves the other tabs sharing the browser's socket (Dash's
shared worker) a recheck to tell their pages too.
The login comes from the websocket_connect hook below, through a context variable that
the tasks Dash starts for this socket's callbacks inherit.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from dash import Patch, callback, ctx, hooks, set_props
from redis.exceptions import RedisError

from web.alarm_cache import AlarmCache
from web.auth import kiosk_client
from web.live_board import LiveBoard
from web.roles import Role
from web.runtime import current_runtime
from web.sessions import SESSION_COOKIE, Session, load_session, peek_session

log = logging.getLogger(__name__)

LIVE_STORE_ID = "live-store"
KEEPALIVE_MS = 1000
# Unsent messages tolerated in the socket's queue before a tick is skipped (changes merge meanwhile).
MAX_OUTBOUND_BACKLOG = 2
SESSION_RECHECK_S = 2.0
SESSION_END_GRACE_S = SESSION_RECHECK_S + 1.0
WS_SESSION_ENDED = (4001, "session ended")  # the browser's Dash worker does not reconnect after 4001


class SessionVerdict(enum.Enum):
    LIVE = "live"
    ENDED = "ended"  # logged out, timed out or deleted: the page goes to /login
    CHANGED = "changed"  # the role changed: the page reloads to show what the new role may do


def judge_session(role_at_start: Role | None, now: Session | None) -> SessionVerdict:
    """LIVE while the session lasts with the role the page was shown with."""
    if now is None:
        return SessionVerdict.ENDED
    return SessionVerdict.LIVE if now.role == role_at_start else SessionVerdict.CHANGED


@dataclass
class SessionWatch:
    """When this page's login is due to be read again, and the role it was shown with."""

    next_check_s: float
    user: str | None = None  # until the session was first read
    role: Role | None = None

    def due(self, now_s: float) -> bool:
        if now_s < self.next_check_s:
            return False
        self.next_check_s = now_s + SESSION_RECHECK_S
        return True


@dataclass(frozen=True)
class SocketLogin:
    """The session cookie a websocket was opened with, and the socket, for its push loops."""

    token: str
    websocket: Any  # starlette.websockets.WebSocket


_socket_login: ContextVar[SocketLogin | None] = ContextVar("stacklight_socket_login", default=None)


@hooks.websocket_connect()
async def remember_socket_login(websocket) -> bool:
    """Runs in the socket handler's task, so the callback tasks it starts later see the login."""
    _socket_login.set(SocketLogin(websocket.cookies.get(SESSION_COOKIE, ""), websocket))
    return True


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


def session_end_update(cursor: PushCursor, verdict: SessionVerdict) -> dict[str, Any] | Patch:
    """What tells the page its session ended or changed: a patch, or the whole store before any push."""
    if cursor.seq == 0:
        return {"epoch": cursor.epoch, "seq": 0, "full": True, "values": {}, "session": verdict.value}
    patch = Patch()
    patch["session"] = verdict.value
    return patch


def outbound_backlog(websocket) -> int:
    """Messages queued for this socket and not yet sent (0 if Dash's internals change)."""
    queue = getattr(websocket, "_outbound_queue", None)
    try:
        return queue.sync_q.qsize() if queue is not None else 0
    except (AttributeError, RuntimeError):
        return 0


async def check_session(redis, login: SocketLogin, watch: SessionWatch, idle_timeout_s: int) -> SessionVerdict:
    """This page's login as it stands; a Redis outage keeps it live (checked at connect, and no
    values flow meanwhile anyway), as the websocket message hook does."""
    try:
        if watch.user is None:  # first read: whose page is this
            now = await load_session(redis, login.token, idle_timeout_s, refresh=False)
            if now is not None:
                watch.user, watch.role = now.user, now.role
            elif kiosk_client(login.websocket.client.host if login.websocket.client else None):
                return SessionVerdict.LIVE  # the read-only kiosk view (web/auth.py): no login to end
        else:
            now = await peek_session(redis, login.token, watch.user)
    except (RedisError, OSError) as exc:
        log.debug("cannot re-check a live page's session: %s", exc)
        return SessionVerdict.LIVE
    return judge_session(watch.role, now)


async def end_session_push(websocket, login: SocketLogin, cursor: PushCursor, verdict: SessionVerdict) -> None:
    """Tell the page; when the session ended, give the socket's other pages a recheck to do the
    same, then close it. A role change leaves the socket to the reloaded page."""
    set_props(LIVE_STORE_ID, {"data": session_end_update(cursor, verdict)})
    if verdict is not SessionVerdict.ENDED:
        return
    await asyncio.sleep(SESSION_END_GRACE_S)
    if websocket.is_shutdown:
        return
    try:
        await login.websocket.close(*WS_SESSION_ENDED)
    except RuntimeError:
        pass  # already closing or closed


@callback(websocket=True, persistent=True)
async def push_live_values() -> None:
    websocket = ctx.websocket
    runtime = await current_runtime().ensure_started()
    login = _socket_login.get()
    if websocket is None or login is None:
        log.error("live push: no login known for this websocket, pushing nothing")
        return
    cursor = PushCursor()
    interval_s = 1.0 / runtime.config.web.push_rate_hz
    loop = asyncio.get_running_loop()
    watch = SessionWatch(next_check_s=loop.time())  # read before the first push
    next_tick = loop.time()
    while not websocket.is_shutdown:
        if watch.due(loop.time()):
            verdict = await check_session(runtime.redis, login, watch, runtime.config.web.session_idle_timeout_s)
            if verdict is not SessionVerdict.LIVE:
                log.info("live push to %s stopped: session %s", watch.user, verdict.value)
                await end_session_push(websocket, login, cursor, verdict)
                return
        now_ms = int(time.time() * 1000)
        runtime.board.refresh(now_ms)
        if outbound_backlog(websocket) <= MAX_OUTBOUND_BACKLOG:
            message = cursor.next_message(runtime.board, runtime.alarm_cache, now_ms)
            if message is not None:
                set_props(LIVE_STORE_ID, {"data": as_store_update(message)})
        # Fixed rate: the work of this tick counts against the interval; never faster than push_rate_hz.
        next_tick = max(next_tick + interval_s, loop.time())
        await asyncio.sleep(next_tick - loop.time())
