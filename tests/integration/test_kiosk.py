"""The read-only kiosk view (web.kiosk.allowed_networks) at the web app as a process."""
from __future__ import annotations

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tag_store import keys
from tests.browser.web_app_process import WebAppProcess, login_session
from tests.integration.test_web_api_auth import eventually, forged_confirm_write
from tests.unit.web_plant import WEB_TEST_PLANT
from web.audit import read_audit
from web.auth import KIOSK_READ_ONLY, KIOSK_USER


def start_web(redis_server, tmp_path, networks: list[str]) -> WebAppProcess:
    plant = tmp_path / "plant.yaml"
    kiosk = ", ".join(f'"{n}"' for n in networks)
    plant.write_text(WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "1") + f"web:\n  kiosk: {{allowed_networks: [{kiosk}]}}\n")
    return WebAppProcess(plant, redis_server.url, tmp_path / "web").start()


@pytest.fixture
def kiosk_app(redis_server, tmp_path, feeder):
    app = start_web(redis_server, tmp_path, ["10.20.0.0/16", "127.0.0.1/32"])
    yield app
    app.stop()


def get(app: WebAppProcess, path: str) -> requests.Response:
    return requests.get(app.url + path, allow_redirects=False, timeout=10)


def test_the_kiosk_sees_pages_and_the_api_without_a_login(kiosk_app, feeder):
    feeder.put("T1.level", 3.25)
    assert get(kiosk_app, "/").status_code == 200
    assert get(kiosk_app, "/alarms").status_code == 200
    assert get(kiosk_app, "/api/session").json() == {"user": KIOSK_USER, "role": "viewer", "auth": "kiosk"}
    layout = get(kiosk_app, "/_dash-layout")
    assert layout.status_code == 200 and "Kiosk (read-only)" in layout.text and "Log out" not in layout.text

    def value_arrived():
        assert {t["name"]: t["value"] for t in get(kiosk_app, "/api/tags").json()}["T1.level"] == 3.25
    eventually(value_arrived)
    seen = [e for e in feeder.call(read_audit(feeder.redis, 100)) if e["action"] == "kiosk_view"]
    assert [(e["user"], e["source_ip"]) for e in seen] == [(KIOSK_USER, "127.0.0.1")]  # once, not per request
    host = f"127.0.0.1:{kiosk_app.port}"
    with connect(f"ws://{host}/_dash-ws-callback", origin=f"http://{host}", open_timeout=10) as ws:
        ws.ping().wait(5)  # the live values' websocket takes the kiosk too


def test_the_kiosk_may_change_nothing(kiosk_app, feeder):
    feeder.put("T1.setpoint", 50.0)
    for method, path, body in (("POST", "/api/alarms/T1.level:high_high/acknowledge", {"comment": "x"}),
                               ("POST", "/api/tags/T1.setpoint/write", {"value": 55.0}),
                               ("POST", "/api/tokens", {"label": "x"}),
                               ("DELETE", "/api/tokens/abcd", None),
                               ("PUT", "/api/tags", None)):
        refused = requests.request(method, kiosk_app.url + path, json=body, timeout=10)
        assert refused.status_code == 403 and refused.json() == {"error": KIOSK_READ_ONLY}, path
    assert get(kiosk_app, "/api/tokens").status_code == 403  # no account, no tokens
    # A hand-made Dash callback reaches the callback (pages need them) as the viewer role: refused there.
    forged = forged_confirm_write(requests.Session(), kiosk_app.url, "T1.setpoint", 55.0)
    assert forged.status_code == 200 and "REFUSED" in forged.text and "viewer" in forged.text, forged.text
    assert feeder.call(feeder.redis.xlen(keys.write_requests("opc"))) == 0
    assert feeder.call(feeder.redis.xlen(keys.ALARM_COMMANDS)) == 0
    refused = [e for e in feeder.call(read_audit(feeder.redis, 100)) if e["action"] == "write"]
    assert [(e["user"], e["result"]) for e in refused] == [(KIOSK_USER, "refused")]
    cross_site = requests.post(kiosk_app.url + "/_dash-update-component", json={}, timeout=10,
                               headers={"Origin": "http://evil.example"})
    assert cross_site.status_code == 403


def test_a_login_at_the_kiosk_is_that_persons_session(kiosk_app, feeder):
    operator = login_session(kiosk_app.url, "operator", "operator")
    assert operator.get(kiosk_app.url + "/api/session", timeout=10).json() == {
        "user": "operator", "role": "operator", "auth": "session"}
    assert "Kiosk (read-only)" not in operator.get(kiosk_app.url + "/_dash-layout", timeout=10).text
    no_csrf = requests.post(kiosk_app.url + "/api/tokens", json={"label": "x"}, cookies=operator.cookies, timeout=10)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]  # a session is judged as a session
    operator.get(kiosk_app.url + "/logout", timeout=10)
    assert get(kiosk_app, "/api/session").json()["auth"] == "kiosk"


def test_other_addresses_still_need_a_login(redis_server, tmp_path, feeder):
    app = start_web(redis_server, tmp_path, ["10.20.0.0/16", "::1/128"])
    try:
        assert get(app, "/").headers["location"] == "/login?next=%2F"
        assert get(app, "/api/tags").status_code == 401
        assert requests.post(app.url + "/api/tokens", json={"label": "x"}, timeout=10).status_code == 401
        host = f"127.0.0.1:{app.port}"
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://{host}/_dash-ws-callback", origin=f"http://{host}", open_timeout=10)
        assert refused.value.response.status_code == 403
        assert not [e for e in feeder.call(read_audit(feeder.redis, 100)) if e["action"] == "kiosk_view"]
    finally:
        app.stop()


def test_a_kiosk_for_every_address_does_not_start(redis_server, tmp_path, feeder):
    with pytest.raises(Exception):  # noqa: B017,PT011 - the process exits; its log says why
        start_web(redis_server, tmp_path, ["0.0.0.0/0"]).stop()
    assert "a kiosk for every address is no login at all" in (tmp_path / "web" / "web.log").read_text()
