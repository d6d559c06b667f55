"""Configuration changes in the audit trail: the plant file compared at each start of the web.

At start the web computes the plant file's canonical JSON (PlantConfig.model_dump: secrets are
only references, so it is safe to keep) and its sha256, and compares it with the last one
recorded in Redis (hash sl:config:last: sha256, json, path, time). When Redis lost that hash,
the archive's newest config_loaded / config_changed entry stands in (its `new` is the sha256).

- nothing recorded anywhere: audit "config_loaded" (tag: the file, new: sha256)
- a different sha256: audit "config_changed" (old/new sha256; reason: tags added / removed /
  changed with the fields that changed, sources likewise, other settings changed)
- the same: nothing.

User "(plant file)". The hash update and the audit entry happen in one Lua script that checks
the sha256 it read is still there (compare-and-set), so several web processes starting at
once record a change once.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from audit_trail.archive import AuditArchive, audit_archive_path
from data_sources.backoff import Backoff
from domain.config_loading import resolve_config_path
from domain.config_model import PlantConfig
from tag_store import keys
from tag_store.startup import redacted
from web.audit import AuditEvent, audit_fields

log = logging.getLogger(__name__)

CONFIG_LAST_KEY = keys.PREFIX + "config:last"
PLANT_FILE_USER = "(plant file)"
CONFIG_ACTIONS = ("config_loaded", "config_changed")
MAX_NAMES = 20  # names listed per kind of change, then "+N more"
MAX_REASON_CHARS = 2000
CAS_ATTEMPTS = 5
FIRST_TRY_S = 2.0  # at the web's start; then in the background
NOT_ITEMISED = ("the previous file's content is not known (Redis lost it), so the changes cannot be listed; "
                "previous sha256 from the audit archive")

# KEYS: the hash, the audit stream. ARGV: the sha256 expected now ("" = none), sha256, json, path,
# time, then the audit entry's fields (none: only the hash is written). 1: done, 0: someone was first.
_CAS_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'sha256') or ''
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'sha256', ARGV[2], 'json', ARGV[3], 'path', ARGV[4], 'time', ARGV[5])
if #ARGV > 5 then redis.call('XADD', KEYS[2], '*', unpack(ARGV, 6)) end
return 1
"""


def canonical_config(config: PlantConfig) -> str:
    """The validated plant file as sorted, compact JSON. Secrets are references (env:/file:) already;
    a password written into a URL (redis://:pw@host) is masked, so it never reaches Redis from here."""
    return json.dumps(_masked(config.model_dump(mode="json")), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def _masked(node):
    if isinstance(node, dict):
        return {k: _masked(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_masked(v) for v in node]
    if isinstance(node, str) and "://" in node and ("@" in node or "password" in node):
        return redacted(node)
    return node


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plant_file_label(argv: list[str] | None = None, environ=os.environ) -> str:
    """The plant file this process loaded, by the services' one rule (domain.config_loading.resolve_config_path):
    the command line's --config, else $STACKLIGHT_CONFIG, else the demo plant. The web app gets only the
    parsed config, so the command line is read here again."""
    args = sys.argv[1:] if argv is None else argv
    cli_path = None
    for n, arg in enumerate(args):
        if arg == "--config" and n + 1 < len(args):
            cli_path = args[n + 1]
        elif arg.startswith("--config="):
            cli_path = arg.partition("=")[2]
    return str(resolve_config_path(cli_path, environ))


# --- what changed (pure) ------------------------------------------------------------------------------

def summarize_changes(old: dict, new: dict) -> str:
    """A readable summary: "tags added: A; tags changed: R201.sp: limits, max_step; settings changed: web.port"."""
    parts: list[str] = []
    old_tags = {t.get("name"): t for t in old.get("tags", []) if isinstance(t, dict)}
    new_tags = {t.get("name"): t for t in new.get("tags", []) if isinstance(t, dict)}
    parts += _named_changes("tags", old_tags, new_tags)
    parts += _named_changes("sources", old.get("sources") or {}, new.get("sources") or {})
    if not parts and old_tags == new_tags and list(old_tags) != list(new_tags):
        parts.append("tag order changed")
    settings = []
    for key in sorted((old.keys() | new.keys()) - {"tags", "sources"}):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            settings += [f"{key}.{name}" for name in _changed_keys(before, after)]
        else:
            settings.append(key)
    if settings:
        parts.append("settings changed: " + _listed(settings))
    text = "; ".join(parts) or "no difference in content"
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 1] + "…"


def _named_changes(kind: str, old: dict, new: dict) -> list[str]:
    added = sorted(str(n) for n in new.keys() - old.keys())
    removed = sorted(str(n) for n in old.keys() - new.keys())
    changed = [f"{name}: {', '.join(_changed_keys(old[name], new[name]))}"
               for name in sorted(old.keys() & new.keys(), key=str) if old[name] != new[name]]
    parts = []
    if added:
        parts.append(f"{kind} added: {_listed(added)}")
    if removed:
        parts.append(f"{kind} removed: {_listed(removed)}")
    if changed:
        parts.append(f"{kind} changed: {_listed(changed)}")
    return parts


def _changed_keys(old: object, new: object) -> list[str]:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return ["value"]
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown if len(names) <= MAX_NAMES else f"{shown} (+{len(names) - MAX_NAMES} more)"


# --- recording ------------------------------------------------------------------------------------------

def _archived_config_sha256(archive_path: Path | None) -> str | None:
    """The sha256 of the newest config entry in the archive (None: no archive or no such entry)."""
    if archive_path is None:
        return None
    try:
        with AuditArchive(archive_path, read_only=True) as archive:
            entry = archive.last_of_actions(CONFIG_ACTIONS)
    except FileNotFoundError:
        return None
    return (entry.fields.get("new") or None) if entry else None


async def record_config(redis: aioredis.Redis, config: PlantConfig, path: str, archive_path: Path | None = None,
                        now_ms: int | None = None) -> str | None:
    """Compare and record (see the module text); the action audited, or None (no change, or another
    process recorded it). Raises RedisError / OSError."""
    new_json = canonical_config(config)
    new_sha = sha256_text(new_json)
    script = redis.register_script(_CAS_SCRIPT)
    for _ in range(CAS_ATTEMPTS):
        raw = await redis.hmget(CONFIG_LAST_KEY, ["sha256", "json"])
        old_sha, old_json = ((v.decode() if v is not None else "") for v in raw)
        if old_sha == new_sha:
            return None
        event = None
        if old_sha:
            try:
                reason = summarize_changes(json.loads(old_json), json.loads(new_json))
            except ValueError:
                reason = "the previous content recorded in Redis is unreadable; changes not listed"
            event = AuditEvent(user=PLANT_FILE_USER, action="config_changed", result="ok", tag=path, old=old_sha,
                               new=new_sha, reason=reason)
        else:
            archived_sha = await asyncio.to_thread(_archived_config_sha256, archive_path)
            if archived_sha is None:
                event = AuditEvent(user=PLANT_FILE_USER, action="config_loaded", result="ok", tag=path,
                                   new=new_sha, reason="first start with this plant file recorded")
            elif archived_sha != new_sha:
                event = AuditEvent(user=PLANT_FILE_USER, action="config_changed", result="ok", tag=path,
                                   old=archived_sha, new=new_sha, reason=NOT_ITEMISED)
        stamp = int(time.time() * 1000) if now_ms is None else now_ms
        fields = [] if event is None else [part for item in audit_fields(event, stamp).items() for part in item]
        done = await script(keys=[CONFIG_LAST_KEY, keys.AUDIT],
                            args=[old_sha, new_sha, new_json, path, str(stamp), *fields])
        if int(done):
            if event is not None:
                log.info("audit: %s %s (%s)", event.action, path, event.reason)
            return event.action if event else None
    return None  # other processes kept changing it: theirs is recorded


async def record_config_at_start(redis: aioredis.Redis, config: PlantConfig,
                                 first_try_s: float = FIRST_TRY_S) -> asyncio.Task | None:
    """The web runtime's start: record_config now, so the plant file's entry comes before anything
    this process audits. When Redis does not answer in time, a background task keeps trying (returned:
    the caller cancels it when it stops); None when done."""
    path, archive_path = plant_file_label(), audit_archive_path(config)
    try:
        await asyncio.wait_for(record_config(redis, config, path, archive_path), first_try_s)
        return None
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("audit: the plant file could not be compared with the last one recorded (%s); retrying", exc)
    except Exception:  # noqa: BLE001 - an unreadable archive must not stop the web; say it loudly
        log.exception("audit: recording the plant file failed; not retried")
        return None
    return asyncio.create_task(_retry_record(redis, config, path, archive_path), name="record plant file")


async def _retry_record(redis: aioredis.Redis, config: PlantConfig, path: str, archive_path: Path,
                        max_delay_s: float = 30.0) -> None:
    backoff = Backoff(initial_s=0.5, max_s=max_delay_s)
    while True:
        await asyncio.sleep(backoff.next_delay_s())
        try:
            await record_config(redis, config, path, archive_path)
            log.info("audit: plant file recorded after Redis came back")
            return
        except (RedisError, OSError) as exc:
            log.debug("audit: recording the plant file still fails: %s", exc)
        except Exception:  # noqa: BLE001 - see record_config_at_start
            log.exception("audit: recording the plant file failed; not retried")
            return
