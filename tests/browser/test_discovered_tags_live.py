"""The whole road for a discovered tag: a device publishes on a new topic, the real MQTT source makes a tag of it
from its topic template, and the operator's open overview shows it live, with a faceplate."""
from __future__ import annotations

import os

import aiomqtt
import pytest
from playwright.sync_api import expect

from launcher.supervisor import Supervisor
from tests.browser.web_app_process import REPO_ROOT

pytestmark = pytest.mark.browser

PLANT = """
site_name: Discovery plant
sources:
  line: {{kind: mqtt, host: 127.0.0.1, port: {port},
          topic_templates: [{{topic: "line/+/temperature", tag: "{{1}}.temperature", unit: degC,
                             description: "Temperature of {{1}}"}}]}}
tags:
  - {{name: L1.speed, source: line, topic: line/L1/speed, unit: m/min, area: Line}}
"""


def field(page, tag: str, name: str):
    return page.locator(f'[data-sl-tag="{tag}"][data-sl-field="{name}"]').first


@pytest.fixture
def plant_config_path(tmp_path, mqtt_broker):
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT.format(port=mqtt_broker.port))
    return path


@pytest.fixture
def mqtt_source(redis_server, plant_config_path):
    env = dict(os.environ, REDIS_URL=redis_server.url, PYTHONPATH=str(REPO_ROOT))
    supervisor = Supervisor()
    supervisor.add("data_sources", ["-m", "data_sources", "--config", str(plant_config_path)], env)
    yield supervisor
    supervisor.stop_all()


def publish(feeder, port: int, topic: str, payload: str) -> None:
    """Retained, like a device's state: a source that subscribes later still gets it."""
    async def send():
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.publish(topic, payload, qos=1, retain=True)

    feeder.call(send())


def test_a_device_on_a_new_topic_becomes_a_live_tag_on_the_open_overview(login, mqtt_source, mqtt_broker, tag_feeder):
    page = login("operator", "/")
    publish(tag_feeder, mqtt_broker.port, "line/L1/speed", "12.5")
    expect(field(page, "L1.speed", "value")).to_have_text("12.5", timeout=20_000)  # the source is running
    expect(page.locator("#overview-discovered")).to_be_hidden()

    publish(tag_feeder, mqtt_broker.port, "line/oven7/temperature", "181.5")
    expect(field(page, "oven7.temperature", "value")).to_have_text("181.5", timeout=15_000)
    expect(field(page, "oven7.temperature", "status")).to_have_text("Good")
    expect(page.locator("#overview-discovered .sl-section-title", has_text="from line")).to_be_visible()
    publish(tag_feeder, mqtt_broker.port, "line/oven7/temperature", "175")
    expect(field(page, "oven7.temperature", "value")).to_have_text("175.0", timeout=10_000)

    page.locator("a.sl-tag-link", has_text="oven7.temperature").click()
    expect(page.locator(".sl-page-subtitle")).to_have_text("Temperature of oven7", timeout=10_000)
    expect(field(page, "oven7.temperature", "value")).to_have_text("175.0")
    expect(page.get_by_text("line (mqtt), discovered at run time")).to_be_visible()
