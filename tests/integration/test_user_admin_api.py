"""User administration at the web app process on a real Redis: /api/users and the /users page's callback.

Every user change (add, delete, set role, set areas, reset password, unlock) is tried by a viewer,
an operator and a logged-out client, through the API and as a hand-made Dash callback request:
each is refused and leaves the user records, the lock-out and the audit's changes as they were.
An admin's are done and audited with their name and address.
"""
from __future__ import annotations

import json

import pytest
import requests

from tag_store import keys
from tests.browser.web_app_process import login_session
from web.audit import read_audit
from web.login_throttle import MAX_FAILURES, claim_attempt, lockout_remaining_s

CHANGE_ACTIONS = {"user_added", "user_deleted", "role_changed", "areas_changed", "password_changed", "user_unlocked"}
NEW_PASSWORD = "a brand new password"


def user_records(feeder) -> dict:
    async def read():
        return {key: await feeder.redis.hgetall(key) async for key in feeder.redis.scan_iter(match=keys.USER_PATTERN)}
    return feeder.call(read())


def audit(feeder) -> list[dict]:
    return list(reversed(feeder.call(read_audit(feeder.redis, 500))))


def lock_out(feeder, name: str) -> None:
    for _ in range(MAX_FAILURES):
        feeder.call(claim_attempt(feeder.redis, name))
    assert feeder.call(lockout_remaining_s(feeder.redis, name)) > 0


def api_calls(client: requests.Session, url: str) -> dict[str, requests.Response]:
    """Each user change once, by the API (and the list, which shows areas and lock-outs)."""
    return {
        "list": client.get(f"{url}/api/users", timeout=10),
        "add": client.post(f"{url}/api/users", json={"name": "mallory", "role": "admin", "password": NEW_PASSWORD,
                                                     "areas": []}, timeout=30),
        "set role": client.patch(f"{url}/api/users/viewer", json={"role": "admin"}, timeout=10),
        "set areas": client.patch(f"{url}/api/users/operator", json={"areas": ["Packing"]}, timeout=10),
        "reset password": client.patch(f"{url}/api/users/engineer", json={"password": NEW_PASSWORD}, timeout=30),
        "unlock": client.post(f"{url}/api/users/engineer/unlock", timeout=10),
        "delete": client.delete(f"{url}/api/users/engineer", timeout=10),
    }


# --- the page's callback, forged ---------------------------------------------------------

def forged_callback(client: requests.Session, url: str, output: str, trigger: str, values: dict) -> requests.Response:
    """POST the callback whose first output is `output` directly, as a hand-made request would.

    `values`: by component id without "users-", the value of its input or state (others None).
    """
    body = forged_callback_body(client, url, output, trigger, values, prefix="users-")
    return client.post(url + "/_dash-update-component", json=body, timeout=30)


def forged_callback_body(client: requests.Session, url: str, output: str, trigger: str, values: dict,
                         prefix: str = "") -> dict:
    """The request body of the callback whose first output is `output`; `values` by component id
    without `prefix` (see forged_callback)."""
    def outputs_of(spec: dict) -> list[dict]:
        parts = [part.rsplit(".", 1) for part in spec["output"].strip(".").split("...") if "." in part]
        return [{"id": component, "property": prop.split("@")[0]} for component, prop in parts]

    deps = client.get(url + "/_dash-dependencies", timeout=10).json()
    spec = next(d for d in deps if outputs_of(d) and "{id}.{property}".format(**outputs_of(d)[0]) == output)
    outputs = outputs_of(spec)
    value = lambda item: values.get(item["id"].removeprefix(prefix))  # noqa: E731
    return {"output": spec["output"], "outputs": outputs,
            "inputs": [{"id": i["id"], "property": i["property"], "value": value(i)} for i in spec["inputs"]],
            "state": [{"id": s["id"], "property": s["property"], "value": value(s)} for s in spec["state"]],
            "changedPropIds": [trigger]}


def forged_user_action(client: requests.Session, url: str, button: str, **form) -> requests.Response:
    """The /users page's action callback, as if `button` was pressed with `form` filled in."""
    values = {**form, button.removeprefix("users-"): 1}
    return forged_callback(client, url, "users-message.children", f"{button}.n_clicks", values)


def page_calls(client: requests.Session, url: str) -> dict[str, requests.Response]:
    forge = lambda button, **form: forged_user_action(client, url, button, **form)  # noqa: E731
    return {
        "add": forge("users-add", **{"new-name": "mallory", "new-role": "admin", "new-password": NEW_PASSWORD,
                                     "new-password2": NEW_PASSWORD}),
        "set role": forge("users-set-role", target="viewer", role="admin"),
        "set areas": forge("users-set-areas", target="operator", areas="Packing"),
        "reset password": forge("users-reset-password", target="engineer", password=NEW_PASSWORD,
                                password2=NEW_PASSWORD),
        "unlock": forge("users-unlock", target="engineer"),
        "ask delete": forge("users-delete", target="engineer"),
        "delete": forge("users-delete-confirm", **{"pending-delete": "engineer"}),
    }


def message(response: requests.Response) -> str:
    return response.json()["response"]["users-message"]["children"]


@pytest.mark.parametrize("who", ["viewer", "operator", None])
def test_user_changes_from_a_viewer_an_operator_or_a_logged_out_client_are_refused_and_change_nothing(
        web_app, feeder, who):
    lock_out(feeder, "engineer")
    client = login_session(web_app.url, who, who) if who else requests.Session()
    before, audit_before = user_records(feeder), audit(feeder)

    for what, response in api_calls(client, web_app.url).items():
        if who is None:
            assert response.status_code == 401, what
            assert response.json()["error"] == "not logged in"
        else:
            assert response.status_code == 403, what
            assert response.json()["detail"] == f"your role ({who}) may not manage users; admin or higher is needed"

    if who is None:
        assert client.post(web_app.url + "/_dash-update-component", json={}, timeout=10).status_code == 401
    else:
        for what, response in page_calls(client, web_app.url).items():
            assert response.status_code == 200, what
            assert message(response) == f"REFUSED: your role ({who}) may not manage users; admin or higher is needed"
            assert "users-list" not in response.json()["response"], what  # no list of accounts handed out
        # Nor do the page's readers hand out accounts or areas.
        listed = forged_callback(client, web_app.url, "users-list.children", "users-loaded.id", {"loaded": "x"})
        assert listed.json()["response"]["users-target"]["options"] == []
        assert "may not manage users" in listed.text and "engineer" not in listed.text
        one = forged_callback(client, web_app.url, "users-role.value", "users-target.value", {"target": "engineer"})
        assert one.status_code == 204 or "engineer" not in one.text

    assert user_records(feeder) == before
    assert feeder.call(lockout_remaining_s(feeder.redis, "engineer")) > 0
    new_entries = audit(feeder)[len(audit_before):]
    assert not [e for e in new_entries if e["result"] == "ok" and e["action"] in CHANGE_ACTIONS]
    if who is not None:  # each refusal is on the record, with who tried it
        refused = [e for e in new_entries if e["result"] == "refused"]
        assert len(refused) == 7 + 7 + 2 and {e["user"] for e in refused} == {who}
        assert {e["action"] for e in refused} >= CHANGE_ACTIONS


def test_an_admin_manages_users_through_the_api_and_each_change_is_audited(web_app, feeder):
    admin = login_session(web_app.url, "admin", "admin")
    url = web_app.url + "/api/users"
    listed = admin.get(url, timeout=10).json()["users"]
    assert [(u["name"], u["role"], u["areas"], u["locked_out_s"]) for u in listed] == [
        ("admin", "admin", [], 0), ("engineer", "engineer", [], 0), ("operator", "operator", [], 0),
        ("viewer", "viewer", [], 0)]

    added = admin.post(url, json={"name": "nina", "role": "operator", "password": NEW_PASSWORD,
                                  "areas": ["Tanks", "Packing"]}, timeout=30)
    assert added.status_code == 201
    assert added.json() == {"name": "nina", "role": "operator", "areas": ["Packing", "Tanks"], "locked_out_s": 0}
    nina = login_session(web_app.url, "nina", NEW_PASSWORD)
    assert nina.get(web_app.url + "/api/session", timeout=10).json()["user"] == "nina"

    # Refusals with their reasons; nothing changes.
    before = user_records(feeder)
    for body, status, reason in [
        ({"name": "nina", "role": "viewer", "password": NEW_PASSWORD}, 409, "user 'nina' exists already"),
        ({"name": "x y", "role": "viewer", "password": NEW_PASSWORD}, 400, "not a valid user name"),
        ({"name": "neo", "role": "boss", "password": NEW_PASSWORD}, 400, "unknown role 'boss'"),
        ({"name": "neo", "role": "viewer", "password": "short"}, 400, "at least 8 characters"),
        ({"name": "neo", "role": "viewer", "password": NEW_PASSWORD, "areas": "Tanks"}, 400, "list of area names"),
        ({"name": "neo", "role": "viewer", "password": NEW_PASSWORD, "rol": "x"}, 400, "unknown field(s): rol"),
    ]:
        response = admin.post(url, json=body, timeout=30)
        assert (response.status_code, reason in response.json()["detail"]) == (status, True), response.text
    assert admin.post(url, data="[1, 2]", timeout=10).status_code == 400
    assert admin.patch(url + "/ghost", json={"role": "viewer"}, timeout=10).status_code == 404
    assert admin.delete(url + "/ghost", timeout=10).status_code == 404
    assert admin.post(url + "/ghost/unlock", timeout=10).status_code == 404
    assert admin.patch(url + "/nina", json={}, timeout=10).json()["detail"].startswith("nothing to change")
    # A bad field in a PATCH stops the good ones too.
    assert admin.patch(url + "/nina", json={"role": "engineer", "areas": [""]}, timeout=10).status_code == 400
    # The last admin may neither leave the role nor delete themselves.
    demote = admin.patch(url + "/admin", json={"role": "engineer"}, timeout=10)
    assert demote.status_code == 409 and "the last admin cannot give up the admin role" in demote.json()["detail"]
    own = admin.delete(url + "/admin", timeout=10)
    assert own.status_code == 409 and "cannot delete their own account" in own.json()["detail"]
    assert user_records(feeder) == before

    changed = admin.patch(url + "/nina", json={"role": "engineer", "areas": []}, timeout=10).json()
    assert changed == {"changed": ["role", "areas"],
                       "user": {"name": "nina", "role": "engineer", "areas": [], "locked_out_s": 0}}
    assert nina.get(web_app.url + "/api/session", timeout=10).json()["role"] == "engineer"  # open session: at once
    assert admin.patch(url + "/nina", json={"password": "another password"}, timeout=30).status_code == 200
    assert nina.get(web_app.url + "/api/session", timeout=10).status_code == 401  # sessions ended
    lock_out(feeder, "nina")
    assert [u["locked_out_s"] > 0 for u in admin.get(url, timeout=10).json()["users"] if u["name"] == "nina"] == [True]
    assert admin.post(url + "/nina/unlock", timeout=10).json()["was_locked_out_s"] > 0
    login_session(web_app.url, "nina", "another password")
    assert admin.delete(url + "/nina", timeout=10).json() == {"deleted": "nina"}
    assert feeder.call(feeder.redis.exists(keys.user("nina"))) == 0

    entries = [e for e in audit(feeder) if e["tag"] == "user:nina" and e["result"] == "ok"]
    assert [(e["action"], e["user"], e["source_ip"]) for e in entries] == [
        (action, "admin", "127.0.0.1") for action in
        ("user_added", "role_changed", "areas_changed", "password_changed", "user_unlocked", "user_deleted")]
    assert NEW_PASSWORD not in json.dumps(audit(feeder)) and "another password" not in json.dumps(audit(feeder))
    assert "another password" not in web_app.log_text()


def test_an_admin_changes_users_through_the_page_callback_and_each_change_is_audited(web_app, feeder):
    admin = login_session(web_app.url, "admin", "admin")
    url = web_app.url
    added = forged_user_action(admin, url, "users-add", **{
        "new-name": "otto", "new-role": "operator", "new-password": NEW_PASSWORD, "new-password2": NEW_PASSWORD,
        "new-areas": "Tanks, Packing"})
    assert message(added) == "Added otto (operator; Packing, Tanks)."
    assert "otto" in json.dumps(added.json()["response"]["users-list"])
    # The passwords typed are cleared from the page, never sent back.
    assert added.json()["response"]["users-new-password"]["value"] == ""
    assert NEW_PASSWORD not in added.text
    differ = forged_user_action(admin, url, "users-add", **{
        "new-name": "pia", "new-role": "viewer", "new-password": NEW_PASSWORD, "new-password2": "typo"})
    assert message(differ) == "NOT DONE: the two passwords differ"
    assert message(forged_user_action(admin, url, "users-set-role", target="otto", role="engineer")) == (
        "otto is now engineer.")
    assert message(forged_user_action(admin, url, "users-set-areas", target="otto", areas="Utilities")) == (
        "otto may now act in: Utilities.")
    assert message(forged_user_action(admin, url, "users-reset-password", target="otto", password="another password",
                                      password2="another password")) == (
        "Password of otto changed; 0 open sessions ended.")
    lock_out(feeder, "otto")
    assert message(forged_user_action(admin, url, "users-unlock", target="otto")) == "otto may log in again."
    assert feeder.call(lockout_remaining_s(feeder.redis, "otto")) == 0
    ask = forged_user_action(admin, url, "users-delete", target="otto").json()["response"]
    assert ask["users-confirm-text"]["children"].startswith("Delete user 'otto'?")
    assert (ask["users-confirm"]["hidden"], ask["users-pending-delete"]["data"]) == (False, "otto")
    assert feeder.call(feeder.redis.exists(keys.user("otto"))) == 1  # asked, not yet done
    own = forged_user_action(admin, url, "users-delete", target="admin")
    assert message(own) == "NOT DONE: an admin cannot delete their own account (another admin can)"
    assert message(forged_user_action(admin, url, "users-delete-confirm", **{"pending-delete": "otto"})) == (
        "Deleted otto; their open sessions ended.")
    assert feeder.call(feeder.redis.exists(keys.user("otto"))) == 0

    entries = [e for e in audit(feeder) if e["tag"] == "user:otto" and e["result"] == "ok"]
    assert [(e["action"], e["user"], e["source_ip"]) for e in entries] == [
        (action, "admin", "127.0.0.1") for action in
        ("user_added", "role_changed", "areas_changed", "password_changed", "user_unlocked", "user_deleted")]
    assert [e["user"] for e in audit(feeder) if e["tag"] == "user:pia"] == []
