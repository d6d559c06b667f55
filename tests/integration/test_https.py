"""HTTPS from web.tls_cert / web.tls_key: Secure cookies, HSTS, no plain HTTP, a bad pair stops the start."""
from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser.web_app_process import REPO_ROOT, WebAppProcess
from tests.unit.web_plant import WEB_TEST_PLANT
from web.sessions import CSRF_COOKIE, SESSION_COOKIE


def write_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key."""
    key_path, cert_path = directory / "web.key", directory / "web.pem"
    key = write_key(key_path)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def plant_text(cert: Path | str, key: Path | str) -> str:
    return WEB_TEST_PLANT.replace("WRITE_TIMEOUT", "1") + f"web:\n  tls_cert: {cert}\n  tls_key: {key}\n"


def set_cookie_headers(response: requests.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name, lower-cased (attributes' case differs between servers)."""
    return {h.split("=", 1)[0]: h.lower() for h in response.raw.headers.getlist("set-cookie")}


@pytest.fixture
def https_app(redis_server, tmp_path, feeder):
    cert, key = write_self_signed(tmp_path)
    plant = tmp_path / "plant.yaml"
    plant.write_text(plant_text(cert, key))
    app = WebAppProcess(plant, redis_server.url, tmp_path / "web", tls_ca=cert).start()
    yield app, cert
    app.stop()


def test_login_over_https_sets_secure_httponly_strict_cookies_and_hsts(https_app):
    app, cert = https_app
    assert app.url.startswith("https://")
    form = requests.get(app.url + "/login", verify=cert, timeout=10)
    assert form.headers["Strict-Transport-Security"] == "max-age=31536000"

    login = requests.post(app.url + "/login", data={"username": "operator", "password": "operator", "next": "/"},
                          verify=cert, allow_redirects=False, timeout=10)
    assert login.status_code == 303
    cookies = set_cookie_headers(login)
    session, csrf = cookies[SESSION_COOKIE], cookies[CSRF_COOKIE]
    assert "; secure" in session and "; httponly" in session and "samesite=strict" in session
    assert "; secure" in csrf and "samesite=strict" in csrf and "httponly" not in csrf  # the page reads it
    assert login.headers["Strict-Transport-Security"] == "max-age=31536000"

    # The session works over HTTPS (the client sends a Secure cookie back only there).
    api = requests.get(app.url + "/api/tags", cookies={SESSION_COOKIE: login.cookies[SESSION_COOKIE]},
                       verify=cert, timeout=10)
    assert api.status_code == 200 and {t["name"] for t in api.json()} >= {"T1.level", "M1.flow"}

    logout = requests.post(app.url + "/logout", cookies={SESSION_COOKIE: login.cookies[SESSION_COOKIE]},
                           headers={"Origin": app.url}, verify=cert, allow_redirects=False, timeout=10)
    cleared = set_cookie_headers(logout)
    assert logout.status_code == 303
    assert all("max-age=0" in cleared[name] and "; secure" in cleared[name] for name in (SESSION_COOKIE, CSRF_COOKIE))


def test_plain_http_to_the_https_port_gets_no_answer(https_app):
    app, _cert = https_app
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{app.port}/health", timeout=10)


def test_an_untrusted_client_cannot_talk_to_it_without_the_certificate(https_app):
    app, _cert = https_app
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(app.url + "/health", timeout=10)  # self-signed: not in the system's trust store


def run_web(plant: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "REDIS_URL": "redis://127.0.0.1:1/0"}
    return subprocess.run([sys.executable, "-m", "web", "--config", str(plant), "--port", "1"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_key_that_does_not_match_the_certificate_stops_the_start_with_the_reason(tmp_path):
    cert, _key = write_self_signed(tmp_path)
    write_key(tmp_path / "other.key")
    plant = tmp_path / "plant.yaml"
    plant.write_text(plant_text(cert, tmp_path / "other.key"))
    result = run_web(plant, REPO_ROOT)
    assert result.returncode == 2
    assert f"web.tls_key {tmp_path / 'other.key'}: the key does not belong to the certificate" in result.stderr
    assert "Traceback" not in result.stderr


def test_relative_certificate_paths_are_taken_from_the_working_directory(tmp_path):
    write_self_signed(tmp_path)
    plant_dir = tmp_path / "plant"
    plant_dir.mkdir()
    plant = plant_dir / "plant.yaml"
    plant.write_text(plant_text("web.pem", "missing.key"))
    result = run_web(plant, tmp_path)  # web.pem is found there; missing.key is missing there
    assert result.returncode == 2
    assert "web.tls_key missing.key: cannot read it: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
