"""Helpers for the data source integration tests: run tasks, read back what reached Redis."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Awaitable, Callable

import redis.asyncio as aioredis

from tag_store.cancellation import cancel_and_wait
from domain.tag_value import TagValue
from tag_store import keys
from tag_store.codec import decode_tag_value, tag_value_from_dict
from tag_store.write_requests import WriteOutcome, WriteRequest, submit_write, wait_for_outcome


@contextlib.asynccontextmanager
async def running(*coroutines: Awaitable[None]):
    """Run the coroutines as tasks for the duration of the block; a task that dies fails the test."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        yield tasks
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()
    finally:
        await cancel_and_wait(tasks)


async def latest(redis: aioredis.Redis, tag: str) -> TagValue | None:
    raw = await redis.hget(keys.LATEST, tag)
    return None if raw is None else decode_tag_value(tag, raw)


async def wait_for_latest(
    redis: aioredis.Redis, tag: str, accept: Callable[[TagValue], bool], timeout_s: float = 5.0
) -> TagValue:
    """The first latest value of `tag` that `accept`s; fails with the last one seen."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = await latest(redis, tag)
        if seen is not None and accept(seen):
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"{tag} did not reach the expected state within {timeout_s} s; last: {seen}")


async def history(redis: aioredis.Redis, tag: str) -> list[TagValue]:
    return [decode_tag_value(tag, fields[b"d"]) for _id, fields in await redis.xrange(keys.history(tag))]


async def changes(redis: aioredis.Redis) -> list[TagValue]:
    """Every value in the CHANGES feed, in order."""
    found = []
    for _id, fields in await redis.xrange(keys.CHANGES):
        for tag, encoded in json.loads(fields[b"b"]).items():
            found.append(tag_value_from_dict(tag, encoded))
    return found


async def request_write(redis: aioredis.Redis, source: str, tag: str, value, timeout_s: float = 5.0) -> WriteOutcome:
    """What the web app does: a request on the source's stream, then wait for the answer."""
    request = WriteRequest.new(tag, value, "test-operator", int(time.time() * 1000), timeout_s)
    await submit_write(redis, source, request)
    outcome = await wait_for_outcome(redis, request.request_id, timeout_s + 2)
    assert outcome is not None, f"no answer to the write of {tag}"
    return outcome


async def wait_for_write_group(redis: aioredis.Redis, source: str, timeout_s: float = 5.0) -> None:
    """The handler reads from "$" on first start: requests before its group exists are not its own."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if await redis.xinfo_groups(keys.write_requests(source)):
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the write handler of {source} did not start")


class BlackholeProxy:
    """A TCP proxy on a free port whose open connections can be made to go silent.

    `blackhole()` drops everything on the connections open at that moment, without
    closing them: the link looks alive to both ends, as with a pulled cable.
    Connections made afterwards are forwarded normally.
    """

    def __init__(self, target_port: int, port: int):
        self.target_port = target_port
        self.port = port
        self._opened = 0
        self._silent_below = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> BlackholeProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        return self

    def blackhole(self) -> None:
        self._silent_below = self._opened

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        number = self._opened
        self._opened += 1
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        self._writers += [client_writer, server_writer]
        await asyncio.gather(self._pump(number, client_reader, server_writer),
                             self._pump(number, server_reader, client_writer), return_exceptions=True)

    async def _pump(self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if number < self._silent_below:
                continue
            writer.write(data)
            await writer.drain()
        writer.close()


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(0.02)
