"""An operator acknowledges a real alarm, decided by the running alarm engine, with a comment."""
from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from launcher.supervisor import Supervisor
from tag_store import keys
from tests.browser.web_app_process import DEMO_PLANT, REPO_ROOT

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


def test_acknowledge_with_a_comment_lowers_the_banner_count(alarm_engine, login, source_heartbeats):
    feeder = source_heartbeats
    page = login("operator", "/alarms")
    feeder.put("T101.level", 2.5)
    feeder.put("T101.level", 4.9)  # above high (4.3) and high-high (4.7)
    expect(count(page, 1)).to_have_attribute("data-count", "1", timeout=LIVE_MS)
    expect(count(page, 2)).to_have_attribute("data-count", "1")

    row = page.locator('.ag-row[row-id="T101.level:high_high"]').first
    expect(row).to_contain_text("UNACK ACTIVE", timeout=LIVE_MS)
    row.locator("input[type=checkbox]").first.check()
    page.fill("#alarm-ack-comment", "operator checked the overflow line")
    page.click("#alarm-ack-button")

    expect(count(page, 1)).to_have_attribute("data-count", "0", timeout=LIVE_MS)
    expect(count(page, 2)).to_have_attribute("data-count", "1")
    expect(row).to_contain_text("ACK ACTIVE")
    expect(row).not_to_have_class(re.compile(r"sl-alarm-unack"))

    entries = feeder.call(feeder.redis.xrange(keys.ALARM_JOURNAL))
    acks = [f for _, f in entries if f[b"transition"] == b"T2"]
    assert [(a[b"alarm_id"], a[b"user"], a[b"comment"]) for a in acks] == [
        (b"T101.level:high_high", b"operator", b"operator checked the overflow line")]
