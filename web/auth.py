"""Every request needs a session, except the login page, static assets and /health.

An ASGI middleware on the FastAPI server loads the session for each HTTP
request: pages without one are redirected to /login?next=..., Dash callback and
API requests get 401 JSON. State-changing requests must come from our own
origin and echo the session's CSRF token in the X-CSRFToken header (Dash does
this from the stacklight_csrf cookie). The session is put in a context variable
that callbacks and page layouts read with current_session().

Two other ways in:
- `Authorization: Bearer slt_...` (a per-user API token, web/api_tokens.py), on /api/* only.
  A request that carries one is judged by it alone, cookie or not; no CSRF header or origin
  check (a browser never sends it by itself). It acts with the token user's current role and
  areas. A bad token gets 401 (audited at most once a minute per token); after
  TOKEN_FAILURE_LIMIT refused tokens from one address in TOKEN_FAILURE_WINDOW_S, 429.
- The kiosk (web.kiosk.allowed_networks): a request without a session from one of those
  networks is the read-only KIOSK_USER with the viewer role. It may view pages and GET the
  API; any other state-changing request is refused ("the kiosk view is read-only"), and Dash
  callbacks (a POST) get the viewer role, which every write and alarm action refuses.

Websockets carry no session into Dash callbacks: they are authenticated in the
websocket_connect hook and re-checked on every message (a kiosk client passes both).
"""
from __future__ import annotations

import logging
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from urllib.parse import quote, urlparse

from dash import hooks
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tag_store import keys
from web.api_tokens import resolve_token, token_hash
from web.audit import AuditEvent, append_audit
from web.roles import Action, Role, require
from web.runtime import current_runtime
from web.sessions import CSRF_HEADER, SESSION_COOKIE, Session, load_session, session_exists

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/login", "/logout", "/health", "/_favicon.ico", "/favicon.ico"})
PUBLIC_PREFIXES = ("/assets/",)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Websocket close codes: the browser's Dash worker does not retry after 4001, it does after others.
WS_NOT_LOGGED_IN = (4001, "not logged in")
WS_STORE_DOWN = (4503, "session store unavailable")
DASH_CALLBACK_PATH = "/_dash-update-component"
API_PREFIX = "/api/"

# How a request was authenticated (RequestIdentity.method, GET /api/session "auth").
BY_SESSION, BY_TOKEN, BY_KIOSK = "session", "token", "kiosk"
# The kiosk's user name: parentheses, so no account can ever have it.
KIOSK_USER = "(kiosk)"
KIOSK_READ_ONLY = "the kiosk view is read-only"
KIOSK_AUDIT_INTERVAL_S = 3600
BAD_TOKEN = "invalid or expired API token"
TOKEN_ONLY_FOR_API = "an API token is accepted for /api/ only (pages, Dash and websockets need a login)"
TOKEN_FAILURE_LIMIT = 20
TOKEN_FAILURE_WINDOW_S = 300
TOKEN_REFUSAL_AUDIT_INTERVAL_S = 60


@dataclass(frozen=True, slots=True)
class RequestIdentity:
    session: Session
    source_ip: str
    method: str = BY_SESSION  # BY_SESSION, BY_TOKEN or BY_KIOSK
    token_id: str = ""  # the API token's public id when method is BY_TOKEN

    @property
    def is_kiosk(self) -> bool:
        return self.method == BY_KIOSK


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


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header ("" if empty); None for no or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


# --- kiosk ---------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _networks(allowed: tuple[str, ...]) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(n, strict=False) for n in allowed)


def in_networks(client_ip: str | None, allowed: tuple[str, ...] | list[str]) -> bool:
    """Whether the client address is inside one of the networks (an IPv4-mapped IPv6 address counts as IPv4)."""
    if not client_ip or not allowed:
        return False
    try:
        address = ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    candidates = (address, mapped) if mapped is not None else (address,)
    return any(a in network for network in _networks(tuple(allowed)) for a in candidates
               if a.version == network.version)


def kiosk_client(client_ip: str | None) -> bool:
    """Whether a client without a session gets the read-only kiosk view (web.kiosk.allowed_networks)."""
    kiosk = current_runtime().config.web.kiosk
    return kiosk is not None and in_networks(client_ip, tuple(kiosk.allowed_networks))


def kiosk_session(now_ms: int | None = None) -> Session:
    return Session(user=KIOSK_USER, role=Role.VIEWER, csrf_token="",
                   created_ms=int(time.time() * 1000) if now_ms is None else now_ms)


_kiosk_noted_until: dict[str, float] = {}


async def note_kiosk_view(redis, client_ip: str) -> None:
    """Audit "kiosk_view" at most once per client address and KIOSK_AUDIT_INTERVAL_S (all workers)."""
    now = time.monotonic()
    if _kiosk_noted_until.get(client_ip, 0.0) > now:
        return
    if len(_kiosk_noted_until) > 1000:
        _kiosk_noted_until.clear()
    _kiosk_noted_until[client_ip] = now + KIOSK_AUDIT_INTERVAL_S
    if await redis.set(keys.kiosk_view_noted(client_ip), "1", nx=True, ex=KIOSK_AUDIT_INTERVAL_S):
        await append_audit(redis, AuditEvent(user=KIOSK_USER, action="kiosk_view", result="ok",
                                             reason="read-only view without login (web.kiosk)",
                                             source_ip=client_ip))


# --- API tokens ----------------------------------------------------------------------------

# Count one refused token from an address; the window starts with the first. Returns {count, ttl}.
_COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('TTL', KEYS[1])}
"""


async def token_lockout_s(redis, client_ip: str) -> int:
    """Seconds until `client_ip` may present tokens again; 0 when it may now."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.api_token_failures(client_ip))
    pipe.ttl(keys.api_token_failures(client_ip))
    count, ttl = await pipe.execute()
    if count is None or int(count) < TOKEN_FAILURE_LIMIT:
        return 0
    return max(int(ttl), 1)


async def note_token_refusal(redis, token: str, client_ip: str, reason: str) -> None:
    """Count the refusal against the address; audit it at most once a minute per token."""
    await redis.eval(_COUNT_FAILURE, 1, keys.api_token_failures(client_ip), TOKEN_FAILURE_WINDOW_S)
    marker = keys.api_token_refusal_noted(token_hash(token)[:16])
    if await redis.set(marker, "1", nx=True, ex=TOKEN_REFUSAL_AUDIT_INTERVAL_S):
        await append_audit(redis, AuditEvent(user="(API token)", action="api_token_refused", result="refused",
                                             reason=reason, source_ip=client_ip))


def _refused_token(reason: str, status_code: int = 401, retry_after_s: int | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status_code == 401 else {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return JSONResponse({"error": reason}, status_code=status_code, headers=headers)


async def identify_by_token(redis, token: str, client_ip: str) -> tuple[Response | None, RequestIdentity | None]:
    """The token's identity, or the refusal (401 bad token, 429 too many refused from this address)."""
    wait_s = await token_lockout_s(redis, client_ip)
    if wait_s:
        return _refused_token(f"too many invalid API tokens from your address; try again in {wait_s} s",
                              429, wait_s), None
    resolved = await resolve_token(redis, token)
    if resolved is None:
        await note_token_refusal(redis, token, client_ip, BAD_TOKEN)
        return _refused_token(BAD_TOKEN), None
    user, record = resolved
    session = Session(user=user.name, role=user.role, csrf_token="", created_ms=record.created_ms,
                      areas=user.areas)
    return None, RequestIdentity(session, client_ip, BY_TOKEN, record.id)


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
        client = conn.client.host if conn.client else ""
        token = None if is_public(path) else bearer_token(conn.headers.get("authorization"))
        if token is not None and not path.startswith(API_PREFIX):
            return _refused_token(TOKEN_ONLY_FOR_API), None
        if token is None and unsafe and not same_origin(conn.headers.get("origin") or conn.headers.get("referer"),
                                                        conn.headers.get("host")):
            return JSONResponse({"error": "cross-site request refused"}, status_code=403), None
        if is_public(path):
            return None, None
        runtime = await current_runtime().ensure_started()
        try:
            if token is not None:  # judged by the token alone, whatever cookie comes with it
                return await identify_by_token(runtime.redis, token, client)
            session = await load_session(runtime.redis, conn.cookies.get(SESSION_COOKIE),
                                         runtime.config.web.session_idle_timeout_s)
            if session is None and kiosk_client(client):
                if unsafe and path != DASH_CALLBACK_PATH:
                    return JSONResponse({"error": KIOSK_READ_ONLY}, status_code=403), None
                await note_kiosk_view(runtime.redis, client)
                return None, RequestIdentity(kiosk_session(), client, BY_KIOSK)
        except (RedisError, OSError) as exc:
            log.warning("cannot check a session, Redis unavailable: %s", exc)
            return JSONResponse({"error": "session store (Redis) unavailable"}, status_code=503), None
        if session is None:
            if is_page_request(method, path):
                return RedirectResponse(login_redirect_target(path, conn.url.query), status_code=303), None
            return JSONResponse({"error": "not logged in", "login": "/login"}, status_code=401), None
        if unsafe and not secrets.compare_digest(conn.headers.get(CSRF_HEADER, ""), session.csrf_token):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403), None
        return None, RequestIdentity(session, client)


@hooks.websocket_connect()
async def authenticate_websocket(websocket) -> bool | tuple[int, str]:
    runtime = await current_runtime().ensure_started()
    try:
        session = await load_session(runtime.redis, websocket.cookies.get(SESSION_COOKIE),
                                     runtime.config.web.session_idle_timeout_s)
    except (RedisError, OSError):
        return WS_STORE_DOWN
    if session is not None or kiosk_client(websocket.client.host if websocket.client else None):
        return True
    return WS_NOT_LOGGED_IN


@hooks.websocket_message()
async def recheck_websocket_session(websocket, _message) -> bool | tuple[int, str]:
    runtime = await current_runtime().ensure_started()
    try:
        alive = await session_exists(runtime.redis, websocket.cookies.get(SESSION_COOKIE))
    except (RedisError, OSError):
        return True  # authenticated at connect; a Redis hiccup must not blank the operator's screen
    if alive or kiosk_client(websocket.client.host if websocket.client else None):
        return True
    return WS_NOT_LOGGED_IN
