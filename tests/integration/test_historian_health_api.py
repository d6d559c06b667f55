"""GET /api/history/health on the web app as a process, against a real Redis: from a heartbeat written
here, and from a real historian (`python -m historian`) that runs, stops cleanly, and is killed."""
from __future__ import annotations

import signal
import time

import pytest
import requests

from historian.heartbeat import HistorianState, HistorianStatus, write_heartbeat
from tests.browser.web_app_process import WebAppProcess, login_session
from tests.integration.test_historian_service import HistorianProcess
from tests.unit.web_plant import WEB_TEST_PLANT
from web.historian_health import HEARTBEAT_TIMEOUT_MS


@pytest.fixture
def plant(tmp_path):
    """The web test plant with its own data dir, read by the web app and the historian alike."""
    plant = tmp_path / "plant.yaml"
    plant.write_text(WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "1")
                     .replace("data_dir: ${STACKLIGHT_DATA_DIR:-./data}", f"data_dir: {tmp_path / 'data'}")
                     + "historian: {flush_interval_s: 0.2, compaction_interval_s: 3600}\n")
    return plant


@pytest.fixture
def web_app(redis_server, tmp_path, plant, feeder):
    app = WebAppProcess(plant, redis_server.url, tmp_path / "web").start()
    yield app
    app.stop()


@pytest.fixture
def historian(plant, redis_server):
    process = HistorianProcess(plant, redis_server.url)
    yield process
    process.kill()


def health(session: requests.Session, url: str) -> dict:
    response = session.get(url + "/api/history/health", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_state(session, url: str, state: str, timeout_s: float, log=lambda: "") -> dict:
    deadline = time.monotonic() + timeout_s
    body = health(session, url)
    while body["state"] != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"the API still says {body} after {timeout_s} s, not {state}\n{log()}")
        time.sleep(0.25)
        body = health(session, url)
    return body


def trend_notes(session, url: str) -> list[str]:
    response = session.get(url + "/api/tags/T1.level/history", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["notes"]


def test_history_health_needs_a_session(web_app):
    assert requests.get(web_app.url + "/api/history/health", timeout=10).status_code == 401


def test_the_api_judges_the_heartbeat_in_redis(web_app, feeder):
    session = login_session(web_app.url, "viewer", "viewer")
    body = health(session, web_app.url)
    assert body["state"] == "not_running" and body["heartbeat_ms"] is None and body["running"] is False
    assert body["text"].startswith("No historian has run") and trend_notes(session, web_app.url) == []

    now_ms = int(time.time() * 1000)
    feeder.call(write_heartbeat(feeder.redis, HistorianStatus(
        heartbeat_ms=now_ms, behind_entries=40, buffered_samples=9_000, last_flush_ms=now_ms - 120_000,
        disk_bytes=123_456, dropped_samples=17, state=HistorianState.DISK_FAILING,
        last_error="disk: cannot write to /data: [Errno 28] No space left on device")))
    body = health(session, web_app.url)
    assert body["state"] == "disk_failing" and body["reported_state"] == "disk_failing"
    assert (body["buffered_samples"], body["dropped_samples"], body["disk_bytes"]) == (9_000, 17, 123_456)
    assert body["last_flush_age_ms"] >= 120_000 and body["heartbeat_age_ms"] < HEARTBEAT_TIMEOUT_MS
    assert "No space left on device" in body["text"] and "17 samples LOST" in body["text"]
    assert body["heartbeat_timeout_ms"] == HEARTBEAT_TIMEOUT_MS and body["behind_after_ms"] == 10_000
    notes = trend_notes(session, web_app.url)
    assert notes and notes[0].startswith("History is not being written to disk since ")

    feeder.call(write_heartbeat(feeder.redis, HistorianStatus(
        heartbeat_ms=int(time.time() * 1000), last_flush_ms=int(time.time() * 1000), disk_bytes=200_000)))
    body = health(session, web_app.url)
    assert body["state"] == "running" and body["running"] is True and trend_notes(session, web_app.url) == []


def test_a_real_historian_running_stopped_and_killed(web_app, feeder, historian):
    session = login_session(web_app.url, "viewer", "viewer")
    historian.start()
    feeder.put("T1.level", 2.5)  # something to write: the historian's last write is then known
    body = wait_for_state(session, web_app.url, "running", 30, historian.log)
    deadline = time.monotonic() + 20
    while body["last_flush_ms"] is None and time.monotonic() < deadline:
        time.sleep(0.25)
        body = health(session, web_app.url)
    assert body["last_flush_ms"] is not None and body["disk_bytes"] > 0, historian.log()

    assert historian.stop(signal.SIGTERM) == 0  # a clean stop says so at once
    body = health(session, web_app.url)
    assert body["state"] == "stopped" and "the historian was stopped at" in body["text"]
    assert "the historian was stopped at" in trend_notes(session, web_app.url)[0]

    historian.start()
    wait_for_state(session, web_app.url, "running", 30, historian.log)
    historian.stop(signal.SIGKILL)  # a crash leaves a heartbeat that says ok, and stops renewing it
    killed_at = time.monotonic()
    assert health(session, web_app.url)["state"] == "running"  # fresh still: never judged before the timeout
    body = wait_for_state(session, web_app.url, "not_running", HEARTBEAT_TIMEOUT_MS / 1000 + 10)
    assert time.monotonic() - killed_at >= HEARTBEAT_TIMEOUT_MS / 1000 - 1.5
    assert body["heartbeat_age_ms"] > HEARTBEAT_TIMEOUT_MS and body["reported_state"] == "ok"
    assert "the historian is not running" in body["text"]
    assert "the historian is not running" in trend_notes(session, web_app.url)[0]
