"""The simulator against real clients: asyncua on its OPC UA face, mosquitto between its MQTT face and us.

The contract is config/demo_plant.yaml: every tag there must be served with the right type.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import aiomqtt
import pytest
import yaml
from asyncua import Client, ua

from domain.config_loading import DEFAULT_CONFIG_PATH, load_config, parse_config
from domain.config_model import DataType, Tag
from launcher.embedded_servers import free_port, wait_for_port
from simulator.extra_tags import write_extra_tags_config
from simulator.mqtt_unit import COMMAND_TOPIC, STATE_TOPIC
from simulator.runner import SimulatorOptions, run_simulator, running_simulator

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIANT_OF = {DataType.FLOAT: ua.VariantType.Double, DataType.BOOL: ua.VariantType.Boolean,
              DataType.INT: ua.VariantType.Int32}


def demo_config(opcua_port: int = 4840):
    return load_config(DEFAULT_CONFIG_PATH, environ={"STACKLIGHT_SIM_OPCUA_PORT": str(opcua_port)})


async def resolve(client: Client, node_id: str):
    """'nsu=<uri>;s=<id>' -> a Node, looking the namespace index up on the server."""
    uri_part, id_part = node_id.split(";", 1)
    index = await client.get_namespace_index(uri_part.removeprefix("nsu="))
    return client.get_node(f"ns={index};{id_part}")


async def eventually(check, timeout_s: float = 5.0, interval_s: float = 0.1):
    """Poll an async check until it returns a truthy value."""
    async with asyncio.timeout(timeout_s):
        while not (result := await check()):
            await asyncio.sleep(interval_s)
    return result


# --- OPC UA ------------------------------------------------------------------

@pytest.fixture
async def opcua_sim():
    options = SimulatorOptions(opcua_port=free_port(), mqtt_host=None, extra_tags=20, extra_rate_hz=10)
    async with running_simulator(options) as sim:
        yield sim


@pytest.fixture
async def opcua_client(opcua_sim):
    async with Client(opcua_sim.opcua.endpoint, timeout=5) as client:
        yield client


async def test_serves_every_opcua_tag_of_the_demo_plant_with_its_type(opcua_sim, opcua_client):
    config = demo_config(opcua_sim.opcua.port)
    assert config.sources["plant_opcua"].endpoint == opcua_sim.opcua.endpoint
    tags = config.tags_of_source("plant_opcua")
    assert len(tags) == 16
    for tag in tags:
        node = await resolve(opcua_client, tag.node_id)
        value = await node.read_data_value()
        assert value.StatusCode.is_good(), tag.name
        assert value.Value.VariantType == VARIANT_OF[tag.data_type], tag.name
        assert await node.read_data_type_as_variant_type() == VARIANT_OF[tag.data_type], tag.name
        assert value.SourceTimestamp is not None, tag.name
        if tag.range is not None:
            assert tag.range.low <= value.Value.Value <= tag.range.high, tag.name
        access = await node.read_attribute(ua.AttributeIds.AccessLevel)
        writable = bool(access.Value.Value & ua.AccessLevel.CurrentWrite.mask)
        assert writable == tag.writable, tag.name


async def test_analog_variables_carry_eu_range_and_units(opcua_client):
    level = await resolve(opcua_client, "nsu=urn:stacklight:demo-plant;s=T101.Level")
    eu_range = await level.get_child(["0:EURange"])
    units = await level.get_child(["0:EngineeringUnits"])
    assert await eu_range.read_value() == ua.Range(Low=0.0, High=5.0)
    assert (await units.read_value()).DisplayName.Text == "m"
    folder = await opcua_client.nodes.objects.get_child([f"{level.nodeid.NamespaceIndex}:T101"])
    assert level in await folder.get_children()


async def test_level_is_live(opcua_client):
    level = await resolve(opcua_client, "nsu=urn:stacklight:demo-plant;s=T101.Level")
    first = await level.read_data_value()
    await asyncio.sleep(0.5)
    second = await level.read_data_value()
    assert 0.0 <= second.Value.Value <= 5.0
    assert second.Value.Value != first.Value.Value
    assert second.SourceTimestamp > first.SourceTimestamp


async def test_setpoint_write_drives_the_heater_and_persists(opcua_sim, opcua_client):
    ns = "nsu=urn:stacklight:demo-plant;s="
    setpoint = await resolve(opcua_client, ns + "R201.TemperatureSetpoint")
    heater = await resolve(opcua_client, ns + "R201.HeaterOutput")
    temperature = await resolve(opcua_client, ns + "R201.Temperature")
    heater_before = await heater.read_value()
    temperature_before = await temperature.read_value()
    await setpoint.write_value(ua.DataValue(ua.Variant(85.0, ua.VariantType.Double)))
    assert opcua_sim.model.snapshot().reactor_setpoint_degc == 85.0

    async def heater_raised():
        return await heater.read_value() > heater_before + 30

    await eventually(heater_raised, timeout_s=2)

    async def temperature_rising():
        return await temperature.read_value() > temperature_before + 2

    await eventually(temperature_rising, timeout_s=5)
    # The simulator kept publishing all along and never put the old setpoint back.
    written = await setpoint.read_data_value()
    assert written.Value.Value == 85.0
    assert written.SourceTimestamp is not None


async def test_pump_command_stops_the_pump_and_its_outflow(opcua_client):
    ns = "nsu=urn:stacklight:demo-plant;s="
    command = await resolve(opcua_client, ns + "P101.RunCommand")
    running = await resolve(opcua_client, ns + "P101.Running")
    outflow = await resolve(opcua_client, ns + "T101.Outflow")
    assert await running.read_value() is True
    await command.write_value(ua.DataValue(ua.Variant(False, ua.VariantType.Boolean)))

    async def stopped():
        return await running.read_value() is False and await outflow.read_value() == 0.0

    await eventually(stopped, timeout_s=3)
    assert await command.read_value() is False


async def test_writes_are_clamped_and_wrong_types_refused(opcua_client):
    ns = "nsu=urn:stacklight:demo-plant;s="
    valve = await resolve(opcua_client, ns + "T101.InletValve")
    await valve.write_value(ua.DataValue(ua.Variant(150.0, ua.VariantType.Double)))
    assert await valve.read_value() == 100.0
    with pytest.raises(ua.UaStatusCodeError) as refused:
        await valve.write_value(ua.DataValue(ua.Variant(30, ua.VariantType.Int32)))
    assert refused.value.code == ua.StatusCodes.BadTypeMismatch
    assert await valve.read_value() == 100.0
    # A value written with Bad quality is not a command: the plant keeps its valve where it was.
    await valve.write_value(ua.DataValue(ua.Variant(10.0, ua.VariantType.Double),
                                         StatusCode=ua.StatusCode(ua.StatusCodes.BadOutOfService)))
    restored = await valve.read_data_value()
    assert restored.Value.Value == 100.0 and restored.StatusCode.is_good()
    level = await resolve(opcua_client, ns + "T101.Level")
    with pytest.raises(ua.UaStatusCodeError):
        await level.write_value(ua.DataValue(ua.Variant(4.0, ua.VariantType.Double)))


async def test_extra_tags_change_every_tick(opcua_client):
    first_node = await resolve(opcua_client, "nsu=urn:stacklight:demo-plant;s=Extra.Tag00001")
    last_node = await resolve(opcua_client, "nsu=urn:stacklight:demo-plant;s=Extra.Tag00020")
    before = [await first_node.read_value(), await last_node.read_value()]
    await asyncio.sleep(0.35)
    after = [await first_node.read_value(), await last_node.read_value()]
    assert all(a != b for a, b in zip(before, after))
    assert all(0 < v < 100 for v in after)
    assert await first_node.read_data_type_as_variant_type() == ua.VariantType.Double


def test_extra_tags_config_is_valid_and_appends_to_the_demo_plant(tmp_path):
    block = tmp_path / "extra.yaml"
    write_extra_tags_config(block, 3)
    entries = yaml.safe_load(block.read_text())
    tags = [Tag.model_validate(entry) for entry in entries]
    assert [t.node_id for t in tags][-1] == "nsu=urn:stacklight:demo-plant;s=Extra.Tag00003"
    combined = DEFAULT_CONFIG_PATH.read_text() + block.read_text()
    config = parse_config(combined, tmp_path / "combined.yaml", environ={})
    assert config.tag("Extra.Tag00002").source == "plant_opcua"
    assert len(config.tags) == len(demo_config().tags) + 3


async def test_run_simulator_returns_when_told_to_stop():
    stop = asyncio.Event()
    port = free_port()
    runner = asyncio.create_task(run_simulator(SimulatorOptions(opcua_port=port, mqtt_host=None), stop))
    await asyncio.to_thread(wait_for_port, port, 10)
    stop.set()
    await asyncio.wait_for(runner, 5)
    with pytest.raises(OSError):
        await asyncio.to_thread(wait_for_port, port, 0.3)


def test_command_line_serves_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    config_file = tmp_path / "extra.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--opcua-port", str(port), "--no-mqtt",
         "--extra-tags", "5", "--write-extra-config", str(config_file)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        wait_for_port(port, 10, process)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert f"opc.tcp://127.0.0.1:{port}/stacklight/demo" in output
    assert len(yaml.safe_load(config_file.read_text())) == 5


# --- MQTT --------------------------------------------------------------------

@pytest.fixture
async def mqtt_sim(mqtt_broker):
    options = SimulatorOptions(opcua_port=None, mqtt_host="127.0.0.1", mqtt_port=mqtt_broker.port)
    async with running_simulator(options) as sim:
        await asyncio.wait_for(sim.mqtt.connected.wait(), 5)
        yield sim


@pytest.fixture
async def mqtt_client(mqtt_broker):
    async with aiomqtt.Client("127.0.0.1", mqtt_broker.port, identifier="test-observer") as client:
        yield client


async def next_payload(client: aiomqtt.Client, topic: str, timeout_s: float = 5.0) -> bytes:
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            if str(message.topic) == topic:
                return message.payload
    raise AssertionError("unreachable")


async def state_matching(client: aiomqtt.Client, predicate, timeout_s: float) -> dict:
    async with asyncio.timeout(timeout_s):
        while True:
            state = json.loads(await next_payload(client, STATE_TOPIC, timeout_s))
            if predicate(state):
                return state


def value_at(document: dict, path: str):
    for key in path.split("."):
        document = document[key]
    return document


async def test_publishes_every_mqtt_tag_of_the_demo_plant(mqtt_sim, mqtt_client):
    tags = demo_config().tags_of_source("utility_mqtt")
    topics = {tag.topic for tag in tags}
    for topic in topics:
        await mqtt_client.subscribe(topic)
    payloads: dict[str, bytes] = {}
    async with asyncio.timeout(5):
        async for message in mqtt_client.messages:
            payloads[str(message.topic)] = message.payload
            if set(payloads) == topics:
                break
    state = json.loads(payloads[STATE_TOPIC])
    assert datetime.fromisoformat(state["ts"]).utcoffset().total_seconds() == 0
    for tag in tags:
        if tag.value_path is None:
            value = float(payloads[tag.topic])
        else:
            value = value_at(json.loads(payloads[tag.topic]), tag.value_path)
        if tag.data_type is DataType.BOOL:
            assert isinstance(value, bool), tag.name
        else:
            assert isinstance(value, int | float) and not isinstance(value, bool), tag.name
        if tag.range is not None:
            assert tag.range.low <= value <= tag.range.high, tag.name


async def test_state_is_retained_for_late_subscribers(mqtt_sim, mqtt_broker):
    await asyncio.sleep(0.2)
    async with aiomqtt.Client("127.0.0.1", mqtt_broker.port, identifier="late") as late:
        await late.subscribe(STATE_TOPIC)
        async with asyncio.timeout(0.8):  # sooner than the next periodic publish
            async for message in late.messages:
                assert message.retain
                break


async def test_setpoint_command_is_followed_by_state(mqtt_sim, mqtt_client):
    setpoint_tag = demo_config().tag("C401.pressure_setpoint")
    await mqtt_client.subscribe(STATE_TOPIC)
    await next_payload(mqtt_client, STATE_TOPIC)  # the retained one
    command = setpoint_tag.command_template.replace("{value}", json.dumps(8.0))
    await mqtt_client.publish(setpoint_tag.command_topic, command, qos=1)
    # Published at once after the command, not at the next 1 s tick.
    state = await state_matching(mqtt_client, lambda s: s["pressure_setpoint"] == 8.0, timeout_s=0.9)
    assert state["discharge"]["pressure"] < 7.5
    await state_matching(mqtt_client, lambda s: s["discharge"]["pressure"] > 7.5, timeout_s=6)


async def test_run_command_stops_the_compressor(mqtt_sim, mqtt_client):
    running_tag = demo_config().tag("C401.running")
    await mqtt_client.subscribe(STATE_TOPIC)
    await mqtt_client.publish(running_tag.command_topic, running_tag.command_template.replace("{value}", "false"))
    state = await state_matching(mqtt_client, lambda s: s["motor"]["running"] is False, timeout_s=3)
    assert state["motor"]["current"] == 0.0 and state["flow"] == 0.0


async def test_garbage_commands_are_ignored_and_the_unit_carries_on(mqtt_sim, mqtt_client):
    await mqtt_client.subscribe(STATE_TOPIC)
    for garbage in (b"garbage", b"\xff\xfe", b'{"run": "yes"}', b"[]", b'{"pressure_setpoint": 1e999}',
                    b'{"valve": 3}', b""):
        await mqtt_client.publish(COMMAND_TOPIC, garbage, qos=1)
    await mqtt_client.publish(COMMAND_TOPIC, b'{"pressure_setpoint": 6.5}', qos=1)
    await state_matching(mqtt_client, lambda s: s["pressure_setpoint"] == 6.5, timeout_s=3)
    assert mqtt_sim.mqtt.commands_rejected == 7
    assert mqtt_sim.model.snapshot().compressor_running is True
    assert not any(task.done() for task in mqtt_sim.tasks)


async def test_reconnects_after_the_broker_restarts(mqtt_sim, mqtt_broker):
    await asyncio.to_thread(mqtt_broker.stop)

    async def disconnected():
        return not mqtt_sim.mqtt.connected.is_set()

    await eventually(disconnected, timeout_s=3)
    await asyncio.to_thread(mqtt_broker.start)
    await asyncio.wait_for(mqtt_sim.mqtt.connected.wait(), 8)
    async with aiomqtt.Client("127.0.0.1", mqtt_broker.port, identifier="after-restart") as client:
        await client.subscribe(STATE_TOPIC)
        await next_payload(client, STATE_TOPIC, timeout_s=3)
