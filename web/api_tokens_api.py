"""JSON API for one's own API tokens.

    GET    /api/tokens                  your tokens (never the tokens themselves)
    POST   /api/tokens  {label, days}   make one; the answer holds the token, once (login session only)
    DELETE /api/tokens/{id}[?user=NAME] revoke one of yours; an admin may name another user

A token may list and revoke, but not make tokens (403): a leaked token must not be able to
outlive its own revocation. The kiosk has no tokens. Every change is audited (web/api_tokens.py).
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from redis.exceptions import RedisError

from web.api_tokens import TokenError, create_token, list_tokens, revoke_token
from web.auth import BY_SESSION, RequestIdentity, current_identity
from web.roles import Action, PermissionDenied, require
from web.runtime import current_runtime

router = APIRouter(prefix="/api")

TOKEN_CANNOT_MINT = "an API token may not create API tokens; log in to make one"
KIOSK_HAS_NO_TOKENS = "the kiosk view has no API tokens; log in"


class NewTokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    days: int | None = None


def _account_holder() -> RequestIdentity:
    identity = current_identity()
    if identity is None:  # the middleware lets no such request through; defence in depth
        raise HTTPException(status_code=401, detail="not logged in")
    if identity.is_kiosk:
        raise HTTPException(status_code=403, detail=KIOSK_HAS_NO_TOKENS)
    return identity


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status_code=503, detail=f"the data server (Redis) is unavailable: {exc}")


@router.get("/tokens")
async def my_tokens() -> list[dict[str, Any]]:
    identity = _account_holder()
    runtime = await current_runtime().ensure_started()
    try:
        return [t.as_json() for t in await list_tokens(runtime.redis, identity.session.user)]
    except (RedisError, OSError) as exc:
        raise _unavailable(exc) from None


@router.post("/tokens", status_code=201)
async def new_token(body: NewTokenBody) -> JSONResponse:
    identity = _account_holder()
    if identity.method != BY_SESSION:
        raise HTTPException(status_code=403, detail=TOKEN_CANNOT_MINT)
    runtime = await current_runtime().ensure_started()
    try:
        plaintext, record = await create_token(
            runtime.redis, identity.session.user, body.label, body.days, by=identity.session.user,
            source_ip=identity.source_ip, max_days=runtime.config.web.api_token_max_days)
    except TokenError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except (RedisError, OSError) as exc:
        raise _unavailable(exc) from None
    return JSONResponse({**record.as_json(), "token": plaintext,
                         "note": "shown only now: store it safely"}, status_code=201,
                        headers={"Cache-Control": "no-store"})


@router.delete("/tokens/{token_id}")
async def remove_token(token_id: str, user: str | None = None) -> dict[str, Any]:
    identity = _account_holder()
    owner = user or identity.session.user
    if owner != identity.session.user:
        try:
            require(identity.session.role, Action.MANAGE_USERS)
        except PermissionDenied as exc:
            raise HTTPException(status_code=403, detail=f"another user's tokens: {exc}") from None
    runtime = await current_runtime().ensure_started()
    try:
        revoked = await revoke_token(runtime.redis, owner, token_id, by=identity.session.user,
                                     source_ip=identity.source_ip)
    except (RedisError, OSError) as exc:
        raise _unavailable(exc) from None
    if not revoked:
        raise HTTPException(status_code=404, detail=f"{owner} has no API token with id '{token_id}'")
    return {"user": owner, "id": token_id, "revoked": True}
