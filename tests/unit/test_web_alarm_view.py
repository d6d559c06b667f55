"""Alarm rows and the banner summary as the operator sees them."""
from __future__ import annotations

import asyncio

from domain.alarms.records import AlarmRecord, AlarmState
from domain.config_model import Tag
from tests.unit.web_plant import small_plant
from web.alarm_actions import AckResult, clean_ack_request, describe_ack_results
from web.alarm_cache import AlarmCache
from web.alarm_view import alarm_summary, build_alarm_view, sort_shown_alarms
from web.tag_directory import TagDirectory

PLANT = small_plant()


def record(alarm_id: str, priority: int, state: AlarmState, activated_ms: int, tag: str = "T1.level",
           value: float | None = 4.6) -> AlarmRecord:
    return AlarmRecord(alarm_id=alarm_id, tag=tag, kind="high", priority=priority, message=f"{alarm_id} message",
                       area="Tanks", state=state, condition_active=state is not AlarmState.RETURNED_UNACK,
                       last_value=value, state_since_ms=activated_ms, activated_ms=activated_ms)


RECORDS = [
    record("a", 3, AlarmState.UNACK_ACTIVE, 1_000),
    record("b", 1, AlarmState.ACK_ACTIVE, 500),
    record("c", 3, AlarmState.RETURNED_UNACK, 3_000),
    record("d", 1, AlarmState.UNACK_ACTIVE, 2_000, tag="M1.flow", value=1200.0),
    record("e", 2, AlarmState.NORMAL, 9_000),
]


def test_shown_alarms_sort_by_priority_then_newest_first_and_normal_ones_are_hidden():
    assert [r.alarm_id for r in sort_shown_alarms(RECORDS)] == ["d", "b", "c", "a"]


def test_rows_say_the_state_in_words_with_the_value_and_unit():
    rows = build_alarm_view(RECORDS, PLANT)["rows"]
    by_id = {r["alarm_id"]: r for r in rows}
    assert by_id["a"]["state_text"] == "UNACK ACTIVE" and by_id["a"]["unacked"]
    assert by_id["b"]["state_text"] == "ACK ACTIVE" and not by_id["b"]["unacked"]
    assert by_id["c"]["state_text"] == "RTN UNACK" and by_id["c"]["unacked"]
    assert by_id["a"]["value"] == "4.60 m"
    assert by_id["d"]["value"] == "1200 m3/h"
    assert by_id["d"]["time_ms"] == 2_000


def test_summary_counts_unacknowledged_per_priority_and_names_the_newest():
    summary = alarm_summary(RECORDS)
    assert summary["unack"] == {"1": 1, "2": 0, "3": 2, "4": 0}
    assert summary["shown"] == 4
    assert summary["newest"]["message"] == "c message"
    assert summary["tags"]["T1.level"] == {"p": 1, "u": True}
    assert alarm_summary([])["newest"] is None


def test_acknowledge_requests_are_cleaned_and_results_described():
    ids, comment = clean_ack_request(["x", "x", 3, "", "y" * 400, "z"], "  checked valve  ")
    assert ids == ["x", "z"] and comment == "checked valve"
    assert clean_ack_request("not a list", 5) == ([], None)
    text = describe_ack_results([AckResult("x", True), AckResult("z", False, "nothing to acknowledge")])
    assert text == "Acknowledged 1 alarm. REFUSED z: nothing to acknowledge"
    assert describe_ack_results([]) == "Select one or more alarms first."


def test_device_alarms_say_they_were_decided_by_the_device_and_show_a_lost_input():
    device = AlarmRecord(alarm_id="plc:nsu=urn:plc;s=TempAlarm", tag="Temperature", kind="TempAlarm", priority=2,
                         message="Temperature high", area="Plant", state=AlarmState.UNACK_ACTIVE, input_bad=True,
                         state_since_ms=1, device_source="plc", device_condition="nsu=urn:plc;s=TempAlarm")
    rows = {r["alarm_id"]: r for r in build_alarm_view([device, *RECORDS], PLANT)["rows"]}
    assert rows[device.alarm_id]["origin"] == "device plc"
    assert rows[device.alarm_id]["value"] == "(input BAD)"
    assert rows["a"]["origin"] == "Stacklight"
    # "Temperature" is no configured tag: no link to a faceplate that does not exist.
    assert rows[device.alarm_id]["has_faceplate"] is False
    assert rows["a"]["has_faceplate"] is True


def test_a_device_alarm_on_a_discovered_tag_links_to_its_faceplate():
    device = AlarmRecord(alarm_id="mq:F9.temp high", tag="F9.temp", kind="high", priority=2, message="F9 hot",
                         area="Plant", state=AlarmState.UNACK_ACTIVE, last_value=81.0, state_since_ms=1,
                         device_source="mq", device_condition="F9.temp high")
    directory = TagDirectory(PLANT)
    assert build_alarm_view([device], directory)["rows"][0]["has_faceplate"] is False
    directory.apply(1, {"F9.temp": Tag(name="F9.temp", source="mq", topic="plant/F9", unit="degC")})
    row = build_alarm_view([device], directory)["rows"][0]
    assert row["has_faceplate"] is True and row["value"] == "81.0 degC"


def test_the_alarm_cache_rebuilds_its_view_when_the_tag_directory_changes(monkeypatch):
    device = AlarmRecord(alarm_id="mq:F9.temp high", tag="F9.temp", kind="high", priority=2, message="F9 hot",
                         area="Plant", state=AlarmState.UNACK_ACTIVE, state_since_ms=1, device_source="mq",
                         device_condition="F9.temp high")
    reads = []

    async def alarm_version(_redis):
        return 7  # the engine's alarms never change in this test

    async def all_alarms(_redis):
        reads.append(1)
        return [device]

    monkeypatch.setattr("web.alarm_cache.read_alarm_version", alarm_version)
    monkeypatch.setattr("web.alarm_cache.read_all_alarms", all_alarms)
    directory = TagDirectory(PLANT)
    cache = AlarmCache(None, directory, poll_s=0.01)

    async def scenario():
        task = asyncio.create_task(cache.run())
        await asyncio.sleep(0.05)
        assert cache.view["rows"][0]["has_faceplate"] is False
        version = cache.version
        directory.apply(1, {"F9.temp": Tag(name="F9.temp", source="mq", topic="plant/F9")})
        await asyncio.sleep(0.05)
        task.cancel()
        return version

    version = asyncio.run(scenario())
    assert cache.view["rows"][0]["has_faceplate"] is True and cache.version == version + 1
    assert len(reads) == 1  # rebuilt from the records it holds, not read again
