"""Where a service finds its plant file and its Redis: one rule for every process.

The plant file: --config, else $STACKLIGHT_CONFIG, else the demo plant. Redis:
$REDIS_URL, else redis.url in the plant file (the launcher starts a private
Redis and sets REDIS_URL). A StartupError's text is for stderr; exit code 2.
"""
from __future__ import annotations

import os
from typing import Mapping

from domain.config_loading import ConfigError, load_config, resolve_config_path
from domain.config_model import PlantConfig


class StartupError(Exception):
    """The service cannot start; str() says why."""


def resolve_redis_url(config: PlantConfig, environ: Mapping[str, str] = os.environ) -> str:
    url = environ.get("REDIS_URL") or config.redis.url
    if not url:
        raise StartupError("no Redis: set REDIS_URL or redis.url in the plant file "
                           "(the launcher starts a private Redis and sets REDIS_URL)")
    return url


def load_plant(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> PlantConfig:
    try:
        return load_config(resolve_config_path(cli_path, environ), environ)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None


def load_plant_and_redis(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> tuple[PlantConfig, str]:
    config = load_plant(cli_path, environ)
    return config, resolve_redis_url(config, environ)
