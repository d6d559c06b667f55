"""The historian panel of the source diagnostics page in headless Chromium: running, then failing, refreshed."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from historian.heartbeat import HistorianState, HistorianStatus, write_heartbeat

pytestmark = pytest.mark.browser

REFRESH_S = 10_000  # ms Playwright waits; the page refreshes every 2 s


def beat(feeder, **fields) -> None:
    now_ms = int(time.time() * 1000)
    status = HistorianStatus(heartbeat_ms=now_ms, last_flush_ms=now_ms - 1_000, disk_bytes=12_345_678,
                             behind_entries=3, buffered_samples=40, **fields)
    feeder.call(write_heartbeat(feeder.redis, status))


def test_a_viewer_sees_the_historian_running_then_its_disk_failing(login, tag_feeder):
    page = login("viewer", "/sources")
    panel = page.locator(".sl-historian")
    expect(panel).to_have_attribute("data-state", "not_running", timeout=REFRESH_S)
    expect(panel.locator(".sl-historian-text")).to_contain_text("No historian has run")

    beat(tag_feeder)
    expect(panel).to_have_attribute("data-state", "running", timeout=REFRESH_S)
    expect(panel.locator('[data-figure="disk"] td')).to_have_text("12.3 MB")
    expect(panel.locator('[data-figure="dropped"]')).to_have_attribute("data-marked", "0")
    expect(panel.locator('[data-figure="last_write"] td')).to_contain_text("s ago")

    beat(tag_feeder, state=HistorianState.DISK_FAILING, dropped_samples=250,
         last_error="disk: cannot write to /data: [Errno 30] Read-only file system")
    expect(panel).to_have_attribute("data-state", "disk_failing", timeout=REFRESH_S)  # without a reload
    expect(panel.locator(".sl-historian-text")).to_contain_text("History is not being written to disk since")
    expect(panel.locator('[data-figure="dropped"] td')).to_have_text("! 250")
    expect(panel.locator('[data-figure="dropped"] .sl-historian-marked')).to_have_count(1)
    expect(panel.locator('[data-figure="last_error"] td')).to_contain_text("Read-only file system")
    expect(panel.locator('[data-figure="state"] td')).to_have_text("! disk failing")
