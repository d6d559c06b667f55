"""Building and closing asyncua clients and subscription requests: part of the OPC UA adapter."""
from __future__ import annotations

import asyncio
import contextlib
import math
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


async def new_client(source_name: str, config: OpcUaSource, password: str | None, data_dir: Path) -> Client:
    """A client with the configured security and user; unencrypted only when configured so."""
    # asyncua's own health probe (a read every watchdog_intervall, answered within as long)
    # declares a busy server dead after 1 s by default; silence is our watchdog's to judge.
    client = Client(config.endpoint, timeout=REQUEST_TIMEOUT_S, watchdog_intervall=max(1.0, config.stale_after_s))
    # A session we could not close (link lost) lingers on the server this long, not asyncua's 1 h.
    client.session_timeout = SESSION_TIMEOUT_MS
    client.name = client.description = f"Stacklight data source {source_name}"
    client.application_uri = f"urn:stacklight:data-source:{source_name}"
    if config.credentials is not None:
        client.set_user(config.credentials.username)
        client.set_password(password or "")
    if config.security.policy is not OpcUaSecurityPolicy.NONE:
        # Basic for now: a self-signed application certificate, made once and kept under data_dir.
        pki_dir = data_dir / "pki" / source_name
        cert_file, key_file = await client.setup_self_signed_certificate(
            pki_dir / "client_key.pem", pki_dir / "client_cert.der")
        await client.set_security(
            getattr(security_policies, f"SecurityPolicy{config.security.policy.value}"),
            str(cert_file), str(key_file), mode=ua.MessageSecurityMode[config.security.mode.value])
    return client


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


async def new_verified_client(
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
            check_server_certificate, server_certificate, pki, config.trust_on_first_use, config.endpoint)
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


def subscription_parameters(config: OpcUaSource) -> ua.CreateSubscriptionParameters:
    publishing_ms = float(config.publishing_interval_ms)
    # Keep-alives at least twice per stale_after_s, so silence means the link is gone.
    keepalive_count = max(1, math.floor(config.stale_after_s * 1000 / 2 / publishing_ms))
    return ua.CreateSubscriptionParameters(
        RequestedPublishingInterval=publishing_ms,
        RequestedLifetimeCount=max(3 * keepalive_count, math.ceil(60_000 / publishing_ms)),
        RequestedMaxKeepAliveCount=keepalive_count,
        MaxNotificationsPerPublish=0,
        PublishingEnabled=True,
        Priority=0,
    )


def item_queue_size(revised_publishing_ms: float, sampling_ms: float) -> int:
    """Room in the server's item queue for every sample taken within one publishing interval."""
    return min(100, math.ceil(revised_publishing_ms / max(sampling_ms, 1.0)) + 1)


def monitored_item_request(
    node_id: ua.NodeId, handle: int, sampling_ms: float, queue_size: int
) -> ua.MonitoredItemCreateRequest:
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=ua.MonitoringParameters(
            ClientHandle=handle, SamplingInterval=sampling_ms, QueueSize=queue_size, DiscardOldest=True),
    )
