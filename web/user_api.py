"""The user administration API: the same functions as the /users page (web/user_admin.py).

    GET    /api/users                    {"users": [{name, role, areas, locked_out_s}, ...]}
    POST   /api/users                    {"name", "role", "password", "areas": [...]}   -> 201
    PATCH  /api/users/{name}             {"role"?, "areas"?, "password"?}
    DELETE /api/users/{name}
    POST   /api/users/{name}/unlock      ends a login lock-out

Admin only: 403 with the reason otherwise (the AuthMiddleware answers 401 without a session and
403 without the CSRF token). 400 with the reason on bad input (nothing changed), 404 for an
unknown account, 409 when the name is taken or the change would leave no admin. Areas: a list
of area names, empty for all areas. A password is never echoed or logged.
"""
from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from web import user_admin
from web.auth import current_identity
from web.roles import PermissionDenied
from web.runtime import current_runtime
from web.users import LastAdmin, NoSuchUser, UserError, UserExists

router = APIRouter(prefix="/api")

NEW_USER_FIELDS = frozenset({"name", "role", "password", "areas"})
CHANGE_FIELDS = frozenset({"role", "areas", "password"})


def _status(exc: Exception) -> int:
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NoSuchUser):
        return 404
    if isinstance(exc, (UserExists, LastAdmin)):
        return 409
    if isinstance(exc, UserError):
        return 400
    return 503


async def _run(make):
    """Await `make(redis)`; the refusals and errors as HTTP answers with their reason."""
    runtime = await current_runtime().ensure_started()
    try:
        return await make(runtime.redis)
    except (PermissionDenied, UserError) as exc:
        raise HTTPException(status_code=_status(exc), detail=str(exc)) from None
    except (RedisError, OSError) as exc:
        raise HTTPException(status_code=503, detail=f"user store unavailable (Redis: {exc})") from None


async def _body(request: Request, allowed: frozenset[str]) -> dict:
    """The JSON object sent; 400 for anything else or a field not known (a typo changes nothing)."""
    if current_identity() is None:  # the middleware lets no such request through; defence in depth
        raise HTTPException(status_code=401, detail="not logged in")
    admin = user_admin.may_manage_users(current_identity())
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        if not admin:
            return {}  # the refusal (403, audited) comes from user_admin, before the body matters
        raise HTTPException(status_code=400, detail="the body must be a JSON object")
    if not admin:
        return body
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HTTPException(status_code=400, detail=f"unknown field(s): {', '.join(unknown)}"
                                                    f" (allowed: {', '.join(sorted(allowed))})")
    return body


@router.get("/users")
async def users_list():
    rows = await _run(lambda redis: user_admin.list_accounts(redis, current_identity()))
    return {"users": [row.json() for row in rows]}


@router.post("/users", status_code=201)
async def users_add(request: Request):
    body = await _body(request, NEW_USER_FIELDS)
    row = await _run(lambda redis: user_admin.add_account(
        redis, current_identity(), body.get("name"), body.get("role"), body.get("password"),
        body.get("areas", [])))
    return JSONResponse(row.json(), status_code=201)


@router.patch("/users/{name}")
async def users_change(name: str, request: Request):
    body = await _body(request, CHANGE_FIELDS)
    changed = await _run(lambda redis: user_admin.apply_changes(
        redis, current_identity(), name, role=body.get("role"), areas=body.get("areas"),
        password=body.get("password")))
    row = await _run(lambda redis: user_admin.account(redis, current_identity(), name))
    return {"changed": changed, "user": row.json()}


@router.delete("/users/{name}")
async def users_delete(name: str):
    await _run(lambda redis: user_admin.delete_account(redis, current_identity(), name))
    return {"deleted": name}


@router.post("/users/{name}/unlock")
async def users_unlock(name: str):
    left_s = await _run(lambda redis: user_admin.unlock(redis, current_identity(), name))
    return {"unlocked": name, "was_locked_out_s": left_s}
