"""Tags a data source discovers at run time, in Chromium: they appear while the page is open, live, with a faceplate."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from domain.config_model import Tag
from tag_store.tag_catalog import publish_discovered_tags

pytestmark = pytest.mark.browser

LIVE_S = 10_000  # ms Playwright waits for a live update (the directory polls the catalog once a second)


def field(page, tag: str, name: str):
    return page.locator(f'[data-sl-tag="{tag}"][data-sl-field="{name}"]').first


def discovered(name: str, **fields) -> Tag:
    return Tag(name=name, source="utility_mqtt", topic=f"plant/{name}", **fields)


def test_a_tag_discovered_while_the_overview_is_open_appears_live_and_opens_its_faceplate(
        logged_in_page, source_heartbeats):
    page, feeder = logged_in_page, source_heartbeats
    expect(page.locator("#overview-discovered")).to_be_hidden()
    feeder.put("T101.level", 2.5)
    expect(field(page, "T101.level", "value")).to_have_text("2.50", timeout=LIVE_S)

    feeder.call(publish_discovered_tags(feeder.redis, [
        discovered("Z9.temperature", unit="degC", description="Found under plant/+/temperature"),
        discovered("Z9.humidity", unit="%", area="Warehouse"),
    ]))
    feeder.put("Z9.temperature", 21.5)
    block = page.locator("#overview-discovered")
    expect(block).to_be_visible(timeout=LIVE_S)
    expect(page.locator("#overview-discovered-summary")).to_have_text("2 discovered tags.")
    expect(block.locator(".sl-section-title", has_text="from utility_mqtt")).to_be_visible()
    expect(block.locator(".sl-section-title", has_text="Warehouse")).to_be_visible()
    expect(field(page, "Z9.temperature", "value")).to_have_text("21.5", timeout=LIVE_S)
    expect(field(page, "Z9.temperature", "status")).to_have_text("Good")
    expect(field(page, "Z9.humidity", "status")).to_have_text("NO DATA")
    expect(block.locator('[data-sl-tag="Z9.temperature"] .sl-discovered-mark')).to_be_visible()
    feeder.put("Z9.temperature", 23.5)
    expect(field(page, "Z9.temperature", "value")).to_have_text("23.5", timeout=LIVE_S)

    page.fill("#overview-discovered-filter", "humid")
    expect(field(page, "Z9.temperature", "value")).to_have_count(0, timeout=LIVE_S)
    expect(page.locator("#overview-discovered-summary")).to_have_text(
        "Showing 1 of 1 matching (2 discovered tags).")
    page.fill("#overview-discovered-filter", "")
    page.locator("a.sl-tag-link", has_text="Z9.temperature").click()

    expect(page.locator(".sl-page-title")).to_contain_text("Z9.temperature", timeout=LIVE_S)
    expect(page.locator(".sl-page-title .sl-discovered-badge")).to_be_visible()
    expect(page.locator(".sl-page-subtitle")).to_have_text("Found under plant/+/temperature")
    expect(field(page, "Z9.temperature", "value")).to_have_text("23.5", timeout=LIVE_S)
    expect(page.get_by_text("utility_mqtt (mqtt), discovered at run time")).to_be_visible()
    expect(page.get_by_text("plant/Z9.temperature")).to_be_visible()


def test_a_discovered_tag_is_trended_and_found_by_the_pen_picker(login, source_heartbeats):
    feeder = source_heartbeats
    feeder.call(publish_discovered_tags(feeder.redis, [discovered("Z9.temperature", unit="degC")]))
    for value in (20.0, 20.5, 21.0):
        feeder.put("Z9.temperature", value)
    page = login("operator", "/trend?tags=Z9.temperature&window=5")
    points = "() => { const gd = document.querySelector('.sl-trend-graph .js-plotly-plot');" \
             " return gd && gd.data && gd.data.length ? gd.data[0].y.slice() : null; }"
    page.wait_for_function(f"({points})() && ({points})().length >= 3", timeout=LIVE_S)
    assert page.evaluate(points)[:3] == [20.0, 20.5, 21.0]

    feeder.call(publish_discovered_tags(feeder.redis, [discovered("Z9.pressure", unit="bar")]))
    feeder.put("Z9.pressure", 1.25)
    page.wait_for_timeout(1500)  # the directory polls the catalog once a second
    page.locator("#trend-pens").click()
    page.locator("input.dash-dropdown-search").fill("Z9.pres")
    page.get_by_role("option", name="Z9.pressure").click()
    page.wait_for_function(
        "() => { const gd = document.querySelector('.sl-trend-graph .js-plotly-plot');"
        " return gd && gd.data && gd.data.length === 2 && gd.data[1].y.includes(1.25); }", timeout=LIVE_S)
    page.wait_for_function("() => window.location.search === '?tags=Z9.temperature,Z9.pressure&range=5m'",
                           timeout=LIVE_S)
