"""`python -m launcher` (what `make run` calls): the whole HMI in one command.

Starts what is not configured (a private Redis with a fresh random password, an
MQTT broker), the demo
plant simulator when the demo plant is selected, then the data sources, the
alarm engine, the historian and the web app, and prints where to log in.
Ctrl-C stops all.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from domain.config_loading import DEFAULT_CONFIG_PATH, ConfigError, load_config, resolve_config_path
from launcher.embedded_servers import MqttBroker, RedisServer, free_port, wait_for_port
from launcher.supervisor import Supervisor
from tag_store.startup import StartupError, check_redis_credentials, redacted, resolve_redis_url
from web.transport import TransportError, is_https, uvicorn_options

log = logging.getLogger("launcher")
DEMO_OPCUA_PORT = 4840


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m launcher", description=__doc__)
    parser.add_argument("--config", help="plant file (default: $STACKLIGHT_CONFIG or the demo plant)")
    parser.add_argument("--simulate", action=argparse.BooleanOptionalAction, default=None,
                        help="run the demo plant simulator (default: only with the demo plant file)")
    parser.add_argument("--extra-tags", type=int, default=0, help="simulator: N synthetic changing tags")
    return parser.parse_args(argv)


def port_is_free(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launcher %(levelname)s: %(message)s")
    config_path = resolve_config_path(args.config).resolve()
    simulate = args.simulate if args.simulate is not None else config_path == DEFAULT_CONFIG_PATH.resolve()
    env = dict(os.environ, STACKLIGHT_CONFIG=str(config_path), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")]))
    if simulate and "STACKLIGHT_SIM_OPCUA_PORT" not in env:
        env["STACKLIGHT_SIM_OPCUA_PORT"] = str(DEMO_OPCUA_PORT if port_is_free(DEMO_OPCUA_PORT) else free_port())
    try:
        config = load_config(config_path, env)
        uvicorn_options(config.web)  # the HTTPS certificate and key, checked before anything starts
    except (ConfigError, TransportError) as exc:
        print(exc, file=sys.stderr)
        return 2

    data_dir = Path(config.data_dir)
    if not data_dir.is_absolute():
        data_dir = (Path.cwd() / data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    servers = []
    supervisor = Supervisor()
    stop_requested = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if not (env.get("REDIS_URL") or config.redis.url):
            # A new password each start, known only to our children (through REDIS_URL in their environment).
            redis = RedisServer(data_dir / "redis", password=secrets.token_urlsafe(24)).start()
            servers.append(redis)
            env["REDIS_URL"] = redis.url
            log.info("started a private Redis on %s (data in %s)", redis.redacted_url, redis.work_dir)
        env.setdefault("REDIS_URL", config.redis.url or "")
        try:
            redis_url = resolve_redis_url(config, env)
            check_redis_credentials(redis_url)
        except StartupError as exc:
            print(exc, file=sys.stderr)
            return 2
        log.info("services use Redis at %s", redacted(redis_url))
        if any(s.kind in ("mqtt", "sparkplug") and s.host is None for s in config.sources.values()):
            broker = MqttBroker(data_dir / "mqtt").start()
            servers.append(broker)
            env["STACKLIGHT_EMBEDDED_MQTT_URL"] = f"mqtt://127.0.0.1:{broker.port}"
            log.info("started a private MQTT broker (%s) on 127.0.0.1:%d", broker.implementation, broker.port)

        accounts = prepare_users(redis_url, demo=simulate)
        if simulate:
            sim_args = ["-m", "simulator", "--opcua-port", env["STACKLIGHT_SIM_OPCUA_PORT"]]
            if "STACKLIGHT_EMBEDDED_MQTT_URL" in env:
                mqtt_port = env["STACKLIGHT_EMBEDDED_MQTT_URL"].rsplit(":", 1)[1]
                sim_args += ["--mqtt-host", "127.0.0.1", "--mqtt-port", mqtt_port]
            if args.extra_tags:
                sim_args += ["--extra-tags", str(args.extra_tags)]
            supervisor.add("simulator", sim_args, env)
            wait_for_port(int(env["STACKLIGHT_SIM_OPCUA_PORT"]), 30)
        supervisor.add("data_sources", ["-m", "data_sources", "--config", str(config_path)], env)
        supervisor.add("alarm_engine", ["-m", "alarm_engine", "--config", str(config_path)], env)
        supervisor.add("historian", ["-m", "historian", "--config", str(config_path)], env)
        supervisor.add("web", ["-m", "web", "--config", str(config_path)], env)
        wait_for_port(config.web.port, 60, supervisor.children[-1].process)
        print_welcome(config.web.host, config.web.port, accounts, "https" if is_https(config.web) else "http")

        while not stop_requested:
            supervisor.check_once()
            time.sleep(0.2)
        log.info("stopping ...")
    finally:
        supervisor.stop_all()
        for server in reversed(servers):
            server.stop()
    log.info("all stopped")
    return 0


@dataclass(frozen=True, slots=True)
class DemoAccountsReport:
    """Demo mode: the accounts created now (printed with their passwords), and those left alone."""

    created: tuple = ()
    kept: tuple[str, ...] = ()


def prepare_users(redis_url: str, demo: bool) -> DemoAccountsReport:
    """In demo mode, the missing demo accounts are created; existing accounts are never changed."""
    if not demo:
        return DemoAccountsReport()
    import redis.asyncio as aioredis  # noqa: PLC0415

    from web.users import DEMO_USERS, ensure_demo_users  # noqa: PLC0415

    async def create() -> list:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await ensure_demo_users(client)
        finally:
            await client.aclose()

    created = asyncio.run(create())
    made = {a.name for a in created}
    return DemoAccountsReport(tuple(created), tuple(r.value for r in DEMO_USERS if r.value not in made))


def welcome_text(host: str, port: int, accounts: DemoAccountsReport, scheme: str = "http") -> str:
    lines = ["", "=" * 64, f"  Stacklight is running:  {scheme}://{host}:{port}", ""]
    if accounts.created:
        lines.append("  Demo accounts created now (demo mode only), user / password / role:")
        lines += [f"    {a.name:<10} {a.password:<10} {a.role}" for a in accounts.created]
    if accounts.kept:
        lines.append(f"  Existing accounts left alone (passwords not changed): {', '.join(accounts.kept)}")
    if not accounts.created:
        lines.append("  Log in with a user made by: python -m web.users add NAME --role operator")
    lines += ["", "  Press Ctrl-C to stop everything.", "=" * 64, ""]
    return "\n".join(lines)


def print_welcome(host: str, port: int, accounts: DemoAccountsReport, scheme: str = "http") -> None:
    print(welcome_text(host, port, accounts, scheme), flush=True)


if __name__ == "__main__":
    sys.exit(main())
