"""Capped exponential backoff for reconnect loops."""
from __future__ import annotations

import random


class Backoff:
    """Delays of initial_s, 2x, 4x ... up to max_s, each with up to 10 % jitter.

    Jitter keeps many sources that lost the same server from knocking in step.
    """

    def __init__(self, initial_s: float = 0.5, max_s: float = 10.0, factor: float = 2.0, jitter: float = 0.1):
        if initial_s <= 0 or max_s < initial_s or factor < 1:
            raise ValueError("need 0 < initial_s <= max_s and factor >= 1")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self._next_s = initial_s

    def next_delay_s(self) -> float:
        delay_s = self._next_s
        self._next_s = min(self._next_s * self.factor, self.max_s)
        return min(delay_s * (1 + random.uniform(0, self.jitter)), self.max_s)

    def reset(self) -> None:
        self._next_s = self.initial_s
