"""The alarm journal against a real Redis and a real SQLite file: archiving, search, retention, trimming, CSV, API."""
from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import time
from types import SimpleNamespace

import pytest
import requests

from alarm_engine import __main__ as engine_main
from alarm_engine.alarm_store import queue_record_writes
from alarm_engine.journal_archive import (
    JournalArchive,
    journal_archive_path,
    read_stream_after,
    run_journal_archiver,
    trim_journal_stream,
)
from domain.alarms.journal import JournalQuery, select
from domain.alarms.records import AlarmState, AlarmTransition
from tag_store import keys
from tag_store.cancellation import cancel_and_wait
from tests.browser.web_app_process import TagFeeder, WebAppProcess, login_session
from tests.unit.web_plant import WEB_TEST_PLANT, small_plant
from web.alarm_journal import CSV_HEADER, journal_csv, search_journal
from web.users import ensure_demo_users

S = AlarmState
DAY_MS = 86_400_000
NOW_MS = int(time.time() * 1000)


def transition(n: int, *, tag: str = "T1.level", kind: str = "high", step: str = "T1", from_state=S.NORMAL,
               to_state=S.UNACK_ACTIVE, time_ms: int | None = None, value=4.6, user=None, comment=None,
               area: str = "Tanks", priority: int = 2, message: str = "Tank 1 level high") -> AlarmTransition:
    return AlarmTransition(f"{tag}:{kind}", step, from_state, to_state, NOW_MS - 60_000 + n if time_ms is None
                           else time_ms, value, user, comment, tag, kind, area, priority, message)


async def write_journal(redis, *transitions: AlarmTransition) -> list[str]:
    """Append as the engine does (alarm_store.queue_record_writes, one MULTI); the new stream ids."""
    pipe = redis.pipeline(transaction=True)
    queue_record_writes(pipe, [], list(transitions))
    results = await pipe.execute()
    return [r.decode() for r in results[:len(transitions)]]


async def stream_ids(redis) -> list[str]:
    return [entry_id.decode() for entry_id, _ in await redis.xrange(keys.ALARM_JOURNAL)]


async def eventually(check, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def archiver(redis, archive: JournalArchive, retention_days: int = 400, **options):
    task = asyncio.create_task(run_journal_archiver(redis, archive, retention_days, poll_s=0.05, **options))
    try:
        yield task
    finally:
        await cancel_and_wait([task])


async def count_becomes(archive: JournalArchive, expected: int) -> None:
    async def check():
        assert await asyncio.to_thread(archive.count) == expected
    await eventually(check)


async def test_entries_are_archived_once_with_every_field_and_kept_after_reopening(redis_client, tmp_path):
    path = tmp_path / "data" / "alarm_journal.sqlite3"
    ids = await write_journal(
        redis_client,
        transition(1, value=4.6),
        transition(2, step="T5", from_state=S.UNACK_ACTIVE, to_state=S.ACK_ACTIVE, user="olga",
                   comment="Level checked, pump P-101 started"),
        transition(3, tag="P1.run", kind="discrete", value=True, area="Pumps", priority=1, message="Pump 1 stopped"),
    )
    archive = JournalArchive(path)
    async with archiver(redis_client, archive):
        await count_becomes(archive, 3)
    assert archive.last_archived_id() == ids[-1]
    # A second archiver on the same file copies what is new and nothing twice.
    ids += await write_journal(redis_client, transition(4, step="T2", from_state=S.UNACK_ACTIVE,
                                                        to_state=S.RETURNED_UNACK, value=4.1))
    async with archiver(redis_client, JournalArchive(path)) as second:
        await count_becomes(archive, 4)
        await asyncio.sleep(0.3)  # a few more polls
        assert not second.done()
    assert archive.count() == 4
    assert archive.append(await read_stream_after(redis_client, None)) == 0  # copying again adds nothing
    archive.close()

    with JournalArchive(path) as reopened:  # persistence: a new connection to the same file
        entries = reopened.search(JournalQuery())
    assert [e.entry_id for e in entries] == ids[::-1]
    ack, pump = entries[2], entries[1]
    assert (ack.transition, ack.from_state, ack.to_state, ack.user, ack.comment, ack.value) == (
        "T5", "B", "C", "olga", "Level checked, pump P-101 started", 4.6)
    assert (pump.tag, pump.kind, pump.area, pump.priority, pump.value, pump.value_text) == (
        "P1.run", "discrete", "Pumps", 1, None, "True")
    assert (entries[3].time_ms, entries[3].message, entries[3].user) == (NOW_MS - 60_000 + 1, "Tank 1 level high",
                                                                        None)


def many_transitions() -> list[AlarmTransition]:
    """A varied journal: tags sharing prefixes, equal times, text in every searched field."""
    base = NOW_MS - 10 * 60_000
    return [
        transition(0, tag="T1.level", time_ms=base, priority=1, area="Tanks"),
        transition(0, tag="T1.levelx", time_ms=base, priority=2, area="Tanks"),  # same time as the first
        transition(0, tag="T10.level", time_ms=base + 1000, priority=3, area="Tanks"),
        transition(0, tag="t1.level", time_ms=base + 2000, priority=4, area="tanks"),
        transition(0, tag="T1", time_ms=base + 3000, priority=1, area="Tanks", message="Tank One"),
        transition(0, tag="T2", time_ms=base + 3500, priority=3, area="Tanks"),  # just above every "T1..."
        transition(0, tag="T1/", time_ms=base + 3600, priority=3, area="Tanks"),  # just above every "T1...."
        transition(0, tag="M1.flow", time_ms=base + 4000, priority=2, area="Utilities", step="T5",
                   from_state=S.UNACK_ACTIVE, to_state=S.ACK_ACTIVE, user="Olga", comment="Straße gesperrt"),
        transition(0, tag="M1.flow", time_ms=base + 5000, priority=2, area="Utilities", step="shelve",
                   from_state=S.ACK_ACTIVE, to_state=S.SHELVED, user="erik", comment="Sensor work, 50% done"),
        transition(0, tag="P1.run", kind="discrete", time_ms=base + 6000, value="FAULT", priority=1, area="Pumps",
                   message="Pump 1 TRIPPED"),
        transition(0, tag="M1.flow", time_ms=base + 7000, priority=2, area="Utilities", message="Flow low_low 100%"),
    ]


QUERIES = [
    JournalQuery(),
    JournalQuery(tag="T1.level"), JournalQuery(tag="T1.*"), JournalQuery(tag="T1*"), JournalQuery(tag="t1.*"),
    JournalQuery(tag="*"), JournalQuery(tag="T1"), JournalQuery(tag="nope*"), JournalQuery(tag="T2*"),
    JournalQuery(area="Tanks"), JournalQuery(area="tanks"), JournalQuery(priority=1), JournalQuery(priority=4),
    JournalQuery(text="olga"), JournalQuery(text="STRASSE"), JournalQuery(text="tripped"), JournalQuery(text="50%"),
    JournalQuery(text="low_low"), JournalQuery(text="_"), JournalQuery(text="tank"),
    JournalQuery(start_ms=NOW_MS - 10 * 60_000 + 1000, end_ms=NOW_MS - 10 * 60_000 + 5000),
    JournalQuery(start_ms=NOW_MS - 10 * 60_000 + 4000, tag="M1.*", priority=2, text="erik"),
    JournalQuery(limit=3), JournalQuery(tag="T1.*", limit=1), JournalQuery(limit=0),
]


async def test_archive_search_by_time_tag_prefix_area_priority_and_text(redis_client, tmp_path):
    await write_journal(redis_client, *many_transitions())
    everything = await read_stream_after(redis_client, None)
    with JournalArchive(tmp_path / "journal.sqlite3") as archive:
        archive.append(everything)

        def tags(query: JournalQuery) -> list[str]:
            return [e.tag for e in archive.search(query)]

        assert tags(JournalQuery(tag="T1.*")) == ["T1.levelx", "T1.level"]  # newest first, then later id
        assert tags(JournalQuery(tag="T1*")) == ["T1/", "T1", "T10.level", "T1.levelx", "T1.level"]
        assert tags(JournalQuery(tag="T1.level")) == ["T1.level"]
        assert tags(JournalQuery(tag="t1.*")) == ["t1.level"]  # tag names are case-sensitive
        assert tags(JournalQuery(area="Pumps")) == ["P1.run"]
        assert tags(JournalQuery(priority=1)) == ["P1.run", "T1", "T1.level"]
        assert tags(JournalQuery(text="STRASSE")) == ["M1.flow"]  # Unicode case folding, as the pure rule
        assert [e.user for e in archive.search(JournalQuery(text="olga"))] == ["Olga"]
        assert [e.value_text for e in archive.search(JournalQuery(text="tripped"))] == ["FAULT"]
        base = NOW_MS - 10 * 60_000
        assert tags(JournalQuery(start_ms=base + 1000, end_ms=base + 3000)) == ["T1", "t1.level", "T10.level"]
        assert tags(JournalQuery(limit=2)) == ["M1.flow", "P1.run"]
        # The SQL asks exactly what the pure rule asks, for every kind of condition.
        for query in QUERIES:
            assert archive.search(query) == select(everything, query), query


async def test_search_merges_the_archive_and_the_stream_tail_across_the_boundary(redis_client, tmp_path):
    runtime = SimpleNamespace(config=small_plant().model_copy(update={"data_dir": str(tmp_path / "data")}),
                              redis=redis_client)
    path = journal_archive_path(runtime.config)
    first = await write_journal(redis_client, *(transition(n) for n in range(3)))
    assert await search_journal(runtime, JournalQuery()) != []  # no archive file yet: the stream answers
    assert not path.exists()

    with JournalArchive(path) as archive:
        archive.append(await read_stream_after(redis_client, None))
    later = await write_journal(redis_client, transition(3, user="olga"), transition(4, tag="M1.flow"))
    assert len(await stream_ids(redis_client)) == 5  # archived entries are still in the stream too

    found = await search_journal(runtime, JournalQuery())
    assert [e.entry_id for e in found] == (first + later)[::-1]  # each once, newest first
    assert [e.entry_id for e in await search_journal(runtime, JournalQuery(limit=2))] == later[::-1]
    assert [e.entry_id for e in await search_journal(runtime, JournalQuery(limit=3))] == [*later[::-1], first[2]]
    assert [e.entry_id for e in await search_journal(runtime, JournalQuery(tag="T1.*", limit=4))] == [
        later[0], *first[::-1]]
    assert [e.user for e in await search_journal(runtime, JournalQuery(text="OLGA"))] == ["olga"]

    # Trimmed from Redis, the archived entries still answer from the archive.
    await redis_client.xtrim(keys.ALARM_JOURNAL, minid=later[0], approximate=False)
    assert [e.entry_id for e in await search_journal(runtime, JournalQuery())] == (first + later)[::-1]


async def test_retention_prunes_old_entries_from_the_archive(redis_client, tmp_path):
    await write_journal(redis_client, transition(0, time_ms=NOW_MS - 3 * DAY_MS, message="old"),
                        transition(0, time_ms=NOW_MS - DAY_MS - 60_000, message="just too old"),
                        transition(0, time_ms=NOW_MS - DAY_MS + 60_000, message="kept"),
                        transition(0, time_ms=NOW_MS, message="new"))
    with JournalArchive(tmp_path / "journal.sqlite3") as archive:
        async with archiver(redis_client, archive, retention_days=1, clock_ms=lambda: NOW_MS):
            async def pruned():
                assert [e.message for e in archive.search(JournalQuery())] == ["new", "kept"]
            await eventually(pruned)
        assert archive.last_archived_id() is not None  # the resume point outlives the pruned rows
        assert archive.prune(NOW_MS + 1) == 2 and archive.count() == 0
        assert archive.append(await read_stream_after(redis_client, archive.last_archived_id())) == 0


async def test_only_archived_entries_are_trimmed_from_the_stream(redis_client, tmp_path):
    ids = await write_journal(redis_client, *(transition(n) for n in range(4)))
    with JournalArchive(tmp_path / "journal.sqlite3") as archive:
        archive.append(await read_stream_after(redis_client, None, count=2))  # the first two only
        an_hour_ago = NOW_MS - 3_600_000
        assert await trim_journal_stream(redis_client, archive.last_archived_id(), an_hour_ago) == 0  # all recent
        far_future = NOW_MS + 10 * DAY_MS
        assert await trim_journal_stream(redis_client, archive.last_archived_id(), far_future) == 1
        assert await stream_ids(redis_client) == ids[1:]  # the last archived one stays, unarchived ones stay
        assert await trim_journal_stream(redis_client, None, far_future) == 0  # nothing archived: nothing goes

        # The running archiver trims what it archived and what is older than its hour, keeping the newest.
        async with archiver(redis_client, archive, clock_ms=lambda: NOW_MS + 2 * 3_600_000):
            async def trimmed():
                assert await stream_ids(redis_client) == ids[-1:]
            await eventually(trimmed)
        assert [e.entry_id for e in archive.search(JournalQuery())] == ids[::-1]


async def test_archiver_survives_a_redis_restart(redis_server, redis_client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="alarm_engine.journal_archive")
    await write_journal(redis_client, transition(1))
    with JournalArchive(tmp_path / "journal.sqlite3") as archive:
        async with archiver(redis_client, archive) as task:
            await count_becomes(archive, 1)
            await asyncio.to_thread(redis_server.stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(redis_server.start)
            await write_journal(redis_client, transition(2))
            await count_becomes(archive, 2)
            assert not task.done()
    records = [r for r in caplog.records if r.name == "alarm_engine.journal_archive"]
    errors = [r for r in records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "entries stay in Redis" in errors[0].getMessage()  # loudly once, then quietly
    assert any(r.levelno == logging.INFO and "working again" in r.getMessage() for r in records)


async def test_csv_has_a_header_iso_utc_times_and_one_row_per_entry(redis_client):
    await write_journal(
        redis_client, transition(1, time_ms=1_738_310_400_123),
        transition(2, time_ms=1_738_310_401_000, step="T5", from_state=S.UNACK_ACTIVE, to_state=S.ACK_ACTIVE,
                   user="olga", comment='Checked, "valve" stuck;\nsecond line'),
        transition(3, time_ms=1_738_310_402_000, comment="=HYPERLINK(\"http://x\")", value=-3.5),
        transition(4, time_ms=1_738_310_403_000, tag="P1.run", kind="discrete", value="+FAULT"))
    entries = select(await read_stream_after(redis_client, None), JournalQuery())
    rows = list(csv.reader(io.StringIO(journal_csv(entries))))
    assert rows[0] == list(CSV_HEADER)
    assert len(rows) == 5
    by_time = {row[0]: dict(zip(CSV_HEADER, row)) for row in rows[1:]}
    first = by_time["2025-01-31T08:00:00.123Z"]
    assert (first["time_ms"], first["tag"], first["alarm_id"], first["priority"], first["transition"],
            first["from_state"], first["to_state"], first["value"], first["user"], first["comment"]) == (
        "1738310400123", "T1.level", "T1.level:high", "2", "T1", "A", "B", "4.6", "", "")
    ack = by_time["2025-01-31T08:00:01.000Z"]
    assert (ack["user"], ack["comment"], ack["message"]) == ("olga", 'Checked, "valve" stuck;\nsecond line',
                                                             "Tank 1 level high")
    # Typed text never becomes a spreadsheet formula; numbers stay numbers.
    formula = by_time["2025-01-31T08:00:02.000Z"]
    assert (formula["comment"], formula["value"]) == ("'=HYPERLINK(\"http://x\")", "-3.5")
    assert by_time["2025-01-31T08:00:03.000Z"]["value"] == "'+FAULT"
    assert [row[-1] for row in rows[1:]] == [e.entry_id for e in entries]  # newest first, as searched
    assert journal_csv([]).splitlines() == [",".join(CSV_HEADER)]


@pytest.mark.parametrize("failing", ["archiver", "engine"])
def test_the_process_exits_non_zero_when_either_part_stops(redis_server, tmp_path, monkeypatch, failing):
    plant = tmp_path / "plant.yaml"
    plant.write_text(WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "1") + f"data_dir: {tmp_path / 'data'}\n")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    started = []

    async def broken_archiver(*_args, **_kwargs):
        started.append("archiver")
        await asyncio.sleep(0.5)
        raise RuntimeError("archiver bug")

    async def ended_engine(*_args, **_kwargs):
        started.append("engine")
        await asyncio.sleep(0.5)

    if failing == "archiver":
        monkeypatch.setattr(engine_main, "run_journal_archiver", broken_archiver)
    else:
        monkeypatch.setattr(engine_main, "run_engine", ended_engine)
    assert engine_main.main(["--config", str(plant)]) == 1
    assert started == [failing]


# --- GET /api/alarms/journal through the web app ---------------------------------------------------------

@pytest.fixture
def feeder(redis_server):
    feeder = TagFeeder(redis_server.url)
    feeder.call(ensure_demo_users(feeder.redis))
    yield feeder
    feeder.close()


@pytest.fixture
def web_app(redis_server, tmp_path, feeder):
    plant = tmp_path / "plant.yaml"
    plant.write_text(WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "1") + f"data_dir: {tmp_path / 'data'}\n")
    app = WebAppProcess(plant, redis_server.url, tmp_path / "web").start()
    yield app
    app.stop()


def test_journal_api_searches_exports_csv_refuses_bad_input_and_strangers(web_app, feeder, tmp_path):
    ids = feeder.call(write_journal(feeder.redis, transition(1, time_ms=1_738_310_400_000),
                                    transition(2, time_ms=1_738_310_460_000, tag="M1.flow", area="Utilities",
                                               priority=1, user="olga", comment="flow meter cleaned")))
    # Part of the journal archived, part only in the stream: the API answers from both.
    with JournalArchive(tmp_path / "data" / "alarm_journal.sqlite3") as archive:
        archive.append(feeder.call(read_stream_after(feeder.redis, None, count=1)))
    url = web_app.url + "/api/alarms/journal"
    assert requests.get(url, timeout=10).status_code == 401  # not logged in
    session = login_session(web_app.url, "viewer", "viewer")

    everything = session.get(url, params={"start": "2025-01-31T08:00:00Z", "end": "1738310460000"}, timeout=10)
    assert everything.status_code == 200
    body = everything.json()
    assert body["count"] == 2 and [e["entry_id"] for e in body["entries"]] == ids[::-1]
    assert body["entries"][0]["time"] == "2025-01-31T08:01:00.000Z" and body["entries"][0]["user"] == "olga"
    assert [e["tag"] for e in session.get(url, params={"tag": "T1.*"}, timeout=10).json()["entries"]] == ["T1.level"]
    assert session.get(url, params={"area": "Utilities", "priority": "1", "text": "CLEANED"},
                       timeout=10).json()["count"] == 1

    download = session.get(url, params={"tag": "M1.flow", "format": "csv"}, timeout=10)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == list(CSV_HEADER) and [r[2] for r in rows[1:]] == ["M1.flow"]

    bad_time = session.get(url, params={"start": "yesterday"}, timeout=10)
    assert bad_time.status_code == 400 and "start: 'yesterday' is neither" in bad_time.json()["detail"]
    assert session.get(url, params={"format": "xml"}, timeout=10).status_code == 400
    assert session.get(url, params={"priority": "9"}, timeout=10).status_code == 400
    assert session.get(url, params={"start": "2025-02-01", "end": "2025-01-01"}, timeout=10).status_code == 400

