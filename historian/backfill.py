"""Backfill: samples the feed no longer holds, taken from the per-tag streams sl:hist:<tag>.

When the historian was away longer than sl:samples keeps (or on its very first start), the
samples between its cursor and the first feed entry still held exist only in each tag's own
capped stream. Their entry ids are Redis receive times too: a batch's samples get history ids
at or just before the time of its feed entry (the same pipeline), never after it. So:

- after the cursor C: history entries with a millisecond after C's (the samples of batches in
  C's own millisecond count as written: they almost always are C's);
- before the first held feed entry F: everything up to F's millisecond; entries in the last
  BOUNDARY_SLACK_MS before it are compared with the samples of the held feed entries near F
  (tag, value, quality, source and receive time) and skipped when the feed has them.

The range is read in time windows across all tags (one pipeline of XRANGEs per window, the window
sized to about WINDOW_TARGET_SAMPLES samples), each window one Chunk whose entry id is the window's
end: a crash in the middle resumes after the last window written.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import AsyncIterator, Iterable

import redis.asyncio as aioredis

from domain.config_model import PlantConfig
from domain.tag_value import TagValue
from historian.feed_buffer import MAX_SEQ, Chunk, entry_before, entry_ms, samples_of_entry, text
from tag_store import keys
from tag_store.codec import decode_tag_value
from tag_store.tag_catalog import read_discovered_tags

log = logging.getLogger(__name__)

BOUNDARY_SLACK_MS = 1_000
WINDOW_START_MS = 60_000
WINDOW_MAX_MS = 86_400_000
WINDOW_TARGET_SAMPLES = 100_000
_HIST_PREFIX = keys.history("")


@dataclass(frozen=True, slots=True)
class LostRange:
    """A tag whose history stream was trimmed past the cursor: samples before first_kept_ms are gone."""

    tag: str
    first_kept_ms: int


async def tags_with_history(redis: aioredis.Redis, config: PlantConfig) -> list[str]:
    """Every tag that may have history: configured, discovered (catalog) and any sl:hist:<tag> stream."""
    names = {tag.name for tag in config.tags} | set(await read_discovered_tags(redis))
    async for key in redis.scan_iter(match=_HIST_PREFIX + "*", count=1000, _type="stream"):
        names.add(text(key)[len(_HIST_PREFIX):])
    return sorted(names)


async def boundary_samples(redis: aioredis.Redis, first_held: str | None) -> Counter[TagValue]:
    """The samples of the feed entries within BOUNDARY_SLACK_MS after the first held one."""
    if first_held is None:
        return Counter()
    end = f"{entry_ms(first_held) + BOUNDARY_SLACK_MS}-{MAX_SEQ}"
    entries = await redis.xrange(keys.SAMPLES, min=first_held, max=end)
    return Counter(tv for _id, fields in entries for tv in samples_of_entry(fields))


async def lost_ranges(redis: aioredis.Redis, tags: list[str], after_ms: int) -> list[LostRange]:
    """Tags whose stream dropped entries (trimmed) and now starts after after_ms."""
    pipe = redis.pipeline(transaction=False)
    for tag in tags:
        pipe.xinfo_stream(keys.history(tag))
    lost = []
    for tag, info in zip(tags, await pipe.execute(raise_on_error=False), strict=True):
        if isinstance(info, Exception) or not info.get("first-entry"):
            continue
        first_ms = entry_ms(text(info["first-entry"][0]))
        trimmed = int(info.get("entries-added", info["length"])) > int(info["length"])
        if trimmed and first_ms > after_ms:
            lost.append(LostRange(tag, first_ms))
    return lost


async def backfill(redis: aioredis.Redis, tags: list[str], after: str | None, first_held: str,
                   skip_tags: Iterable[str] = ()) -> AsyncIterator[Chunk]:
    """Chunks of the history entries after `after` (None: all) and before feed entry `first_held`.

    `first_held` is the first feed entry still held (or, with no feed, a time-based id: nothing of
    the feed is then deduplicated). The last chunk's entry id is the id just before it.
    """
    skip = frozenset(skip_tags)
    start_ms = -1 if after is None else entry_ms(after)
    end_ms = entry_ms(first_held)
    if not tags or start_ms >= end_ms:
        yield Chunk(entry_before(first_held), feed_entries=0)
        return
    boundary = await boundary_samples(redis, first_held)
    pipe = redis.pipeline(transaction=False)
    for tag in tags:
        pipe.xrange(keys.history(tag), min=f"{start_ms + 1}-0", max="+", count=1)
    firsts = [entry_ms(text(found[0][0])) for found in await pipe.execute() if found]
    low_ms = min(firsts, default=end_ms + 1)
    window_ms = WINDOW_START_MS
    while True:
        high_ms = min(low_ms + window_ms - 1, end_ms)
        last = high_ms >= end_ms
        chunk = Chunk(entry_before(first_held) if last else f"{high_ms}-{MAX_SEQ}", feed_entries=0)
        if low_ms <= high_ms:
            pipe = redis.pipeline(transaction=False)
            for tag in tags:
                pipe.xrange(keys.history(tag), min=f"{low_ms}-0", max=f"{high_ms}-{MAX_SEQ}")
            for tag, entries in zip(tags, await pipe.execute(), strict=True):
                for entry_id, fields in entries:
                    try:
                        tv = decode_tag_value(tag, fields[b"d"])
                    except (ValueError, KeyError, TypeError) as exc:
                        log.error("historian backfill: unreadable entry %s of %s skipped: %r",
                                  text(entry_id), keys.history(tag), exc)
                        continue
                    if tag in skip:
                        chunk.skipped_text += 1
                    elif entry_ms(text(entry_id)) >= end_ms - BOUNDARY_SLACK_MS and boundary[tv] > 0:
                        boundary[tv] -= 1  # the feed still holds this one
                    else:
                        chunk.add(tv)
        yield chunk
        if last:
            return
        if len(chunk) > WINDOW_TARGET_SAMPLES:
            window_ms = max(window_ms // 2, 1)
        elif len(chunk) < WINDOW_TARGET_SAMPLES // 4:
            window_ms = min(window_ms * 2, WINDOW_MAX_MS)
        low_ms = high_ms + 1
