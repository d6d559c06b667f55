"""`python -m historian [--config FILE]`: keep every tag's history on disk (docs/historian.md).

Follows the sample feed in Redis into Parquet files under data_dir until SIGTERM or SIGINT,
and archives the audit trail (audit_trail/archiver.py, docs/audit.md) beside it;
then writes everything it has read and exits 0 (1 when samples could not be written, 2 for
a bad plant file). Redis and disk outages are waited out, never a reason to exit.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import redis.asyncio as aioredis

from audit_trail.archiver import run_audit_archiver
from domain.config_model import PlantConfig
from historian.service import Historian
from tag_store.cancellation import cancel_and_wait
from tag_store.startup import StartupError, load_plant_and_redis

log = logging.getLogger("historian")


async def serve(redis_url: str, config: PlantConfig) -> bool:
    """Run until SIGTERM / SIGINT; True when everything read is on disk."""
    # socket_timeout above the longest blocking read: a hung Redis is noticed, not waited on forever.
    redis = aioredis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=10)
    historian = Historian(redis, config, Path(config.data_dir))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, historian.stop)
    audit_archiver = asyncio.create_task(run_audit_archiver(redis, config), name="audit archiver")
    try:
        return await historian.run()
    finally:
        await cancel_and_wait([audit_archiver])
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m historian", description=__doc__)
    parser.add_argument("--config", help="plant file (default: $STACKLIGHT_CONFIG or the demo plant)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s historian %(levelname)s %(name)s: %(message)s")
    try:
        config, redis_url = load_plant_and_redis(args.config)
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        complete = asyncio.run(serve(redis_url, config))
    except Exception:  # noqa: BLE001 - say what failed, then exit non-zero for the supervisor to restart us
        log.exception("historian process failed; exiting for a restart")
        return 1
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
