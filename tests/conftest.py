"""Shared fixtures: real servers started by the tests on free loopback ports."""
from __future__ import annotations

# Imported now, not lazily by its plugin at the end of the session: on CPython 3.11.7 that late
# import (with pytest's assertion rewriting) sometimes fails with "AST constructor recursion depth mismatch".
import hypothesis  # noqa: F401
import os
import shutil
import tempfile

import pytest
import redis.asyncio as aioredis

from launcher.embedded_servers import MqttBroker, RedisServer


_SESSION_DATA_DIR = tempfile.mkdtemp(prefix="stacklight-test-data-")


def pytest_configure(config):
    # Plant files read data_dir from $STACKLIGHT_DATA_DIR (the demo plant, the web test plant):
    # no test, and no child process a test starts, writes into the checkout's ./data.
    os.environ["STACKLIGHT_DATA_DIR"] = _SESSION_DATA_DIR


def pytest_unconfigure(config):
    shutil.rmtree(_SESSION_DATA_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path, monkeypatch):
    """Each test its own data directory (journal archive, PKI, ...)."""
    monkeypatch.setenv("STACKLIGHT_DATA_DIR", str(tmp_path / "data"))


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
