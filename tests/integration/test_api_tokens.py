"""API tokens at the web app as a process: Bearer on /api/ only, the user's current role, audited refusals."""
from __future__ import annotations

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tag_store import keys
from tests.browser.alarm_engine_fixture import AlarmEngineProcess
from tests.browser.web_app_process import login_session
from tests.integration.test_web_api_auth import eventually
from web.api_tokens import create_token, resolve_token
from web.audit import read_audit
from web.auth import BAD_TOKEN, TOKEN_FAILURE_LIMIT
from web.roles import Role
from web.users import delete_user, set_role

ALARM = "T1.level:high_high"


def token_for(feeder, user: str, label: str = "test client") -> str:
    return feeder.call(create_token(feeder.redis, user, label))[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_actions(feeder, action: str) -> list[dict[str, str]]:
    return [e for e in feeder.call(read_audit(feeder.redis, 200)) if e["action"] == action]


def test_a_token_reads_the_api_without_a_cookie_and_says_how_it_got_in(web_app, feeder):
    feeder.put("T1.level", 2.5)
    token = token_for(feeder, "viewer")
    whoami = requests.get(web_app.url + "/api/session", headers=bearer(token), timeout=10)
    assert whoami.json() == {"user": "viewer", "role": "viewer", "auth": "token"}

    def value_arrived():
        tags = requests.get(web_app.url + "/api/tags", headers=bearer(token), timeout=10)
        assert tags.status_code == 200
        assert {t["name"]: t["value"] for t in tags.json()}["T1.level"] == 2.5
    eventually(value_arrived)
    assert login_session(web_app.url, "viewer", "viewer").get(web_app.url + "/api/session", timeout=10).json()[
        "auth"] == "session"
    _, record = feeder.call(resolve_token(feeder.redis, token))
    assert record.last_used_ms > 0  # the listing shows it was used


def test_a_bad_token_is_refused_with_the_reason_and_audited_once_a_minute(web_app, feeder):
    for _ in range(3):
        refused = requests.get(web_app.url + "/api/tags", headers=bearer("slt_not-a-real-token"), timeout=10)
        assert refused.status_code == 401 and refused.json() == {"error": BAD_TOKEN}
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(web_app.url + "/api/tags", headers=bearer(""), timeout=10).status_code == 401
    refusals = audit_actions(feeder, "api_token_refused")
    assert len(refusals) == 2  # the token above once, the empty one once
    assert all(e["reason"] == BAD_TOKEN and e["source_ip"] == "127.0.0.1" for e in refusals)
    assert not any("not-a-real-token" in str(e) for e in feeder.call(read_audit(feeder.redis, 200)))


def test_a_cookie_does_not_rescue_a_bad_token(web_app, feeder):
    operator = login_session(web_app.url, "operator", "operator")
    assert operator.get(web_app.url + "/api/tags", timeout=10).status_code == 200
    both = operator.get(web_app.url + "/api/tags", headers=bearer("slt_revoked-long-ago"), timeout=10)
    assert both.status_code == 401
    viewer_token = token_for(feeder, "viewer")
    as_token = operator.get(web_app.url + "/api/session", headers=bearer(viewer_token), timeout=10)
    assert as_token.json() == {"user": "viewer", "role": "viewer", "auth": "token"}


def test_a_token_is_not_accepted_for_pages_dash_callbacks_or_the_websocket(web_app, feeder):
    token = token_for(feeder, "admin")
    page = requests.get(web_app.url + "/", headers=bearer(token), allow_redirects=False, timeout=10)
    assert page.status_code == 401 and "/api/ only" in page.json()["error"]
    layout = requests.get(web_app.url + "/_dash-layout", headers=bearer(token), timeout=10)
    assert layout.status_code == 401
    callback = requests.post(web_app.url + "/_dash-update-component", json={}, headers=bearer(token), timeout=10)
    assert callback.status_code == 401
    host = f"127.0.0.1:{web_app.port}"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{host}/_dash-ws-callback", origin=f"http://{host}", additional_headers=bearer(token),
                open_timeout=10)
    assert refused.value.response.status_code == 403


def test_a_token_acts_with_its_users_current_role(web_app, feeder):
    token = token_for(feeder, "operator")
    feeder.call(set_role(feeder.redis, "operator", Role.ENGINEER))
    assert requests.get(web_app.url + "/api/session", headers=bearer(token), timeout=10).json()["role"] == "engineer"
    everyones = {"user": "admin"}  # engineer and admin may read anyone's actions, others only their own
    assert requests.get(web_app.url + "/api/audit", params=everyones, headers=bearer(token),
                        timeout=10).status_code == 200
    feeder.call(set_role(feeder.redis, "operator", Role.VIEWER))
    assert requests.get(web_app.url + "/api/audit", params=everyones, headers=bearer(token),
                        timeout=10).status_code == 403
    feeder.call(delete_user(feeder.redis, "operator"))
    gone = requests.get(web_app.url + "/api/session", headers=bearer(token), timeout=10)
    assert gone.status_code == 401 and gone.json()["error"] == BAD_TOKEN


def test_a_viewers_token_may_not_acknowledge_an_operators_may(web_app, feeder, redis_server, tmp_path):
    engine = AlarmEngineProcess(redis_server.url, web_app.config_path).start()
    try:
        feeder.put("T1.level", 4.8)  # above high-high (4.5)
        viewer, operator = token_for(feeder, "viewer"), token_for(feeder, "operator")

        def alarm_raised():
            feeder.put("T1.level", 4.8)  # again, should the engine have started after the first
            alarms = requests.get(web_app.url + "/api/alarms", headers=bearer(viewer), timeout=10).json()
            assert {a["alarm_id"]: a for a in alarms}.get(ALARM, {}).get("state") == "B", alarms
        eventually(alarm_raised, timeout_s=30)
        url = f"{web_app.url}/api/alarms/{ALARM}/acknowledge"
        refused = requests.post(url, json={"comment": "seen"}, headers=bearer(viewer), timeout=10)
        assert refused.status_code == 403 and "your role (viewer) may not acknowledge alarms" in refused.json()["reason"]
        assert feeder.call(feeder.redis.xlen(keys.ALARM_COMMANDS)) == 0
        # no CSRF header and no cookie: a token is not a browser's ambient credential
        accepted = requests.post(url, json={"comment": "seen by script"}, headers=bearer(operator), timeout=20)
        assert accepted.status_code == 200 and accepted.json()["accepted"] is True, accepted.text
        alarms = requests.get(web_app.url + "/api/alarms", headers=bearer(viewer), timeout=10).json()
        assert {a["alarm_id"]: a for a in alarms}[ALARM]["state"] == "C"
        audit = [(e["user"], e["result"]) for e in audit_actions(feeder, "acknowledge")]
        assert ("viewer", "refused") in audit and ("operator", "refused") not in audit
    finally:
        engine.stop()


def test_a_viewers_token_may_not_write_a_setpoint(web_app, feeder):
    feeder.put("T1.setpoint", 50.0)
    token = token_for(feeder, "viewer")
    refused = requests.post(web_app.url + "/api/tags/T1.setpoint/write", json={"value": 55.0}, headers=bearer(token),
                            timeout=10)
    assert refused.status_code == 403 and "viewer" in refused.json()["message"]
    assert feeder.call(feeder.redis.xlen(keys.write_requests("opc"))) == 0


def test_tokens_are_made_by_a_login_listed_and_revoked_but_never_made_by_a_token(web_app, feeder):
    operator = login_session(web_app.url, "operator", "operator")
    made = operator.post(web_app.url + "/api/tokens", json={"label": "export", "days": 7}, timeout=10)
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    token, token_id = made.json()["token"], made.json()["id"]
    listed = requests.get(web_app.url + "/api/tokens", headers=bearer(token), timeout=10)
    assert [t["id"] for t in listed.json()] == [token_id] and token not in listed.text
    minted = requests.post(web_app.url + "/api/tokens", json={"label": "child"}, headers=bearer(token), timeout=10)
    assert minted.status_code == 403 and "may not create API tokens" in minted.json()["detail"]
    too_long = operator.post(web_app.url + "/api/tokens", json={"label": "x", "days": 366}, timeout=10)
    assert too_long.status_code == 400 and "1 to 365 days" in too_long.json()["detail"]
    no_csrf = requests.post(web_app.url + "/api/tokens", json={"label": "x"}, cookies=operator.cookies, timeout=10)
    assert no_csrf.status_code == 403
    assert [t["id"] for t in operator.get(web_app.url + "/api/tokens", timeout=10).json()] == [token_id]
    # someone else's: only an admin
    viewer_token = token_for(feeder, "viewer")
    viewer_id = feeder.call(resolve_token(feeder.redis, viewer_token))[1].id
    assert operator.delete(f"{web_app.url}/api/tokens/{viewer_id}?user=viewer", timeout=10).status_code == 403
    assert operator.delete(f"{web_app.url}/api/tokens/{viewer_id}", timeout=10).status_code == 404
    admin = login_session(web_app.url, "admin", "admin")
    assert admin.delete(f"{web_app.url}/api/tokens/{viewer_id}?user=viewer", timeout=10).status_code == 200
    assert requests.get(web_app.url + "/api/tags", headers=bearer(viewer_token), timeout=10).status_code == 401
    # a token may revoke itself
    assert requests.delete(f"{web_app.url}/api/tokens/{token_id}", headers=bearer(token), timeout=10).status_code == 200
    assert requests.get(web_app.url + "/api/tags", headers=bearer(token), timeout=10).status_code == 401
    made_and_revoked = [(e["action"], e["user"], e["tag"]) for e in feeder.call(read_audit(feeder.redis, 50))
                        if e["action"].startswith("token_")]
    assert made_and_revoked[:2] == [("token_revoked", "operator", "user:operator"),
                                    ("token_revoked", "admin", "user:viewer")]
    assert ("token_created", "operator", "user:operator") in made_and_revoked


def test_many_bad_tokens_from_one_address_are_refused_without_checking(web_app, feeder):
    good = token_for(feeder, "viewer")
    for n in range(TOKEN_FAILURE_LIMIT):
        assert requests.get(web_app.url + "/api/tags", headers=bearer(f"slt_guess{n}"), timeout=10).status_code == 401
    blocked = requests.get(web_app.url + "/api/tags", headers=bearer(good), timeout=10)
    assert blocked.status_code == 429 and "too many invalid API tokens" in blocked.json()["error"]
    assert 0 < int(blocked.headers["Retry-After"]) <= 300
    # a login session from the same address is not affected
    assert login_session(web_app.url, "viewer", "viewer").get(web_app.url + "/api/tags", timeout=10).status_code == 200
