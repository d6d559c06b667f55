"""HistoryReader over real files: every kind of file at once, the value in force across partitions,
estimates, files vanishing under it, and what web/history_query.py's disk tier makes of its answers."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow.parquet as pq

from domain.downsampling import rollup_points
from domain.quality import UNCERTAIN
from historian.reader import HistoryReader
from historian.storage import SampleRows, compact, write_compacted, write_segment
from tests.unit.historian_samples import BAD, BASE, DAY, HOUR, MINUTE, NAN, rows
from web.history_query import read_disk


def every_second(tag: str, start_ms: int, seconds: int, offset: float = 0.0) -> SampleRows:
    ts = start_ms + np.arange(seconds, dtype=np.int64) * 1_000
    return SampleRows(np.full(seconds, tag, dtype=object), ts, offset + np.arange(seconds, dtype=np.float64),
                      np.zeros(seconds, np.uint32))


def three_tiers(tmp_path) -> None:
    """Day 1 in a day file, day 2 hour 0 in an hour file, day 2 hour 1 in segments."""
    write_segment(tmp_path, rows(("A", BASE + 10, 1.0, 0), ("A", BASE + 5 * HOUR, 2.0, UNCERTAIN.code)), "1-0")
    write_segment(tmp_path, rows(("A", BASE + DAY + 10, 3.0, 0), ("A", BASE + DAY + 20, NAN, BAD)), "2-0")
    compact(tmp_path, now_ms=BASE + DAY + 2 * HOUR)
    write_segment(tmp_path, rows(("A", BASE + DAY + HOUR + 10, 4.0, 0)), "3-0")
    write_segment(tmp_path, rows(("A", BASE + DAY + HOUR + 20, 5.0, 0)), "4-0")


def test_an_empty_or_missing_directory_is_no_history(tmp_path):
    reader = HistoryReader(tmp_path / "nothing here")

    assert reader.data_dir == tmp_path / "nothing here"
    assert len(reader.raw("A", 0, BASE)) == 0 and len(reader.rollup("A", 0, BASE)) == 0
    assert reader.count_estimate("A", 0, BASE) == 0 and reader.last_sample_before("A", BASE) is None


def test_raw_reads_day_hour_and_segment_files_as_one_series(tmp_path):
    three_tiers(tmp_path)
    kinds = {p.parent.name if p.parent.parent.name == "historian" else "segments"
             for p in (tmp_path / "historian").rglob("*[0-9].parquet")}
    assert kinds == {"days", "hours", "segments"}

    series = HistoryReader(tmp_path).raw("A", BASE, BASE + 2 * DAY)

    assert series.ts_ms.tolist() == [BASE + 10, BASE + 5 * HOUR, BASE + DAY + 10, BASE + DAY + 20,
                                     BASE + DAY + HOUR + 10, BASE + DAY + HOUR + 20]
    assert series.quality.tolist() == [0, UNCERTAIN.code, 0, BAD, 0, 0]
    assert np.array_equal(series.value, [1.0, 2.0, 3.0, NAN, 4.0, 5.0], equal_nan=True)
    assert HistoryReader(tmp_path).raw("A", BASE + 11, BASE + DAY + 10).value.tolist() == [2.0, 3.0]
    assert len(HistoryReader(tmp_path).raw("B", BASE, BASE + 2 * DAY)) == 0


def test_the_value_in_force_is_found_in_older_partitions(tmp_path):
    three_tiers(tmp_path)
    reader = HistoryReader(tmp_path)

    assert reader.last_sample_before("A", BASE + DAY + HOUR + 20) == (BASE + DAY + HOUR + 10, 4.0, 0)
    ts, value, quality = reader.last_sample_before("A", BASE + DAY + HOUR)
    assert (ts, quality) == (BASE + DAY + 20, BAD) and np.isnan(value)
    assert reader.last_sample_before("A", BASE + DAY) == (BASE + 5 * HOUR, 2.0, UNCERTAIN.code)
    assert reader.last_sample_before("A", BASE + 20 * DAY) == (BASE + DAY + HOUR + 20, 5.0, 0)
    assert reader.last_sample_before("A", BASE + 10) is None


def test_the_value_in_force_is_found_inside_a_big_file(tmp_path):
    write_compacted(tmp_path, every_second("A", BASE, 3 * 3_600))  # hours of 3,600 rows: their own row groups
    reader = HistoryReader(tmp_path)

    assert reader.last_sample_before("A", BASE + 1_234_500) == (BASE + 1_234_000, 1_234.0, 0)
    assert reader.last_sample_before("A", BASE + HOUR) == (BASE + HOUR - 1_000, 3_599.0, 0)


def test_count_estimate_follows_the_samples_in_range(tmp_path):
    write_compacted(tmp_path, every_second("A", BASE, 2 * 3_600))
    write_segment(tmp_path, every_second("A", BASE + 2 * HOUR, 600), "9-0")
    reader = HistoryReader(tmp_path)

    assert reader.count_estimate("A", BASE, BASE + 3 * HOUR) == 7_800
    assert abs(reader.count_estimate("A", BASE + HOUR // 2, BASE + HOUR) - 1_800) <= 2
    assert reader.count_estimate("A", BASE + 5 * HOUR, BASE + 6 * HOUR) == 0
    assert reader.count_estimate("B", BASE, BASE + 3 * HOUR) == 0


def test_rollups_span_stored_and_computed_hours(tmp_path):
    write_compacted(tmp_path, every_second("A", BASE, 3_600))  # stored rollups
    write_segment(tmp_path, every_second("A", BASE + HOUR, 120, offset=10_000.0), "9-0")  # computed

    r = HistoryReader(tmp_path).rollup("A", BASE + 30_000, BASE + HOUR + MINUTE)

    assert r.minute_ms.tolist() == [BASE + m * MINUTE for m in range(62)]
    assert r.count.tolist() == [60] * 62
    assert r.min[0] == 0.0 and r.max[-1] == 10_119.0 and r.max_ts_ms[-1] == BASE + HOUR + 119_000


class ReaderRacedByACompaction(HistoryReader):
    """Between its listing and its reading, a compaction moves the listed files' rows elsewhere."""

    def __init__(self, data_dir, now_ms):
        super().__init__(data_dir)
        self.now_ms, self.raced = now_ms, 0

    def _tag_files(self, tag, start_ms, end_ms):
        found = super()._tag_files(tag, start_ms, end_ms)
        if not self.raced:
            self.raced = compact(self.data_dir, now_ms=self.now_ms)
        return found


def test_a_file_vanishing_between_listing_and_reading_makes_the_reader_list_again(tmp_path):
    write_segment(tmp_path, every_second("A", BASE, 100), "1-0")
    write_segment(tmp_path, every_second("A", BASE + 100_000, 100, offset=100.0), "2-0")
    reader = ReaderRacedByACompaction(tmp_path, now_ms=BASE + 2 * HOUR)

    series = reader.raw("A", BASE, BASE + HOUR)

    assert reader.raced == 1
    assert series.value.tolist() == [float(i) for i in range(200)]


def test_reads_stay_whole_while_another_thread_writes_and_compacts(tmp_path):
    stop = threading.Event()
    written = []  # seconds whose samples are durable

    def historian():
        second = 0
        while not stop.is_set() and second < 3_400:  # within the hour read
            write_segment(tmp_path, every_second("A", BASE + second * 1_000, 20, offset=second), f"{second + 1}-0")
            second += 20
            written.append(second)
            compact(tmp_path, now_ms=BASE + 30 * MINUTE)  # an open hour: merges every 48 segments

    thread = threading.Thread(target=historian)
    thread.start()
    reader = HistoryReader(tmp_path)
    checks = 0
    try:
        while thread.is_alive() and checks < 150:
            durable = written[-1] if written else 0
            series = reader.raw("A", BASE, BASE + HOUR)
            assert np.array_equal(series.value[:durable], np.arange(durable, dtype=np.float64))
            checks += 1
    finally:
        stop.set()
        thread.join()
    assert checks > 10


def test_the_web_disk_tier_draws_from_these_rollups_and_raw_samples(tmp_path):
    write_compacted(tmp_path, every_second("A", BASE, 3 * 3_600))
    reader = HistoryReader(tmp_path)

    part = read_disk(reader, "A", BASE + 1_000, BASE + 3 * HOUR - 1, raw_budget=3_600)

    assert part.raw_from_ms == BASE + 2 * HOUR  # the newest hour fits the budget: raw, older minutes rolled up
    assert len(part.raw) == 3_600 and part.raw.value[0] == 7_200.0
    assert part.rollup_ts[0] == BASE + 59_000 and part.rollup_values.max() == 7_199.0  # the minimum lay before start
    assert part.carried == (BASE, 0.0, 0)
    ts, values = rollup_points(reader.rollup("A", BASE, BASE + HOUR - 1))
    assert len(ts) == 120 and values.min() == 0.0 and values.max() == 3_599.0


def test_a_repeated_read_reads_no_file_and_new_files_are_seen_at_once(tmp_path, monkeypatch):
    import historian.reader as reader_module

    write_compacted(tmp_path, every_second("A", BASE, 7_200))
    reader = HistoryReader(tmp_path)
    first = reader.raw("A", BASE + 1_000, BASE + 5_000_000)
    reads: list[str] = []
    original = reader_module.read_tags
    monkeypatch.setattr(reader_module, "read_tags",
                        lambda path, *a, **k: reads.append(path.name) or original(path, *a, **k))

    again = reader.raw("A", BASE + 1_000, BASE + 5_000_000)
    assert again.ts_ms.tolist() == first.ts_ms.tolist() == list(range(BASE + 1_000, BASE + 5_000_001, 1_000))
    assert reads == []
    assert reader.last_sample_before("A", BASE + 4_000_500) == (BASE + 4_000_000, 4_000.0, 0) and reads == []
    write_segment(tmp_path, rows(("A", BASE + 3_000_500, 99.0, 0)), "9-0")  # a late sample
    late = reader.raw("A", BASE + 3_000_000, BASE + 3_001_000)
    assert late.ts_ms.tolist() == [BASE + 3_000_000, BASE + 3_000_500, BASE + 3_001_000] and len(reads) == 1


def test_a_tag_too_big_to_keep_is_read_by_range_with_the_same_answer(tmp_path, monkeypatch):
    import historian.reader as reader_module

    write_compacted(tmp_path, every_second("A", BASE, 7_200))
    kept = HistoryReader(tmp_path)
    ranges = ((BASE, BASE + 2 * HOUR), (BASE + 1_500, BASE + 3_700_000), (BASE + 10, BASE + 20))
    want = [kept.raw("A", start, end) for start, end in ranges]
    want_before = kept.last_sample_before("A", BASE + HOUR + 500)
    assert kept._samples
    monkeypatch.setattr(reader_module, "RAW_CACHE_BYTES", 8 * 20 * 100)  # 100 rows
    by_range = HistoryReader(tmp_path)
    for (start, end), a in zip(ranges, want):
        b = by_range.raw("A", start, end)
        assert a.ts_ms.tolist() == b.ts_ms.tolist() and a.value.tolist() == b.value.tolist()
    assert by_range.last_sample_before("A", BASE + HOUR + 500) == want_before == (BASE + HOUR, 3_600.0, 0)
    assert not by_range._samples


def test_a_file_opened_for_one_pen_yields_the_rows_of_the_others_asked_for_with_it(tmp_path, monkeypatch):
    import historian.reader as reader_module

    parts = [every_second("A", BASE, 3_600), every_second("B", BASE, 3_600, 0.5), every_second("C", BASE, 3_600)]
    write_compacted(tmp_path, SampleRows(*(np.concatenate([getattr(p, c) for p in parts])
                                           for c in ("tag", "ts_ms", "value", "quality"))))
    reader = HistoryReader(tmp_path)
    reads: list[str] = []
    original = reader_module.read_tags
    monkeypatch.setattr(reader_module, "read_tags",
                        lambda path, *a, **k: reads.append(path.name) or original(path, *a, **k))
    assert reader.count_estimate("A", BASE, BASE + HOUR) == reader.count_estimate("B", BASE, BASE + HOUR) == 3_600
    a = reader.raw("A", BASE + 1_000, BASE + 2_000)
    b = reader.raw("B", BASE + 1_000, BASE + 2_000)
    assert a.value.tolist() == [1.0, 2.0] and b.value.tolist() == [1.5, 2.5] and len(reads) == 1
    assert reader.raw("C", BASE, BASE + 1_000).value.tolist() == [0.0, 1.0] and len(reads) == 2  # not asked before


def many_tags(names: list[str], start_ms: int, seconds: int) -> SampleRows:
    """Every tag once a second; tag i's value at second s is i * 100_000 + s."""
    parts = [every_second(name, start_ms, seconds, offset=i * 100_000.0) for i, name in enumerate(names)]
    return SampleRows(*(np.concatenate([getattr(p, c) for p in parts]) for c in ("tag", "ts_ms", "value", "quality")))


def test_files_of_one_tag_a_row_group_and_of_packed_groups_read_alike(tmp_path, monkeypatch):
    """A plant upgraded in place keeps the files written one tag a row group: the reader and the
    compaction take them beside the new ones, which pack three tags (an hour of each at 1 s) a group."""
    import historian.parquet_files as parquet_files

    names = [f"T{i}" for i in range(7)]
    monkeypatch.setattr(parquet_files, "SAMPLE_GROUPS", (2_048, 8_192, 131_072))  # the layout before
    old = write_compacted(tmp_path, many_tags(names, BASE, 3_600))
    monkeypatch.undo()
    new = write_compacted(tmp_path, many_tags(names, BASE + HOUR, 3_600))
    write_segment(tmp_path, many_tags(names, BASE + 2 * HOUR, 60), "9-0")
    groups = {p.name[:11]: pq.read_metadata(p).num_row_groups for p in [*old, *new] if "rollup" not in p.name}
    assert groups == {"20251202T00": 7, "20251202T01": 3}  # 3 + 3 + 1 tags: none split

    def check(reader: HistoryReader) -> None:
        for i, name in enumerate(names):
            series = reader.raw(name, BASE + HOUR - 2_000, BASE + 2 * HOUR + 59_000)
            assert series.ts_ms.tolist() == list(range(BASE + HOUR - 2_000, BASE + 2 * HOUR + 60_000, 1_000))
            assert series.value.tolist() == [i * 100_000.0 + s for s in (3_598, 3_599, *range(3_600), *range(60))]
            assert reader.last_sample_before(name, BASE + HOUR) == (BASE + HOUR - 1_000, i * 100_000 + 3_599.0, 0)
            assert reader.count_estimate(name, BASE, BASE + 3 * HOUR) == 7_260
            r = reader.rollup(name, BASE, BASE + 2 * HOUR - 1)
            assert r.count.tolist() == [60] * 120 and r.first[0] == i * 100_000.0

    check(HistoryReader(tmp_path))
    compact(tmp_path, now_ms=BASE + DAY + HOUR)  # the old hour file and the new one into one day file
    assert [p.parent.name for p in (tmp_path / "historian").rglob("*[0-9].parquet")] == ["days"]
    check(HistoryReader(tmp_path))


def test_pens_asked_at_once_read_each_file_once_and_answer_as_one_after_the_other(tmp_path, monkeypatch):
    import historian.reader as reader_module

    names = [f"T{i}" for i in range(12)]
    for hour in range(6):
        write_compacted(tmp_path, many_tags(names, BASE + hour * HOUR, 600))
    pens = names[::2]
    want = {pen: HistoryReader(tmp_path).raw(pen, BASE, BASE + 6 * HOUR) for pen in pens}
    reader = HistoryReader(tmp_path)
    indexes, reads = [], []
    read_index, read_tags = reader_module.read_index, reader_module.read_tags
    monkeypatch.setattr(reader_module, "read_index", lambda path: indexes.append(path.name) or read_index(path))
    monkeypatch.setattr(reader_module, "read_tags",
                        lambda path, *a, **k: reads.append(path.name) or read_tags(path, *a, **k))
    got: dict = {}
    asked = threading.Barrier(len(pens))

    def pen(name: str) -> None:
        reader.count_estimate(name, BASE, BASE + 6 * HOUR)
        asked.wait()  # as a trend's requests: every pen asked before the rows are read
        got[name] = reader.raw(name, BASE, BASE + 6 * HOUR)

    threads = [threading.Thread(target=pen, args=(name,)) for name in pens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in pens:
        assert got[name].ts_ms.tolist() == want[name].ts_ms.tolist() and len(got[name]) == 3_600
        assert got[name].value.tolist() == want[name].value.tolist()
    assert sorted(indexes) == sorted(set(indexes)) and len(indexes) == 6
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 6
