"""Alarm performance figures (domain/alarms/performance.py) from constructed journal entries."""
from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from domain.alarms.journal import JournalEntry
from domain.alarms.performance import (
    DAY_MS, HOUR_MS, TEN_MIN_MS, annunciations_in, build_report, find_floods, peak_in_window,
)
from domain.alarms.performance_csv import SECTION_TITLES, report_csv_sections, section_csv
from domain.alarms.performance_verdicts import (
    Level, average_rate_verdict, peak_rate_verdict, priority_verdict, stale_verdict, time_in_flood_verdict,
)
from domain.alarms.records import AlarmRecord, AlarmState

START_MS = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
S = 1000
MIN = 60_000


def entry(time_ms: int, alarm_id: str = "T1.level:high", from_state: str = "A", to_state: str = "B", *,
          transition: str = "T1", priority: int = 3, message: str | None = None, seq: int = 0) -> JournalEntry:
    tag, _, kind = alarm_id.partition(":")
    return JournalEntry(entry_id=f"{time_ms}-{seq}", time_ms=time_ms, alarm_id=alarm_id, tag=tag, kind=kind,
                        area="Tanks", priority=priority, message=message or f"{tag} {kind}", transition=transition,
                        from_state=from_state, to_state=to_state)


def alarm(time_ms: int, alarm_id: str = "T1.level:high", priority: int = 3, **kw) -> JournalEntry:
    """An activation (T1, A -> B): one annunciation."""
    return entry(time_ms, alarm_id, "A", "B", priority=priority, **kw)


def burst(offsets_ms: list[int]) -> list[JournalEntry]:
    """One annunciation per offset, each from its own alarm (no chattering in the way)."""
    return [alarm(START_MS + t, f"X{i}.pv:high") for i, t in enumerate(offsets_ms)]


def report_of(entries, hours: float = 1, records=()):
    return build_report(entries, START_MS, START_MS + int(hours * HOUR_MS), records)


# ---- what counts, rates and buckets ----------------------------------------------------------


def test_only_entries_into_b_from_elsewhere_count_as_annunciations():
    entries = [
        alarm(START_MS + 1 * S),                                              # T1 A -> B
        entry(START_MS + 2 * S, to_state="C", from_state="B", transition="T2"),  # acknowledge
        entry(START_MS + 3 * S, from_state="C", to_state="B", transition="T7"),  # re-alarm: counts
        entry(START_MS + 4 * S, from_state="B", to_state="B", transition="comment"),  # no move
        entry(START_MS + 5 * S, from_state="B", to_state="D", transition="T3"),  # clears
        entry(START_MS + 6 * S, from_state="D", to_state="B", transition="T9"),  # counts
        entry(START_MS + 7 * S, from_state="E", to_state="B", transition="T13"),  # back from shelve: counts
        entry(START_MS + 8 * S, from_state="B", to_state="E", transition="T12"),
    ]
    assert [e.transition for e in annunciations_in(entries, START_MS, START_MS + HOUR_MS)] == ["T1", "T7", "T9", "T13"]
    assert report_of(entries).annunciations == 4


def test_buckets_are_fixed_10_min_from_the_period_start_and_the_period_is_half_open():
    end_ms = START_MS + 25 * MIN
    entries = [alarm(START_MS - 1), alarm(START_MS), alarm(START_MS + TEN_MIN_MS - 1), alarm(START_MS + TEN_MIN_MS),
               alarm(end_ms - 1), alarm(end_ms)]
    report = build_report(entries, START_MS, end_ms)
    assert [(b.start_ms - START_MS, b.end_ms - START_MS, b.count) for b in report.buckets] == [
        (0, TEN_MIN_MS, 2), (TEN_MIN_MS, 2 * TEN_MIN_MS, 1), (2 * TEN_MIN_MS, 25 * MIN, 1)]
    assert report.annunciations == 4  # before the start and at the end: outside


def test_average_rates_are_over_the_whole_period():
    entries = [alarm(START_MS + i * TEN_MIN_MS, f"A{i}.pv:high") for i in range(12)]
    report = report_of(entries, hours=2)
    assert report.average_per_10min == pytest.approx(1.0)
    assert report.average_per_hour == pytest.approx(6.0)
    assert report.average_per_day == pytest.approx(144.0)


def test_the_peak_uses_a_sliding_window_where_fixed_buckets_split_a_burst():
    entries = burst([9 * MIN + i * S for i in range(6)] + [10 * MIN + i * S for i in range(6)])
    report = report_of(entries)
    assert report.peak_bucket_count == 6
    assert report.peak_10min_count == 12
    assert report.peak_10min_at_ms == START_MS + 10 * MIN + 5 * S


def test_an_empty_period_gives_zeros_and_no_findings():
    report = report_of([], hours=1)
    assert report.annunciations == 0
    assert [b.count for b in report.buckets] == [0] * 6
    assert (report.average_per_10min, report.peak_10min_count, report.peak_10min_at_ms) == (0.0, 0, None)
    assert report.floods == () and report.time_in_flood_percent == 0.0
    assert report.chattering == () and report.stale == () and report.bad_actors == ()
    assert report.top10_share_percent == 0.0
    assert [(p.priority, p.count, p.percent) for p in report.priorities] == [(1, 0, 0.0), (2, 0, 0.0), (3, 0, 0.0),
                                                                             (4, 0, 0.0)]


def test_a_period_that_does_not_end_after_it_starts_is_refused():
    with pytest.raises(ValueError, match="must end after it starts"):
        build_report([], START_MS, START_MS)


# ---- floods ----------------------------------------------------------------------------------


def test_ten_alarms_in_10_min_are_no_flood_the_eleventh_starts_one():
    ten = [i * 30 * S for i in range(10)]
    assert report_of(burst(ten)).floods == ()
    report = report_of(burst(ten + [300 * S]))
    [flood] = report.floods
    assert flood.start_ms == START_MS + 300 * S
    assert flood.peak_in_10min == 11 and not flood.ongoing_at_end


def test_a_flood_ends_when_the_window_falls_below_5_not_at_5():
    # Alarms at 0, 30 s, ..., 300 s leave the window 10 min later: 5 are left after the 6th leaves
    # (750 s), 4 after the 7th (780 s).
    report = report_of(burst([i * 30 * S for i in range(11)]))
    [flood] = report.floods
    assert flood.end_ms == START_MS + 780 * S
    assert flood.count == 1  # the annunciations in [start, end): only the 11th
    assert report.time_in_flood_percent == pytest.approx(100 * 480 / 3600)


def test_an_alarm_during_the_tail_keeps_the_flood_going():
    report = report_of(burst([i * 30 * S for i in range(11)] + [760 * S]))
    [flood] = report.floods
    assert flood.end_ms == START_MS + 810 * S  # at 780 s the window still holds 5
    assert flood.count == 2


def test_the_10_min_window_holds_less_than_10_min_of_alarms():
    assert find_floods([i * 60_000 for i in range(11)], 3_600_000) == ()  # first and 11th exactly 10 min apart
    [flood] = find_floods([i * 59_999 for i in range(11)], 3_600_000)
    assert flood.start_ms == 10 * 59_999


def test_a_flood_still_running_at_the_period_end_is_cut_there():
    report = build_report(burst([i * S for i in range(20)]), START_MS, START_MS + 5 * MIN)
    [flood] = report.floods
    assert (flood.start_ms, flood.end_ms, flood.ongoing_at_end) == (START_MS + 10 * S, START_MS + 5 * MIN, True)
    assert flood.count == 10 and flood.peak_in_10min == 20


def test_two_separate_floods():
    times = [i * S for i in range(11)] + [30 * MIN + i * S for i in range(12)]
    floods = find_floods(times, 3_600_000)
    assert [(f.start_ms, f.count) for f in floods] == [(10 * S, 1), (30 * MIN + 10 * S, 2)]


def test_peak_in_window_counts_instants_with_several_alarms():
    assert peak_in_window([5, 5, 5, 700_000], TEN_MIN_MS) == (3, 5)


# ---- chattering ------------------------------------------------------------------------------


def chatter(alarm_id: str, offsets_ms: list[int]) -> list[JournalEntry]:
    first, *rest = offsets_ms
    entries = [alarm(START_MS + first, alarm_id)]
    for t in rest:
        entries.append(entry(START_MS + t - 1, alarm_id, "B", "D", transition="T3"))
        entries.append(entry(START_MS + t, alarm_id, "D", "B", transition="T9"))
    return entries


def test_three_annunciations_within_60_s_chatter_within_61_s_do_not():
    report = report_of(chatter("A.pv:high", [0, 30 * S, 60 * S]) + chatter("B.pv:high", [0, 30 * S, 61 * S]))
    assert [(c.alarm_id, c.annunciations, c.most_in_60s, c.first_chatter_ms) for c in report.chattering] == [
        ("A.pv:high", 3, 3, START_MS)]


def test_chattering_reports_the_most_in_any_60_s():
    report = report_of(chatter("A.pv:high", [0, 5 * S, 10 * S, 15 * S, 200 * S]))
    [found] = report.chattering
    assert (found.annunciations, found.most_in_60s, found.tag, found.priority) == (5, 4, "A.pv", 3)


# ---- stale -----------------------------------------------------------------------------------


def test_stale_from_journal_pairs_needs_more_than_24_h_active():
    stale_id, fine_id = "S.pv:high", "F.pv:high"
    entries = [
        alarm(START_MS + HOUR_MS, stale_id),
        entry(START_MS + 2 * HOUR_MS, stale_id, "B", "C", transition="T2"),
        entry(START_MS + 3 * HOUR_MS, stale_id, "C", "B", transition="T7"),  # re-alarm: still the same stretch
        entry(START_MS + HOUR_MS + DAY_MS + 1, stale_id, "B", "D", transition="T3"),
        alarm(START_MS + HOUR_MS, fine_id),
        entry(START_MS + HOUR_MS + DAY_MS, fine_id, "B", "D", transition="T3"),
    ]
    [stale] = report_of(entries, hours=48).stale
    assert (stale.alarm_id, stale.active_since_ms, stale.cleared_ms) == (stale_id, START_MS + HOUR_MS,
                                                                         START_MS + HOUR_MS + DAY_MS + 1)
    assert stale.active_ms == DAY_MS + 1 and stale.source == "journal" and not stale.since_before_period


def test_stale_from_journal_active_at_the_period_start_or_still_at_its_end():
    entries = [
        entry(START_MS + 25 * HOUR_MS, "Before.pv:high", "C", "A", transition="T5"),  # active since before the start
        alarm(START_MS + 10 * HOUR_MS, "Open.pv:high"),                                 # never clears in the period
        alarm(START_MS + 10 * HOUR_MS, "Shelved.pv:high"),
        entry(START_MS + 20 * HOUR_MS, "Shelved.pv:high", "B", "E", transition="T12"),  # shelving ends the stretch
        entry(START_MS + 40 * HOUR_MS, "Shelved.pv:high", "E", "B", transition="T13"),
    ]
    report = report_of(entries, hours=48)
    found = {s.alarm_id: s for s in report.stale}
    assert set(found) == {"Before.pv:high", "Open.pv:high"}
    assert found["Before.pv:high"].since_before_period and found["Before.pv:high"].active_since_ms == START_MS
    assert found["Open.pv:high"].cleared_ms is None and found["Open.pv:high"].active_ms == 38 * HOUR_MS
    assert [s.alarm_id for s in report.stale] == ["Open.pv:high", "Before.pv:high"]  # longest first


def record(alarm_id: str, state: AlarmState, activated_ms: int, condition_active: bool = True) -> AlarmRecord:
    tag, _, kind = alarm_id.partition(":")
    return AlarmRecord(alarm_id=alarm_id, tag=tag, kind=kind, priority=2, message="stuck", area="Tanks", state=state,
                       condition_active=condition_active, activated_ms=activated_ms)


def test_stale_from_current_records_active_since_more_than_24_h_before_the_period_end():
    end_ms = START_MS + HOUR_MS
    records = [
        record("Old.pv:high", AlarmState.ACK_ACTIVE, end_ms - DAY_MS - 1),
        record("Day.pv:high", AlarmState.UNACK_ACTIVE, end_ms - DAY_MS),
        record("Shelved.pv:high", AlarmState.SHELVED, end_ms - 3 * DAY_MS),
        record("Latched.pv:high", AlarmState.LATCHED_ACK, end_ms - 3 * DAY_MS, condition_active=False),
    ]
    [stale] = report_of([], records=records).stale
    assert (stale.alarm_id, stale.source, stale.cleared_ms, stale.active_ms) == ("Old.pv:high", "current", None,
                                                                                 DAY_MS + 1)
    assert stale.priority == 2 and stale.message == "stuck"


def test_a_re_alarmed_alarm_is_stale_by_how_long_its_condition_has_been_true():
    end_ms = START_MS + HOUR_MS
    realarmed = replace(record("Re.pv:high", AlarmState.UNACK_ACTIVE, end_ms - HOUR_MS),  # T7 an hour ago
                        condition_since_ms=end_ms - 2 * DAY_MS)
    [stale] = report_of([], records=[realarmed]).stale
    assert (stale.alarm_id, stale.active_ms) == ("Re.pv:high", 2 * DAY_MS)


def test_stale_in_both_sources_is_one_row_with_the_longer_stretch():
    end_ms = START_MS + 48 * HOUR_MS
    entries = [entry(START_MS + 30 * HOUR_MS, "Both.pv:high", "B", "C", transition="T2")]  # active from the start
    records = [record("Both.pv:high", AlarmState.ACK_ACTIVE, end_ms - 5 * DAY_MS)]
    [stale] = build_report(entries, START_MS, end_ms, records).stale
    assert stale.source == "journal+current" and stale.active_ms == 5 * DAY_MS
    assert stale.active_since_ms == end_ms - 5 * DAY_MS


# ---- bad actors and priorities ---------------------------------------------------------------


def test_top_10_bad_actors_and_their_share():
    entries = [alarm(START_MS + k * HOUR_MS + i * MIN, f"A{k:02d}.pv:high") for k in range(12) for i in range(k + 1)]
    report = report_of(entries, hours=13)
    assert report.annunciations == 78
    assert [(a.alarm_id, a.count) for a in report.bad_actors][:2] == [("A11.pv:high", 12), ("A10.pv:high", 11)]
    assert len(report.bad_actors) == 10 and report.bad_actors[-1].count == 3
    assert report.bad_actors[0].share_percent == pytest.approx(100 * 12 / 78)
    assert report.top10_share_percent == pytest.approx(100 * 75 / 78)


def test_bad_actor_ties_are_ranked_by_alarm_id():
    report = report_of([alarm(START_MS + i * MIN, alarm_id) for i, alarm_id in enumerate(["B.x:high", "A.x:high"])])
    assert [a.alarm_id for a in report.bad_actors] == ["A.x:high", "B.x:high"]
    assert report.top10_share_percent == pytest.approx(100.0)


def test_priority_distribution_against_80_15_5():
    priorities = [4] * 16 + [3] * 3 + [2]
    report = report_of([alarm(START_MS + i * MIN, f"P{i}.pv:high", priority=p) for i, p in enumerate(priorities)])
    shares = {p.priority: p for p in report.priorities}
    assert [(shares[p].count, shares[p].percent) for p in (4, 3, 2, 1)] == [(16, 80.0), (3, 15.0), (1, 5.0), (0, 0.0)]
    assert (shares[4].label, shares[4].target_percent, shares[1].target_text) == ("low", 80.0, "under 1 %")
    assert report.other_priority_count == 0
    assert priority_verdict(report.priorities).level is Level.OK


def test_priorities_outside_1_to_4_are_counted_apart():
    report = report_of([alarm(START_MS, "A.x:high", priority=4), alarm(START_MS + S, "B.x:high", priority=0)])
    assert report.other_priority_count == 1
    assert {p.priority: p.percent for p in report.priorities}[4] == 50.0


# ---- verdicts --------------------------------------------------------------------------------


def test_verdicts_at_the_benchmark_edges():
    assert [average_rate_verdict(r).level for r in (1.0, 1.5, 2.0, 2.01)] == [
        Level.OK, Level.ATTENTION, Level.ATTENTION, Level.OVER]
    assert [peak_rate_verdict(p).level for p in (10, 11)] == [Level.OK, Level.OVER]
    assert [time_in_flood_verdict(p, 1).level for p in (0.99, 1.0)] == [Level.OK, Level.OVER]
    assert [stale_verdict(n).level for n in (4, 5)] == [Level.OK, Level.OVER]


def test_priority_verdict_flags_critical_at_1_percent_and_an_inverted_mix():
    critical = report_of([alarm(START_MS + i * S, f"P{i}.x:high", priority=1 if i == 0 else 4) for i in range(100)])
    assert priority_verdict(critical.priorities).level is Level.OVER
    inverted = report_of([alarm(START_MS + i * S, f"P{i}.x:high", priority=2 if i < 6 else 4) for i in range(10)])
    assert priority_verdict(inverted.priorities).level is Level.ATTENTION


# ---- CSV -------------------------------------------------------------------------------------


def test_csv_sections_hold_every_table_with_a_title_and_a_header():
    report = report_of(burst([i * 30 * S for i in range(11)]), hours=1)
    rows = list(csv.reader(io.StringIO(report_csv_sections(report))))
    titles = [row[0] for i, row in enumerate(rows) if len(row) == 1 and (i == 0 or rows[i - 1] == [])]
    assert titles == list(SECTION_TITLES.values())
    rate_at = rows.index(["Alarms per 10 min"])
    assert rows[rate_at + 1] == ["bucket_start_utc", "bucket_end_utc", "annunciations", "in_flood",
                                 "benchmark_1_per_10min", "benchmark_2_per_10min", "benchmark_10_per_10min"]
    assert rows[rate_at + 2] == ["2026-01-01 00:00:00", "2026-01-01 00:10:00", "11", "yes", "1", "2", "10"]
    assert rows[rate_at + 3][2:4] == ["0", "yes"]  # the flood runs to 00:13:00
    assert rows[rate_at + 4][2:4] == ["0", "no"]


def test_one_section_as_its_own_csv_and_text_that_would_be_a_formula_is_quoted():
    report = report_of([alarm(START_MS, "=cmd.x:high", message="=HYPERLINK(1)")])
    [actor] = list(csv.DictReader(io.StringIO(section_csv(report, "bad_actors"))))
    assert actor["alarm_id"] == "'=cmd.x:high" and actor["message"] == "'=HYPERLINK(1)"
    assert (actor["annunciations"], actor["share_percent"], actor["cumulative_percent"]) == ("1", "100.00", "100.00")
    floods = list(csv.DictReader(io.StringIO(section_csv(report, "floods"))))
    assert floods == []
    with pytest.raises(KeyError):
        section_csv(report, "nope")
