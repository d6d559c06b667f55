"""The audit trail holds every action of a scripted session, in the order it happened.

A real web app, alarm engine and Redis: an operator fails a login, logs in, writes a setpoint
(confirmed by a data source's answer), is refused an out-of-limits write, acknowledges and
shelves an alarm, logs out; an admin logs in, adds a user, changes its role and logs out.
"""
from __future__ import annotations

import pytest
import requests

from tag_store import keys
from tests.browser.alarm_engine_fixture import AlarmEngineProcess
from tests.browser.web_app_process import login_session
from tests.integration.test_web_api_auth import eventually, value_becomes

ALARM = "T1.level:high_high"


@pytest.fixture
def alarm_engine(redis_server, web_app, tmp_path):
    engine = AlarmEngineProcess(redis_server.url, tmp_path / "plant.yaml").start()
    yield engine
    engine.stop()


def audit_entries(feeder) -> list[dict[str, str]]:
    """Every entry, oldest first, as the stream holds them."""
    raw = feeder.call(feeder.redis.xrange(keys.AUDIT))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in raw]


def test_every_action_of_a_scripted_session_is_in_the_audit_trail_in_order(web_app, feeder, alarm_engine):
    url = web_app.url
    refused = requests.post(url + "/login", data={"username": "operator", "password": "wrong password"},
                            allow_redirects=False, timeout=10)
    assert refused.status_code == 401
    operator = login_session(url, "operator", "operator")

    feeder.put("T1.setpoint", 50.0)
    value_becomes(operator, url, "T1.setpoint", 50.0)
    responder = feeder.answer_next_write("opc")
    written = operator.post(url + "/api/tags/T1.setpoint/write", json={"value": 55.0, "reason": "scripted test"},
                            timeout=30)
    responder.join()
    assert written.status_code == 200, written.text
    too_high = operator.post(url + "/api/tags/T1.setpoint/write", json={"value": 500}, timeout=30)
    assert too_high.status_code == 422

    feeder.put("T1.level", 4.8)  # above the high-high limit of 4.5
    eventually(lambda: _assert_active(operator, url), timeout_s=20)
    acknowledged = operator.post(f"{url}/api/alarms/{ALARM}/acknowledge", json={"comment": "seen it"}, timeout=10)
    assert acknowledged.json()["accepted"], acknowledged.text
    shelved = operator.post(f"{url}/api/alarms/{ALARM}/shelve",
                            json={"comment": "sensor being cleaned", "duration_s": 600}, timeout=10)
    assert shelved.json()["accepted"], shelved.text
    operator.get(url + "/logout", timeout=10)

    admin = login_session(url, "admin", "admin")
    added = admin.post(url + "/api/users", json={"name": "carol", "role": "viewer", "password": "carol's secret"},
                       timeout=30)
    assert added.status_code == 201, added.text
    promoted = admin.patch(url + "/api/users/carol", json={"role": "operator"}, timeout=30)
    assert promoted.status_code == 200, promoted.text
    admin.get(url + "/logout", timeout=10)

    session_entries = [e for e in audit_entries(feeder) if e["user"] in ("operator", "admin")]
    assert [(e["user"], e["action"], e["result"], e["tag"]) for e in session_entries] == [
        ("operator", "login_failed", "refused", ""),
        ("operator", "login", "ok", ""),
        ("operator", "write", "requested", "T1.setpoint"),
        ("operator", "write", "done", "T1.setpoint"),
        ("operator", "write", "refused", "T1.setpoint"),
        ("operator", "acknowledge", "ok", ALARM),
        ("operator", "shelve", "ok", ALARM),
        ("operator", "logout", "ok", ""),
        ("admin", "login", "ok", ""),
        ("admin", "user_added", "ok", "user:carol"),
        ("admin", "role_changed", "ok", "user:carol"),
        ("admin", "logout", "ok", ""),
    ]
    times = [int(e["time_ms"]) for e in session_entries]
    assert times == sorted(times)
    done = session_entries[3]
    assert (done["old"], done["new"], done["comment"]) == ("50.0", "55.0", "scripted test")
    assert session_entries[5]["comment"] == "seen it"
    assert session_entries[6]["comment"] == "sensor being cleaned"
    assert (session_entries[10]["old"], session_entries[10]["new"]) == ("viewer", "operator")
    assert all(e["source_ip"] == "127.0.0.1" for e in session_entries)
    # Nothing anywhere in the trail carries the new account's password.
    assert not any("carol's secret" in value for e in audit_entries(feeder) for value in e.values())


def _assert_active(session: requests.Session, url: str) -> None:
    alarms = {a["alarm_id"]: a for a in session.get(url + "/api/alarms", timeout=10).json()}
    assert alarms.get(ALARM, {}).get("unacknowledged"), alarms.get(ALARM)
