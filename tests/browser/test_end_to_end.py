"""The whole road in a browser: simulated plant -> data sources -> Redis -> web -> Chromium -> write -> plant.

Nothing is fed by the test: the simulator serves OPC UA and MQTT, the real data
sources carry the values, and an operator's setpoint write moves the process and is found on
the audit page; a viewer finds no way to write, and the API refuses one who tries.
"""
from __future__ import annotations

import os
import re

import pytest
import redis
from playwright.sync_api import expect

from launcher.embedded_servers import free_port, wait_for_port
from launcher.supervisor import Supervisor
from tag_store import keys
from tests.browser.web_app_process import DEMO_PLANT, REPO_ROOT

pytestmark = pytest.mark.browser


def field(page, tag: str, name: str):
    return page.locator(f'[data-sl-tag="{tag}"][data-sl-field="{name}"]').first


def number_in(text: str) -> float:
    return float(re.search(r"-?\d+(\.\d+)?", text).group())


@pytest.fixture
def opcua_port():
    return free_port()


@pytest.fixture
def web_app(redis_server, tmp_path, opcua_port):
    """The web app of conftest.py, with the simulator's port in its environment."""
    from tests.browser.web_app_process import WebAppProcess  # noqa: PLC0415

    app = WebAppProcess(DEMO_PLANT, redis_server.url, tmp_path / "web",
                        extra_env={"STACKLIGHT_SIM_OPCUA_PORT": str(opcua_port)}).start()
    yield app
    app.stop()


@pytest.fixture
def live_plant(redis_server, mqtt_broker, opcua_port):
    """The simulator and the real data sources, as `make run` starts them."""
    env = dict(
        os.environ, REDIS_URL=redis_server.url, PYTHONPATH=str(REPO_ROOT),
        STACKLIGHT_SIM_OPCUA_PORT=str(opcua_port),
        STACKLIGHT_EMBEDDED_MQTT_URL=f"mqtt://127.0.0.1:{mqtt_broker.port}",
    )
    supervisor = Supervisor()
    supervisor.add("simulator", ["-m", "simulator", "--opcua-port", str(opcua_port),
                                 "--mqtt-host", "127.0.0.1", "--mqtt-port", str(mqtt_broker.port)], env)
    wait_for_port(opcua_port, 30, supervisor.children[0].process)
    supervisor.add("data_sources", ["-m", "data_sources", "--config", str(DEMO_PLANT)], env)
    yield supervisor
    supervisor.stop_all()


def test_operator_sees_the_plant_live_and_a_setpoint_write_moves_the_process(live_plant, login):
    page = login("operator", "/")

    # A value that changes by itself reaches the overview, live, over OPC UA and over MQTT.
    item_count = field(page, "CV301.item_count", "value")
    expect(item_count).to_have_text(re.compile(r"\d"), timeout=30_000)
    first_count = item_count.inner_text()
    expect(item_count).not_to_have_text(first_count, timeout=15_000)
    expect(field(page, "C401.discharge_pressure", "status")).to_have_text("Good", timeout=15_000)
    start_temperature = number_in(field(page, "R201.temperature", "value").inner_text())
    start_heater = number_in(field(page, "R201.heater_output", "value").inner_text())

    # Write a new reactor setpoint through the confirmation step.
    page.goto(page.url.rstrip("/") + "/tag/R201.temperature_setpoint")
    entry = page.locator(".sl-setpoint input").first
    entry.fill(f"{start_temperature + 15:.1f}")
    page.get_by_role("button", name="Write…").click()
    question = page.locator(".sl-confirm-question").first
    expect(question).to_contain_text("->", timeout=10_000)
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".sl-write-status").first).to_contain_text("DONE", timeout=20_000)

    # The PID loop in the simulated plant drives the temperature up: visible on the overview.
    page.goto(page.url.split("/tag/")[0] + "/")
    temperature = field(page, "R201.temperature", "value")
    expect(temperature).to_have_text(re.compile(r"\d"), timeout=15_000)
    rises_above = """([tag, limit]) => {
        const cell = document.querySelector(`[data-sl-tag="${tag}"][data-sl-field="value"]`);
        return cell && parseFloat(cell.textContent) > limit;
    }"""
    page.wait_for_function(rises_above, arg=["R201.temperature", start_temperature + 1.0], timeout=30_000)
    # The heater works harder than before while the reactor heats up (how much depends on how far
    # the PID has come by now, which a loaded machine shifts: only the direction is asserted).
    page.wait_for_function(rises_above, arg=["R201.heater_output", start_heater + 5.0], timeout=10_000)

    # The write is on record: the operator finds it on the audit page (their own actions).
    page.goto(page.url.rstrip("/") + "/audit")
    grid = page.locator("#audit-grid .ag-center-cols-container")
    done = grid.locator(".ag-row", has_text="R201.temperature_setpoint").filter(has_text="done")
    expect(done.first).to_be_visible(timeout=15_000)
    expect(done.first).to_contain_text("write")
    expect(done.first).to_contain_text(f"{start_temperature + 15:.1f}")


def test_a_viewer_finds_no_way_to_write_and_a_forged_write_moves_nothing(live_plant, login, redis_server):
    page = login("viewer", "/")
    expect(field(page, "R201.temperature", "value")).to_have_text(re.compile(r"\d"), timeout=30_000)
    base = page.url.rstrip("/")
    for path in ("/", "/tag/R201.temperature_setpoint", "/tag/C401.pressure_setpoint", "/alarms"):
        page.goto(base + path)
        expect(page.locator(".sl-page-title").first).to_be_visible(timeout=15_000)
        if path.startswith("/tag/"):
            expect(page.get_by_text("Changing this value needs the operator role.")).to_be_visible()
        assert page.locator(".sl-setpoint").count() == 0, path
        assert page.get_by_role("button", name=re.compile(r"^(Write…|Confirm|ON \(Start\)|OFF \(Stop\))$")).count() == 0
    # The API a script would use refuses the viewer too, and says why.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "stacklight_csrf")
    answer = page.request.post(base + "/api/tags/R201.temperature_setpoint/write",
                               data={"value": 70}, headers={"X-CSRFToken": csrf})
    assert answer.status == 403
    assert "viewer" in answer.json()["message"]
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.xlen(keys.write_requests("plant_opcua")) == 0  # nothing went to the data source
    finally:
        client.close()
