"""The historian's pure parts: feed entries as file rows, the bounded buffer, stream ids and the gap rule."""
import json
import math

from domain.quality import BAD_SENSOR_FAILURE, GOOD, UNCERTAIN
from domain.tag_value import TagValue
from historian.feed_buffer import MAX_SEQ, Chunk, SampleBuffer, chunk_of_entry, columns_of, entry_before
from historian.service import fell_behind
from tag_store.codec import encode_tag_value


def entry(*samples: TagValue) -> dict:
    return {b"s": ("[" + ",".join(f"[{json.dumps(tv.tag)},{encode_tag_value(tv)}]" for tv in samples) + "]").encode()}


def test_an_entry_becomes_rows_bools_as_numbers_bad_as_nan_text_skipped():
    chunk = chunk_of_entry("100-0", entry(
        TagValue("t.flow", 12.5, GOOD, 1000, 1010),
        TagValue("t.run", True, GOOD, 1001, 1011),
        TagValue("t.count", 7, UNCERTAIN, 1002, 1012),
        TagValue("t.flow", None, BAD_SENSOR_FAILURE, 1003, 1013),
        TagValue("t.flow", 99.0, BAD_SENSOR_FAILURE, 1004, 1014),
        TagValue("t.mode", "auto", GOOD, 1005, 1015),
    ))
    assert chunk.entry_id == "100-0" and chunk.skipped_text == 1
    assert chunk.tags == ["t.flow", "t.run", "t.count", "t.flow", "t.flow"]
    assert chunk.ts_ms == [1000, 1001, 1002, 1003, 1004]  # source times
    assert chunk.values[:3] == [12.5, 1.0, 7.0] and all(math.isnan(v) for v in chunk.values[3:])
    assert chunk.qualities == [GOOD.code, GOOD.code, UNCERTAIN.code, BAD_SENSOR_FAILURE.code,
                               BAD_SENSOR_FAILURE.code]


def test_configured_text_tags_are_skipped_with_their_bad_markers():
    chunk = chunk_of_entry("1-0", entry(TagValue("t.mode", None, BAD_SENSOR_FAILURE, 5, 5),
                                        TagValue("t.flow", 1.0, GOOD, 5, 5)), frozenset({"t.mode"}))
    assert chunk.tags == ["t.flow"] and chunk.skipped_text == 1


def rows(entry_id: str, n: int) -> Chunk:
    chunk = Chunk(entry_id)
    for i in range(n):
        chunk.add(TagValue("t", float(i), GOOD, i, i))
    return chunk


def test_the_buffer_releases_only_what_was_written():
    buffer = SampleBuffer(max_samples=100)
    first, second = rows("1-0", 3), rows("2-0", 4)
    buffer.add(first)
    written = buffer.pending()
    buffer.add(second)  # arrived while the first was being written
    buffer.release(written)
    assert buffer.pending() == [second] and buffer.samples == 4 and buffer.feed_entries == 1
    assert columns_of(buffer.pending())[1] == [0, 1, 2, 3]
    assert buffer.last_entry_id == "2-0"


def test_a_full_buffer_drops_the_oldest_and_counts_them():
    buffer = SampleBuffer(max_samples=10)
    for i in range(5):
        buffer.add(rows(f"{i}-0", 4))
    assert [c.entry_id for c in buffer.pending()] == ["3-0", "4-0"]
    assert buffer.samples == 8 and buffer.dropped_samples == 12


def test_the_id_before_an_entry():
    assert entry_before("1700-5") == "1700-4"
    assert entry_before("1700-0") == f"1699-{MAX_SEQ}"
    assert entry_before("0-0") == "0-0"


def test_fallen_behind_when_the_feed_starts_after_the_next_entry():
    assert not fell_behind("100-3", None)  # no feed
    assert not fell_behind("100-3", "90-0")  # the feed still holds the cursor
    assert not fell_behind("100-3", "100-4")  # the next possible entry: nothing missing
    assert not fell_behind(f"99-{MAX_SEQ}", "100-0")  # a backfill ended just before the first held entry
    assert fell_behind("100-3", "100-5")
    assert fell_behind("100-3", "250-0")
