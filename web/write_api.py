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

from typing import Any

from fastapi import APIRouter, Body
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


@router.post("/tags/{name}/write")
async def write_tag(name: str, body: Any = Body(default=None)) -> JSONResponse:
    runtime = await current_runtime().ensure_started()
    if not isinstance(body, dict) or "value" not in body or set(body) - {"value", "reason"}:
        result = await refuse_and_audit(runtime, current_identity(), name, "",
                                        'the body must be a JSON object {"value": ..., "reason": "..."}')
        return JSONResponse(result_json(result), status_code=422)
    result = await execute_write(runtime, current_identity(), name, body["value"], body.get("reason"))
    return JSONResponse(result_json(result), status_code=status_of(result))
