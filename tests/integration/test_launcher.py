"""`make run`: the whole demo starts, values flow over both protocols, Ctrl-C leaves nothing."""
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from launcher.embedded_servers import free_port
from launcher.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]


def processes_with_marker(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_supervisor_restarts_a_dead_child_and_stops_everything():
    marker = f"SL_TEST_{uuid.uuid4().hex}"
    env = dict(os.environ, SL_MARKER=marker)
    supervisor = Supervisor(max_backoff_s=0.5)
    child = supervisor.add("sleeper", ["-c", "import time; time.sleep(60)"], env)
    first_pid = child.process.pid
    child.process.kill()
    deadline = time.monotonic() + 10
    while child.process.pid == first_pid and time.monotonic() < deadline:
        supervisor.check_once()
        time.sleep(0.05)
    assert child.process.pid != first_pid and child.process.poll() is None
    supervisor.stop_all()
    assert child.process.poll() is not None
    assert processes_with_marker(marker) == []


@pytest.fixture
def demo(tmp_path):
    marker = f"SL_TEST_{uuid.uuid4().hex}"
    web_port = free_port()
    env = dict(
        os.environ, SL_MARKER=marker, STACKLIGHT_DATA_DIR=str(tmp_path / "data"),
        STACKLIGHT_WEB_PORT=str(web_port), STACKLIGHT_SIM_OPCUA_PORT=str(free_port()),
    )
    env.pop("REDIS_URL", None)
    env.pop("STACKLIGHT_CONFIG", None)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launcher"], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    yield launcher, web_port, marker
    if launcher.poll() is None:
        launcher.kill()
        launcher.wait()
    for pid in processes_with_marker(marker):
        os.kill(pid, signal.SIGKILL)


def read_until(process: subprocess.Popen, text: str, timeout_s: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"'{text}' not printed; output:\n{''.join(seen)}")


def private_redis_password(marker: str) -> str:
    """The password the launcher gave its children (REDIS_URL in their environment)."""
    for pid in processes_with_marker(marker):
        try:
            environ = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(b"REDIS_URL=redis://:"):
                return entry.decode().split("redis://:", 1)[1].split("@", 1)[0]
    raise AssertionError("no child has a REDIS_URL with a password")


def check_private_redis_is_locked(printed: str, marker: str, data_dir: Path) -> None:
    port = int(re.search(r"private Redis on redis://:\*\*\*@127\.0\.0\.1:(\d+)/0", printed).group(1))
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    password = private_redis_password(marker)
    assert len(password) >= 24 and redis.Redis(port=port, password=password).ping()
    assert password not in printed
    for pid in processes_with_marker(marker):  # `ps` shows command lines to every user
        assert password.encode() not in (Path("/proc") / str(pid) / "cmdline").read_bytes()
    assert (data_dir / "redis" / "redis-auth.conf").stat().st_mode & 0o777 == 0o600


def test_the_demo_runs_end_to_end_and_ctrl_c_stops_every_process(demo, tmp_path):
    launcher, web_port, marker = demo
    printed = read_until(launcher, "Press Ctrl-C", 120)
    assert f"http://127.0.0.1:{web_port}" in printed and "operator" in printed
    check_private_redis_is_locked(printed, marker, tmp_path / "data")
    base = f"http://127.0.0.1:{web_port}"
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
        assert client.get("/api/tags").status_code == 401
        login = client.post("/login", data={"username": "operator", "password": "operator"})
        assert login.status_code in (302, 303)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            tags = {t["name"]: t for t in client.get("/api/tags").json()}
            live = {n for n, t in tags.items() if t["quality"]["family"] == "Good"}
            if {"R201.temperature", "C401.discharge_pressure", "U501.power"} <= live:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"demo values never became Good: {tags}")
    assert len(processes_with_marker(marker)) >= 6  # launcher, redis, broker, simulator, 3 services

    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(30) == 0
    time.sleep(0.5)
    assert processes_with_marker(marker) == []


def test_with_a_certificate_the_launcher_serves_and_prints_https(tmp_path):
    from tests.integration.test_https import write_self_signed  # noqa: PLC0415

    cert, key = write_self_signed(tmp_path)
    web_port, marker = free_port(), f"SL_TEST_{uuid.uuid4().hex}"
    plant = tmp_path / "plant.yaml"
    plant.write_text(f"data_dir: {tmp_path / 'data'}\nsources: {{}}\ntags: []\n"
                     f"web: {{port: {web_port}, tls_cert: {cert}, tls_key: {key}}}\n")
    env = dict(os.environ, SL_MARKER=marker)
    env.pop("REDIS_URL", None)
    launcher = subprocess.Popen([sys.executable, "-m", "launcher", "--config", str(plant)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        printed = read_until(launcher, "Press Ctrl-C", 120)
        assert f"Stacklight is running:  https://127.0.0.1:{web_port}" in printed
        trust = ssl.create_default_context(cafile=str(cert))
        health = httpx.get(f"https://127.0.0.1:{web_port}/health", verify=trust, timeout=10)
        assert health.status_code == 200 and health.headers["strict-transport-security"] == "max-age=31536000"
        check_private_redis_is_locked(printed, marker, tmp_path / "data")
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(30) == 0
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in processes_with_marker(marker):
            os.kill(pid, signal.SIGKILL)
