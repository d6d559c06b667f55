"""Server certificates issued by a CA: chains through intermediates, revocation lists, and a real secured session."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from data_sources.opcua_security import (
    BAD_CERTIFICATE_UNTRUSTED,
    PkiDirs,
    SecurityCheckFailed,
    check_server_certificate,
    der_bytes,
)
from data_sources.opcua_source import OpcUaDataSource
from data_sources.opcua_trust_chain import (
    BAD_CERTIFICATE_ISSUER_REVOKED,
    BAD_CERTIFICATE_ISSUER_TIME_INVALID,
    BAD_CERTIFICATE_REVOCATION_UNKNOWN,
    BAD_CERTIFICATE_REVOKED,
)
from domain.config_model import Credentials, OpcUaSource, Tag
from domain.quality import GOOD
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import running, wait_for_latest
from tests.integration.opcua_security_helpers import LEVEL, NAMESPACE, PASSWORD, SERVER_URI, USERNAME, SecurePlantServer

ENDPOINT = "opc.tcp://plc7.plant:4840"
NOW = datetime.now(timezone.utc)


class Authority:
    """A certificate authority made for the test: issues certificates and revocation lists."""

    def __init__(self, name: str, issuer: Authority | None = None, days: tuple[int, int] = (-1, 3650)):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        signer = issuer or self
        self.certificate = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(signer.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW + timedelta(days=days[0])).not_valid_after(NOW + timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(signer.key, hashes.SHA256()))
        self.revoked: list[int] = []

    def issue_server(self, key: rsa.RSAPrivateKey | None = None, uri: str = SERVER_URI,
                     hostname: str = "localhost") -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PLC7")])).issuer_name(self.name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(uri), x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, True, True, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(self.key, hashes.SHA256()))
        return cert, key

    def crl(self, next_update_days: int = 30) -> x509.CertificateRevocationList:
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.name)
                   .last_update(NOW - timedelta(days=1)).next_update(NOW + timedelta(days=next_update_days)))
        for serial in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - timedelta(hours=1)).build())
        return builder.sign(self.key, hashes.SHA256())


def put(folder: Path, name: str, item: x509.Certificate | x509.CertificateRevocationList) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(item.public_bytes(serialization.Encoding.DER))


@pytest.fixture
def pki(tmp_path) -> PkiDirs:
    return PkiDirs.under(tmp_path / "stacklight")


def check(cert: x509.Certificate, pki: PkiDirs, **options) -> x509.Certificate:
    return check_server_certificate(der_bytes(cert), pki, False, ENDPOINT, **options)


def test_a_certificate_from_a_trusted_ca_with_its_crl_is_accepted(pki):
    root = Authority("Plant Root CA")
    server, _ = root.issue_server()
    put(pki.trusted, "root.der", root.certificate)
    put(pki.crl, "root.crl", root.crl())
    assert check(server, pki) == server
    assert not pki.rejected.exists()


def test_without_the_cas_revocation_list_the_certificate_is_refused_unless_configured(pki):
    root = Authority("Plant Root CA")
    server, _ = root.issue_server()
    put(pki.trusted, "root.der", root.certificate)
    with pytest.raises(SecurityCheckFailed, match="no current revocation list .* CN=Plant Root CA") as refused:
        check(server, pki)
    assert refused.value.quality == BAD_CERTIFICATE_REVOCATION_UNKNOWN
    assert "crl/" in str(refused.value)
    assert check(server, pki, require_revocation_lists=False) == server
    # An out-of-date list counts as none.
    put(pki.crl, "root.crl", root.crl(next_update_days=-1))
    with pytest.raises(SecurityCheckFailed):
        check(server, pki)


def test_a_revoked_server_certificate_is_refused(pki):
    root = Authority("Plant Root CA")
    server, _ = root.issue_server()
    root.revoked.append(server.serial_number)
    put(pki.trusted, "root.der", root.certificate)
    put(pki.crl, "root.crl", root.crl())
    with pytest.raises(SecurityCheckFailed, match="is revoked by CA CN=Plant Root CA") as refused:
        check(server, pki, require_revocation_lists=False)
    assert refused.value.quality == BAD_CERTIFICATE_REVOKED


def test_a_chain_through_an_intermediate_in_issuers(pki):
    root = Authority("Plant Root CA")
    site = Authority("Site CA", issuer=root)
    server, _ = site.issue_server()
    put(pki.trusted, "root.der", root.certificate)
    # Without the intermediate the chain cannot be built: an ordinary untrusted certificate.
    with pytest.raises(SecurityCheckFailed) as refused:
        check(server, pki)
    assert refused.value.quality == BAD_CERTIFICATE_UNTRUSTED
    put(pki.issuers, "site.der", site.certificate)
    put(pki.crl, "root.crl", root.crl())
    put(pki.crl, "site.crl", site.crl())
    assert check(server, pki) == server
    # The root withdraws the site CA: everything it issued is refused.
    root.revoked.append(site.certificate.serial_number)
    put(pki.crl, "root.crl", root.crl())
    with pytest.raises(SecurityCheckFailed) as refused:
        check(server, pki)
    assert refused.value.quality == BAD_CERTIFICATE_ISSUER_REVOKED


def test_an_intermediate_alone_is_not_a_trust_anchor(pki):
    root = Authority("Plant Root CA")
    site = Authority("Site CA", issuer=root)
    server, _ = site.issue_server()
    put(pki.issuers, "root.der", root.certificate)
    put(pki.issuers, "site.der", site.certificate)
    with pytest.raises(SecurityCheckFailed) as refused:
        check(server, pki, require_revocation_lists=False)
    assert refused.value.quality == BAD_CERTIFICATE_UNTRUSTED


def test_an_expired_ca_fails_its_certificates(pki):
    root = Authority("Old Root CA", days=(-400, -10))
    server, _ = root.issue_server()
    put(pki.trusted, "root.der", root.certificate)
    with pytest.raises(SecurityCheckFailed, match="outside its validity dates") as refused:
        check(server, pki, require_revocation_lists=False)
    assert refused.value.quality == BAD_CERTIFICATE_ISSUER_TIME_INVALID


def test_a_forged_certificate_naming_a_trusted_ca_is_untrusted(pki):
    root = Authority("Plant Root CA")
    impostor = Authority("Plant Root CA")  # same name, different key
    forged, _ = impostor.issue_server()
    put(pki.trusted, "root.der", root.certificate)
    put(pki.crl, "root.crl", root.crl())
    with pytest.raises(SecurityCheckFailed) as refused:
        check(forged, pki)
    assert refused.value.quality == BAD_CERTIFICATE_UNTRUSTED


async def test_a_secured_session_with_a_ca_issued_server_certificate(tmp_path, redis_client, monkeypatch):
    root = Authority("Plant Root CA")
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    cert, key = root.issue_server()
    (server_dir / "server_cert.der").write_bytes(der_bytes(cert))
    (server_dir / "server_key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    plant = await SecurePlantServer(server_dir).start()
    data_dir = tmp_path / "stacklight"
    pki = PkiDirs.under(data_dir)
    put(pki.trusted, "plant-root-ca.der", root.certificate)
    put(pki.crl, "plant-root-ca.crl", root.crl())
    monkeypatch.setenv("TEST_OPCUA_PASSWORD", PASSWORD)
    config = OpcUaSource(
        kind="opcua", endpoint=plant.endpoint, security={"policy": "Basic256Sha256", "mode": "SignAndEncrypt"},
        credentials=Credentials(username=USERNAME, password={"env": "TEST_OPCUA_PASSWORD"}),
        publishing_interval_ms=50, sampling_interval_ms=0, stale_after_s=1.5, reconnect_max_delay_s=0.5)
    writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
    tags = [Tag(name="t.level", source="ca-plc", node_id=f"nsu={NAMESPACE};s=Test.Level")]
    source = OpcUaDataSource("ca-plc", config, tags, writer, data_dir=data_dir)
    try:
        async with running(writer.run(), source.run()):
            level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality == GOOD, timeout_s=10)
            assert level.value == LEVEL
            # The CA revokes the server: the next connection is refused (the list is read on every attempt).
            root.revoked.append(cert.serial_number)
            put(pki.crl, "plant-root-ca.crl", root.crl())
            await plant.stop()
            level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality.is_bad, timeout_s=5)
            await plant.server.start()
            level = await wait_for_latest(redis_client, "t.level", lambda tv: tv.quality == BAD_CERTIFICATE_REVOKED,
                                          timeout_s=10)
            assert "revoked" in source.detail
    finally:
        await plant.stop()
