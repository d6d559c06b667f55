"""The Redis URL a service uses: credentials from the plant file, quoted; printed only redacted."""
from __future__ import annotations

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from domain.config_model import RedisSettings, SecretRef
from launcher.embedded_servers import RedisServer
from tag_store.startup import StartupError, redacted, resolve_redis_url, with_credentials
from tests.unit.web_plant import small_plant


def plant_with(**redis_settings):
    config = small_plant()
    return config.model_copy(update={"redis": RedisSettings(**redis_settings)})


def client_kwargs(url: str) -> dict:
    return redis.Redis.from_url(url).connection_pool.connection_kwargs


def test_without_credentials_the_url_is_used_as_given():
    config = plant_with(url="redis://db:6379/2")
    assert resolve_redis_url(config, {}) == "redis://db:6379/2"


def test_the_password_from_an_environment_variable_reaches_the_client_unchanged():
    config = plant_with(url="redis://db:6379/2", username="stacklight", password=SecretRef(env="SL_REDIS_PW"))
    url = resolve_redis_url(config, {"SL_REDIS_PW": "p@ss:w/rd#?%"})
    kwargs = client_kwargs(url)
    assert (kwargs["username"], kwargs["password"], kwargs["host"], kwargs["port"], kwargs["db"]) == (
        "stacklight", "p@ss:w/rd#?%", "db", 6379, 2)


def test_the_password_from_a_file_is_its_first_line(tmp_path):
    secret = tmp_path / "redis.secret"
    secret.write_text("from-file\nignored\n")
    config = plant_with(url="redis://db/0", password=SecretRef(file=str(secret)))
    kwargs = client_kwargs(resolve_redis_url(config, {}))
    assert kwargs["password"] == "from-file" and kwargs.get("username") is None


def test_credentials_also_apply_to_redis_url_from_the_environment():
    config = plant_with(username="u", password=SecretRef(env="PW"))
    kwargs = client_kwargs(resolve_redis_url(config, {"REDIS_URL": "rediss://cache:6380/1", "PW": "s"}))
    assert (kwargs["username"], kwargs["password"], kwargs["host"]) == ("u", "s", "cache")


def test_a_url_that_carries_its_own_password_keeps_it():
    # The launcher's private Redis: its random password is in REDIS_URL and must not be replaced.
    config = plant_with(password=SecretRef(env="PW"))
    url = resolve_redis_url(config, {"REDIS_URL": "redis://:own@127.0.0.1:7000/0", "PW": "configured"})
    assert client_kwargs(url)["password"] == "own"


def test_a_missing_secret_stops_the_start_naming_the_setting():
    config = plant_with(url="redis://db/0", password=SecretRef(env="NOT_SET_ANYWHERE"))
    with pytest.raises(StartupError, match="redis.password: environment variable NOT_SET_ANYWHERE is not set"):
        resolve_redis_url(config, {})


def test_unix_socket_urls_get_the_credentials_as_parameters():
    url = with_credentials("unix:///run/redis/redis.sock?db=3", "u", "a b&c")
    kwargs = client_kwargs(url)
    assert (kwargs["path"], kwargs["db"], kwargs["username"], kwargs["password"]) == (
        "/run/redis/redis.sock", 3, "u", "a b&c")
    assert "a b" not in redacted(url) and "password=***" in redacted(url)


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:secret@h:1/0", "redis://:***@h:1/0"),
    ("rediss://user:secret@[::1]:6380/2", "rediss://user:***@[::1]:6380/2"),
    ("redis://:pa@ss@h/0", "redis://:***@h/0"),
    ("redis://user@h/0", "redis://user@h/0"),
    ("redis://h:6379/0", "redis://h:6379/0"),
    ("", ""),
])
def test_redacted_hides_only_the_password(url, shown):
    assert redacted(url) == shown


@given(st.text(min_size=1, max_size=40).filter(lambda p: "*" not in p))
def test_redacted_never_shows_a_password_put_in_by_with_credentials(password):
    url = with_credentials("redis://127.0.0.1:6379/0", "stacklight", password)
    assert client_kwargs(url)["password"] == password
    shown = redacted(url)
    assert shown == "redis://stacklight:***@127.0.0.1:6379/0"


def test_the_private_redis_url_carries_its_password_and_its_printable_form_does_not(tmp_path):
    server = RedisServer(tmp_path, port=7001, password="s3cr/t")
    assert client_kwargs(server.url)["password"] == "s3cr/t"
    assert "s3cr" not in server.redacted_url and "s3cr" not in redacted(server.url)
    assert all("s3cr" not in part for part in server.command())
    assert (tmp_path / RedisServer.CONFIG_FILE).stat().st_mode & 0o777 == 0o600
