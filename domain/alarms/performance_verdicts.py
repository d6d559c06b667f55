"""Each headline figure of a PerformanceReport judged against its benchmark (reference section 3).

The levels drive presentation only: OK is shown plain, ATTENTION and OVER are the abnormal ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.alarms.performance import (
    CHATTER_COUNT, FLOOD_STARTS_ABOVE, STALE_TARGET_BELOW, TIME_IN_FLOOD_TARGET_PERCENT, PerformanceReport,
    PriorityShare,
)


class Level(StrEnum):
    OK = "ok"
    ATTENTION = "attention"
    OVER = "over"


@dataclass(frozen=True, slots=True)
class Verdict:
    figure: str  # a stable key: average_rate, peak_rate, time_in_flood, chattering, stale, top10_share, priorities
    title: str
    value_text: str
    level: Level
    text: str


def average_rate_verdict(per_10min: float) -> Verdict:
    """EEMUA 191 / ISA-18.2: about 1 per 10 min very likely acceptable, 2 manageable."""
    value = f"{per_10min:.2f} per 10 min"
    if per_10min <= 1:
        return Verdict("average_rate", "Average rate", value, Level.OK, "very likely acceptable (1 per 10 min or less)")
    if per_10min <= 2:
        return Verdict("average_rate", "Average rate", value, Level.ATTENTION, "manageable (2 per 10 min or less)")
    return Verdict("average_rate", "Average rate", value, Level.OVER, "above the manageable 2 per 10 min")


def peak_rate_verdict(peak_10min: int) -> Verdict:
    """ISA-18.2: at most 10 in any 10 min outside floods."""
    value = f"{peak_10min} in 10 min"
    if peak_10min <= FLOOD_STARTS_ABOVE:
        return Verdict("peak_rate", "Peak rate", value, Level.OK, "at most 10 in any 10 min")
    return Verdict("peak_rate", "Peak rate", value, Level.OVER, "more than 10 in 10 min: a flood")


def time_in_flood_verdict(flood_percent: float, floods: int) -> Verdict:
    """ISA-18.2 as quoted: under 1 % of the time in flood."""
    value = f"{flood_percent:.2f} % ({floods} flood{'' if floods == 1 else 's'})"
    if flood_percent < TIME_IN_FLOOD_TARGET_PERCENT:
        return Verdict("time_in_flood", "Time in flood", value, Level.OK, "under the 1 % target")
    return Verdict("time_in_flood", "Time in flood", value, Level.OVER, "1 % or more: the target is under 1 %")


def chattering_verdict(count: int) -> Verdict:
    value = f"{count} alarm{'' if count == 1 else 's'}"
    if count == 0:
        return Verdict("chattering", "Chattering", value, Level.OK, f"none with {CHATTER_COUNT} or more in 60 s")
    return Verdict("chattering", "Chattering", value, Level.OVER, "the target is zero")


def stale_verdict(count: int) -> Verdict:
    value = f"{count} alarm{'' if count == 1 else 's'}"
    if count < STALE_TARGET_BELOW:
        return Verdict("stale", "Stale (over 24 h)", value, Level.OK, f"fewer than {STALE_TARGET_BELOW}")
    return Verdict("stale", "Stale (over 24 h)", value, Level.OVER, f"the target is fewer than {STALE_TARGET_BELOW}")


def top10_share_verdict(share_percent: float) -> Verdict:
    """No pass mark is quoted: commonly 20-80 % before rationalisation; the list says what to fix first."""
    return Verdict("top10_share", "Top-10 share", f"{share_percent:.1f} %", Level.OK,
                   "commonly 20-80 % before rationalisation")


_ORDER_TEXT = "low / medium / high / critical"


def priority_verdict(shares: tuple[PriorityShare, ...]) -> Verdict:
    """Critical must stay under 1 %; the mix should rise from high to medium to low (80/15/5)."""
    by_priority = {s.priority: s for s in shares}
    total = sum(s.count for s in shares)
    value = " / ".join(f"{s.percent:.0f}" for s in sorted(shares, key=lambda s: -s.priority)) + " %"
    if total == 0:
        return Verdict("priorities", "Priority mix", "no alarms", Level.OK, "nothing to judge")
    critical = by_priority.get(1)
    if critical is not None and critical.percent >= critical.target_percent:
        return Verdict("priorities", "Priority mix", value, Level.OVER,
                       f"{_ORDER_TEXT}; critical is 1 % or more (target under 1 %)")
    low, medium, high = (by_priority[p].count if p in by_priority else 0 for p in (4, 3, 2))
    if not low >= medium >= high:
        return Verdict("priorities", "Priority mix", value, Level.ATTENTION,
                       f"{_ORDER_TEXT}; not a pyramid: the guidance is 80 / 15 / 5 / under 1")
    return Verdict("priorities", "Priority mix", value, Level.OK, f"{_ORDER_TEXT}; shaped like 80 / 15 / 5 / under 1")


def headline_verdicts(report: PerformanceReport) -> tuple[Verdict, ...]:
    return (
        average_rate_verdict(report.average_per_10min),
        peak_rate_verdict(report.peak_10min_count),
        time_in_flood_verdict(report.time_in_flood_percent, len(report.floods)),
        top10_share_verdict(report.top10_share_percent),
        chattering_verdict(len(report.chattering)),
        stale_verdict(len(report.stale)),
        priority_verdict(report.priorities),
    )
