"""Browse and import against a real asyncua server: the walk, the tags block, and a source fed by it."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography.x509.oid import ExtendedKeyUsageOID

from data_sources.opcua_browse import browse, connected, tag_name, tags_yaml
from data_sources.opcua_source import OpcUaDataSource
from domain.config_loading import parse_config
from domain.config_model import DataType, OpcUaSource
from launcher.embedded_servers import free_port
from simulator.opcua_values import eu_information
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import running, wait_for_latest

NAMESPACE = "urn:stacklight:test-browse"
SOURCE = "plc"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def plant():
    server = Server()
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/browse"
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    # A second namespace first, so ours is not at index 2: nsu= ids must not depend on the order.
    await server.register_namespace("urn:stacklight:someone-else")
    idx = await server.register_namespace(NAMESPACE)

    def nid(name: str) -> ua.NodeId:
        return ua.NodeId(name, idx)

    area = await server.nodes.objects.add_folder(nid("Area1"), ua.QualifiedName("Area1", idx))
    tank = await area.add_object(nid("Area1.Tank"), ua.QualifiedName("Tank 1", idx))
    level = await tank.add_variable(nid("Area1.Tank.Level"), ua.QualifiedName("Level", idx), 2.5,
                                    ua.VariantType.Double)
    await level.add_property(nid("Area1.Tank.Level.EURange"), ua.QualifiedName("EURange", 0),
                             ua.Range(Low=0.0, High=10.0))
    await level.add_property(nid("Area1.Tank.Level.EngineeringUnits"), ua.QualifiedName("EngineeringUnits", 0),
                             eu_information("m"))
    await level.write_attribute(ua.AttributeIds.Description,
                                ua.DataValue(ua.Variant(ua.LocalizedText("Tank level"))))
    await level.set_writable()
    await tank.add_variable(nid("Area1.Tank.Count"), ua.QualifiedName("Count", idx), 7, ua.VariantType.UInt16)
    await tank.add_variable(nid("Area1.Tank.Running"), ua.QualifiedName("Running", idx), True,
                            ua.VariantType.Boolean)
    await tank.add_variable(nid("Area1.Tank.Samples"), ua.QualifiedName("Samples", idx), [1.0, 2.0, 3.0],
                            ua.VariantType.Double)
    await tank.add_variable(nid("Area1.Tank.Limits"), ua.QualifiedName("Limits", idx), ua.Range(Low=1.0, High=2.0))
    await tank.add_variable(nid("Area1.Tank.Since"), ua.QualifiedName("Since", idx),
                            ua.Variant(datetime(2026, 1, 1, tzinfo=timezone.utc), ua.VariantType.DateTime))
    await area.add_variable(ua.NodeId(4711, idx), ua.QualifiedName("Mode", idx), "auto", ua.VariantType.String)
    # Two names that clean up to the same tag name, and one that starts with a digit.
    await area.add_variable(nid("Area1.T1"), ua.QualifiedName("Temp 1", idx), 20.0, ua.VariantType.Float)
    await area.add_variable(nid("Area1.T1b"), ua.QualifiedName("Temp_1", idx), 21.0, ua.VariantType.Float)
    # A cycle (a folder in the tank organizes the tank's area) and a second way to the level: each node is listed once.
    favourites = await tank.add_folder(nid("Area1.Tank.Favourites"), ua.QualifiedName("Favourites", idx))
    await favourites.add_reference(area.nodeid, ua.ObjectIds.Organizes)
    await favourites.add_reference(level.nodeid, ua.ObjectIds.Organizes)
    await server.nodes.objects.add_variable(nid("2ndPump"), ua.QualifiedName("2nd pump", idx), 1,
                                            ua.VariantType.Int32)
    await server.start()
    yield endpoint
    await server.stop()


def config(endpoint: str) -> OpcUaSource:
    return OpcUaSource(kind="opcua", endpoint=endpoint, security={"policy": "None", "mode": "None"},
                       publishing_interval_ms=50, sampling_interval_ms=0)


async def browsed(endpoint: str, tmp_path: Path, start: str | None = None, depth: int = 6):
    async with connected(SOURCE, config(endpoint), None, tmp_path) as client:
        return await browse(client, start, depth)


async def test_the_walk_finds_variables_with_types_units_ranges_and_access(plant, tmp_path):
    nodes = await browsed(plant, tmp_path)
    assert [n.browse_path for n in nodes if n.variable is None] == [
        ("Area1",), ("Area1", "Tank 1"), ("Area1", "Tank 1", "Favourites")]
    assert [n.variable.browse_path[-1] for n in nodes if n.variable].count("Level") == 1
    variables = {n.variable.browse_path[-1]: n.variable for n in nodes if n.variable}
    level = variables["Level"]
    assert level.node_id == f"nsu={NAMESPACE};s=Area1.Tank.Level"
    assert (level.data_type, level.opcua_type, level.unit, level.eu_range) == (DataType.FLOAT, "Double", "m", (0, 10))
    assert level.description == "Tank level" and level.server_writable
    assert level.browse_path == ("Area1", "Tank 1", "Level")
    assert (variables["Count"].data_type, variables["Count"].opcua_type) == (DataType.INT, "UInt16")
    assert not variables["Count"].server_writable and variables["Count"].unit == ""
    assert variables["Running"].data_type is DataType.BOOL
    assert variables["Mode"].data_type is DataType.STRING and variables["Mode"].node_id == f"nsu={NAMESPACE};i=4711"
    samples = variables["Samples"]
    assert samples.data_type is None and "array" in samples.note
    assert variables["Limits"].data_type is None and variables["Limits"].note == "skipped: a structure"
    assert variables["Since"].note == "skipped: data type DateTime has no Tag equivalent"
    # Properties are facts about a variable, not variables of their own; the Server object is not entered.
    assert "EURange" not in variables and "ServerStatus" not in variables


async def test_depth_and_start_node_limit_the_walk(plant, tmp_path):
    shallow = await browsed(plant, tmp_path, depth=1)
    assert [n.browse_path for n in shallow] == [("Area1",), ("2nd pump",)]
    tank_only = await browsed(plant, tmp_path, start=f"nsu={NAMESPACE};s=Area1.Tank")
    assert sorted(n.browse_path[-1] for n in tank_only if n.depth == 1) == [
        "Count", "Favourites", "Level", "Limits", "Running", "Samples", "Since"]


def test_tag_names_are_valid_and_unique():
    taken: set[str] = set()
    assert tag_name(("Area1", "Tank 1", "Level"), "", taken) == "Area1.Tank_1.Level"
    assert tag_name(("Area1", "Temp 1"), "", taken) == "Area1.Temp_1"
    assert tag_name(("Area1", "Temp_1"), "", taken) == "Area1.Temp_1_2"
    assert tag_name(("2nd pump",), "", taken) == "t_2nd_pump"
    assert tag_name(("Level",), "line1.", taken) == "line1.Level"
    assert len(tag_name(("x" * 300,), "", taken)) == 128
    with pytest.raises(ValueError):
        tag_name(("Level",), "bad prefix ", taken)


async def test_the_tags_block_loads_as_a_plant_file_and_feeds_a_source(plant, tmp_path, redis_client):
    block = tags_yaml(await browsed(plant, tmp_path), SOURCE, header="imported for a test")
    assert "  writable: false  # server allows writes" in block  # Level only
    assert block.count("# server allows writes") == 1
    assert "Samples" in block and "skipped: an array" in block
    sources = yaml.safe_dump({"sources": {SOURCE: {"kind": "opcua", "endpoint": plant,
                                                    "security": {"policy": "None", "mode": "None"}}}})
    plant_config = parse_config(sources + block, tmp_path / "plant.yaml")
    tags = {t.name: t for t in plant_config.tags}
    assert sorted(tags) == ["Area1.Mode", "Area1.Tank_1.Count", "Area1.Tank_1.Level", "Area1.Tank_1.Running",
                            "Area1.Temp_1", "Area1.Temp_1_2", "t_2nd_pump"]
    level = tags["Area1.Tank_1.Level"]
    assert (level.unit, level.range.low, level.range.high, level.writable) == ("m", 0, 10, False)
    assert level.description == "Tank level"
    assert not any(t.writable for t in tags.values())

    writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
    source = OpcUaDataSource(SOURCE, config(plant), plant_config.tags_of_source(SOURCE), writer, data_dir=tmp_path)
    expected = {"Area1.Tank_1.Level": 2.5, "Area1.Tank_1.Count": 7, "Area1.Tank_1.Running": True,
                "Area1.Mode": "auto", "Area1.Temp_1": 20.0, "Area1.Temp_1_2": 21.0, "t_2nd_pump": 1}
    async with running(writer.run(), source.run()):
        for name, value in expected.items():
            tv = await wait_for_latest(redis_client, name, lambda tv: not tv.quality.is_bad)
            assert tv.value == value, name


async def test_the_command_line_prints_the_tree_and_writes_the_block(plant, tmp_path):
    output = tmp_path / "tags.yaml"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "data_sources.browse", plant, "--depth", "3", "--source", SOURCE,
        "--prefix", "p.", "--output", str(output), "--data-dir", str(tmp_path),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    tree = stdout.decode().splitlines()
    assert "Area1/" in tree and "  Tank 1/" in tree
    level_line = next(line for line in tree if line.startswith("    Level"))
    assert "float, m, 0 .. 10, writable on server" in level_line and f"nsu={NAMESPACE};s=Area1.Tank.Level" in level_line
    assert any(line.startswith("    Samples") and "skipped: an array" in line for line in tree)
    tags = yaml.safe_load(output.read_text())["tags"]
    assert {t["name"] for t in tags} >= {"p.Area1.Tank_1.Level", "p.2nd_pump"}
    assert all(t["source"] == SOURCE and t["writable"] is False for t in tags)


async def test_the_command_line_says_when_the_server_is_not_there(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "data_sources.browse", f"opc.tcp://127.0.0.1:{free_port()}", "--data-dir",
        str(tmp_path), cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1 and "cannot browse" in stderr.decode()


class OnlyTheEngineer:
    def get_user(self, iserver, username=None, password=None, certificate=None):
        return User(role=UserRole.User) if (username, password) == ("engineer", "s3cret") else None


@pytest.fixture
async def secure_plant(tmp_path):
    server = Server(user_manager=OnlyTheEngineer())
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/secure"
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    server.set_identity_tokens([ua.UserNameIdentityToken])
    await server.set_application_uri("urn:stacklight:test-browse-secure")
    key_file, cert_file = tmp_path / "server_key.pem", tmp_path / "server_cert.der"
    await cert_gen.setup_self_signed_certificate(key_file, cert_file, "urn:stacklight:test-browse-secure",
                                                 socket.gethostname(), [ExtendedKeyUsageOID.SERVER_AUTH], {})
    await server.load_certificate(str(cert_file))
    await server.load_private_key(str(key_file))
    idx = await server.register_namespace(NAMESPACE)
    await server.nodes.objects.add_variable(ua.NodeId("Secret.Level", idx), "Level", 3.25)
    await server.start()
    yield endpoint
    await server.stop()


async def test_the_command_line_uses_the_sources_security_and_user(secure_plant, tmp_path):
    async def browse_cli(password: str, *trust: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "data_sources.browse", secure_plant, "--policy", "Basic256Sha256",
            "--mode", "SignAndEncrypt", "--username", "engineer", "--password-env", "TEST_BROWSE_PASSWORD",
            *trust, "--data-dir", str(tmp_path / "data"), cwd=REPO,
            env={**os.environ, "TEST_BROWSE_PASSWORD": password},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, stdout.decode(), stderr.decode()

    # Like the source: a server whose certificate is not trusted is not talked to.
    code, stdout, stderr = await browse_cli("s3cret")
    assert code == 1 and "not trusted" in stderr and "pki/trusted" in stderr and not stdout, stderr
    code, stdout, stderr = await browse_cli("s3cret", "--trust-on-first-use")
    assert code == 0, stderr
    assert f"Level  [float]  nsu={NAMESPACE};s=Secret.Level" in stdout.splitlines()
    code, stdout, stderr = await browse_cli("guess")
    assert code == 1 and "BadUserAccessDenied" in stderr, stderr
