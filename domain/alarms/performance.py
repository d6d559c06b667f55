"""Alarm-system performance over a period (EEMUA 191 / ISA-18.2), as pure functions.

Input: journal entries (domain.alarms.journal), a period [start_ms, end_ms) and the current alarm
records; output: one frozen PerformanceReport. No I/O and no clock: the period end stands for "now".
docs/alarm-performance.md says the same in prose.

What is counted is an annunciation (journal.is_annunciation): an entry that put an alarm into B,
unacknowledged active (T1, T9, the re-alarm T7, a return from E/F/G into B). Entries outside
[start_ms, end_ms) are ignored; nothing before the period start is looked at.

- Rate: fixed 10-min buckets from the period start (the last one may be shorter); averages over the
  whole period length.
- Peak and flood use a sliding window: at any instant t it holds the annunciations in (t - 10 min, t].
  A flood starts at the annunciation that makes the window hold more than 10 (the 11th) and ends at
  the first instant the window holds fewer than 5 (annunciations leave it 10 min after they came),
  or at the period end (then `ongoing_at_end`). Its count is the annunciations in [start, end).
- Chattering: 3 or more annunciations of one alarm with the first and last at most 60 s apart.
- Stale: continuously active (state B or C, with re-alarms inside) for more than 24 h, from the
  journal's activation/clear pairs within the period and from current records active since more
  than 24 h before the period end. Shelving, suppression or out of service ends an active stretch.
- Bad actors: the 10 alarms with most annunciations, and their share of all.
- Priorities: annunciations per priority 1..4 against the 80/15/5 guidance, mapped as
  4 = low (~80 %), 3 = medium (~15 %), 2 = high (~5 %), 1 = critical (< 1 %).
"""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from domain.alarms.journal import JournalEntry, is_annunciation, newest_first_key
from domain.alarms.records import AlarmRecord, AlarmState

TEN_MIN_MS = 600_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
FLOOD_STARTS_ABOVE = 10  # more than 10 in the window
FLOOD_ENDS_BELOW = 5  # fewer than 5 in the window
CHATTER_COUNT = 3
CHATTER_WINDOW_MS = 60_000
STALE_AFTER_MS = DAY_MS
BAD_ACTOR_COUNT = 10
TIME_IN_FLOOD_TARGET_PERCENT = 1.0
STALE_TARGET_BELOW = 5
ACTIVE_STATES = frozenset({AlarmState.UNACK_ACTIVE.value, AlarmState.ACK_ACTIVE.value})


@dataclass(frozen=True, slots=True)
class BenchmarkLine:
    per_10min: int
    label: str


BENCHMARK_LINES = (
    BenchmarkLine(1, "very likely acceptable"),
    BenchmarkLine(2, "manageable"),
    BenchmarkLine(10, "peak limit / flood"),
)


@dataclass(frozen=True, slots=True)
class PriorityTarget:
    priority: int
    label: str
    target_percent: float
    target_text: str


PRIORITY_TARGETS = (
    PriorityTarget(1, "critical", 1.0, "under 1 %"),
    PriorityTarget(2, "high", 5.0, "about 5 %"),
    PriorityTarget(3, "medium", 15.0, "about 15 %"),
    PriorityTarget(4, "low", 80.0, "about 80 %"),
)


@dataclass(frozen=True, slots=True)
class RateBucket:
    start_ms: int
    end_ms: int  # exclusive; the last bucket ends at the period end
    count: int


@dataclass(frozen=True, slots=True)
class Flood:
    start_ms: int
    end_ms: int
    count: int  # annunciations in [start_ms, end_ms)
    peak_in_10min: int
    ongoing_at_end: bool  # still a flood at the period end


@dataclass(frozen=True, slots=True)
class ChatteringAlarm:
    alarm_id: str
    tag: str
    priority: int
    annunciations: int  # in the whole period
    most_in_60s: int
    first_chatter_ms: int  # the first annunciation of the first 3-in-60-s


@dataclass(frozen=True, slots=True)
class StaleAlarm:
    alarm_id: str
    tag: str
    priority: int
    message: str
    active_since_ms: int
    cleared_ms: int | None  # None: still active at the period end
    active_ms: int  # up to the clear or the period end
    since_before_period: bool  # active at the period start: active_since_ms is the period start, a lower bound
    source: str  # "journal", "current" or "journal+current"


@dataclass(frozen=True, slots=True)
class BadActor:
    alarm_id: str
    tag: str
    priority: int
    message: str
    count: int
    share_percent: float


@dataclass(frozen=True, slots=True)
class PriorityShare:
    priority: int
    label: str
    count: int
    percent: float
    target_percent: float
    target_text: str


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    start_ms: int
    end_ms: int
    annunciations: int
    buckets: tuple[RateBucket, ...]
    average_per_10min: float
    average_per_hour: float
    average_per_day: float
    peak_bucket_count: int  # the fullest fixed bucket
    peak_10min_count: int  # the fullest sliding 10-min window
    peak_10min_at_ms: int | None
    floods: tuple[Flood, ...]
    time_in_flood_percent: float
    chattering: tuple[ChatteringAlarm, ...]
    stale: tuple[StaleAlarm, ...]
    bad_actors: tuple[BadActor, ...]
    top10_share_percent: float
    priorities: tuple[PriorityShare, ...]
    other_priority_count: int  # annunciations with a priority outside 1..4
    journal_complete: bool = True  # False: the journal search hit its limit and older entries are missing

    @property
    def period_ms(self) -> int:
        return self.end_ms - self.start_ms


def percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def annunciations_in(entries: Iterable[JournalEntry], start_ms: int, end_ms: int) -> list[JournalEntry]:
    """The annunciations in [start_ms, end_ms), oldest first (time, then stream id)."""
    return sorted((e for e in entries if start_ms <= e.time_ms < end_ms and is_annunciation(e)), key=newest_first_key)


def rate_buckets(times_ms: Sequence[int], start_ms: int, end_ms: int) -> tuple[RateBucket, ...]:
    """Fixed 10-min buckets from start_ms; times sorted and inside the period."""
    counts = Counter((t - start_ms) // TEN_MIN_MS for t in times_ms)
    starts = range(start_ms, end_ms, TEN_MIN_MS)
    return tuple(RateBucket(s, min(s + TEN_MIN_MS, end_ms), counts.get(i, 0)) for i, s in enumerate(starts))


def average_rates(count: int, start_ms: int, end_ms: int) -> tuple[float, float, float]:
    """Per 10 min, per hour and per day over the whole period."""
    length_ms = end_ms - start_ms
    return count * TEN_MIN_MS / length_ms, count * HOUR_MS / length_ms, count * DAY_MS / length_ms


def window_counts(times_ms: Sequence[int], window_ms: int) -> Iterator[tuple[int, int]]:
    """(instant, count in (instant - window, instant]) at every instant the count changes, in order."""
    arrived = departed = 0
    n = len(times_ms)
    while departed < n:
        instant = min(times_ms[arrived] if arrived < n else times_ms[departed] + window_ms,
                      times_ms[departed] + window_ms)
        while arrived < n and times_ms[arrived] == instant:
            arrived += 1
        while departed < arrived and times_ms[departed] + window_ms == instant:
            departed += 1
        yield instant, arrived - departed


def peak_in_window(times_ms: Sequence[int], window_ms: int = TEN_MIN_MS) -> tuple[int, int | None]:
    """The most annunciations in any sliding window, and the first instant it was reached."""
    best, at = 0, None
    for instant, count in window_counts(times_ms, window_ms):
        if count > best:
            best, at = count, instant
    return best, at


def find_floods(times_ms: Sequence[int], end_ms: int) -> tuple[Flood, ...]:
    """Floods per ISA-18.2 as quoted (module docstring): > 10 in 10 min starts one, < 5 ends it."""
    floods: list[Flood] = []
    start: int | None = None
    peak = 0
    for instant, count in window_counts(times_ms, TEN_MIN_MS):
        if instant >= end_ms:
            break
        if start is None and count > FLOOD_STARTS_ABOVE:
            start, peak = instant, count
        elif start is not None:
            peak = max(peak, count)
            if count < FLOOD_ENDS_BELOW:
                floods.append(_flood(times_ms, start, instant, peak, ongoing=False))
                start = None
    if start is not None:
        floods.append(_flood(times_ms, start, end_ms, peak, ongoing=True))
    return tuple(floods)


def _flood(times_ms: Sequence[int], start_ms: int, end_ms: int, peak: int, ongoing: bool) -> Flood:
    count = bisect_left(times_ms, end_ms) - bisect_left(times_ms, start_ms)
    return Flood(start_ms, end_ms, count, peak, ongoing)


def time_in_flood_percent(floods: Iterable[Flood], start_ms: int, end_ms: int) -> float:
    return percent(sum(f.end_ms - f.start_ms for f in floods), end_ms - start_ms)


def most_within(times_ms: Sequence[int], window_ms: int) -> tuple[int, int | None]:
    """The most times with the first and last at most window_ms apart, and the first such start."""
    best, at, first = 0, None, 0
    for last, t in enumerate(times_ms):
        while t - times_ms[first] > window_ms:
            first += 1
        if last - first + 1 > best:
            best, at = last - first + 1, times_ms[first]
    return best, at


def find_chattering(annunciations: Sequence[JournalEntry]) -> tuple[ChatteringAlarm, ...]:
    """Alarms with 3 or more annunciations within 60 s (inclusive), most in 60 s first."""
    found = []
    for alarm_id, entries in _by_alarm(annunciations).items():
        most, first_ms = most_within([e.time_ms for e in entries], CHATTER_WINDOW_MS)
        if most >= CHATTER_COUNT and first_ms is not None:
            last = entries[-1]
            found.append(ChatteringAlarm(alarm_id, last.tag, last.priority, len(entries), most, first_ms))
    return tuple(sorted(found, key=lambda c: (-c.most_in_60s, -c.annunciations, c.alarm_id)))


def active_stretches(entries: Sequence[JournalEntry], start_ms: int) -> list[tuple[int, int | None, bool]]:
    """One alarm's stretches in B or C within the period: (since, cleared or None, since_before_period).

    `entries` are that alarm's journal entries in the period, oldest first. The first entry's
    from_state tells whether it was already active at the period start.
    """
    stretches: list[tuple[int, int | None, bool]] = []
    since: int | None = None
    before = False
    if entries and entries[0].from_state in ACTIVE_STATES:
        since, before = start_ms, True
    for entry in entries:
        active = entry.to_state in ACTIVE_STATES
        if since is None and active:
            since, before = entry.time_ms, False
        elif since is not None and not active:
            stretches.append((since, entry.time_ms, before))
            since = None
    if since is not None:
        stretches.append((since, None, before))
    return stretches


def stale_from_journal(entries: Iterable[JournalEntry], start_ms: int, end_ms: int) -> list[StaleAlarm]:
    """Per alarm, its longest active stretch in the period if that is longer than 24 h."""
    inside = sorted((e for e in entries if start_ms <= e.time_ms < end_ms), key=newest_first_key)
    found = []
    for alarm_id, alarm_entries in _by_alarm(inside).items():
        last = alarm_entries[-1]
        longest: StaleAlarm | None = None
        for since, cleared, before in active_stretches(alarm_entries, start_ms):
            active_ms = (cleared if cleared is not None else end_ms) - since
            if active_ms > STALE_AFTER_MS and (longest is None or active_ms > longest.active_ms):
                longest = StaleAlarm(alarm_id, last.tag, last.priority, last.message, since, cleared, active_ms,
                                     before, "journal")
        if longest is not None:
            found.append(longest)
    return found


def stale_from_records(records: Iterable[AlarmRecord], end_ms: int) -> list[StaleAlarm]:
    """Alarms active now (B or C, condition active) whose condition has been continuously true
    for more than 24 h before end_ms (condition_since_ms: re-alarms and shelving don't restart it;
    records written before that field existed fall back to activated_ms)."""
    stale = []
    for r in records:
        since_ms = r.condition_since_ms or r.activated_ms
        if r.condition_active and r.state.value in ACTIVE_STATES and since_ms is not None \
                and end_ms - since_ms > STALE_AFTER_MS:
            stale.append(StaleAlarm(r.alarm_id, r.tag, r.priority, r.message, since_ms, None, end_ms - since_ms,
                                    False, "current"))
    return stale


def find_stale(entries: Iterable[JournalEntry], records: Iterable[AlarmRecord], start_ms: int,
               end_ms: int) -> tuple[StaleAlarm, ...]:
    """Both sources merged, one row per alarm (the longer stretch), longest first."""
    merged: dict[str, StaleAlarm] = {s.alarm_id: s for s in stale_from_journal(entries, start_ms, end_ms)}
    for current in stale_from_records(records, end_ms):
        known = merged.get(current.alarm_id)
        if known is None:
            merged[current.alarm_id] = current
        else:
            longer = current if current.active_ms > known.active_ms else known
            merged[current.alarm_id] = replace(longer, source="journal+current")
    return tuple(sorted(merged.values(), key=lambda s: (-s.active_ms, s.alarm_id)))


def bad_actors(annunciations: Sequence[JournalEntry], top: int = BAD_ACTOR_COUNT) -> tuple[tuple[BadActor, ...], float]:
    """The `top` alarms by annunciations (ties by alarm id), and their combined share of all, in %."""
    total = len(annunciations)
    groups = _by_alarm(annunciations)
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))[:top]
    actors = tuple(BadActor(alarm_id, es[-1].tag, es[-1].priority, es[-1].message, len(es), percent(len(es), total))
                   for alarm_id, es in ranked)
    return actors, percent(sum(a.count for a in actors), total)


def priority_distribution(annunciations: Sequence[JournalEntry]) -> tuple[tuple[PriorityShare, ...], int]:
    """Annunciations per priority 1..4 with the guidance; and how many had another priority."""
    counts = Counter(e.priority for e in annunciations)
    total = len(annunciations)
    shares = tuple(PriorityShare(t.priority, t.label, counts[t.priority], percent(counts[t.priority], total),
                                 t.target_percent, t.target_text) for t in PRIORITY_TARGETS)
    return shares, total - sum(s.count for s in shares)


def build_report(entries: Iterable[JournalEntry], start_ms: int, end_ms: int,
                 records: Iterable[AlarmRecord] = (), journal_complete: bool = True) -> PerformanceReport:
    if end_ms <= start_ms:
        raise ValueError(f"the period must end after it starts (start {start_ms} ms, end {end_ms} ms)")
    entries = list(entries)
    alarms = annunciations_in(entries, start_ms, end_ms)
    times = [e.time_ms for e in alarms]
    buckets = rate_buckets(times, start_ms, end_ms)
    per_10min, per_hour, per_day = average_rates(len(alarms), start_ms, end_ms)
    peak, peak_at = peak_in_window(times)
    floods = find_floods(times, end_ms)
    actors, top_share = bad_actors(alarms)
    priorities, other = priority_distribution(alarms)
    return PerformanceReport(
        start_ms=start_ms, end_ms=end_ms, annunciations=len(alarms), buckets=buckets,
        average_per_10min=per_10min, average_per_hour=per_hour, average_per_day=per_day,
        peak_bucket_count=max((b.count for b in buckets), default=0), peak_10min_count=peak, peak_10min_at_ms=peak_at,
        floods=floods, time_in_flood_percent=time_in_flood_percent(floods, start_ms, end_ms),
        chattering=find_chattering(alarms), stale=find_stale(entries, records, start_ms, end_ms),
        bad_actors=actors, top10_share_percent=top_share, priorities=priorities, other_priority_count=other,
        journal_complete=journal_complete,
    )


def _by_alarm(entries: Iterable[JournalEntry]) -> dict[str, list[JournalEntry]]:
    groups: dict[str, list[JournalEntry]] = defaultdict(list)
    for entry in entries:
        groups[entry.alarm_id].append(entry)
    return groups
