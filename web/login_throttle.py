"""Brute-force protection: at most MAX_FAILURES password guesses per name in a LOCKOUT_S window.

Every attempt is counted in Redis *before* its password is verified (one atomic INCR, so
parallel attempts each get their own number and every web worker sees the same count):
attempts beyond MAX_FAILURES are refused without verifying anything until the window runs
out. Each counted attempt restarts the window; a successful login clears it. Names are
counted exactly as users are stored (case-sensitive).

Per process, a LoginGate bounds the work a login flood can cause: at most
MAX_CONCURRENT_VERIFICATIONS argon2 verifications (64 MiB each) run at once, and at most
MAX_LOGINS_IN_FLIGHT logins wait or run; more are refused as busy, never queued.
Only logging in is throttled: sessions already logged in keep viewing.
"""
from __future__ import annotations

import asyncio
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import redis.asyncio as aioredis

from tag_store import keys

MAX_FAILURES = 5
LOCKOUT_S = 300
FIRST_DELAY_S = 0.25    # before the 2nd attempt within a window; doubles per failure ...
MAX_DELAY_S = 2.0       # ... up to this
MAX_CONCURRENT_VERIFICATIONS = 4
MAX_LOGINS_IN_FLIGHT = 64

# INCR the name's attempts; a counted (allowed) attempt restarts the window, one beyond the
# limit leaves it running (refused attempts do not extend a lock-out). Returns {count, ttl}.
_CLAIM_ATTEMPT = """
local count = redis.call('INCR', KEYS[1])
if count <= tonumber(ARGV[1]) or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {count, redis.call('TTL', KEYS[1])}
"""


def failures_key(name: str) -> str:
    return f"{keys.PREFIX}login_failures:{name[:64]}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """This attempt's number within the window, and the seconds the window has left."""

    number: int
    window_left_s: int

    @property
    def allowed(self) -> bool:
        return self.number <= MAX_FAILURES

    @property
    def delay_s(self) -> float:
        """Wait before verifying: grows with the failures already counted, capped."""
        earlier = self.number - 1
        return 0.0 if earlier <= 0 else min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (earlier - 1))


async def claim_attempt(redis: aioredis.Redis, name: str) -> Attempt:
    """Count one attempt for `name`, before its password is checked."""
    count, ttl = await redis.eval(_CLAIM_ATTEMPT, 1, failures_key(name), MAX_FAILURES, LOCKOUT_S)
    return Attempt(int(count), max(int(ttl), 1))


async def lockout_remaining_s(redis: aioredis.Redis, name: str) -> int:
    """Seconds until `name` may try again; 0 when not locked."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(failures_key(name))
    pipe.ttl(failures_key(name))
    count, ttl = await pipe.execute()
    if count is None or int(count) < MAX_FAILURES:
        return 0
    return max(int(ttl), 1)


async def clear_failures(redis: aioredis.Redis, name: str) -> None:
    await redis.delete(failures_key(name))


class LoginGate:
    """This process's bound on logins in flight and argon2 verifications running at once."""

    def __init__(self, max_in_flight: int = MAX_LOGINS_IN_FLIGHT,
                 max_verifications: int = MAX_CONCURRENT_VERIFICATIONS):
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self.verifications = asyncio.Semaphore(max_verifications)

    @contextmanager
    def admit(self) -> Iterator[bool]:
        """Yields False (and holds nothing) when full: the caller refuses the login as busy."""
        if self._in_flight >= self._max_in_flight:
            yield False
            return
        self._in_flight += 1
        try:
            yield True
        finally:
            self._in_flight -= 1


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoginGate] = weakref.WeakKeyDictionary()


def login_gate() -> LoginGate:
    """The running event loop's gate (one per process in the web app; tests get their own)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = LoginGate()
    return gate
