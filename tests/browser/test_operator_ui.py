"""The operator's screens in headless Chromium: live values, bad data, lost connection, alarms, setpoints."""
from __future__ import annotations

import json
import re
import threading
import time

import pytest
from playwright.sync_api import expect

from alarm_engine.alarm_store import queue_record_writes
from domain.alarms.records import AlarmRecord, AlarmState
from domain.quality import BAD_NO_COMMUNICATION
from tag_store import keys
from tag_store.write_requests import WriteOutcome, WriteStatus, answer_write

pytestmark = pytest.mark.browser

LIVE_S = 10_000  # ms Playwright waits for a live update to show


def field(page, tag: str, name: str):
    return page.locator(f'[data-sl-tag="{tag}"][data-sl-field="{name}"]').first


def test_overview_shows_values_changing_live(logged_in_page, source_heartbeats):
    page, feeder = logged_in_page, source_heartbeats
    feeder.put("T101.level", 2.5)
    expect(field(page, "T101.level", "value")).to_have_text("2.50", timeout=LIVE_S)
    expect(field(page, "T101.level", "status")).to_have_text("Good")
    expect(page.locator("#sl-conn")).to_have_text("LIVE")
    feeder.put("T101.level", 3.75)
    expect(field(page, "T101.level", "value")).to_have_text("3.75", timeout=LIVE_S)
    feeder.put("P101.running", True)
    expect(field(page, "P101.running", "value")).to_have_text("ON", timeout=LIVE_S)
    expect(page.locator("#sl-user-name")).to_have_text("operator")


def test_a_bad_tag_says_bad_keeps_its_last_value_and_is_hatched(logged_in_page, source_heartbeats):
    page, feeder = logged_in_page, source_heartbeats
    feeder.put("R201.pressure", 3.2)
    expect(field(page, "R201.pressure", "value")).to_have_text("3.20", timeout=LIVE_S)
    feeder.put("R201.pressure", 3.2, quality=BAD_NO_COMMUNICATION)
    expect(field(page, "R201.pressure", "status")).to_have_text("BAD: BadNoCommunication", timeout=LIVE_S)
    expect(field(page, "R201.pressure", "row")).to_have_attribute("data-f", "bad")
    expect(field(page, "R201.pressure", "value")).to_have_text("3.20")
    expect(field(page, "CV301.item_count", "status")).to_have_text("NO DATA")


def test_values_go_stale_when_their_source_stops_beating(logged_in_page, tag_feeder):
    page = logged_in_page
    tag_feeder.put("U501.power", 812.0)  # no heartbeat from utility_mqtt at all
    expect(field(page, "U501.power", "value")).to_have_text("812", timeout=LIVE_S)
    expect(field(page, "U501.power", "status")).to_have_text("STALE")
    expect(field(page, "U501.power", "row")).to_have_attribute("data-f", "stale")


def test_losing_redis_shows_no_data_connection_and_recovers(logged_in_page, source_heartbeats, redis_server):
    page, feeder = logged_in_page, source_heartbeats
    feeder.put("T101.inflow", 12.0)
    expect(field(page, "T101.inflow", "status")).to_have_text("Good", timeout=LIVE_S)
    redis_server.stop()
    expect(page.locator("#sl-conn")).to_have_text("NO DATA CONNECTION", timeout=15_000)
    expect(page.locator("#sl-conn-lost")).to_be_visible()
    expect(field(page, "T101.inflow", "status")).to_have_text("STALE")
    expect(field(page, "T101.inflow", "value")).to_have_text("12.0")
    redis_server.start()
    expect(page.locator("#sl-conn")).to_have_text("LIVE", timeout=30_000)
    expect(field(page, "T101.inflow", "status")).to_have_text("Good", timeout=LIVE_S)


def test_alarms_show_in_the_banner_and_the_list_with_shape_and_flashing(logged_in_page, tag_feeder):
    page, now = logged_in_page, int(time.time() * 1000)
    records = [
        AlarmRecord("R201.temperature:high_high", "R201.temperature", "high_high", 1, "Reactor too hot", "Reactor",
                    AlarmState.UNACK_ACTIVE, True, last_value=112.0, state_since_ms=now, activated_ms=now),
        AlarmRecord("T101.level:low", "T101.level", "low", 3, "Tank low", "Tank farm", AlarmState.ACK_ACTIVE,
                    True, last_value=0.7, state_since_ms=now - 60_000, activated_ms=now - 60_000),
    ]

    async def store():
        pipe = tag_feeder.redis.pipeline()
        queue_record_writes(pipe, records, [])
        await pipe.execute()

    tag_feeder.call(store())
    expect(page.locator('.sl-alarm-count[data-sl-priority="1"]')).to_have_attribute("data-count", "1", timeout=LIVE_S)
    expect(page.locator('.sl-alarm-count[data-sl-priority="3"]')).to_have_attribute("data-count", "0")
    expect(page.locator("#sl-newest-alarm")).to_have_text("Reactor too hot (UNACK ACTIVE)")
    expect(field(page, "R201.temperature", "alarm").locator(".sl-prio-1.sl-unack")).to_have_count(1)
    page.click("#sl-alarm-summary")
    expect(page).to_have_url(re.compile(r"/alarms$"))
    unacked = page.locator('.ag-row[row-id="R201.temperature:high_high"]').first
    expect(unacked).to_have_class(re.compile(r"sl-alarm-unack"), timeout=LIVE_S)
    expect(unacked).to_contain_text("UNACK ACTIVE")
    expect(unacked.locator(".sl-prio-1")).to_have_text("1")
    acked = page.locator('.ag-row[row-id="T101.level:low"]').first
    expect(acked).to_contain_text("ACK ACTIVE")
    expect(acked).not_to_have_class(re.compile(r"sl-alarm-unack"))


def answer_writes(feeder, source: str, stop: threading.Event) -> threading.Thread:
    """A stand-in data source: answers each write request on the source's stream as confirmed."""
    def run():
        answered = set()
        while not stop.is_set():
            for _id, fields in feeder.call(feeder.redis.xrange(keys.write_requests(source))):
                request = json.loads(fields[b"r"])
                if request["request_id"] not in answered:
                    answered.add(request["request_id"])
                    feeder.call(answer_write(feeder.redis, WriteOutcome(
                        request["request_id"], request["tag"], WriteStatus.DONE, "written and confirmed",
                        readback=request["value"])))
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def opc_data_source(source_heartbeats):
    stop = threading.Event()
    thread = answer_writes(source_heartbeats, "plant_opcua", stop)
    yield source_heartbeats
    stop.set()
    thread.join(5)


def test_setpoint_entry_refuses_bad_values_and_confirms_old_to_new(login, opc_data_source):
    opc_data_source.put("R201.temperature_setpoint", 60.0)
    page = login("operator", "/tag/R201.temperature_setpoint")
    expect(field(page, "R201.temperature_setpoint", "value")).to_have_text("60.0", timeout=LIVE_S)
    entry, status = page.locator(".sl-setpoint-row input"), page.locator(".sl-write-status")
    entry.fill("200")
    page.click("text=Write…")
    expect(status).to_have_text("REFUSED: 200 is outside the operator limits 20 .. 95 degC")
    for typed in ("nan", "inf", "-inf"):
        entry.fill(typed)
        page.click("text=Write…")
        expect(status).to_contain_text("REFUSED: the value must be a finite number")
    entry.fill("70")
    page.click("text=Write…")
    expect(page.locator(".sl-confirm-question")).to_have_text("R201.temperature_setpoint: 60.0 degC -> 70.0 degC")
    # Old and new drawn on the range (0 .. 150): the value now, and the proposed one as a ghost marker.
    expect(page.locator(".sl-confirm-preview .sl-limitbar-ghost")).to_have_attribute("data-value", "70")
    assert page.locator(".sl-confirm-preview .sl-limitbar-ghost").get_attribute("style").startswith("left: 46.67%")
    expect(page.locator(".sl-confirm-preview .sl-proposal-old")).to_have_attribute("title", "now 60.0 degC")
    page.click(".sl-confirm button:has-text('Cancel')")
    expect(status).to_have_text("Cancelled: nothing was sent.")
    expect(page.locator(".sl-confirm")).to_be_hidden()
    # The page holds only the server's nonce: a confirmed write goes out with its reason, and is confirmed.
    entry.fill("65")
    page.click("text=Write…")
    page.fill(".sl-write-reason input", "warmer batch")
    page.click(".sl-confirm button:has-text('Confirm')")
    expect(status).to_have_text("DONE: R201.temperature_setpoint = 65.0 degC (CONFIRMED by readback)",
                                timeout=LIVE_S)
    expect(status.locator(".sl-write-result")).to_have_attribute("data-state", "done")
    request = json.loads(opc_data_source.call(opc_data_source.redis.xrange(
        keys.write_requests("plant_opcua")))[-1][1][b"r"])
    assert (request["tag"], request["value"], request["user"], request["reason"]) == (
        "R201.temperature_setpoint", 65.0, "operator", "warmer batch")


def test_a_reason_is_asked_for_where_required_and_refused_without(login, source_heartbeats):
    source_heartbeats.put("Packaging.Filler1.Speed_setpoint", 300.0)
    page = login("operator", "/tag/Packaging.Filler1.Speed_setpoint")
    expect(page.get_by_text("Each write of this tag needs a reason.")).to_be_visible()
    expect(field(page, "Packaging.Filler1.Speed_setpoint", "value")).to_have_text(re.compile("300"), timeout=LIVE_S)
    page.locator(".sl-setpoint-row input").fill("350")
    page.click("text=Write…")
    expect(page.locator(".sl-write-reason input")).to_have_attribute("placeholder", "Reason (required)")
    page.click(".sl-confirm button:has-text('Confirm')")
    expect(page.locator(".sl-write-status")).to_have_text(
        "REFUSED: a reason is required to write Packaging.Filler1.Speed_setpoint", timeout=LIVE_S)
    assert source_heartbeats.call(source_heartbeats.redis.xlen(keys.write_requests("packaging_sparkplug"))) == 0


def test_a_process_value_shows_the_live_marker_of_its_setpoint(login, source_heartbeats):
    source_heartbeats.put("R201.temperature", 70.0)
    source_heartbeats.put("R201.temperature_setpoint", 75.0)
    page = login("operator", "/tag/R201.temperature")
    marker = page.locator(".sl-faceplate-main .sl-limitbar-setpoint")
    expect(marker).to_have_attribute("data-sl-tag", "R201.temperature_setpoint")
    expect(marker).to_be_visible(timeout=LIVE_S)
    expect(marker).to_have_attribute("style", re.compile(r"left: 50%"))  # 75 on 0 .. 150
    source_heartbeats.put("R201.temperature_setpoint", 90.0)
    expect(marker).to_have_attribute("style", re.compile(r"left: 60%"), timeout=LIVE_S)


def test_a_viewer_gets_no_setpoint_controls(login):
    page = login("viewer", "/tag/R201.temperature_setpoint")
    expect(page.locator(".sl-page-title")).to_have_text("R201.temperature_setpoint")
    expect(page.get_by_text("Changing this value needs the operator role.")).to_be_visible()
    expect(page.locator(".sl-setpoint")).to_have_count(0)


def test_trend_draws_history_and_extends_it_live(login, source_heartbeats):
    for value in (1.0, 1.5, 2.0):
        source_heartbeats.put("T101.level", value)
    page = login("operator", "/trend?tags=T101.level&window=5")
    points = "() => { const gd = document.querySelector('.sl-trend-graph .js-plotly-plot');" \
             " return gd && gd.data && gd.data.length ? gd.data[0].y.slice() : null; }"
    page.wait_for_function(f"({points})() && ({points})().length >= 3", timeout=LIVE_S)
    source_heartbeats.put("T101.level", 4.25)
    page.wait_for_function(f"({points})().includes(4.25)", timeout=LIVE_S)
    source_heartbeats.put("T101.level", 3.0, quality=BAD_NO_COMMUNICATION)
    page.wait_for_function(f"({points})().slice(-1)[0] === null", timeout=LIVE_S)  # a Bad sample is a gap
    assert page.evaluate(points)[:3] == [1.0, 1.5, 2.0]
    assert page.url.endswith("/trend?tags=T101.level&range=5m")  # the old ?window=5 address, as written now


@pytest.mark.parametrize("width_px", [1366, 1024])
def test_the_banner_keeps_the_alarm_counts_clear_of_the_other_controls_on_a_narrow_screen(login, width_px):
    page = login("operator", "/audit")  # the audit page's banner has every control an operator gets
    page.set_viewport_size({"width": width_px, "height": 800})
    expect(page.locator("#sl-tone")).to_be_visible()
    counts = page.locator(".sl-alarm-count")
    expect(counts).to_have_count(4)
    boxes = {"counts": [counts.nth(i).bounding_box() for i in range(4)]}
    for name in ("#sl-tone", "#sl-conn", ".sl-user", ".sl-nav"):
        boxes[name] = page.locator(name).bounding_box()

    def overlap(a, b) -> bool:
        return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
                and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])

    for count in boxes["counts"]:
        assert count["x"] >= 0 and count["x"] + count["width"] <= width_px
        for name in ("#sl-tone", "#sl-conn", ".sl-user", ".sl-nav"):
            assert not overlap(count, boxes[name]), (name, count, boxes[name])
    summary = page.locator("#sl-alarm-summary").bounding_box()
    last = boxes["counts"][-1]
    assert last["x"] + last["width"] <= summary["x"] + summary["width"]  # inside its own box
