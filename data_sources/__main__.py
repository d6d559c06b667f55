"""`python -m data_sources [--config FILE] [--source NAME ...]`: values in, writes out.

Exit codes: 0 after a clean stop (SIGINT / SIGTERM), 2 when the configuration
(file, Redis URL, source settings or secrets) is unusable, 1 on a crash.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from data_sources.base import SourceConfigError
from data_sources.library_logging import quiet_library_loggers
from tag_store.startup import StartupError, load_plant_and_redis


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m data_sources", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="plant file (default: $STACKLIGHT_CONFIG, else the demo plant)")
    parser.add_argument("--source", action="append", metavar="NAME",
                        help="run only this source (repeatable; default: every source in the file)")
    parser.add_argument("--log-level", default=os.environ.get("STACKLIGHT_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_library_loggers(debug=logging.getLogger().level <= logging.DEBUG)
    try:
        config, redis_url = load_plant_and_redis(args.config)
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 2
    names = args.source or list(config.sources)
    unknown = [name for name in names if name not in config.sources]
    if unknown:
        print(f"unknown source(s): {', '.join(unknown)}; the plant file has {', '.join(config.sources)}",
              file=sys.stderr)
        return 2
    from data_sources.service import serve  # noqa: PLC0415 - protocol libraries load only when needed

    try:
        asyncio.run(serve(config, redis_url, names, Path(config.data_dir)))
    except SourceConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
