"""Stacklight web app: Dash 4 on FastAPI, one process per uvicorn worker.

    python -m web --config config/demo_plant.yaml [--host 127.0.0.1 --port 8050]
    python app.py --config ...                       (the same)
    STACKLIGHT_CONFIG=plant.yaml REDIS_URL=redis://... uvicorn --factory app:create_server --workers 4

Redis comes from $REDIS_URL, else redis.url in the plant file. Nothing
connects at import: create_app() wires things, the first request starts them.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dash import Dash
from fastapi import FastAPI

from domain.config_loading import resolve_config_path
from domain.config_model import PlantConfig
from tag_store.startup import StartupError, load_plant_and_redis, resolve_redis_url
from web.runtime import WebRuntime, install_runtime
from web.sessions import CSRF_COOKIE, CSRF_HEADER
from web.transport import TransportError, base_url, uvicorn_options

log = logging.getLogger("stacklight.web")


def _log_callback_error(error: Exception):
    """Dash answers a failed callback with a bare 500; say here what failed, then let it fail."""
    log.error("callback failed: %s", error, exc_info=error)
    raise error


def create_app(config: PlantConfig, redis_url: str | None = None) -> Dash:
    """The Dash app for one worker process (call once per process: Dash callbacks are global)."""
    install_runtime(WebRuntime(config, redis_url or resolve_redis_url(config)))
    # Imported here so their callbacks and hooks register with this app, after the runtime exists.
    from web import auth, live_push, shell, websocket_guard  # noqa: PLC0415, F401
    from web.api import router as api_router  # noqa: PLC0415
    from web.alarm_api import router as alarm_api_router  # noqa: PLC0415
    from web.journal_api import router as journal_api_router  # noqa: PLC0415
    from web.history_api import router as history_api_router  # noqa: PLC0415
    from web.audit_api import router as audit_api_router  # noqa: PLC0415
    from web.user_api import router as user_api_router  # noqa: PLC0415
    from web.api_tokens_api import router as api_tokens_router  # noqa: PLC0415
    from web.write_api import router as write_api_router  # noqa: PLC0415
    from web.performance_api import router as performance_api_router  # noqa: PLC0415
    from web.login import router as login_router  # noqa: PLC0415
    from web.security_headers import SecurityHeadersMiddleware  # noqa: PLC0415

    app = Dash(
        __name__,
        # Our own FastAPI app: no public OpenAPI pages on a plant HMI.
        server=FastAPI(title="Stacklight", docs_url=None, redoc_url=None, openapi_url=None),
        pages_folder="layouts",
        use_pages=True,
        title=config.site_name,
        update_title=None,
        suppress_callback_exceptions=True,
        # The HMI stays connected while nobody touches it; the session timeout still applies.
        websocket_inactivity_timeout=0,
        csrf_token_name=CSRF_COOKIE,
        csrf_header_name=CSRF_HEADER,
        health_endpoint="health",
        on_error=_log_callback_error,
    )
    app.layout = shell.root_layout
    app.server.include_router(login_router)
    app.server.include_router(api_router)
    app.server.include_router(performance_api_router)
    app.server.include_router(alarm_api_router)
    app.server.include_router(journal_api_router)
    app.server.include_router(history_api_router)
    app.server.include_router(audit_api_router)
    app.server.include_router(user_api_router)
    app.server.include_router(api_tokens_router)
    app.server.include_router(write_api_router)
    app.server.add_middleware(auth.AuthMiddleware)
    app.server.add_middleware(SecurityHeadersMiddleware)  # outermost: also on refusals and redirects
    # Dash sets itself up (assets list, callbacks) on its first request to "/" or /_dash-*; when the
    # first request is a page like /tag/X the index is served without our assets. Set up now.
    app._setup_server()  # noqa: SLF001
    return app


def create_server():
    """ASGI factory for `uvicorn --factory app:create_server` (config from $STACKLIGHT_CONFIG)."""
    try:
        config, redis_url = load_plant_and_redis(None)
    except StartupError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(config, redis_url).server


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m web", description="Run the Stacklight web app.")
    parser.add_argument("--config", help="plant file (default: $STACKLIGHT_CONFIG or the demo plant)")
    parser.add_argument("--host", help="listen address (default: web.host of the plant file)")
    parser.add_argument("--port", type=int, help="listen port (default: web.port of the plant file)")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = resolve_config_path(args.config)
    try:
        config, redis_url = load_plant_and_redis(args.config)
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        listen = uvicorn_options(config.web)  # HTTPS files checked here, before anything starts
    except TransportError as exc:
        print(exc, file=sys.stderr)
        return 2
    app = create_app(config, redis_url)
    import uvicorn  # noqa: PLC0415 - only the process entry needs it

    host, port = args.host or config.web.host, args.port or config.web.port
    log.info("Stacklight web on %s (%s, %s)", base_url(config.web, host, port), config.site_name, Path(path).name)
    uvicorn.run(app.server, host=host, port=port, log_level=args.log_level, lifespan="on", **listen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
