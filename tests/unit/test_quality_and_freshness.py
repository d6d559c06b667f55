"""Quality families from StatusCodes, freshness judgement, and the Redis value codec."""
from domain.config_model import Tag
from domain.freshness import Freshness, judge_freshness
from domain.quality import (BAD_NO_COMMUNICATION, GOOD, QualityFamily, UNCERTAIN_LAST_USABLE_VALUE,
                            quality_from_code)
from domain.tag_value import TagValue
from tag_store.codec import decode_tag_value, encode_tag_value

TAG = Tag(name="C1.p", source="broker", topic="c1/state", max_age_s=5)
NOW = 1_000_000


def value(quality=GOOD, received_ms=NOW - 1000):
    return TagValue("C1.p", 7.0, quality, received_ms, received_ms)


def test_family_comes_from_the_top_two_bits():
    assert GOOD.family is QualityFamily.GOOD
    assert UNCERTAIN_LAST_USABLE_VALUE.family is QualityFamily.UNCERTAIN
    assert BAD_NO_COMMUNICATION.family is QualityFamily.BAD
    assert quality_from_code(0xC0000000).family is QualityFamily.BAD


def test_unknown_codes_keep_the_sources_name_or_get_a_readable_one():
    assert quality_from_code(0x80AB0000, "BadVendorSpecific").name == "BadVendorSpecific"
    assert quality_from_code(0x80AB0000).name == "Bad_0x80AB0000"
    assert quality_from_code(0x80310000).name == "BadNoCommunication"


def test_freshness():
    heartbeat = NOW - 500
    assert judge_freshness(None, TAG, heartbeat, NOW) is Freshness.NO_DATA
    assert judge_freshness(value(), TAG, heartbeat, NOW) is Freshness.LIVE
    assert judge_freshness(value(BAD_NO_COMMUNICATION), TAG, heartbeat, NOW) is Freshness.BAD
    assert judge_freshness(value(UNCERTAIN_LAST_USABLE_VALUE), TAG, heartbeat, NOW) is Freshness.UNCERTAIN
    # The source process stopped beating: Good values cannot be trusted.
    assert judge_freshness(value(), TAG, NOW - 6000, NOW) is Freshness.STALE
    assert judge_freshness(value(), TAG, None, NOW) is Freshness.STALE
    # No message for longer than max_age_s.
    assert judge_freshness(value(received_ms=NOW - 5001), TAG, heartbeat, NOW) is Freshness.STALE


def test_codec_round_trip_keeps_quality_and_times():
    original = TagValue("C1.p", 7.25, BAD_NO_COMMUNICATION, 123, 456, source_time_is_receive_time=True)
    assert decode_tag_value("C1.p", encode_tag_value(original)) == original
