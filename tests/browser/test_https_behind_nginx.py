"""A real browser through the documented nginx (TLS there, trusted_proxies here): login and live values over wss."""
from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import expect

from launcher.embedded_servers import find_executable, free_port, stop_process, wait_for_port
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.web_app_process import DEMO_PLANT, WebAppProcess
from tests.integration.test_https import write_self_signed
from tests.integration.test_reverse_proxy import nginx_config
from web.sessions import SESSION_COOKIE

LIVE_S = 10_000


@pytest.fixture(scope="module")
def trusting_browser():
    """Chromium that accepts the test's self-signed certificate everywhere, also in Dash's websocket worker.

    (A context's ignore_https_errors does not reach the shared worker that holds the websocket; a plant's
    operator stations trust the plant CA instead.)
    """
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"])
        yield chromium
        chromium.close()


@pytest.fixture
def proxied_demo(redis_server, tmp_path):
    executable = find_executable("nginx")
    if executable is None:
        pytest.skip("nginx is not installed")
    plant = tmp_path / "plant.yaml"
    plant.write_text(DEMO_PLANT.read_text().replace("web:\n", 'web:\n  trusted_proxies: ["127.0.0.1"]\n', 1))
    app = WebAppProcess(plant, redis_server.url, tmp_path / "web").start()
    work_dir = tmp_path / "nginx"
    work_dir.mkdir()
    cert, key = write_self_signed(work_dir)
    port = free_port()
    (work_dir / "nginx.conf").write_text(nginx_config(work_dir, port, app.port, cert, key))
    nginx = subprocess.Popen([executable, "-p", str(work_dir), "-c", str(work_dir / "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, 15, nginx)
    yield f"https://127.0.0.1:{port}"
    stop_process(nginx)
    app.stop()


def test_operator_logs_in_over_https_and_sees_live_values(trusting_browser, proxied_demo, source_heartbeats, demo_users):
    context = trusting_browser.new_context(viewport={"width": 1400, "height": 900}, ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(proxied_demo + "/login")
        page.fill("#sl-login-user", "operator")
        page.fill("#sl-login-password", demo_users["operator"].password)
        page.click("button[type=submit]")
        page.wait_for_selector(".sl-banner", timeout=20_000)
        session = next(c for c in context.cookies() if c["name"] == SESSION_COOKIE)
        assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"

        source_heartbeats.put("T101.level", 2.5)  # through Redis, the web app, nginx's wss, into the page
        value = page.locator('[data-sl-tag="T101.level"][data-sl-field="value"]').first
        expect(value).to_have_text("2.50", timeout=LIVE_S)
        expect(page.locator("#sl-conn")).to_have_text("LIVE")
        source_heartbeats.put("T101.level", 3.75)
        expect(value).to_have_text("3.75", timeout=LIVE_S)
    finally:
        context.close()
