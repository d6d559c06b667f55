"""JSON API for setpoint writes: the faceplate's checks, send and audit, for scripts and clients.

    POST /api/tags/{name}/write      body {"value": ..., "reason": "..."}

Decided by web.writes.execute_write, exactly as a confirmed write on the faceplate: role, the
tag's write role and the user's areas, then the value (type, limits, step, quality), the reason
where the tag requires one; sent to the data source and verified by readback; audited.
Like every /api route it needs a login (a session cookie, or a token where enabled), and a
session's POST the CSRF header (web/auth.py).

    200  {"state": "done", "message": ..., "readback": ...}  written and confirmed by readback
    403  permission (role, the tag's write role, the user's areas)
    404  no such tag
    409  a critical tag: it needs a second person's approval on the faceplate
    422  refused by the rules (not a number, outside the limits, step too large, no reason, ...)
    502  the device (or the data source's own check) refused it: the device's reason
    503  the data server (Redis) is unavailable
    504  timed out (the readback never confirmed it) or no answer (is the data source running?)
Every answer is {"state", "message", "readback"} (state: done, refused, needs_approval, rejected, timed_out,
no_answer, failed).
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from web.auth import current_identity
from web.runtime import current_runtime
from web.writes import WriteResult, WriteState, execute_write, refuse_and_audit

router = APIRouter(prefix="/api")

STATUS = {
    WriteState.DONE: 200, WriteState.NEEDS_APPROVAL: 409, WriteState.REJECTED: 502, WriteState.FAILED: 503,
    WriteState.TIMED_OUT: 504, WriteState.NO_ANSWER: 504,
}


def status_of(result: WriteResult) -> int:
    if result.state is WriteState.REFUSED:
        if result.denied:
            return 403
        return 404 if result.message.startswith("there is no tag") else 422
    return STATUS[result.state]


def result_json(result: WriteResult) -> dict[str, Any]:
    return {"state": result.state.name.lower(), "message": result.message, "readback": result.readback}


BODY_FIELDS = frozenset({"value", "reason"})
BODY_SHAPE = 'the body must be a JSON object {"value": ..., "reason": "..."}'


def body_problem(raw: bytes) -> tuple[dict[str, Any], str]:
    """The request body as a write, or what is wrong with it (said plainly: it is shown and audited)."""
    try:
        body = json.loads(raw or b"null")
    except UnicodeDecodeError:
        return {}, "the body is not UTF-8 text; " + BODY_SHAPE
    except ValueError as exc:
        return {}, f"the body is not valid JSON ({exc}); " + BODY_SHAPE
    if not isinstance(body, dict):
        return {}, BODY_SHAPE
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:  # a typo such as "resaon" must not write without the reason meant
        return {}, f"unknown field(s) {', '.join(unknown)}; {BODY_SHAPE}"
    if "value" not in body:
        return {}, 'no "value" in the body; ' + BODY_SHAPE
    return body, ""


@router.post("/tags/{name}/write")
async def write_tag(name: str, request: Request) -> JSONResponse:
    runtime = await current_runtime().ensure_started()
    body, problem = body_problem(await request.body())
    if problem:
        result = await refuse_and_audit(runtime, current_identity(), name, "", problem)
        return JSONResponse(result_json(result), status_code=422)
    result = await execute_write(runtime, current_identity(), name, body["value"], body.get("reason"))
    return JSONResponse(result_json(result), status_code=status_of(result))
