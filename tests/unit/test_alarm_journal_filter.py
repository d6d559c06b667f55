"""The alarm journal's pure parts: reading stream fields, the search rule, the order, the query from a URL."""
from __future__ import annotations

import pytest

from domain.alarms.journal import (
    JournalEntry,
    JournalQuery,
    entry_from_stream_fields,
    matches,
    select,
    stream_id_key,
    tag_matches,
    value_display,
)
from web.alarm_journal import INVALID_TIME, build_query, page_query, parse_time_ms, query_params

T0 = 1_738_300_000_000


def entry(n: int, *, time_ms: int | None = None, tag: str = "T1.level", area: str = "Tanks", priority: int = 2,
          message: str = "Tank 1 level high", user: str | None = None, comment: str | None = None) -> JournalEntry:
    return JournalEntry(entry_id=f"{T0 + n}-0", time_ms=T0 + n if time_ms is None else time_ms,
                        alarm_id=f"{tag}:high", tag=tag, kind="high", area=area, priority=priority,
                        message=message, transition="T1", from_state="A", to_state="B", value=4.6,
                        user=user, comment=comment)


def test_stream_fields_are_read_back_with_numbers_and_none():
    fields = {"alarm_id": "T1.level:high", "transition": "T5", "from_state": "B", "to_state": "C",
              "time_ms": str(T0), "value": "4.6", "user": "olga", "comment": "", "tag": "T1.level",
              "kind": "high", "area": "Tanks", "priority": "1", "message": "Tank 1 level high"}
    e = entry_from_stream_fields(f"{T0}-3", fields)
    assert e == JournalEntry(f"{T0}-3", T0, "T1.level:high", "T1.level", "high", "Tanks", 1, "Tank 1 level high",
                             "T5", "B", "C", 4.6, "olga", None, "4.6")


@pytest.mark.parametrize(("written", "value", "text"), [
    ("True", None, "True"), ("FAULT", None, "FAULT"), ("", None, None), ("-3", -3.0, "-3"),
    ("nan", None, "nan"), ("1e400", None, "1e400"),
])
def test_a_value_that_is_no_finite_number_keeps_its_text(written, value, text):
    e = entry_from_stream_fields(f"{T0}-0", {"alarm_id": "P1.run:discrete", "time_ms": str(T0), "value": written})
    assert (e.value, e.value_text, value_display(e)) == (value, text, text or "")


def test_older_entries_without_tag_fields_take_tag_and_kind_from_the_alarm_id():
    e = entry_from_stream_fields(f"{T0}-0", {"alarm_id": "R201.temperature:high_high", "transition": "T1",
                                             "from_state": "A", "to_state": "B", "time_ms": str(T0), "value": "91.5",
                                             "user": "", "comment": ""})
    assert (e.tag, e.kind, e.area, e.priority, e.message) == ("R201.temperature", "high_high", "", 0, "")
    # A garbled time falls back to the stream id's time rather than losing the entry.
    assert entry_from_stream_fields(f"{T0}-0", {"alarm_id": "x:y", "time_ms": "soon"}).time_ms == T0


def test_stream_ids_compare_as_numbers():
    assert stream_id_key(f"{T0}-10") > stream_id_key(f"{T0}-9")
    assert sorted([f"{T0}-10", f"{T0}-9", f"{T0 - 1}-99"], key=stream_id_key) == [f"{T0 - 1}-99", f"{T0}-9", f"{T0}-10"]


def test_times_are_inclusive():
    e = entry(5)
    assert matches(e, JournalQuery(start_ms=T0 + 5, end_ms=T0 + 5))
    assert not matches(e, JournalQuery(start_ms=T0 + 6))
    assert not matches(e, JournalQuery(end_ms=T0 + 4))


def test_tag_is_exact_or_a_prefix_before_a_star():
    assert tag_matches("T1.level", "T1.level") and not tag_matches("T1.level2", "T1.level")
    assert tag_matches("T1.level", "T1.*") and tag_matches("T1.", "T1.*") and not tag_matches("T2.level", "T1.*")
    assert tag_matches("anything", "*")
    assert not tag_matches("t1.level", "T1.*") and not tag_matches("t1.level", "T1.level")  # names are case-sensitive
    assert not tag_matches("T1.level", "T1")  # no star: no prefix


def test_area_priority_and_text():
    e = entry(1, user="Olga", comment="Pump P-101 tripped", message="Tank 1 level HIGH")
    assert matches(e, JournalQuery(area="Tanks")) and not matches(e, JournalQuery(area="tanks"))
    assert matches(e, JournalQuery(priority=2)) and not matches(e, JournalQuery(priority=1))
    for text in ("olga", "P-101 TRIP", "level high", "tank"):
        assert matches(e, JournalQuery(text=text)), text
    assert not matches(e, JournalQuery(text="T1.level"))  # the tag is not searched as text; use tag=
    assert not matches(entry(1), JournalQuery(text="olga"))  # no user, no comment
    assert matches(entry(1, comment="Straße gesperrt"), JournalQuery(text="STRASSE"))  # Unicode case folding


def test_every_condition_must_hold():
    e = entry(1, user="olga")
    assert matches(e, JournalQuery(start_ms=T0, end_ms=T0 + 1, tag="T1.*", area="Tanks", priority=2, text="olga"))
    assert not matches(e, JournalQuery(start_ms=T0, end_ms=T0 + 1, tag="T1.*", area="Tanks", priority=3, text="olga"))


def test_select_is_newest_first_without_duplicates_and_honours_the_limit():
    same_time = [entry(1, time_ms=T0), entry(2, time_ms=T0)]  # equal times: the later stream id first
    entries = [entry(3), *same_time, entry(0), entry(3)]
    chosen = select(entries, JournalQuery())
    assert [e.entry_id for e in chosen] == [f"{T0 + 3}-0", f"{T0 + 2}-0", f"{T0 + 1}-0", f"{T0}-0"]
    assert [e.entry_id for e in select(entries, JournalQuery(limit=2))] == [f"{T0 + 3}-0", f"{T0 + 2}-0"]
    assert select(entries, JournalQuery(limit=0)) == []
    assert [e.entry_id for e in select(entries, JournalQuery(end_ms=T0 + 1))] == [f"{T0 + 2}-0", f"{T0 + 1}-0",
                                                                                   f"{T0}-0"]


def test_times_in_a_url_are_iso_8601_or_epoch_ms():
    assert parse_time_ms("1738310400000", "start") == 1_738_310_400_000
    assert parse_time_ms("2025-01-31T08:00:00Z", "start") == 1_738_310_400_000
    assert parse_time_ms("2025-01-31T09:00:00+01:00", "start") == 1_738_310_400_000
    assert parse_time_ms("2025-01-31T08:00:00.123", "start") == 1_738_310_400_123  # no zone: UTC
    assert parse_time_ms(" ", "start") is None and parse_time_ms(None, "start") is None
    with pytest.raises(ValueError, match="start: 'yesterday' is neither an ISO 8601 time"):
        parse_time_ms("yesterday", "start")


@pytest.mark.parametrize(("arguments", "reason"), [
    ({"start": "2025-02-01", "end": "2025-01-01"}, "start is after end"),
    ({"priority": "high"}, "priority: 'high' is not a whole number"),
    ({"priority": "7"}, "priority: 7 is not 1, 2, 3 or 4"),
    ({"limit": "0"}, "limit: 0 is not between 1 and 100,000"),
    ({"limit": "lots"}, "limit: 'lots' is not a whole number"),
    ({"end": "2025-13-01"}, "end: '2025-13-01' is neither"),
])
def test_bad_query_values_are_refused_with_the_reason(arguments, reason):
    with pytest.raises(ValueError, match=reason):
        build_query(**arguments)


def test_a_query_goes_through_a_url_and_back_unchanged():
    query = build_query("2025-01-31T06:00:00Z", "2025-01-31T08:00:00Z", " T1.* ", "Tanks", "1", "pump", "50")
    assert query == JournalQuery(1_738_303_200_000, 1_738_310_400_000, "T1.*", "Tanks", 1, "pump", 50)
    params = query_params(query, "csv")
    assert params["format"] == "csv"
    assert build_query(**{k: v for k, v in params.items() if k != "format"}) == query
    assert build_query("", "", "", "", "", "") == JournalQuery()


def test_the_page_searches_the_last_24_hours_unless_told_otherwise():
    def span(time_range):
        query = page_query(time_range, None, None, None, None, T0)
        return query.start_ms, query.end_ms

    assert span({}) == (T0 - 86_400_000, T0)
    assert span({"end_ms": T0 - 1000}) == (T0 - 1000 - 86_400_000, T0 - 1000)
    assert span({"start_ms": T0 - 5, "end_ms": None}) == (T0 - 5, T0)
    with pytest.raises(ValueError, match="incomplete"):
        page_query({"start_ms": INVALID_TIME}, None, None, None, None, T0)
