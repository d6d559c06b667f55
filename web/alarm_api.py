"""JSON API for alarms: the current records, and the operator actions of the alarm page.

    GET  /api/alarms                          every alarm record, with shelve / suppression / service info;
                                              the engine's health in the headers X-Alarm-Engine-State
                                              (running, behind, not_running, unknown),
                                              X-Alarm-Engine-Heartbeat-Age-Ms and X-Alarm-Engine-Lag-Ms
    GET  /api/alarms/engine                   the engine's health as JSON (web/engine_health.py)
    POST /api/alarms/{alarm_id}/{action}      body {"comment": ..., "duration_s": ..., "one_shot": ...}

The list stays a plain JSON array (what existing clients read); a client that needs to
know whether the records are being kept current reads the headers or /api/alarms/engine.

Actions are alarm_engine.commands.ACTIONS, decided exactly as on the alarm page
(web.alarm_actions.perform_alarm_action): the role is checked here (403), the
engine answers (200 with accepted and its reason; 404 for an alarm it does not
know, 504 when it does not answer). Every answer is {alarm_id, action, accepted,
reason}. Like every /api route it needs a session, and a POST the CSRF header
(web/auth.py AuthMiddleware).
"""
from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from redis.exceptions import RedisError

from alarm_engine.alarm_store import read_all_alarms
from alarm_engine.commands import ACTIONS, NO_ANSWER, UNKNOWN_ALARM
from web.alarm_actions import perform_alarm_action
from web.alarm_view import alarm_record_json
from web.auth import current_identity
from web.engine_health import EngineHealth, engine_health_json, read_engine_health
from web.runtime import current_runtime

router = APIRouter(prefix="/api")

# A refusal made before the engine was asked, or an engine refusal a script must not take for success,
# as an HTTP status (the engine's other answers, accepted or not, are 200).
STATUS_BY_DECIDER = {"role": 403, "input": 400, "redis": 503, UNKNOWN_ALARM: 404, NO_ANSWER: 504}


class ActionBody(BaseModel):
    """Loose on purpose: perform_alarm_action cleans and refuses with a reason (and audits it)."""

    model_config = ConfigDict(extra="forbid")

    comment: str | None = None
    duration_s: float | None = None
    one_shot: bool = False


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status_code=503, detail=f"the data server (Redis) is unavailable: {exc}")


def engine_health_headers(health: EngineHealth) -> dict[str, str]:
    headers = {"X-Alarm-Engine-State": health.state.value}
    if health.heartbeat_age_ms is not None:
        headers["X-Alarm-Engine-Heartbeat-Age-Ms"] = str(health.heartbeat_age_ms)
    if health.lag_ms is not None:
        headers["X-Alarm-Engine-Lag-Ms"] = str(health.lag_ms)
    return headers


@router.get("/alarms")
async def list_alarms(response: Response) -> list[dict[str, Any]]:
    """Read from Redis, not this worker's cache: an API client acting then reading sees its change."""
    runtime = await current_runtime().ensure_started()
    try:
        records = await read_all_alarms(runtime.redis)
        health = await read_engine_health(runtime.redis, int(time.time() * 1000))
    except (RedisError, OSError) as exc:
        raise _unavailable(exc) from None
    response.headers.update(engine_health_headers(health))
    return [alarm_record_json(r) for r in sorted(records, key=lambda r: (r.priority, r.alarm_id))]


@router.get("/alarms/engine")
async def alarm_engine_health() -> dict[str, Any]:
    """Whether the alarm engine is deciding alarms: running, behind or not_running, with the figures."""
    runtime = await current_runtime().ensure_started()
    try:
        health = await read_engine_health(runtime.redis, int(time.time() * 1000))
    except (RedisError, OSError) as exc:
        raise _unavailable(exc) from None
    return engine_health_json(health)


@router.post("/alarms/{alarm_id:path}/{action}")
async def act_on_alarm(alarm_id: str, action: str, body: ActionBody | None = None) -> JSONResponse:
    if action not in ACTIONS:
        raise HTTPException(status_code=404, detail=f"no alarm action '{action}' (one of: {', '.join(ACTIONS)})")
    body = body or ActionBody()
    runtime = await current_runtime().ensure_started()
    results = await perform_alarm_action(runtime, current_identity(), action, [alarm_id], body.comment,
                                         body.duration_s, body.one_shot)
    if not results:  # the id was dropped when cleaned
        raise HTTPException(status_code=400, detail="the alarm id is empty or too long")
    result = results[0]
    answer = {"alarm_id": alarm_id, "action": action, "accepted": result.accepted, "reason": result.reason}
    return JSONResponse(answer, status_code=STATUS_BY_DECIDER.get(result.decided_by, 200))
