"""A page stops getting live values when its session ends, without waiting for the user to click.

The push loop re-reads the session every few seconds (web/live_push.py) and sends the page to
/login once it is gone: a logout in another tab, the idle timeout, a deleted user. Pushing is no
activity: a session whose idle timer runs out while values stream still ends. A role change
reloads the page.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tag_store import keys

pytestmark = pytest.mark.browser

END_S = 12_000  # ms: a recheck (2 s) and the page's reaction, with room for a loaded machine


def live_page(login, source_heartbeats):
    page = login("operator", "/")
    source_heartbeats.put("T101.level", 2.5)
    expect(page.locator("#sl-conn")).to_have_text("LIVE", timeout=10_000)
    return page


def session_keys(feeder) -> list[bytes]:
    async def scan():
        return [key async for key in feeder.redis.scan_iter(match=keys.session("*"))]
    return feeder.call(scan())


def test_logging_out_in_another_tab_sends_the_live_page_to_login(login, source_heartbeats, web_app):
    page = live_page(login, source_heartbeats)
    other = page.context.new_page()
    other.goto(f"{web_app.url}/logout")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"), timeout=END_S)


def test_an_idle_timeout_ends_the_live_page_though_values_keep_coming(login, source_heartbeats):
    page = live_page(login, source_heartbeats)
    (key,) = session_keys(source_heartbeats)
    source_heartbeats.call(source_heartbeats.redis.expire(key, 5))  # as if idle for all but 5 s
    source_heartbeats.put("T101.level", 2.75)
    expect(page.locator('[data-sl-tag="T101.level"][data-sl-field="value"]').first).to_have_text("2.75")
    expect(page).to_have_url(re.compile(r"/login\?next="), timeout=END_S + 5_000)
    assert session_keys(source_heartbeats) == []


def test_deleting_the_user_ends_the_live_page(login, source_heartbeats):
    page = live_page(login, source_heartbeats)
    source_heartbeats.call(source_heartbeats.redis.delete(keys.user("operator")))
    expect(page).to_have_url(re.compile(r"/login\?next="), timeout=END_S)


def test_a_role_change_reloads_the_live_page_for_the_new_role(login, source_heartbeats):
    page = live_page(login, source_heartbeats)
    page.evaluate("() => { window.slBeforeRoleChange = true; }")
    source_heartbeats.call(source_heartbeats.redis.hset(keys.user("operator"), "role", "viewer"))
    page.wait_for_function("() => window.slBeforeRoleChange === undefined", timeout=END_S)
    assert "/login" not in page.url
    expect(page.locator("#sl-conn")).to_have_text("LIVE", timeout=10_000)
