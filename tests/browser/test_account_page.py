"""The account page in headless Chromium (make a token, see it once, use it, revoke it), and the kiosk view."""
from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.web_app_process import DEMO_PLANT, WebAppProcess
from web.auth import BAD_TOKEN

pytestmark = pytest.mark.browser

LIVE_S = 10_000


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_operator_makes_a_token_sees_it_once_uses_it_and_revokes_it(login, web_app):
    page = login("operator", "/account")
    expect(page.locator("#account-user")).to_have_text("operator", timeout=LIVE_S)
    expect(page.locator("#account-role")).to_have_text("operator")
    expect(page.locator("#account-areas")).to_have_text("all areas")
    expect(page.locator("#account-tokens")).to_contain_text("No API tokens")

    page.fill("#account-token-label", "shift report script")
    page.fill("#account-token-days", "7")
    page.click("#account-token-create")
    expect(page.locator("#account-message")).to_contain_text("shown only once", timeout=LIVE_S)
    token_field = page.locator("#account-new-token")
    expect(token_field).to_have_value(re.compile(r"^slt_[A-Za-z0-9_\-]{43}$"))
    token = token_field.input_value()
    row = page.locator("#account-tokens tbody tr").first
    expect(row).to_contain_text("shift report script")
    expect(row).to_contain_text("never")  # not used yet
    assert token not in page.locator("#account-tokens").inner_text()

    whoami = requests.get(web_app.url + "/api/session", headers=bearer(token), timeout=10)
    assert whoami.json() == {"user": "operator", "role": "operator", "auth": "token"}
    assert requests.get(web_app.url + "/api/tags", headers=bearer(token), timeout=10).status_code == 200

    page.reload()  # shown once: gone after a reload, listed with its last use
    expect(page.locator("#account-tokens tbody tr").first).to_contain_text("shift report script", timeout=LIVE_S)
    expect(page.locator("#account-new-token-panel")).to_be_hidden()
    assert token not in page.content()
    expect(page.locator("#account-tokens tbody tr").first).not_to_contain_text("never")

    page.locator("#account-tokens tbody tr").first.get_by_role("button", name="Revoke").click()
    expect(page.locator("#account-message")).to_contain_text("revoked", timeout=LIVE_S)
    expect(page.locator("#account-tokens")).to_contain_text("No API tokens")
    refused = requests.get(web_app.url + "/api/tags", headers=bearer(token), timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == BAD_TOKEN


def test_a_bad_entry_is_refused_with_the_reason(login):
    page = login("viewer", "/account")
    page.click("#account-token-create")  # no label
    expect(page.locator("#account-message")).to_contain_text("Not created: give the token a label", timeout=LIVE_S)
    page.fill("#account-token-label", "x")
    page.fill("#account-token-days", "9999")
    page.click("#account-token-create")
    expect(page.locator("#account-message")).to_contain_text("1 to 365 days", timeout=LIVE_S)
    expect(page.locator("#account-new-token-panel")).to_be_hidden()
    expect(page.locator("#account-tokens")).to_contain_text("No API tokens")


@pytest.fixture
def kiosk_app(redis_server, tmp_path):
    text = DEMO_PLANT.read_text().replace("web:\n", 'web:\n  kiosk: {allowed_networks: ["127.0.0.1/32"]}\n', 1)
    plant = tmp_path / "kiosk_plant.yaml"
    plant.write_text(text)
    app = WebAppProcess(plant, redis_server.url, tmp_path / "web").start()
    yield app
    app.stop()


def test_the_kiosk_shows_live_values_without_login_and_has_no_account(browser, kiosk_app, tag_feeder, plant_config):
    tag_feeder.keep_sources_alive(list(plant_config.sources))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(kiosk_app.url + "/")
        expect(page.locator("#sl-user-name")).to_have_text("Kiosk (read-only)", timeout=20_000)
        tag_feeder.put("T101.level", 2.5)
        value = page.locator('[data-sl-tag="T101.level"][data-sl-field="value"]').first
        expect(value).to_have_text("2.50", timeout=LIVE_S)
        page.wait_for_timeout(5_000)  # past the live push's session re-checks: the kiosk stays
        tag_feeder.put("T101.level", 3.75)
        expect(value).to_have_text("3.75", timeout=LIVE_S)
        assert page.url == kiosk_app.url + "/"
        page.goto(kiosk_app.url + "/account")
        expect(page.locator("#account-refused")).to_contain_text("kiosk view", timeout=LIVE_S)
    finally:
        context.close()
