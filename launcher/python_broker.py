"""python -m launcher.python_broker --port N: a pure-Python MQTT 3.1.1 broker (amqtt) on 127.0.0.1 only.

The zero-setup fallback when mosquitto is not installed. amqtt listens on 0.0.0.0 by
default; here the only listener is loopback, so allowing anonymous clients exposes
nothing beyond this machine.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from amqtt.broker import Broker

_log = logging.getLogger("launcher.python_broker")


def broker_config(port: int, host: str = "127.0.0.1") -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # Only the anonymous-auth plugin: the default set adds packet logging and $SYS publishing.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve(port: int, host: str = "127.0.0.1") -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    broker = Broker(broker_config(port, host))
    await broker.start()
    _log.info("amqtt broker listening on %s:%d", host, port)
    try:
        await stop.wait()
    finally:
        await broker.shutdown()
        _log.info("amqtt broker stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.python_broker", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # amqtt and its state machine library log every client session at INFO.
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
