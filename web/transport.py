"""How the web process listens: HTTPS when web.tls_cert/tls_key are set, and which proxies it believes.

Relative certificate paths are taken from the working directory, as every other file path of the
plant file is (data_dir, an OPC UA client_certificate, a secret file); the launcher's children run
in the launcher's. The pair is loaded once at start into an SSLContext so that a missing file or a
key that does not belong to the certificate stops the start with one clear line, not a traceback
from inside uvicorn.

X-Forwarded-For / X-Forwarded-Proto are believed only from web.trusted_proxies (uvicorn's own
default would trust 127.0.0.1): the client address in the audit trail and the https scheme that
makes cookies Secure come from a proxy's headers only when that proxy is configured.
"""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from domain.config_model import WebSettings


class TransportError(Exception):
    """The web process cannot listen as configured; str() is the message for stderr."""


def check_tls_files(cert: str, key: str) -> ssl.SSLContext:
    """The certificate and key loaded as a server would; a TransportError names the file and the reason."""
    for setting, path in (("web.tls_cert", cert), ("web.tls_key", key)):
        try:
            Path(path).open("rb").close()
        except OSError as exc:
            raise TransportError(f"{setting} {path}: cannot read it: {exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=cert)  # parses the certificate alone
    except (ssl.SSLError, ValueError) as exc:
        raise TransportError(f"web.tls_cert {cert}: not a PEM certificate: {_reason(exc)}") from None
    try:
        # An encrypted key would make OpenSSL ask for a pass phrase on the terminal: refuse instead.
        context.load_cert_chain(cert, key, password=_encrypted_key(key))
    except ssl.SSLError as exc:
        reason = _reason(exc)
        if "KEY_VALUES_MISMATCH" in str(exc) or "mismatch" in reason:
            reason = f"the key does not belong to the certificate web.tls_cert {cert} ({reason})"
        else:
            reason = f"not a usable PEM private key ({reason})"
        raise TransportError(f"web.tls_key {key}: {reason}") from None
    return context


def _encrypted_key(key: str):
    def refuse() -> str:
        raise TransportError(f"web.tls_key {key}: the key is encrypted with a pass phrase; give an unencrypted "
                             "key file readable only by the Stacklight user")
    return refuse


def _reason(exc: Exception) -> str:
    return getattr(exc, "reason", None) and str(exc.reason).lower().replace("_", " ") or str(exc)


def is_https(web: WebSettings) -> bool:
    return web.tls_cert is not None


def uvicorn_options(web: WebSettings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run: TLS files (checked first) and the trusted proxies."""
    options: dict[str, Any] = {
        "proxy_headers": bool(web.trusted_proxies),
        "forwarded_allow_ips": list(web.trusted_proxies),
    }
    if web.tls_cert is not None and web.tls_key is not None:
        check_tls_files(web.tls_cert, web.tls_key)
        options |= {"ssl_certfile": web.tls_cert, "ssl_keyfile": web.tls_key}
    return options


def base_url(web: WebSettings, host: str | None = None, port: int | None = None) -> str:
    return f"{'https' if is_https(web) else 'http'}://{host or web.host}:{port or web.port}"
