"""Every request needs a session, except the login page, static assets and /health.

An ASGI middleware on the FastAPI server loads the session for each HTTP
request: pages without one are redirected to /login?next=..., Dash callback and
API requests get 401 JSON. State-changing requests must come from our own
origin and echo the session's CSRF token in the X-CSRFToken header (Dash does
this from the stacklight_csrf cookie). The session is put in a context variable
that callbacks and page layouts read with current_session().

Websockets carry no session into Dash callbacks: they are authenticated in the
websocket_connect hook and re-checked on every message.
"""
from __future__ import annotations

import logging
import secrets
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import quote, urlparse

from dash import hooks
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from web.roles import Action, require
from web.runtime import current_runtime
from web.sessions import CSRF_HEADER, SESSION_COOKIE, Session, load_session, session_exists

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/login", "/logout", "/health", "/_favicon.ico", "/favicon.ico"})
PUBLIC_PREFIXES = ("/assets/",)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Websocket close codes: the browser's Dash worker does not retry after 4001, it does after others.
WS_NOT_LOGGED_IN = (4001, "not logged in")
WS_STORE_DOWN = (4503, "session store unavailable")


@dataclass(frozen=True, slots=True)
class RequestIdentity:
    session: Session
    source_ip: str


_identity: ContextVar[RequestIdentity | None] = ContextVar("stacklight_identity", default=None)


def current_identity() -> RequestIdentity | None:
    return _identity.get()


def current_session() -> Session | None:
    identity = _identity.get()
    return identity.session if identity else None


def require_permission(action: Action) -> RequestIdentity:
    """The caller's identity if its role allows `action`; raises PermissionDenied otherwise."""
    identity = _identity.get()
    require(identity.session.role if identity else None, action)
    assert identity is not None
    return identity


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_page_request(method: str, path: str) -> bool:
    """A browser navigation (answered with a redirect to /login) rather than a data request (401)."""
    return method in ("GET", "HEAD") and not path.startswith(("/_dash-", "/api/", "/_reload-hash"))


def same_origin(origin_or_referer: str | None, host: str | None) -> bool:
    """No Origin/Referer (non-browser clients) passes; a foreign one does not."""
    if not origin_or_referer:
        return True
    return bool(host) and urlparse(origin_or_referer).netloc == host


def login_redirect_target(path: str, query: str) -> str:
    target = path + (f"?{query}" if query else "")
    return "/login?next=" + quote(target, safe="")


class AuthMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response, identity = await self._check(scope)
        if response is not None:
            await response(scope, receive, send)
            return
        if identity is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["session"] = identity.session
        token = _identity.set(identity)
        try:
            await self.app(scope, receive, send)
        finally:
            _identity.reset(token)

    async def _check(self, scope: Scope) -> tuple[Response | None, RequestIdentity | None]:
        conn = HTTPConnection(scope)
        method, path = scope["method"], scope["path"]
        unsafe = method in UNSAFE_METHODS
        if unsafe and not same_origin(conn.headers.get("origin") or conn.headers.get("referer"),
                                      conn.headers.get("host")):
            return JSONResponse({"error": "cross-site request refused"}, status_code=403), None
        if is_public(path):
            return None, None
        runtime = await current_runtime().ensure_started()
        try:
            session = await load_session(runtime.redis, conn.cookies.get(SESSION_COOKIE),
                                         runtime.config.web.session_idle_timeout_s)
        except (RedisError, OSError) as exc:
            log.warning("cannot check a session, Redis unavailable: %s", exc)
            return JSONResponse({"error": "session store (Redis) unavailable"}, status_code=503), None
        if session is None:
            if is_page_request(method, path):
                return RedirectResponse(login_redirect_target(path, conn.url.query), status_code=303), None
            return JSONResponse({"error": "not logged in", "login": "/login"}, status_code=401), None
        if unsafe and not secrets.compare_digest(conn.headers.get(CSRF_HEADER, ""), session.csrf_token):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403), None
        client = conn.client.host if conn.client else ""
        return None, RequestIdentity(session, client)


@hooks.websocket_connect()
async def authenticate_websocket(websocket) -> bool | tuple[int, str]:
    runtime = await current_runtime().ensure_started()
    try:
        session = await load_session(runtime.redis, websocket.cookies.get(SESSION_COOKIE),
                                     runtime.config.web.session_idle_timeout_s)
    except (RedisError, OSError):
        return WS_STORE_DOWN
    return True if session is not None else WS_NOT_LOGGED_IN


@hooks.websocket_message()
async def recheck_websocket_session(websocket, _message) -> bool | tuple[int, str]:
    runtime = await current_runtime().ensure_started()
    try:
        alive = await session_exists(runtime.redis, websocket.cookies.get(SESSION_COOKIE))
    except (RedisError, OSError):
        return True  # authenticated at connect; a Redis hiccup must not blank the operator's screen
    return True if alive else WS_NOT_LOGGED_IN
