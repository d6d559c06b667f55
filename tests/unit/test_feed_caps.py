"""The feeds' caps: a budget of samples (tag_store/keys.py), turned into each XADD's MAXLEN (FeedCap)."""
from __future__ import annotations

import random

import pytest

from tag_store import keys
from tag_store.writer import FeedCap


@pytest.mark.parametrize("samples_in_entry", [1, 20, 1_000, 4_000])
def test_an_entry_cap_times_its_entry_size_stays_within_the_budget(samples_in_entry):
    for budget in (keys.CHANGES_BUDGET_SAMPLES, keys.SAMPLES_BUDGET_SAMPLES):
        maxlen = keys.feed_maxlen(budget, samples_in_entry)
        assert maxlen * samples_in_entry <= budget
        assert (maxlen + 1) * samples_in_entry > budget  # and not far below it


def test_large_entries_keep_the_floor_and_an_empty_one_counts_as_one():
    assert keys.feed_maxlen(1_000, 5_000) == keys.FEED_MIN_ENTRIES
    assert keys.feed_maxlen(1_000, 0) == keys.feed_maxlen(1_000, 1) == 1_000


def test_the_entry_maxima_are_the_caps_of_single_sample_entries():
    # Readers that count entries (the historian's health) get the most a feed can hold.
    assert keys.SAMPLES_MAXLEN == keys.SAMPLES_BUDGET_SAMPLES
    assert keys.CHANGES_MAXLEN == keys.CHANGES_BUDGET_SAMPLES


def test_the_budgets_ride_out_a_restart_of_tens_of_seconds_at_a_thousand_samples_a_second():
    assert min(keys.CHANGES_BUDGET_SAMPLES, keys.SAMPLES_BUDGET_SAMPLES) >= 60 * 1_000


def write(feed: list[int], cap: FeedCap, sizes: list[int], budget: int) -> list[int]:
    """XADDs to a feed trimmed exactly to each MAXLEN FeedCap gives: the samples it holds after each."""
    held, total = [], sum(feed)
    for size in sizes:
        maxlen = cap.maxlen(budget, size)
        feed.append(size)
        total += size - sum(feed[:max(0, len(feed) - maxlen)])
        del feed[:max(0, len(feed) - maxlen)]
        cap.written(budget, size)
        held.append(total)
    return held


def test_the_feed_stays_within_its_budget_when_batches_shrink_after_a_burst():
    held = write([], FeedCap(), [2_000] * 200 + [20] * 20_000, 100_000)
    # Dividing the budget by the new entry's size alone held up to 2x the budget here.
    assert max(held) <= 100_000
    # ... and once the burst is trimmed out, the small entries fill the budget again.
    assert held[-1] == 100_000


def test_the_feed_holds_its_budget_when_batch_sizes_fluctuate():
    rng = random.Random(7)
    sizes = [rng.choice([1, 5, 20, 40, 300, 1_000]) if rng.random() < 0.01 else rng.randint(10, 30)
             for _ in range(50_000)]
    held = write([], FeedCap(), sizes, 100_000)
    assert max(held) <= 100_000
    assert min(held[20_000:]) > 100_000 - 1_000  # within one entry of it, not far below


def test_a_restarted_writer_keeps_what_the_last_one_left_in_the_feed():
    feed: list[int] = []
    write(feed, FeedCap(), [20] * 10_000, 100_000)
    assert sum(feed) == 100_000
    held = write(feed, FeedCap(), [20] * 10_000, 100_000)  # a new writer knows nothing of those entries
    assert held[0] == 100_000 and max(held) <= 100_000


def test_entries_larger_than_the_budget_allows_keep_the_floor():
    feed: list[int] = []
    held = write(feed, FeedCap(), [5_000] * 200, 100_000)
    assert len(feed) == keys.FEED_MIN_ENTRIES and held[-1] == 5_000 * keys.FEED_MIN_ENTRIES
    write(feed, FeedCap(), [20] * 10_000, 100_000)
    assert sum(feed) <= 100_000


def test_a_retried_entry_is_not_counted_until_written():
    cap = FeedCap()
    write([], cap, [1_000] * 100, 100_000)
    for _ in range(1_000):  # Redis away: the same next entry, asked again and again
        assert cap.maxlen(100_000, 10) == 100
