"""Logging in and out: the /login form, /logout, and the decision behind them."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from redis.exceptions import RedisError

from web.audit import AuditEvent, append_audit
from web.login_page import login_page_html
from web.login_throttle import MAX_FAILURES, claim_attempt, clear_failures, login_gate
from web.runtime import current_runtime
from web.sessions import CSRF_COOKIE, SESSION_COOKIE, create_session, end_session, load_session
from web.users import USER_NAME_PATTERN, User, get_user, verify_password

WRONG_CREDENTIALS = "Wrong user name or password."
BUSY = "Too many logins at once. Try again shortly."
# What the audit says for a failed login under a name that is no account (it is not recorded).
UNKNOWN_NAME = "(unknown name)"

router = APIRouter()


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User | None
    message: str = ""


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True, slots=True)
class Verification:
    """A password check through the lock-out: the user, or why not (message for the person, reason for the audit)."""

    user: User | None
    message: str = ""
    reason: str = ""


async def verify_throttled(redis: aioredis.Redis, name: str, password: str) -> Verification:
    """Check a name and password with lock-out and the per-process gate; nothing is audited here.

    The attempt is counted before the password is verified, so parallel guesses cannot
    slip past the limit: at most MAX_FAILURES are ever verified per name and window.
    Used by the login and by a second person's approval of a critical write.
    """
    if not USER_NAME_PATTERN.fullmatch(name):
        return Verification(None, WRONG_CREDENTIALS, "invalid user name")
    gate = login_gate()
    with gate.admit() as admitted:
        if not admitted:
            return Verification(None, BUSY, "too many logins in flight: not checked")
        attempt = await claim_attempt(redis, name)
        if not attempt.allowed:
            return Verification(None, f"Too many failed attempts. Try again in {_minutes(attempt.window_left_s)}.",
                                f"locked out (attempt {attempt.number}): not checked")
        await asyncio.sleep(attempt.delay_s)
        async with gate.verifications:
            user = await verify_password(redis, name, password)
    if user is None:
        if attempt.number >= MAX_FAILURES:
            return Verification(None, f"Too many failed attempts. Try again in {_minutes(attempt.window_left_s)}.",
                                f"wrong password ({attempt.number} failures): locked out")
        return Verification(None, WRONG_CREDENTIALS, f"wrong user name or password ({attempt.number} failures)")
    await clear_failures(redis, name)
    return Verification(user)


async def is_known_name(redis: aioredis.Redis, name: str) -> bool:
    """Whether `name` is an account (a name that is not is often a password typed into the wrong box)."""
    return USER_NAME_PATTERN.fullmatch(name) is not None and await get_user(redis, name) is not None


async def attempt_login(redis: aioredis.Redis, name: str, password: str, source_ip: str) -> LoginResult:
    """Check a name and password with lock-out (verify_throttled), and audit the outcome."""
    checked = await verify_throttled(redis, name, password)
    if checked.user is None:
        # A name that is no account is often a password typed into the wrong box: never record it.
        known = await is_known_name(redis, name)
        await append_audit(redis, AuditEvent(user=name if known else UNKNOWN_NAME, action="login_failed",
                                             result="refused", reason=checked.reason, source_ip=source_ip))
        return LoginResult(None, checked.message)
    await append_audit(redis, AuditEvent(user=checked.user.name, action="login", result="ok", source_ip=source_ip))
    return LoginResult(checked.user)


def safe_next(path: str | None) -> str:
    """Only local paths: never let ?next= send a user to another site."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or "\n" in path:
        return "/"
    return path


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _login_response(next_path: str, message: str = "", user_name: str = "", status: int = 200) -> HTMLResponse:
    site = current_runtime().config.site_name
    return HTMLResponse(login_page_html(site, next_path, message, user_name), status_code=status,
                        headers={"Cache-Control": "no-store"})


@router.get("/login", include_in_schema=False)
async def show_login(request: Request) -> Response:
    return _login_response(safe_next(request.query_params.get("next")))


@router.post("/login", include_in_schema=False)
async def submit_login(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    name, password = form.get("username", "").strip(), form.get("password", "")
    next_path = safe_next(form.get("next"))
    runtime = await current_runtime().ensure_started()
    try:
        result = await attempt_login(runtime.redis, name, password, client_ip(request))
        if result.user is None:
            return _login_response(next_path, result.message, name, status=401)
        token, session = await create_session(
            runtime.redis, result.user.name, result.user.role, runtime.config.web.session_idle_timeout_s,
            result.user.checked_ms or int(time.time() * 1000), client_ip(request),
        )
    except RedisError:
        return _login_response(next_path, "The data server (Redis) is not reachable. Try again shortly.",
                               name, status=503)
    response = RedirectResponse(next_path, status_code=303)
    # https directly, or from a proxy in web.trusted_proxies that said X-Forwarded-Proto: https.
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")
    # Readable by the page on purpose: Dash echoes it in the X-CSRFToken header.
    response.set_cookie(CSRF_COOKIE, session.csrf_token, httponly=False, samesite="strict", secure=secure, path="/")
    return response


@router.api_route("/logout", methods=["GET", "POST"], include_in_schema=False)
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    runtime = await current_runtime().ensure_started()
    try:
        session = await load_session(runtime.redis, token, runtime.config.web.session_idle_timeout_s, refresh=False)
        await end_session(runtime.redis, token)
        if session is not None:
            await append_audit(runtime.redis, AuditEvent(user=session.user, action="logout", result="ok",
                                                         source_ip=client_ip(request)))
    except RedisError:
        pass
    response = RedirectResponse("/login", status_code=303)
    # The same attributes as when set: a Secure cookie is only replaced by a Secure Set-Cookie.
    secure = request.url.scheme == "https"
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")
    return response
