"""The /users page in Chromium: an admin adds a user limited to areas, who can then log in; others are told why not."""
from __future__ import annotations

from urllib.parse import quote

from playwright.sync_api import expect

from web.users import get_user

PASSWORD = "a good password"


def choose(page, dropdown_id: str, option: str) -> None:
    page.click(f"#{dropdown_id}")
    page.get_by_role("option", name=option, exact=True).click()


def test_an_admin_adds_a_user_with_areas_who_can_then_log_in(login, browser, web_app, tag_feeder):
    page = login("admin", "/")
    page.get_by_role("link", name="Users", exact=True).click()
    table = page.locator("#users-table")
    expect(table).to_contain_text("operator", timeout=15_000)
    page.fill("#users-new-name", "nora")
    choose(page, "users-new-role", "operator")
    page.fill("#users-new-password", PASSWORD)
    page.fill("#users-new-password2", PASSWORD)
    page.fill("#users-new-areas", "Tanks, Packing")
    page.click("#users-add")
    expect(page.locator("#users-message")).to_have_text("Added nora (operator; Packing, Tanks).", timeout=15_000)
    expect(table.locator("tr[data-user=nora]")).to_contain_text("Packing, Tanks")
    expect(page.locator("#users-new-password")).to_have_value("")
    user = tag_feeder.call(get_user(tag_feeder.redis, "nora"))
    assert (user.role.value, user.areas) == ("operator", ("Packing", "Tanks"))

    # Delete asks first, naming the account; cancelling keeps it.
    choose(page, "users-target", "viewer")
    page.click("#users-delete")
    expect(page.locator("#users-confirm-text")).to_contain_text("Delete user 'viewer'?")
    expect(page.locator("#users-delete-confirm")).to_have_text("Delete viewer")
    page.click("#users-delete-cancel")
    expect(page.locator("#users-confirm")).to_be_hidden()
    expect(table.locator("tr[data-user=viewer]")).to_have_count(1)

    context = browser.new_context()
    try:
        nora = context.new_page()
        nora.goto(f"{web_app.url}/login?next={quote('/', safe='')}")
        nora.fill("#sl-login-user", "nora")
        nora.fill("#sl-login-password", PASSWORD)
        nora.click("button[type=submit]")
        expect(nora.locator("#sl-user-name")).to_have_text("nora", timeout=20_000)
        expect(nora.locator(".sl-nav")).not_to_contain_text("Users")  # no admin: no link
    finally:
        context.close()


def test_an_operator_opening_users_is_told_why_and_gets_no_form(login):
    page = login("operator", "/users")
    expect(page.locator("#users-not-allowed")).to_have_text(
        "Your role (operator) may not manage users; admin or higher is needed.", timeout=15_000)
    assert page.locator("#users-add").count() == 0 and page.locator("#users-table").count() == 0
    expect(page.locator(".sl-nav")).not_to_contain_text("Users")
