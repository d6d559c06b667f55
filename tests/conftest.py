"""Shared fixtures: real servers started by the tests on free loopback ports."""
from __future__ import annotations

# Imported now, not lazily by its plugin at the end of the session: on CPython 3.11.7 that late
# import (with pytest's assertion rewriting) sometimes fails with "AST constructor recursion depth mismatch".
import hypothesis  # noqa: F401
import pytest
import redis.asyncio as aioredis

from launcher.embedded_servers import MqttBroker, RedisServer


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server; tests may stop() and start() it again on the same port."""
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(redis_server):
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def mqtt_broker(tmp_path):
    """A private mosquitto (or the Python fallback broker); stop() and start() work too."""
    broker = MqttBroker(tmp_path / "mqtt").start()
    yield broker
    broker.stop()
