"""Received-but-not-yet-converted data changes: lets the subscription ask for more right away.

A publish callback that converts thousands of items before returning delays the
next Publish request, so the server sits idle while we work and then sends an
even bigger response. The callback only files the items here; a task converts
them in slices, yielding between slices. Bounded: when full, the oldest items
go first, and are counted.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable, Sequence

SLICE_ITEMS = 1000


class NotificationInbox:
    def __init__(
        self,
        max_items: int,
        convert: Callable[[Sequence[object], int], None],
        on_dropped: Callable[[int], None],
    ):
        self._max_items = max_items
        self._convert = convert
        self._on_dropped = on_dropped
        # [items, receive time (epoch ms), index of the next item to convert]
        self._chunks: deque[list] = deque()
        self._count = 0
        self._filled = asyncio.Event()

    def __len__(self) -> int:
        return self._count

    def put(self, items: Sequence[object], receive_time_ms: int) -> None:
        self._chunks.append([items, receive_time_ms, 0])
        self._count += len(items)
        while self._count > self._max_items:
            items_lost, _time, index = self._chunks.popleft()
            self._count -= len(items_lost) - index
            self._on_dropped(len(items_lost) - index)
        self._filled.set()

    def convert_now(self, limit: int | None = None) -> int:
        """Convert up to `limit` items (all when None), oldest first; how many were converted."""
        converted = 0
        while self._chunks and (limit is None or converted < limit):
            chunk = self._chunks[0]
            items, receive_time_ms, index = chunk
            end = len(items) if limit is None else min(len(items), index + limit - converted)
            self._convert(items[index:end], receive_time_ms)
            converted += end - index
            self._count -= end - index
            if end == len(items):
                self._chunks.popleft()
            else:
                chunk[2] = end
        return converted

    async def run(self) -> None:
        """Convert whatever arrives, a slice at a time, letting other work run in between."""
        while True:
            await self._filled.wait()
            self._filled.clear()
            while self.convert_now(SLICE_ITEMS):
                await asyncio.sleep(0)
