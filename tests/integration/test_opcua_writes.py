"""Writes of every OPC UA data type, down the real road: Redis request -> source -> server -> readback -> answer."""
from __future__ import annotations

import struct

import pytest
from asyncua import Server, ua

from data_sources.opcua_source import OpcUaDataSource
from data_sources.write_handler import WriteHandler
from domain.config_model import DataType, OpcUaSource, Tag
from launcher.embedded_servers import free_port
from tag_store.write_requests import WriteStatus
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import request_write, running, wait_for_latest, wait_for_write_group

NAMESPACE = "urn:stacklight:test-writes"
SOURCE = "plc"
CLAMP_HIGH = 50.0
WRITE_TIMEOUT_S = 1.0


def float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


# node (= variant type name), tag data type, initial value, what is written, what the node then holds
WRITES = [
    ("Boolean", DataType.BOOL, False, True, True),
    ("Boolean", DataType.BOOL, False, "off", False),
    ("SByte", DataType.INT, 0, -128, -128),
    ("Byte", DataType.INT, 0, "255", 255),
    ("Int16", DataType.INT, 0, -32768, -32768),
    ("UInt16", DataType.INT, 0, 65535, 65535),
    ("Int32", DataType.INT, 0, -(2**31), -(2**31)),
    ("UInt32", DataType.INT, 0, 2**32 - 1, 2**32 - 1),
    # Beyond 2**53 a double cannot hold every integer: these must not pass through float.
    ("Int64", DataType.INT, 0, 2**63 - 1, 2**63 - 1),
    ("Int64", DataType.INT, 0, "-9223372036854775807", -(2**63) + 1),
    ("UInt64", DataType.INT, 0, 2**64 - 1, 2**64 - 1),
    ("UInt64", DataType.INT, 0, str(2**53 + 1), 2**53 + 1),
    ("Float", DataType.FLOAT, 0.0, 0.1, float32(0.1)),
    ("Double", DataType.FLOAT, 0.0, 0.1, 0.1),
    ("Double", DataType.FLOAT, 0.0, "-1.5e300", -1.5e300),
    ("String", DataType.STRING, "", "Füllstand ok", "Füllstand ok"),
]
NODE_TYPES = {node: data_type for node, data_type, *_ in WRITES}
INITIAL = {node: initial for node, _, initial, *_ in WRITES}


class WritePlant:
    """One writable node per variant type, a node the server refuses to write, and one that clamps."""

    def __init__(self) -> None:
        self.endpoint = f"opc.tcp://127.0.0.1:{free_port()}/writes"
        self.server = Server()
        self.nodes: dict[str, ua.NodeId] = {}

    async def setup(self) -> WritePlant:
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await self.server.register_namespace(NAMESPACE)
        nodes = [(name, getattr(ua.VariantType, name), INITIAL[name], True) for name in NODE_TYPES]
        nodes += [("Locked", ua.VariantType.Double, 9.0, False), ("Clamped", ua.VariantType.Double, 10.0, True)]
        for name, variant_type, initial, writable in nodes:
            node = await self.server.nodes.objects.add_variable(
                ua.NodeId(f"W.{name}", idx), name, ua.Variant(initial, variant_type))
            if writable:
                await node.set_writable()
            self.nodes[name] = node.nodeid
        self.server.iserver.aspace.set_attribute_value_setter(
            self.nodes["Clamped"], ua.AttributeIds.Value, self._clamp)
        await self.server.start()
        return self

    @staticmethod
    def _clamp(node, attribute, value: ua.DataValue) -> None:
        """Like a device with a hard limit: the write succeeds, the value stays at most CLAMP_HIGH."""
        clamped = min(value.Value.Value, CLAMP_HIGH)
        node.attributes[attribute].value = ua.DataValue(
            ua.Variant(clamped, ua.VariantType.Double), SourceTimestamp=value.SourceTimestamp)

    def get(self, name: str):
        return self.server.read_attribute_value(self.nodes[name]).Value.Value


def tag_name(node: str) -> str:
    return f"w.{node.lower()}"


def write_tags() -> list[Tag]:
    tags = [Tag(name=tag_name(node), source=SOURCE, node_id=f"nsu={NAMESPACE};s=W.{node}", data_type=data_type,
                writable=True) for node, data_type in NODE_TYPES.items()]
    return tags + [Tag(name=tag_name(node), source=SOURCE, node_id=f"nsu={NAMESPACE};s=W.{node}", writable=True)
                   for node in ("Locked", "Clamped")]


@pytest.fixture
async def plant():
    server = await WritePlant().setup()
    yield server
    await server.server.stop()


@pytest.fixture
async def road(plant, redis_client, tmp_path):
    """The source and its write handler running against the plant; yields once every tag has a value."""
    config = OpcUaSource(kind="opcua", endpoint=plant.endpoint, security={"policy": "None", "mode": "None"},
                         publishing_interval_ms=50, sampling_interval_ms=0, reconnect_max_delay_s=0.5,
                         write_timeout_s=WRITE_TIMEOUT_S)
    writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
    source = OpcUaDataSource(SOURCE, config, write_tags(), writer, data_dir=tmp_path)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        for tag in write_tags():
            await wait_for_latest(redis_client, tag.name, lambda tv: not tv.quality.is_bad)
        await wait_for_write_group(redis_client, SOURCE)
        yield source


async def test_every_data_type_is_written_and_read_back(plant, road, redis_client):
    for node, _data_type, _initial, written, stored in WRITES:
        case = f"{node} = {written!r}"
        outcome = await request_write(redis_client, SOURCE, tag_name(node), written)
        assert (outcome.status, outcome.reason) == (WriteStatus.DONE, "written and confirmed"), case
        assert outcome.readback == stored and outcome.device_status == "Good", case
        held = plant.get(node)
        assert held == stored and type(held) is type(stored), case
        tv = await wait_for_latest(redis_client, tag_name(node), lambda tv: tv.value == stored)  # noqa: B023
        assert not tv.quality.is_bad, case
    assert road.counters.writes_done == len(WRITES)


# node, what is written, part of the reason given
CANNOT_HOLD = [
    ("Byte", 300, "300 does not fit Byte (0 .. 255)"),
    ("UInt16", -1, "-1 does not fit UInt16 (0 .. 65535)"),
    ("SByte", "128", "does not fit SByte (-128 .. 127)"),
    ("Int64", 2**63, "does not fit Int64"),
    ("UInt64", 2**64, "does not fit UInt64"),
    ("Float", 1e39, "does not fit a Float node"),
    ("Int32", 1.5, "whole numbers only"),
    ("Boolean", "maybe", "is not on/off"),
    ("Double", "NaN", "finite number"),
]


async def test_a_value_the_node_cannot_hold_is_rejected_and_nothing_changes(plant, road, redis_client):
    for node, written, why in CANNOT_HOLD:
        outcome = await request_write(redis_client, SOURCE, tag_name(node), written)
        assert outcome.status is WriteStatus.REJECTED and why in outcome.reason, (node, written, outcome.reason)
    assert {node: plant.get(node) for node, *_ in CANNOT_HOLD} == {node: INITIAL[node] for node, *_ in CANNOT_HOLD}
    assert road.counters.writes_rejected == len(CANNOT_HOLD) and road.counters.writes_done == 0


async def test_a_node_the_server_refuses_answers_with_the_status_code_name(plant, road, redis_client):
    outcome = await request_write(redis_client, SOURCE, "w.locked", 1.0)
    assert outcome.status is WriteStatus.REJECTED
    assert outcome.device_status in ("BadUserAccessDenied", "BadNotWritable")
    assert outcome.reason == f"the server refused the write: {outcome.device_status}"
    assert plant.get("Locked") == 9.0


async def test_a_write_whose_readback_never_matches_times_out(plant, road, redis_client):
    outcome = await request_write(redis_client, SOURCE, "w.clamped", 80.0)
    assert outcome.status is WriteStatus.TIMED_OUT
    assert outcome.readback == CLAMP_HIGH and "readback is 50.0" in outcome.reason
    assert plant.get("Clamped") == CLAMP_HIGH
    # Within the clamp the same node confirms: the timeout was the readback, not the road.
    within = await request_write(redis_client, SOURCE, "w.clamped", 20.0)
    assert within.status is WriteStatus.DONE and plant.get("Clamped") == 20.0
