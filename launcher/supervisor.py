"""Child processes that are restarted when they die and all stopped together.

Each child runs in its own session so a Ctrl-C reaches only the launcher, which
then stops the children in reverse start order; on Linux each child also gets
SIGTERM if the launcher itself is killed, so nothing is ever left behind.
"""
from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from launcher.embedded_servers import stop_process

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the launcher's own shutdown still stops every child


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start_s: float = 0.0
    started_s: float = field(default=0.0)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *self.args], env=self.env, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        self.started_s = time.monotonic()

    def stop(self, timeout_s: float = 10.0) -> None:
        if stop_process(self.process, timeout_s):
            log.warning("%s did not stop in %.0f s and was killed", self.name, timeout_s)


class Supervisor:
    """Keeps its children running: a dead child is restarted with capped backoff."""

    def __init__(self, max_backoff_s: float = 30.0):
        self.children: list[Child] = []
        self._max_backoff_s = max_backoff_s

    def add(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        child = Child(name, args, env)
        child.start()
        self.children.append(child)
        return child

    def check_once(self) -> None:
        now = time.monotonic()
        for child in self.children:
            code = child.process.poll() if child.process else None
            if code is None or child.next_start_s > now:
                continue
            if child.next_start_s == 0.0:
                # A child that ran for a while before dying starts again quickly; a crash loop backs off.
                ran_s = now - child.started_s
                child.restarts = 0 if ran_s > 60 else child.restarts + 1
                delay_s = min(self._max_backoff_s, 0.5 * 2 ** child.restarts)
                log.error("%s exited with code %s; restarting in %.1f s", child.name, code, delay_s)
                child.next_start_s = now + delay_s
                continue
            child.next_start_s = 0.0
            child.start()
            log.info("%s restarted", child.name)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
