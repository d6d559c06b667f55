"""Stopping asyncio tasks that talk to Redis, despite a Python 3.11 cancellation bug."""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: list[asyncio.Task], grace_s: float = 0.5, attempts: int = 20) -> None:
    """Cancel the tasks and wait until they have ended, cancelling again when one ignored it.

    Python 3.11's asyncio.wait_for (which redis-py calls on every send) swallows a
    cancellation that arrives just as the awaited call completes; a second cancel
    then lands at the task's next await.
    """
    for _ in range(attempts):
        pending = [task for task in tasks if not task.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=grace_s)
    still_running = [task.get_name() for task in tasks if not task.done()]
    if still_running:
        log.error("tasks would not stop: %s", ", ".join(still_running))
