"""Both history tiers for real: the historian's files in a temporary data dir (written with its own
storage functions) and the recent window in a real Redis (written by the real TagStoreWriter), queried
by query_history as the web app does."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import web.history_query as history_query
from domain.quality import BAD_NO_COMMUNICATION, BAD_SENSOR_FAILURE, GOOD
from domain.tag_value import TagValue
from historian.reader import HistoryReader
from historian.sample_rows import SampleRows
from historian.storage import compact, disk_bytes, prune, saved_cursor, write_compacted, write_segment
from tag_store import keys
from tag_store.writer import TagStoreWriter
from tests.unit.web_plant import small_plant
from web.history_query import query_history

TAG = "T1.level"
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@pytest.fixture
def plant():
    return small_plant()  # after private_data_dir: data_dir is this test's own


@pytest.fixture
def runtime(plant, redis_client):
    return SimpleNamespace(redis=redis_client, config=plant)


@pytest.fixture
def data_dir(plant):
    return Path(plant.data_dir)


def whole_second_now_ms() -> int:
    return int(time.time()) * 1000


def series(start_ms: int, count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """count samples at 1 s from start_ms: distinct noisy values (no ties), all Good."""
    rng = np.random.default_rng(seed)
    ts = start_ms + 1_000 * np.arange(count, dtype=np.int64)
    values = np.round(50 + 10 * np.sin(np.arange(count) / 300) + rng.normal(0, 0.5, count), 6)
    return ts, values, np.full(count, GOOD.code, dtype=np.uint32)


def rows(ts: np.ndarray, values: np.ndarray, quality: np.ndarray, tag: str = TAG) -> SampleRows:
    return SampleRows.from_lists([tag] * len(ts), ts.tolist(), values.tolist(), quality.tolist())


async def write_to_redis(redis_client, plant, ts, values) -> None:
    """Recent samples as the data sources leave them: through the real writer (ids = receive times)."""
    writer = TagStoreWriter(redis_client, plant.history_samples_per_tag)
    for t, v in zip(ts.tolist(), values.tolist()):
        writer.submit(TagValue(TAG, v, GOOD, t, t))
    await writer.drain()


async def query(runtime, start_ms, end_ms, max_points=history_query.MAX_POINTS_CAP, reader=None):
    return await query_history(runtime, runtime.config.tag(TAG), start_ms, end_ms, max_points, live=False,
                               now_ms=end_ms, reader=reader)


def no_line_across(history, from_ms: int, to_ms: int) -> bool:
    """No two consecutive drawn points (both values) enclose [from_ms, to_ms]: the trend shows a gap."""
    points = list(zip(history.ts_ms, history.values))
    return not any(v1 is not None and v2 is not None and t1 <= from_ms and t2 >= to_ms
                   for (t1, v1), (t2, v2) in zip(points, points[1:]))


async def test_a_query_across_the_boundary_returns_every_sample_once_in_order(runtime, plant, data_dir,
                                                                              redis_client):
    now = whole_second_now_ms()
    ts, values, quality = series(now - 2 * HOUR_MS, 7_200)
    # On disk: the first hour as a bulk-loaded (compacted) partition, the next 40 minutes as the
    # historian's live segments; in Redis the last 40 minutes, so 20 minutes are in both tiers.
    write_compacted(data_dir, rows(ts[:3_600], values[:3_600], quality[:3_600]))
    write_segment(data_dir, rows(ts[3_600:6_000], values[3_600:6_000], quality[3_600:6_000]), f"{now}-0")
    await write_to_redis(redis_client, plant, ts[4_800:], values[4_800:])

    start = int(ts[0]) + 500  # between two samples: the value in force is carried in
    history = await query(runtime, start, now)  # the runtime's reader, as the web app gets it
    assert history.tiers == ("disk", "redis") and history.resolution == "raw" and not history.downsampled
    assert history.ts_ms == [start, *ts[1:].tolist()]
    assert history.values == [float(values[0]), *values[1:].tolist()]
    assert history.quality_bad_periods == [] and history.notes == ()
    # Neither tier alone holds all of it.
    assert len(HistoryReader(data_dir).raw(TAG, start, now).ts_ms) == 5_999
    assert await redis_client.xlen(keys.history(TAG)) == 2_400


async def test_a_bad_period_and_a_communication_loss_on_disk_stay_gaps(runtime, data_dir):
    now = whole_second_now_ms()
    start = now - 3 * HOUR_MS  # well before anything in Redis
    ts, values, quality = series(start, 1_200)
    values, quality = values.copy(), quality.copy()
    quality[300:330] = BAD_SENSOR_FAILURE.code  # 30 s of sensor failure: Bad every second
    values[300:330] = np.nan
    quality[600] = BAD_NO_COMMUNICATION.code  # connection lost: one marker, then nothing for 3 minutes
    values[600] = np.nan
    keep = np.ones(len(ts), dtype=bool)
    keep[601:780] = False
    write_segment(data_dir, rows(ts[keep], values[keep], quality[keep]), "1-0")

    history = await query(runtime, start, start + 1_200_000, reader=HistoryReader(data_dir))
    assert history.ts_ms == ts[keep].tolist()
    assert [v is None for v in history.values] == (~np.isfinite(values[keep])).tolist()
    assert history.quality_bad_periods == [(int(ts[300]), int(ts[330])), (int(ts[600]), int(ts[780]))]
    assert no_line_across(history, int(ts[600]), int(ts[780]))


async def test_retention_prunes_old_partitions_and_the_query_then_returns_nothing_there(runtime, data_dir):
    now = whole_second_now_ms()
    old_start = (now - 10 * DAY_MS) // HOUR_MS * HOUR_MS
    new_start = (now - DAY_MS) // HOUR_MS * HOUR_MS
    for start in (old_start, new_start):
        write_compacted(data_dir, rows(*series(start, 3_600)))
    reader = HistoryReader(data_dir)
    before = await query(runtime, old_start, old_start + HOUR_MS, reader=reader)
    assert len(before.ts_ms) == 3_600
    carried = await query(runtime, old_start + 2 * HOUR_MS, new_start - HOUR_MS, reader=reader)
    assert carried.ts_ms == [old_start + 2 * HOUR_MS]  # the old hour's last value, still in force
    bytes_before = disk_bytes(data_dir)

    assert prune(data_dir, now, retention_days=7) >= 1
    assert disk_bytes(data_dir) < bytes_before
    reader = HistoryReader(data_dir)
    gone = await query(runtime, old_start, old_start + HOUR_MS, reader=reader)
    assert gone.ts_ms == [] and gone.values == []
    # Nothing pruned is carried into a later window either: the value in force there is unknown.
    later = await query(runtime, old_start + 2 * HOUR_MS, new_start - HOUR_MS, reader=reader)
    assert later.ts_ms == []
    kept = await query(runtime, new_start, new_start + HOUR_MS, reader=reader)
    assert kept.ts_ms == series(new_start, 3_600)[0].tolist()


async def test_a_restarted_reader_and_historian_see_the_same_history(runtime, data_dir):
    now = whole_second_now_ms()
    start = (now - 4 * HOUR_MS) // HOUR_MS * HOUR_MS
    ts, values, quality = series(start, 7_200)
    write_segment(data_dir, rows(ts[:5_000], values[:5_000], quality[:5_000]), "1700000000000-3")
    write_segment(data_dir, rows(ts[5_000:], values[5_000:], quality[5_000:]), "1700000001000-0")
    first = await query(runtime, start, start + 2 * HOUR_MS, reader=HistoryReader(data_dir))
    assert first.ts_ms == ts.tolist()

    # A restart: a new reader over the same files, also after compaction merged the closed hours.
    again = await query(runtime, start, start + 2 * HOUR_MS, reader=HistoryReader(data_dir))
    assert (again.ts_ms, again.values) == (first.ts_ms, first.values)
    assert compact(data_dir, now, grace_ms=0) >= 1
    compacted = await query(runtime, start, start + 2 * HOUR_MS, reader=HistoryReader(data_dir))
    assert (compacted.ts_ms, compacted.values) == (first.ts_ms, first.values)
    # The historian resumes the feed where its files end.
    assert saved_cursor(data_dir) == "1700000001000-0"


async def test_a_long_range_from_rollups_keeps_every_minutes_extremes_and_its_gaps(runtime, data_dir,
                                                                                 monkeypatch):
    monkeypatch.setattr(history_query, "RAW_BUDGET_PER_PEN", 2_000)  # 6 h at 1 s is then "long"
    now = whole_second_now_ms()
    start = (now - 2 * DAY_MS) // HOUR_MS * HOUR_MS
    ts, values, quality = series(start, 6 * 3_600)
    values, quality = values.copy(), quality.copy()
    values[1_234] = 500.0  # a one-sample spike, and a dip, in the part read as rollups
    values[5_678] = -500.0
    loss, back = 9_000 + 17, 9_000 + 17 + 600  # a 10-minute communication loss, not minute-aligned
    quality[loss], values[loss] = BAD_NO_COMMUNICATION.code, np.nan
    keep = np.ones(len(ts), dtype=bool)
    keep[loss + 1:back] = False
    ts, values, quality = ts[keep], values[keep], quality[keep]
    write_compacted(data_dir, rows(ts, values, quality))
    end = start + 6 * HOUR_MS

    history = await query(runtime, start, end, reader=HistoryReader(data_dir))
    assert history.resolution == "rollup_1min+raw" and not history.downsampled
    assert start < history.raw_from_ms < end
    drawn = dict(zip(history.ts_ms, history.values))
    rollup_part = ts < history.raw_from_ms
    minutes = ts[rollup_part] // MINUTE_MS * MINUTE_MS
    good = np.isfinite(values[rollup_part])
    for minute in np.unique(minutes[good]):
        inside = (minutes == minute) & good
        t, v = ts[rollup_part][inside], values[rollup_part][inside]
        assert drawn[int(t[np.argmin(v)])] == v.min() and drawn[int(t[np.argmax(v)])] == v.max()
    assert history.ts_ms == sorted(history.ts_ms)
    assert no_line_across(history, int(ts[loss]), int(ts[loss + 1]))
    assert any(a <= ts[loss] and b >= ts[loss + 1] for a, b in history.quality_bad_periods)
    # The raw part is every sample.
    assert [t for t in history.ts_ms if t >= history.raw_from_ms] == ts[~rollup_part].tolist()

    # Downsampled to a narrow trend, the spike, the dip and the gap are still there.
    narrow = await query(runtime, start, end, max_points=200, reader=HistoryReader(data_dir))
    assert narrow.downsampled and len(narrow.ts_ms) <= 200
    assert 500.0 in narrow.values and -500.0 in narrow.values
    assert narrow.ts_ms[narrow.values.index(500.0)] == ts[1_234]
    assert no_line_across(narrow, int(ts[loss]), int(ts[loss + 1]))
