"""A login flood against the web app process: parallel guesses cannot get past the lock-out."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.browser.web_app_process import login_session
from web.audit import read_audit
from web.login_throttle import MAX_FAILURES

GUESSES = 20


def test_twenty_parallel_wrong_logins_verify_only_the_allowed_number_and_lock_the_account(web_app, feeder):
    logged_in = login_session(web_app.url, "operator", "operator")  # before the flood

    def guess(i: int) -> requests.Response:
        return requests.post(web_app.url + "/login", data={"username": "operator", "password": f"guess {i}"},
                             allow_redirects=False, timeout=60)

    with ThreadPoolExecutor(GUESSES) as pool:
        answers = list(pool.map(guess, range(GUESSES)))
    assert [a.status_code for a in answers] == [401] * GUESSES

    refusals = [e for e in feeder.call(read_audit(feeder.redis, 100))
                if e["action"] == "login_failed" and e["user"] == "operator"]
    assert len(refusals) == GUESSES
    verified = [e for e in refusals if e["reason"].startswith("wrong")]
    assert len(verified) == MAX_FAILURES, [e["reason"] for e in refusals]

    right = requests.post(web_app.url + "/login", data={"username": "operator", "password": "operator"},
                          allow_redirects=False, timeout=30)
    assert right.status_code == 401 and "Too many failed attempts" in right.text
    newest = feeder.call(read_audit(feeder.redis, 1))[0]
    assert (newest["action"], newest["reason"]) == ("login_failed", f"locked out (attempt {GUESSES + 1}): not checked")

    # Locked out of logging in, not out of the plant: the open session still views and acts.
    assert logged_in.get(web_app.url + "/api/session", timeout=10).status_code == 200
    assert logged_in.get(web_app.url + "/api/tags", timeout=10).status_code == 200
    # Another account is not affected.
    assert login_session(web_app.url, "viewer", "viewer").get(web_app.url + "/api/session", timeout=10).ok
