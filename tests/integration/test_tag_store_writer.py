"""The tag store writer against a real Redis: a steady stream goes out in full batches, a stop loses nothing."""
from __future__ import annotations

import asyncio
import time

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
    async with running(writer.run()):
        started = time.monotonic()
        for i in range(2000):   # about one sample per event-loop turn, for ~1 s
            writer.submit(sample(f"t{i % 50}", float(i)))
            await asyncio.sleep(0.0005)
        elapsed_s = time.monotonic() - started
        writer.stop()
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
