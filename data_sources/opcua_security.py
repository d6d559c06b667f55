"""Stacklight's OPC UA application certificate and the server trust list: part of the OPC UA adapter.

Files under <data_dir>/pki/ (see docs/opcua-security.md):
  own/client_cert.der, own/client_key.pem   Stacklight's certificate and key (key 0600, dir 0700), made on first use
  trusted/                                  server certificates and CA certificates (DER or PEM) Stacklight trusts
  issuers/                                  intermediate CA certificates, used to build chains but not trusted alone
  crl/                                      revocation lists of the CAs
  rejected/<sha256 thumbprint>.der          server certificates seen and refused; move one to trusted/ to accept it

A server is trusted when its certificate is within its validity dates and either its SHA-256
thumbprint equals that of a file in trusted/, or it was issued by a CA in trusted/ (see
opcua_trust_chain). Nothing here opens a connection.
"""
from __future__ import annotations

import datetime
import fcntl
import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from data_sources.opcua_trust_chain import ChainRefused, TrustStore, build_chain, check_chain, is_ca, load_crls
from domain.quality import Quality, quality_from_code

log = logging.getLogger(__name__)

BAD_SECURITY_CHECKS_FAILED = quality_from_code(0x80130000, "BadSecurityChecksFailed")
BAD_CERTIFICATE_TIME_INVALID = quality_from_code(0x80140000, "BadCertificateTimeInvalid")
BAD_CERTIFICATE_UNTRUSTED = quality_from_code(0x801A0000, "BadCertificateUntrusted")

OWN_CERTIFICATE_VALID_DAYS = 5 * 365
OWN_CERTIFICATE_FILE = "client_cert.der"
OWN_PRIVATE_KEY_FILE = "client_key.pem"
CERTIFICATE_SUFFIXES = (".der", ".cer", ".crt", ".pem")


def default_application_uri() -> str:
    return f"urn:{socket.gethostname()}:stacklight"


@dataclass(frozen=True, slots=True)
class PkiDirs:
    root: Path

    @property
    def own(self) -> Path:
        return self.root / "own"

    @property
    def trusted(self) -> Path:
        return self.root / "trusted"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def issuers(self) -> Path:
        return self.root / "issuers"

    @property
    def crl(self) -> Path:
        return self.root / "crl"

    @classmethod
    def under(cls, data_dir: Path) -> PkiDirs:
        return cls(Path(data_dir) / "pki")


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Stacklight's application instance certificate: what the server sees of us."""

    certificate_path: Path
    private_key_path: Path
    application_uri: str


class SecurityCheckFailed(Exception):
    """A certificate (the server's, or our configured one) failed a check; `quality` is what the tags become."""

    def __init__(self, reason: str, quality: Quality):
        super().__init__(reason)
        self.quality = quality


# --- Stacklight's own certificate -------------------------------------------------------------

def client_identity(pki: PkiDirs, certificate: str | None, private_key: str | None) -> ClientIdentity:
    """The configured certificate and key, or Stacklight's own, made under pki/own/ on first use."""
    if certificate is not None or private_key is not None:
        if certificate is None or private_key is None:
            raise SecurityCheckFailed("client_certificate and client_private_key must be configured together",
                                   BAD_SECURITY_CHECKS_FAILED)
        cert_path, key_path = Path(certificate), Path(private_key)
        for path in (cert_path, key_path):
            if not path.is_file():
                raise SecurityCheckFailed(f"configured client certificate file {path} does not exist",
                                       BAD_SECURITY_CHECKS_FAILED)
        cert = load_certificate(cert_path.read_bytes())
        return ClientIdentity(cert_path, key_path, application_uri_of(cert) or default_application_uri())
    return _own_identity(pki)


def _own_identity(pki: PkiDirs) -> ClientIdentity:
    pki.own.mkdir(parents=True, exist_ok=True)
    os.chmod(pki.own, 0o700)
    # Several sources (threads or processes) may start at once: one makes the pair, the others read it.
    with open(pki.own / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _own_identity_locked(pki)


def _own_identity_locked(pki: PkiDirs) -> ClientIdentity:
    cert_path, key_path = pki.own / OWN_CERTIFICATE_FILE, pki.own / OWN_PRIVATE_KEY_FILE
    if key_path.is_file():
        os.chmod(key_path, 0o600)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    else:
        key = cert_gen.generate_private_key()
        _write_private(key_path, cert_gen.dump_private_key_as_pem(key))
        cert_path.unlink(missing_ok=True)  # a new key needs a new certificate
    cert = load_certificate(cert_path.read_bytes()) if cert_path.is_file() else None
    if cert is not None and (validity_problem(cert) is not None or application_uri_of(cert) is None):
        log.warning("Stacklight's own OPC UA certificate %s is no longer usable (%s); making a new one: "
                    "servers that trusted the old one must trust the new one",
                    cert_path, validity_problem(cert) or "no application URI")
        cert = None
    if cert is None:
        application_uri = default_application_uri()
        cert = cert_gen.generate_self_signed_app_certificate(
            key, "Stacklight", {},
            [x509.UniformResourceIdentifier(application_uri), x509.DNSName(socket.gethostname())],
            extended=[ExtendedKeyUsageOID.CLIENT_AUTH], days=OWN_CERTIFICATE_VALID_DAYS)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        log.info("made Stacklight's OPC UA client certificate %s (thumbprint SHA256 %s)",
                 cert_path, thumbprint_sha256(cert))
    return ClientIdentity(cert_path, key_path, application_uri_of(cert) or default_application_uri())


def _write_private(path: Path, content: bytes) -> None:
    """Write a secret readable by its owner only, from the first byte on."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    os.chmod(path, 0o600)


# --- certificates -----------------------------------------------------------------------------

def load_certificate(data: bytes) -> x509.Certificate:
    """A DER or PEM certificate; of a DER chain, the first."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(first_der_certificate(data))


def first_der_certificate(der: bytes) -> bytes:
    """The leading certificate of a DER blob that may hold a whole chain (outer SEQUENCE length)."""
    if len(der) < 2 or der[0] != 0x30:
        return der
    length = der[1]
    if length < 0x80:
        return der[:2 + length]
    octets = length & 0x7F
    return der[:2 + octets + int.from_bytes(der[2:2 + octets], "big")]


def der_bytes(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def thumbprint_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(der_bytes(cert)).hexdigest().upper()


def thumbprint_sha1(cert: x509.Certificate) -> str:
    return hashlib.sha1(der_bytes(cert)).hexdigest().upper()  # noqa: S324 - OPC UA's own thumbprint


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def application_uri_of(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def validity_problem(cert: x509.Certificate, now: datetime.datetime | None = None) -> str | None:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if now < cert.not_valid_before_utc:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    if now > cert.not_valid_after_utc:
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    return None


# --- the trust list ---------------------------------------------------------------------------

def certificates_in(folder: Path) -> list[x509.Certificate]:
    """Every readable certificate in the folder (read on every check: no restart after a change)."""
    found = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in CERTIFICATE_SUFFIXES:
            continue
        try:
            found.append(load_certificate(path.read_bytes()))
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s in the OPC UA trust list: not a certificate (%s)", path, exc)
    return found


def trusted_thumbprints(pki: PkiDirs) -> set[str]:
    """SHA-256 thumbprints of every readable certificate in trusted/."""
    return {thumbprint_sha256(cert) for cert in certificates_in(pki.trusted)}


def _trust_through_a_ca(cert: x509.Certificate, trusted: list[x509.Certificate], pki: PkiDirs,
                        require_revocation_lists: bool, described: str) -> bool:
    """True when a CA in trusted/ issued the certificate and the chain passes; ChainRefused -> SecurityCheckFailed."""
    store = TrustStore([c for c in trusted if is_ca(c)], [c for c in certificates_in(pki.issuers) if is_ca(c)],
                       load_crls(pki.crl))
    if not store.trusted_cas:
        return False
    chain = build_chain(cert, store)
    if chain is None:
        return False
    try:
        check_chain(chain, store, require_revocation_lists)
    except ChainRefused as exc:
        raise SecurityCheckFailed(f"{described}: {exc}", exc.quality) from None
    return True


def check_server_certificate(
    server_certificate: bytes, pki: PkiDirs, trust_on_first_use: bool, endpoint: str,
    require_revocation_lists: bool = True,
) -> x509.Certificate:
    """The server's certificate if it is trusted and valid; else SecurityCheckFailed with what to do.

    An unknown certificate is saved to rejected/ (or, with trust_on_first_use, to trusted/).
    """
    if not server_certificate:
        raise SecurityCheckFailed(f"{endpoint} sent no server certificate", BAD_SECURITY_CHECKS_FAILED)
    try:
        cert = load_certificate(server_certificate)
    except ValueError as exc:
        raise SecurityCheckFailed(f"{endpoint} sent an unreadable server certificate: {exc}",
                               BAD_SECURITY_CHECKS_FAILED) from None
    thumbprint = thumbprint_sha256(cert)
    described = f"server certificate CN={common_name(cert)}, thumbprint SHA256 {thumbprint}"
    problem = validity_problem(cert)
    if problem is not None:
        raise SecurityCheckFailed(f"{described} is {problem}; the server needs a new certificate",
                               BAD_CERTIFICATE_TIME_INVALID)
    trusted = certificates_in(pki.trusted)
    if thumbprint in {thumbprint_sha256(c) for c in trusted}:
        return cert
    if _trust_through_a_ca(cert, trusted, pki, require_revocation_lists, described):
        return cert
    file_name = f"{thumbprint}.der"
    if trust_on_first_use:
        pki.trusted.mkdir(parents=True, exist_ok=True)
        (pki.trusted / file_name).write_bytes(der_bytes(cert))
        log.warning("trust_on_first_use: now trusting the %s of %s, first seen just now; it is stored as %s",
                    described, endpoint, pki.trusted / file_name)
        return cert
    pki.rejected.mkdir(parents=True, exist_ok=True)
    rejected = pki.rejected / file_name
    if not rejected.exists():
        rejected.write_bytes(der_bytes(cert))
    raise SecurityCheckFailed(f"{described} is not trusted; to trust it, move {rejected} to {pki.trusted}/",
                           BAD_CERTIFICATE_UNTRUSTED)

