"""POST /api/tags/{name}/write against the web app as a process and a real Redis.

Each refusal has its status and reason, nothing is sent when refused, and what is sent is
answered by a stand-in data source through Redis (the real one: test_write_timeout_audit.py).
"""
from __future__ import annotations

import re

import pytest
import requests

from tag_store import keys
from tag_store.write_requests import WriteStatus
from tests.browser.web_app_process import WebAppProcess, login_session
from tests.integration.test_web_api_auth import value_becomes
from tests.unit.web_plant import WRITE_SAFETY_PLANT
from web.audit import read_audit
from web.roles import Role
from web.users import encode_areas, save_user


@pytest.fixture
def safety_app(redis_server, tmp_path, feeder):
    plant = tmp_path / "plant.yaml"
    plant.write_text(WRITE_SAFETY_PLANT.replace("WRITE_TIMEOUT", "1"))
    app = WebAppProcess(plant, redis_server.url, tmp_path / "web").start()
    for tag, value in {"T1.setpoint": 50.0, "T1.reason_sp": 40.0, "T1.eng_sp": 30.0, "T1.critical_sp": 50.0,
                       "C1.speed_sp": 100.0}.items():
        feeder.put(tag, value)
    yield app
    app.stop()


def write(session: requests.Session, base_url: str, tag: str, body) -> requests.Response:
    return session.post(f"{base_url}/api/tags/{tag}/write", json=body, timeout=30)


def test_an_operators_write_is_sent_confirmed_and_audited(safety_app, feeder):
    operator = login_session(safety_app.url, "operator", "operator")
    value_becomes(operator, safety_app.url, "T1.setpoint", 50.0)
    responder = feeder.answer_next_write()
    response = write(operator, safety_app.url, "T1.setpoint", {"value": 60, "reason": "new batch"})
    responder.join()
    assert response.status_code == 200, response.text
    assert response.json() == {"state": "done", "message": "T1.setpoint = 60.0 % (CONFIRMED by readback)",
                               "readback": 60.0}
    assert [(r["tag"], r["value"], r["user"], r["reason"]) for r in feeder.write_requests()] == [
        ("T1.setpoint", 60.0, "operator", "new batch")]
    done, requested = feeder.call(read_audit(feeder.redis, 2))
    assert [(a["action"], a["result"], a["comment"]) for a in (requested, done)] == [
        ("write", "requested", "new batch"), ("write", "done", "new batch")]


REFUSED_BY_RULES = [
    ({"value": 95}, "95 is outside the operator limits 10 .. 90 %"),
    ({"value": "abc"}, "'abc' is not a number"),
    ({"value": "NaN"}, "the value must be a finite number (not NaN or infinity)"),
    ({"value": "inf"}, "the value must be a finite number (not NaN or infinity)"),
    ({"value": "-inf"}, "the value must be a finite number (not NaN or infinity)"),
    ({"value": 75}, "a step of 25 is larger than the allowed 20 %"),
    ({"value": None}, "enter a value"),
    ({"value": 55, "reason": "x" * 501}, "the reason is longer than 500 characters (501)"),
    ({"value": 55, "resaon": "typo"}, 'unknown field(s) resaon; the body must be a JSON object {"value": ..., '
                                      '"reason": "..."}'),
    ({"reason": "forgot it"}, 'no "value" in the body; the body must be a JSON object {"value": ..., "reason": "..."}'),
    ([55], 'the body must be a JSON object {"value": ..., "reason": "..."}'),
]


def test_values_the_rules_refuse_get_422_with_the_reason_and_nothing_is_sent(safety_app, feeder):
    operator = login_session(safety_app.url, "operator", "operator")
    value_becomes(operator, safety_app.url, "T1.setpoint", 50.0)
    for body, reason in REFUSED_BY_RULES:
        response = write(operator, safety_app.url, "T1.setpoint", body)
        assert response.status_code == 422, body
        assert response.json() == {"state": "refused", "message": reason, "readback": None}
        audit = feeder.call(read_audit(feeder.redis, 1))[0]
        assert (audit["user"], audit["action"], audit["result"], audit["reason"]) == (
            "operator", "write", "refused", reason)
    assert feeder.write_requests() == []


def test_a_body_that_is_not_json_gets_the_same_refusal_shape_and_is_audited(safety_app, feeder):
    operator = login_session(safety_app.url, "operator", "operator")
    # The parser's own words are the standard library's; what is ours is the kind of problem and where it is.
    for raw, problem in ((b"value=55", r"the body is not valid JSON \(.*line 1 column 1 \(char 0\)\); "),
                         (b'{"value": 55', r"the body is not valid JSON \(.*line 1 column 13 \(char 12\)\); "),
                         (b'{"value": "\xff"}', r"the body is not UTF-8 text; "),
                         (b"", r"the body must be a JSON object \{")):
        response = operator.post(f"{safety_app.url}/api/tags/T1.setpoint/write", data=raw,
                                 headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 422, raw
        assert response.json()["state"] == "refused"
        assert re.match(problem, response.json()["message"]), response.json()
        audit = feeder.call(read_audit(feeder.redis, 1))[0]
        assert (audit["action"], audit["result"], audit["reason"]) == ("write", "refused", response.json()["message"])
    assert feeder.write_requests() == []


def test_a_json_nan_is_refused_too(safety_app, feeder):
    operator = login_session(safety_app.url, "operator", "operator")
    response = operator.post(f"{safety_app.url}/api/tags/T1.setpoint/write", data='{"value": NaN}',
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 422 and "finite" in response.json()["message"]
    assert feeder.write_requests() == []


def test_a_tag_that_needs_a_reason_is_refused_without_one(safety_app, feeder):
    operator = login_session(safety_app.url, "operator", "operator")
    value_becomes(operator, safety_app.url, "T1.reason_sp", 40.0)
    for body in ({"value": 45}, {"value": 45, "reason": "  "}):
        response = write(operator, safety_app.url, "T1.reason_sp", body)
        assert (response.status_code, response.json()["message"]) == (422, "a reason is required to write T1.reason_sp")
    assert feeder.write_requests() == []


def test_who_may_not_write_gets_403(safety_app, feeder):
    feeder.call(save_user(feeder.redis, "packer", Role.ENGINEER, "packer-secret"))
    feeder.call(feeder.redis.hset(keys.user("packer"), "areas", encode_areas(["Packing"])))
    viewer = login_session(safety_app.url, "viewer", "viewer")
    operator = login_session(safety_app.url, "operator", "operator")
    packer = login_session(safety_app.url, "packer", "packer-secret")
    cases = [
        (viewer, "T1.setpoint", "your role (viewer) may not write a setpoint; operator or higher is needed"),
        (operator, "T1.eng_sp", "T1.eng_sp may be written by engineer or higher only; your role is operator"),
        (packer, "T1.eng_sp", "T1.eng_sp is in area 'Tanks'; you may write a setpoint only in: Packing"),
    ]
    for session, tag, reason in cases:
        response = write(session, safety_app.url, tag, {"value": 35})
        assert (response.status_code, response.json()["message"]) == (403, reason)
    assert feeder.write_requests() == []
    assert [a["result"] for a in feeder.call(read_audit(feeder.redis, 3))] == ["refused"] * 3
    responder = feeder.answer_next_write()
    response = write(packer, safety_app.url, "C1.speed_sp", {"value": 120})  # the packer's own area
    responder.join()
    assert response.status_code == 200 and feeder.write_requests()[0]["user"] == "packer"


def test_a_critical_tag_needs_the_faceplate_and_an_unknown_tag_is_404(safety_app, feeder):
    admin = login_session(safety_app.url, "admin", "admin")
    value_becomes(admin, safety_app.url, "T1.critical_sp", 50.0)
    critical = write(admin, safety_app.url, "T1.critical_sp", {"value": 55})
    assert critical.status_code == 409
    assert critical.json()["message"] == (
        "T1.critical_sp is critical: it needs a second person's approval on the faceplate")
    assert write(admin, safety_app.url, "T9.nothing", {"value": 1}).status_code == 404
    assert feeder.write_requests() == []


def test_the_devices_refusal_is_502_and_no_answer_504(safety_app, feeder):
    operator = login_session(safety_app.url, "operator", "operator")
    value_becomes(operator, safety_app.url, "T1.setpoint", 50.0)
    responder = feeder.answer_next_write("opc", WriteStatus.REJECTED, "BadOutOfRange")
    rejected = write(operator, safety_app.url, "T1.setpoint", {"value": 55})
    responder.join()
    assert (rejected.status_code, rejected.json()["state"], rejected.json()["message"]) == (
        502, "rejected", "BadOutOfRange")
    responder = feeder.answer_next_write("opc", WriteStatus.TIMED_OUT, "readback 50.0, not 56")
    timed_out = write(operator, safety_app.url, "T1.setpoint", {"value": 56})
    responder.join()
    assert (timed_out.status_code, timed_out.json()["state"]) == (504, "timed_out")
    nobody = write(operator, safety_app.url, "T1.setpoint", {"value": 57})  # nobody answers now
    assert (nobody.status_code, nobody.json()["state"]) == (504, "no_answer")
    results = [(a["result"], a["reason"].split(":")[0]) for a in feeder.call(read_audit(feeder.redis, 6))]
    assert results == [("failed", "no answer"), ("requested", ""), ("failed", "timed out"), ("requested", ""),
                       ("rejected", "BadOutOfRange"), ("requested", "")]


def test_a_session_post_needs_the_csrf_token(safety_app, feeder):
    operator = login_session(safety_app.url, "operator", "operator")
    del operator.headers["X-CSRFToken"]
    assert write(operator, safety_app.url, "T1.setpoint", {"value": 55}).status_code == 403
    anonymous = requests.post(f"{safety_app.url}/api/tags/T1.setpoint/write", json={"value": 55}, timeout=10)
    assert anonymous.status_code == 401
    assert feeder.write_requests() == []
