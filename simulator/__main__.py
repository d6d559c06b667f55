"""python -m simulator: the demo plant on OPC UA and MQTT, until SIGINT or SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from simulator.extra_tags import write_extra_tags_config
from simulator.runner import SimulatorOptions, run_simulator

_log = logging.getLogger("simulator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--opcua-port", type=int, default=4840, help="OPC UA port on 127.0.0.1 (default 4840)")
    parser.add_argument("--mqtt-host", default="127.0.0.1", help="MQTT broker host (default 127.0.0.1)")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="MQTT broker port (default 1883)")
    parser.add_argument("--no-opcua", action="store_true", help="do not serve OPC UA")
    parser.add_argument("--no-mqtt", action="store_true", help="do not publish to MQTT")
    parser.add_argument("--no-sparkplug", action="store_true",
                        help="do not run the packaging line's Sparkplug B edge node (it needs MQTT)")
    parser.add_argument("--extra-tags", type=int, default=0, metavar="N",
                        help="add N synthetic Double variables Extra.Tag00001... for load tests")
    parser.add_argument("--extra-rate-hz", type=float, default=1.0, metavar="R",
                        help="how often every extra tag changes (default 1 Hz)")
    parser.add_argument("--write-extra-config", type=Path, metavar="FILE",
                        help="write the YAML tag entries of the extra tags to FILE (append under `tags:`)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    if args.extra_tags < 0 or args.extra_tags > 99_999:
        parser.error("--extra-tags must be within 0..99999")
    if not 0 < args.extra_rate_hz <= 100:
        parser.error("--extra-rate-hz must be within (0, 100]")
    return args


def options_from(args: argparse.Namespace) -> SimulatorOptions:
    return SimulatorOptions(
        opcua_port=None if args.no_opcua else args.opcua_port,
        mqtt_host=None if args.no_mqtt else args.mqtt_host,
        mqtt_port=args.mqtt_port,
        sparkplug=not args.no_sparkplug,
        extra_tags=0 if args.no_opcua else args.extra_tags,
        extra_rate_hz=args.extra_rate_hz,
    )


async def _serve(options: SimulatorOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_simulator(options, stop)
    _log.info("simulator stopped")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # asyncua reports every session and subscription at INFO; its warnings are what matter here.
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.write_extra_config is not None:
        write_extra_tags_config(args.write_extra_config, args.extra_tags)
        _log.info("wrote %d extra tag entries to %s", args.extra_tags, args.write_extra_config)
    options = options_from(args)
    if options.opcua_port is None and options.mqtt_host is None:
        return 0  # nothing to serve: --no-opcua --no-mqtt only writes the config
    asyncio.run(_serve(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
