"""Historian files: segments written and read back, the cursor in the names, atomic writes, bulk loads,
retention. Real files in tmp_path."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from domain.quality import GOOD, UNCERTAIN
from historian.reader import HistoryReader
from historian.storage import SampleRows, compact, disk_bytes, prune, saved_cursor, write_compacted, write_segment
from tests.unit.historian_samples import BAD, BASE, DAY, HOUR, NAN, rows


def test_a_segment_reads_back_with_quality_bad_as_nan_and_uncertain_kept(tmp_path):
    write_segment(tmp_path, rows(("T1", BASE + 2_000, 2.5, UNCERTAIN.code), ("T1", BASE + 1_000, 1.5, GOOD.code),
                                 ("T1", BASE + 3_000, 99.0, BAD), ("T2", BASE + 1_000, 7.0, GOOD.code)), "100-0")

    series = HistoryReader(tmp_path).raw("T1", BASE, BASE + 10_000)

    assert series.ts_ms.tolist() == [BASE + 1_000, BASE + 2_000, BASE + 3_000]
    assert series.value[:2].tolist() == [1.5, 2.5] and np.isnan(series.value[2])  # a Bad value is never kept
    assert series.quality.tolist() == [GOOD.code, UNCERTAIN.code, BAD]
    assert series.ts_ms.dtype == np.int64 and series.value.dtype == np.float64 and series.quality.dtype == np.uint32


def test_rows_are_split_by_source_hour_and_the_range_is_inclusive(tmp_path):
    paths = write_segment(tmp_path, rows(("T1", BASE + HOUR - 1, 1.0, 0), ("T1", BASE + HOUR, 2.0, 0)), "5-1")

    assert len(paths) == 2 and {p.parent.name for p in paths} == {"20251202T00", "20251202T01"}
    assert all("5-1" in p.name for p in paths)
    reader = HistoryReader(tmp_path)
    assert reader.raw("T1", BASE + HOUR - 1, BASE + HOUR).value.tolist() == [1.0, 2.0]
    assert reader.raw("T1", BASE + HOUR, BASE + 2 * HOUR).value.tolist() == [2.0]


def test_the_cursor_is_the_greatest_entry_id_in_any_name_and_survives_compaction(tmp_path):
    assert saved_cursor(tmp_path) is None
    write_segment(tmp_path, rows(("T1", BASE, 1.0, 0)), "1764633600000-9")
    write_segment(tmp_path, rows(("T1", BASE + 1_000, 2.0, 0)), "1764633600000-10")  # 10 > 9 as numbers
    write_segment(tmp_path, rows(("T1", BASE + 500, 3.0, 0)), "999-0")  # a late write never moves it back
    assert saved_cursor(tmp_path) == "1764633600000-10"

    assert compact(tmp_path, now_ms=BASE + 2 * HOUR) == 1
    assert not list((tmp_path / "historian" / "segments").rglob("*.parquet"))
    assert saved_cursor(tmp_path) == "1764633600000-10"


def test_a_bad_entry_id_is_refused(tmp_path):
    with pytest.raises(ValueError):
        write_segment(tmp_path, rows(("T1", BASE, 1.0, 0)), "not-an-id")


def test_two_segments_with_the_same_entry_id_both_stay(tmp_path):
    write_segment(tmp_path, rows(("T1", BASE, 1.0, 0)), "7-0")
    write_segment(tmp_path, rows(("T1", BASE + 1, 2.0, 0)), "7-0")

    assert HistoryReader(tmp_path).raw("T1", BASE, BASE + 10).value.tolist() == [1.0, 2.0]


def test_a_temp_file_left_by_a_crash_is_ignored_and_cleaned_once_old(tmp_path):
    write_segment(tmp_path, rows(("T1", BASE, 1.0, 0)), "1-0")
    hour_dir = tmp_path / "historian" / "segments" / "20251202T00"
    leftover = hour_dir / ".seg-2-0.parquet.4242.tmp"
    leftover.write_bytes(b"PAR1 half a file")

    assert HistoryReader(tmp_path).raw("T1", BASE, BASE + HOUR).value.tolist() == [1.0]
    assert saved_cursor(tmp_path) == "1-0"
    compact(tmp_path, now_ms=BASE + HOUR // 2)  # young: a writer may still be busy with it
    assert leftover.exists()
    old = time.time() - 3_600
    os.utime(leftover, (old, old))
    compact(tmp_path, now_ms=BASE + HOUR // 2)
    assert not leftover.exists()


def test_no_temp_file_remains_after_writes(tmp_path):
    write_segment(tmp_path, rows(("T1", BASE, 1.0, 0)), "1-0")
    write_compacted(tmp_path, rows(("T1", BASE + DAY, 1.0, 0)))
    compact(tmp_path, now_ms=BASE + 3 * DAY)

    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_bulk_load_writes_compacted_hours_with_rollups_and_entry_zero(tmp_path):
    tags = [f"U{i:02d}.FT" for i in range(3)]
    ts = BASE + np.arange(2 * 3_600) * 1_000  # two hours at 1 s
    sample = SampleRows(np.repeat(np.array(tags, dtype=object), len(ts)), np.tile(ts, 3),
                        np.tile(np.arange(len(ts), dtype=np.float64), 3), np.zeros(3 * len(ts), np.uint32))

    paths = write_compacted(tmp_path, sample)

    assert len(paths) == 2 and all(p.name.endswith(".0-0.parquet") for p in paths)
    assert all(p.with_name(p.name.replace(".parquet", ".rollup.parquet")).exists() for p in paths)
    assert saved_cursor(tmp_path) == "0-0"
    reader = HistoryReader(tmp_path)
    series = reader.raw("U01.FT", BASE, BASE + 2 * HOUR)
    assert len(series) == 7_200 and np.array_equal(series.value, np.arange(7_200.0))
    assert len(reader.rollup("U01.FT", BASE, BASE + 2 * HOUR - 1)) == 120
    assert disk_bytes(tmp_path) > 0


def test_retention_removes_only_partitions_that_ended_before_it(tmp_path):
    now = BASE + 40 * DAY
    write_compacted(tmp_path, rows(("T1", BASE, 1.0, 0), ("T1", BASE + 5 * DAY, 2.0, 0),
                                   ("T1", now - 10 * DAY, 3.0, 0)))
    write_segment(tmp_path, rows(("T1", BASE + 1_000, 4.0, 0)), "9-0")
    compact(tmp_path, now_ms=now)  # days of their own

    assert prune(tmp_path, now_ms=now, retention_days=30) == 2
    reader = HistoryReader(tmp_path)
    assert reader.raw("T1", BASE - DAY, now).value.tolist() == [3.0]
    assert prune(tmp_path, now_ms=now, retention_days=30) == 0
    assert not list(tmp_path.rglob("*.rollup.parquet"))[1:]  # only the kept day's rollups


def test_a_sample_with_an_impossible_source_time_is_refused_loudly_and_the_rest_written(tmp_path, caplog):
    paths = write_segment(tmp_path, rows(("T1", BASE, 1.0, 0), ("T9", 10 ** 16, 2.0, 0), ("T9", -5, 3.0, 0)), "3-0")

    assert len(paths) == 1
    assert "2 samples with source times outside 1970..9999" in caplog.text and "T9" in caplog.text
    assert HistoryReader(tmp_path).raw("T1", BASE, BASE).value.tolist() == [1.0]


def test_a_file_that_cannot_be_read_is_logged_once_and_skipped(tmp_path, caplog):
    write_segment(tmp_path, rows(("T1", BASE, 1.0, 0)), "1-0")
    broken = tmp_path / "historian" / "segments" / "20251202T00" / "seg-2-0.parquet"
    broken.write_bytes(b"not parquet at all")
    reader = HistoryReader(tmp_path)

    assert reader.raw("T1", BASE, BASE + HOUR).value.tolist() == [1.0]
    assert reader.raw("T1", BASE, BASE + HOUR).value.tolist() == [1.0]
    assert caplog.text.count("seg-2-0.parquet") == 1
