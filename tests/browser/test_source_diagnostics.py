"""The source diagnostics page in headless Chromium: state, heartbeat and a lost-data counter marked."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tag_store.source_status import ConnectionState, SourceStatus, publish_status

pytestmark = pytest.mark.browser

REFRESH_S = 10_000  # ms Playwright waits; the page refreshes every 2 s


def publish(feeder, source: str, counters: dict[str, int]) -> None:
    status = SourceStatus(source, ConnectionState.CONNECTED, "", int(time.time() * 1000), counters)
    feeder.call(publish_status(feeder.redis, status))


def test_a_viewer_sees_source_state_and_a_non_zero_overflow_counter_marked(login, source_heartbeats):
    publish(source_heartbeats, "plant_opcua", {"received": 1200, "dropped": 0, "server_queue_overflows": 3})
    page = login("viewer", "/sources")
    expect(page.locator(".sl-nav-link", has_text="Sources")).to_have_attribute("href", "/sources")
    row = page.locator('.sl-source-row[data-source="plant_opcua"]')
    expect(row.locator(".sl-source-state")).to_have_text("connected", timeout=REFRESH_S)
    expect(row).to_have_attribute("data-heartbeat", "fresh")
    expect(row.locator(".sl-source-address")).to_contain_text("opc.tcp://127.0.0.1:")
    overflows = row.locator('[data-counter="server_queue_overflows"]')
    expect(overflows).to_have_text("! server queue overflows 3", timeout=REFRESH_S)
    expect(overflows).to_have_class(re.compile(r"\bsl-counter-loss\b"))
    expect(row.locator('[data-counter="dropped"]')).not_to_have_class(re.compile(r"sl-counter-loss"))
    expect(row.locator('[data-counter="received"]')).to_have_text("received 1200")
    assert page.locator(".sl-counter-loss").evaluate("e => getComputedStyle(e).backgroundColor") != \
        row.locator('[data-counter="received"]').evaluate("e => getComputedStyle(e).backgroundColor")

    publish(source_heartbeats, "plant_opcua", {"server_queue_overflows": 5})  # refreshed without a reload
    expect(overflows).to_have_text("! server queue overflows 5", timeout=REFRESH_S)
