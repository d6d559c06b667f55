"""Fixtures of the integration tests that talk to the web app as a process over HTTP."""
from __future__ import annotations

import pytest

from tests.browser.web_app_process import TagFeeder, WebAppProcess
from tests.unit.web_plant import WEB_TEST_PLANT
from web.users import ensure_demo_users


@pytest.fixture
def feeder(redis_server):
    """Writes tag values as the data sources would; the demo accounts exist; sources 'opc' and 'mq' alive."""
    feeder = TagFeeder(redis_server.url)
    feeder.call(ensure_demo_users(feeder.redis))
    feeder.keep_sources_alive(["opc", "mq"])
    yield feeder
    feeder.close()


@pytest.fixture
def web_app(redis_server, tmp_path, feeder):
    """`python -m web` on the web test plant (1 s write timeout) and the test's Redis."""
    plant = tmp_path / "plant.yaml"
    plant.write_text(WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "1"))
    app = WebAppProcess(plant, redis_server.url, tmp_path / "web").start()
    yield app
    app.stop()
