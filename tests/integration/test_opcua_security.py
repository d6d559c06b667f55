"""OPC UA security against a real secured asyncua server: trust list, TOFU, every policy, users, key files."""
from __future__ import annotations

import shutil
import stat
from datetime import datetime, timedelta, timezone

import pytest
from asyncua import ua
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from data_sources.opcua_client import new_client
from data_sources.opcua_security import (
    BAD_CERTIFICATE_TIME_INVALID,
    BAD_CERTIFICATE_UNTRUSTED,
    BAD_SECURITY_CHECKS_FAILED,
    OWN_CERTIFICATE_FILE,
    OWN_PRIVATE_KEY_FILE,
    PkiDirs,
    SecurityCheckFailed,
    application_uri_of,
    check_server_certificate,
    client_identity,
    der_bytes,
    load_certificate,
    thumbprint_sha256,
)
from data_sources.opcua_source import ConnectionLost, OpcUaDataSource
from domain.config_model import Credentials, OpcUaSource, Tag
from domain.quality import GOOD
from tag_store.source_status import ConnectionState
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import running, wait_for_latest, wait_until
from tests.integration.opcua_security_helpers import LEVEL, NAMESPACE, PASSWORD, USERNAME, SecurePlantServer

SOURCE = "secure-plc"
TAGS = [Tag(name="t.level", source=SOURCE, node_id=f"nsu={NAMESPACE};s=Test.Level")]


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
    client = await new_client(SOURCE, source.config, PASSWORD, data_dir)
    assert not client.security_policy.host_certificate and client.security_policy.Mode == ua.MessageSecurityMode.None_
    assert not (data_dir / "pki").exists()


def a_certificate(valid_from_days: int = -1, valid_until_days: int = 30):
    """A server certificate valid from / until so many days from now."""
    key = cert_gen.generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other PLC")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=valid_from_days))
            .not_valid_after(now + timedelta(days=valid_until_days))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:other-plc")]), False)
            .sign(key, hashes.SHA256()))
    return cert, key


def test_a_trusted_pem_is_accepted_and_junk_in_trusted_is_ignored(data_dir):
    pki = PkiDirs.under(data_dir)
    cert, _key = a_certificate()
    pki.trusted.mkdir(parents=True)
    (pki.trusted / "other-plc.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (pki.trusted / "notes.pem").write_text("not a certificate")
    accepted = check_server_certificate(der_bytes(cert), pki, False, "opc.tcp://other-plc:4840")
    assert thumbprint_sha256(accepted) == thumbprint_sha256(cert)


def test_a_certificate_outside_its_dates_is_refused_even_when_trusted(data_dir):
    pki = PkiDirs.under(data_dir)
    for cert, words in [(a_certificate(-30, -1)[0], "expired on"), (a_certificate(2, 30)[0], "not valid before")]:
        pki.trusted.mkdir(parents=True, exist_ok=True)
        (pki.trusted / f"{thumbprint_sha256(cert)}.der").write_bytes(der_bytes(cert))
        with pytest.raises(SecurityCheckFailed, match=words) as refused:
            check_server_certificate(der_bytes(cert), pki, True, "opc.tcp://other-plc:4840")
        assert refused.value.quality == BAD_CERTIFICATE_TIME_INVALID


def test_a_changed_server_certificate_is_refused_after_trust_on_first_use(data_dir):
    pki = PkiDirs.under(data_dir)
    first, _ = a_certificate()
    check_server_certificate(der_bytes(first), pki, True, "opc.tcp://other-plc:4840")
    check_server_certificate(der_bytes(first), pki, False, "opc.tcp://other-plc:4840")
    # TOFU trusts a new certificate only on the first use of that certificate; without TOFU, never.
    second, _ = a_certificate()
    with pytest.raises(SecurityCheckFailed) as refused:
        check_server_certificate(der_bytes(second), pki, False, "opc.tcp://other-plc:4840")
    assert refused.value.quality == BAD_CERTIFICATE_UNTRUSTED
    assert (pki.rejected / f"{thumbprint_sha256(second)}.der").is_file()


def test_configured_client_certificate_files_are_used_with_their_application_uri(tmp_path, data_dir):
    cert, key = a_certificate()
    cert_file, key_file = tmp_path / "mine.der", tmp_path / "mine.pem"
    cert_file.write_bytes(der_bytes(cert))
    key_file.write_bytes(cert_gen.dump_private_key_as_pem(key))
    identity = client_identity(PkiDirs.under(data_dir), str(cert_file), str(key_file))
    assert (identity.certificate_path, identity.private_key_path) == (cert_file, key_file)
    assert identity.application_uri == "urn:other-plc"
    assert not (data_dir / "pki" / "own").exists()
    with pytest.raises(SecurityCheckFailed, match="together"):
        client_identity(PkiDirs.under(data_dir), str(cert_file), None)


async def test_a_server_without_the_configured_policy_is_refused_with_what_it_offers(tmp_path, make_source, data_dir):
    server = await SecurePlantServer(tmp_path, [ua.SecurityPolicyType.Basic256Sha256_Sign]).start()
    try:
        source, _writer = make_source(server.endpoint, policy="Aes256Sha256RsaPss", mode="SignAndEncrypt")
        with pytest.raises(ConnectionLost, match="offers no endpoint with security Aes256Sha256RsaPss/SignAndEncrypt; "
                                                 "it offers Basic256Sha256/Sign") as refused:
            await new_client(SOURCE, source.config, PASSWORD, data_dir)
        assert refused.value.quality == BAD_SECURITY_CHECKS_FAILED
    finally:
        await server.stop()

