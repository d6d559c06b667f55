"""The two-person rule in the browser: the demo plant's C401.pressure_setpoint is critical.

The operator enters a value and confirms; nothing is sent until a second person approves with
their own password: the operator naming themselves is refused, an engineer's password sends the
write once (a stand-in data source answers), and the audit trail names both. And a user who may
not write a tag (the tag's write role, their areas) is told why instead of getting the controls.
"""
from __future__ import annotations

import json
import threading

import pytest
from playwright.sync_api import expect

from tag_store import keys
from tests.browser.test_operator_ui import answer_writes, field
from web.audit import read_audit

pytestmark = pytest.mark.browser

LIVE_S = 10_000
TAG = "C401.pressure_setpoint"
SOURCE = "utility_mqtt"


@pytest.fixture
def mqtt_data_source(source_heartbeats):
    stop = threading.Event()
    thread = answer_writes(source_heartbeats, SOURCE, stop)
    yield source_heartbeats
    stop.set()
    thread.join(5)


def requests_sent(feeder) -> list[dict]:
    return [json.loads(f[b"r"]) for _id, f in feeder.call(feeder.redis.xrange(keys.write_requests(SOURCE)))]


def ask_for_a_write(page, value: str, reason: str) -> None:
    page.locator(".sl-setpoint-row input").fill(value)
    page.click("text=Write…")
    expect(page.locator(".sl-confirm-question")).to_contain_text("->", timeout=LIVE_S)
    page.fill(".sl-write-reason input", reason)
    page.click(".sl-confirm button:has-text('Confirm')")
    expect(page.locator(".sl-approval")).to_be_visible(timeout=LIVE_S)


def approve(page, name: str, password: str) -> None:
    page.fill(".sl-approver input", name)
    page.fill(".sl-approver-password input", password)
    page.click("text=Approve and write")


def test_a_critical_write_needs_a_second_person_with_their_password(login, mqtt_data_source, demo_users):
    feeder = mqtt_data_source
    feeder.put(TAG, 7.0)
    page = login("operator", f"/tag/{TAG}")
    expect(field(page, TAG, "value")).to_have_text("7.0", timeout=LIVE_S)
    expect(page.get_by_text("Critical: a second person")).to_be_visible()
    status = page.locator(".sl-write-status")

    ask_for_a_write(page, "8", "raise for the new line")
    expect(status).to_contain_text("NEEDS APPROVAL")
    expect(page.locator(".sl-approval-question")).to_contain_text(f"{TAG}: 7.0 bar -> 8.0 bar is not sent yet")
    assert requests_sent(feeder) == []

    # Each refused approver leaves the write waiting, the panel open, for the right person.
    approve(page, "operator", demo_users["operator"].password)   # the requester themselves
    expect(status).to_contain_text("REFUSED: the approver must be someone other than operator", timeout=LIVE_S)
    expect(status).to_contain_text("the write still waits for an approver")
    expect(page.locator(".sl-approval")).to_be_visible()
    assert requests_sent(feeder) == []

    approve(page, "engineer", "not the password")
    expect(status).to_contain_text("REFUSED: the approver was not verified", timeout=LIVE_S)
    expect(page.locator(".sl-approval")).to_be_visible()
    assert page.locator(".sl-approver-password input").input_value() == ""  # never left in the box
    assert requests_sent(feeder) == []

    approve(page, "viewer", demo_users["viewer"].password)
    expect(status).to_contain_text("viewer is viewer: an approver must be operator or higher", timeout=LIVE_S)
    assert requests_sent(feeder) == []

    approve(page, "engineer", demo_users["engineer"].password)
    expect(status).to_contain_text(f"DONE: {TAG} = 8.0 bar (CONFIRMED by readback)", timeout=LIVE_S)
    assert page.locator(".sl-approver-password input").input_value() == ""
    expect(page.locator(".sl-approval")).to_be_hidden()
    sent = requests_sent(feeder)
    assert [(r["tag"], r["value"], r["user"], r["approved_by"], r["reason"]) for r in sent] == [
        (TAG, 8.0, "operator", "engineer", "raise for the new line")]

    audit = feeder.call(read_audit(feeder.redis, 10))
    done, requested, approved, refused_viewer, refused_password, refused_same = audit[:6]
    assert (approved["user"], approved["action"], approved["reason"]) == (
        "engineer", "write_approved", "approved the write requested by operator")
    assert (requested["user"], requested["result"], requested["reason"], requested["comment"]) == (
        "operator", "requested", "approved by engineer", "raise for the new line")
    assert (done["result"], done["reason"]) == ("done", "approved by engineer")
    assert [(a["action"], a["result"]) for a in (refused_viewer, refused_password, refused_same)] == [
        ("write_approval", "refused")] * 3
    assert "not the password" not in json.dumps(audit)


def test_the_faceplate_says_why_a_user_may_not_write_a_tag(browser, redis_server, tmp_path, tag_feeder):
    """On the write-safety test plant: a tag only engineers may write, and a user limited to an area."""
    from urllib.parse import quote  # noqa: PLC0415

    from tests.browser.web_app_process import WebAppProcess  # noqa: PLC0415
    from tests.unit.web_plant import WRITE_SAFETY_PLANT  # noqa: PLC0415
    from web.roles import Role  # noqa: PLC0415
    from web.users import encode_areas, save_user  # noqa: PLC0415

    plant = tmp_path / "plant.yaml"
    plant.write_text(WRITE_SAFETY_PLANT.replace("WRITE_TIMEOUT", "1"))
    tag_feeder.call(save_user(tag_feeder.redis, "olga", Role.OPERATOR, "olga-secret"))
    tag_feeder.call(save_user(tag_feeder.redis, "packer", Role.OPERATOR, "packer-secret"))
    tag_feeder.call(tag_feeder.redis.hset(keys.user("packer"), "areas", encode_areas(["Packing"])))
    app = WebAppProcess(plant, redis_server.url, tmp_path / "web").start()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        def open_as(name: str, path: str):
            context.clear_cookies()
            page = context.new_page()
            page.goto(f"{app.url}/login?next={quote(path, safe='')}")
            page.fill("#sl-login-user", name)
            page.fill("#sl-login-password", f"{name}-secret")
            page.click("button[type=submit]")
            expect(page.locator(".sl-page-title")).to_have_text(path.removeprefix("/tag/"), timeout=20_000)
            return page

        page = open_as("olga", "/tag/T1.eng_sp")
        expect(page.locator(".sl-write-why-not")).to_have_text(
            "Only engineer or higher may write this tag; your role is operator.")
        expect(page.locator(".sl-setpoint")).to_have_count(0)
        page = open_as("packer", "/tag/T1.setpoint")
        expect(page.locator(".sl-write-why-not")).to_have_text(
            "This tag is in area 'Tanks'; your account is limited to areas: Packing.")
        expect(page.locator(".sl-setpoint")).to_have_count(0)
        page = open_as("packer", "/tag/C1.speed_sp")
        expect(page.locator(".sl-setpoint-row input")).to_be_visible()
        expect(page.locator(".sl-write-why-not")).to_have_count(0)
    finally:
        context.close()
        app.stop()
