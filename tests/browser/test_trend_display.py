"""The trend page in headless Chromium against a real web app and Redis: pens on their units' axes,
limits and Bad periods drawn, the address following the controls, pause and resume of the live
extension, zoom re-querying the server, and the CSV link of the visible range."""
from __future__ import annotations

import csv
import re
import io
import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from domain.quality import BAD_NO_COMMUNICATION, GOOD
from domain.tag_value import TagValue
from tag_store.writer import TagStoreWriter

pytestmark = pytest.mark.browser

LIVE_S = 10_000
GD = "document.querySelector('.sl-trend-graph .js-plotly-plot')"


def pen(page, tag: str):
    """The pen trace of a tag as the page holds it (x, y, yaxis), or None."""
    return page.evaluate(
        f"(tag) => {{ const gd = {GD}; if (!gd || !gd.data) return null;"
        " const t = gd.data.find(t => t.meta && t.meta.tag === tag && t.meta.role === 'pen');"
        " return t ? {x: Array.from(t.x), y: Array.from(t.y), yaxis: t.yaxis} : null; }", tag)


def wait_for_pen(page, tag: str, condition: str = "true", timeout: int = LIVE_S):
    page.wait_for_function(
        f"() => {{ const gd = {GD}; if (!gd || !gd.data) return false;"
        f" const t = gd.data.find(t => t.meta && t.meta.tag === '{tag}' && t.meta.role === 'pen');"
        f" return !!t && t.y.length > 0 && ({condition}); }}", timeout=timeout)


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def feed_history(feeder, samples: list[TagValue], maxlen: int = 20_000) -> None:
    """Many samples at once, through the tag store writer as a data source writes them."""
    async def write():
        writer = TagStoreWriter(feeder.redis, maxlen)
        for sample in samples:
            writer.submit(sample)
        await writer.drain()

    feeder.call(write())


def test_pens_sit_on_their_units_axes_with_limits_setpoint_and_bad_periods(login, source_heartbeats):
    now = int(time.time() * 1000)
    samples = []
    for i in range(60):  # the last 10 minutes, every 10 s; T101.level Bad for a minute in the middle
        at = now - 600_000 + i * 10_000
        bad = 24 <= i < 30
        samples.append(TagValue("T101.level", 2.0 + i / 100, BAD_NO_COMMUNICATION if bad else GOOD, at, at))
        samples.append(TagValue("R201.temperature", 60.0 + i / 10, GOOD, at, at))
    samples.append(TagValue("R201.temperature_setpoint", 65.0, GOOD, now - 600_000, now - 600_000))
    feed_history(source_heartbeats, samples)

    page = login("operator", "/trend?tags=T101.level,R201.temperature&range=15m")
    wait_for_pen(page, "T101.level")
    wait_for_pen(page, "R201.temperature")
    level, temperature = pen(page, "T101.level"), pen(page, "R201.temperature")
    assert level["yaxis"] != temperature["yaxis"]
    title = "(axis) => {GD}.layout['yaxis' + axis.slice(1)].title.text".replace("{GD}", GD)
    assert page.evaluate(title, level["yaxis"]) == "m"
    assert page.evaluate(title, temperature["yaxis"]) == "degC"
    assert None in level["y"] and 2.0 in level["y"]  # the Bad minute is a gap
    bands = page.evaluate(f"() => {GD}.data.filter(t => t.meta && t.meta.band === 'bad')"
                          ".map(t => ({name: t.name, x: Array.from(t.x)}))")
    assert len(bands) == 1 and bands[0]["name"] == "Bad/no data" and len(bands[0]["x"]) >= 5
    limits = page.evaluate(f"() => {GD}.layout.shapes.map(s => s.label && s.label.text)")
    assert "T101.level HH 4.7" in limits and "R201.temperature H 95" in limits
    setpoint = page.evaluate(f"() => {GD}.data.filter(t => t.meta && t.meta.role === 'setpoint')"
                             ".map(t => ({tag: t.meta.tag, y: Array.from(t.y), yaxis: t.yaxis}))")
    assert setpoint[0]["tag"] == "R201.temperature_setpoint" and 65.0 in setpoint[0]["y"]
    assert setpoint[0]["yaxis"] == temperature["yaxis"]
    expect(page.locator("#trend-message")).to_contain_text("T101.level: Bad or no data in 1 period")

    page.get_by_text("1 h", exact=True).click()
    page.wait_for_function("() => window.location.search.includes('range=1h')", timeout=LIVE_S)
    assert query(page)["tags"] == ["T101.level,R201.temperature"]
    page.get_by_text("Normalised", exact=True).click()
    page.wait_for_function("() => window.location.search.includes('axes=normalised')", timeout=LIVE_S)
    wait_for_pen(page, "T101.level", "t.yaxis === 'y2' && t.customdata && t.customdata.includes(2.0)")
    assert 40.0 in pen(page, "T101.level")["y"]  # 2.0 m of 0..5 m
    source_heartbeats.put("T101.level", 3.0)  # extended live as a percentage, the real value beside it
    wait_for_pen(page, "T101.level", "t.customdata.includes(3.0) && t.y.includes(60)")


def test_pause_stops_the_live_extension_and_resume_jumps_back_to_now(login, source_heartbeats):
    feeder = source_heartbeats
    for value in (1.0, 1.5):
        feeder.put("T101.level", value)
    page = login("operator", "/trend?tags=T101.level&range=5m")
    wait_for_pen(page, "T101.level", "t.y.includes(1.5)")
    feeder.put("T101.level", 2.25)
    wait_for_pen(page, "T101.level", "t.y.includes(2.25)")

    page.click("#trend-pause")
    expect(page.locator("#trend-pause")).to_have_text("Resume", timeout=LIVE_S)
    page.wait_for_function("() => window.location.search.includes('paused=1')", timeout=LIVE_S)
    assert "end" in query(page)
    count = len(pen(page, "T101.level")["x"])
    feeder.put("T101.level", 3.5)
    page.wait_for_timeout(2_500)  # several live pushes and hold ticks
    paused = pen(page, "T101.level")
    assert 3.5 not in paused["y"] and len(paused["x"]) == count

    page.click("#trend-pause")
    expect(page.locator("#trend-pause")).to_have_text("Pause", timeout=LIVE_S)
    wait_for_pen(page, "T101.level", "t.y.includes(3.5)")
    page.wait_for_function("() => window.location.search === '?tags=T101.level&range=5m'", timeout=LIVE_S)
    feeder.put("T101.level", 4.0)
    wait_for_pen(page, "T101.level", "t.y.includes(4.0)")  # extended live again


def test_zoom_requeries_at_full_detail_and_the_csv_link_carries_the_visible_range(login, source_heartbeats):
    now = int(time.time() * 1000)
    # The last hour at one sample every 0.6 s: more than the plot's width can take at once.
    samples = [TagValue("T101.level", 2.0 + (i % 50) / 100, GOOD, now - 3_600_000 + i * 600,
                        now - 3_600_000 + i * 600) for i in range(6_000)]
    feed_history(source_heartbeats, samples)
    page = login("operator", "/trend?tags=T101.level&range=1h")
    wait_for_pen(page, "T101.level", "t.x.length > 1000")
    expect(page.locator("#trend-message")).to_contain_text("samples drawn as")

    offset = page.evaluate(f"() => {GD}.layout.meta.utc_offset_min")
    # Five minutes a few minutes ago (without a historian, Redis's stream is read around its receive times).
    zoom_start, zoom_end = now - 480_000, now - 180_000
    before = pen(page, "T101.level")
    shift = offset * 60_000
    inside_before = sum(1 for x in before["x"] if zoom_start + shift <= x <= zoom_end + shift)
    page.evaluate(
        f"([a, b]) => Plotly.relayout({GD}, {{'xaxis.range[0]': new Date(a).toISOString().replace('T', ' ')"
        ".slice(0, 23), 'xaxis.range[1]': new Date(b).toISOString().replace('T', ' ').slice(0, 23)})",
        [zoom_start + shift, zoom_end + shift])
    page.wait_for_function("() => window.location.search.includes('zoom=')", timeout=LIVE_S)
    wait_for_pen(page, "T101.level", f"t.x[0] >= {zoom_start + shift} && t.x.length >= 490")
    after = pen(page, "T101.level")
    assert len(after["x"]) > inside_before and len(after["x"]) <= 510  # every sample of the 5 minutes
    assert query(page)["paused"] == ["1"]  # zooming paused the live trend
    expect(page.locator("#trend-reset-zoom")).to_be_visible()

    href = page.locator("#trend-csv").get_attribute("href")
    params = parse_qs(urlparse(href).query)
    assert params["tags"] == ["T101.level"]
    assert params["start"][0].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(zoom_start / 1000)))
    assert params["end"][0].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(zoom_end / 1000)))
    body = page.evaluate("(href) => fetch(href, {credentials: 'same-origin'}).then(r => r.text())", href)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["time", "tag", "value", "quality", "quality_name"]
    assert 490 <= len(rows) - 1 <= 510 and {r[1] for r in rows[1:]} == {"T101.level"}

    page.click("#trend-reset-zoom")
    page.wait_for_function("() => !window.location.search.includes('zoom=')", timeout=LIVE_S)
    wait_for_pen(page, "T101.level", "t.x.length > 1000")


def test_a_custom_range_is_checked_kept_in_the_address_and_the_chart_downloads_as_png(login, source_heartbeats):
    source_heartbeats.put("T101.level", 1.25)
    page = login("operator", "/trend?tags=T101.level&range=24h&axes=sideways")
    expect(page.locator("#trend-url-notes")).to_contain_text("Ignored axes='sideways': unit or normalised.")
    wait_for_pen(page, "T101.level")
    # A day is not extended point by point but queried again.
    expect(page.locator("#trend-message")).to_contain_text("Live: queried again every 30 s.")
    assert page.evaluate(f"() => [{GD}.layout.meta.live, {GD}.layout.meta.extend]") == [True, False]
    page.get_by_text("Custom", exact=True).click()
    start, end = page.locator("#trend-custom-start"), page.locator("#trend-custom-end")
    expect(start).to_have_value(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"), timeout=LIVE_S)
    page.wait_for_function("() => window.location.search.includes('range=custom&start=')", timeout=LIVE_S)
    expect(page.locator("#trend-pause")).to_be_disabled()

    start.fill("2026-01-31 09:00")
    end.fill("2026-01-31 08:00")
    page.click("#trend-custom-apply")
    expect(page.locator("#trend-action-message")).to_have_text("The end must be after the start.")
    end.fill("2026-01-31 10:30")
    page.click("#trend-custom-apply")
    expect(page.locator("#trend-action-message")).to_have_text("")
    offset_min = page.evaluate("() => -new Date().getTimezoneOffset()")
    page.wait_for_function(f"() => {GD}.layout.meta.view[1] - {GD}.layout.meta.view[0] === 5400000",
                           timeout=LIVE_S)
    page.wait_for_function("() => window.location.search.includes('range=custom&start=2026-01-31T')",
                           timeout=LIVE_S)
    assert page.evaluate(f"() => {GD}.layout.meta.view[0]") == (
        1_769_850_000_000 - offset_min * 60_000)  # 2026-01-31 09:00 in the browser's zone
    with page.expect_download() as download:
        page.click("#trend-png")
    assert download.value.suggested_filename == "trend-T101.level-20260131-1030.png"
    page.wait_for_function(f"() => {GD}._context.toImageButtonOptions.filename === 'trend-T101.level-20260131-1030'",
                           timeout=LIVE_S)  # the modebar's camera names its file alike
