"""Plant-file changes in the audit trail (audit_trail/config_changes.py) against a real Redis: the first
load, no change, a changed limit named by tag and field, several processes at once recording it once,
and a Redis that lost the last file falling back to the audit archive."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from audit_trail.archive import ARCHIVE_FILE_NAME, AuditArchive
from audit_trail.config_changes import (CONFIG_LAST_KEY, NOT_ITEMISED, PLANT_FILE_USER, canonical_config,
                                        plant_file_label, record_config, record_config_at_start, sha256_text,
                                        summarize_changes)
from domain.config_loading import parse_config
from web.audit import read_audit

PLANT = """
site_name: Test plant
data_dir: ${STACKLIGHT_DATA_DIR}
web: {port: 8050}
sources:
  plc: {kind: mqtt}
tags:
  - {name: R201.sp, source: plc, topic: r/sp, command_topic: r/sp/set, writable: true, limits: {low: 0, high: 100}, max_step: 5}
  - {name: R201.pv, source: plc, topic: r/pv}
"""
CHANGED_LIMIT = PLANT.replace("limits: {low: 0, high: 100}, max_step: 5", "limits: {low: 0, high: 120}, max_step: 2")


def plant(text: str = PLANT):
    """The test's own data directory (tests/conftest.py), never the checkout's ./data."""
    return parse_config(text, Path("plant.yaml"), {"STACKLIGHT_DATA_DIR": os.environ["STACKLIGHT_DATA_DIR"]})


def test_the_canonical_json_holds_no_secret_values_and_is_stable():
    text = canonical_config(plant())
    assert text == canonical_config(plant()) and json.loads(text)["site_name"] == "Test plant"
    assert canonical_config(plant(PLANT.replace("Test plant", "Other"))) != text


def test_a_password_written_into_a_url_is_masked():
    text = canonical_config(plant(PLANT.replace("site_name: Test plant", "site_name: Test plant\n"
                                                "redis: {url: 'redis://app:s3cret@redis.local:6379/0'}")))
    assert "s3cret" not in text and "redis://app:***@redis.local:6379/0" in text


def test_the_summary_names_tags_fields_sources_and_settings():
    old = json.loads(canonical_config(plant()))
    assert summarize_changes(old, json.loads(canonical_config(plant(CHANGED_LIMIT)))) == \
        "tags changed: R201.sp: limits, max_step"
    bigger = PLANT.replace("web: {port: 8050}", "web: {port: 8060}").replace(
        "  plc: {kind: mqtt}", "  plc: {kind: mqtt, host: broker.local}\n  skid: {kind: mqtt}").replace(
        "  - {name: R201.pv, source: plc, topic: r/pv}", "  - {name: R202.pv, source: skid, topic: s/pv}")
    assert summarize_changes(old, json.loads(canonical_config(plant(bigger)))) == (
        "tags added: R202.pv; tags removed: R201.pv; sources added: skid; sources changed: plc: host; "
        "settings changed: web.port")


def test_a_long_summary_is_shortened_with_a_count():
    tags = [{"name": f"T{n:03}"} for n in range(30)]
    summary = summarize_changes({"tags": []}, {"tags": tags})
    assert summary.startswith("tags added: T000, T001") and summary.endswith("T019 (+10 more)")


async def test_first_load_then_no_change_then_a_changed_limit(redis_client):
    assert await record_config(redis_client, plant(), "/etc/plant.yaml") == "config_loaded"
    loaded = (await read_audit(redis_client, 10))
    assert len(loaded) == 1
    assert (loaded[0]["user"], loaded[0]["action"], loaded[0]["result"], loaded[0]["tag"]) == (
        PLANT_FILE_USER, "config_loaded", "ok", "/etc/plant.yaml")
    assert loaded[0]["new"] == sha256_text(canonical_config(plant()))

    assert await record_config(redis_client, plant(), "/etc/plant.yaml") is None  # the same file again
    assert len(await read_audit(redis_client, 10)) == 1

    assert await record_config(redis_client, plant(CHANGED_LIMIT), "/etc/plant.yaml") == "config_changed"
    changed, first = await read_audit(redis_client, 10)
    assert changed["action"] == "config_changed" and changed["user"] == PLANT_FILE_USER
    assert (changed["old"], changed["new"]) == (first["new"], sha256_text(canonical_config(plant(CHANGED_LIMIT))))
    assert changed["reason"] == "tags changed: R201.sp: limits, max_step"
    last = {k.decode(): v.decode() for k, v in (await redis_client.hgetall(CONFIG_LAST_KEY)).items()}
    assert (last["sha256"], last["path"]) == (changed["new"], "/etc/plant.yaml")
    assert json.loads(last["json"])["tags"][0]["max_step"] == 2


async def test_several_processes_starting_at_once_record_a_change_once(redis_server, redis_client):
    import redis.asyncio as aioredis

    await record_config(redis_client, plant(), "plant.yaml")
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(6)]
    try:
        results = await asyncio.gather(*(record_config(c, plant(CHANGED_LIMIT), "plant.yaml") for c in clients))
    finally:
        for client in clients:
            await client.aclose()
    assert results.count("config_changed") == 1 and results.count(None) == 5
    assert [e["action"] for e in await read_audit(redis_client, 10)] == ["config_changed", "config_loaded"]


async def test_several_processes_at_the_very_first_start_record_one_load(redis_server, redis_client):
    import redis.asyncio as aioredis

    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(record_config(c, plant(), "plant.yaml") for c in clients))
    finally:
        for client in clients:
            await client.aclose()
    assert results.count("config_loaded") == 1 and results.count(None) == 3
    assert len(await read_audit(redis_client, 10)) == 1


async def test_redis_lost_the_last_file_so_the_archive_stands_in(redis_client, tmp_path):
    archive_path = tmp_path / ARCHIVE_FILE_NAME
    old_sha = sha256_text(canonical_config(plant()))
    with AuditArchive(archive_path) as archive:
        archive.append([("1-0", {"time_ms": "1", "user": PLANT_FILE_USER, "action": "config_loaded",
                                 "result": "ok", "tag": "plant.yaml", "new": old_sha})])

    # The same file as archived: nothing to audit, the hash is restored.
    assert await record_config(redis_client, plant(), "plant.yaml", archive_path) is None
    assert await read_audit(redis_client, 10) == []
    assert (await redis_client.hget(CONFIG_LAST_KEY, "sha256")).decode() == old_sha

    await redis_client.flushall()  # Redis lost everything; the file changed meanwhile
    assert await record_config(redis_client, plant(CHANGED_LIMIT), "plant.yaml", archive_path) == "config_changed"
    (changed,) = await read_audit(redis_client, 10)
    assert (changed["old"], changed["reason"]) == (old_sha, NOT_ITEMISED)


@pytest.mark.parametrize("archive_exists", [False, True])
async def test_no_archive_entry_means_a_first_load(redis_client, tmp_path, archive_exists):
    archive_path = tmp_path / ARCHIVE_FILE_NAME
    if archive_exists:
        with AuditArchive(archive_path) as archive:
            archive.append([("1-0", {"user": "operator", "action": "login", "result": "ok"})])
    assert await record_config(redis_client, plant(), "plant.yaml", archive_path) == "config_loaded"


def test_the_plant_file_is_named_by_the_services_rule():
    env = {"STACKLIGHT_CONFIG": "/etc/env.yaml"}
    assert plant_file_label(["--host", "0.0.0.0", "--config", "/etc/cli.yaml"], env) == "/etc/cli.yaml"
    assert plant_file_label(["--config=/etc/cli.yaml"], env) == "/etc/cli.yaml"
    assert plant_file_label(["--port", "8050"], env) == "/etc/env.yaml"
    assert plant_file_label([], {}).endswith(".yaml")  # the demo plant


async def test_at_the_webs_start_it_records_at_once_or_keeps_trying_until_redis_answers(
        redis_server, redis_client, monkeypatch):
    import redis.asyncio as aioredis

    monkeypatch.setenv("STACKLIGHT_CONFIG", "/etc/stacklight/plant.yaml")
    assert await record_config_at_start(redis_client, plant()) is None  # done before the web goes on
    (loaded,) = await read_audit(redis_client, 10)
    assert (loaded["action"], loaded["tag"]) == ("config_loaded", "/etc/stacklight/plant.yaml")

    redis_server.stop()
    client = aioredis.Redis.from_url(redis_server.url, socket_connect_timeout=0.5)
    try:
        retry = await record_config_at_start(client, plant(CHANGED_LIMIT), first_try_s=1.0)
        assert retry is not None and not retry.done()
        redis_server.start()
        await asyncio.wait_for(retry, 15)
        assert [e["action"] for e in await read_audit(client, 10)] == ["config_changed", "config_loaded"]
    finally:
        await client.aclose()
