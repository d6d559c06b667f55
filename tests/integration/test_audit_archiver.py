"""The audit archiver (audit_trail/archiver.py) on a real Redis: everything archived once and in order,
Redis trimmed only behind the archive and beyond its window, a restart resuming without gaps or
doubles, a Redis that lost its data (or restarted) still archived into one chain, a failing disk
losing nothing, the search finding what Redis no longer holds; and `python -m historian` running it."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest

import audit_trail.archiver as archiver_module
from audit_trail.archive import ARCHIVE_FILE_NAME, ArchiveSearch, AuditArchive, verify
from audit_trail.archiver import ARCHIVER_KEY, AuditArchiver, read_archiver_status
from tag_store import keys
from tag_store.cancellation import cancel_and_wait
from tests.integration.test_historian_service import historian_processes, write_plant  # noqa: F401
from web.audit import AuditEvent, append_audit
from web.audit_query import AuditQuery, search_audit


async def wait_until(check, timeout_s: float = 20.0, what: str = "", process=None):
    """check() until it is truthy (awaiting it when it returns an awaitable); its value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"; log:\n{process.log()}" if process else ""))


def event(n: int, user: str = "operator") -> AuditEvent:
    return AuditEvent(user=user, action="write", result="done", tag="T1.sp", old=str(n - 1), new=str(n),
                      comment=f"step {n}")


async def append(redis, first: int, last: int, user: str = "operator") -> None:
    for n in range(first, last + 1):
        await append_audit(redis, event(n, user))


def archived(path) -> list[tuple[str, str]]:
    """(user, new) of every archived row, in chain order."""
    with AuditArchive(path, read_only=True) as archive:
        return [(row.fields["user"], row.fields["new"]) for row in archive.chain_rows()]


def archived_or_none(path) -> list[tuple[str, str]] | None:
    """archived(), or None while the archiver has not set the file up yet."""
    try:
        return archived(path)
    except FileNotFoundError:
        return None


async def stream_news(redis) -> list[str]:
    return [fields[b"new"].decode() for _id, fields in await redis.xrange(keys.AUDIT)]


def numbered(first: int, last: int, user: str = "operator") -> list[tuple[str, str]]:
    return [(user, str(n)) for n in range(first, last + 1)]


@pytest.fixture
def archive_path(tmp_path):
    return tmp_path / "data" / ARCHIVE_FILE_NAME


async def test_archives_everything_and_trims_only_what_is_archived_and_beyond_the_window(
        redis_client, archive_path, monkeypatch):
    monkeypatch.setattr(archiver_module, "COPY_BATCH", 4)
    await append(redis_client, 1, 10)
    with AuditArchive(archive_path) as archive:
        archiver = AuditArchiver(redis_client, archive, keep_in_redis_entries=3)
        assert await archiver.copy_new() == 4  # entries 1-4 on disk
        await archiver.trim()
        # Beyond the window are 1-7, but only 1-3 may go: 4 is the resume point, 5-10 not on disk yet.
        assert await stream_news(redis_client) == [str(n) for n in range(4, 11)]
        assert await archiver.copy_new() == 4 and await archiver.copy_new() == 2 and await archiver.copy_new() == 0
        await archiver.trim()
        assert await stream_news(redis_client) == ["8", "9", "10"]  # the newest 3 stay in Redis
    assert archived(archive_path) == numbered(1, 10)
    assert verify(archive_path).intact


async def test_a_restart_resumes_without_gaps_or_doubles(redis_client, archive_path):
    await append(redis_client, 1, 5)
    with AuditArchive(archive_path) as archive:
        first = AuditArchiver(redis_client, archive, keep_in_redis_entries=2)
        await first.copy_new()
        await first.trim()
    await append(redis_client, 6, 9)
    with AuditArchive(archive_path) as archive:  # a new process: the cursor comes from the file
        second = AuditArchiver(redis_client, archive, keep_in_redis_entries=2)
        assert await second.copy_new() == 4
        assert await second.copy_new() == 0
    assert archived(archive_path) == numbered(1, 9)
    assert verify(archive_path).rows == 9


async def test_redis_lost_its_data_the_new_entries_are_archived_and_the_chain_goes_on(redis_client, archive_path):
    await append(redis_client, 1, 4)
    with AuditArchive(archive_path) as archive:
        archiver = AuditArchiver(redis_client, archive, keep_in_redis_entries=100)
        await archiver.copy_new()
        await redis_client.flushall()  # a Redis without persistence restarted
        await append(redis_client, 1, 2, user="engineer")
        assert await archiver.copy_new() == 2
        # Stream ids even lower than the archived ones (another Redis, a clock set back): still archived.
        await redis_client.flushall()
        await redis_client.xadd(keys.AUDIT, {"user": "admin", "action": "login", "result": "ok", "new": "x"},
                                id="1000-0")
        assert await archiver.copy_new() == 1
        assert await archiver.copy_new() == 0  # and only once
        await append(redis_client, 3, 3, user="engineer")
        assert await archiver.copy_new() == 1
    assert archived(archive_path) == [*numbered(1, 4), *numbered(1, 2, "engineer"), ("admin", "x"),
                                      ("engineer", "3")]
    assert verify(archive_path).intact


async def test_a_redis_restored_from_an_old_snapshot_archives_nothing_twice(redis_client, archive_path):
    await append(redis_client, 1, 3)
    snapshot = await redis_client.xrange(keys.AUDIT)
    await append(redis_client, 4, 5)
    with AuditArchive(archive_path) as archive:
        archiver = AuditArchiver(redis_client, archive)
        await archiver.copy_new()
        await redis_client.delete(keys.AUDIT)  # Redis comes back with the older snapshot: entries 1-3 only
        for entry_id, fields in snapshot:
            await redis_client.xadd(keys.AUDIT, fields, id=entry_id)
        await append(redis_client, 6, 6)
        assert await archiver.copy_new() == 4  # 1-3 read again and skipped, 6 new
    assert archived(archive_path) == numbered(1, 6)


async def test_the_running_archiver_survives_a_redis_restart(redis_server, redis_client, archive_path):
    with AuditArchive(archive_path) as archive:
        archiver = AuditArchiver(redis_client, archive, poll_s=0.05, heartbeat_s=0.1)
        task = asyncio.create_task(archiver.run())
        try:
            await append(redis_client, 1, 3)
            await wait_until(lambda: archive.count() == 3, what="3 archived")
            redis_server.stop()
            await asyncio.sleep(0.5)
            redis_server.start()
            await append(redis_client, 4, 6)
            await wait_until(lambda: archive.count() == 6, what="6 archived after the restart")
            status = await wait_until(lambda: _status_ok(redis_client), what="heartbeat ok")
            assert status["archived_entries"] == "6" and status["lag_entries"] == "0"
        finally:
            await cancel_and_wait([task])
    assert archived(archive_path) == numbered(1, 6)


async def _status_ok(redis) -> dict | None:
    status = await read_archiver_status(redis)
    return status if status.get("state") == "ok" and status.get("chain") == "intact" else None


async def test_a_failing_disk_loses_nothing_and_trims_nothing(redis_client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="audit_trail.archiver")
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the data directory should be")
    path = blocker / ARCHIVE_FILE_NAME
    archive = AuditArchive(path)
    archiver = AuditArchiver(redis_client, archive, keep_in_redis_entries=1, poll_s=0.05, heartbeat_s=0.1,
                             trim_interval_s=0.05)
    await append(redis_client, 1, 5)
    task = asyncio.create_task(archiver.run())
    try:
        status = await wait_until(lambda: _status_is(redis_client, "disk_failing"), what="disk_failing")
        assert str(blocker) in status["last_error"]
        assert await redis_client.xlen(keys.AUDIT) == 5  # nothing trimmed that is not on disk
        await append(redis_client, 6, 7)
        blocker.unlink()  # the disk is back
        await wait_until(lambda: path.exists() and archive.count() == 7, timeout_s=40, what="7 archived")
        await wait_until(lambda: _stream_length_is(redis_client, 1), what="trimmed to the window")
    finally:
        await cancel_and_wait([task])
        archive.close()
    assert archived(path) == numbered(1, 7)
    messages = [r.getMessage() for r in caplog.records if r.name == "audit_trail.archiver"]
    assert sum("cannot write" in m for m in messages) == 1  # loudly once, then quietly
    assert any("working again" in m for m in messages)


async def _status_is(redis, state: str) -> dict | None:
    status = await read_archiver_status(redis)
    return status if status.get("state") == state else None


async def _stream_length_is(redis, length: int) -> bool:
    return await redis.xlen(keys.AUDIT) == length


async def test_the_search_finds_old_entries_in_the_archive_in_order_without_duplicates(redis_client, archive_path):
    await append(redis_client, 1, 6)
    with AuditArchive(archive_path) as archive:
        archiver = AuditArchiver(redis_client, archive, keep_in_redis_entries=2)
        await archiver.copy_new()
        await archiver.trim()
        await append(redis_client, 7, 8)  # in Redis only, not archived yet
    assert await stream_news(redis_client) == ["5", "6", "7", "8"]  # 5 and 6 in both tiers

    def news(result) -> list[str]:
        return [r.new for r in result.records]

    everything = await search_audit(redis_client, AuditQuery(), archive_path)
    assert news(everything) == [str(n) for n in range(8, 0, -1)] and not everything.capped
    assert everything.records[-1].comment == "step 1"
    capped = await search_audit(redis_client, AuditQuery(limit=5), archive_path)
    assert news(capped) == ["8", "7", "6", "5", "4"] and capped.capped
    assert news(await search_audit(redis_client, AuditQuery(text="STEP 2"), archive_path)) == ["2"]

    await redis_client.flushall()  # Redis lost: what was archived is still found
    lost = await search_audit(redis_client, AuditQuery(), archive_path)
    assert news(lost) == [str(n) for n in range(6, 0, -1)]


async def test_when_redis_cannot_be_read_the_archive_answers_and_says_so(redis_server, redis_client, archive_path):
    await append(redis_client, 1, 2)
    with AuditArchive(archive_path) as archive:
        await AuditArchiver(redis_client, archive).copy_new()
    redis_server.stop()
    found = await search_audit(redis_client, AuditQuery(), archive_path)
    assert [r.new for r in found.records] == ["2", "1"]
    assert "Redis cannot be read" in found.note


async def test_the_historian_process_runs_the_archiver(tmp_path, redis_server, redis_client, historian_processes):
    historian = historian_processes(write_plant(tmp_path), redis_server.url).start()
    await append(redis_client, 1, 3)
    path = tmp_path / "data" / ARCHIVE_FILE_NAME

    def rows() -> int:
        try:
            with AuditArchive(path, read_only=True) as archive:
                return archive.count()
        except (FileNotFoundError, sqlite3.Error):
            return 0

    await wait_until(lambda: rows() == 3, what="3 rows in the archive", process=historian)
    status = await wait_until(lambda: _status_ok(redis_client), what="the archiver's heartbeat", process=historian)
    assert status["archived_through"] == (await redis_client.xrevrange(keys.AUDIT, count=1))[0][0].decode()
    assert historian.stop() == 0
    assert (await read_archiver_status(redis_client))["state"] == "stopped"
    assert archived(path) == numbered(1, 3)
    with AuditArchive(path, read_only=True) as archive:
        assert archive.search(ArchiveSearch(user="operator", limit=1))[0].fields["comment"] == "step 3"
    assert await redis_client.exists(ARCHIVER_KEY)


async def test_an_unreadable_archive_leaves_redis_to_answer_and_says_so(redis_client, tmp_path):
    await append(redis_client, 1, 2)
    broken = tmp_path / ARCHIVE_FILE_NAME
    broken.write_text("not a database, e.g. a disk error")
    found = await search_audit(redis_client, AuditQuery(), broken)
    assert [r.new for r in found.records] == ["2", "1"]
    assert "The archive cannot be read" in found.note


async def test_two_archivers_on_one_file_archive_each_entry_once(redis_server, redis_client, archive_path,
                                                                  monkeypatch):
    """Two historians started by mistake: the chain's head is read and extended in one transaction."""
    import redis.asyncio as aioredis

    monkeypatch.setattr(archiver_module, "COPY_BATCH", 3)
    await append(redis_client, 1, 20)
    other_client = aioredis.Redis.from_url(redis_server.url)
    try:
        with AuditArchive(archive_path) as one, AuditArchive(archive_path) as two:
            first, second = AuditArchiver(redis_client, one), AuditArchiver(other_client, two)
            for _ in range(8):
                await asyncio.gather(first.copy_new(), second.copy_new())
    finally:
        await other_client.aclose()
    assert archived(archive_path) == numbered(1, 20)
    assert verify(archive_path).intact


async def test_a_tampered_archive_shows_as_broken_in_the_heartbeat(redis_client, archive_path):
    await append(redis_client, 1, 3)
    with AuditArchive(archive_path) as archive:
        archiver = AuditArchiver(redis_client, archive)
        await archiver.copy_new()
        await archiver.verify_chain()
        assert archiver.status.chain == "intact" and archiver.status.chain_verified_rows == 3
        db = sqlite3.connect(archive_path)
        with db:
            db.execute("DROP TRIGGER audit_no_update")
            db.execute("UPDATE audit SET new = '42' WHERE seq = 2")
        db.close()
        await archiver.verify_chain()
        await archiver.write_heartbeat()
    status = await read_archiver_status(redis_client)
    assert status["chain"].startswith("broken: row 2 (stream id ")
    assert status["archived_entries"] == "3" and status["lag_entries"] == "0"


async def test_an_unexpected_crash_restarts_the_archiver(redis_client, tmp_path, monkeypatch, caplog):
    from audit_trail.archiver import run_audit_archiver
    from domain.config_loading import parse_config

    config = parse_config(f"data_dir: {tmp_path / 'data'}\nsources: {{skid: {{kind: mqtt}}}}\n"
                          "tags:\n  - {name: u.flow, source: skid, topic: a/flow}\n", tmp_path / "plant.yaml", {})
    real_copy_new, calls = AuditArchiver.copy_new, []

    async def crashing_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("a bug")
        return await real_copy_new(self)

    monkeypatch.setattr(AuditArchiver, "copy_new", crashing_once)
    await append(redis_client, 1, 2)
    task = asyncio.create_task(run_audit_archiver(redis_client, config, restart_delay_s=0.1))
    try:
        path = tmp_path / "data" / ARCHIVE_FILE_NAME
        await wait_until(lambda: archived_or_none(path) == numbered(1, 2), what="archived after the crash")
    finally:
        await cancel_and_wait([task])
    assert any("audit archiver crashed" in r.getMessage() for r in caplog.records)
