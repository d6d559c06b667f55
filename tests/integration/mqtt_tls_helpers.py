"""A mosquitto with TLS listeners, and the certificates for it, made by the tests with `cryptography`.

One broker, one plain listener (for the test's own device client) and three TLS listeners:
- `verified`: server certificate for 127.0.0.1 / localhost, signed by the test CA;
- `wrong_host`: a certificate for other.example only (hostname checking must refuse it);
- `client_cert`: like `verified`, but the client must show a certificate signed by the CA.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from launcher.embedded_servers import MqttBroker, free_port


@dataclass(frozen=True)
class Pem:
    certificate: Path
    private_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    pem = Pem(directory / f"{stem}.crt", directory / f"{stem}.key")
    pem.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pem.private_key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pem


def make_ca(directory: Path, common_name: str = "Stacklight test CA") -> tuple[Pem, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, common_name.replace(" ", "_"), certificate, key), certificate, key


def issue(directory: Path, stem: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *,
          hosts: list[str], client: bool = False) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    builder = (
        x509.CertificateBuilder().subject_name(_name(stem)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _write(directory, stem, builder.sign(ca_key, hashes.SHA256()), key)


@dataclass
class TlsBroker:
    broker: MqttBroker
    ca: Pem
    other_ca: Pem          # a CA that signed nothing the broker shows
    client: Pem            # signed by `ca`, for the client-certificate listener
    verified_port: int
    wrong_host_port: int
    client_cert_port: int

    @property
    def plain_port(self) -> int:
        return self.broker.port


def start_tls_broker(directory: Path) -> TlsBroker:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_cert, ca_key = make_ca(directory)
    other_ca, _, _ = make_ca(directory, "Somebody else's CA")
    server = issue(directory, "broker", ca_cert, ca_key, hosts=["127.0.0.1", "localhost"])
    wrong_host = issue(directory, "other-broker", ca_cert, ca_key, hosts=["other.example"])
    client = issue(directory, "stacklight-client", ca_cert, ca_key, hosts=[], client=True)
    ports = [free_port() for _ in range(3)]

    def listener(port: int, pem: Pem, require_certificate: bool) -> str:
        return (f"listener {port} 127.0.0.1\ncafile {ca.certificate}\ncertfile {pem.certificate}\n"
                f"keyfile {pem.private_key}\nrequire_certificate {str(require_certificate).lower()}\n")

    # Run as root, mosquitto drops to its own user, who cannot read the test's private directories.
    stay = "user root\n" if os.geteuid() == 0 else ""
    extra = stay + (listener(ports[0], server, False) + listener(ports[1], wrong_host, False)
             + listener(ports[2], server, True))
    broker = MqttBroker(directory / "broker", extra_config=extra).start()
    return TlsBroker(broker, ca, other_ca, client, *ports)
