"""Trust through a certificate authority: chain building and revocation (OPC UA Part 4, 6.1.3).

A server certificate that is not itself in trusted/ is accepted when it was issued
(possibly through intermediate CAs) by a CA certificate in trusted/, every CA on the
way is valid today and marked as a CA, and nothing on the chain is revoked. CA
certificates that are only stepping stones, not trusted on their own, go in issuers/.
Revocation lists (CRLs, DER or PEM) for any CA go in crl/; by default a CA without a
current CRL makes its certificates fail with BadCertificateRevocationUnknown, as the
standard asks. Pure file reading; nothing here opens a connection.
"""
from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from domain.quality import Quality, quality_from_code

log = logging.getLogger(__name__)

BAD_CERTIFICATE_ISSUER_TIME_INVALID = quality_from_code(0x80150000, "BadCertificateIssuerTimeInvalid")
BAD_CERTIFICATE_REVOCATION_UNKNOWN = quality_from_code(0x801B0000, "BadCertificateRevocationUnknown")
BAD_CERTIFICATE_ISSUER_REVOCATION_UNKNOWN = quality_from_code(0x801C0000, "BadCertificateIssuerRevocationUnknown")
BAD_CERTIFICATE_REVOKED = quality_from_code(0x801D0000, "BadCertificateRevoked")
BAD_CERTIFICATE_ISSUER_REVOKED = quality_from_code(0x801E0000, "BadCertificateIssuerRevoked")
BAD_CERTIFICATE_INVALID = quality_from_code(0x80120000, "BadCertificateInvalid")

MAX_CHAIN_LENGTH = 6
CRL_SUFFIXES = (".crl", ".der", ".pem")


class ChainRefused(Exception):
    """A CA-issued certificate failed a check; `quality` is what the tags become."""

    def __init__(self, reason: str, quality: Quality):
        super().__init__(reason)
        self.quality = quality


@dataclass(frozen=True, slots=True)
class TrustStore:
    """What the folders hold, read once per check."""

    trusted_cas: list[x509.Certificate]
    issuer_cas: list[x509.Certificate]
    crls: list[x509.CertificateRevocationList]


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def load_crls(folder: Path) -> list[x509.CertificateRevocationList]:
    found = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in CRL_SUFFIXES:
            continue
        data = path.read_bytes()
        try:
            found.append(x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----BEGIN")
                         else x509.load_der_x509_crl(data))
        except ValueError as exc:
            log.warning("ignoring %s: not a certificate revocation list (%s)", path, exc)
    return found


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_self_signed(cert: x509.Certificate) -> bool:
    return _issued_by(cert, cert)


def build_chain(cert: x509.Certificate, store: TrustStore) -> list[x509.Certificate] | None:
    """[cert, issuer, ..., trusted CA], or None when no trusted CA is reached."""
    chain = [cert]
    while len(chain) <= MAX_CHAIN_LENGTH:
        current = chain[-1]
        trusted = next((ca for ca in store.trusted_cas if _issued_by(current, ca)), None)
        if trusted is not None:
            return chain if trusted is current else [*chain, trusted]
        if _is_self_signed(current):
            return None  # a root nobody trusts
        step = next((ca for ca in store.issuer_cas if ca not in chain and _issued_by(current, ca)), None)
        if step is None:
            return None
        chain.append(step)
    return None


def _revocation_list_of(issuer: x509.Certificate, store: TrustStore,
                        now: datetime.datetime) -> x509.CertificateRevocationList | None:
    """The issuer's current CRL (signed by it, not past its next update)."""
    for crl in store.crls:
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):
            continue
        if crl.next_update_utc is not None and crl.next_update_utc < now:
            log.warning("the revocation list of %s is out of date (next update was %s)",
                        issuer.subject.rfc4514_string(), crl.next_update_utc)
            continue
        return crl
    return None


def check_chain(chain: list[x509.Certificate], store: TrustStore, require_revocation_lists: bool,
                now: datetime.datetime | None = None) -> None:
    """Raise ChainRefused unless every CA is valid and a CA, and nothing on the chain is revoked."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    for position, (cert, issuer) in enumerate(zip(chain, chain[1:])):
        subject = "the server certificate" if position == 0 else f"CA {issuer_name(cert)}"
        if not is_ca(issuer):
            raise ChainRefused(f"{issuer_name(issuer)}, issuer of {subject}, is not a CA certificate",
                               BAD_CERTIFICATE_INVALID)
        if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
            raise ChainRefused(f"CA {issuer_name(issuer)} is outside its validity dates"
                               f" ({issuer.not_valid_before_utc:%Y-%m-%d} to {issuer.not_valid_after_utc:%Y-%m-%d})",
                               BAD_CERTIFICATE_ISSUER_TIME_INVALID)
        crl = _revocation_list_of(issuer, store, now)
        if crl is None:
            if require_revocation_lists:
                quality = BAD_CERTIFICATE_REVOCATION_UNKNOWN if position == 0 else \
                    BAD_CERTIFICATE_ISSUER_REVOCATION_UNKNOWN
                raise ChainRefused(f"no current revocation list (CRL) of CA {issuer_name(issuer)} to check"
                                   f" {subject} against; put the CA's CRL in the trust list's crl/ folder",
                                   quality)
            continue
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            quality = BAD_CERTIFICATE_REVOKED if position == 0 else BAD_CERTIFICATE_ISSUER_REVOKED
            raise ChainRefused(f"{subject} (serial {cert.serial_number:X}) is revoked by CA"
                               f" {issuer_name(issuer)}", quality)


def issuer_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return f"CN={names[0].value}" if names else cert.subject.rfc4514_string()
