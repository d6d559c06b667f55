"""The OPC UA source against node-opcua, a second, independent OPC UA stack (not asyncua's own server).

Values and qualities, security, writes of every data type, a crash and restart, browse and import:
each as it reaches Redis through the real OpcUaDataSource and TagStoreWriter. One server is shared
by the module; the crash test has its own. Skipped, with the reason, where node or node-opcua is
missing (`make test` installs it).
"""
from __future__ import annotations

import asyncio
import shutil
import time

import pytest
import yaml
from asyncua import Client, ua

from data_sources.opcua_browse import browse, connected, tags_yaml
from data_sources.opcua_client import USER_REFUSED_CODES
from data_sources.opcua_security import (
    BAD_CERTIFICATE_UNTRUSTED,
    OWN_CERTIFICATE_FILE,
    PkiDirs,
    load_certificate,
    thumbprint_sha256,
)
from data_sources.opcua_source import OpcUaDataSource
from data_sources.opcua_values import resolve_node_id
from data_sources.write_handler import WriteHandler
from domain.config_loading import parse_config
from domain.config_model import Credentials, DataType, OpcUaSource, Tag
from domain.quality import (
    BAD_COMMUNICATION_ERROR,
    BAD_NO_COMMUNICATION,
    BAD_SENSOR_FAILURE,
    GOOD,
    UNCERTAIN_LAST_USABLE_VALUE,
)
from tag_store.source_status import ConnectionState
from tag_store.write_requests import WriteStatus
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import (
    latest,
    request_write,
    running,
    wait_for_latest,
    wait_for_write_group,
)
from tests.interop.node_opcua import NAMESPACE, PASSWORD, USERNAME, NodeOpcUaServer, node_id, serve_or_skip

SOURCE = "node-plc"
STALE_AFTER_S = 1.5
# The source's watchdog notices a closed connection within 0.5 s (opcua_source module docstring).
CLOSED_CONNECTION_NOTICED_S = 0.5


@pytest.fixture(scope="module")
def node_server(tmp_path_factory):
    """One node-opcua server for the module's tests that do not crash it."""
    yield from serve_or_skip(tmp_path_factory.mktemp("node-opcua"))


@pytest.fixture
def crashable_server(tmp_path):
    yield from serve_or_skip(tmp_path / "node-opcua")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "stacklight"


@pytest.fixture
def make_source(redis_client, data_dir, monkeypatch):
    monkeypatch.setenv("TEST_NODE_OPCUA_PASSWORD", PASSWORD)
    monkeypatch.setenv("TEST_NODE_OPCUA_WRONG_PASSWORD", "guess")

    def make(endpoint: str, tags: list[Tag], policy: str = "None", mode: str = "None",
             password_env: str | None = None) -> tuple[OpcUaDataSource, TagStoreWriter]:
        credentials = None if password_env is None else Credentials(username=USERNAME, password={"env": password_env})
        config = OpcUaSource(kind="opcua", endpoint=endpoint, security={"policy": policy, "mode": mode},
                             credentials=credentials, publishing_interval_ms=50, sampling_interval_ms=0,
                             stale_after_s=STALE_AFTER_S, reconnect_max_delay_s=0.5, write_timeout_s=2.0)
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        return OpcUaDataSource(SOURCE, config, tags, writer, data_dir=data_dir), writer
    return make


def tag(name: str, data_type: DataType = DataType.FLOAT, **kwargs) -> Tag:
    return Tag(name=f"n.{name.lower()}", source=SOURCE, node_id=node_id(name), data_type=data_type, **kwargs)


def is_good(tv) -> bool:
    return tv.quality == GOOD


async def read_directly(endpoint: str, name: str):
    """The variable's DataValue as node-opcua serves it to a plain asyncua client (not through Stacklight)."""
    async with Client(endpoint) as client:
        node = client.get_node(resolve_node_id(node_id(name), await client.get_namespace_array()))
        return await node.read_data_value()


# --- values and qualities ---------------------------------------------------------------------------

async def test_values_flow_with_good_quality_and_the_servers_source_time(node_server, make_source, redis_client):
    source, writer = make_source(node_server.endpoint, [tag("Counter"), tag("Sensor"), tag("String", DataType.STRING)])
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "n.sensor", is_good)
        await node_server.set("Sensor", 21.5)
        sensor = await wait_for_latest(redis_client, "n.sensor", lambda tv: tv.value == 21.5)
        served = await read_directly(node_server.endpoint, "Sensor")
        assert sensor.quality == GOOD and not sensor.source_time_is_receive_time
        assert sensor.source_time_ms == int(served.SourceTimestamp.timestamp() * 1000)
        assert type((await wait_for_latest(redis_client, "n.string", is_good)).value) is str
        # The Counter goes up by one every 100 ms, each with its own source time.
        first = await wait_for_latest(redis_client, "n.counter", is_good)
        later = await wait_for_latest(redis_client, "n.counter", lambda tv: tv.value >= first.value + 5)
        assert later.quality == GOOD and later.source_time_ms > first.source_time_ms
        assert source.counters.dropped == 0 and source.state is ConnectionState.CONNECTED


async def test_status_codes_with_sub_codes_reach_redis_by_name(node_server, make_source, redis_client):
    source, writer = make_source(node_server.endpoint, [tag("Sensor")])
    async with running(writer.run(), source.run()):
        await node_server.set("Sensor", 1.0)
        await wait_for_latest(redis_client, "n.sensor", lambda tv: tv.value == 1.0 and is_good(tv))
        await node_server.set("Sensor", 2.0, status="BadSensorFailure")
        sensor = await wait_for_latest(redis_client, "n.sensor", lambda tv: tv.quality.is_bad)
        assert (sensor.quality.code, sensor.quality.name) == (BAD_SENSOR_FAILURE.code, "BadSensorFailure")
        await node_server.set("Sensor", 3.0, status="UncertainLastUsableValue")
        sensor = await wait_for_latest(redis_client, "n.sensor", lambda tv: tv.value == 3.0)
        assert (sensor.quality.code, sensor.quality.name) == (UNCERTAIN_LAST_USABLE_VALUE.code,
                                                              "UncertainLastUsableValue")
        await node_server.set("Sensor", 4.0)
        await wait_for_latest(redis_client, "n.sensor", lambda tv: tv.value == 4.0 and is_good(tv))


async def test_node_opcua_stamps_a_value_set_without_source_time(node_server, make_source, redis_client):
    """node-opcua fills in a missing SourceTimestamp itself (UAVariable repairs it; touchValue sets it to now).

    So no DataValue without one ever leaves this server: the read below proves it, and
    Stacklight rightly keeps the server's time unflagged. (The flag itself is tested against
    asyncua in test_opcua_source.py, which can send a DataValue without SourceTimestamp.)
    """
    source, writer = make_source(node_server.endpoint, [tag("Sensor")])
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "n.sensor", is_good)
        await node_server.set("Sensor", 7.5, no_source_time=True)
        sensor = await wait_for_latest(redis_client, "n.sensor", lambda tv: tv.value == 7.5)
        served = await read_directly(node_server.endpoint, "Sensor")
        assert served.Value.Value == 7.5 and served.SourceTimestamp is not None
        assert not sensor.source_time_is_receive_time
        assert sensor.source_time_ms == int(served.SourceTimestamp.timestamp() * 1000)


# --- security -----------------------------------------------------------------------------------------

def trust(server: NodeOpcUaServer, data_dir) -> None:
    trusted = PkiDirs.under(data_dir).trusted
    trusted.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.certificate_der_path, trusted / "node-opcua-server.der")


def server_has_seen(server: NodeOpcUaServer, data_dir) -> bool:
    """node-opcua (set to accept unknown clients) files the certificate of each secure channel it accepted."""
    ours = thumbprint_sha256(load_certificate((PkiDirs.under(data_dir).own / OWN_CERTIFICATE_FILE).read_bytes()))
    accepted = (server.pki_dir / "server" / "trusted" / "certs").glob("*")
    return any(thumbprint_sha256(load_certificate(path.read_bytes())) == ours for path in accepted)


@pytest.mark.parametrize(("policy", "mode"), [
    ("Basic256Sha256", "SignAndEncrypt"),
    ("Aes256Sha256RsaPss", "Sign"),
    ("Aes128Sha256RsaOaep", "SignAndEncrypt"),
])
async def test_a_secured_session_with_user_and_password(
        node_server, make_source, redis_client, data_dir, policy, mode):
    trust(node_server, data_dir)
    source, writer = make_source(node_server.endpoint, [tag("Counter")], policy, mode, "TEST_NODE_OPCUA_PASSWORD")
    async with running(writer.run(), source.run()):
        first = await wait_for_latest(redis_client, "n.counter", is_good, timeout_s=10)
        await wait_for_latest(redis_client, "n.counter", lambda tv: tv.value > first.value)
        assert source.counters.connects == 1 and source.counters.connect_failures == 0
    assert server_has_seen(node_server, data_dir)


async def test_a_wrong_password_is_refused_clearly(node_server, make_source, redis_client, data_dir):
    trust(node_server, data_dir)
    source, writer = make_source(node_server.endpoint, [tag("Counter")], "Basic256Sha256", "SignAndEncrypt",
                                 "TEST_NODE_OPCUA_WRONG_PASSWORD")
    refused_names = {ua.StatusCode(code).name for code in USER_REFUSED_CODES}
    async with running(writer.run(), source.run()):
        counter = await wait_for_latest(redis_client, "n.counter", lambda tv: tv.quality.name in refused_names,
                                        timeout_s=10)
        assert counter.value is None and counter.quality.is_bad
        assert source.detail.startswith(f"the server refused user {USERNAME!r}: {counter.quality.name}")
        assert "check credentials.username and the password" in source.detail
        assert source.counters.connects == 0 and source.state is ConnectionState.DISCONNECTED


async def test_an_untrusted_server_certificate_is_refused_naming_the_file_to_trust(
        node_server, make_source, redis_client, data_dir):
    source, writer = make_source(node_server.endpoint, [tag("Counter")], "Basic256Sha256", "SignAndEncrypt",
                                 "TEST_NODE_OPCUA_PASSWORD")
    server_certificate = load_certificate(node_server.certificate_der_path.read_bytes())
    pki = PkiDirs.under(data_dir)
    rejected = pki.rejected / f"{thumbprint_sha256(server_certificate)}.der"
    async with running(writer.run(), source.run()):
        counter = await wait_for_latest(redis_client, "n.counter", lambda tv: tv.quality == BAD_CERTIFICATE_UNTRUSTED)
        assert counter.value is None and source.counters.connects == 0
        assert f"thumbprint SHA256 {thumbprint_sha256(server_certificate)} is not trusted" in source.detail
        assert f"move {rejected} to {pki.trusted}/" in source.detail
        assert thumbprint_sha256(load_certificate(rejected.read_bytes())) == thumbprint_sha256(server_certificate)


# --- writes ------------------------------------------------------------------------------------------

WRITES = [  # node, tag data type, value to write, what the node holds afterwards
    ("Boolean", DataType.BOOL, True, True),
    ("SByte", DataType.INT, -100, -100),
    ("Byte", DataType.INT, 200, 200),
    ("Int16", DataType.INT, -30_000, -30_000),
    ("UInt16", DataType.INT, 60_000, 60_000),
    ("Int32", DataType.INT, -2_000_000_000, -2_000_000_000),
    ("UInt32", DataType.INT, 4_000_000_000, 4_000_000_000),
    ("Int64", DataType.INT, 2**53 + 1, 2**53 + 1),  # not representable as a double
    ("UInt64", DataType.INT, 2**64 - 1, 2**64 - 1),
    ("Float", DataType.FLOAT, 1.1, pytest.approx(1.1, rel=1e-7)),  # a Float node holds single precision
    ("Double", DataType.FLOAT, 12.345, 12.345),
    ("String", DataType.STRING, "running", "running"),
]


async def test_every_data_type_is_written_and_read_back(node_server, make_source, redis_client):
    tags = [tag(name, data_type, writable=True) for name, data_type, _, _ in WRITES]
    source, writer = make_source(node_server.endpoint, tags)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        for name, *_ in WRITES:
            await wait_for_latest(redis_client, f"n.{name.lower()}", is_good)
        await wait_for_write_group(redis_client, SOURCE)
        for name, _, value, stored in WRITES:
            outcome = await request_write(redis_client, SOURCE, f"n.{name.lower()}", value)
            assert (outcome.status, outcome.reason) == (WriteStatus.DONE, "written and confirmed"), name
            assert outcome.readback == stored, name
            served = await read_directly(node_server.endpoint, name)
            assert served.Value.Value == stored and served.Value.VariantType.name == name, name
            reached = await wait_for_latest(redis_client, f"n.{name.lower()}",
                                            lambda tv: tv.value == stored)  # noqa: B023
            assert reached.quality == GOOD and type(reached.value) is type(value), name
        assert source.counters.writes_done == len(WRITES)
        # A negative 64-bit value far beyond a double's exact range, too.
        outcome = await request_write(redis_client, SOURCE, "n.int64", -(2**62) - 3)
        assert outcome.status is WriteStatus.DONE and outcome.readback == -(2**62) - 3


async def test_writes_the_server_refuses_or_that_cannot_fit(node_server, make_source, redis_client):
    tags = [tag("ReadOnly", writable=True), tag("SByte", DataType.INT, writable=True)]
    source, writer = make_source(node_server.endpoint, tags)
    async with running(writer.run(), source.run(), WriteHandler(redis_client, source, block_ms=100).run()):
        await wait_for_latest(redis_client, "n.readonly", is_good)
        sbyte = await wait_for_latest(redis_client, "n.sbyte", is_good)
        await wait_for_write_group(redis_client, SOURCE)
        refused = await request_write(redis_client, SOURCE, "n.readonly", 1.0)
        assert refused.status is WriteStatus.REJECTED
        assert refused.device_status in ("BadNotWritable", "BadUserAccessDenied")
        assert refused.device_status in refused.reason
        assert (await read_directly(node_server.endpoint, "ReadOnly")).Value.Value == 9.0
        too_big = await request_write(redis_client, SOURCE, "n.sbyte", 200)
        assert too_big.status is WriteStatus.REJECTED and "does not fit SByte" in too_big.reason
        assert (await read_directly(node_server.endpoint, "SByte")).Value.Value == sbyte.value


# --- a crash and a restart -----------------------------------------------------------------------------

async def test_a_crashed_server_turns_tags_bad_and_its_restart_brings_them_back(
        crashable_server, make_source, redis_client):
    source, writer = make_source(crashable_server.endpoint, [tag("Counter"), tag("Sensor")])
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "n.counter", is_good)
        await wait_for_latest(redis_client, "n.sensor", is_good)
        crashable_server.kill()
        killed_at, killed_at_ms = time.monotonic(), int(time.time() * 1000)
        counter = await wait_for_latest(redis_client, "n.counter", lambda tv: tv.quality.is_bad,
                                        timeout_s=STALE_AFTER_S + 2)
        noticed_s = time.monotonic() - killed_at
        assert counter.quality in (BAD_COMMUNICATION_ERROR, BAD_NO_COMMUNICATION) and counter.value is None
        # A killed process's sockets are closed by the kernel: a closed connection, not a silent one.
        assert counter.quality == BAD_COMMUNICATION_ERROR and noticed_s < CLOSED_CONNECTION_NOTICED_S + 0.5
        assert (await latest(redis_client, "n.sensor")).quality.is_bad

        await asyncio.to_thread(crashable_server.start)
        back = await wait_for_latest(redis_client, "n.counter",
                                     lambda tv: is_good(tv) and tv.source_time_ms > killed_at_ms, timeout_s=10)
        # The subscription is made anew on the new server: the counter keeps moving.
        await wait_for_latest(redis_client, "n.counter", lambda tv: is_good(tv) and tv.value >= back.value + 3)
        await wait_for_latest(redis_client, "n.sensor", is_good)
        assert source.counters.reconnects == 1 and source.state is ConnectionState.CONNECTED


# --- browse and import -------------------------------------------------------------------------------

def browse_config(endpoint: str) -> OpcUaSource:
    return OpcUaSource(kind="opcua", endpoint=endpoint, security={"policy": "None", "mode": "None"},
                       publishing_interval_ms=50, sampling_interval_ms=0)


async def test_browse_and_import_of_the_interop_object(node_server, redis_client, tmp_path):
    async with connected(SOURCE, browse_config(node_server.endpoint), None, tmp_path) as client:
        nodes = await browse(client, f"nsu={NAMESPACE};s=Interop")
    variables = {n.variable.browse_path[-1]: n.variable for n in nodes if n.variable}
    expected_types = {name: (data_type, name) for name, data_type, _, _ in WRITES}
    expected_types |= {"Counter": (DataType.FLOAT, "Double"), "Sensor": (DataType.FLOAT, "Double"),
                       "ReadOnly": (DataType.FLOAT, "Double"), "Temperature": (DataType.FLOAT, "Double")}
    assert {name: (v.data_type, v.opcua_type) for name, v in variables.items()} == expected_types
    assert all(v.node_id == node_id(name) for name, v in variables.items())
    temperature = variables["Temperature"]
    assert (temperature.unit, temperature.eu_range) == ("°C", (0.0, 200.0))
    assert variables["Sensor"].server_writable and not variables["ReadOnly"].server_writable
    # The alarm (an A&C condition instance) is neither listed nor entered: its states are not tags.
    assert not any("TemperatureAlarm" in n.browse_path for n in nodes)

    block = tags_yaml(nodes, SOURCE, prefix="interop.")
    assert "TemperatureAlarm" not in block
    sources = yaml.safe_dump({"sources": {SOURCE: {"kind": "opcua", "endpoint": node_server.endpoint,
                                                    "security": {"policy": "None", "mode": "None"}}}})
    plant = parse_config(sources + block, tmp_path / "plant.yaml")
    tags = {t.name: t for t in plant.tags}
    assert len(tags) == len(expected_types)
    imported = tags["interop.Temperature"]
    assert (imported.unit, imported.range.low, imported.range.high, imported.writable) == ("°C", 0, 200, False)
    assert tags["interop.Int64"].data_type is DataType.INT and tags["interop.String"].data_type is DataType.STRING

    writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
    source = OpcUaDataSource(SOURCE, browse_config(node_server.endpoint), plant.tags_of_source(SOURCE), writer,
                             data_dir=tmp_path)
    async with running(writer.run(), source.run()):
        for name in tags:
            await wait_for_latest(redis_client, name, is_good)
        assert (await latest(redis_client, "interop.Temperature")).value == 20.0
