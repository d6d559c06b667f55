"""An alarm system that silently stopped is the worst failure an HMI can have: without an alarm
engine every page says so, the notice goes when the real engine runs and comes back when it stops."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.alarm_engine_fixture import AlarmEngineProcess
from tests.browser.web_app_process import login_session

pytestmark = pytest.mark.browser
LIVE_MS = 15_000
NEVER = "ALARM ENGINE NOT RUNNING (no heartbeat ever): alarms are not being evaluated"
STOPPED = re.compile(r"^ALARM ENGINE NOT RUNNING \(no heartbeat for (\d+) s\): alarms are not being evaluated$")


@pytest.fixture
def engine(redis_server):
    process = AlarmEngineProcess(redis_server.url)
    yield process
    process.stop()


def banner_notice(page):
    return page.locator('[data-sl-engine-notice="banner"]')


def seconds_without_heartbeat(page) -> int:
    return int(STOPPED.match(banner_notice(page).inner_text()).group(1))


def test_the_banner_says_when_the_alarm_engine_is_not_running(engine, login, web_app, demo_users,
                                                               source_heartbeats):
    page = login("operator", "/")
    notice = banner_notice(page)
    expect(notice).to_have_attribute("data-state", "not_running", timeout=LIVE_MS)
    expect(notice).to_be_visible()
    expect(notice).to_have_text(NEVER)
    expect(page.locator("body")).to_have_class(re.compile(r"\bsl-engine-down\b"))
    page.get_by_role("link", name="Alarms", exact=True).click()
    expect(page.locator('[data-sl-engine-notice="page"]')).to_have_text(NEVER)  # above the alarm lists too
    api = login_session(web_app.url, demo_users["viewer"].name, demo_users["viewer"].password)
    assert api.get(web_app.url + "/api/alarms", timeout=10).headers["X-Alarm-Engine-State"] == "not_running"

    engine.start()
    expect(notice).to_have_attribute("data-state", "running", timeout=LIVE_MS)
    expect(notice).to_be_hidden()
    expect(page.locator('[data-sl-engine-notice="page"]')).to_be_hidden()
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bsl-engine-down\b"))
    health = api.get(web_app.url + "/api/alarms/engine", timeout=10).json()
    assert health["state"] == "running" and health["running"] and health["heartbeat_age_ms"] < 5_000
    response = api.get(web_app.url + "/api/alarms", timeout=10)
    assert response.headers["X-Alarm-Engine-State"] == "running" and len(response.json()) > 0

    engine.stop()
    stopped_at = time.monotonic()
    expect(notice).to_have_attribute("data-state", "not_running", timeout=10_000)
    assert time.monotonic() - stopped_at < 10.5
    expect(notice).to_be_visible()
    expect(notice).to_have_text(STOPPED)
    first = seconds_without_heartbeat(page)
    assert first >= 4  # judged stopped after 5 s; the browser counts from the last push
    # The age counts on in the browser, without a new alarm view.
    expect(notice).not_to_have_text(re.compile(STOPPED.pattern.replace(r"(\d+)", str(first))), timeout=5_000)
    assert seconds_without_heartbeat(page) > first
    expect(page.locator('[data-sl-engine-notice="page"]')).to_have_text(STOPPED)
    health = api.get(web_app.url + "/api/alarms/engine", timeout=10).json()
    assert health["state"] == "not_running" and health["heartbeat_age_ms"] > 5_000
