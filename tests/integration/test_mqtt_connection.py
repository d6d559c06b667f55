"""MQTT connections against a real mosquitto: protocol 3.1.1 and 5, TLS (CA, hostname, client
certificate), persistent sessions and per-tag QoS."""
from __future__ import annotations

import os
import subprocess

import aiomqtt
import pytest

from data_sources.base import SourceConfigError
from data_sources.mqtt_source import MqttDataSource
from domain.config_model import MqttSource, MqttTls, Tag
from domain.quality import GOOD
from launcher.embedded_servers import MqttBroker, find_executable
from tag_store.source_status import ConnectionState
from tag_store.writer import TagStoreWriter
from tests.integration.data_source_helpers import latest, running, wait_for_latest, wait_until
from tests.integration.mqtt_tls_helpers import start_tls_broker

SOURCE = "broker"
TOPIC = "plant/meter/power_kw"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    broker = start_tls_broker(tmp_path_factory.mktemp("mqtt-tls"))
    yield broker
    broker.broker.stop()


@pytest.fixture
def make_source(redis_client, tmp_path):
    def make(port: int, tags: list[Tag] | None = None, **settings) -> tuple[MqttDataSource, TagStoreWriter]:
        config = MqttSource(kind="mqtt", host=settings.pop("host", "127.0.0.1"), port=port, keepalive_s=5,
                            reconnect_max_delay_s=0.5, **settings)
        writer = TagStoreWriter(redis_client, history_samples_per_tag=100, flush_interval_s=0.01)
        tags = tags or [Tag(name="meter.power", source=SOURCE, topic=TOPIC)]
        return MqttDataSource(SOURCE, config, tags, writer, data_dir=tmp_path), writer
    return make


def connected(source: MqttDataSource):
    return lambda: source.state is ConnectionState.CONNECTED


async def publish(port: int, topic: str, payload: bytes, qos: int = 1) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as device:
        await device.publish(topic, payload, qos=qos)


async def value_flows(source, writer, port: int, redis_client, value: float) -> None:
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what=f"connecting ({source.detail})")
        await publish(port, TOPIC, str(value).encode())
        tv = await wait_for_latest(redis_client, "meter.power", lambda tv: tv.value == value)
        assert tv.quality == GOOD


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_both_protocol_versions_carry_values(mqtt_broker, make_source, redis_client, protocol):
    source, writer = make_source(mqtt_broker.port, protocol=protocol, client_id=f"stacklight-{protocol}")
    await value_flows(source, writer, mqtt_broker.port, redis_client, 12.5)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_verified_tls(tls_broker, make_source, redis_client, protocol):
    source, writer = make_source(tls_broker.verified_port, protocol=protocol,
                                 tls=MqttTls(ca_file=str(tls_broker.ca.certificate)))
    await value_flows(source, writer, tls_broker.plain_port, redis_client, 3.25)


async def refused(source: MqttDataSource, writer: TagStoreWriter) -> str:
    async with running(writer.run(), source.run()):
        await wait_until(lambda: source.counters.connect_failures >= 1, timeout_s=8, what="a refused connection")
        assert source.state is ConnectionState.DISCONNECTED and source.counters.connects == 0
        return source.detail


async def test_a_broker_certificate_from_another_ca_is_refused_and_says_why(tls_broker, make_source):
    source, writer = make_source(tls_broker.verified_port, tls=MqttTls(ca_file=str(tls_broker.other_ca.certificate)))
    detail = await refused(source, writer)
    assert detail.startswith("TLS: the broker's certificate is not trusted (certificate verify failed:"), detail


async def test_a_hostname_mismatch_is_refused_unless_checking_is_off(tls_broker, make_source, redis_client):
    source, writer = make_source(tls_broker.wrong_host_port, tls=MqttTls(ca_file=str(tls_broker.ca.certificate)))
    detail = await refused(source, writer)
    assert detail.startswith("TLS: the broker's certificate is not trusted") and "mismatch" in detail, detail
    source, writer = make_source(tls_broker.wrong_host_port,
                                 tls=MqttTls(ca_file=str(tls_broker.ca.certificate), check_hostname=False))
    await value_flows(source, writer, tls_broker.plain_port, redis_client, 4.5)


async def test_a_listener_that_requires_a_client_certificate(tls_broker, make_source, redis_client):
    source, writer = make_source(tls_broker.client_cert_port, tls=MqttTls(ca_file=str(tls_broker.ca.certificate)))
    detail = await refused(source, writer)
    assert detail and "unexpected" not in detail, detail
    assert detail.startswith("TLS: the broker requires a client certificate"), detail
    source, writer = make_source(tls_broker.client_cert_port, tls=MqttTls(
        ca_file=str(tls_broker.ca.certificate), client_certificate=str(tls_broker.client.certificate),
        client_private_key=str(tls_broker.client.private_key)))
    await value_flows(source, writer, tls_broker.plain_port, redis_client, 5.75)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_persistent_session_keeps_qos1_messages_while_away_and_tag_qos_is_honoured(
        mqtt_broker, make_source, redis_client, protocol):
    tags = [Tag(name="kept", source=SOURCE, topic="plant/kept"),                 # the source's qos: 1
            Tag(name="lost", source=SOURCE, topic="plant/lost", qos=0)]          # QoS 0: not queued while away
    settings = {"protocol": protocol, "client_id": f"persistent-{protocol}", "clean_session": False}
    source, writer = make_source(mqtt_broker.port, tags, **settings)
    assert source.subscriptions() == {"plant/kept": 1, "plant/lost": 0}
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
    # Away: the broker keeps the QoS 1 message for the session, not the QoS 0 one.
    await publish(mqtt_broker.port, "plant/kept", b"1.5", qos=1)
    await publish(mqtt_broker.port, "plant/lost", b"2.5", qos=1)
    source, writer = make_source(mqtt_broker.port, tags, **settings)
    async with running(writer.run(), source.run()):
        kept = await wait_for_latest(redis_client, "kept", lambda tv: tv.quality == GOOD)
        assert kept.value == 1.5
        assert (await latest(redis_client, "lost")).value is None
        await publish(mqtt_broker.port, "plant/lost", b"3.5", qos=1)
        assert (await wait_for_latest(redis_client, "lost", lambda tv: tv.quality == GOOD)).value == 3.5


async def test_a_clean_session_gets_nothing_sent_while_away(mqtt_broker, make_source, redis_client):
    tags = [Tag(name="kept", source=SOURCE, topic="plant/kept")]
    source, writer = make_source(mqtt_broker.port, tags, client_id="clean")
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
    await publish(mqtt_broker.port, "plant/kept", b"1.5", qos=1)
    source, writer = make_source(mqtt_broker.port, tags, client_id="clean")
    async with running(writer.run(), source.run()):
        await wait_until(connected(source), what="connecting")
        await publish(mqtt_broker.port, "plant/kept", b"2.5", qos=1)
        assert (await wait_for_latest(redis_client, "kept", lambda tv: tv.quality == GOOD)).value == 2.5


async def test_a_broker_with_passwords_takes_the_secret_from_the_environment(
        tmp_path, make_source, redis_client, monkeypatch):
    password_file = tmp_path / "passwords"
    subprocess.run([find_executable("mosquitto_passwd") or "mosquitto_passwd", "-b", "-c", str(password_file),
                    "hmi", "s3cret"], check=True, capture_output=True)
    password_file.chmod(0o600)
    stay = "user root\n" if os.geteuid() == 0 else ""
    broker = MqttBroker(tmp_path / "broker", extra_config=f"{stay}allow_anonymous false\npassword_file {password_file}\n")
    broker.start()
    try:
        monkeypatch.setenv("TEST_MQTT_PASSWORD", "wrong")
        credentials = {"username": "hmi", "password": {"env": "TEST_MQTT_PASSWORD"}}
        source, writer = make_source(broker.port, credentials=credentials)
        assert "authori" in (await refused(source, writer)).lower()
        monkeypatch.setenv("TEST_MQTT_PASSWORD", "s3cret")
        source, writer = make_source(broker.port, credentials=credentials)
        async with running(writer.run(), source.run()):
            await wait_until(connected(source), what=f"connecting ({source.detail})")
            async with aiomqtt.Client("127.0.0.1", broker.port, username="hmi", password="s3cret") as device:
                await device.publish(TOPIC, b"6.5", qos=1)
            assert (await wait_for_latest(redis_client, "meter.power", lambda tv: tv.quality == GOOD)).value == 6.5
    finally:
        broker.stop()


async def test_unreadable_tls_files_fail_at_start_naming_the_source(tmp_path, make_source):
    with pytest.raises(SourceConfigError, match=f"source {SOURCE}: tls: .*No such file"):
        make_source(8883, tls=MqttTls(ca_file=str(tmp_path / "missing-ca.pem")))
    with pytest.raises(SourceConfigError, match="value_path"):
        make_source(1883, [Tag(name="t", source=SOURCE, topic="a", value_path="a..b")])
