"""`python -m data_sources` as a process: starts, heartbeats, stops cleanly, refuses bad settings."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import pytest

from domain.quality import GOOD
from tag_store.source_status import ConnectionState, read_statuses
from tests.integration.data_source_helpers import latest, wait_for_latest

REPO = Path(__file__).resolve().parents[2]


def write_plant(path: Path, broker_port: int | None, redis_url: str | None = None) -> Path:
    source = f"kind: mqtt\n    host: 127.0.0.1\n    port: {broker_port}" if broker_port else "kind: mqtt"
    redis = f"redis: {{url: {redis_url}}}\n" if redis_url else ""
    path.write_text(
        f"site_name: service test\ndata_dir: {path.parent / 'data'}\n{redis}"
        f"sources:\n  skid:\n    {source}\n    keepalive_s: 2\n"
        "tags:\n  - {name: u.power, source: skid, topic: plant/power}\n"
        "  - {name: u.flow, source: skid, topic: plant/flow}\n")
    return path


def start(config: Path, **env_changes: str | None) -> subprocess.Popen:
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.Popen([sys.executable, "-m", "data_sources", "--config", str(config)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_the_service_runs_heartbeats_and_stops_cleanly(tmp_path, mqtt_broker, redis_server, redis_client):
    config = write_plant(tmp_path / "plant.yaml", mqtt_broker.port)
    process = start(config, REDIS_URL=redis_server.url)
    try:
        # Before any data: every tag is there, not yet live.
        waiting = await wait_for_latest(redis_client, "u.flow", lambda tv: tv.quality.is_bad, timeout_s=20)
        assert waiting.quality.name == "BadWaitingForInitialData"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = (await read_statuses(redis_client, ["skid"]))["skid"]
            if status is not None and status.state is ConnectionState.CONNECTED:
                break
            await asyncio.sleep(0.1)
        assert status.state is ConnectionState.CONNECTED and abs(status.heartbeat_ms - time.time() * 1000) < 3000
        assert "received" in status.counters and "store_written" in status.counters
        async with aiomqtt.Client("127.0.0.1", mqtt_broker.port) as device:
            await device.publish("plant/power", b"640.5", qos=1)
        power = await wait_for_latest(redis_client, "u.power", lambda tv: tv.quality == GOOD)
        assert power.value == 640.5
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        # A clean stop marks nothing: the last value stays as it was (the heartbeat tells readers it is old).
        assert (await latest(redis_client, "u.power")) == power
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("plant", "env", "message"),
    [
        ("sources: {}\ntags: []\nsurprise: 1\n", {}, "surprise"),
        (None, {"REDIS_URL": None}, "no Redis"),
        ("embedded", {"STACKLIGHT_EMBEDDED_MQTT_URL": None}, "STACKLIGHT_EMBEDDED_MQTT_URL"),
    ],
)
def test_unusable_settings_exit_with_code_2_before_anything_starts(tmp_path, plant, env, message):
    config = tmp_path / "plant.yaml"
    if plant is None:
        write_plant(config, broker_port=1883)
    elif plant == "embedded":
        write_plant(config, broker_port=None)
    else:
        config.write_text(plant)
    process = start(config, **{"REDIS_URL": "redis://127.0.0.1:1/0", **env})
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 2 and message in err
