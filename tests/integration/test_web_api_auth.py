"""The web app as a process against a real Redis: login, API, CSRF, and server-side role checks."""
from __future__ import annotations

import hashlib
import json
import time

import requests

from domain.config_model import Tag
from domain.quality import BAD_NO_COMMUNICATION
from tag_store import keys
from tag_store.source_status import ConnectionState, SourceStatus, publish_status
from tag_store.tag_catalog import publish_discovered_tags
from tests.browser.web_app_process import login_session
from web.audit import read_audit


def eventually(check, timeout_s: float = 10.0):
    """check() until it stops failing its asserts; its result."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def api_value(session: requests.Session, base_url: str, tag: str):
    return session.get(f"{base_url}/api/tags/{tag}", timeout=10).json()["value"]


def value_becomes(session: requests.Session, base_url: str, tag: str, expected) -> None:
    def check():
        assert api_value(session, base_url, tag) == expected
    eventually(check)


def test_everything_but_login_assets_and_health_needs_a_session(web_app):
    get = lambda path: requests.get(web_app.url + path, allow_redirects=False, timeout=10)  # noqa: E731
    assert get("/api/tags").status_code == 401
    assert get("/api/tags").json()["error"] == "not logged in"
    assert get("/api/sources").status_code == 401
    assert get("/sources").headers["location"] == "/login?next=%2Fsources"
    page = get("/tag/T1.level")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Ftag%2FT1.level"
    assert get("/").headers["location"] == "/login?next=%2F"
    assert get("/_dash-layout").status_code == 401
    assert get("/_dash-dependencies").status_code == 401
    assert requests.post(web_app.url + "/_dash-update-component", json={}, timeout=10).status_code == 401
    assert "Web test plant" in get("/login").text
    assert get("/assets/stacklight.css").status_code == 200
    assert get("/health").status_code == 200
    assert get("/docs").status_code == 303  # no OpenAPI pages: it is just an unknown page


def test_no_response_may_be_framed_by_another_site(web_app, feeder):
    """Login page, a refusal, a redirect and a logged-in page and API answer alike (clickjacking)."""
    anonymous = [requests.get(web_app.url + path, allow_redirects=False, timeout=10)
                 for path in ("/login", "/api/tags", "/sources")]
    operator = login_session(web_app.url, "operator", "operator")
    logged_in = [operator.get(web_app.url + path, timeout=10) for path in ("/", "/api/tags")]
    for response in anonymous + logged_in:
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'", response.url
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert [r.status_code for r in anonymous + logged_in] == [200, 401, 303, 200, 200]


def test_api_serves_values_quality_and_freshness_after_login(web_app, feeder):
    feeder.put("T1.level", 2.5)
    feeder.put("M1.flow", 120.0, quality=BAD_NO_COMMUNICATION)
    session = login_session(web_app.url, "viewer", "viewer")

    def values_arrived():
        tags = {t["name"]: t for t in session.get(web_app.url + "/api/tags", timeout=10).json()}
        assert tags["T1.level"]["value"] == 2.5
        assert tags["M1.flow"]["freshness"] == "bad"
        return tags

    tags = eventually(values_arrived)
    level = tags["T1.level"]
    assert level["quality"] == {"code": 0, "name": "Good", "family": "Good"}
    assert level["freshness"] == "live" and level["unit"] == "m" and level["area"] == "Tanks"
    assert level["source_time"].endswith("Z") and level["receive_time"].endswith("Z")
    assert level["source_time_is_receive_time"] is False and level["writable"] is False
    assert tags["M1.flow"]["quality"] == {"code": 0x80310000, "name": "BadNoCommunication", "family": "Bad"}
    assert tags["C1.count"]["freshness"] == "no_data" and tags["C1.count"]["value"] is None
    assert tags["T1.setpoint"]["writable"] is True
    assert api_value(session, web_app.url, "T1.level") == 2.5
    assert session.get(web_app.url + "/api/tags/nope", timeout=10).status_code == 404
    assert session.get(web_app.url + "/api/session", timeout=10).json() == {"user": "viewer", "role": "viewer",
                                                                            "auth": "session"}

    feeder.put("T1.level", 3.0)
    value_becomes(session, web_app.url, "T1.level", 3.0)


def test_api_serves_source_diagnostics_with_loss_counters_flagged(web_app, feeder):
    now_ms = int(time.time() * 1000)
    feeder.call(publish_status(feeder.redis, SourceStatus(
        "opc", ConnectionState.CONNECTED, "", now_ms, {"received": 40, "dropped": 0, "server_queue_overflows": 2})))
    session = login_session(web_app.url, "viewer", "viewer")

    def counters_arrived():
        sources = {s["name"]: s for s in session.get(web_app.url + "/api/sources", timeout=10).json()}
        assert sources["opc"]["counters"].get("server_queue_overflows") == 2
        return sources

    sources = eventually(counters_arrived)
    assert list(sources) == ["opc", "mq"]
    opc = sources["opc"]
    assert (opc["kind"], opc["address"], opc["state"], opc["heartbeat"]) == (
        "opcua", "opc.tcp://127.0.0.1:1/x", "connected", "fresh")
    assert opc["tag_count"] == 4 and 0 <= opc["heartbeat_age_s"] <= 5
    assert opc["counters"] == {"received": 40, "dropped": 0, "server_queue_overflows": 2}
    assert opc["loss_counters"] == ["server_queue_overflows"]
    assert (sources["mq"]["kind"], sources["mq"]["address"], sources["mq"]["loss_counters"]) == (
        "mqtt", "embedded broker", [])


def test_a_wrong_password_is_refused_and_audited_and_logout_ends_the_session(web_app, feeder):
    refused = requests.post(web_app.url + "/login", data={"username": "operator", "password": "guess"},
                            allow_redirects=False, timeout=10)
    assert refused.status_code == 401 and "Wrong user name or password" in refused.text
    session = login_session(web_app.url, "operator", "operator")
    assert session.get(web_app.url + "/api/session", timeout=10).status_code == 200
    assert session.get(web_app.url + "/logout", allow_redirects=False, timeout=10).status_code == 303
    assert session.get(web_app.url + "/api/session", timeout=10).status_code == 401
    actions = [(e["action"], e["user"]) for e in feeder.call(read_audit(feeder.redis, 3))]
    assert actions == [("logout", "operator"), ("login", "operator"), ("login_failed", "operator")]


def test_state_changing_requests_need_the_csrf_token_and_our_origin(web_app):
    session = login_session(web_app.url, "operator", "operator")
    no_token = requests.post(web_app.url + "/_dash-update-component", json={}, cookies=session.cookies, timeout=10)
    assert no_token.status_code == 403
    foreign = session.post(web_app.url + "/_dash-update-component", json={}, timeout=10,
                           headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403


def setpoint_callback(session: requests.Session, base_url: str, trigger: str,
                      states: dict[str, object]) -> requests.Response:
    """POST one of the setpoint entry's callbacks directly, as a hand-made request would.

    trigger: the subcomponent clicked ("write", "confirm", "approve"); states: subcomponent -> value."""
    body = setpoint_callback_body(session, base_url, trigger, states)
    return session.post(base_url + "/_dash-update-component", json=body, timeout=30)


def setpoint_callback_body(session: requests.Session, base_url: str, trigger: str, states: dict[str, object]) -> dict:
    """The request body of one of the setpoint entry's callbacks (see setpoint_callback)."""
    deps = session.get(base_url + "/_dash-dependencies", timeout=10).json()
    spec = next(d for d in deps
                if any(f'"subcomponent":"{trigger}"' in i["id"] for i in d["inputs"]) and d["state"])

    def concrete(pattern_text: str) -> dict:
        return {k: ("forged" if v == ["MATCH"] else v) for k, v in json.loads(pattern_text).items()}

    outputs = []
    for part in spec["output"].strip(".").split("..."):
        id_text, prop = part.rsplit(".", 1)
        outputs.append({"id": concrete(id_text), "property": prop.split("@")[0]})
    inputs = [{"id": concrete(i["id"]), "property": i["property"],
               "value": 1 if f'"subcomponent":"{trigger}"' in i["id"] else None} for i in spec["inputs"]]
    trigger_id = next(i["id"] for i in inputs if i["value"] == 1)
    body = {
        "output": spec["output"], "outputs": outputs, "inputs": inputs,
        "changedPropIds": [json.dumps(trigger_id, separators=(",", ":"), sort_keys=True) + ".n_clicks"],
        "state": [{"id": concrete(st["id"]), "property": st["property"],
                   "value": states.get(json.loads(st["id"])["subcomponent"])} for st in spec["state"]],
    }
    return body


def callback_output(response: requests.Response, subcomponent: str, prop: str):
    for id_text, props in response.json()["response"].items():
        if json.loads(id_text)["subcomponent"] == subcomponent:
            return props[prop]
    raise AssertionError(f"no output {subcomponent}.{prop} in {response.text}")


def forged_confirm_write(session: requests.Session, base_url: str, pending, reason: str | None = None
                         ) -> requests.Response:
    """The Confirm callback with whatever `pending` the page (or a forger) holds."""
    return setpoint_callback(session, base_url, "confirm", {"pending": pending, "reason": reason})


def write_through_faceplate(session: requests.Session, base_url: str, tag: str, value,
                            reason: str | None = None) -> requests.Response:
    """Write… then Confirm, as the page does: the nonce the server gave goes back with Confirm.
    The answer of Write… when it refused (no nonce), else Confirm's."""
    asked = setpoint_callback(session, base_url, "write", {"entry": value, "tag": tag})
    assert asked.status_code == 200, asked.text
    nonce = callback_output(asked, "pending", "data")
    if nonce is None:
        return asked
    assert str(value) not in nonce  # the page holds only the nonce
    return forged_confirm_write(session, base_url, nonce, reason)


def test_a_viewers_forged_setpoint_write_is_refused_and_nothing_is_sent(web_app, feeder):
    feeder.put("T1.setpoint", 50.0)
    viewer = login_session(web_app.url, "viewer", "viewer")
    asked = write_through_faceplate(viewer, web_app.url, "T1.setpoint", 55.0)
    assert asked.status_code == 200
    assert "REFUSED: your role (viewer) may not write a setpoint" in asked.text
    confirmed = forged_confirm_write(viewer, web_app.url, "made-up-nonce")
    assert "REFUSED: your role (viewer) may not write a setpoint" in confirmed.text
    assert feeder.call(feeder.redis.xlen(keys.write_requests("opc"))) == 0
    audit = feeder.call(read_audit(feeder.redis, 2))
    assert [(a["user"], a["action"], a["result"]) for a in audit] == [("viewer", "write", "refused")] * 2


def test_a_forged_confirm_of_a_value_the_server_never_prepared_is_refused(web_app, feeder):
    feeder.put("T1.setpoint", 50.0)
    operator = login_session(web_app.url, "operator", "operator")
    value_becomes(operator, web_app.url, "T1.setpoint", 50.0)
    for pending in ({"tag": "T1.setpoint", "value": 55.0}, "made-up-nonce", None):
        response = forged_confirm_write(operator, web_app.url, pending)
        assert response.status_code == 200
        assert "REFUSED: no such pending write (expired, already used or not yours)" in response.text, pending
    # Someone else's nonce: the viewer's Write… got none, so take the operator's for another operator.
    asked = setpoint_callback(operator, web_app.url, "write", {"entry": 55.0, "tag": "T1.setpoint"})
    nonce = callback_output(asked, "pending", "data")
    engineer = login_session(web_app.url, "engineer", "engineer")
    assert "REFUSED: no such pending write" in forged_confirm_write(engineer, web_app.url, nonce).text
    assert feeder.call(feeder.redis.xlen(keys.write_requests("opc"))) == 0
    audit = feeder.call(read_audit(feeder.redis, 1))[0]
    assert (audit["user"], audit["action"], audit["result"]) == ("engineer", "write", "refused")
    assert audit["reason"] == "no such pending write (expired, already used or not yours)"


def test_an_operators_setpoint_write_goes_to_the_data_source_and_its_answer_comes_back(web_app, feeder):
    feeder.put("T1.setpoint", 50.0)
    operator = login_session(web_app.url, "operator", "operator")
    value_becomes(operator, web_app.url, "T1.setpoint", 50.0)

    responder = feeder.answer_next_write("opc")
    response = write_through_faceplate(operator, web_app.url, "T1.setpoint", 55.0, "new batch")
    responder.join()
    assert "DONE: T1.setpoint = 55.0 %" in response.text
    request = json.loads(feeder.call(feeder.redis.xrange(keys.write_requests("opc")))[0][1][b"r"])
    assert (request["tag"], request["value"], request["user"], request["reason"]) == (
        "T1.setpoint", 55.0, "operator", "new batch")
    out_of_limits = write_through_faceplate(operator, web_app.url, "T1.setpoint", 500.0)
    assert "REFUSED: 500 is outside the operator limits" in out_of_limits.text
    assert feeder.call(feeder.redis.xlen(keys.write_requests("opc"))) == 1


def test_a_tag_a_source_discovers_appears_in_the_api_with_its_latest_value(web_app, feeder):
    session = login_session(web_app.url, "viewer", "viewer")
    assert session.get(web_app.url + "/api/tags/F9.temp", timeout=10).status_code == 404
    feeder.call(publish_discovered_tags(feeder.redis, [
        Tag(name="F9.temp", source="mq", topic="plant/F9/temp", unit="degC", description="Found by a template"),
        Tag(name="M1.flow", source="mq", topic="elsewhere", unit="l/s"),  # the plant file's M1.flow wins
    ]))
    feeder.put("F9.temp", 21.5)

    def discovered_arrived():
        tags = {t["name"]: t for t in session.get(web_app.url + "/api/tags", timeout=10).json()}
        assert tags.get("F9.temp", {}).get("value") == 21.5
        return tags

    tags = eventually(discovered_arrived)
    assert list(tags)[-1] == "F9.temp"  # after the configured tags
    found = tags["F9.temp"]
    assert (found["discovered"], found["source"], found["unit"], found["freshness"]) == (True, "mq", "degC", "live")
    assert found["writable"] is False and found["quality"]["name"] == "Good"
    assert (tags["M1.flow"]["discovered"], tags["M1.flow"]["unit"]) == (False, "m3/h")
    assert tags["T1.level"]["discovered"] is False
    one = session.get(web_app.url + "/api/tags/F9.temp", timeout=10).json()
    assert (one["value"], one["discovered"]) == (21.5, True)
    feeder.put("F9.temp", 22.0)
    value_becomes(session, web_app.url, "F9.temp", 22.0)


def test_a_discovered_tag_is_written_only_if_its_definition_says_so(web_app, feeder):
    feeder.call(publish_discovered_tags(feeder.redis, [
        Tag(name="F9.temp", source="mq", topic="plant/F9/temp"),
        Tag(name="F9.sp", source="mq", topic="plant/F9/sp", command_topic="plant/F9/sp/set", writable=True),
    ]))
    feeder.put("F9.temp", 20.0)
    feeder.put("F9.sp", 20.0)
    operator = login_session(web_app.url, "operator", "operator")

    def known_with_value():  # 404 until the web's tag directory has polled the new catalog version
        assert operator.get(f"{web_app.url}/api/tags/F9.sp", timeout=10).json().get("value") == 20.0
    eventually(known_with_value)
    refused = write_through_faceplate(operator, web_app.url, "F9.temp", 25.0)
    assert "REFUSED: F9.temp is not writable" in refused.text
    assert feeder.call(feeder.redis.xlen(keys.write_requests("mq"))) == 0
    sent = write_through_faceplate(operator, web_app.url, "F9.sp", 25.0)  # nobody answers in this test
    assert "NO ANSWER" in sent.text
    request = json.loads(feeder.call(feeder.redis.xrange(keys.write_requests("mq")))[0][1][b"r"])
    assert (request["tag"], request["value"], request["user"]) == ("F9.sp", 25.0, "operator")


def test_an_alarm_outside_the_users_areas_is_refused_over_the_api(web_app, feeder):
    from alarm_engine.alarm_store import queue_record_writes  # noqa: PLC0415
    from domain.alarms.records import AlarmRecord, AlarmState  # noqa: PLC0415
    from web.roles import Role  # noqa: PLC0415
    from web.users import encode_areas, save_user  # noqa: PLC0415

    async def store():
        pipe = feeder.redis.pipeline()
        queue_record_writes(pipe, [AlarmRecord("T1.level:high_high", "T1.level", "high_high", 1, "Tank high", "Tanks",
                                               AlarmState.UNACK_ACTIVE, True, state_since_ms=int(time.time() * 1000))],
                            [])
        await pipe.execute()

    feeder.call(store())
    feeder.call(save_user(feeder.redis, "packer", Role.OPERATOR, "packer-secret"))
    feeder.call(feeder.redis.hset(keys.user("packer"), "areas", encode_areas(["Packing"])))
    packer = login_session(web_app.url, "packer", "packer-secret")
    response = packer.post(f"{web_app.url}/api/alarms/T1.level:high_high/acknowledge", json={"comment": "seen"},
                           timeout=10)
    assert response.status_code == 403
    assert response.json()["reason"] == ("T1.level:high_high is in area 'Tanks';"
                                         " you may acknowledge alarms only in: Packing")
    assert feeder.call(feeder.redis.xlen(keys.ALARM_COMMANDS)) == 0
    audit = feeder.call(read_audit(feeder.redis, 1))[0]
    assert (audit["user"], audit["action"], audit["result"], audit["comment"]) == (
        "packer", "acknowledge", "refused", "seen")


def test_the_web_app_audits_a_session_that_idled_out(web_app, feeder):
    operator = login_session(web_app.url, "operator", "operator")
    assert operator.get(web_app.url + "/api/session", timeout=10).status_code == 200
    # Let the idle time pass without waiting web.session_idle_timeout_s (at least 60 s): the session
    # key expires now, and its recorded deadline is moved back by the same amount.
    session_id = hashlib.sha256(operator.cookies["stacklight_session"].encode()).hexdigest()
    feeder.call(feeder.redis.pexpire(keys.session(session_id), 50))
    feeder.call(feeder.redis.zadd(keys.SESSION_DEADLINES, {session_id: int(time.time() * 1000)}, xx=True))

    def audited():
        ended = [e for e in feeder.call(read_audit(feeder.redis, 20)) if e["action"] == "session_expired"]
        assert [(e["user"], e["source_ip"]) for e in ended] == [("operator", "127.0.0.1")]
    eventually(audited, timeout_s=15)
    assert operator.get(web_app.url + "/api/session", timeout=10).status_code == 401
