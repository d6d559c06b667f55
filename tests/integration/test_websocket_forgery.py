"""Forged actions over the websocket: the web app process on a real Redis.

The page's only websocket callback is the live-value push; a write, acknowledge or user change sent
over the socket as a `callback_request` (what Dash's renderer sends) must not run, whoever sends it,
and must change nothing: the socket is closed on the sender with 4003 and the attempt is audited.
A logged-out client gets no socket at all.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tag_store import keys
from tests.browser.web_app_process import login_session
from tests.integration.test_user_admin_api import forged_callback_body, user_records
from tests.integration.test_web_api_auth import (
    callback_output,
    forged_confirm_write,
    setpoint_callback,
    setpoint_callback_body,
)
from web.audit import read_audit
from web.websocket_guard import WS_NOT_A_PUSH

WS_PATH = "/_dash-ws-callback"


def send_over_websocket(client: requests.Session, base_url: str, body: dict) -> str:
    """Send `body` as a websocket callback request with `client`'s cookies; what came back.

    "closed <code>" when the server closed the socket, else the first message's type."""
    host = base_url.removeprefix("http://")
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    with connect(f"ws://{host}{WS_PATH}", origin=base_url, additional_headers={"Cookie": cookie},
                 open_timeout=10) as ws:
        ws.send(json.dumps({"type": "callback_request", "requestId": str(uuid.uuid4()),
                            "rendererId": "forger", "payload": body}))
        try:
            while True:
                answer = json.loads(ws.recv(timeout=10))
                if answer.get("type") != "heartbeat_ack":
                    return str(answer.get("type"))
        except ConnectionClosed as closed:  # the server's close frame, if it sent one
            return f"closed {closed.rcvd.code if closed.rcvd else 'without a frame'}"


def forged_bodies(client: requests.Session, base_url: str, nonce: str) -> dict[str, dict]:
    """The bodies of the page's state-changing callbacks, filled in as the forger likes."""
    return {
        "confirm write": setpoint_callback_body(client, base_url, "confirm", {"pending": nonce, "reason": None}),
        "acknowledge": forged_callback_body(
            client, base_url, "alarm-ack-result.children", "alarm-ack-button.n_clicks",
            {"alarm-ack-button": 1, "alarm-grid": [{"alarm_id": "T1.level:high_high"}],
             "alarm-ack-comment": "forged"}),
        "shelve": forged_callback_body(
            client, base_url, "alarm-ack-result.children", "alarm-shelve-button.n_clicks",
            {"alarm-shelve-button": 1, "alarm-grid": [{"alarm_id": "T1.level:high_high"}],
             "alarm-ack-comment": "forged", "alarm-shelve-duration": "600"}),
        "user change": forged_callback_body(
            client, base_url, "users-message.children", "users-set-role.n_clicks",
            {"set-role": 1, "target": "viewer", "role": "admin"}, prefix="users-"),
    }


@pytest.mark.parametrize("who", ["viewer", "operator", "admin"])
def test_actions_sent_over_the_websocket_do_not_run(web_app, feeder, who):
    feeder.put("T1.setpoint", 50.0)
    client = login_session(web_app.url, who, who)
    # An operator's own held write: its nonce over the socket must not send it either.
    operator = client if who == "operator" else login_session(web_app.url, "operator", "operator")
    asked = setpoint_callback(operator, web_app.url, "write", {"entry": 55.0, "tag": "T1.setpoint"})
    nonce = callback_output(asked, "pending", "data")
    assert nonce, asked.text
    users_before = user_records(feeder)

    for action, body in forged_bodies(client, web_app.url, nonce).items():
        outcome = send_over_websocket(client, web_app.url, body)
        assert outcome == f"closed {WS_NOT_A_PUSH[0]}", (action, outcome)

    assert feeder.write_requests() == []
    assert feeder.call(feeder.redis.xlen(keys.ALARM_COMMANDS)) == 0
    assert user_records(feeder) == users_before
    refusals = [e for e in feeder.call(read_audit(feeder.redis, 50)) if e["action"] == "websocket_refused"]
    assert [(e["user"], e["result"], e["source_ip"]) for e in refusals] == [(who, "refused", "127.0.0.1")] * 4
    assert any("users-message.children" in e["reason"] for e in refusals)
    # The socket did not use up the held write: Confirm through the page's own path sends it, once.
    answering = feeder.answer_next_write()
    confirmed = forged_confirm_write(operator, web_app.url, nonce)
    answering.join()
    assert "DONE" in confirmed.text, confirmed.text
    assert [(r["tag"], r["value"], r["user"]) for r in feeder.write_requests()] == [("T1.setpoint", 55.0, "operator")]


def test_a_logged_out_client_gets_no_websocket(web_app):
    host = web_app.url.removeprefix("http://")
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{host}{WS_PATH}", origin=web_app.url, open_timeout=10)
    assert refused.value.response.status_code == 403
