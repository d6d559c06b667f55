"""Batched writes of TagValues into Redis: the data sources' only way into the store.

Sources call submit() from their receive loops (never blocking); run() flushes
every flush_interval_s, one pipeline per batch: one script call that XADDs each
sample to its tag's history, HSET of all latest values, one XADD of the newest
value per tag to CHANGES and one of every sample to SAMPLES (the historian's feed), each
capped by the samples it holds (FeedCap; the budgets in tag_store/keys.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass
from itertools import islice

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from domain.tag_value import TagValue
from tag_store import keys
from tag_store.codec import encode_tag_value

log = logging.getLogger(__name__)

# KEYS: the history streams, one per sample; ARGV[1]: their approximate MAXLEN; ARGV[i + 1]: the samples.
_APPEND_HISTORY_SCRIPT = """
local maxlen = ARGV[1]
for i = 1, #KEYS do
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', 'd', ARGV[i + 1])
end
return #KEYS
"""


class FeedCap:
    """The approximate MAXLEN of each XADD to one feed, so that it holds about its budget of samples.

    The newest entries whose samples, with the new entry's, fit the budget: counted from the sizes of
    the entries this writer wrote, not by dividing the budget by the new entry's size alone (sizes
    vary: after a burst of large batches, a trickle of small ones would keep the large entries while
    the cap grew). Entries older than this writer (a restart) are taken to be the new entry's size.
    Never fewer than keys.FEED_MIN_ENTRIES entries.
    """

    def __init__(self) -> None:
        # Samples of each of this writer's entries the feed may still hold, oldest first.
        self._held: deque[int] = deque()
        self._held_samples = 0
        self._trimmed_own = False  # once one of ours is trimmed out, so is everything older

    def maxlen(self, budget_samples: int, samples_in_entry: int) -> int:
        """MAXLEN for the next entry; nothing changes until written() says it is in the feed."""
        return max(keys.FEED_MIN_ENTRIES, self._fit(budget_samples, samples_in_entry)[0])

    def written(self, budget_samples: int, samples_in_entry: int) -> None:
        # The floor keeps some that the budget would trim.
        trimmed = max(0, min(self._fit(budget_samples, samples_in_entry)[1],
                             len(self._held) + 1 - keys.FEED_MIN_ENTRIES))
        for _ in range(trimmed):
            self._held_samples -= self._held.popleft()
            self._trimmed_own = True
        self._held.append(samples_in_entry)
        self._held_samples += samples_in_entry

    def _fit(self, budget_samples: int, samples_in_entry: int) -> tuple[int, int]:
        """(entries the feed may hold with the new one, how many of this writer's held ones go)."""
        total, trimmed = self._held_samples + samples_in_entry, 0
        while total > budget_samples and trimmed < len(self._held):
            total -= self._held[trimmed]
            trimmed += 1
        entries = len(self._held) - trimmed + 1
        if not trimmed and not self._trimmed_own:  # room left for entries written before this writer
            entries += (budget_samples - total) // max(samples_in_entry, 1)
        return entries, trimmed


@dataclass(slots=True)
class WriterStats:
    submitted: int = 0
    written: int = 0
    # Pending buffer full (Redis away too long): the oldest samples were dropped.
    dropped_overflow: int = 0
    # Older than what this tag already has (e.g. replayed after a reconnect): not written.
    dropped_replayed: int = 0
    batches: int = 0
    redis_errors: int = 0


class TagStoreWriter:
    def __init__(
        self,
        redis: aioredis.Redis,
        history_samples_per_tag: int,
        *,
        max_pending: int = 200_000,
        max_batch: int = 5_000,
        flush_interval_s: float = 0.02,
    ):
        self._redis = redis
        self._history_maxlen = history_samples_per_tag
        self._pending: deque[TagValue] = deque()
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._flush_interval_s = flush_interval_s
        self._newest_source_time_ms: dict[str, int] = {}
        self._wakeup = asyncio.Event()
        self._redis_down = False
        self._stopping = False
        self._changes_cap = FeedCap()
        self._samples_cap = FeedCap()
        self.stats = WriterStats()

    @property
    def redis(self) -> aioredis.Redis:
        """The store's Redis, for a source's few other writes (e.g. the discovered-tag catalog)."""
        return self._redis

    def submit(self, tv: TagValue) -> None:
        """Queue one sample; never blocks. Overflow policy: drop the oldest, and count it."""
        self.stats.submitted += 1
        newest = self._newest_source_time_ms.get(tv.tag)
        if tv.quality.is_good:
            if newest is not None and tv.source_time_ms < newest:
                self.stats.dropped_replayed += 1
                return
            # Only Good samples move the mark: a source's own Bad markers (connection lost,
            # waiting for initial data) carry the receive time, and the device's next value
            # may rightly carry an older source time (a value unchanged since before the loss).
            self._newest_source_time_ms[tv.tag] = max(tv.source_time_ms, newest or 0)
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            self.stats.dropped_overflow += 1
        self._pending.append(tv)
        if len(self._pending) >= self._max_batch:
            self._wakeup.set()

    async def run(self) -> None:
        """Flush until stop() is called; then write what is pending and return."""
        while True:
            if not self._stopping:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self._flush_interval_s)
                except TimeoutError:
                    pass
            self._wakeup.clear()
            while self._pending:
                if not await self.flush_once():
                    if self._stopping:
                        return  # Redis away at a stop: drain() may still retry, within its timeout
                    await asyncio.sleep(0.5)  # Redis away: keep buffering, retry
                    break
                # What arrived during that write waits for the next tick unless it fills a batch:
                # flushing it at once made a steady stream go out in pipelines of a few samples each.
                if len(self._pending) < self._max_batch and not self._stopping:
                    break
            if self._stopping and not self._pending:
                return

    def stop(self) -> None:
        """A clean stop: run() writes everything pending, then returns (no batch cut off mid-write)."""
        self._stopping = True
        self._wakeup.set()

    async def flush_once(self) -> bool:
        """Write up to max_batch pending samples; False if Redis refused (samples kept)."""
        count = min(len(self._pending), self._max_batch)
        batch = list(islice(self._pending, count))
        encoded = [encode_tag_value(tv) for tv in batch]
        latest = {tv.tag: value for tv, value in zip(batch, encoded, strict=True)}  # the newest per tag wins
        pipe = self._redis.pipeline(transaction=False)
        # One script call appends every sample to its tag's history: per-command overhead in the
        # client (packing, reply parsing) was the largest cost of a batch (see bench/ingest_opcua.py).
        pipe.eval(_APPEND_HISTORY_SCRIPT, len(batch), *[keys.history(tv.tag) for tv in batch],
                  self._history_maxlen, *encoded)
        pipe.hset(keys.LATEST, mapping=latest)
        # The encoded values are JSON already: the change entry is assembled, not re-encoded.
        changes = "{" + ",".join(f"{json.dumps(tag)}:{value}" for tag, value in latest.items()) + "}"
        # Each feed is capped by the samples it holds, whatever the batch size (tag_store/keys.py).
        pipe.xadd(keys.CHANGES, {"b": changes}, approximate=True,
                  maxlen=self._changes_cap.maxlen(keys.CHANGES_BUDGET_SAMPLES, len(latest)))
        samples = "[" + ",".join(f"[{json.dumps(tv.tag)},{value}]" for tv, value in zip(batch, encoded)) + "]"
        pipe.xadd(keys.SAMPLES, {"s": samples}, approximate=True,
                  maxlen=self._samples_cap.maxlen(keys.SAMPLES_BUDGET_SAMPLES, count))
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self.stats.redis_errors += 1
            if not self._redis_down:
                log.error("cannot write to Redis, buffering up to %d samples: %s", self._max_pending, exc)
                self._redis_down = True
            return False
        if self._redis_down:
            log.info("Redis is back; writing buffered samples")
            self._redis_down = False
        self._changes_cap.written(keys.CHANGES_BUDGET_SAMPLES, len(latest))
        self._samples_cap.written(keys.SAMPLES_BUDGET_SAMPLES, count)
        for _ in range(count):
            self._pending.popleft()
        self.stats.written += count
        self.stats.batches += 1
        return True

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Flush everything pending (used on a clean stop)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._pending and asyncio.get_running_loop().time() < deadline:
            if not await self.flush_once():
                await asyncio.sleep(0.2)
