"""Source diagnostics rows: address without credentials, heartbeat age, counters and loss flags."""
from __future__ import annotations

from pathlib import Path

from domain.config_loading import parse_config
from domain.config_model import Tag
from domain.freshness import SOURCE_HEARTBEAT_TIMEOUT_S
from tag_store.source_status import ConnectionState, SourceStatus
from tests.unit.web_plant import small_plant
from web.source_view import Heartbeat, source_rows

PLANT = small_plant()
NOW_MS = 1_763_780_000_000


def status(source: str, age_ms: int, counters: dict[str, int] | None = None,
           state: ConnectionState = ConnectionState.CONNECTED, detail: str = "") -> SourceStatus:
    return SourceStatus(source, state, detail, NOW_MS - age_ms, counters or {})


def rows_by_name(config, statuses):
    return {r.name: r for r in source_rows(config, statuses, NOW_MS)}


def test_a_row_per_source_in_file_order_with_kind_address_state_and_tag_count():
    rows = source_rows(PLANT, {"opc": status("opc", 1_200, detail="4 items")}, NOW_MS)
    assert [r.name for r in rows] == ["opc", "mq"]
    opc, mq = rows
    assert (opc.kind, opc.address, opc.state, opc.detail) == ("opcua", "opc.tcp://127.0.0.1:1/x", "connected", "4 items")
    assert (opc.heartbeat, opc.heartbeat_age_s, opc.heartbeat_text) == (Heartbeat.FRESH, 1.2, "1.2 s ago")
    assert (opc.tag_count, mq.tag_count) == (4, 1)
    assert (mq.kind, mq.address) == ("mqtt", "embedded broker")


def test_discovered_tags_count_with_their_source():
    found = [Tag(name=f"F{i}.temp", source="mq", topic=f"plant/{i}") for i in range(3)]
    opc, mq = source_rows(PLANT, {}, NOW_MS, found)
    assert (opc.tag_count, opc.discovered_tag_count) == (4, 0)
    assert (mq.tag_count, mq.discovered_tag_count) == (4, 3)
    assert mq.as_dict()["discovered_tag_count"] == 3


def test_no_heartbeat_and_an_old_heartbeat_say_the_data_source_process_is_down():
    too_old_ms = int(SOURCE_HEARTBEAT_TIMEOUT_S * 1000) + 1
    rows = rows_by_name(PLANT, {"opc": status("opc", too_old_ms), "mq": None})
    assert rows["opc"].heartbeat is Heartbeat.STALE
    assert rows["opc"].heartbeat_text.startswith("stale heartbeat")
    assert rows["opc"].state == "connected"  # as last reported; the page says so
    assert rows["mq"].heartbeat is Heartbeat.MISSING and rows["mq"].heartbeat_age_s is None
    assert rows["mq"].heartbeat_text.startswith("no heartbeat")
    assert (rows["mq"].state, rows["mq"].counters) == ("unknown", ())
    at_the_limit = rows_by_name(PLANT, {"opc": status("opc", int(SOURCE_HEARTBEAT_TIMEOUT_S * 1000))})
    assert at_the_limit["opc"].heartbeat is Heartbeat.FRESH
    assert rows_by_name(PLANT, {})["opc"].heartbeat is Heartbeat.MISSING  # Redis unreachable: nothing known


def test_a_heartbeat_from_a_clock_slightly_ahead_is_not_a_negative_age():
    assert rows_by_name(PLANT, {"opc": status("opc", -300)})["opc"].heartbeat_age_s == 0.0


def test_counters_come_in_a_fixed_order_new_ones_after_and_loss_is_flagged_only_when_non_zero():
    counters = {"zz_new_counter": 7, "reconnects": 2, "received": 100, "dropped": 0,
                "server_queue_overflows": 3, "bad_payloads": 1, "connect_failures": 0, "missed_notifications": 4}
    row = rows_by_name(PLANT, {"opc": status("opc", 0, counters)})["opc"]
    assert [c.name for c in row.counters] == ["received", "bad_payloads", "dropped", "missed_notifications",
                                              "server_queue_overflows", "reconnects", "connect_failures",
                                              "zz_new_counter"]
    flagged = {c.name for c in row.counters if c.loss}
    assert flagged == {"server_queue_overflows", "bad_payloads", "missed_notifications"}
    assert row.has_loss
    assert {c.name: c.label for c in row.counters}["server_queue_overflows"] == "server queue overflows"
    quiet = rows_by_name(PLANT, {"opc": status("opc", 0, {"received": 5, "dropped": 0, "reconnects": 9})})["opc"]
    assert not quiet.has_loss


def test_as_dict_is_plain_json_with_counters_by_name_and_the_flagged_ones():
    row = rows_by_name(PLANT, {"opc": status("opc", 500, {"received": 5, "dropped": 2})})["opc"]
    record = row.as_dict()
    assert record["counters"] == {"received": 5, "dropped": 2}
    assert record["loss_counters"] == ["dropped"]
    assert record["heartbeat"] == "fresh" and record["heartbeat_age_s"] == 0.5
    assert record["name"] == "opc" and record["tag_count"] == 4


def test_addresses_never_show_credentials():
    config = parse_config("""
sources:
  secure: {kind: opcua, endpoint: "opc.tcp://plc-user:s3cret@10.0.0.5:4840/server",
           security: {policy: Basic256Sha256, mode: SignAndEncrypt},
           credentials: {username: opc-login, password: {env: OPC_PASSWORD}}}
  broker: {kind: mqtt, host: broker.plant.local, port: 8883, credentials: {username: mq-login, password: {file: /run/pw}}}
  default_port: {kind: mqtt, host: broker2}
  embedded_port: {kind: mqtt, port: 1884}
tags:
  - {name: A, source: secure, node_id: "ns=2;s=A"}
  - {name: B, source: broker, topic: b}
""", Path("creds.yaml"))
    rows = rows_by_name(config, {})
    assert rows["secure"].address == "opc.tcp://10.0.0.5:4840/server"
    assert rows["broker"].address == "broker.plant.local:8883"
    assert rows["default_port"].address == "broker2:1883"
    assert rows["embedded_port"].address == "embedded broker:1884"
    assert rows["default_port"].tag_count == 0
    text = repr([r.as_dict() for r in rows.values()])
    for secret in ("plc-user", "s3cret", "opc-login", "mq-login", "OPC_PASSWORD", "/run/pw"):
        assert secret not in text


def test_mqtt_and_sparkplug_refusals_are_marked_as_loss_but_their_ordinary_activity_is_not():
    counters = {"unknown_topics": 2, "sparkplug_seq_gaps": 1, "payload_not_json": 3,
                "template_tags": 40, "sparkplug_births": 5, "devices_offline": 1}
    row = rows_by_name(PLANT, {"opc": status("opc", 0, counters)})["opc"]
    assert {c.name for c in row.counters if c.loss} == {"unknown_topics", "sparkplug_seq_gaps", "payload_not_json"}
