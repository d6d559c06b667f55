"""Response headers that keep the HMI out of other sites' frames and browsers from guessing types.

A page of the HMI inside another site's frame could be clicked by an operator who thinks they are
somewhere else (clickjacking), so every response forbids framing: CSP frame-ancestors for current
browsers, X-Frame-Options for old ones. Only frame-ancestors: a full script policy would have to
allow Dash's inline start-up script and adds nothing the session cookie's SameSite=Strict and the
CSRF token do not already cover.

Over HTTPS (directly, or from a trusted proxy that said X-Forwarded-Proto: https) browsers are also
told to use only HTTPS for a year (HSTS), so a later plain http:// link cannot expose the cookie.
Never over plain HTTP: a browser ignores it there, and an HMI without a certificate must stay usable.
"""
from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
HSTS_HEADER = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = (*SECURITY_HEADERS, HSTS_HEADER) if scope.get("scheme") == "https" else SECURITY_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _value in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in headers if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)
