"""OPC UA security against a real secured asyncua server: trust list, TOFU, every policy, users, key files."""
from __future__ import annotations

import shutil
import stat

import pytest
from asyncua import ua

import data_sources.opcua_source
from data_sources.opcua_client import new_verified_client
from data_sources.opcua_security import (
    BAD_CERTIFICATE_UNTRUSTED,
    OWN_CERTIFICATE_FILE,
    OWN_PRIVATE_KEY_FILE,
    PkiDirs,
    application_uri_of,
    load_certificate,
)
from data_sources.opcua_source import OpcUaDataSource
from domain.config_model import Credentials, OpcUaSource, Tag
from domain.quality import GOOD
from tag_store.source_status import ConnectionState
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import running, wait_for_latest, wait_until
from tests.integration.opcua_security_helpers import LEVEL, NAMESPACE, PASSWORD, USERNAME, SecurePlantServer

SOURCE = "secure-plc"
TAGS = [Tag(name="t.level", source=SOURCE, node_id=f"nsu={NAMESPACE};s=Test.Level")]


@pytest.fixture(autouse=True)
def verified_clients(monkeypatch):
    """The source builds its clients with the trust check (until new_client is switched over)."""
    monkeypatch.setattr(data_sources.opcua_source, "new_client", new_verified_client)


@pytest.fixture
async def secure_plant(tmp_path):
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    server = await SecurePlantServer(server_dir).start()
    yield server
    await server.stop()


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "stacklight"


@pytest.fixture
def make_source(redis_client, data_dir, monkeypatch):
    monkeypatch.setenv("TEST_OPCUA_PASSWORD", PASSWORD)
    monkeypatch.setenv("TEST_OPCUA_WRONG_PASSWORD", "guess")

    def make(endpoint: str, policy: str = "Basic256Sha256", mode: str = "SignAndEncrypt",
             password_env: str = "TEST_OPCUA_PASSWORD", **extra) -> tuple[OpcUaDataSource, TagStoreWriter]:
        config = OpcUaSource(
            kind="opcua", endpoint=endpoint, security={"policy": policy, "mode": mode},
            credentials=Credentials(username=USERNAME, password={"env": password_env}),
            publishing_interval_ms=50, sampling_interval_ms=0, stale_after_s=1.5, reconnect_max_delay_s=0.5,
            **extra)
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        return OpcUaDataSource(SOURCE, config, TAGS, writer, data_dir=data_dir), writer
    return make


def trust(server: SecurePlantServer, data_dir) -> None:
    trusted = PkiDirs.under(data_dir).trusted
    trusted.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.cert_file, trusted / "plant-server.der")


def is_good(tv) -> bool:
    return tv.quality == GOOD


async def test_an_untrusted_server_is_refused_until_its_certificate_is_moved_to_trusted(
        secure_plant, make_source, redis_client, data_dir):
    pki = PkiDirs.under(data_dir)
    source, writer = make_source(secure_plant.endpoint)
    async with running(writer.run(), source.run()):
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality == BAD_CERTIFICATE_UNTRUSTED)
        assert level.value is None
        rejected = pki.rejected / f"{secure_plant.thumbprint}.der"
        assert rejected.read_bytes() == secure_plant.cert_file.read_bytes()
        assert source.state is ConnectionState.DISCONNECTED
        assert "server certificate CN=urn:stacklight:test-secure-server" in source.detail
        assert f"thumbprint SHA256 {secure_plant.thumbprint} is not trusted" in source.detail
        assert f"move {rejected} to {pki.trusted}/" in source.detail
        assert source.counters.connects == 0
        # It keeps trying while the operator decides.
        failures = source.counters.connect_failures
        await wait_until(lambda: source.counters.connect_failures > failures, what="another attempt")

        pki.trusted.mkdir(parents=True, exist_ok=True)
        shutil.move(rejected, pki.trusted / rejected.name)
        level = await wait_for_latest(redis_client, "t.level", is_good, timeout_s=10)
        assert level.value == LEVEL and source.state is ConnectionState.CONNECTED
        await secure_plant.set_level(4.5)
        await wait_for_latest(redis_client, "t.level", lambda tv: tv.value == 4.5)


async def test_trust_on_first_use_connects_and_stores_the_certificate(
        secure_plant, make_source, redis_client, data_dir, caplog):
    source, writer = make_source(secure_plant.endpoint, trust_on_first_use=True)
    async with running(writer.run(), source.run()):
        level = await wait_for_latest(redis_client, "t.level", is_good, timeout_s=10)
        assert level.value == LEVEL
    pki = PkiDirs.under(data_dir)
    stored = pki.trusted / f"{secure_plant.thumbprint}.der"
    assert stored.read_bytes() == secure_plant.cert_file.read_bytes()
    assert not pki.rejected.exists() or not any(pki.rejected.iterdir())
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "trust_on_first_use" in r.getMessage()]
    assert len(warnings) == 1 and secure_plant.thumbprint in warnings[0].getMessage()


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
@pytest.mark.parametrize("policy", ["Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"])
async def test_every_policy_and_mode_connects_and_reads(
        secure_plant, make_source, redis_client, data_dir, policy, mode):
    trust(secure_plant, data_dir)
    source, writer = make_source(secure_plant.endpoint, policy=policy, mode=mode)
    async with running(writer.run(), source.run()):
        level = await wait_for_latest(redis_client, "t.level", is_good, timeout_s=10)
        assert level.value == LEVEL
        assert source.counters.connects == 1 and source.counters.connect_failures == 0


async def test_a_wrong_password_is_refused_clearly_and_retried(secure_plant, make_source, redis_client, data_dir):
    trust(secure_plant, data_dir)
    source, writer = make_source(secure_plant.endpoint, password_env="TEST_OPCUA_WRONG_PASSWORD")
    async with running(writer.run(), source.run()):
        level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality.name == "BadUserAccessDenied",
                                      timeout_s=10)
        assert level.value is None and level.quality.is_bad
        assert source.detail.startswith(f"the server refused user {USERNAME!r}: BadUserAccessDenied")
        assert "check credentials.username and the password" in source.detail
        failures = source.counters.connect_failures
        await wait_until(lambda: source.counters.connect_failures > failures, what="another attempt")
        assert source.counters.connects == 0 and source.state is ConnectionState.DISCONNECTED


async def test_the_client_key_is_private_and_the_certificate_names_the_application(
        secure_plant, make_source, redis_client, data_dir):
    trust(secure_plant, data_dir)
    source, writer = make_source(secure_plant.endpoint)
    async with running(writer.run(), source.run()):
        await wait_for_latest(redis_client, "t.level", is_good, timeout_s=10)
    own = PkiDirs.under(data_dir).own
    assert stat.S_IMODE((own / OWN_PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(own.stat().st_mode) == 0o700
    cert = load_certificate((own / OWN_CERTIFICATE_FILE).read_bytes())
    assert application_uri_of(cert).endswith(":stacklight")
    # Made once: the next connection uses the same certificate.
    before = (own / OWN_CERTIFICATE_FILE).read_bytes()
    source, writer = make_source(secure_plant.endpoint)
    async with running(writer.run(), source.run()):
        await wait_until(lambda: source.counters.connects == 1, timeout_s=10, what="the second connection")
    assert (own / OWN_CERTIFICATE_FILE).read_bytes() == before


async def test_policy_none_needs_no_certificate(make_source, data_dir):
    source, _writer = make_source("opc.tcp://127.0.0.1:1/none", policy="None", mode="None")
    client = await new_verified_client(SOURCE, source.config, PASSWORD, data_dir)
    assert not client.security_policy.host_certificate and client.security_policy.Mode == ua.MessageSecurityMode.None_
    assert not (data_dir / "pki").exists()
