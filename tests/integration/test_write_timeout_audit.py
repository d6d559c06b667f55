"""A write the device never confirms is recorded as failed, the whole road real.

An asyncua server whose setpoint node accepts a write but keeps its old value (as a device that
ignores or overrides the operator), the real data source service and the web app as processes,
one Redis: the faceplate and the API say TIMED OUT, and the audit trail holds "requested" and then
"failed" with "timed out: …", where a search for failures finds it. A write nobody answers (no data
source for that source) is recorded the same way, with "no answer: …".
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from asyncua import Server, ua

from launcher.embedded_servers import free_port, stop_process
from tests.browser.web_app_process import REPO_ROOT, WebAppProcess, login_session
from tests.integration.test_web_api_auth import callback_output, eventually, setpoint_callback, value_becomes
from web.audit import read_audit

NAMESPACE = "urn:stacklight:test-write-timeout"
HELD_VALUE = 50.0

PLANT = """
site_name: Write timeout test plant
data_dir: {data_dir}
sources:
  plc: {{kind: opcua, endpoint: "{endpoint}", security: {{policy: None, mode: None}}, write_timeout_s: 1,
        publishing_interval_ms: 50, reconnect_max_delay_s: 1}}
  absent: {{kind: opcua, endpoint: "opc.tcp://127.0.0.1:1/nobody", security: {{policy: None, mode: None}},
           write_timeout_s: 1}}
tags:
  - {{name: R1.sp, source: plc, node_id: "nsu={namespace};s=R1.SP", unit: degC, area: Reactor, writable: true,
     range: {{low: 0, high: 100}}, limits: {{low: 10, high: 90}}}}
  - {{name: R2.sp, source: absent, node_id: "ns=2;s=R2.SP", unit: degC, area: Reactor, writable: true,
     range: {{low: 0, high: 100}}}}
"""


class StubbornDevice:
    """One setpoint node that takes every write and keeps its value: readback never confirms."""

    def __init__(self) -> None:
        self.endpoint = f"opc.tcp://127.0.0.1:{free_port()}/stubborn"
        self.server = Server()

    async def start(self) -> StubbornDevice:
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await self.server.register_namespace(NAMESPACE)
        node = await self.server.nodes.objects.add_variable(ua.NodeId("R1.SP", idx), "R1.SP",
                                                            ua.Variant(HELD_VALUE, ua.VariantType.Double))
        await node.set_writable()
        self.server.iserver.aspace.set_attribute_value_setter(node.nodeid, ua.AttributeIds.Value, self._ignore)
        await self.server.start()
        return self

    @staticmethod
    def _ignore(node, attribute, value: ua.DataValue) -> None:
        """The write is answered Good, but the device keeps what it had."""


@pytest.fixture
def road(redis_server, tmp_path, feeder):
    """The stubborn device, the real data source service and the web app, all on the test's Redis."""
    device = feeder.call(StubbornDevice().start())
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT.format(data_dir=tmp_path / "data", endpoint=device.endpoint, namespace=NAMESPACE))
    env = {**os.environ, "REDIS_URL": redis_server.url, "PYTHONPATH": str(REPO_ROOT)}
    with open(tmp_path / "data_sources.log", "ab") as log:
        sources = subprocess.Popen([sys.executable, "-m", "data_sources", "--config", str(plant), "--source", "plc"],
                                   cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    web = WebAppProcess(plant, redis_server.url, tmp_path / "web").start()
    yield web
    web.stop()
    stop_process(sources)
    feeder.call(device.server.stop())


def failures(feeder, tag: str) -> list[dict]:
    return [a for a in feeder.call(read_audit(feeder.redis, 200)) if a["tag"] == tag and a["action"] == "write"]


def test_a_write_the_device_never_confirms_times_out_and_is_recorded_as_failed(road, feeder):
    operator = login_session(road.url, "operator", "operator")
    value_becomes(operator, road.url, "R1.sp", HELD_VALUE)  # the data source is connected and publishing

    asked = setpoint_callback(operator, road.url, "write", {"entry": "60", "tag": "R1.sp"})
    assert callback_output(asked, "question", "children") == "R1.sp: 50.0 degC -> 60.0 degC"
    confirmed = setpoint_callback(operator, road.url, "confirm",
                                  {"pending": callback_output(asked, "pending", "data"), "reason": "trial"})
    assert "TIMED OUT (write failed):" in confirmed.text and "readback" in confirmed.text
    entries = failures(feeder, "R1.sp")
    assert [(a["result"], a["new"]) for a in entries[:2]] == [("failed", "60.0"), ("requested", "60.0")]
    assert entries[0]["reason"].startswith("timed out: ") and entries[0]["comment"] == "trial"

    api = operator.post(f"{road.url}/api/tags/R1.sp/write", json={"value": 61}, timeout=30)
    assert (api.status_code, api.json()["state"]) == (504, "timed_out")
    assert api.json()["readback"] == HELD_VALUE
    latest = failures(feeder, "R1.sp")[0]
    assert (latest["result"], latest["new"]) == ("failed", "61.0") and latest["reason"].startswith("timed out: ")


def test_a_write_nobody_answers_is_recorded_as_failed(road, feeder):
    feeder.put("R2.sp", 20.0)
    operator = login_session(road.url, "operator", "operator")
    value_becomes(operator, road.url, "R2.sp", 20.0)
    asked = setpoint_callback(operator, road.url, "write", {"entry": "25", "tag": "R2.sp"})
    started = time.monotonic()
    confirmed = setpoint_callback(operator, road.url, "confirm", {"pending": callback_output(asked, "pending", "data")})
    assert "NO ANSWER: no answer from the data source" in confirmed.text
    assert time.monotonic() - started >= 1.0  # it waited for the source's timeout (and the margin)

    def recorded():
        entries = failures(feeder, "R2.sp")
        assert [a["result"] for a in entries[:2]] == ["failed", "requested"]
        return entries[0]

    assert eventually(recorded)["reason"].startswith("no answer: ")
