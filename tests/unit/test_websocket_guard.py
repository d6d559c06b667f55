"""Which websocket messages the guard refuses (web/websocket_guard.py)."""
from __future__ import annotations

from web.websocket_guard import refused_callback, websocket_outputs

CALLBACK_MAP = {
    "live-store.data": {"websocket": True, "callback": None},
    "..alarm-ack-result.children...alarm-grid.selectedRows..": {"callback": None},
}
ALLOWED = websocket_outputs(CALLBACK_MAP)


def request(output) -> dict:
    return {"type": "callback_request", "requestId": "1", "payload": {"output": output}}


def test_only_websocket_callbacks_are_allowed_outputs():
    assert ALLOWED == frozenset({"live-store.data"})


def test_the_live_push_and_the_protocols_other_messages_pass():
    assert refused_callback(request("live-store.data"), ALLOWED) is None
    for message in ({"type": "heartbeat"}, {"type": "get_props_response", "payload": {}}):
        assert refused_callback(message, ALLOWED) is None


def test_any_other_callback_request_is_refused_naming_its_output():
    action = "..alarm-ack-result.children...alarm-grid.selectedRows.."
    assert refused_callback(request(action), ALLOWED) == action
    assert refused_callback(request("no-such-output.children"), ALLOWED) == "no-such-output.children"


def test_a_malformed_callback_request_is_refused_too():
    assert refused_callback({"type": "callback_request"}, ALLOWED) == "None"
    assert refused_callback({"type": "callback_request", "payload": "x"}, ALLOWED) == "None"
    assert refused_callback(request(["live-store.data"]), ALLOWED) == "['live-store.data']"
    assert len(refused_callback(request("x" * 5000), ALLOWED)) == 200
