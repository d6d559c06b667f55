"""The real alarm engine (`python -m alarm_engine`) as a child process the test can start and stop.

    from tests.browser.alarm_engine_fixture import alarm_engine  # noqa: F401 - a pytest fixture

    alarm_engine          started on the demo plant for the test, stopped after it
    AlarmEngineProcess    start() / stop() by hand (e.g. to see the web notice a stopped engine)
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from launcher.supervisor import Supervisor
from tests.browser.web_app_process import DEMO_PLANT, REPO_ROOT


class AlarmEngineProcess:
    def __init__(self, redis_url: str, config_path: Path = DEMO_PLANT):
        self.redis_url = redis_url
        self.config_path = Path(config_path)
        self._supervisor: Supervisor | None = None

    def start(self) -> AlarmEngineProcess:
        if self._supervisor is None:
            self._supervisor = Supervisor()
            env = dict(os.environ, REDIS_URL=self.redis_url, PYTHONPATH=str(REPO_ROOT))
            self._supervisor.add("alarm_engine", ["-m", "alarm_engine", "--config", str(self.config_path)], env)
        return self

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s); nothing restarts it."""
        if self._supervisor is not None:
            self._supervisor.stop_all()
            self._supervisor = None


@pytest.fixture
def alarm_engine(redis_server):
    engine = AlarmEngineProcess(redis_server.url).start()
    yield engine
    engine.stop()
