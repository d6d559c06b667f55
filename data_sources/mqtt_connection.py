"""One way to open an MQTT connection from the configuration: broker address, TLS, identity, session.

Shared by the plain/JSON MQTT source and the Sparkplug B source. Nothing here
connects: new_client returns an aiomqtt.Client to use in `async with`.
"""
from __future__ import annotations

import logging
import os
import ssl
from urllib.parse import urlparse

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from data_sources.base import SourceConfigError
from domain.config_model import MqttConnection, MqttTls
from domain.secrets import SecretUnavailable, read_secret

EMBEDDED_BROKER_ENV_VAR = "STACKLIGHT_EMBEDDED_MQTT_URL"
DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
CONNECT_TIMEOUT_S = 5.0


def broker_address(config: MqttConnection, environ: dict[str, str] | os._Environ = os.environ) -> tuple[str, int]:
    """The configured host and port, or the embedded broker's from STACKLIGHT_EMBEDDED_MQTT_URL."""
    default_port = DEFAULT_TLS_PORT if config.tls is not None else DEFAULT_PORT
    if config.host is not None:
        return config.host, config.port or default_port
    url = environ.get(EMBEDDED_BROKER_ENV_VAR)
    if not url:
        raise SourceConfigError(
            f"no host is configured, so the embedded broker is meant, but {EMBEDDED_BROKER_ENV_VAR} is not set"
            " (e.g. mqtt://127.0.0.1:1883; `make run` sets it)")
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise SourceConfigError(f"{EMBEDDED_BROKER_ENV_VAR}={url!r} is not like mqtt://127.0.0.1:1883")
    return parsed.hostname, port or config.port or default_port


def read_credentials(config: MqttConnection) -> tuple[str | None, str | None]:
    """User name and password (from the environment or a secret file); SourceConfigError if unreadable."""
    if config.credentials is None:
        return None, None
    try:
        return config.credentials.username, read_secret(config.credentials.password)
    except SecretUnavailable as exc:
        raise SourceConfigError(f"password: {exc}") from None


def tls_context(tls: MqttTls) -> ssl.SSLContext:
    """Verify the broker (system CAs or ca_file, hostname on unless configured off); our certificate if set."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = tls.check_hostname
        if tls.client_certificate is not None:
            context.load_cert_chain(tls.client_certificate, tls.client_private_key)
    except (OSError, ssl.SSLError) as exc:
        raise SourceConfigError(f"tls: {exc}") from None
    return context


def new_client(
    config: MqttConnection, host: str, port: int, username: str | None, password: str | None, *,
    will: aiomqtt.Will | None = None, queue_type=None, max_queued_incoming: int | None = None,
    logger: logging.Logger | None = None,
) -> aiomqtt.Client:
    """An aiomqtt client set up as configured: protocol version, TLS, identity, clean or persistent session."""
    version5 = config.protocol == "5"
    session: dict = {}
    if version5:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0 if config.clean_session else config.session_expiry_s
        session = {"clean_start": config.clean_session, "properties": properties}
    else:
        session = {"clean_session": config.clean_session}
    return aiomqtt.Client(
        host, port, username=username, password=password, identifier=config.client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if version5 else aiomqtt.ProtocolVersion.V311,
        keepalive=config.keepalive_s, timeout=CONNECT_TIMEOUT_S, will=will, queue_type=queue_type,
        max_queued_incoming_messages=max_queued_incoming, logger=logger,
        tls_context=tls_context(config.tls) if config.tls is not None else None,
        **session)
