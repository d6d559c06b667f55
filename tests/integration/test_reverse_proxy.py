"""Behind a reverse proxy: X-Forwarded-For/-Proto count only from web.trusted_proxies.

The requests here come from 127.0.0.1 and carry the headers a proxy such as nginx adds, so the web
app sees exactly what it would see behind one on the same machine.
"""
from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from launcher.embedded_servers import find_executable, free_port, stop_process, wait_for_port
from tests.browser.web_app_process import REPO_ROOT, WebAppProcess
from tests.integration.test_https import write_self_signed
from tests.unit.web_plant import WEB_TEST_PLANT
from web.audit import read_audit
from web.sessions import CSRF_COOKIE, SESSION_COOKIE

PUBLIC_HOST = "hmi.example:8443"  # what the browser sees: the proxy's name and port
FORWARDED = {"X-Forwarded-For": "10.9.8.7", "X-Forwarded-Proto": "https"}


def start_web(redis_server, tmp_path, trusted: list[str]) -> WebAppProcess:
    plant = tmp_path / "plant.yaml"
    plant.write_text(WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "1") + f"web:\n  trusted_proxies: {trusted}\n")
    return WebAppProcess(plant, redis_server.url, tmp_path / "web").start()


@pytest.fixture
def proxied_app(redis_server, tmp_path, feeder):
    app = start_web(redis_server, tmp_path, ["127.0.0.1"])
    yield app
    app.stop()


def login_through_proxy(app: WebAppProcess, host: str = PUBLIC_HOST) -> requests.Response:
    headers = {**FORWARDED, "Host": host, "Origin": f"https://{PUBLIC_HOST}"}
    return requests.post(app.url + "/login", data={"username": "operator", "password": "operator", "next": "/"},
                         headers=headers, allow_redirects=False, timeout=10)


def cookie_headers(response: requests.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h.lower() for h in response.raw.headers.getlist("set-cookie")}


def last_login(feeder) -> dict[str, str]:
    return next(e for e in feeder.call(read_audit(feeder.redis, 20)) if e["action"] == "login")


def test_a_trusted_proxy_s_client_address_and_https_are_believed(proxied_app, feeder):
    login = login_through_proxy(proxied_app)
    assert login.status_code == 303
    cookies = cookie_headers(login)
    assert "; secure" in cookies[SESSION_COOKIE] and "; httponly" in cookies[SESSION_COOKIE]
    assert "; secure" in cookies[CSRF_COOKIE]
    assert login.headers["Strict-Transport-Security"] == "max-age=31536000"
    event = last_login(feeder)
    assert (event["user"], event["result"], event["source_ip"]) == ("operator", "ok", "10.9.8.7")


def test_a_proxy_that_rewrites_the_host_header_gets_logins_refused_as_cross_site(proxied_app):
    # nginx's default (Host: the upstream address) no longer matches the browser's Origin.
    login = login_through_proxy(proxied_app, host=f"127.0.0.1:{proxied_app.port}")
    assert login.status_code == 403 and "cross-site" in login.text


def open_live_socket(app: WebAppProcess, session_token: str, host: str):
    """The page's websocket as the proxy forwards it: the browser's Host and Origin, our cookie."""
    sock = socket.create_connection(("127.0.0.1", app.port), timeout=10)
    return connect(f"ws://{host}/_dash-ws-callback", sock=sock, origin=f"https://{PUBLIC_HOST}",
                   additional_headers={**FORWARDED, "Cookie": f"{SESSION_COOKIE}={session_token}"},
                   open_timeout=10)


def test_the_live_websocket_works_through_a_proxy_that_passes_host(proxied_app):
    token = login_through_proxy(proxied_app).cookies[SESSION_COOKIE]
    with open_live_socket(proxied_app, token, PUBLIC_HOST) as ws:
        ws.ping().wait(5)  # accepted: the Origin matches the forwarded Host and the session is valid
    with pytest.raises(InvalidStatus) as refused:
        open_live_socket(proxied_app, token, f"127.0.0.1:{proxied_app.port}")
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("trusted", [[], ["127.0.0.2"]], ids=["no proxy trusted", "another proxy trusted"])
def test_forwarded_headers_from_an_untrusted_client_are_ignored(redis_server, tmp_path, feeder, trusted):
    app = start_web(redis_server, tmp_path, trusted)
    try:
        login = login_through_proxy(app)
        assert login.status_code == 303
        cookies = cookie_headers(login)
        assert "secure" not in cookies[SESSION_COOKIE] and "secure" not in cookies[CSRF_COOKIE]
        assert "Strict-Transport-Security" not in login.headers
        assert last_login(feeder)["source_ip"] == "127.0.0.1"
    finally:
        app.stop()


# --- nginx in front, with the configuration docs/transport.md documents ----------------------

def documented_nginx_block() -> str:
    doc = (REPO_ROOT / "docs" / "transport.md").read_text()
    section = doc.split("<!-- nginx-example-begin -->", 1)[1].split("<!-- nginx-example-end -->", 1)[0]
    return section.split("```nginx", 1)[1].split("```", 1)[0]


def nginx_config(work_dir: Path, listen_port: int, app_port: int, cert: Path, key: Path) -> str:
    block = documented_nginx_block()
    for old, new in (("listen 443 ssl;", f"listen 127.0.0.1:{listen_port} ssl;"),
                     ("/etc/stacklight/tls/hmi.pem", str(cert)), ("/etc/stacklight/tls/hmi.key", str(key)),
                     ("proxy_pass http://127.0.0.1:8050;", f"proxy_pass http://127.0.0.1:{app_port};")):
        assert old in block, f"docs/transport.md's nginx block no longer has {old!r}"
        block = block.replace(old, new)
    temp = "\n".join(f"  {kind}_temp_path {work_dir / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                            "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the test's private directory
    return (f"{user}daemon off;\npid {work_dir / 'nginx.pid'};\nerror_log {work_dir / 'error.log'};\n"
            f"events {{}}\nhttp {{\n  access_log {work_dir / 'access.log'};\n{temp}\n{block}\n}}\n")


@pytest.fixture
def nginx(proxied_app, tmp_path):
    executable = find_executable("nginx")
    if executable is None:
        pytest.skip("nginx is not installed")
    work_dir = tmp_path / "nginx"
    work_dir.mkdir()
    cert, key = write_self_signed(work_dir)
    port = free_port()
    (work_dir / "nginx.conf").write_text(nginx_config(work_dir, port, proxied_app.port, cert, key))
    process = subprocess.Popen([executable, "-p", str(work_dir), "-c", str(work_dir / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    wait_for_port(port, 15, process)
    yield f"https://127.0.0.1:{port}", cert
    stop_process(process)


def test_through_the_documented_nginx_login_cookies_audit_and_websocket_work(nginx, feeder):
    base, cert = nginx
    # A client's own X-Forwarded-For is overwritten by nginx ($remote_addr), not believed.
    login = requests.post(base + "/login", data={"username": "operator", "password": "operator", "next": "/"},
                          headers={"Origin": base, "X-Forwarded-For": "6.6.6.6"}, verify=cert,
                          allow_redirects=False, timeout=10)
    assert login.status_code == 303, login.text
    cookies = cookie_headers(login)
    assert "; secure" in cookies[SESSION_COOKIE] and "samesite=strict" in cookies[SESSION_COOKIE]
    assert login.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert last_login(feeder)["source_ip"] == "127.0.0.1"
    token = login.cookies[SESSION_COOKIE]

    api = requests.get(base + "/api/tags", cookies={SESSION_COOKIE: token}, verify=cert, timeout=10)
    assert api.status_code == 200

    context = ssl.create_default_context(cafile=str(cert))
    with connect(base.replace("https", "wss") + "/_dash-ws-callback", ssl=context, origin=base,
                 additional_headers={"Cookie": f"{SESSION_COOKIE}={token}"}, open_timeout=10) as ws:
        ws.ping().wait(5)  # upgraded through nginx and accepted by Dash (Origin matches the passed Host)
