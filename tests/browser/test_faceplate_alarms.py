"""A tag's alarms on its faceplate, live, with the real alarm engine: an engineer takes an alarm in
the normal state out of service ahead of time and returns it; an operator shelves an active alarm."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tag_store import keys
from tests.browser.alarm_engine_fixture import alarm_engine  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser
LIVE_MS = 15_000
FACEPLATE = "/tag/T101.level"


def alarm_row(page, alarm_id: str):
    return page.locator(f'#fp-alarms tr[data-alarm-id="{alarm_id}"]')


def action(page, alarm_id: str, name: str):
    return alarm_row(page, alarm_id).locator(f'button[data-action="{name}"]')


def journal(feeder, transition: str) -> list[dict]:
    entries = feeder.call(feeder.redis.xrange(keys.ALARM_JOURNAL))
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries
            if f[b"transition"] == transition.encode()]


def test_an_engineer_takes_a_normal_alarm_out_of_service_from_the_faceplate_and_returns_it(
        alarm_engine, login, source_heartbeats):  # noqa: F811 - the fixture
    feeder = source_heartbeats
    feeder.put("T101.level", 2.5)  # inside every limit: all the tank's alarms are normal
    page = login("engineer", FACEPLATE)
    low = alarm_row(page, "T101.level:low")
    expect(low.locator(".sl-fp-alarm-state")).to_have_text("NORMAL", timeout=LIVE_MS)
    expect(low.locator(".sl-fp-alarm-condition")).to_have_text("CLEAR")
    # Every alarm of the tag, the implicit bad-quality one included, in the usual order.
    expect(page.locator("#fp-alarms tr[data-alarm-id]")).to_have_count(5)
    assert page.locator("#fp-alarms tr[data-alarm-id]").evaluate_all("rows => rows.map(r => r.dataset.alarmId)") == [
        "T101.level:high_high", "T101.level:high", "T101.level:low", "T101.level:low_low", "T101.level:bad_quality"]

    page.fill("#fp-alarm-comment", "LT-101 out for calibration tomorrow")
    action(page, "T101.level:low", "remove_from_service").click()
    expect(page.locator("#fp-alarm-result")).to_have_text("Took 1 alarm out of service.", timeout=LIVE_MS)
    expect(low.locator(".sl-fp-alarm-state")).to_have_text("OUT OF SERVICE", timeout=LIVE_MS)
    expect(low.locator(".sl-fp-alarm-details")).to_contain_text(
        "Out of service by engineer: LT-101 out for calibration")
    expect(page.locator("#fp-alarm-comment")).to_have_value("")
    expect(action(page, "T101.level:low", "remove_from_service")).to_have_count(0)
    (entry,) = journal(feeder, "T15")
    assert (entry["alarm_id"], entry["from_state"], entry["to_state"], entry["user"]) == (
        "T101.level:low", "A", "G", "engineer")

    page.get_by_role("link", name="Alarms", exact=True).click()
    page.click("#alarm-tab-out_of_service")
    listed = page.locator('#alarm-oos-grid .ag-center-cols-container .ag-row[row-id="T101.level:low"]')
    expect(listed).to_contain_text("LT-101 out for calibration tomorrow", timeout=LIVE_MS)
    expect(listed).to_contain_text("engineer")

    page.go_back()
    expect(low.locator(".sl-fp-alarm-state")).to_have_text("OUT OF SERVICE", timeout=LIVE_MS)
    action(page, "T101.level:low", "return_to_service").click()
    expect(page.locator("#fp-alarm-result")).to_have_text("Returned 1 alarm to service.", timeout=LIVE_MS)
    expect(low.locator(".sl-fp-alarm-state")).to_have_text("NORMAL", timeout=LIVE_MS)
    expect(low.locator(".sl-fp-alarm-details")).to_have_text("")
    assert [(e["from_state"], e["to_state"]) for e in journal(feeder, "T15")] == [("A", "G"), ("G", "A")]


def test_an_operator_shelves_an_active_alarm_from_the_faceplate(alarm_engine, login,  # noqa: F811 - the fixture
                                                                 source_heartbeats):
    feeder = source_heartbeats
    feeder.put("T101.level", 2.5)
    page = login("operator", FACEPLATE)
    high = alarm_row(page, "T101.level:high")
    expect(high.locator(".sl-fp-alarm-state")).to_have_text("NORMAL", timeout=LIVE_MS)
    feeder.put("T101.level", 4.5)  # above high (4.3, priority 2), below high-high (4.7)
    # Live: the faceplate follows the engine without a reload.
    expect(high.locator(".sl-fp-alarm-state")).to_have_text("UNACK ACTIVE", timeout=LIVE_MS)
    expect(high.locator(".sl-fp-alarm-condition")).to_have_text("ACTIVE")
    expect(high.locator(".sl-prio.sl-unack")).to_have_count(1)
    expect(alarm_row(page, "T101.level:high_high").locator(".sl-fp-alarm-state")).to_have_text("NORMAL")
    # An operator may not take it out of service: the button says why.
    out_of_service = action(page, "T101.level:high", "remove_from_service")
    expect(out_of_service).to_be_disabled()
    expect(out_of_service).to_have_attribute("title", "Remove from service needs the engineer role")
    expect(page.locator("#fp-alarms .sl-role-hints")).to_contain_text("needs the engineer role")

    action(page, "T101.level:high", "shelve").click()  # no comment: the engine refuses, and says why
    expect(page.locator("#fp-alarm-result")).to_have_text(
        re.compile(r"^REFUSED T101\.level:high: .*needs a comment"), timeout=LIVE_MS)

    page.fill("#fp-alarm-comment", "level switch LS-101 being replaced")
    page.click("#fp-alarm-shelve-duration")
    page.get_by_role("option", name="15 min", exact=True).click()
    action(page, "T101.level:high", "shelve").click()
    expect(page.locator("#fp-alarm-result")).to_have_text("Shelved 1 alarm.", timeout=LIVE_MS)
    expect(high.locator(".sl-fp-alarm-state")).to_have_text("SHELVED", timeout=LIVE_MS)
    expect(high.locator(".sl-fp-alarm-condition")).to_have_text("ACTIVE")  # still followed while shelved
    details = high.locator(".sl-fp-alarm-details")
    expect(details).to_contain_text("Shelved by operator until")
    expect(details).to_contain_text("level switch LS-101 being replaced")
    expect(page.locator('.sl-alarm-count[data-sl-priority="2"]')).to_have_attribute("data-count", "0")
    (entry,) = journal(feeder, "T12")
    assert (entry["alarm_id"], entry["user"], entry["comment"]) == (
        "T101.level:high", "operator", "level switch LS-101 being replaced")

    action(page, "T101.level:high", "unshelve").click()
    expect(page.locator("#fp-alarm-result")).to_have_text("Unshelved 1 alarm.", timeout=LIVE_MS)
    expect(high.locator(".sl-fp-alarm-state")).to_have_text("UNACK ACTIVE", timeout=LIVE_MS)
    action(page, "T101.level:high", "acknowledge").click()
    expect(high.locator(".sl-fp-alarm-state")).to_have_text("ACK ACTIVE", timeout=LIVE_MS)
    expect(high.locator(".sl-fp-alarm-details")).to_contain_text("Acknowledged by operator at")
