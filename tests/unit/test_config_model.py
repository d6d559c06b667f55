"""The plant file: what is accepted, and that errors name the key path."""
from pathlib import Path

import pytest

from domain.config_loading import ConfigError, DEFAULT_CONFIG_PATH, load_config, parse_config

BASE = """
sources:
  plc:
    kind: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    security: {policy: None, mode: None}
  broker:
    kind: mqtt
tags:
  - name: tank.level
    source: plc
    node_id: ns=2;s=Tank.Level
    unit: m
    range: {low: 0, high: 10}
    alarms:
      high: {limit: 8, priority: 2, deadband: 0.2}
      low: {limit: 1, priority: 3, deadband: 0.2}
  - name: comp.pressure
    source: broker
    topic: plant/comp/state
    value_path: pressure
"""


def parse(text: str, environ=None):
    return parse_config(text, Path("plant.yaml"), environ or {})


def test_a_valid_file_loads_with_its_tags_and_alarms():
    config = parse(BASE)
    assert config.tag("tank.level").alarms.high.limit == 8
    assert config.tag("comp.pressure").value_path == "pressure"
    assert [t.name for t in config.tags_of_source("broker")] == ["comp.pressure"]


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return caught.value.problems


def test_unknown_key_is_named_with_its_path():
    problems = problems_of(BASE.replace("unit: m", "unit: m\n    colour: red"))
    assert problems == ["tags[0].colour: Extra inputs are not permitted"]


def test_high_limit_not_above_low_is_rejected():
    problems = problems_of(BASE.replace("limit: 8", "limit: 0.5"))
    assert "tags[0].alarms" in problems[0] and "must be above low.limit" in problems[0]


def test_overlapping_deadbands_are_rejected():
    problems = problems_of(BASE.replace("deadband: 0.2}\n      low", "deadband: 7.5}\n      low"))
    assert "overlap" in problems[0]


def test_unknown_source_is_rejected():
    problems = problems_of(BASE.replace("source: plc", "source: plx"))
    assert "unknown source 'plx'" in problems[0]


def test_security_none_must_be_explicit():
    problems = problems_of(BASE.replace("    security: {policy: None, mode: None}\n", ""))
    assert problems == ["sources.plc.security: Field required"]


def test_environment_references_are_expanded_and_typed():
    config = parse(BASE.replace("kind: mqtt", "kind: mqtt\n    port: ${MQTT_PORT:-1883}"), {"MQTT_PORT": "2883"})
    assert config.sources["broker"].port == 2883
    assert parse(BASE.replace("kind: mqtt", "kind: mqtt\n    port: ${MQTT_PORT:-1883}")).sources["broker"].port == 1883


def test_missing_environment_variable_is_an_error():
    problems = problems_of(BASE.replace("kind: mqtt", "kind: mqtt\n    host: ${BROKER_HOST}"))
    assert problems == ["sources.broker.host: environment variable BROKER_HOST is not set and has no default"]


def test_broken_yaml_and_missing_file_are_clear(tmp_path):
    assert "not valid YAML" in problems_of("tags: [")[0]
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read the file" in str(caught.value) and "nope.yaml" in str(caught.value)


def test_the_shipped_demo_plant_is_valid():
    config = load_config(DEFAULT_CONFIG_PATH, {})
    assert len(config.tags) >= 20
    assert {s.kind for s in config.sources.values()} == {"opcua", "mqtt", "sparkplug"}


def test_opcua_item_settings_are_per_tag_with_source_defaults():
    config = parse(BASE.replace("    unit: m\n", "    unit: m\n    deadband: {percent: 0.5}\n    queue_size: 50\n"))
    tag = config.tag("tank.level")
    assert (tag.deadband.percent, tag.queue_size, tag.sampling_interval_ms) == (0.5, 50, None)
    assert config.sources["plc"].queue_size == 10 and config.sources["plc"].trust_on_first_use is False


def test_deadband_needs_exactly_one_kind_and_is_opcua_only():
    assert "exactly one of 'absolute' or 'percent'" in problems_of(
        BASE.replace("    unit: m\n", "    unit: m\n    deadband: {absolute: 1, percent: 2}\n"))[0]
    assert "are OPC UA settings" in problems_of(
        BASE.replace("    value_path: pressure\n", "    value_path: pressure\n    queue_size: 5\n"))[0]


ALARM_TYPES = BASE + """
  - name: tank.level_sp
    source: plc
    node_id: ns=2;s=Tank.LevelSP
  - name: pump.running
    source: plc
    node_id: ns=2;s=Pump.Running
    data_type: bool
    alarms:
      discrete: {normal: true, priority: 2, latching: true, realarm_s: 600}
  - name: tank.flow
    source: plc
    node_id: ns=2;s=Tank.Flow
    alarms:
      high_high: {limit: 50, priority: 1, deadband: 1}
      high: {limit: 40, priority: 2, deadband: 1, on_delay_s: 5, off_delay_s: 2, area: Utilities}
      low: {limit: 10, priority: 3, deadband: 1, suppressed_when: {tag: pump.running, equals: false}}
      low_low: {limit: 5, priority: 4, deadband: 1, ack_comment_required: true}
      deviation: {setpoint_tag: tank.level_sp, limit: 2, deadband: 0.5}
      rate_of_change: {limit_per_s: 1.5, window_s: 5, direction: rising}
      bad_quality: {priority: 1, on_delay_s: 3}
alarm_system:
  max_shelve_s: 3600
  ack_comment_required_priorities: [1]
"""


def test_every_alarm_type_and_attribute_loads():
    config = parse(ALARM_TYPES)
    flow = config.tag("tank.flow").alarms
    assert [kind for kind, _ in flow.items()] == [
        "high_high", "high", "low", "low_low", "deviation", "rate_of_change", "bad_quality"]
    assert flow.deviation.setpoint_tag == "tank.level_sp" and flow.high.area == "Utilities"
    assert flow.low.suppressed_when.equals is False
    assert config.tag("pump.running").alarms.discrete.latching
    assert config.alarm_system.max_shelve_s == 3600


@pytest.mark.parametrize("change, expected", [
    ("high_high: {limit: 50", "high_high.limit (40.0) must be above high.limit"),  # HH <= H
    ("low: {limit: 10", "must be above low.limit"),  # L >= H
    ("low_low: {limit: 5", "low.limit (10.0) must be above low_low.limit (12.0)"),  # LL >= L
])
def test_limits_out_of_order_are_rejected_with_the_key_path(change, expected):
    replacement = {"high_high: {limit: 50": "high_high: {limit: 40",
                   "low: {limit: 10": "low: {limit: 45", "low_low: {limit: 5": "low_low: {limit: 12"}[change]
    problems = problems_of(ALARM_TYPES.replace(change, replacement))
    assert problems[0].startswith("tags[4].alarms") and expected in problems[0]


@pytest.mark.parametrize("change, replacement, expected", [
    ("setpoint_tag: tank.level_sp", "setpoint_tag: tank.levle_sp",
     "tags[4].alarms.deviation.setpoint_tag: unknown tag 'tank.levle_sp'"),
    ("{tag: pump.running, equals: false}", "{tag: pump.runing, equals: false}",
     "tags[4].alarms.low.suppressed_when.tag: unknown tag 'pump.runing'"),
    ("{tag: pump.running, equals: false}", "{tag: pump.running, equals: false, below: 1}",
     "exactly one of equals, below or above"),
    ("normal: true,", "", "exactly one of normal or alarm_on"),
    ("limit: 2, deadband: 0.5", "limit: 2, deadband: 2", "deadband (2.0) must be smaller than limit"),
    ("limit_per_s: 1.5", "limit_per_s: .nan", "finite"),
    ("high: {limit: 40", "high: {limit: .inf", "finite"),
    ("data_type: bool\n    alarms:\n      discrete: {normal: true,",
     "data_type: bool\n    alarms:\n      high: {limit: 1}\n      discrete: {normal: true,", "need a numeric data_type"),
    ("max_shelve_s: 3600", "max_shelve_s: 0", "alarm_system.max_shelve_s"),
])
def test_bad_alarm_settings_are_rejected_with_the_key_path(change, replacement, expected):
    assert change in ALARM_TYPES
    problems = problems_of(ALARM_TYPES.replace(change, replacement))
    assert any(expected in p for p in problems), problems


def test_web_tls_needs_cert_and_key_together_and_kiosk_networks_are_checked():
    from domain.config_model import WebSettings

    with pytest.raises(ValueError, match="tls_cert and web.tls_key go together"):
        WebSettings(tls_cert="cert.pem")
    assert WebSettings(tls_cert="c.pem", tls_key="k.pem").tls_key == "k.pem"
    with pytest.raises(ValueError, match="'10.1.2.300' is not an IP address or network"):
        WebSettings(kiosk={"allowed_networks": ["10.1.2.300"]})
    assert WebSettings(kiosk={"allowed_networks": ["10.1.2.0/24", "127.0.0.1"]}).kiosk is not None
