"""A small plant for the web tests: one OPC UA and one MQTT source, a few kinds of tag."""
from __future__ import annotations

from pathlib import Path

from domain.config_loading import parse_config
from domain.config_model import PlantConfig

WEB_TEST_PLANT = """
site_name: Web test plant
data_dir: ${STACKLIGHT_DATA_DIR:-./data}
sources:
  opc: {kind: opcua, endpoint: "opc.tcp://127.0.0.1:1/x", security: {policy: None, mode: None},
        write_timeout_s: WRITE_TIMEOUT}
  mq: {kind: mqtt, write_timeout_s: WRITE_TIMEOUT}
tags:
  - {name: T1.level, source: opc, node_id: "ns=2;s=L", unit: m, description: Tank level, area: Tanks,
     range: {low: 0, high: 5},
     alarms: {high_high: {limit: 4.5, priority: 1}, low: {limit: 0.5, priority: 3}}}
  - {name: T1.setpoint, source: opc, node_id: "ns=2;s=SP", unit: "%", description: Valve setpoint, area: Tanks,
     range: {low: 0, high: 100}, writable: true, limits: {low: 10, high: 90}, max_step: 20, write_tolerance: 0.01}
  - {name: P1.run, source: opc, node_id: "ns=2;s=R", data_type: bool, description: Pump run, area: Tanks,
     writable: true}
  - {name: C1.count, source: opc, node_id: "ns=2;s=C", data_type: int, unit: items, area: Packing}
  - {name: M1.flow, source: mq, topic: plant/flow, unit: m3/h, area: Utilities, range: {low: 0, high: 1500},
     max_age_s: 5}
"""


def small_plant(write_timeout_s: float = 0.5) -> PlantConfig:
    return parse_config(WEB_TEST_PLANT.replace("WRITE_TIMEOUT", str(write_timeout_s)), Path("web_test_plant.yaml"))


# The web test plant with the write-safety cases: a critical tag (two-person rule), one that needs a
# reason, one only an engineer may write, and a setpoint in another area (for users limited to areas).
WRITE_SAFETY_TAGS = """
  - {name: T1.critical_sp, source: opc, node_id: "ns=2;s=CSP", unit: "%", area: Tanks, writable: true, critical: true,
     range: {low: 0, high: 100}, limits: {low: 10, high: 90}, write_tolerance: 0.01}
  - {name: T1.reason_sp, source: opc, node_id: "ns=2;s=RSP", unit: "%", area: Tanks, writable: true,
     reason_required: true, range: {low: 0, high: 100}}
  - {name: T1.eng_sp, source: opc, node_id: "ns=2;s=ESP", unit: "%", area: Tanks, writable: true, write_role: engineer,
     range: {low: 0, high: 100}}
  - {name: C1.speed_sp, source: opc, node_id: "ns=2;s=SSP", unit: "items/min", area: Packing, writable: true,
     range: {low: 0, high: 300}}
"""
WRITE_SAFETY_PLANT = WEB_TEST_PLANT + WRITE_SAFETY_TAGS.lstrip("\n")


def write_safety_plant(write_timeout_s: float = 0.5) -> PlantConfig:
    return parse_config(WRITE_SAFETY_PLANT.replace("WRITE_TIMEOUT", str(write_timeout_s)),
                        Path("write_safety_plant.yaml"))
