"""GET /api/audit (JSON) and GET /api/audit.csv (a download): search the audit trail.

    /api/audit?from=2025-01-31T06:00:00Z&to=1738310400000&user=operator&tag=T1.*&action=write
        &result=refused&text=range&limit=1000

from and to (inclusive) are ISO 8601 (without a zone: UTC) or epoch milliseconds; the filters
are those of web.audit_query.AuditQuery. Newest first; JSON: limit 1 to 100,000 (default
5,000), "capped" says more matched; CSV: up to 100,000 rows and a note line when capped.
Both read the Redis stream and the SQLite archive together (web.audit_query.search_audit); "note"
says when Redis could not be read and only the archive answered.
Bad input: 400 with the reason. Engineer and admin see everyone's actions; viewer and operator
only their own (user= is theirs; another name is 403); the kiosk view none (403). The
AuthMiddleware has refused a request without a session already (401).
"""
from __future__ import annotations

import sqlite3
import time

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from redis.exceptions import RedisError

from audit_trail.archive import audit_archive_path
from web.audit_query import (CSV_LIMIT, PAGE_LIMIT, AuditQuery, AuditResult, audit_csv, audit_scope,
                             build_audit_query, record_json, search_audit)
from web.auth import current_identity
from web.runtime import current_runtime

router = APIRouter(prefix="/api")


def _query(from_: str | None, to: str | None, user: str | None, tag: str | None, action: str | None,
           result: str | None, text: str | None, limit: str | None, default_limit: int) -> AuditQuery:
    identity = current_identity()
    if identity is None:  # the middleware lets no such request through; defence in depth
        raise HTTPException(status_code=401, detail="not logged in")
    scope = audit_scope(identity.session.role, identity.session.user, identity.is_kiosk)
    if not scope.allowed:
        raise HTTPException(status_code=403, detail=scope.refusal)
    try:
        user = scope.user_filter(user)
    except ValueError as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    try:
        return build_audit_query(from_, to, user, tag, action, result, text, limit, default_limit)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


async def _search(query: AuditQuery) -> AuditResult:
    runtime = await current_runtime().ensure_started()
    try:
        return await search_audit(runtime.redis, query, audit_archive_path(runtime.config))
    except (RedisError, OSError) as exc:
        raise HTTPException(status_code=503, detail=f"audit trail unavailable (Redis: {exc})") from None
    except sqlite3.Error as exc:
        raise HTTPException(status_code=503, detail=f"audit trail unavailable (archive: {exc})") from None


@router.get("/audit")
async def audit_json(
    from_: str | None = Query(None, alias="from"), to: str | None = None, user: str | None = None,
    tag: str | None = None, action: str | None = None, result: str | None = None, text: str | None = None,
    limit: str | None = None,
):
    query = _query(from_, to, user, tag, action, result, text, limit, PAGE_LIMIT)
    found = await _search(query)
    return {"count": len(found.records), "limit": query.limit, "capped": found.capped, "note": found.note,
            "events": [record_json(r) for r in found.records]}


@router.get("/audit.csv")
async def audit_csv_download(
    from_: str | None = Query(None, alias="from"), to: str | None = None, user: str | None = None,
    tag: str | None = None, action: str | None = None, result: str | None = None, text: str | None = None,
    limit: str | None = None,
):
    query = _query(from_, to, user, tag, action, result, text, limit, CSV_LIMIT)
    found = await _search(query)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Response(audit_csv(found.records, found.capped, query.limit), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})
