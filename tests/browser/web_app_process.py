"""Test helpers: the web app as a real process on a free port, and a feeder of live values.

Used by tests/browser/conftest.py and the web integration tests; the end-to-end
tests (simulator + data sources + web) build on the same pieces.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis.asyncio as aioredis
import requests
from redis.exceptions import RedisError

from domain.quality import GOOD, Quality
from domain.tag_value import ScalarValue, TagValue
from launcher.embedded_servers import free_port, stop_process, wait_for_port
from tag_store import keys
from tag_store.source_status import ConnectionState, SourceStatus, publish_status
from tag_store.write_requests import WriteOutcome, WriteStatus, answer_write
from tag_store.writer import TagStoreWriter

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_PLANT = REPO_ROOT / "config" / "demo_plant.yaml"


class WebAppProcess:
    """`python -m web` in a child process; start() waits until /health answers."""

    def __init__(self, config_path: Path, redis_url: str, work_dir: Path, port: int | None = None,
                 extra_env: dict[str, str] | None = None, tls_ca: Path | None = None):
        """tls_ca: the plant file serves HTTPS (web.tls_cert/tls_key); requests trust this certificate."""
        self.config_path = Path(config_path)
        self.tls_ca = tls_ca
        self.redis_url = redis_url
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "web.log"

    def start(self, timeout_s: float = 40.0) -> WebAppProcess:
        env = {**os.environ, "REDIS_URL": self.redis_url, "PYTHONPATH": str(REPO_ROOT), **self.extra_env}
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "web", "--config", str(self.config_path), "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for_port(self.port, timeout_s, self.process)
        deadline = time.monotonic() + timeout_s
        verify = str(self.tls_ca) if self.tls_ca else True
        while requests.get(self.url + "/health", timeout=5, verify=verify).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"web app on {self.url} never became healthy; see {self.log_path}")
            time.sleep(0.1)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_process(self.process, timeout_s)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def login_session(base_url: str, user: str, password: str) -> requests.Session:
    """An HTTP session logged in through the /login form (cookies: session and CSRF)."""
    session = requests.Session()
    response = session.post(base_url + "/login", data={"username": user, "password": password, "next": "/"},
                            allow_redirects=False, timeout=10)
    if response.status_code != 303:
        raise AssertionError(f"login as {user} failed: {response.status_code}")
    session.headers["X-CSRFToken"] = session.cookies["stacklight_csrf"]
    return session


class TagFeeder:
    """Puts values into Redis the way a data source does (TagStoreWriter), from synchronous tests.

    Runs its own event loop in a thread so it works next to Playwright's sync API.
    """

    def __init__(self, redis_url: str, history_samples_per_tag: int = 3600):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tag-feeder", daemon=True)
        self._thread.start()
        self.redis = self.call(self._connect(redis_url))
        self._writer = TagStoreWriter(self.redis, history_samples_per_tag)
        self._heartbeats: asyncio.Future | None = None

    async def _connect(self, url: str) -> aioredis.Redis:
        return aioredis.Redis.from_url(url)

    def call(self, coroutine, timeout_s: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def put(self, tag: str, value: ScalarValue, quality: Quality = GOOD, source_time_ms: int | None = None) -> None:
        now_ms = int(time.time() * 1000)
        tv = TagValue(tag, value, quality, source_time_ms or now_ms, now_ms)

        async def submit_and_flush():
            self._writer.submit(tv)
            await self._writer.drain()

        self.call(submit_and_flush())

    def keep_sources_alive(self, sources: list[str], interval_s: float = 1.0) -> None:
        """Publish a fresh CONNECTED heartbeat for each source every interval_s until close()."""
        async def beat():
            while True:
                now_ms = int(time.time() * 1000)
                try:
                    for source in sources:
                        await publish_status(self.redis, SourceStatus(source, ConnectionState.CONNECTED, "",
                                                                      now_ms, {}))
                except (RedisError, OSError):
                    pass  # fault tests stop Redis; beat again once it is back
                await asyncio.sleep(interval_s)

        self._heartbeats = asyncio.run_coroutine_threadsafe(beat(), self._loop)

    def write_requests(self, source: str = "opc") -> list[dict]:
        """The write requests sent to `source` so far, oldest first."""
        entries = self.call(self.redis.xrange(keys.write_requests(source)))
        return [json.loads(fields[b"r"]) for _id, fields in entries]

    def answer_next_write(self, source: str = "opc", status: WriteStatus = WriteStatus.DONE,
                          reason: str = "") -> threading.Thread:
        """A stand-in data source: answers the next request to `source` (readback = the value) within 20 s."""
        already = len(self.write_requests(source))

        def answer():
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                requests_now = self.write_requests(source)
                if len(requests_now) > already:
                    request = requests_now[-1]
                    self.call(answer_write(self.redis, WriteOutcome(
                        request["request_id"], request["tag"], status, reason, readback=request["value"])))
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=answer, name="stand-in data source")
        thread.start()
        return thread

    def close(self) -> None:
        if self._heartbeats is not None:
            self._heartbeats.cancel()
        try:
            self.call(self.redis.aclose(), timeout_s=5)
        except Exception:  # noqa: BLE001 - Redis may be gone already in fault tests
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
