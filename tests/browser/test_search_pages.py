"""The two log search pages (components/search_page.py) as an operator and an engineer see them."""
from __future__ import annotations

from playwright.sync_api import expect


def test_an_engineer_finds_their_own_login_on_the_audit_page_and_an_operator_sees_only_their_own(login):
    page = login("engineer", "/audit")
    grid = page.locator("#audit-grid .ag-center-cols-container")
    expect(grid.locator(".ag-row").first).to_be_visible(timeout=15_000)
    expect(grid).to_contain_text("engineer")
    expect(grid).to_contain_text("login")
    assert "/api/audit.csv?" in (page.locator("#audit-csv").get_attribute("href") or "")

    operator = login("operator", "/audit")
    expect(operator.locator(".sl-page-subtitle").first).to_contain_text("Your own actions")
    expect(operator.locator("#audit-user")).to_have_value("operator")
    expect(operator.locator("#audit-user")).to_be_disabled()
    own = operator.locator("#audit-grid .ag-center-cols-container")
    expect(own.locator(".ag-row").first).to_be_visible(timeout=15_000)
    expect(own).to_contain_text("login")
    expect(own).not_to_contain_text("engineer")


def test_the_alarm_journal_page_draws_its_filters_and_grid(login):
    page = login("operator", "/alarms/journal")
    expect(page.locator("h1")).to_have_text("Alarm journal")
    expect(page.locator("#journal-grid")).to_be_visible(timeout=15_000)
    expect(page.locator("#journal-search")).to_be_visible()
    assert page.locator("#journal-csv").count() == 1
