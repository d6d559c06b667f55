"""Browser fixtures: a running web app on a free port, fed values, and logged-in Chromium pages.

    web_app          the web app process (plant file from `plant_config_path`, default the demo plant)
    tag_feeder       puts values into Redis like a data source (TagStoreWriter)
    source_heartbeats  fresh heartbeats for every source of the plant (leave out when real sources run)
    demo_users       viewer/operator/engineer/admin with their names as passwords
    login            login(role="operator", path="/") -> a Playwright page logged in as that demo user
    logged_in_page   login("operator")
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from domain.config_loading import load_config
from tests.browser.web_app_process import DEMO_PLANT, TagFeeder, WebAppProcess
from web.users import ensure_demo_users

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


# Module scope: Playwright's sync API keeps an event loop running while it lives, which
# would break the asyncio tests of other layers if it outlived the browser modules.
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only when a browser is there

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def plant_config_path() -> Path:
    """Override in a test module to run the web app on another plant file."""
    return DEMO_PLANT


@pytest.fixture
def plant_config(plant_config_path):
    return load_config(plant_config_path)


@pytest.fixture
def tag_feeder(redis_server):
    feeder = TagFeeder(redis_server.url)
    yield feeder
    feeder.close()


@pytest.fixture
def source_heartbeats(tag_feeder, plant_config):
    tag_feeder.keep_sources_alive(list(plant_config.sources))
    return tag_feeder


@pytest.fixture
def demo_users(tag_feeder):
    return {u.name: u for u in tag_feeder.call(ensure_demo_users(tag_feeder.redis))}


@pytest.fixture
def web_app(redis_server, tmp_path, plant_config_path):
    app = WebAppProcess(plant_config_path, redis_server.url, tmp_path / "web").start()
    yield app
    app.stop()


@pytest.fixture
def login(browser, web_app, demo_users):
    contexts = []

    def log_in(role: str = "operator", path: str = "/"):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{web_app.url}/login?next={quote(path, safe='')}")
        page.fill("#sl-login-user", demo_users[role].name)
        page.fill("#sl-login-password", demo_users[role].password)
        page.click("button[type=submit]")
        page.wait_for_selector(".sl-banner", timeout=20_000)
        return page

    yield log_in
    for context in contexts:
        context.close()


@pytest.fixture
def logged_in_page(login):
    return login("operator")
