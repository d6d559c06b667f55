"""GET /api/audit and /api/audit.csv on the web app as a process: a scripted session, then the search;
the plant file's first load is the first event; what the archive holds is found after Redis lost it."""
from __future__ import annotations

import csv
import io

import requests

from audit_trail.archive import ARCHIVE_FILE_NAME, AuditArchive
from audit_trail.archiver import AuditArchiver
from audit_trail.config_changes import PLANT_FILE_USER
from tag_store import keys

from tests.browser.web_app_process import login_session
from tests.integration.test_web_api_auth import write_through_faceplate

SESSION_EVENTS = [  # newest first, as the API answers
    ("(unknown name)", "login_failed", "refused"),
    ("operator", "logout", "ok"),
    ("operator", "write", "refused"),
    ("operator", "login", "ok"),
    (PLANT_FILE_USER, "config_loaded", "ok"),  # the web's start: the plant file recorded
]


def scripted_session(base_url: str) -> None:
    """An operator logs in, tries to write a tag that is not writable, logs out; then a failed login."""
    operator = login_session(base_url, "operator", "operator")
    refused = write_through_faceplate(operator, base_url, "T1.level", 3.0)
    assert "REFUSED" in refused.text
    assert operator.get(base_url + "/logout", allow_redirects=False, timeout=10).status_code == 303
    failed = requests.post(base_url + "/login", data={"username": "nobody", "password": "guess"},
                           allow_redirects=False, timeout=10)
    assert failed.status_code == 401


def test_an_engineer_finds_the_session_in_the_audit_and_its_csv(web_app, feeder):
    feeder.put("T1.level", 2.5)
    scripted_session(web_app.url)
    engineer = login_session(web_app.url, "engineer", "engineer")

    answer = engineer.get(web_app.url + "/api/audit", params={"text": ""}, timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    events = [e for e in body["events"] if e["user"] != "engineer"]  # the engineer's own login is newest
    assert [(e["user"], e["action"], e["result"]) for e in events] == SESSION_EVENTS
    assert body["events"][0]["action"] == "login" and body["events"][0]["user"] == "engineer"
    assert (body["limit"], body["capped"], body["count"], body["note"]) == (5000, False, 6, "")
    loaded = events[-1]
    assert loaded["tag"] == str(web_app.config_path) and len(loaded["new"]) == 64
    times = [e["time_ms"] for e in body["events"]]
    assert times == sorted(times, reverse=True)
    write = events[2]
    assert (write["tag"], write["new"], write["source_ip"]) == ("T1.level", "3.0", "127.0.0.1")
    assert "not writable" in write["reason"]
    assert write["time"].endswith("Z")

    def search(**params) -> list[tuple[str, str, str]]:
        found = engineer.get(web_app.url + "/api/audit", params=params, timeout=10)
        assert found.status_code == 200, found.text
        return [(e["user"], e["action"], e["result"]) for e in found.json()["events"]]

    assert search(user="operator") == SESSION_EVENTS[1:4]
    assert search(action="login_failed") == SESSION_EVENTS[:1]
    assert search(user="operator", action="write", tag="T1.*") == [("operator", "write", "refused")]
    assert search(**{"from": str(write["time_ms"]), "to": str(write["time_ms"])}) == [SESSION_EVENTS[2]]
    assert search(limit="2") == [("engineer", "login", "ok"), SESSION_EVENTS[0]]

    bad = engineer.get(web_app.url + "/api/audit", params={"action": "format disk"}, timeout=10)
    assert bad.status_code == 400 and "action: 'format disk' is not an action name" in bad.json()["detail"]

    download = engineer.get(web_app.url + "/api/audit.csv", params={"user": "operator"}, timeout=10)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"].startswith('attachment; filename="audit-')
    header, *rows = list(csv.reader(io.StringIO(download.text)))
    assert header[:5] == ["time_utc", "time_ms", "user", "action", "result"]
    assert header[8:11] == ["reason", "comment", "source_ip"]
    assert [tuple(r[2:5]) for r in rows] == SESSION_EVENTS[1:4]
    assert rows[1][5] == "T1.level" and rows[1][10] == "127.0.0.1"


def test_events_redis_lost_are_found_in_the_archive(web_app, feeder, tmp_path):
    """The archiver (in the historian; here in the test) archived the session; Redis then loses everything."""
    scripted_session(web_app.url)
    archive_path = tmp_path / "data" / ARCHIVE_FILE_NAME  # the plant's data_dir: $STACKLIGHT_DATA_DIR
    with AuditArchive(archive_path) as archive:
        feeder.call(AuditArchiver(feeder.redis, archive).copy_new())
    feeder.call(feeder.redis.delete(keys.AUDIT))  # Redis lost the stream
    engineer = login_session(web_app.url, "engineer", "engineer")
    body = engineer.get(web_app.url + "/api/audit", timeout=10).json()
    found = [(e["user"], e["action"], e["result"]) for e in body["events"]]
    assert found == [("engineer", "login", "ok"), *SESSION_EVENTS]  # the newest from Redis, the rest archived


def test_viewers_and_operators_see_only_their_own_actions_and_logged_out_clients_get_401(web_app, feeder):
    scripted_session(web_app.url)
    operator = login_session(web_app.url, "operator", "operator")
    own = operator.get(web_app.url + "/api/audit", timeout=10)
    assert own.status_code == 200, own.text
    assert {e["user"] for e in own.json()["events"]} == {"operator"}
    assert ("operator", "write", "refused") in [(e["user"], e["action"], e["result"]) for e in own.json()["events"]]
    rows = list(csv.reader(io.StringIO(operator.get(web_app.url + "/api/audit.csv", timeout=10).text)))[1:]
    assert rows and {r[2] for r in rows} == {"operator"}
    for name in ("viewer", "operator"):
        session = login_session(web_app.url, name, name)
        for path in ("/api/audit", "/api/audit.csv"):
            refused = session.get(web_app.url + path, params={"user": "engineer"}, timeout=10)
            assert refused.status_code == 403, (name, path)
            assert f"you may see only your own actions ({name})" in refused.json()["detail"]
    assert requests.get(web_app.url + "/api/audit", timeout=10).status_code == 401
    admin = login_session(web_app.url, "admin", "admin")
    assert admin.get(web_app.url + "/api/audit.csv", timeout=10).status_code == 200
