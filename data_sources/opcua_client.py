"""Building and closing asyncua clients and subscription requests: part of the OPC UA adapter."""
from __future__ import annotations

import asyncio
import contextlib
import math
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies

from domain.config_model import OpcUaSecurityPolicy, OpcUaSource

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
