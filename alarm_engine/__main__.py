"""`python -m alarm_engine [--config FILE]`: run the authoritative alarm engine and the journal archiver.

Both run in this process. Neither is meant to stop: if one fails (or returns) the other is
stopped too and the process exits non-zero, so the launcher's supervisor restarts both.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import redis.asyncio as aioredis

from alarm_engine.engine import run_engine
from alarm_engine.journal_archive import JournalArchive, journal_archive_path, run_journal_archiver
from domain.config_model import PlantConfig
from tag_store.cancellation import cancel_and_wait
from tag_store.startup import StartupError, load_plant_and_redis

log = logging.getLogger("alarm_engine")


async def serve(redis_url: str, config: PlantConfig) -> None:
    """Run the engine and the archiver until one of them ends; that one's error propagates."""
    redis = aioredis.Redis.from_url(redis_url, socket_connect_timeout=5)
    archive = JournalArchive(journal_archive_path(config))
    tasks = [
        asyncio.create_task(run_engine(redis_url, config), name="alarm engine"),
        asyncio.create_task(run_journal_archiver(redis, archive, config.alarm_system.journal_retention_days),
                            name="alarm journal archiver"),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # raises the failure, if it was one
        raise RuntimeError(f"{', '.join(t.get_name() for t in done)} stopped unexpectedly")
    finally:
        await cancel_and_wait(tasks)
        await redis.aclose()
        archive.close()


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
        asyncio.run(serve(redis_url, config))
    except KeyboardInterrupt:
        pass
    except Exception:  # noqa: BLE001 - say what failed, then exit non-zero for the supervisor to restart us
        log.exception("alarm engine process failed; exiting for a restart")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
