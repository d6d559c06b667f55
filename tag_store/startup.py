"""Where a service finds its plant file and its Redis: one rule for every process.

The plant file: --config, else $STACKLIGHT_CONFIG, else the demo plant. Redis:
$REDIS_URL, else redis.url in the plant file (the launcher starts a private
Redis and sets REDIS_URL). redis.username / redis.password (a SecretRef) go into
that URL, quoted, unless the URL already carries a password of its own (the
launcher's private Redis does). Print a Redis URL only through redacted().
A StartupError's text is for stderr; exit code 2.
"""
from __future__ import annotations

import os
from typing import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from domain.config_loading import ConfigError, load_config, resolve_config_path
from domain.config_model import PlantConfig
from domain.secrets import SecretUnavailable, read_secret

REDACTED = "***"
REDIS_CHECK_TIMEOUT_S = 3.0


class StartupError(Exception):
    """The service cannot start; str() says why."""


def resolve_redis_url(config: PlantConfig, environ: Mapping[str, str] = os.environ) -> str:
    url = environ.get("REDIS_URL") or config.redis.url
    if not url:
        raise StartupError("no Redis: set REDIS_URL or redis.url in the plant file "
                           "(the launcher starts a private Redis and sets REDIS_URL)")
    password = None
    if config.redis.password is not None:
        try:
            password = read_secret(config.redis.password, environ)
        except SecretUnavailable as exc:
            raise StartupError(f"redis.password: {exc}") from None
    return with_credentials(url, config.redis.username, password)


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """The URL with this user and password (percent-quoted), unless it already has a password."""
    if username is None and password is None:
        return url
    parts = urlsplit(url)
    if parts.scheme == "unix":  # unix:///path/redis.sock?password=...: credentials are query parameters
        query = dict(parse_qsl(parts.query))
        if "password" in query:
            return url
        query.update({k: v for k, v in (("username", username), ("password", password)) if v is not None})
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    if parts.password is not None:
        return url
    user = quote(username if username is not None else unquote(parts.username or ""), safe="")
    userinfo = user + (f":{quote(password, safe='')}" if password is not None else "")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def redacted(url: str | None) -> str:
    """The URL with its password (in the authority or a password= parameter) replaced by ***."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        userinfo, at, host = netloc.rpartition("@")
        if at and ":" in userinfo:
            netloc = f"{userinfo.partition(':')[0]}:{REDACTED}@{host}"
        query = parts.query
        if "password" in query:
            query = urlencode([(k, REDACTED if k == "password" else v)
                               for k, v in parse_qsl(query, keep_blank_values=True)], safe="*")
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    except ValueError:
        # Unparseable: show only the scheme, never the rest (it may hold the password).
        return url.partition("://")[0] + "://" + REDACTED


def check_redis_credentials(url: str, timeout_s: float = REDIS_CHECK_TIMEOUT_S) -> None:
    """A StartupError when Redis refuses these credentials; an unreachable Redis is not checked here.

    The services wait out a Redis that is down, but a refused password does not fix itself:
    it is reported once, clearly, instead of a traceback on every retry.
    """
    import redis  # noqa: PLC0415 - only the process entries call this
    from redis.exceptions import (  # noqa: PLC0415
        AuthenticationError, AuthenticationWrongNumberOfArgsError, NoPermissionError, RedisError, ResponseError,
    )

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        client.ping()
    except AuthenticationError as exc:
        raise StartupError(_refused(url, exc)) from None
    except AuthenticationWrongNumberOfArgsError as exc:
        raise StartupError(_refused(url, exc, " (an ACL user in redis.username needs Redis 6 or later)")) from None
    except NoPermissionError as exc:
        raise StartupError(f"Redis accepted the login but refuses its commands (check the ACL user of "
                           f"redis.username) for {redacted(url)}: {exc}") from None
    except ResponseError as exc:
        if any(word in str(exc) for word in ("NOAUTH", "WRONGPASS", "AUTH")):
            raise StartupError(_refused(url, exc)) from None
    except (RedisError, OSError):
        pass  # not reachable now: the service's own loop waits for it and says so
    finally:
        client.close()


def _refused(url: str, exc: Exception, hint: str = "") -> str:
    return f"Redis refused the credentials (redis.username/password) for {redacted(url)}: {exc}{hint}"


def load_plant(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> PlantConfig:
    try:
        return load_config(resolve_config_path(cli_path, environ), environ)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None


def load_plant_and_redis(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> tuple[PlantConfig, str]:
    """The plant and its Redis URL (with credentials); a StartupError if Redis refuses them."""
    config = load_plant(cli_path, environ)
    url = resolve_redis_url(config, environ)
    check_redis_credentials(url)
    return config, url
