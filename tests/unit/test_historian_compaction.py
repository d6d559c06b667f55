"""Compaction and rollups: closed hours merged, sorted and deduplicated, late samples merged in later,
days compacted again, 1-minute rollups exact. Real files in tmp_path."""
from __future__ import annotations

import numpy as np

from domain.quality import BAD_SENSOR_FAILURE, GOOD, UNCERTAIN
from historian.reader import HistoryReader
from historian.storage import SampleRows, compact, saved_cursor, write_compacted, write_segment
from tests.unit.historian_samples import BAD, BASE, DAY, HOUR, MINUTE, NAN, rows


def files(tmp_path, pattern="*.parquet"):
    return sorted(p.relative_to(tmp_path / "historian").as_posix() for p in (tmp_path / "historian").rglob(pattern))


def test_a_closed_hour_becomes_one_sorted_file_without_exact_duplicates(tmp_path):
    write_segment(tmp_path, rows(("B", BASE + 3_000, 3.0, 0), ("A", BASE + 2_000, 2.0, 0)), "10-0")
    write_segment(tmp_path, rows(("A", BASE + 1_000, 1.0, 0), ("A", BASE + 2_000, 2.0, 0),  # exact duplicate
                                 ("A", BASE + 2_000, 2.5, 0), ("B", BASE + 3_000, NAN, BAD)), "11-0")  # not

    assert compact(tmp_path, now_ms=BASE + HOUR + 299_999) == 0  # within the grace period
    assert compact(tmp_path, now_ms=BASE + HOUR + 300_000) == 1

    assert files(tmp_path) == ["hours/20251202T00.11-0.parquet", "hours/20251202T00.11-0.rollup.parquet"]
    reader = HistoryReader(tmp_path)
    a = reader.raw("A", BASE, BASE + HOUR)
    assert a.ts_ms.tolist() == [BASE + 1_000, BASE + 2_000, BASE + 2_000]
    assert a.value.tolist() == [1.0, 2.0, 2.5]
    b = reader.raw("B", BASE, BASE + HOUR)
    assert b.quality.tolist() == [0, BAD] and b.value[0] == 3.0 and np.isnan(b.value[1])
    assert compact(tmp_path, now_ms=BASE + 2 * HOUR) == 0  # nothing left to do


def test_late_samples_after_compaction_are_merged_in_on_the_next_pass(tmp_path):
    write_segment(tmp_path, rows(("A", BASE + 1_000, 1.0, 0), ("A", BASE + 5_000, 5.0, 0)), "10-0")
    compact(tmp_path, now_ms=BASE + 2 * HOUR)
    write_segment(tmp_path, rows(("A", BASE + 3_000, 3.0, UNCERTAIN.code), ("A", BASE + 5_000, 5.0, 0)), "20-0")

    reader = HistoryReader(tmp_path)
    assert reader.raw("A", BASE, BASE + HOUR).value.tolist() == [1.0, 3.0, 5.0]  # before the next pass too
    assert compact(tmp_path, now_ms=BASE + 2 * HOUR) == 1
    assert files(tmp_path, "*[0-9].parquet") == ["hours/20251202T00.20-0.parquet"]
    series = reader.raw("A", BASE, BASE + HOUR)
    assert series.value.tolist() == [1.0, 3.0, 5.0]
    assert series.quality.tolist() == [0, UNCERTAIN.code, 0]
    assert saved_cursor(tmp_path) == "20-0"


def test_a_closed_day_is_compacted_again_into_one_day_file_and_late_samples_still_join_it(tmp_path):
    for hour in range(3):
        write_segment(tmp_path, rows(("A", BASE + hour * HOUR + 7, float(hour), 0),
                                     ("B", BASE + hour * HOUR + 9, -float(hour), 0)), f"{100 + hour}-0")
    compact(tmp_path, now_ms=BASE + 5 * HOUR)
    assert len(files(tmp_path, "hours/*[0-9].parquet")) == 3

    assert compact(tmp_path, now_ms=BASE + DAY + 300_000) == 1
    assert files(tmp_path, "*[0-9].parquet") == ["days/20251202.102-0.parquet"]
    reader = HistoryReader(tmp_path)
    assert reader.raw("A", BASE, BASE + DAY).value.tolist() == [0.0, 1.0, 2.0]
    assert reader.raw("B", BASE, BASE + DAY).value.tolist() == [0.0, -1.0, -2.0]

    write_segment(tmp_path, rows(("A", BASE + 2 * HOUR, 9.0, 0)), "200-0")  # a backfill, days late
    assert reader.raw("A", BASE, BASE + DAY).value.tolist() == [0.0, 1.0, 9.0, 2.0]
    assert compact(tmp_path, now_ms=BASE + 3 * DAY) == 2  # its hour, then the day again
    assert files(tmp_path, "*[0-9].parquet") == ["days/20251202.200-0.parquet"]
    assert reader.raw("A", BASE, BASE + DAY).value.tolist() == [0.0, 1.0, 9.0, 2.0]


def test_an_open_hour_with_many_segments_has_them_merged_into_runs_and_runs_into_one(tmp_path):
    reader = HistoryReader(tmp_path)
    for i in range(8 * 48):
        write_segment(tmp_path, rows(("A", BASE + i * 1_000, float(i), 0)), f"{1_000 + i}-0")
        if i % 48 == 46:
            assert compact(tmp_path, now_ms=BASE + HOUR) == 0  # 47 segments: not yet
        if i % 48 == 47:
            assert compact(tmp_path, now_ms=BASE + HOUR) == 1
            assert files(tmp_path)[-1] == f"segments/20251202T00/run-{1_000 + i}-0.parquet"
            assert len(files(tmp_path)) == (i // 48 + 1 if i < 8 * 48 - 1 else 8)

    assert compact(tmp_path, now_ms=BASE + HOUR) == 1  # eight runs: one
    assert files(tmp_path) == [f"segments/20251202T00/run-{1_000 + 8 * 48 - 1}-0~1.parquet"]
    assert reader.raw("A", BASE, BASE + HOUR).value.tolist() == [float(i) for i in range(8 * 48)]
    assert saved_cursor(tmp_path) == f"{1_000 + 8 * 48 - 1}-0"


def test_a_crash_between_writing_and_deleting_leaves_duplicates_that_reads_and_compaction_drop(tmp_path):
    write_segment(tmp_path, rows(("A", BASE + 1_000, 1.0, 0), ("A", BASE + 2_000, 2.0, 0)), "10-0")
    segment = next((tmp_path / "historian" / "segments").rglob("*.parquet"))
    kept = segment.read_bytes()
    compact(tmp_path, now_ms=BASE + 2 * HOUR)
    segment.parent.mkdir(parents=True, exist_ok=True)
    segment.write_bytes(kept)  # as if the compaction had died before deleting its input

    reader = HistoryReader(tmp_path)
    assert reader.raw("A", BASE, BASE + HOUR).value.tolist() == [1.0, 2.0]
    assert reader.rollup("A", BASE, BASE + HOUR).count.tolist() == [2]
    assert compact(tmp_path, now_ms=BASE + 2 * HOUR) == 1
    assert reader.raw("A", BASE, BASE + HOUR).value.tolist() == [1.0, 2.0]
    assert saved_cursor(tmp_path) == "10-0"


def test_rollups_hold_extremes_with_their_times_first_last_counts_and_all_bad_minutes(tmp_path):
    m0, m1, m2 = BASE, BASE + MINUTE, BASE + 2 * MINUTE
    write_compacted(tmp_path, rows(
        ("A", m0 + 1_000, NAN, BAD), ("A", m0 + 2_000, 5.0, 0), ("A", m0 + 3_000, 1.0, UNCERTAIN.code),
        ("A", m0 + 4_000, 9.0, 0), ("A", m0 + 5_000, 1.0, 0), ("A", m0 + 6_000, 4.0, 0),
        ("A", m1 + 0, NAN, BAD), ("A", m1 + 59_999, 7.0, BAD_SENSOR_FAILURE.code),  # a Bad value is not kept
        ("A", m2 + 10, 2.0, 0), ("A", m2 + 20, NAN, BAD),
    ))

    r = HistoryReader(tmp_path).rollup("A", BASE, BASE + 3 * MINUTE - 1)

    assert r.minute_ms.tolist() == [m0, m1, m2]
    assert r.min[0] == 1.0 and r.min_ts_ms[0] == m0 + 3_000  # an Uncertain value counts; the first of a tie
    assert r.max[0] == 9.0 and r.max_ts_ms[0] == m0 + 4_000
    assert np.isnan(r.first[0]) and r.last[0] == 4.0
    assert r.count.tolist() == [6, 2, 2] and r.bad_count.tolist() == [1, 2, 1]
    assert np.isnan(r.min[1]) and np.isnan(r.max[1]) and np.isnan(r.first[1]) and np.isnan(r.last[1])
    assert r.min[2] == r.max[2] == 2.0 and r.min_ts_ms[2] == r.max_ts_ms[2] == m2 + 10 and np.isnan(r.last[2])


def test_stored_rollups_and_rollups_made_from_segments_agree(tmp_path):
    rng = np.random.default_rng(6)
    ts = np.sort(rng.choice(HOUR, 2_000, replace=False)) + BASE
    values = np.round(rng.normal(50, 10, len(ts)), 3)
    quality = np.where(rng.random(len(ts)) < 0.1, BAD, np.where(rng.random(len(ts)) < 0.1, UNCERTAIN.code, GOOD.code))
    values[quality == BAD] = np.nan
    sample = SampleRows(np.full(len(ts), "A", dtype=object), ts, values, quality.astype(np.uint32))
    write_segment(tmp_path, sample, "5-0")
    reader = HistoryReader(tmp_path)
    from_segments = reader.rollup("A", BASE, BASE + HOUR - 1)
    compact(tmp_path, now_ms=BASE + 2 * HOUR)
    assert files(tmp_path, "*.rollup.parquet") == ["hours/20251202T00.5-0.rollup.parquet"]
    stored = reader.rollup("A", BASE, BASE + HOUR - 1)

    assert len(stored) == 60
    for name in ("minute_ms", "min", "max", "min_ts_ms", "max_ts_ms", "first", "last", "count", "bad_count"):
        assert np.array_equal(getattr(stored, name), getattr(from_segments, name), equal_nan=True), name
    assert stored.count.sum() == len(ts) and stored.bad_count.sum() == int((quality == BAD).sum())
    good = quality != BAD
    minute = (ts - BASE) // MINUTE
    for m in (0, 17, 59):
        inside = good & (minute == m)
        assert stored.max[m] == values[inside].max()
        assert stored.max_ts_ms[m] == ts[inside][np.argmax(values[inside])]


def test_a_damaged_file_is_moved_aside_and_compaction_goes_on(tmp_path, caplog):
    write_segment(tmp_path, rows(("A", BASE + 1_000, 1.0, 0)), "10-0")
    damaged = tmp_path / "historian" / "segments" / "20251202T00" / "seg-11-0.parquet"
    damaged.write_bytes(b"PAR1 and nothing else")

    assert compact(tmp_path, now_ms=BASE + 2 * HOUR) == 1

    assert files(tmp_path, "*[0-9].parquet") == ["hours/20251202T00.11-0.parquet",
                                                 "quarantine/20251202T00.seg-11-0.parquet"]
    assert "seg-11-0.parquet cannot be read" in caplog.text
    assert HistoryReader(tmp_path).raw("A", BASE, BASE + HOUR).value.tolist() == [1.0]


def test_a_day_is_merged_in_tag_chunks_with_every_tag_whole(tmp_path, monkeypatch):
    import historian.compaction as compaction
    monkeypatch.setattr(compaction, "DAY_CHUNK_ROWS", 5)  # many chunks for a few rows
    tags = [f"T{i:02d}" for i in range(12)]
    for hour in range(4):  # each hour has a different subset of the tags, in its own order
        present = tags[hour::2] if hour % 2 else list(reversed(tags[::3]))
        write_compacted(tmp_path, rows(*[(t, BASE + hour * HOUR + k * 1_000, hour * 100.0 + k, 0)
                                         for t in present for k in range(3)]))

    assert compact(tmp_path, now_ms=BASE + 2 * DAY) == 1
    assert len(files(tmp_path, "days/*[0-9].parquet")) == 1 and not files(tmp_path, "hours/*")
    reader = HistoryReader(tmp_path)
    for t in tags:
        expected = [hour * 100.0 + k for hour in range(4)
                    for k in range(3) if t in (tags[hour::2] if hour % 2 else tags[::3])]
        assert reader.raw(t, BASE, BASE + DAY).value.tolist() == expected, t
        assert reader.rollup(t, BASE, BASE + DAY).count.sum() == len(expected), t


def test_a_bulk_load_that_completes_a_closed_day_leaves_one_day_file(tmp_path):
    today = (BASE + 400 * DAY) // DAY * DAY  # far ahead of the wall clock: never closed
    day = every_hour_of(BASE) + every_hour_of(today)
    write_compacted(tmp_path, rows(*day[:23]))  # 23 hours of the past day: not complete
    assert files(tmp_path, "days/*") == []

    write_compacted(tmp_path, rows(*day[23:]))

    assert files(tmp_path, "days/*[0-9].parquet") == ["days/20251202.0-0.parquet"]
    assert len(files(tmp_path, "hours/*[0-9].parquet")) == 24  # the open day stays in hours
    assert HistoryReader(tmp_path).raw("A", BASE, BASE + DAY).value.tolist() == [float(h) for h in range(24)]


def every_hour_of(day_ms: int) -> list[tuple[str, int, float, int]]:
    return [("A", day_ms + h * HOUR + 5, float(h), 0) for h in range(24)]
