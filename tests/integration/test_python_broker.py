"""The pure-Python fallback broker: started the way the launcher starts it, it relays messages on loopback only."""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiomqtt
import pytest

from launcher import embedded_servers
from launcher.embedded_servers import MqttBroker


@pytest.fixture
def python_broker(tmp_path, monkeypatch):
    """MqttBroker exactly as the launcher runs it on a machine without mosquitto."""
    real_find = embedded_servers.find_executable
    monkeypatch.setattr(embedded_servers, "find_executable",
                        lambda name: None if name == "mosquitto" else real_find(name))
    broker = MqttBroker(tmp_path / "python-broker")
    assert broker.implementation == "amqtt"
    broker.start()
    yield broker
    broker.stop()


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel lists them) with a socket in LISTEN state on port."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.add(address)
    return found


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; this only picks a route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_launcher_runs_the_python_broker_from_its_work_dir(python_broker):
    assert python_broker.command()[1:] == ["-m", "launcher.python_broker", "--port", str(python_broker.port)]
    assert python_broker.process.poll() is None


async def test_relays_messages_and_keeps_retained_ones(python_broker):
    async with aiomqtt.Client("127.0.0.1", python_broker.port, identifier="publisher") as publisher:
        await publisher.publish("stacklight/test/retained", b"42.5", qos=1, retain=True)
    async with aiomqtt.Client("127.0.0.1", python_broker.port, identifier="subscriber") as subscriber:
        await subscriber.subscribe("stacklight/test/#", qos=1)
        async with asyncio.timeout(5):
            async for message in subscriber.messages:
                assert str(message.topic) == "stacklight/test/retained"
                assert message.payload == b"42.5"
                assert message.retain
                break
        await subscriber.publish("stacklight/test/live", b"hello", qos=1)
        async with asyncio.timeout(5):
            async for message in subscriber.messages:
                assert (str(message.topic), message.payload) == ("stacklight/test/live", b"hello")
                break


def test_listens_on_loopback_only(python_broker):
    assert listening_addresses(python_broker.port) == {"0100007F"}  # 127.0.0.1, and no IPv6 wildcard
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with pytest.raises(OSError):
        socket.create_connection((address, python_broker.port), timeout=1).close()


def test_stops_on_sigterm(python_broker):
    python_broker.stop(timeout_s=5)
    assert python_broker.process.returncode == 0
