"""Redis with a password or an ACL user: every service connects with redis.username/password.

A real redis-server with requirepass (and an ACL user made with the line docs/transport.md
gives); the plant file points at the secret (an environment variable or a file), REDIS_URL
carries no credentials, so they can only come from the plant file.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from launcher.embedded_servers import RedisServer, stop_process
from tests.browser.web_app_process import REPO_ROOT, TagFeeder, WebAppProcess, login_session
from tests.unit.web_plant import WEB_TEST_PLANT
from web.users import ensure_demo_users

ADMIN_PASSWORD = "admin-Pw:/@1"
APP_PASSWORD = "app pw@with/odd:chars"


def documented_acl_line() -> list[str]:
    """The ACL SETUSER line of docs/transport.md, with our password for its placeholder."""
    doc = (REPO_ROOT / "docs" / "transport.md").read_text()
    line = next(line for line in doc.splitlines() if line.startswith("ACL SETUSER stacklight "))
    return [f">{APP_PASSWORD}" if word == ">the-secret" else word for word in line.split()]


SERVICES = ["web", "alarm_engine", "historian", "data_sources"]


@pytest.fixture
def locked_redis(tmp_path):
    """requirepass ADMIN_PASSWORD, plus the ACL user 'stacklight' of the docs."""
    server = RedisServer(tmp_path / "redis", persistent=False, password=ADMIN_PASSWORD).start()
    admin = redis.Redis.from_url(server.url)
    admin.execute_command(*documented_acl_line())
    admin.close()
    yield server
    server.stop()


def bare_url(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


def acl_url(server: RedisServer) -> str:
    return f"redis://stacklight:{quote(APP_PASSWORD, safe='')}@127.0.0.1:{server.port}/0"


def write_plant(tmp_path: Path, redis_section: str) -> Path:
    plant = tmp_path / "plant.yaml"
    plant.write_text(WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "1") + redis_section)
    return plant


def run_service(service: str, plant: Path, env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", service, "--config", str(plant)], cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
                          capture_output=True, text=True, timeout=timeout_s)


def test_redis_refuses_clients_without_the_password(locked_redis):
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(bare_url(locked_redis)).ping()


def test_web_and_alarm_engine_use_the_password_from_an_environment_secret(locked_redis, tmp_path):
    plant = write_plant(tmp_path, "redis:\n  password: {env: SL_TEST_REDIS_PW}\n")
    secret_env = {"SL_TEST_REDIS_PW": ADMIN_PASSWORD}
    feeder = TagFeeder(locked_redis.url)
    feeder.call(ensure_demo_users(feeder.redis))
    feeder.put("T1.level", 2.5)
    web = WebAppProcess(plant, bare_url(locked_redis), tmp_path / "web", extra_env=secret_env).start()
    engine = subprocess.Popen([sys.executable, "-m", "alarm_engine", "--config", str(plant)], cwd=REPO_ROOT,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "REDIS_URL": bare_url(locked_redis),
                                   **secret_env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        session = login_session(web.url, "operator", "operator")  # users, sessions, audit: all in Redis
        tags = {t["name"]: t for t in session.get(web.url + "/api/tags", timeout=10).json()}
        assert tags["T1.level"]["value"] == 2.5
        deadline = time.monotonic() + 30
        while not feeder.call(feeder.redis.exists("sl:alarm:engine")):
            assert engine.poll() is None, engine.stderr.read()
            assert time.monotonic() < deadline, "the alarm engine never reported to Redis"
            time.sleep(0.2)
    finally:
        stop_process(engine)
        web.stop()
        feeder.close()


def test_the_documented_acl_user_serves_web_writer_and_historian(locked_redis, tmp_path):
    secret = tmp_path / "redis.secret"
    secret.write_text(APP_PASSWORD + "\n")
    plant = write_plant(tmp_path, f"redis:\n  username: stacklight\n  password: {{file: {secret}}}\n")
    feeder = TagFeeder(acl_url(locked_redis))  # the tag store writer (its Lua script) as the ACL user
    feeder.call(ensure_demo_users(feeder.redis))
    env = {"REDIS_URL": bare_url(locked_redis)}
    web = WebAppProcess(plant, bare_url(locked_redis), tmp_path / "web").start()
    historian = subprocess.Popen([sys.executable, "-m", "historian", "--config", str(plant)], cwd=REPO_ROOT,
                                 env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    engine = subprocess.Popen([sys.executable, "-m", "alarm_engine", "--config", str(plant)], cwd=REPO_ROOT,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for value in (1.0, 2.0, 3.0):
            feeder.put("T1.level", value)
        session = login_session(web.url, "engineer", "engineer")
        tags = {t["name"]: t for t in session.get(web.url + "/api/tags", timeout=10).json()}
        assert tags["T1.level"]["value"] == 3.0
        audit = session.get(web.url + "/api/audit", timeout=10)
        assert audit.status_code == 200, audit.text
        deadline = time.monotonic() + 30
        while feeder.call(feeder.redis.hget("sl:historian", "state")) is None:
            assert historian.poll() is None, historian.stderr.read()
            assert time.monotonic() < deadline, "the historian never sent a heartbeat"
            time.sleep(0.2)
        historian.send_signal(signal.SIGTERM)
        assert historian.wait(30) == 0, historian.stderr.read()  # 0: everything it read is on disk
        written = list((Path(os.environ["STACKLIGHT_DATA_DIR"]) / "historian").rglob("*.parquet"))
        assert written, "the historian wrote no file"
        feeder.put("T1.level", 4.9)  # high-high: the alarm engine raises it (its Lua, streams, hashes)
        deadline = time.monotonic() + 30
        while not feeder.call(feeder.redis.hlen("sl:alarms")):
            assert time.monotonic() < deadline, "the alarm engine never raised the alarm"
            time.sleep(0.2)
        admin = redis.Redis.from_url(locked_redis.url)
        denied = admin.execute_command("ACL", "LOG")
        admin.close()
        assert denied == [], f"commands the documented ACL refused: {denied}"
    finally:
        stop_process(engine)
        stop_process(historian)
        web.stop()
        feeder.close()


def test_the_acl_user_cannot_reach_other_keys_or_dangerous_commands(locked_redis):
    client = redis.Redis.from_url(acl_url(locked_redis))
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.get("other:app:key")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()
    client.close()


@pytest.mark.parametrize("service", SERVICES)
def test_a_wrong_password_stops_each_service_with_one_clear_line(locked_redis, tmp_path, service):
    plant = write_plant(tmp_path, "redis:\n  username: stacklight\n  password: {env: SL_TEST_REDIS_PW}\n")
    result = run_service(service, plant, {"REDIS_URL": bare_url(locked_redis), "SL_TEST_REDIS_PW": "not-it"})
    assert result.returncode == 2, result.stderr
    assert "Redis refused the credentials (redis.username/password)" in result.stderr
    assert "redis://stacklight:***@127.0.0.1" in result.stderr
    assert "not-it" not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_a_missing_secret_file_names_the_setting(locked_redis, tmp_path):
    plant = write_plant(tmp_path, f"redis:\n  password: {{file: {tmp_path / 'nope'}}}\n")
    result = run_service("historian", plant, {"REDIS_URL": bare_url(locked_redis)})
    assert result.returncode == 2 and f"redis.password: cannot read secret file {tmp_path / 'nope'}" in result.stderr


def test_users_cli_with_config_uses_the_plant_file_credentials(locked_redis, tmp_path):
    plant = write_plant(tmp_path, "redis:\n  username: stacklight\n  password: {env: SL_TEST_REDIS_PW}\n")
    password_file = tmp_path / "new.pw"
    password_file.write_text("a-long-enough-password-1\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "REDIS_URL": bare_url(locked_redis),
           "SL_TEST_REDIS_PW": APP_PASSWORD}
    result = subprocess.run([sys.executable, "-m", "web.users", "--config", str(plant), "add", "alice", "--role",
                             "viewer", "--password-file", str(password_file)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    admin = redis.Redis.from_url(locked_redis.url)
    assert admin.hget("sl:user:alice", "role") == b"viewer"
    admin.close()
