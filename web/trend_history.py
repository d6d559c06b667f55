"""The trend's history: every pen (and its setpoint) queried at once with web.history_query.query_history,
and what the answers mean for the operator in words.

Bad samples are gaps (None); sources report on change, so query_history carries the value in force
at the start in and holds a live value up to now (hold_to_now below is that rule for points).
"""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from domain.config_model import Tag
from web.history_query import HistoryQueryError, PenHistory, query_history
from web.trend_figure import local_time_text
from web.trend_overlays import setpoint_tag

Point = tuple[int, float | None]


@dataclass(frozen=True)
class PenAnswer:
    tag: Tag
    history: PenHistory | None
    error: str | None = None


def hold_to_now(points: list[Point], now_ms: int) -> list[Point]:
    """The last value held up to now; only for a value known to be live (else the line would lie)."""
    if points and points[-1][1] is not None and points[-1][0] < now_ms:
        return [*points, (now_ms, points[-1][1])]
    return points


def pen_points(history: PenHistory) -> list[Point]:
    """query_history's answer as (time ms, value or None) points (held to now already if live)."""
    return list(zip(history.ts_ms, history.values))


async def query_one(runtime, tag: Tag, start_ms: int, end_ms: int, max_points: int) -> PenAnswer:
    try:
        return PenAnswer(tag, await query_history(runtime, tag, start_ms, end_ms, max_points))
    except HistoryQueryError as exc:
        return PenAnswer(tag, None, str(exc))
    except (RedisError, OSError) as exc:
        return PenAnswer(tag, None, f"history unavailable (Redis): {exc}")


def setpoints_to_query(tags: Sequence[Tag], index: dict[str, Tag]) -> list[Tag]:
    """The setpoint tags of the pens' deviation alarms that are not pens themselves, once each."""
    names = {t.name for t in tags}
    wanted = [setpoint_tag(t) for t in tags]
    return [index[n] for n in dict.fromkeys(w for w in wanted if w) if n in index and n not in names]


async def query_pens(runtime, tags: Sequence[Tag], setpoints: Sequence[Tag], start_ms: int, end_ms: int,
                     max_points: int) -> tuple[list[PenAnswer], dict[str, PenAnswer]]:
    """Every pen and setpoint over [start_ms, end_ms], all at once (one gather)."""
    answers = await asyncio.gather(*(query_one(runtime, t, start_ms, end_ms, max_points)
                                     for t in [*tags, *setpoints]))
    return list(answers[:len(tags)]), {a.tag.name: a for a in answers[len(tags):]}


def answer_notes(answers: Sequence[PenAnswer], utc_offset_min: int) -> list[str]:
    """What the operator should know about the answers: errors, no data, coarser history, server notes."""
    notes: list[str] = []
    # A note every pen got alike (e.g. the historian is not writing) is said once, not per pen.
    said = Counter(note for a in answers if a.history is not None for note in a.history.notes)
    for answer in answers:
        name, history = answer.tag.name, answer.history
        if answer.error:
            notes.append(f"{name}: {answer.error}")
            continue
        if history is None:
            continue
        if not any(v is not None for v in history.values):
            notes.append(f"{name}: no data in this range.")
        if history.quality_bad_periods:
            count = len(history.quality_bad_periods)
            notes.append(f"{name}: Bad or no data in {count} period{'s' if count > 1 else ''} (hatched).")
        if history.resolution != "raw" and history.raw_from_ms > history.start_ms:
            before = local_time_text(history.raw_from_ms, utc_offset_min)[:16]
            notes.append(f"{name}: 1-minute min/max before {before}, raw samples after; zoom in for more detail.")
        elif history.downsampled:
            notes.append(f"{name}: {history.raw_count:,} samples drawn as {len(history.ts_ms):,} points "
                         "(peaks, dips and gaps kept); zoom in for every sample.")
        notes += [f"{name}: {note}" for note in history.notes if said[note] == 1]
    return [note for note, pens in said.items() if pens > 1] + notes
