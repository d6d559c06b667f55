"""Searching the audit trail: the query, the read of both tiers, the CSV.

Two tiers: the stream sl:audit in Redis (written by web/audit.py; the recent window) and the
SQLite archive (audit_trail/archive.py; everything, also what Redis trimmed or lost). A search
reads the stream first, then the archive (an entry trimmed in between was archived before it
was trimmed, so the archive read has it), and merges them newest first without duplicates
(the same stream id with the same content is one event). Redis unreachable: the archive
alone answers, and the result says so.

The time of an event is its stream id (Redis stamps each entry in milliseconds when it is
added), so a time range is an id range and is read without touching older entries. The
stream is read newest first in batches of READ_BATCH, keeping what matches until it has
`limit` rows; one more match means "there are more" (AuditResult.capped).

Limits: the page shows at most PAGE_LIMIT (5,000) rows, the JSON API returns up to
MAX_LIMIT (100,000), the CSV has up to CSV_LIMIT (100,000) rows and, when capped, ends with
a note line saying so. Reading the audit needs engineer or higher (AUDIT_MIN_ROLE).
The page's search (layouts/audit.py) is the last section: plain functions its callback calls.
"""
from __future__ import annotations

import asyncio
import csv
import io
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urlencode

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from audit_trail.archive import ArchivedEntry, ArchiveSearch, AuditArchive
from audit_trail.archiver import read_archiver_status
from audit_trail.config_changes import CONFIG_ACTIONS
from domain.alarms.journal import stream_id_key
from tag_store import keys
from web.alarm_journal import parse_time_ms
from web.api import iso_utc
from web.roles import ALARM_ACTION_PERMISSIONS, Role

AUDIT_MIN_ROLE = Role.ENGINEER
READ_BATCH = 1000
PAGE_LIMIT = 5000
MAX_LIMIT = 100_000
CSV_LIMIT = 100_000
MAX_FILTER_LENGTH = 200
# The actions and results the page offers (docs/audit.md describes each); a filter may name any
# well-formed action or result, so one added elsewhere is searchable before it is listed here.
ACTIONS = ("login", "login_failed", "logout", "write", "write_approval", "write_approved",
           *ALARM_ACTION_PERMISSIONS, "user_added", "user_deleted", "role_changed", "password_changed",
           "areas_changed", "user_unlocked", "token_created", "token_revoked", "api_token_refused", "kiosk_view",
           *CONFIG_ACTIONS)
RESULTS = ("ok", "failed", "refused", "requested", "done", "rejected", "timed_out", "no_answer")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
CSV_HEADER = ("time_utc", "time_ms", "user", "action", "result", "tag", "old", "new", "reason", "comment",
              "source_ip")
# A spreadsheet runs a cell starting with one of these as a formula; the audit holds typed text
# (user names, tag names, values, comments), so such a cell gets a leading apostrophe (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
INVALID_TIME = "invalid"  # what the page's browser code sends for a time it cannot read
PRESETS_MS = {"hour": 3_600_000, "day": 24 * 3_600_000, "week": 7 * 24 * 3_600_000}
NOT_ALLOWED = "The audit trail needs a login of your own (the kiosk view and logged-out clients see none of it)."
OWN_ONLY = f"Your own actions: {AUDIT_MIN_ROLE.value} and admin see everyone's."


def may_read_audit(role: Role | None) -> bool:
    """Everyone's actions: engineer and admin."""
    return role is not None and role.at_least(AUDIT_MIN_ROLE)


@dataclass(frozen=True, slots=True)
class AuditScope:
    """What a reader may see: everyone's actions (engineer, admin), only their own (viewer,
    operator: what they did, to check a write went through), or nothing (refusal says why)."""

    only_user: str | None = None
    refusal: str = ""

    @property
    def allowed(self) -> bool:
        return not self.refusal

    def user_filter(self, user: str | None) -> str | None:
        """The user filter this reader may search with; raises ValueError for someone else's name."""
        if self.only_user is None:
            return user
        if user and user != self.only_user:
            raise ValueError(f"user: you may see only your own actions ({self.only_user}); "
                             f"{AUDIT_MIN_ROLE.value} and admin see everyone's")
        return self.only_user


def audit_scope(role: Role | None, user: str | None, kiosk: bool = False) -> AuditScope:
    if role is None or not user or kiosk:
        return AuditScope(refusal=NOT_ALLOWED)
    return AuditScope() if may_read_audit(role) else AuditScope(only_user=user)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    entry_id: str
    time_ms: int
    user: str
    action: str
    result: str
    tag: str = ""
    old: str = ""
    new: str = ""
    reason: str = ""
    source_ip: str = ""
    comment: str = ""


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Blank (None) filters match anything. tag: exact, or a prefix ending in "*"; user, action and
    result: exact; text: ignoring case, in user, tag, old, new, reason, source_ip and comment.
    Times inclusive."""
    from_ms: int | None = None
    to_ms: int | None = None
    user: str | None = None
    tag: str | None = None
    action: str | None = None
    result: str | None = None
    text: str | None = None
    limit: int = PAGE_LIMIT

    def __post_init__(self) -> None:
        for name in ("from_ms", "to_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}: {value} is before 1970")
        if self.from_ms is not None and self.to_ms is not None and self.from_ms > self.to_ms:
            raise ValueError("from is after to")
        for name in ("user", "tag", "text"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_FILTER_LENGTH:
                raise ValueError(f"{name}: longer than {MAX_FILTER_LENGTH} characters")
        if self.action is not None and not _NAME.fullmatch(self.action):
            raise ValueError(f"action: {self.action!r} is not an action name (lowercase letters, digits, _), "
                             f"like {', '.join(ACTIONS[:5])}")
        if self.result is not None and not _NAME.fullmatch(self.result):
            raise ValueError(f"result: {self.result!r} is not a result name (lowercase letters, digits, _), "
                             f"like {', '.join(RESULTS[:4])}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit: {self.limit} is not between 1 and {MAX_LIMIT:,}")

    def matches(self, record: AuditRecord) -> bool:
        if self.user is not None and record.user != self.user:
            return False
        if self.action is not None and record.action != self.action:
            return False
        if self.result is not None and record.result != self.result:
            return False
        if self.tag is not None and not _tag_matches(self.tag, record.tag):
            return False
        if self.text is not None:
            needle = self.text.casefold()
            haystack = (record.user, record.tag, record.old, record.new, record.reason, record.source_ip,
                        record.comment)
            return any(needle in part.casefold() for part in haystack)
        return True


def _tag_matches(pattern: str, tag: str) -> bool:
    if pattern.endswith("*"):
        return tag.startswith(pattern[:-1])
    return tag == pattern


def build_audit_query(from_: str | None = None, to: str | None = None, user: str | None = None,
                      tag: str | None = None, action: str | None = None, result: str | None = None,
                      text: str | None = None, limit: str | int | None = None,
                      default_limit: int = PAGE_LIMIT) -> AuditQuery:
    """An AuditQuery from URL or form values (blank means "any"); ValueError says what is wrong.
    Times: ISO 8601 (no zone: UTC) or epoch milliseconds."""
    return AuditQuery(from_ms=parse_time_ms(from_, "from"), to_ms=parse_time_ms(to, "to"), user=_blank(user),
                      tag=_blank(tag), action=_blank(action), result=_blank(result), text=_blank(text),
                      limit=_limit(limit, default_limit))


def query_params(query: AuditQuery) -> dict[str, str]:
    """The URL parameters that build_audit_query turns back into this query (the CSV link)."""
    params = {"from": query.from_ms, "to": query.to_ms, "user": query.user, "tag": query.tag,
              "action": query.action, "result": query.result, "text": query.text}
    return {name: str(value) for name, value in params.items() if value is not None}


def _blank(value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    return str(value).strip()


def _limit(value: str | int | None, default: int) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"limit: {value!r} is not a whole number") from None


# --- Reading the stream and the archive -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditResult:
    records: list[AuditRecord]  # newest first
    capped: bool  # more events match than query.limit
    note: str = ""  # a tier could not be read: what the result lacks


async def search_audit(redis: aioredis.Redis, query: AuditQuery, archive_path: Path | None = None) -> AuditResult:
    """Events matching the query, stream and archive together, newest first, at most query.limit.

    One tier failing leaves the other to answer, and AuditResult.note says what is missing. Raises
    RedisError / OSError when Redis is unreachable and there is no archive to answer, sqlite3.Error
    when neither can be read.
    """
    note = ""
    try:
        recent = await _search_stream(redis, query)
    except (RedisError, OSError) as exc:
        if archive_path is None or not archive_path.exists():
            raise
        recent, note = [], f"Redis cannot be read ({exc}): only archived events are shown, the newest may be missing."
    archived: list[AuditRecord] = []
    if archive_path is not None:
        try:
            archived = await asyncio.to_thread(_search_archive, archive_path, query)
        except (sqlite3.Error, OSError) as exc:
            if note:
                raise
            note = f"The archive cannot be read ({exc}): only the events still in Redis are shown."
    merged = sorted(set(recent) | set(archived), key=_newest_first)
    return AuditResult(merged[:query.limit], capped=len(merged) > query.limit, note=note)


def _newest_first(record: AuditRecord) -> tuple:
    ms, seq = stream_id_key(record.entry_id)
    return -ms, -seq, record.user, record.action


async def _search_stream(redis: aioredis.Redis, query: AuditQuery) -> list[AuditRecord]:
    """Up to query.limit + 1 matching stream entries, newest first."""
    newest = "+" if query.to_ms is None else f"{query.to_ms}-18446744073709551615"
    oldest = "-" if query.from_ms is None else f"{query.from_ms}-0"
    found: list[AuditRecord] = []
    while True:
        batch = await redis.xrevrange(keys.AUDIT, max=newest, min=oldest, count=READ_BATCH)
        for entry_id, fields in batch:
            record = audit_record(entry_id, fields)
            if query.matches(record):
                found.append(record)
                if len(found) > query.limit:
                    return found
        if len(batch) < READ_BATCH:
            return found
        newest = "(" + batch[-1][0].decode()


def _search_archive(path: Path, query: AuditQuery) -> list[AuditRecord]:
    """Up to query.limit + 1 matching archived entries, newest first; none when there is no archive yet."""
    search = ArchiveSearch(from_ms=query.from_ms, to_ms=query.to_ms, user=query.user, tag=query.tag,
                           action=query.action, result=query.result, text=query.text, limit=query.limit + 1)
    try:
        with AuditArchive(path, read_only=True) as archive:
            return [archived_record(entry) for entry in archive.search(search)]
    except FileNotFoundError:
        return []  # nothing archived yet: the stream alone answers


def archived_record(entry: ArchivedEntry) -> AuditRecord:
    return audit_record(entry.stream_id, entry.fields)


def audit_record(entry_id: bytes | str, fields: dict) -> AuditRecord:
    """One stream entry as a record; its time is the stream id's (the moment Redis stored it)."""
    entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()}
    return AuditRecord(entry_id=entry_id, time_ms=int(entry_id.split("-", 1)[0]), user=text.get("user", ""),
                       action=text.get("action", ""), result=text.get("result", ""), tag=text.get("tag", ""),
                       old=text.get("old", ""), new=text.get("new", ""), reason=text.get("reason", ""),
                       source_ip=text.get("source_ip", ""), comment=text.get("comment", ""))


# --- Output ------------------------------------------------------------------------------------------

def record_json(record: AuditRecord) -> dict[str, object]:
    return {"entry_id": record.entry_id, "time": iso_utc(record.time_ms), "time_ms": record.time_ms,
            "user": record.user, "action": record.action, "result": record.result, "tag": record.tag,
            "old": record.old, "new": record.new, "reason": record.reason, "comment": record.comment,
            "source_ip": record.source_ip}


def audit_csv(records: Iterable[AuditRecord], capped: bool = False, limit: int = CSV_LIMIT) -> str:
    """A header row, one row per event (time ISO 8601 UTC and epoch ms); a note line last when capped."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in records:
        writer.writerow((iso_utc(r.time_ms), r.time_ms, *(csv_cell(v) for v in (
            r.user, r.action, r.result, r.tag, r.old, r.new, r.reason, r.comment, r.source_ip))))
    if capped:
        writer.writerow((f"# capped: only the newest {limit:,} matching events; narrow the search for the rest",))
    return out.getvalue()


def csv_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def result_text(result: AuditResult, limit: int) -> str:
    if result.capped:
        text = f"The newest {limit:,} events; there are more: narrow the search."
    else:
        count = len(result.records)
        text = "No events match." if count == 0 else f"{count:,} event{'s' if count != 1 else ''}."
    return f"{text} {result.note}" if result.note else text


ARCHIVER_STALE_MS = 10_000


def archive_line(status: dict[str, str], now_ms: int) -> str:
    """One line on the archive from the archiver's heartbeat (audit_trail/archiver.py); no verification here."""
    if not status:
        return "Archive: no archiver has run yet (the historian runs it); events are in Redis only."
    entries = int(status.get("archived_entries") or 0)
    chain = status.get("chain", "not verified")
    verified_ms = int(status.get("chain_verified_ms") or 0)
    if chain == "intact" and verified_ms:
        rows = int(status.get("chain_verified_rows") or 0)
        chain_text = f"chain verified intact at {iso_utc(verified_ms)} ({rows:,} entries then)"
    elif chain.startswith("broken"):
        chain_text = f"chain BROKEN ({chain.removeprefix('broken: ')})"
    else:
        chain_text = "chain not verified yet"
    line = f"Archive: {entries:,} entries, {chain_text}."
    heartbeat_ms = int(status.get("heartbeat_ms") or 0)
    if status.get("state") == "stopped" or now_ms - heartbeat_ms > ARCHIVER_STALE_MS:
        line += f" The archiver is not running (last seen {iso_utc(heartbeat_ms)})." if heartbeat_ms else \
            " The archiver is not running."
    elif status.get("state") in ("disk_failing", "redis_lost"):
        line += f" The archiver is failing: {status.get('last_error', '')}"
    return line


# --- The page (layouts/audit.py) ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditView:
    rows: list[dict]
    message: str
    csv_href: str | None


def page_range_ms(time_range: dict, now_ms: int) -> tuple[int, int]:
    """(from_ms, to_ms) of the page's search: a preset ends now; a custom range with no end ends now
    and with no start begins a day before its end. ValueError for a time the browser could not read."""
    preset = time_range.get("preset") or "day"
    if preset in PRESETS_MS:
        return now_ms - PRESETS_MS[preset], now_ms
    from_ms, to_ms = time_range.get("from_ms"), time_range.get("to_ms")
    if INVALID_TIME in (from_ms, to_ms):
        raise ValueError("A time is incomplete: fill in date and time, or leave it empty.")
    to_ms = now_ms if to_ms is None else int(to_ms)
    return (to_ms - PRESETS_MS["day"] if from_ms is None else int(from_ms)), to_ms


async def audit_view(redis: aioredis.Redis, scope: AuditScope, time_range: dict, user: str | None, tag: str | None,
                     action: str | None, result: str | None, text: str | None, now_ms: int,
                     archive_path: Path | None = None) -> AuditView:
    """Grid rows, a status line (with the archive's) and the CSV link (the same search) for the page."""
    if not scope.allowed:
        return AuditView([], scope.refusal, None)
    try:
        from_ms, to_ms = page_range_ms(time_range, now_ms)
        query = build_audit_query(str(from_ms), str(to_ms), scope.user_filter(user), tag, action, result, text,
                                  PAGE_LIMIT)
    except ValueError as exc:
        return AuditView([], str(exc), None)
    try:
        found = await search_audit(redis, query, archive_path)
    except (RedisError, OSError, sqlite3.Error) as exc:
        return AuditView([], f"The audit trail cannot be read now: {exc}", None)
    try:
        archive = archive_line(await read_archiver_status(redis), now_ms)
    except (RedisError, OSError):
        archive = "Archive: status unknown (Redis cannot be read)."
    return AuditView([record_json(r) for r in found.records], f"{result_text(found, query.limit)} {archive}",
                     "/api/audit.csv?" + urlencode(query_params(query)))
