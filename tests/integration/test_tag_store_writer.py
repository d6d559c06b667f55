"""The tag store writer against a real Redis: a steady stream goes out in full batches, a stop loses nothing,
the feeds hold about their sample budget however the sources batch."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from domain.quality import GOOD
from domain.tag_value import TagValue
from tag_store import keys
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import running


def sample(tag: str, value: float) -> TagValue:
    now_ms = int(time.time() * 1000)
    return TagValue(tag, value, GOOD, now_ms, now_ms)


async def test_a_steady_trickle_is_written_in_batches_per_flush_interval_not_per_sample(redis_client):
    writer = TagStoreWriter(redis_client, history_samples_per_tag=10_000, flush_interval_s=0.05)
    async with running(writer.run()) as (task,):
        started = time.monotonic()
        for i in range(2000):   # about one sample per event-loop turn, for ~1 s
            writer.submit(sample(f"t{i % 50}", float(i)))
            await asyncio.sleep(0.0005)
        elapsed_s = time.monotonic() - started
        writer.stop()
        # stop() asks run() to write what is pending and return; leaving the block at once would
        # cancel it mid-write (that race failed CI with 1954 of 2000 written).
        await asyncio.wait_for(task, 5)
    assert writer.stats.written == 2000
    # One batch per flush interval, give or take: flushing whatever arrived during the previous
    # write at once made hundreds of pipelines of a few samples each.
    assert writer.stats.batches <= elapsed_s / 0.05 * 1.5 + 5, (writer.stats.batches, elapsed_s)
    assert await redis_client.xlen(keys.history("t0")) == 40


async def test_a_stop_writes_everything_pending(redis_client):
    writer = TagStoreWriter(redis_client, history_samples_per_tag=10_000, flush_interval_s=5.0)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0.05)
    for i in range(700):
        writer.submit(sample("late", float(i)))
    writer.stop()
    await asyncio.wait_for(task, 5)
    assert writer.stats.written == 700
    assert await redis_client.xlen(keys.history("late")) == 700


def plant_second(tags: int, second: int) -> list[TagValue]:
    """One sample of each of `tags` tags, as a source publishes them every second."""
    ms = 1_700_000_000_000 + second * 1000
    return [TagValue(f"p{i}", float(second + i), GOOD, ms, ms) for i in range(tags)]


@pytest.mark.parametrize("batch_samples", [20, 1_000])
async def test_the_feeds_hold_about_their_sample_budget_whatever_the_batch_size(
        redis_client, monkeypatch, batch_samples):
    # A small budget, so that the feeds go far past it in a few seconds; the floor stays as it is.
    budget = 50_000
    monkeypatch.setattr(keys, "CHANGES_BUDGET_SAMPLES", budget)
    monkeypatch.setattr(keys, "SAMPLES_BUDGET_SAMPLES", budget)
    writer = TagStoreWriter(redis_client, history_samples_per_tag=10, max_batch=batch_samples,
                            max_pending=2_000)
    second = 0
    while writer.stats.written < 3 * budget:
        for tv in plant_second(1_000, second):
            writer.submit(tv)
        while writer.stats.submitted - writer.stats.written >= batch_samples:
            assert await writer.flush_once()
        second += 1
    # Every entry holds batch_samples samples and as many changes (1,000 tags, each once a second).
    held = {feed: await redis_client.xlen(feed) * batch_samples for feed in (keys.SAMPLES, keys.CHANGES)}
    # Approximate MAXLEN trims whole nodes (at most 4 KB or 100 entries): one node more at most.
    slack = batch_samples + 4096 // 80
    assert all(budget <= samples <= budget + slack for samples in held.values()), held
    memory = await redis_client.memory_usage(keys.SAMPLES, samples=0)
    # ~90 B a sample: the memory follows the budget, not the entry count (entries of 1,000 samples at
    # the old 5,000-entry cap were 470 MB).
    assert 60 * budget < memory < 140 * budget, memory


async def test_entries_larger_than_the_budget_allows_keep_the_floor_of_entries(redis_client, monkeypatch):
    monkeypatch.setattr(keys, "SAMPLES_BUDGET_SAMPLES", 1_000)
    writer = TagStoreWriter(redis_client, history_samples_per_tag=10, max_batch=100)
    for second in range(2 * keys.FEED_MIN_ENTRIES):
        for tv in plant_second(100, second):
            writer.submit(tv)
        assert await writer.flush_once()
    # 1,000 // 100 = 10 entries would leave the historian almost nothing to read: it keeps the floor.
    assert keys.FEED_MIN_ENTRIES <= await redis_client.xlen(keys.SAMPLES) < 2 * keys.FEED_MIN_ENTRIES


async def samples_in_feed(redis_client) -> int:
    return sum(len(json.loads(fields[b"s"])) for _, fields in await redis_client.xrange(keys.SAMPLES))


async def test_small_batches_after_a_burst_of_large_ones_keep_the_feed_within_its_budget(redis_client, monkeypatch):
    budget = 50_000
    monkeypatch.setattr(keys, "SAMPLES_BUDGET_SAMPLES", budget)
    writer = TagStoreWriter(redis_client, history_samples_per_tag=10, max_pending=2_000)
    held = []
    for second in range(100):  # a burst: 1,000 samples an entry, the feed full of them
        for tv in plant_second(1_000, second):
            writer.submit(tv)
        assert await writer.flush_once()
    held.append(await samples_in_feed(redis_client))
    for second in range(100, 200):  # then a trickle: 20 samples an entry
        for tv in plant_second(1_000, second):
            writer.submit(tv)
            if writer.stats.submitted - writer.stats.written == 20:
                assert await writer.flush_once()
        if second % 10 == 9:
            held.append(await samples_in_feed(redis_client))
    # One node of slack (approximate MAXLEN); the budget divided by the new entry's size alone held 2x.
    assert max(held) <= budget + 1_000, max(held)
    assert held[-1] >= budget - 1_000  # and the small entries fill it again once the burst is out
