"""JSON API on the web server: the current value of every tag, source diagnostics, and who is logged in.

Tags are the tag directory's: configured ones and those a data source discovered
at run time ("discovered": true).

Needs a login like every other route: a session cookie or an API token (web/auth.py).
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from domain.config_model import Tag
from domain.freshness import Freshness
from domain.quality import quality_from_code
from web.auth import current_identity
from web.runtime import WebRuntime, current_runtime
from web.source_view import source_rows
from web.tag_display import judge_encoded

router = APIRouter(prefix="/api")


def iso_utc(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tag_record(tag: Tag, encoded: dict[str, Any] | None, freshness: Freshness,
               discovered: bool = False) -> dict[str, Any]:
    quality = None
    if encoded:
        q = quality_from_code(int(encoded["q"]), encoded.get("qn"))
        quality = {"code": q.code, "name": q.name, "family": q.family.value}
    return {
        "name": tag.name,
        "description": tag.description,
        "unit": tag.unit,
        "area": tag.area,
        "source": tag.source,
        "discovered": discovered,
        "data_type": tag.data_type.value,
        "value": encoded.get("v") if encoded else None,
        "quality": quality,
        "freshness": freshness.value,
        "source_time": iso_utc(encoded.get("ts")) if encoded else None,
        "receive_time": iso_utc(encoded.get("rt")) if encoded else None,
        "source_time_is_receive_time": bool(encoded.get("tsr")) if encoded else False,
        "writable": tag.writable,
    }


def _record_now(runtime: WebRuntime, tag: Tag, now_ms: int) -> dict[str, Any]:
    cache = runtime.live_cache
    encoded = cache.values.get(tag.name)
    status = cache.source_statuses.get(tag.source)
    heartbeat_ms = status.heartbeat_ms if status is not None else None
    return tag_record(tag, encoded, judge_encoded(tag, encoded, heartbeat_ms, now_ms, cache.connected),
                      runtime.tags.is_discovered(tag.name))


@router.get("/tags")
async def list_tags() -> list[dict[str, Any]]:
    runtime = await current_runtime().ensure_started()
    now_ms = int(time.time() * 1000)
    return [_record_now(runtime, tag, now_ms) for tag in runtime.tags.tags()]


@router.get("/tags/{name}")
async def get_tag(name: str) -> dict[str, Any]:
    runtime = await current_runtime().ensure_started()
    tag = runtime.tags.tag(name)
    if tag is None:
        raise HTTPException(status_code=404, detail=f"no tag named '{name}'")
    return _record_now(runtime, tag, int(time.time() * 1000))


@router.get("/sources")
async def list_sources() -> list[dict[str, Any]]:
    """Every data source's address, state, heartbeat and counters (the rows of the /sources page)."""
    runtime = await current_runtime().ensure_started()
    now_ms = int(time.time() * 1000)
    return [row.as_dict() for row in source_rows(runtime.config, runtime.live_cache.source_statuses, now_ms,
                                                      runtime.tags.discovered())]


@router.get("/session")
async def who_am_i() -> dict[str, str]:
    """Who is asking and how they got in: "auth" is "session" (login), "token" (API token) or "kiosk"."""
    identity = current_identity()
    if identity is None:  # the middleware lets no such request through; defence in depth
        raise HTTPException(status_code=401, detail="not logged in")
    return {"user": identity.session.user, "role": identity.session.role.value, "auth": identity.method}
