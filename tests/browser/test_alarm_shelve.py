"""The alarm summary with the real alarm engine: shelve and unshelve, acknowledge all visible,
out of service, the alarm tone, and the same actions over the JSON API (roles checked by the server)."""
from __future__ import annotations

import json
import os
import re
import time

import pytest
import requests
from playwright.sync_api import expect

from launcher.supervisor import Supervisor
from tag_store import keys
from tests.browser.web_app_process import DEMO_PLANT, REPO_ROOT, login_session

pytestmark = pytest.mark.browser
LIVE_MS = 15_000


@pytest.fixture
def alarm_engine(redis_server):
    supervisor = Supervisor()
    env = dict(os.environ, REDIS_URL=redis_server.url, PYTHONPATH=str(REPO_ROOT))
    supervisor.add("alarm_engine", ["-m", "alarm_engine", "--config", str(DEMO_PLANT)], env)
    yield supervisor
    supervisor.stop_all()


def count(page, priority: int):
    return page.locator(f'.sl-alarm-count[data-sl-priority="{priority}"]')


def grid_row(page, grid_id: str, alarm_id: str):
    return page.locator(f'#{grid_id} .ag-center-cols-container .ag-row[row-id="{alarm_id}"]')


def select_row(page, grid_id: str, alarm_id: str) -> None:
    page.locator(f'#{grid_id} .ag-row[row-id="{alarm_id}"] input[type=checkbox]').first.check()


def journal(feeder, transition: str) -> list[dict]:
    entries = feeder.call(feeder.redis.xrange(keys.ALARM_JOURNAL))
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries
            if f[b"transition"] == transition.encode()]


def engine_records(feeder) -> list[dict]:
    """The engine's records straight from Redis (what the web reads)."""
    raw = feeder.call(feeder.redis.hgetall(keys.ALARMS))
    return [json.loads(v) for v in raw.values()]


def raise_tank_alarms(feeder) -> None:
    feeder.put("T101.level", 2.5)
    feeder.put("T101.level", 4.9)  # above high (4.3, priority 2) and high-high (4.7, priority 1)


def test_an_operator_shelves_an_alarm_with_a_comment_and_unshelves_it(alarm_engine, login, source_heartbeats):
    feeder = source_heartbeats
    page = login("operator", "/alarms")
    raise_tank_alarms(feeder)
    active = grid_row(page, "alarm-grid", "T101.level:high_high")
    expect(active).to_contain_text("UNACK ACTIVE", timeout=LIVE_MS)
    expect(count(page, 1)).to_have_attribute("data-count", "1")

    select_row(page, "alarm-grid", "T101.level:high_high")
    page.fill("#alarm-ack-comment", "level transmitter being recalibrated")
    page.click("#alarm-shelve-duration")
    page.get_by_role("option", name="30 min", exact=True).click()
    shelved_at_ms = int(time.time() * 1000)
    page.click("#alarm-shelve-button")

    expect(page.locator("#alarm-ack-result")).to_have_text("Shelved 1 alarm.", timeout=LIVE_MS)
    expect(active).to_have_count(0, timeout=LIVE_MS)
    # A shelved alarm is not annunciated: not counted in the banner, even unacknowledged.
    expect(count(page, 1)).to_have_attribute("data-count", "0")
    expect(count(page, 2)).to_have_attribute("data-count", "1")
    expect(page.locator("#alarm-tab-shelved")).to_have_text("Shelved (1)")

    page.click("#alarm-tab-shelved")
    shelved = grid_row(page, "alarm-shelved-grid", "T101.level:high_high")
    expect(shelved).to_contain_text("operator")
    expect(shelved).to_contain_text("level transmitter being recalibrated")
    (entry,) = journal(feeder, "T12")
    assert (entry["user"], entry["comment"], entry["to_state"]) == (
        "operator", "level transmitter being recalibrated", "E")
    record = next(r for r in engine_records(feeder) if r["alarm_id"] == "T101.level:high_high")
    assert abs(record["shelved_until_ms"] - (shelved_at_ms + 30 * 60_000)) < 10_000

    select_row(page, "alarm-shelved-grid", "T101.level:high_high")
    page.click("#alarm-unshelve-button")
    expect(page.locator("#alarm-ack-result")).to_have_text("Unshelved 1 alarm.", timeout=LIVE_MS)
    expect(shelved).to_have_count(0, timeout=LIVE_MS)
    page.click("#alarm-tab-active")
    # Still above the limit: back in the list, unacknowledged (T13 re-evaluates to B).
    expect(active).to_contain_text("UNACK ACTIVE", timeout=LIVE_MS)
    expect(count(page, 1)).to_have_attribute("data-count", "1")
    assert [e["user"] for e in journal(feeder, "T13")] == ["operator"]


def test_a_shelve_without_a_comment_is_refused_with_the_engines_reason(alarm_engine, login, source_heartbeats):
    feeder = source_heartbeats
    page = login("operator", "/alarms")
    raise_tank_alarms(feeder)
    expect(grid_row(page, "alarm-grid", "T101.level:high")).to_contain_text("UNACK ACTIVE", timeout=LIVE_MS)
    select_row(page, "alarm-grid", "T101.level:high")
    page.click("#alarm-shelve-button")
    expect(page.locator("#alarm-ack-result")).to_contain_text(
        "REFUSED T101.level:high: shelving T101.level:high needs a comment", timeout=LIVE_MS)
    expect(grid_row(page, "alarm-grid", "T101.level:high")).to_have_count(1)


def test_acknowledge_all_visible_asks_first_and_acknowledges_only_the_filtered_rows(alarm_engine, login,
                                                                                     source_heartbeats):
    feeder = source_heartbeats
    page = login("operator", "/alarms")
    raise_tank_alarms(feeder)
    feeder.put("R201.pressure", 5.0)  # above high (4.5, priority 2), area Reactor
    expect(count(page, 1)).to_have_attribute("data-count", "1", timeout=LIVE_MS)
    expect(count(page, 2)).to_have_attribute("data-count", "2", timeout=LIVE_MS)
    expect(page.locator("#alarm-grid .ag-center-cols-container .ag-row")).to_have_count(3)

    # Only the tank farm's alarms pass the area filter: those are the visible ones.
    page.locator('#alarm-grid .ag-floating-filter[col-id="area"] input').fill("Tank")
    expect(page.locator("#alarm-grid .ag-center-cols-container .ag-row")).to_have_count(2)
    page.click("#alarm-ack-all-button")
    expect(page.locator("#alarm-ack-all-question")).to_have_text(
        "Acknowledge all 2 unacknowledged alarms (of the 2 visible)?")
    expect(count(page, 1)).to_have_attribute("data-count", "1")  # nothing happens before the confirmation
    page.click("#alarm-ack-all-yes")

    expect(page.locator("#alarm-ack-result")).to_have_text("Acknowledged 2 alarms.", timeout=LIVE_MS)
    expect(count(page, 1)).to_have_attribute("data-count", "0", timeout=LIVE_MS)
    expect(count(page, 2)).to_have_attribute("data-count", "1")  # the reactor's alarm was not visible
    expect(page.locator("#alarm-ack-all-confirm")).to_be_hidden()
    assert sorted(e["alarm_id"] for e in journal(feeder, "T2")) == ["T101.level:high", "T101.level:high_high"]


def test_an_engineer_takes_an_alarm_out_of_service_and_returns_it(alarm_engine, login, source_heartbeats):
    feeder = source_heartbeats
    page = login("engineer", "/alarms")
    raise_tank_alarms(feeder)
    active = grid_row(page, "alarm-grid", "T101.level:high")
    expect(active).to_contain_text("UNACK ACTIVE", timeout=LIVE_MS)
    select_row(page, "alarm-grid", "T101.level:high")
    page.fill("#alarm-ack-comment", "transmitter LT-101 removed for repair")
    page.click("#alarm-oos-button")
    expect(page.locator("#alarm-ack-result")).to_have_text("Took 1 alarm out of service.", timeout=LIVE_MS)
    expect(active).to_have_count(0, timeout=LIVE_MS)
    expect(count(page, 2)).to_have_attribute("data-count", "0")

    page.click("#alarm-tab-out_of_service")
    row = grid_row(page, "alarm-oos-grid", "T101.level:high")
    expect(row).to_contain_text("engineer")
    expect(row).to_contain_text("transmitter LT-101 removed for repair")
    select_row(page, "alarm-oos-grid", "T101.level:high")
    page.click("#alarm-return-button")
    expect(page.locator("#alarm-ack-result")).to_have_text("Returned 1 alarm to service.", timeout=LIVE_MS)
    expect(count(page, 2)).to_have_attribute("data-count", "1", timeout=LIVE_MS)


def animation(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).animationName")


def test_a_latched_alarm_flashes_until_acknowledged_and_is_reset_from_its_row(alarm_engine, login,
                                                                              source_heartbeats):
    feeder = source_heartbeats
    page = login("operator", "/alarms")
    feeder.put("R201.agitator_running", True)
    feeder.put("R201.agitator_running", False)  # stopped: a latching discrete alarm, priority 2
    row = grid_row(page, "alarm-grid", "R201.agitator_running:discrete")
    expect(row).to_contain_text("UNACK ACTIVE", timeout=LIVE_MS)
    feeder.put("R201.agitator_running", True)  # running again: the alarm stays, latched (T4)
    expect(row).to_contain_text("LATCHED UNACK", timeout=LIVE_MS)
    expect(count(page, 2)).to_have_attribute("data-count", "1")
    expect(row).to_have_class(re.compile(r"sl-alarm-unack"))
    assert animation(row.locator(".sl-prio")) == "sl-flash"
    expect(row.get_by_role("button", name="Reset")).to_have_count(0)  # acknowledge first

    page.emulate_media(reduced_motion="reduce")  # no flashing, a steady bar instead
    assert animation(row.locator(".sl-prio")) == "none" and animation(row) == "none"
    assert "inset" in row.evaluate("el => getComputedStyle(el).boxShadow")
    page.emulate_media(reduced_motion="no-preference")

    select_row(page, "alarm-grid", "R201.agitator_running:discrete")
    page.click("#alarm-ack-button")
    expect(row).to_contain_text("LATCHED (RESET)", timeout=LIVE_MS)
    expect(row).not_to_have_class(re.compile(r"sl-alarm-unack"))
    assert animation(row.locator(".sl-prio")) == "none"  # steady once acknowledged
    expect(count(page, 2)).to_have_attribute("data-count", "0")

    row.get_by_role("button", name="Reset").click()
    expect(page.locator("#alarm-ack-result")).to_have_text("Reset 1 alarm.", timeout=LIVE_MS)
    expect(row).to_have_count(0, timeout=LIVE_MS)
    assert [(e["from_state"], e["to_state"], e["user"]) for e in journal(feeder, "T11")] == [
        ("LA", "A", "operator")]


def test_an_alarm_suppressed_by_design_is_listed_apart_and_not_counted(alarm_engine, login, source_heartbeats):
    feeder = source_heartbeats
    page = login("operator", "/alarms")
    feeder.put("C401.running", False)  # a stopped compressor: its low discharge pressure is expected
    feeder.put("C401.discharge_pressure", 1.0)
    expect(page.locator("#alarm-tab-suppressed")).to_have_text("Suppressed by design (1)", timeout=LIVE_MS)
    page.click("#alarm-tab-suppressed")
    row = grid_row(page, "alarm-suppressed-grid", "C401.discharge_pressure:low")
    expect(row).to_contain_text("C401.discharge_pressure L (<= 4 bar)")
    expect(row).to_contain_text("Utilities")
    expect(count(page, 3)).to_have_attribute("data-count", "0")
    expect(page.locator("#alarm-tab-active")).to_have_text("Active alarms (0)")


def test_a_viewer_sees_the_actions_disabled_with_the_reason(alarm_engine, login, source_heartbeats):
    page = login("viewer", "/alarms")
    for button in ("#alarm-ack-button", "#alarm-ack-all-button", "#alarm-shelve-button", "#alarm-oos-button"):
        expect(page.locator(button)).to_be_disabled()
    expect(page.locator(".sl-role-hints")).to_contain_text("need the operator role")
    expect(page.locator(".sl-role-hints")).to_contain_text("needs the engineer role")
    operator = login("operator", "/alarms")
    expect(operator.locator("#alarm-shelve-button")).to_be_enabled()
    expect(operator.locator("#alarm-oos-button")).to_be_disabled()
    expect(operator.locator("#alarm-oos-button")).to_have_attribute("title", re.compile("engineer role"))


def tone(page) -> dict:
    return page.evaluate("window.stacklightTone.status()")


# Headless Chromium allows audio without a gesture; this stand-in behaves like a desktop browser
# (suspended until resumed in a gesture) and records the notes started, as [wave, frequency].
DESKTOP_AUDIO = """
window.slNotes = [];
window.AudioContext = class {
  constructor() { this.state = 'suspended'; this.currentTime = 0; this.destination = {}; }
  resume() { this.state = 'running'; return Promise.resolve(); }
  createGain() { return {gain: {setValueAtTime() {}, linearRampToValueAtTime() {}}, connect() {}}; }
  createOscillator() {
    const osc = {type: 'sine', frequency: {value: 0}, connect() {}, stop() {},
                 start() { window.slNotes.push([osc.type, osc.frequency.value]); }};
    return osc;
  }
};
"""


def notes(page) -> list:
    return page.evaluate("window.slNotes.splice(0)")


def test_the_alarm_tone_arms_on_a_click_silences_and_sounds_again_for_a_new_alarm(alarm_engine, login,
                                                                                   source_heartbeats):
    feeder = source_heartbeats
    logged_in = login("operator", "/")
    logged_in.context.add_init_script(DESKTOP_AUDIO)
    page = logged_in.context.new_page()
    page.goto(logged_in.url)
    expect(page.locator("#sl-tone-state")).to_have_text("Sound off (click to enable)")
    raise_tank_alarms(feeder)
    expect(count(page, 1)).to_have_attribute("data-count", "1", timeout=LIVE_MS)
    assert tone(page)["sounding"] == 1 and notes(page) == []  # not armed: nothing played

    page.click("main", position={"x": 2, "y": 2})  # any click arms the sound
    expect(page.locator("#sl-tone")).to_have_attribute("data-state", "sounding")
    expect(page.locator("#sl-tone-state")).to_have_text("Sounding: priority 1")
    page.wait_for_function("window.slNotes.length >= 3")
    assert notes(page)[:3] == [["square", 988]] * 3  # priority 1: three short high beeps

    page.click("#sl-tone-silence")
    expect(page.locator("#sl-tone")).to_have_attribute("data-state", "quiet")
    notes(page)
    feeder.put("R201.pressure", 5.0)  # a new alarm (priority 2) sounds again
    expect(page.locator("#sl-tone-state")).to_have_text("Sounding: priority 2", timeout=LIVE_MS)
    page.wait_for_function("window.slNotes.length >= 2")
    assert notes(page)[:2] == [["triangle", 784], ["triangle", 587]]  # priority 2: a falling two-tone

    page.click("#sl-tone-mute")
    expect(page.locator("#sl-tone")).to_have_attribute("data-state", "muted")
    page.reload()
    page.wait_for_selector("#sl-tone")
    page.click("main", position={"x": 2, "y": 2})
    expect(page.locator("#sl-tone")).to_have_attribute("data-state", "muted")  # remembered by the browser
    expect(page.locator("#sl-tone-mute")).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(3500)  # longer than the priority 2 repeat
    assert notes(page) == []
    # Unmuted after the reload: the silenced priority 1 alarm stays quiet, the newer priority 2 one sounds.
    page.click("#sl-tone-mute")
    expect(page.locator("#sl-tone-state")).to_have_text("Sounding: priority 2")


# ---- the JSON API --------------------------------------------------------------------------


def api_record(session: requests.Session, base: str, alarm_id: str) -> dict:
    return next(a for a in session.get(base + "/api/alarms", timeout=10).json() if a["alarm_id"] == alarm_id)


def test_the_alarm_api_checks_the_role_on_the_server_and_reports_the_engines_answer(alarm_engine, web_app,
                                                                                     demo_users, source_heartbeats):
    feeder = source_heartbeats
    raise_tank_alarms(feeder)
    base = web_app.url
    assert requests.get(base + "/api/alarms", timeout=10).status_code == 401  # logged out
    assert requests.post(base + "/api/alarms/T101.level:high/acknowledge", json={}, timeout=10).status_code == 401

    viewer = login_session(base, demo_users["viewer"].name, demo_users["viewer"].password)
    operator = login_session(base, demo_users["operator"].name, demo_users["operator"].password)
    engineer = login_session(base, demo_users["engineer"].name, demo_users["engineer"].password)
    deadline = time.monotonic() + LIVE_MS / 1000
    while not any(a["alarm_id"] == "T101.level:high" and a["state"] == "B" for a in viewer.get(
            base + "/api/alarms", timeout=10).json()):
        assert time.monotonic() < deadline, "the engine never raised T101.level:high"
        time.sleep(0.2)

    forged = viewer.post(base + "/api/alarms/T101.level:high/shelve",
                         json={"comment": "forged", "duration_s": 600}, timeout=10)
    assert forged.status_code == 403 and "your role (viewer) may not" in forged.json()["reason"]
    assert feeder.call(feeder.redis.xlen(keys.ALARM_COMMANDS)) == 0
    no_csrf = requests.post(base + "/api/alarms/T101.level:high/acknowledge", cookies=operator.cookies, json={},
                            timeout=10)
    assert no_csrf.status_code == 403
    assert operator.post(base + "/api/alarms/T101.level:high/explode", json={}, timeout=10).status_code == 404
    assert operator.post(base + "/api/alarms/T101.level:high/shelve", json={"comment": "x", "duration_s": "nan"},
                         timeout=10).status_code == 400
    assert operator.post(base + "/api/alarms/T101.level:high/remove_from_service", json={"comment": "x"},
                         timeout=10).status_code == 403
    assert feeder.call(feeder.redis.xlen(keys.ALARM_COMMANDS)) == 0
    # A misspelt alarm is the engine's to refuse, as 404: a script must not take it for done.
    unknown = operator.post(base + "/api/alarms/T101.level:hihg/acknowledge", json={}, timeout=10)
    assert (unknown.status_code, unknown.json()) == (404, {"alarm_id": "T101.level:hihg", "action": "acknowledge",
                                                           "accepted": False,
                                                           "reason": "unknown alarm T101.level:hihg"})

    refused = operator.post(base + "/api/alarms/T101.level:high/shelve", json={"duration_s": 600}, timeout=10)
    assert refused.status_code == 200 and refused.json()["accepted"] is False
    assert "needs a comment" in refused.json()["reason"]
    too_long = operator.post(base + "/api/alarms/T101.level:high/shelve",
                             json={"comment": "pump swap", "duration_s": 9 * 3600}, timeout=10)
    assert too_long.json()["accepted"] is False and "at most 8 h" in too_long.json()["reason"]
    done = operator.post(base + "/api/alarms/T101.level:high/shelve",
                         json={"comment": "pump swap", "one_shot": True}, timeout=10)
    assert done.status_code == 200 and done.json() == {"alarm_id": "T101.level:high", "action": "shelve",
                                                        "accepted": True, "reason": ""}
    record = api_record(operator, base, "T101.level:high")
    assert record["state"] == "E" and record["shelved"]["by"] == "operator" and record["shelved"]["one_shot"]
    assert record["shelved"]["comment"] == "pump swap" and not record["in_alarm_list"]

    taken = engineer.post(base + "/api/alarms/T101.level:high/remove_from_service",
                          json={"comment": "transmitter removed"}, timeout=10)
    assert taken.status_code == 200 and taken.json()["accepted"] is True
    record = api_record(engineer, base, "T101.level:high")
    assert record["state"] == "G" and record["out_of_service"] == {"by": "engineer", "comment": "transmitter removed"}
