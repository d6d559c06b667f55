"""query_history and raw_history_csv: a real Redis for the recent tier, an in-memory disk tier that
answers like historian.reader.HistoryReader."""
from __future__ import annotations

import csv
import io
import time
from types import SimpleNamespace

import numpy as np
import pytest

import web.history_query as history_query
from domain.config_model import DataType
from domain.quality import BAD_NO_COMMUNICATION, GOOD, UNCERTAIN, quality_from_code
from domain.tag_value import TagValue
from historian.heartbeat import HistorianStatus, write_heartbeat
from tag_store import keys
from tag_store.codec import encode_tag_value
from tag_store.writer import TagStoreWriter
from tests.unit.web_plant import small_plant
from web.history_csv import raw_history_csv
from web.historian_health import clock_text
from web.history_query import HistoryQueryError, query_history
from web.trend_history import pen_points

PLANT = small_plant()
INDEX = {t.name: t for t in PLANT.tags}
LEVEL, RUN, COUNT = INDEX["T1.level"], INDEX["P1.run"], INDEX["C1.count"]
BAD = BAD_NO_COMMUNICATION.code
NAN = float("nan")


class FakeDisk:
    """The historian reader's interface over samples held in memory: (ts_ms, value, quality code)."""

    def __init__(self, samples: dict[str, list[tuple[int, float, int]]] | None = None):
        self.samples = {tag: sorted(rows) for tag, rows in (samples or {}).items()}
        self.calls: list[str] = []

    def _arrays(self, tag, start_ms, end_ms, end_inclusive=True):
        rows = [r for r in self.samples.get(tag, []) if start_ms <= r[0] and (r[0] <= end_ms if end_inclusive
                                                                                  else r[0] < end_ms)]
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        quality = np.array([r[2] for r in rows], dtype=np.uint32)
        value = np.array([NAN if q >> 30 >= 2 else r[1] for r, q in zip(rows, quality)], dtype=np.float64)
        return ts, value, quality

    def raw(self, tag, start_ms, end_ms):
        self.calls.append("raw")
        ts, value, quality = self._arrays(tag, start_ms, end_ms)
        return SimpleNamespace(ts_ms=ts, value=value, quality=quality)

    def rollup(self, tag, start_ms, end_ms):
        self.calls.append("rollup")
        ts, value, quality = self._arrays(tag, start_ms - start_ms % 60_000, end_ms, end_inclusive=False)
        rows = []
        for minute in np.unique(ts - ts % 60_000):
            inside = (ts - ts % 60_000) == minute
            t, v = ts[inside], value[inside]
            good = np.isfinite(v)
            lo = int(np.argmin(np.where(good, v, np.inf))) if good.any() else 0
            hi = int(np.argmax(np.where(good, v, -np.inf))) if good.any() else 0
            rows.append((minute, v[lo] if good.any() else NAN, v[hi] if good.any() else NAN, t[lo], t[hi],
                         v[0], v[-1], len(t), int((~good).sum())))
        names = ["minute_ms", "min", "max", "min_ts_ms", "max_ts_ms", "first", "last", "count", "bad_count"]
        return SimpleNamespace(**{n: np.array([r[i] for r in rows]) for i, n in enumerate(names)})

    def count_estimate(self, tag, start_ms, end_ms):
        return len(self._arrays(tag, start_ms, end_ms)[0])

    def last_sample_before(self, tag, ts_ms):
        before = [r for r in self.samples.get(tag, []) if r[0] < ts_ms]
        if not before:
            return None
        ts, value, quality = before[-1]
        return ts, NAN if quality >> 30 >= 2 else value, quality


class BrokenDisk(FakeDisk):
    def count_estimate(self, tag, start_ms, end_ms):
        raise OSError("disk on fire")


def runtime_for(redis_client):
    return SimpleNamespace(redis=redis_client, config=PLANT)


async def put(redis_client, samples: list[TagValue]) -> None:
    writer = TagStoreWriter(redis_client, 100_000)
    for tv in samples:
        writer.submit(tv)
    await writer.drain()


def now_ms() -> int:
    return int(time.time() * 1000)


def good(tag, value, ts_ms, quality=GOOD) -> TagValue:
    return TagValue(tag, value, quality, ts_ms, ts_ms)


async def test_both_tiers_merge_without_duplicates_or_holes(redis_client):
    base = now_ms() - 300_000
    every = [(base + i * 500, float(i % 17)) for i in range(400)]
    disk = FakeDisk({"T1.level": [(t, v, 0) for t, v in every[:300]]})  # the historian is behind
    await put(redis_client, [good("T1.level", v, t) for t, v in every[200:]])  # overlaps 100 samples
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 400 * 500, 5_000,
                                  live=False, reader=disk)
    assert history.ts_ms == [t for t, _ in every] and history.values == [v for _, v in every]
    assert history.raw_count == 400 and not history.downsampled and history.resolution == "raw"
    assert history.tiers == ("disk", "redis") and history.notes == () and not history.truncated
    assert history.quality_bad_periods == [] and history.unit == "m"


async def test_only_the_window_is_returned_and_the_value_in_force_is_carried_in(redis_client):
    base = now_ms() - 200_000
    disk = FakeDisk({"T1.level": [(base - 3_600_000, 4.0, 0), (base + 5_000, 5.0, 0)]})
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 10_000, live=False, reader=disk)
    assert history.ts_ms == [base, base + 5_000] and history.values == [4.0, 5.0]
    # A newer sample in Redis wins over the disk's; a window that starts on a sample carries nothing in.
    await put(redis_client, [good("T1.level", 4.5, base - 1_000)])
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 10_000, live=False, reader=disk)
    assert history.values == [4.5, 5.0]
    history = await query_history(runtime_for(redis_client), LEVEL, base + 5_000, base + 10_000, live=False,
                                  reader=disk)
    assert history.ts_ms == [base + 5_000] and history.values == [5.0]


async def test_a_bad_value_in_force_starts_the_window_with_a_gap_and_a_bad_period(redis_client):
    base = now_ms() - 200_000
    disk = FakeDisk({"T1.level": [(base - 60_000, 4.0, 0), (base - 1_000, NAN, BAD), (base + 5_000, 5.0, 0)]})
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 10_000, live=False, reader=disk)
    assert history.ts_ms == [base, base + 5_000] and history.values == [None, 5.0]
    assert history.quality_bad_periods == [(base, base + 5_000)]


async def test_communication_loss_is_a_gap_and_a_bad_period_and_uncertain_is_kept(redis_client):
    base = now_ms() - 100_000
    await put(redis_client, [
        good("T1.level", 1.0, base), good("T1.level", 2.0, base + 1_000),
        good("T1.level", 2.0, base + 2_000, BAD_NO_COMMUNICATION),
        good("T1.level", 3.0, base + 9_000), good("T1.level", 3.5, base + 10_000, UNCERTAIN),
        good("T1.level", 4.0, base + 11_000),
    ])
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 20_000, live=False,
                                  reader=FakeDisk())
    assert history.values == [1.0, 2.0, None, 3.0, 3.5, 4.0]
    assert history.quality_bad_periods == [(base + 2_000, base + 9_000)]
    assert history.quality_uncertain_periods == [(base + 10_000, base + 11_000)]
    # Still lost at the end: the bad period lasts to the end of the window (or now).
    await put(redis_client, [good("T1.level", None, base + 12_000, BAD_NO_COMMUNICATION)])
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 20_000, live=False,
                                  reader=FakeDisk())
    assert history.quality_bad_periods[-1] == (base + 12_000, base + 20_000)


async def test_the_last_value_is_held_to_now_only_while_live(redis_client):
    now = now_ms()
    await put(redis_client, [good("T1.level", 2.0, now - 50_000)])
    runtime = runtime_for(redis_client)
    live = await query_history(runtime, LEVEL, now - 60_000, now + 60_000, live=True, now_ms=now, reader=FakeDisk())
    assert live.ts_ms == [now - 50_000, now] and live.values == [2.0, 2.0]
    stale = await query_history(runtime, LEVEL, now - 60_000, now, live=False, now_ms=now, reader=FakeDisk())
    assert stale.ts_ms == [now - 50_000]
    # A window in the past holds the live value to its end, not beyond.
    past = await query_history(runtime, LEVEL, now - 60_000, now - 10_000, live=True, now_ms=now,
                               reader=FakeDisk())
    assert past.ts_ms == [now - 50_000, now - 10_000]


async def test_bools_are_zero_and_one_and_text_tags_are_refused(redis_client):
    base = now_ms() - 10_000
    await put(redis_client, [good("P1.run", True, base), good("P1.run", False, base + 1_000)])
    history = await query_history(runtime_for(redis_client), RUN, base, base + 2_000, live=False,
                                  reader=FakeDisk())
    assert history.values == [1.0, 0.0]
    text = LEVEL.model_copy(update={"name": "S1.text", "data_type": DataType.STRING})
    with pytest.raises(HistoryQueryError, match="text values are not trended"):
        await query_history(runtime_for(redis_client), text, base, base + 1, reader=FakeDisk())
    with pytest.raises(HistoryQueryError, match="end after it starts"):
        await query_history(runtime_for(redis_client), LEVEL, base, base, reader=FakeDisk())
    with pytest.raises(HistoryQueryError, match="days"):
        await query_history(runtime_for(redis_client), LEVEL, 0, 400 * 86_400_000, reader=FakeDisk())
    with pytest.raises(HistoryQueryError, match="max_points"):
        await query_history(runtime_for(redis_client), LEVEL, base, base + 1, max_points=2, reader=FakeDisk())


async def test_a_long_raw_range_is_downsampled_keeping_spikes_and_gaps(redis_client):
    base = now_ms() - 3_600_000
    rng = np.random.default_rng(7)
    rows = [(base + i * 100, float(v), 0) for i, v in enumerate(rng.normal(50, 1, 30_000))]
    rows[12_345] = (rows[12_345][0], 500.0, 0)
    rows[20_000:20_500] = [(t, NAN, BAD) for t, _v, _q in rows[20_000:20_500]]
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 3_000_000, 1_000, live=False,
                                  reader=FakeDisk({"T1.level": rows}))
    assert len(history.ts_ms) <= 1_000 and history.downsampled and history.raw_count == 30_000
    assert 500.0 in history.values
    gap = history.values.index(None)
    assert history.ts_ms[gap] == rows[20_000][0] and history.ts_ms[gap + 1] == rows[20_500][0]
    assert history.quality_bad_periods == [(rows[20_000][0], rows[20_500][0])]


async def test_beyond_the_raw_budget_older_minutes_come_from_rollups_and_keep_their_extremes(
        redis_client, monkeypatch):
    monkeypatch.setattr(history_query, "RAW_BUDGET_PER_PEN", 1_000)
    start = (now_ms() - 7_200_000) // 60_000 * 60_000
    rows = [(start + i * 1_000, 10.0 + (i % 60) / 60, 0) for i in range(7_200)]  # 2 h at 1 Hz
    rows[1_000] = (rows[1_000][0], 99.0, 0)           # a spike in the rollup part
    rows[2_000] = (rows[2_000][0], -5.0, 0)           # and a dip
    rows[3_000] = (rows[3_000][0], NAN, BAD)          # ten minutes of communication loss: one Bad
    rows = [r for i, r in enumerate(rows) if not 3_000 < i < 3_600]  # marker, then nothing until back
    disk = FakeDisk({"T1.level": rows})
    history = await query_history(runtime_for(redis_client), LEVEL, start, start + 7_200_000, 2_000,
                                  live=False, reader=disk)
    assert "rollup" in disk.calls and history.resolution == "rollup_1min+raw"
    assert start < history.raw_from_ms < start + 7_200_000 and history.raw_from_ms % 60_000 == 0
    assert 99.0 in history.values and -5.0 in history.values
    assert history.ts_ms[history.values.index(99.0)] == rows[1_000][0]
    # The loss shows as a gap: nothing is drawn between its start and the recovery.
    loss_ms, back_ms = start + 3_000_000, start + 3_600_000
    inside = [v for t, v in zip(history.ts_ms, history.values) if loss_ms <= t < back_ms]
    assert inside and all(v is None for v in inside)
    assert any(a <= loss_ms + 60_000 and b >= back_ms - 60_000 for a, b in history.quality_bad_periods)
    assert history.ts_ms == sorted(history.ts_ms)
    # The raw part is raw: every sample after raw_from_ms is there.
    assert [t for t in history.ts_ms if t >= history.raw_from_ms] == [
        r[0] for r in rows if r[0] >= history.raw_from_ms]


async def test_a_failing_disk_tier_leaves_the_recent_one_and_says_so(redis_client, caplog):
    base = now_ms() - 10_000
    await put(redis_client, [good("T1.level", 1.0, base)])
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 1_000, live=False,
                                  reader=BrokenDisk())
    assert history.values == [1.0] and history.tiers == ("redis",)
    assert "disk on fire" in history.notes[0]


async def test_a_historian_that_stopped_writing_is_a_note_and_a_running_one_is_not(redis_client):
    base = now_ms() - 10_000
    await put(redis_client, [good("T1.level", 1.0, base)])
    await write_heartbeat(redis_client, HistorianStatus(heartbeat_ms=now_ms(), last_flush_ms=now_ms()))
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 1_000, live=False, reader=FakeDisk())
    assert history.notes == ()
    crashed_ms = now_ms() - 20 * 60_000  # the historian's last heartbeat, 20 minutes ago
    await write_heartbeat(redis_client, HistorianStatus(heartbeat_ms=crashed_ms, last_flush_ms=crashed_ms))
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 1_000, live=False,
                                  reader=BrokenDisk())
    assert history.values == [1.0]
    assert history.notes[0].startswith(f"History is not being written to disk since {clock_text(crashed_ms, now_ms())}")
    assert "the historian is not running" in history.notes[0] and "disk on fire" in history.notes[1]


async def test_a_heartbeat_that_cannot_be_read_does_not_fail_the_query(redis_client):
    class NoHeartbeat:
        """The runtime's Redis, except that the heartbeat hash cannot be read."""

        def __getattr__(self, name):
            return getattr(redis_client, name)

        async def hgetall(self, _key):
            raise ConnectionError("heartbeat unreadable")

    base = now_ms() - 10_000
    await put(redis_client, [good("T1.level", 1.0, base)])
    history = await query_history(SimpleNamespace(redis=NoHeartbeat(), config=PLANT), LEVEL, base, base + 1_000,
                                  live=False, reader=FakeDisk())
    assert history.values == [1.0] and history.notes == ()


async def test_the_csv_has_every_raw_sample_of_every_pen_in_time_order(redis_client):
    base = now_ms() - 100_000
    disk = FakeDisk({"T1.level": [(base, 1.5, 0), (base + 2_000, NAN, BAD)],
                     "C1.count": [(base + 1_000, 7.0, 0)]})
    await put(redis_client, [good("T1.level", None, base + 2_000, BAD_NO_COMMUNICATION),  # also on disk
                             good("T1.level", 2.25, base + 3_000), good("C1.count", 8, base + 3_000)])
    export = await raw_history_csv(runtime_for(redis_client), [LEVEL, COUNT], base - 50_000, base + 10_000,
                                   reader=disk)
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == ["time", "tag", "value", "quality", "quality_name"]
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"  # noqa: E731
    assert rows[1:] == [
        [iso(base), "T1.level", "1.5", "0", "Good"],
        [iso(base + 1_000), "C1.count", "7", "0", "Good"],
        [iso(base + 2_000), "T1.level", "", str(BAD), "BadNoCommunication"],
        [iso(base + 3_000), "T1.level", "2.25", "0", "Good"],
        [iso(base + 3_000), "C1.count", "8", "0", "Good"],
    ]
    assert export.rows == 5 and not export.truncated


async def test_the_csv_stops_at_its_cap_with_a_note(redis_client):
    base = now_ms() - 100_000
    disk = FakeDisk({"T1.level": [(base + i, float(i), 0) for i in range(100)]})
    export = await raw_history_csv(runtime_for(redis_client), [LEVEL], base, base + 1_000, cap_rows=30,
                                   reader=disk)
    lines = export.text.splitlines()
    assert export.truncated and export.rows <= 30 and len(lines) == export.rows + 2
    assert lines[-1].startswith("# truncated: at most 30 rows; the export stops at ")
    values = [float(r[2]) for r in csv.reader(lines[1:-1])]
    assert values == [float(i) for i in range(len(values))]  # the oldest rows, none skipped


async def test_a_pen_history_is_drawn_as_trend_points(redis_client):
    base = now_ms() - 10_000
    await put(redis_client, [good("T1.level", 1.0, base), good("T1.level", None, base + 1, BAD_NO_COMMUNICATION)])
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 5, live=False, reader=FakeDisk())
    assert pen_points(history) == [(base, 1.0), (base + 1, None)]


# --- what the recent tier reads when the disk tier answered -------------------------------------

async def xadd_at_source_time(redis_client, tag: str, samples: list[tuple[int, float]]) -> None:
    """sl:hist entries as the writer leaves them, received at their source time (entry id)."""
    pipe = redis_client.pipeline(transaction=False)
    for t, v in samples:
        pipe.xadd(keys.history(tag), {"d": encode_tag_value(good(tag, v, t))}, id=f"{t}-0")
    await pipe.execute()


def counting_decodes(monkeypatch) -> list[int]:
    decoded: list[int] = []
    original = history_query.decode_entries

    def counting(raws, names):
        decoded.append(len(raws))
        return original(raws, names)

    monkeypatch.setattr(history_query, "decode_entries", counting)
    return decoded


async def test_redis_is_read_only_from_the_disks_newest_sample_minus_the_receive_skew(redis_client, monkeypatch):
    skew = history_query.RECEIVE_SKEW_MS
    start = now_ms() - 3_600_000
    every = [(start + i * 1_000, float(i % 29)) for i in range(3_600)]
    disk = FakeDisk({"T1.level": [(t, v, 0) for t, v in every[:3_000]]})  # the historian is 10 min behind
    await xadd_at_source_time(redis_client, "T1.level", every)
    decoded = counting_decodes(monkeypatch)
    history = await query_history(runtime_for(redis_client), LEVEL, start, start + 3_600_000, 5_000,
                                  live=False, reader=disk)
    assert history.ts_ms == [t for t, _ in every] and history.values == [v for _, v in every]
    newest_on_disk = every[2_999][0]
    assert sum(decoded) == sum(1 for t, _ in every if t >= newest_on_disk - skew) < len(every)


async def test_a_historian_down_for_hours_leaves_redis_read_from_where_its_files_end(redis_client, monkeypatch):
    start = now_ms() - 4 * 3_600_000
    every = [(start + i * 10_000, float(i % 13)) for i in range(4 * 360)]
    # The files end 3 h ago (the historian stopped); Redis holds the last 3.5 h.
    disk = FakeDisk({"T1.level": [(t, v, 0) for t, v in every[:360]]})
    await xadd_at_source_time(redis_client, "T1.level", every[180:])
    decoded = counting_decodes(monkeypatch)
    history = await query_history(runtime_for(redis_client), LEVEL, start, start + 4 * 3_600_000, 5_000,
                                  live=False, reader=disk)
    assert history.ts_ms == [t for t, _ in every] and history.values == [v for _, v in every]
    assert sum(decoded) == len(every) - (359 - 60)  # from 10 min (60 samples) before the files' end
    # Without a disk tier (or a failing one) all of Redis's range is read.
    decoded.clear()
    history = await query_history(runtime_for(redis_client), LEVEL, start, start + 4 * 3_600_000, 5_000,
                                  live=False, reader=BrokenDisk({}))
    assert history.ts_ms == [t for t, _ in every[180:]] and sum(decoded) == len(every) - 180


async def test_the_value_in_force_is_looked_up_only_when_nothing_lies_at_the_start(redis_client):
    base = now_ms() - 200_000

    class CountingDisk(FakeDisk):
        lookups = 0

        def last_sample_before(self, tag, ts_ms):
            CountingDisk.lookups += 1
            return super().last_sample_before(tag, ts_ms)

    disk = CountingDisk({"T1.level": [(base - 5_000, 3.0, 0), (base, 4.0, 0), (base + 5_000, 5.0, 0)]})
    history = await query_history(runtime_for(redis_client), LEVEL, base, base + 10_000, live=False, reader=disk)
    assert history.ts_ms == [base, base + 5_000] and CountingDisk.lookups == 0
    history = await query_history(runtime_for(redis_client), LEVEL, base + 1, base + 10_000, live=False,
                                  reader=disk)
    assert history.ts_ms == [base + 1, base + 5_000] and history.values == [4.0, 5.0]
    assert CountingDisk.lookups == 1


def test_merge_compares_only_the_shared_span_and_equals_a_full_sort_and_dedupe():
    rng = np.random.default_rng(6)
    for _ in range(200):
        parts = []
        for _tier in range(2):
            n = int(rng.integers(0, 40))
            ts = np.sort(rng.integers(0, 60, n)).astype(np.int64) + int(rng.integers(0, 40))
            value = rng.choice([1.0, 2.0, NAN], n)
            quality = rng.choice([0, BAD], n).astype(np.uint32)
            parts.append(history_query.Samples(ts, value, quality, {0: "good"}))
        got = history_query.merge(*parts)
        want = history_query.sort_and_dedupe(history_query._concat(parts, {}))
        assert got.ts_ms.tolist() == want.ts_ms.tolist() and got.quality.tolist() == want.quality.tolist()
        assert np.array_equal(got.value, want.value, equal_nan=True) and got.names == {0: "good"}


def test_entries_decode_at_once_as_one_by_one():
    odd = quality_from_code(0x80AB0000, "Bad_Vendor")
    samples = [TagValue("X", 1.5, GOOD, 10, 11), TagValue("X", True, GOOD, 20, 21),
               TagValue("X", "text", GOOD, 30, 31), TagValue("X", None, GOOD, 40, 41),
               TagValue("X", 7, BAD_NO_COMMUNICATION, 50, 51), TagValue("X", 2.0, UNCERTAIN, 60, 61),
               TagValue("X", 3.0, odd, 70, 71), TagValue("X", False, GOOD, 80, 80, True)]
    names: dict[int, str] = {}
    got = history_query.decode_entries([encode_tag_value(tv).encode() for tv in samples], names)
    assert got.ts_ms.tolist() == [10, 20, 30, 40, 50, 60, 70, 80]
    assert np.array_equal(got.value, [1.5, 1.0, NAN, NAN, NAN, 2.0, NAN, 0.0], equal_nan=True)
    assert got.quality.tolist() == [tv.quality.code for tv in samples]
    assert names == {tv.quality.code: tv.quality.name for tv in samples}
    assert history_query.decode_entries([encode_tag_value(samples[0])], {}).value.tolist() == [1.5]  # str
