"""Building and closing asyncua clients and subscription requests: part of the OPC UA adapter."""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies

from data_sources.opcua_security import (
    BAD_SECURITY_CHECKS_FAILED,
    PkiDirs,
    SecurityCheckFailed,
    check_server_certificate,
    client_identity,
    first_der_certificate,
)
from domain.config_model import OpcUaSecurityPolicy, OpcUaSource
from domain.quality import Quality, quality_from_code

REQUEST_TIMEOUT_S = 4.0
DISCONNECT_TIMEOUT_S = 1.0
SESSION_TIMEOUT_MS = 60_000


# The server refused the user (wrong name or password, or a token type it does not accept).
USER_REFUSED_CODES = frozenset({
    ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadIdentityTokenRejected})
# The server refused Stacklight's own certificate.
CLIENT_CERT_REFUSED_CODES = frozenset({
    ua.StatusCodes.BadSecurityChecksFailed, ua.StatusCodes.BadCertificateUntrusted,
    ua.StatusCodes.BadCertificateInvalid})


class SourceClient(Client):
    """An asyncua Client whose refusals (user, certificate) say what was refused and why."""

    username: str | None = None
    own_certificate: Path | None = None

    async def connect(self, **kwargs) -> None:
        try:
            await super().connect(**kwargs)
        except ua.UaStatusCodeError as exc:
            code = exc.code
            name = ua.StatusCode(code).name
            if code in USER_REFUSED_CODES:
                raise _refused(
                    f"the server refused user {self.username!r}: {name} "
                    f"(check credentials.username and the password)" if self.username else
                    f"the server refused an anonymous session: {name} (configure credentials)",
                    quality_from_code(code, name)) from None
            if code in CLIENT_CERT_REFUSED_CODES and self.own_certificate is not None:
                raise _refused(
                    f"the server refused Stacklight's certificate {self.own_certificate}: {name} "
                    f"(the server must trust it)", quality_from_code(code, name)) from None
            raise


def _refused(reason: str, quality: Quality) -> Exception:
    # The run loop's own exception carries the quality its tags take; imported late (it imports us).
    from data_sources.opcua_source import ConnectionLost
    return ConnectionLost(reason, quality)


async def new_client(
    source_name: str, config: OpcUaSource, password: str | None, data_dir: Path
) -> SourceClient:
    """A client with the configured security and user, that only talks to a server it trusts.

    With a security policy other than None, the server's certificate (from its endpoint
    description) must be in <data_dir>/pki/trusted/, or this raises ConnectionLost with
    BadCertificateUntrusted and the way to trust it (see data_sources/opcua_security.py).
    """
    client = SourceClient(config.endpoint, timeout=REQUEST_TIMEOUT_S,
                          watchdog_intervall=max(1.0, config.stale_after_s))
    client.session_timeout = SESSION_TIMEOUT_MS
    client.name = client.description = f"Stacklight data source {source_name}"
    if config.credentials is not None:
        client.username = config.credentials.username
        client.set_user(config.credentials.username)
        client.set_password(password or "")
    if config.security.policy is OpcUaSecurityPolicy.NONE:
        client.application_uri = f"urn:stacklight:data-source:{source_name}"
        return client
    pki = PkiDirs.under(data_dir)
    try:
        identity = await asyncio.to_thread(
            client_identity, pki, config.client_certificate, config.client_private_key)
        client.application_uri = identity.application_uri
        client.own_certificate = identity.certificate_path
        policy = getattr(security_policies, f"SecurityPolicy{config.security.policy.value}")
        mode = ua.MessageSecurityMode[config.security.mode.value]
        server_certificate = await _server_certificate(client, policy.URI, mode, config)
        await asyncio.to_thread(
            check_server_certificate, server_certificate, pki, config.trust_on_first_use, config.endpoint,
            config.require_revocation_lists)
    except SecurityCheckFailed as exc:
        raise _refused(str(exc), exc.quality) from None
    await client.set_security(policy, str(identity.certificate_path), str(identity.private_key_path),
                              server_certificate=server_certificate, mode=mode)
    return client


async def _server_certificate(client: Client, policy_uri: str, mode: ua.MessageSecurityMode,
                              config: OpcUaSource) -> bytes:
    """The certificate of the endpoint that offers our policy and mode, asked for without security."""
    endpoints = await asyncio.wait_for(client.connect_and_get_server_endpoints(), REQUEST_TIMEOUT_S * 2)
    for endpoint in endpoints:
        if endpoint.SecurityPolicyUri == policy_uri and endpoint.SecurityMode == mode:
            return first_der_certificate(endpoint.ServerCertificate or b"")
    offered = sorted({f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}" for e in endpoints})
    raise SecurityCheckFailed(
        f"{config.endpoint} offers no endpoint with security {config.security.policy.value}/"
        f"{config.security.mode.value}; it offers {', '.join(offered)}", BAD_SECURITY_CHECKS_FAILED)


async def disconnect_quietly(client: Client) -> None:
    """Close the session if the server still listens; never wait long for a dead one."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), DISCONNECT_TIMEOUT_S)
    with contextlib.suppress(Exception):
        client.disconnect_socket()
