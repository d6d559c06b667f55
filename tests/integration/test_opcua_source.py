"""The OPC UA source against a real asyncua server on a free port: values, qualities, loss, writes."""
from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone

import pytest
from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography.x509.oid import ExtendedKeyUsageOID

from data_sources.opcua_source import OpcUaDataSource
from data_sources.write_handler import WriteHandler
from domain.config_model import Credentials, DataType, OpcUaSecurity, OpcUaSource, Tag
from domain.quality import (
    BAD_COMMUNICATION_ERROR,
    BAD_NO_COMMUNICATION,
    BAD_NODE_ID_UNKNOWN,
    BAD_SENSOR_FAILURE,
    BAD_WAITING_FOR_INITIAL_DATA,
    GOOD,
)
from launcher.embedded_servers import free_port
from tag_store.write_requests import WriteStatus
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import (
    BlackholeProxy,
    changes,
    history,
    latest,
    request_write,
    running,
    wait_for_latest,
    wait_for_write_group,
    wait_until,
)

NAMESPACE = "urn:stacklight:test-plant"
SOURCE = "plc"
STALE_AFTER_S = 1.5
AN_HOUR_AGO = datetime.now(timezone.utc) - timedelta(hours=1)

# name, variant type, initial value, writable on the server
NODES = [
    ("Level", ua.VariantType.Double, 1.5, True),
    ("Flag", ua.VariantType.Boolean, False, True),
    ("Small", ua.VariantType.Int16, -3, True),
    ("Count", ua.VariantType.UInt32, 7, True),
    ("Ratio", ua.VariantType.Float, 0.5, True),
    ("Label", ua.VariantType.String, "idle", True),
    ("Locked", ua.VariantType.Double, 9.0, False),
    ("Steady", ua.VariantType.Double, 42.0, True),
]


class PlantServer:
    """An asyncua server with its own namespace; stop() and start() again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/test"
        self.server = Server()
        self.nodes: dict[str, ua.NodeId] = {}

    async def setup(self) -> PlantServer:
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        index = await self.server.register_namespace(NAMESPACE)
        for name, variant_type, initial, writable in NODES:
            node = await self.server.nodes.objects.add_variable(
                ua.NodeId(f"Test.{name}", index), name, initial, varianttype=variant_type)
            if writable:
                await node.set_writable()
            self.nodes[name] = node.nodeid
        # Unchanged for an hour: its source time is older than anything Stacklight wrote.
        await self.set("Steady", 42.0, source_time=AN_HOUR_AGO)
        await self.server.start()
        return self

    async def set(self, name: str, value, status: int = 0, source_time: datetime | None = None) -> None:
        variant_type = next(n[1] for n in NODES if n[0] == name)
        await self.server.write_attribute_value(self.nodes[name], ua.DataValue(
            ua.Variant(value, variant_type), StatusCode=ua.StatusCode(status),
            SourceTimestamp=source_time or datetime.now(timezone.utc)))

    def get(self, name: str):
        return self.server.read_attribute_value(self.nodes[name]).Value.Value


def plant_tags(extra: list[Tag] = ()) -> list[Tag]:
    def tag(name, data_type=DataType.FLOAT, writable=False, **kwargs):
        return Tag(name=f"t.{name.lower()}", source=SOURCE, node_id=f"nsu={NAMESPACE};s=Test.{name}",
                   data_type=data_type, writable=writable, **kwargs)
    return [
        tag("Level", writable=True, range={"low": -100, "high": 100}),
        tag("Flag", DataType.BOOL, writable=True),
        tag("Small", DataType.INT, writable=True),
        tag("Count", DataType.INT, writable=True),
        tag("Ratio", writable=True),
        tag("Label", DataType.STRING, writable=True),
        tag("Locked", writable=True),
        tag("Steady"),
        *extra,
    ]


def source_config(endpoint: str) -> OpcUaSource:
    return OpcUaSource(kind="opcua", endpoint=endpoint, security={"policy": "None", "mode": "None"},
                       publishing_interval_ms=50, sampling_interval_ms=0, stale_after_s=STALE_AFTER_S,
                       reconnect_max_delay_s=0.5, write_timeout_s=2.0)


@pytest.fixture
async def plant():
    server = await PlantServer().setup()
    yield server
    await server.server.stop()


@pytest.fixture
def make_source(redis_client, tmp_path):
    def make(endpoint: str, tags: list[Tag] | None = None) -> tuple[OpcUaDataSource, TagStoreWriter]:
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        return OpcUaDataSource(SOURCE, source_config(endpoint), tags or plant_tags(), writer, data_dir=tmp_path), writer
    return make


def is_good(tv) -> bool:
    return tv.quality == GOOD


async def test_values_reach_redis_with_quality_and_source_time(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint)
    async with running(writer.run(), source.run()):
        level = await wait_for_latest(redis_client, "t.level", is_good)
        assert level.value == 1.5 and not level.source_time_is_receive_time
        before_ms = int(time.time() * 1000)
        await plant.set("Level", 2.25)
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.value == 2.25)
        assert level.quality == GOOD and abs(level.source_time_ms - before_ms) < 1000
        assert level.receive_time_ms >= level.source_time_ms - 5
        for tag, value in [("t.flag", False), ("t.small", -3), ("t.count", 7), ("t.ratio", 0.5), ("t.label", "idle")]:
            tv = await wait_for_latest(redis_client, tag, is_good)
            assert tv.value == value and type(tv.value) is type(value), tag
        # Waiting-for-data first, then the device's value despite its hour-old source time.
        steady = await wait_for_latest(redis_client, "t.steady", is_good)
        assert steady.value == 42.0 and steady.source_time_ms == pytest.approx(AN_HOUR_AGO.timestamp() * 1000, abs=1)
        steady_history = await history(redis_client, "t.steady")
        assert [tv.quality for tv in steady_history] == [BAD_WAITING_FOR_INITIAL_DATA, GOOD]
        level_history = [tv.value for tv in await history(redis_client, "t.level")]
        assert level_history[-2:] == [1.5, 2.25]
        assert [tv.value for tv in await changes(redis_client) if tv.tag == "t.level"][-2:] == [1.5, 2.25]
        assert source.counters.received >= 9 and source.counters.dropped == 0


async def test_a_server_without_source_times_gets_the_receive_time_flagged(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint)
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "t.level", is_good)
        no_source_time = ua.DataValue(ua.Variant(3.0, ua.VariantType.Double))
        await plant.server.write_attribute_value(plant.nodes["Level"], no_source_time)
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.value == 3.0)
        assert level.source_time_is_receive_time and level.source_time_ms == level.receive_time_ms


async def test_a_device_status_code_reaches_redis_with_its_name(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint)
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "t.level", is_good)
        await plant.set("Level", 0.0, status=ua.StatusCodes.BadSensorFailure)
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality.is_bad)
        assert (level.quality.code, level.quality.name) == (BAD_SENSOR_FAILURE.code, "BadSensorFailure")
        await plant.set("Level", 1.0, status=ua.StatusCodes.UncertainLastUsableValue)
        level = await wait_for_latest(redis_client, "t.level", lambda tv: not tv.quality.is_bad)
        assert (level.value, level.quality.name) == (1.0, "UncertainLastUsableValue")


async def test_an_unknown_node_spoils_only_its_own_tag(plant, make_source, redis_client):
    ghosts = [Tag(name="t.ghost", source=SOURCE, node_id=f"nsu={NAMESPACE};s=Test.Nowhere"),
              Tag(name="t.elsewhere", source=SOURCE, node_id="nsu=urn:not-here;s=X")]
    source, writer = make_source(plant.endpoint, plant_tags(ghosts))
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "t.level", is_good)
        ghost = await wait_for_latest(
            redis_client, "t.ghost", lambda tv: tv.quality.is_bad and tv.quality != BAD_WAITING_FOR_INITIAL_DATA)
        assert ghost.quality.name == "BadNodeIdUnknown"
        assert (await latest(redis_client, "t.elsewhere")).quality == BAD_NODE_ID_UNKNOWN


async def test_server_loss_turns_tags_bad_and_a_restart_brings_them_back(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint)
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "t.level", is_good)
        await plant.server.stop()
        lost_at = time.monotonic()
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality.is_bad,
                                      timeout_s=STALE_AFTER_S + 2)
        assert level.quality in (BAD_COMMUNICATION_ERROR, BAD_NO_COMMUNICATION) and level.value is None
        assert time.monotonic() - lost_at < STALE_AFTER_S + 1
        for tag in ("t.flag", "t.label", "t.steady"):
            assert (await latest(redis_client, tag)).quality.is_bad
        await plant.server.start()
        await plant.set("Level", 4.5)
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.value == 4.5, timeout_s=10)
        assert level.quality == GOOD
        # The unchanged value comes back too, with its old source time.
        await wait_for_latest(redis_client, "t.steady", is_good, timeout_s=5)
        assert source.counters.reconnects == 1


async def test_a_silent_link_is_caught_within_stale_after(plant, make_source, redis_client):
    proxy = await BlackholeProxy(plant.port, free_port()).start()
    source, writer = make_source(f"opc.tcp://127.0.0.1:{proxy.port}/test")
    try:
        async with running(writer.run(), source.run()):
            await wait_for_latest(redis_client, "t.level", is_good)
            # Still connected, but nothing arrives: no data, no keep-alive, no answers.
            proxy.blackhole()
            silent_at = time.monotonic()
            level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality.is_bad,
                                          timeout_s=STALE_AFTER_S + 3)
            assert level.quality in (BAD_NO_COMMUNICATION, BAD_COMMUNICATION_ERROR)
            assert time.monotonic() - silent_at < STALE_AFTER_S + 1
            await plant.set("Level", 5.5)
            await wait_for_latest(redis_client, "t.level", lambda tv: tv.value == 5.5, timeout_s=10)
    finally:
        await proxy.close()


async def test_a_session_the_server_closes_is_replaced_and_its_subscriptions_recreated(
        plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint)
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "t.level", is_good)
        sessions = list(plant.server.iserver._external_sessions.values())
        assert len(sessions) == 1
        # What a server does when a session expires or an administrator ends it: the connection stays up.
        await sessions[0].close_session(delete_subs=True)
        closed_at = time.monotonic()
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality.is_bad,
                                      timeout_s=STALE_AFTER_S + 3)
        assert level.quality in (BAD_NO_COMMUNICATION, BAD_COMMUNICATION_ERROR)
        assert time.monotonic() - closed_at < STALE_AFTER_S + 1
        await plant.set("Level", 6.5)
        await wait_for_latest(redis_client, "t.level", lambda tv: tv.value == 6.5 and is_good(tv), timeout_s=10)
        assert source.counters.reconnects == 1
        assert sessions[0] not in plant.server.iserver._external_sessions.values()


async def test_a_link_lost_longer_than_the_session_timeout_gets_a_new_session(plant, make_source, redis_client):
    # The server keeps a silent session for 2 s only (clients ask for 60 s): it expires while the link is dead.
    plant.server.iserver.min_session_timeout_ms = plant.server.iserver.max_session_timeout_ms = 2000
    proxy = await BlackholeProxy(plant.port, free_port()).start()
    source, writer = make_source(f"opc.tcp://127.0.0.1:{proxy.port}/test")
    try:
        async with running(writer.run(), source.run()):
            await wait_for_latest(redis_client, "t.level", is_good)
            [expired] = plant.server.iserver._external_sessions.values()
            proxy.blackhole()
            await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality.is_bad, timeout_s=STALE_AFTER_S + 3)
            await wait_until(lambda: expired not in plant.server.iserver._external_sessions.values(), timeout_s=5)
            await plant.set("Level", 7.5)
            await wait_for_latest(redis_client, "t.level", lambda tv: tv.value == 7.5 and is_good(tv), timeout_s=10)
            assert source.counters.reconnects >= 1
    finally:
        await proxy.close()


WRITES = [  # tag, node, requested value, what the node holds afterwards
    ("t.flag", "Flag", True, True),
    ("t.small", "Small", -1234, -1234),
    ("t.count", "Count", 4_000_000_000, 4_000_000_000),
    ("t.ratio", "Ratio", 1.1, pytest.approx(1.1, rel=1e-7)),  # a Float node holds single precision
    ("t.level", "Level", 12.345, 12.345),
    ("t.label", "Label", "running", "running"),
]


async def test_writes_are_sent_with_the_node_type_and_confirmed_by_readback(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        await wait_for_latest(redis_client, "t.label", is_good)
        await wait_for_write_group(redis_client, SOURCE)
        for tag, node, value, stored in WRITES:
            outcome = await request_write(redis_client, SOURCE, tag, value)
            assert (outcome.status, outcome.reason) == (WriteStatus.DONE, "written and confirmed"), tag
            assert outcome.readback == stored and plant.get(node) == stored, tag
            await wait_for_latest(redis_client, tag, lambda tv: tv.value == stored)  # noqa: B023
        assert source.counters.writes_done == len(WRITES)


async def test_writes_refused_before_sending(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        await wait_for_latest(redis_client, "t.steady", is_good)
        await wait_for_write_group(redis_client, SOURCE)
        not_writable = await request_write(redis_client, SOURCE, "t.steady", 1.0)
        assert (not_writable.status, not_writable.reason) == (WriteStatus.REJECTED, "t.steady is not writable")
        out_of_range = await request_write(redis_client, SOURCE, "t.level", 500)
        assert out_of_range.status is WriteStatus.REJECTED and "outside the engineering range" in out_of_range.reason
        too_big = await request_write(redis_client, SOURCE, "t.small", 40_000)
        assert too_big.status is WriteStatus.REJECTED and "does not fit Int16" in too_big.reason
        stranger = await request_write(redis_client, SOURCE, "other.tag", 1)
        assert stranger.status is WriteStatus.REJECTED and "not a tag of source plc" in stranger.reason
        assert plant.get("Steady") == 42.0 and plant.get("Level") == 1.5 and plant.get("Small") == -3


async def test_a_write_the_server_refuses_is_answered_with_its_status_code(plant, make_source, redis_client):
    source, writer = make_source(plant.endpoint)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        await wait_for_latest(redis_client, "t.locked", is_good)
        await wait_for_write_group(redis_client, SOURCE)
        outcome = await request_write(redis_client, SOURCE, "t.locked", 1.0)
        assert outcome.status is WriteStatus.REJECTED
        assert outcome.device_status in ("BadUserAccessDenied", "BadNotWritable")
        assert outcome.device_status in outcome.reason
        assert plant.get("Locked") == 9.0


class OnlyTheOperator:
    """The server's user manager: one user name and password, nobody else."""

    def get_user(self, iserver, username=None, password=None, certificate=None):
        return User(role=UserRole.User) if (username, password) == ("operator", "s3cret") else None


@pytest.fixture
async def secure_plant(tmp_path):
    server = Server(user_manager=OnlyTheOperator())
    await server.init()
    port = free_port()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/secure")
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    server.set_identity_tokens([ua.UserNameIdentityToken])
    await server.set_application_uri("urn:stacklight:test-secure-server")
    key_file, cert_file = tmp_path / "server_key.pem", tmp_path / "server_cert.der"
    await cert_gen.setup_self_signed_certificate(key_file, cert_file, "urn:stacklight:test-secure-server",
                                                 socket.gethostname(), [ExtendedKeyUsageOID.SERVER_AUTH], {})
    await server.load_certificate(str(cert_file))
    await server.load_private_key(str(key_file))
    index = await server.register_namespace(NAMESPACE)
    await server.nodes.objects.add_variable(ua.NodeId("Test.Level", index), "Level", 3.25)
    await server.start()
    yield f"opc.tcp://127.0.0.1:{port}/secure"
    await server.stop()


async def test_an_encrypted_session_with_user_and_password(secure_plant, redis_client, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_OPCUA_PASSWORD", "s3cret")
    monkeypatch.setenv("TEST_OPCUA_WRONG_PASSWORD", "guess")
    tags = [Tag(name="t.level", source=SOURCE, node_id=f"nsu={NAMESPACE};s=Test.Level")]

    def secure_source(password_env: str, name: str) -> tuple[OpcUaDataSource, TagStoreWriter]:
        config = source_config(secure_plant).model_copy(update={
            "security": OpcUaSecurity(policy="Basic256Sha256", mode="SignAndEncrypt"),
            "credentials": Credentials(username="operator", password={"env": password_env}),
            "trust_on_first_use": True,
        })
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        return OpcUaDataSource(name, config, tags, writer, data_dir=tmp_path), writer

    source, writer = secure_source("TEST_OPCUA_PASSWORD", SOURCE)
    async with running(writer.run(), source.run()):
        level = await wait_for_latest(redis_client, "t.level", is_good, timeout_s=10)
        assert level.value == 3.25
    assert (tmp_path / "pki" / "own" / "client_cert.der").is_file()
    assert len(list((tmp_path / "pki" / "trusted").iterdir())) == 1
    await redis_client.delete("sl:latest")
    refused, writer = secure_source("TEST_OPCUA_WRONG_PASSWORD", "intruder")
    async with running(writer.run(), refused.run()):
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality.name == "BadUserAccessDenied",
                                      timeout_s=10)
        assert level.value is None and "BadUserAccessDenied" in refused.detail
        assert refused.counters.connect_failures >= 1 and refused.counters.connects == 0
