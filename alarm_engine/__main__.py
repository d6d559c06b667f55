"""`python -m alarm_engine [--config FILE]`: run the authoritative alarm engine."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from alarm_engine.engine import run_engine
from tag_store.startup import StartupError, load_plant_and_redis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alarm_engine", description=__doc__)
    parser.add_argument("--config", help="plant file (default: $STACKLIGHT_CONFIG or the demo plant)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s alarm_engine %(levelname)s %(name)s: %(message)s")
    try:
        config, redis_url = load_plant_and_redis(args.config)
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        asyncio.run(run_engine(redis_url, config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
