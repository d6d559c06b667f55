"""`python -m historian` as a process against a real Redis: samples the real TagStoreWriter wrote land on
disk once each, also across SIGTERM, SIGKILL, a feed trimmed past the cursor, a Redis restart and a
failing disk; a bad plant file is refused."""
from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from domain.quality import BAD_NO_COMMUNICATION, BAD_SENSOR_FAILURE, GOOD, UNCERTAIN
from domain.tag_value import TagValue
from historian.backfill import backfill
from historian.heartbeat import read_heartbeat
from historian.parquet_files import read_all
from historian.paths import list_files, root_of
from historian.reader import HistoryReader
from tag_store import keys
from tag_store.codec import encode_tag_value, tag_value_to_dict
from tag_store.writer import TagStoreWriter

REPO = Path(__file__).resolve().parents[2]
FAST = "{flush_interval_s: 0.2, compaction_interval_s: 3600}"  # no compaction: duplicates would show


def write_plant(tmp_path: Path, historian: str = FAST, history_samples_per_tag: int = 1000) -> Path:
    plant = tmp_path / "plant.yaml"
    plant.write_text(
        f"data_dir: {tmp_path / 'data'}\nhistory_samples_per_tag: {history_samples_per_tag}\n"
        f"historian: {historian}\n"
        "sources: {skid: {kind: mqtt}}\n"
        "tags:\n  - {name: u.flow, source: skid, topic: a/flow}\n"
        "  - {name: u.run, source: skid, topic: a/run, data_type: bool}\n"
        "  - {name: u.mode, source: skid, topic: a/mode, data_type: string}\n")
    return plant


class HistorianProcess:
    def __init__(self, plant: Path, redis_url: str):
        self.plant, self.redis_url = plant, redis_url
        self.log_path = plant.parent / "historian.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> HistorianProcess:
        env = dict(os.environ, REDIS_URL=self.redis_url, PYTHONUNBUFFERED="1")
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([sys.executable, "-m", "historian", "--config", str(self.plant)],
                                        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 15) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def historian_processes():
    started: list[HistorianProcess] = []

    def make(plant: Path, redis_url: str) -> HistorianProcess:
        started.append(HistorianProcess(plant, redis_url))
        return started[-1]

    yield make
    for process in started:
        process.kill()


async def write_samples(redis, samples: list[TagValue], per_batch: int = 10) -> None:
    """Through the real writer, per_batch samples per pipeline (one sl:samples entry each)."""
    writer = TagStoreWriter(redis, 1000, max_batch=per_batch)
    for tv in samples:
        writer.submit(tv)
    await writer.drain()


def flow(start_ms: int, n: int, tag: str = "u.flow") -> list[TagValue]:
    return [TagValue(tag, float(i), GOOD, start_ms + i, start_ms + i) for i in range(n)]


def rows_on_disk(data_dir: Path) -> Counter:
    """(tag, ts_ms) -> how many rows the files hold: a duplicate shows as 2."""
    found: Counter = Counter()
    for data_file in list_files(root_of(data_dir)).files:
        rows = read_all(data_file.path)
        for code, ts in zip(rows.codes, rows.columns["ts_ms"]):
            found[(rows.names[code], int(ts))] += 1
    return found


async def wait_until(check, timeout_s: float = 20.0, what: str = "", process: HistorianProcess | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await check() if asyncio.iscoroutinefunction(check) else check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"; historian log:\n{process.log()}" if process else ""))


def times_on_disk(data_dir: Path, tag: str) -> list[int]:
    return sorted(ts for (t, ts), _n in rows_on_disk(data_dir).items() if t == tag)


def assert_each_once(data_dir: Path, tag: str, expected_ts: list[int]) -> None:
    found = rows_on_disk(data_dir)
    mine = {ts: n for (t, ts), n in found.items() if t == tag}
    assert sorted(mine) == sorted(expected_ts), f"missing {sorted(set(expected_ts) - set(mine))[:10]}"
    assert [ts for ts, n in mine.items() if n != 1] == [], "duplicated rows"


async def test_samples_land_on_disk_with_their_quality(tmp_path, redis_server, redis_client, historian_processes):
    historian = historian_processes(write_plant(tmp_path), redis_server.url).start()
    t0 = int(time.time() * 1000) - 10_000
    await write_samples(redis_client, [
        TagValue("u.flow", 10.5, GOOD, t0, t0 + 5),
        TagValue("u.flow", 11.0, UNCERTAIN, t0 + 1000, t0 + 1005),
        TagValue("u.flow", None, BAD_SENSOR_FAILURE, t0 + 2000, t0 + 2005),
        TagValue("u.flow", 12.0, GOOD, t0 + 3000, t0 + 3005),
        TagValue("u.run", True, GOOD, t0, t0 + 5),
        TagValue("u.run", False, BAD_NO_COMMUNICATION, t0 + 2000, t0 + 2005),
        TagValue("u.mode", "auto", GOOD, t0, t0 + 5),  # text: not trended
    ], per_batch=3)
    reader = HistoryReader(tmp_path / "data")
    series = await wait_until(lambda: (s := reader.raw("u.flow", t0 - 1, t0 + 10_000)) and len(s.ts_ms) == 4 and s,
                              what="u.flow on disk", process=historian)
    assert list(series.ts_ms) == [t0, t0 + 1000, t0 + 2000, t0 + 3000]
    assert list(series.quality) == [GOOD.code, UNCERTAIN.code, BAD_SENSOR_FAILURE.code, GOOD.code]
    assert series.value[0] == 10.5 and series.value[1] == 11.0 and math.isnan(series.value[2]) and series.value[3] == 12
    run = reader.raw("u.run", t0 - 1, t0 + 10_000)
    assert list(run.value[:1]) == [1.0] and math.isnan(run.value[1]) and run.quality[1] == BAD_NO_COMMUNICATION.code
    assert len(reader.raw("u.mode", t0 - 1, t0 + 10_000).ts_ms) == 0

    newest = (await redis_client.xrevrange(keys.SAMPLES, count=1))[0][0].decode()

    async def heartbeat_caught_up():
        beat = await read_heartbeat(redis_client)
        return beat if beat.get("cursor") == newest and beat.get("behind_entries") == "0" else None

    beat = await wait_until(heartbeat_caught_up, what="the heartbeat at the newest entry", process=historian)
    assert beat["state"] == "ok" and beat["buffered_samples"] == "0" and beat["dropped_samples"] == "0"
    assert int(beat["disk_bytes"]) > 0 and abs(int(beat["heartbeat_ms"]) - time.time() * 1000) < 3000
    assert int(beat["last_flush_ms"]) > 0 and beat["last_error"] == ""
    assert historian.stop() == 0


async def test_sigterm_writes_everything_read_before_the_stop(tmp_path, redis_server, redis_client,
                                                              historian_processes):
    # Flushes only every 30 s: what is on disk after the stop was written by the stop.
    plant = write_plant(tmp_path, "{flush_interval_s: 30, compaction_interval_s: 3600}")
    historian = historian_processes(plant, redis_server.url).start()
    await wait_until(lambda: "first start" in historian.log(), what="the start", process=historian)
    t0 = int(time.time() * 1000) - 60_000
    samples = flow(t0, 500)
    await write_samples(redis_client, samples[:250])
    await asyncio.sleep(1.0)  # some read into the buffer ...
    await write_samples(redis_client, samples[250:])  # ... and some still in the feed at the stop
    assert historian.stop() == 0
    assert_each_once(tmp_path / "data", "u.flow", [tv.source_time_ms for tv in samples])
    assert (await read_heartbeat(redis_client))["state"] == "stopped"
    assert "everything up to feed entry" in historian.log()


async def test_sigkill_and_restart_resume_at_the_cursor(tmp_path, redis_server, redis_client, historian_processes):
    plant = write_plant(tmp_path)
    historian = historian_processes(plant, redis_server.url).start()
    t0 = int(time.time() * 1000) - 60_000
    samples = flow(t0, 900)
    await write_samples(redis_client, samples[:300])
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) == 300, what="the first 300",
                     process=historian)
    await write_samples(redis_client, samples[300:600])
    historian.stop(signal.SIGKILL)  # some of these may be on disk, some not
    await write_samples(redis_client, samples[600:])  # while it is down; the feed still holds all
    restarted = historian_processes(plant, redis_server.url).start()
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) >= 900, what="all 900",
                     process=restarted)
    await asyncio.sleep(0.5)  # anything read twice would be written by now
    assert_each_once(tmp_path / "data", "u.flow", [tv.source_time_ms for tv in samples])
    assert "resuming after feed entry" in restarted.log()
    assert restarted.stop() == 0


async def test_a_feed_trimmed_past_the_cursor_is_backfilled_from_the_tag_streams(
        tmp_path, redis_server, redis_client, historian_processes):
    plant = write_plant(tmp_path)
    historian = historian_processes(plant, redis_server.url).start()
    t0 = int(time.time() * 1000) - 120_000
    samples = flow(t0, 1000)
    runs = [TagValue("u.run", i % 2 == 0, GOOD, t0 + i, t0 + i) for i in range(100)]
    await write_samples(redis_client, samples[:200] + runs[:20])
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) == 200, what="the first 200",
                     process=historian)
    assert historian.stop() == 0
    # While it is down, the feed moves on and keeps only its newest 5 entries (as its cap would): runs[50:],
    # 10 samples an entry. u.run's own stream is trimmed too, to runs[70:]: runs[20:50] are gone for good.
    await write_samples(redis_client, samples[200:] + runs[20:])
    await redis_client.xtrim(keys.SAMPLES, maxlen=5, approximate=False)
    await redis_client.xtrim(keys.history("u.run"), maxlen=30, approximate=False)
    restarted = historian_processes(plant, redis_server.url).start()
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) >= 1000, what="all 1000 samples",
                     process=restarted)
    await asyncio.sleep(0.5)
    assert_each_once(tmp_path / "data", "u.flow", [tv.source_time_ms for tv in samples])
    assert_each_once(tmp_path / "data", "u.run", [tv.source_time_ms for tv in runs[:20] + runs[50:]])
    log = restarted.log()
    assert "the feed no longer holds the entries after" in log and "recovered from sl:hist:<tag>" in log
    assert "NOT recovered: samples of 1 tags" in log and "u.run" in log
    # ... and it follows the feed afterwards.
    later = flow(t0 + 5000, 10)
    await write_samples(redis_client, later)
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) >= 1010, what="new samples",
                     process=restarted)
    assert restarted.stop() == 0


async def test_the_first_start_takes_what_redis_still_holds(tmp_path, redis_server, redis_client,
                                                            historian_processes):
    t0 = int(time.time() * 1000) - 60_000
    samples = flow(t0, 300)
    await write_samples(redis_client, samples)
    await redis_client.xtrim(keys.SAMPLES, maxlen=3, approximate=False)  # most only in sl:hist:u.flow now
    historian = historian_processes(write_plant(tmp_path), redis_server.url).start()
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) >= 300, what="all 300",
                     process=historian)
    await asyncio.sleep(0.5)
    assert_each_once(tmp_path / "data", "u.flow", [tv.source_time_ms for tv in samples])
    assert "first start" in historian.log()
    assert historian.stop() == 0


async def test_redis_stopped_and_restarted_under_it(tmp_path, redis_server, redis_client, historian_processes):
    historian = historian_processes(write_plant(tmp_path), redis_server.url).start()
    t0 = int(time.time() * 1000) - 60_000
    samples = flow(t0, 400)
    await write_samples(redis_client, samples[:200])
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) == 200, what="the first 200",
                     process=historian)
    redis_server.stop()
    await wait_until(lambda: "lost Redis" in historian.log(), what="the loss logged", process=historian)
    await asyncio.sleep(1.0)
    assert historian.process.poll() is None
    redis_server.start()
    await write_samples(redis_client, samples[200:])
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) >= 400, what="all 400",
                     process=historian)
    assert_each_once(tmp_path / "data", "u.flow", [tv.source_time_ms for tv in samples])
    assert "Redis is back" in historian.log()

    async def state_ok():
        return (await read_heartbeat(redis_client)).get("state") == "ok"

    await wait_until(state_ok, timeout_s=5, what="state ok in the heartbeat", process=historian)
    assert historian.stop() == 0


async def test_a_failing_disk_holds_the_samples_and_says_so(tmp_path, redis_server, redis_client,
                                                            historian_processes):
    historian = historian_processes(write_plant(tmp_path), redis_server.url).start()
    t0 = int(time.time() * 1000) - 60_000
    samples = flow(t0, 300)
    await write_samples(redis_client, samples[:100])
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) == 100, what="the first 100",
                     process=historian)
    segments = root_of(tmp_path / "data") / "segments"
    moved = segments.with_name("segments.away")
    segments.rename(moved)
    segments.write_text("not a directory")  # every write now fails
    await write_samples(redis_client, samples[100:])

    async def failing():
        beat = await read_heartbeat(redis_client)
        return beat if beat.get("state") == "disk_failing" and beat.get("buffered_samples") == "200" else None

    beat = await wait_until(failing, what="disk_failing in the heartbeat", process=historian)
    assert beat["last_error"].startswith("disk: ") and beat["dropped_samples"] == "0"
    segments.unlink()
    moved.rename(segments)
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) >= 300, timeout_s=40,
                     what="the held samples written", process=historian)
    assert_each_once(tmp_path / "data", "u.flow", [tv.source_time_ms for tv in samples])
    assert "writing to" in historian.log() and "again" in historian.log()
    assert historian.stop() == 0


async def test_a_full_buffer_drops_the_oldest_and_counts_them(tmp_path, redis_server, redis_client,
                                                              historian_processes):
    plant = write_plant(tmp_path, "{flush_interval_s: 0.2, compaction_interval_s: 3600, max_buffer_samples: 10000}")
    historian = historian_processes(plant, redis_server.url).start()
    await wait_until(lambda: "first start" in historian.log(), what="the start", process=historian)
    root = root_of(tmp_path / "data")
    root.mkdir(parents=True, exist_ok=True)
    (root / "segments").write_text("not a directory")  # every write fails from now on
    samples = flow(int(time.time() * 1000) - 60_000, 15_000)
    await write_samples(redis_client, samples, per_batch=1000)  # 15 entries of 1,000

    async def dropped():
        beat = await read_heartbeat(redis_client)
        return beat if beat.get("dropped_samples") == "5000" and beat.get("buffered_samples") == "10000" else None

    beat = await wait_until(dropped, what="5,000 dropped in the heartbeat", process=historian)
    assert beat["state"] == "disk_failing" and historian.process.poll() is None
    assert "the oldest samples are dropped" in historian.log()
    (root / "segments").unlink()
    await wait_until(lambda: len(times_on_disk(tmp_path / "data", "u.flow")) >= 10_000, timeout_s=40,
                     what="the newest 10,000 written", process=historian)
    assert_each_once(tmp_path / "data", "u.flow", [tv.source_time_ms for tv in samples[5000:]])
    assert "5000 samples dropped since the start" in historian.log()
    assert historian.stop() == 0


async def test_compaction_and_retention_run_beside_the_feed(tmp_path, redis_server, redis_client,
                                                            historian_processes):
    plant = write_plant(tmp_path, "{flush_interval_s: 0.2, compaction_interval_s: 1, compaction_grace_s: 0,"
                                  " retention_days: 2}")
    historian = historian_processes(plant, redis_server.url).start()
    now_ms = int(time.time() * 1000)
    two_hours_ago = flow(now_ms - 7_200_000, 50)  # a closed hour: merged into one compacted file
    five_days_ago = [TagValue("u.run", True, GOOD, now_ms - 5 * 86_400_000, now_ms)]  # beyond retention
    await write_samples(redis_client, two_hours_ago + five_days_ago)
    data_dir = tmp_path / "data"

    def compacted_and_pruned():
        files = list_files(root_of(data_dir)).files
        return files and all(f.level != "segment" for f in files) and not times_on_disk(data_dir, "u.run")

    await wait_until(compacted_and_pruned, what="compaction and retention", process=historian)
    assert_each_once(data_dir, "u.flow", [tv.source_time_ms for tv in two_hours_ago])

    async def compaction_reported():
        return int((await read_heartbeat(redis_client)).get("last_compaction_ms") or 0) > 0

    await wait_until(compaction_reported, what="last_compaction_ms", process=historian)
    later = flow(now_ms, 10)  # the feed is still followed, and the cursor kept in the compacted file's name
    await write_samples(redis_client, later)
    await wait_until(lambda: len(times_on_disk(data_dir, "u.flow")) == 60, what="new samples", process=historian)
    assert historian.stop() == 0
    assert "partitions older than 2 days removed" in historian.log()


async def test_backfill_takes_what_only_the_tag_stream_holds_between_cursor_and_feed(redis_client):
    """Entry ids set by hand: the boundaries at the cursor's and the first held feed entry's millisecond."""
    def sample(i: int) -> TagValue:
        return TagValue("u.flow", float(i), GOOD, 5000 + i, 6000 + i)

    on_disk, trimmed, in_feed_early, trimmed_same_ms, in_feed, later = (sample(i) for i in range(6))
    for entry_id, tv in [("990-0", on_disk), ("995-0", trimmed), ("999-0", in_feed_early),
                         ("1000-0", trimmed_same_ms), ("1000-1", in_feed), ("1001-0", later)]:
        await redis_client.xadd(keys.history("u.flow"), {"d": encode_tag_value(tv)}, id=entry_id)
    # The first held feed entry has samples whose history ids are in its millisecond or just before.
    await redis_client.xadd(keys.SAMPLES, {"s": json.dumps([["u.flow", tag_value_to_dict(in_feed_early)],
                                                            ["u.flow", tag_value_to_dict(in_feed)]])}, id="1000-2")
    await redis_client.xadd(keys.SAMPLES, {"s": json.dumps([["u.flow", tag_value_to_dict(later)]])}, id="1001-0")
    chunks = [chunk async for chunk in backfill(redis_client, ["u.flow", "u.none"], "990-3", "1000-2")]
    assert [v for chunk in chunks for v in chunk.values] == [trimmed.value, trimmed_same_ms.value]
    assert chunks[-1].entry_id == "1000-1"  # just before the first held feed entry
    assert all(chunk.feed_entries == 0 for chunk in chunks)
    first_start = [chunk async for chunk in backfill(redis_client, ["u.flow"], None, "1000-2")]
    assert [v for chunk in first_start for v in chunk.values] == [on_disk.value, trimmed.value,
                                                                  trimmed_same_ms.value]


def test_bad_historian_settings_stop_it_with_the_key_path(tmp_path):
    plant = write_plant(tmp_path, "{retention_days: 0.5}")
    result = subprocess.run([sys.executable, "-m", "historian", "--config", str(plant)], cwd=REPO,
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, REDIS_URL="redis://127.0.0.1:1/0"))
    assert result.returncode == 2
    assert str(plant) in result.stderr and "historian.retention_days" in result.stderr
