"""Only the live-value push runs over the websocket; every action goes through its page's HTTP callback.

Writes, alarm actions and user changes are ordinary Dash callbacks: over HTTP they carry the
session, the CSRF token and the origin check (web/auth.py). Dash itself refuses a non-websocket
callback sent over the socket, but by raising inside its receive loop: the socket drops without a
close frame and nothing says who tried what. This hook refuses such a message first, with a close
code and reason the sender can read, and puts the attempt in the audit trail.
"""
from __future__ import annotations

import logging

import dash
from dash import hooks
from redis.exceptions import RedisError

from web.audit import AuditEvent, append_audit
from web.auth import KIOSK_USER
from web.runtime import current_runtime
from web.sessions import SESSION_COOKIE, load_session

log = logging.getLogger(__name__)

WS_NOT_A_PUSH = (4003, "only live values come over the websocket; actions go through their page")
AUDIT_ACTION = "websocket_refused"


def websocket_outputs(callback_map: dict) -> frozenset[str]:
    """The outputs of the callbacks declared with websocket=True."""
    return frozenset(output for output, spec in callback_map.items() if spec.get("websocket"))


def refused_callback(message: object, allowed_outputs: frozenset[str]) -> str | None:
    """The output a websocket `callback_request` asks for when it is not one of `allowed_outputs`;
    None for an allowed request and for the other message kinds (heartbeats, get_props answers)."""
    if not isinstance(message, dict) or message.get("type") != "callback_request":
        return None
    payload = message.get("payload")
    output = payload.get("output") if isinstance(payload, dict) else None
    if isinstance(output, str) and output in allowed_outputs:
        return None
    return str(output)[:200]


@hooks.websocket_message()
async def refuse_actions_over_websocket(websocket, message) -> bool | tuple[int, str]:
    output = refused_callback(message, websocket_outputs(dash.get_app().callback_map))
    if output is None:
        return True
    client_ip = websocket.client.host if websocket.client else ""
    user = KIOSK_USER
    try:
        runtime = await current_runtime().ensure_started()
        session = await load_session(runtime.redis, websocket.cookies.get(SESSION_COOKIE),
                                     runtime.config.web.session_idle_timeout_s, refresh=False)
        user = session.user if session is not None else user
        await append_audit(runtime.redis, AuditEvent(
            user=user, action=AUDIT_ACTION, result="refused", source_ip=client_ip,
            reason=f"callback {output} sent over the websocket; only the live push runs there"))
    except (RedisError, OSError) as error:  # refused all the same; the log keeps the attempt
        log.warning("could not audit a refused websocket callback: %s", error)
    log.warning("refused callback %s over the websocket from %s (%s)", output, user, client_ip)
    return WS_NOT_A_PUSH
