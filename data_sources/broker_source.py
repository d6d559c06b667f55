"""What every source behind an MQTT broker shares (plain/JSON MQTT, Sparkplug B).

The connection is a visible loop around `async with aiomqtt.Client`: connect,
let the subclass subscribe (`_on_connected`), hand every message to
`_on_broker_message`; on loss every tag turns BadCommunicationError, the reason is
shown, and the loop retries with capped backoff. Writes publish a command and wait
for the device's own data to show the value (`_publish_and_confirm`). Tags a source
discovers go to the tag catalog from here, kept and retried while Redis is away.
"""
from __future__ import annotations

import abc
import asyncio
import functools
import logging
from collections.abc import Callable

import aiomqtt
from redis.exceptions import RedisError

from data_sources.backoff import Backoff
from data_sources.base import DataSource, SourceConfigError, SourceCounters, WriteResult
from data_sources.mqtt_connection import broker_address, new_client, read_credentials
from domain.config_model import MqttConnection, Tag
from domain.quality import BAD_COMMUNICATION_ERROR
from domain.tag_value import ScalarValue, TagValue
from domain.write_rules import readback_matches
from tag_store.source_status import ConnectionState
from tag_store.tag_catalog import publish_discovered_tags
from tag_store.write_requests import WriteStatus

MAX_QUEUED_MESSAGES = 10_000
CATALOG_RETRY_S = 1.0
# Messages taken from the queue in one go before the event loop gets a turn (the writer must flush too).
DRAIN_SLICE = 500


class DropOldestQueue(asyncio.Queue):
    """aiomqtt's incoming queue, bounded: when full the oldest message goes, and is counted.

    The source keeps a reference (`created`) so it can take what is already queued directly.
    """

    def __init__(self, counters: SourceCounters, created: Callable[[DropOldestQueue], None], maxsize: int = 0):
        super().__init__(maxsize=maxsize)
        self._counters = counters
        created(self)

    def put_nowait(self, item: object) -> None:
        if self.full():
            self.get_nowait()
            self._counters.dropped += 1
        super().put_nowait(item)


class ReadbackWaiters:
    """Writes waiting for the device's state message to show the value they sent."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[tuple[Callable[[ScalarValue], bool], asyncio.Future]]] = {}

    def expect(self, tag_name: str, accept: Callable[[ScalarValue], bool]) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tag_name, []).append((accept, future))
        return future

    def forget(self, tag_name: str, future: asyncio.Future) -> None:
        waiters = [w for w in self._waiting.get(tag_name, []) if w[1] is not future]
        if waiters:
            self._waiting[tag_name] = waiters
        else:
            self._waiting.pop(tag_name, None)

    def offer(self, tv: TagValue) -> None:
        for accept, future in self._waiting.get(tv.tag, ()):
            if not future.done() and tv.quality.is_good and accept(tv.value):
                future.set_result(tv.value)

    def __bool__(self) -> bool:
        return bool(self._waiting)


class LastClientError(logging.Handler):
    """The MQTT library's last warning or error, e.g. a TLS alert it only logs before timing out."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


def describe_mqtt_error(exc: aiomqtt.MqttError, client_error: str | None = None) -> str:
    """The broker's or the TLS layer's reason, readable: a refused certificate says so."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) not in text:
        text = f"{text}: {cause}"
    if client_error and client_error not in text:
        text = f"{text} ({client_error})"
    if "CERTIFICATE_REQUIRED" in text:
        return f"TLS: the broker requires a client certificate ({text})"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"TLS: the broker's certificate is not trusted ({text.split('] ', 1)[-1]})"
    return text


class BrokerSource(DataSource):
    config: MqttConnection

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._client_error = LastClientError()
        # Not registered with logging (one per source object): records still reach the source's log.
        self._client_log = logging.Logger(f"{self.log.name}.client")
        self._client_log.parent = self.log
        self._client_log.addHandler(self._client_error)
        self._client: aiomqtt.Client | None = None
        self._incoming: DropOldestQueue | None = None
        self._readback = ReadbackWaiters()
        self._catalog_pending: dict[str, Tag] = {}
        self._catalog_wakeup = asyncio.Event()
        try:
            self.host, self.port = broker_address(self.config)
            self._username, self._password = read_credentials(self.config)
        except SourceConfigError as exc:
            raise SourceConfigError(f"source {self.name}: {exc}") from None

    # -- what a subclass says

    @abc.abstractmethod
    async def _on_connected(self, client: aiomqtt.Client) -> str:
        """Subscribe (and announce); return what is followed, for the status ("12 topics subscribed")."""

    @abc.abstractmethod
    async def _on_broker_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """One incoming message. Hot path."""

    def _will(self) -> aiomqtt.Will | None:
        return None

    def _on_connection_lost(self) -> None:
        """Forget what only holds while connected (called before the tags turn Bad)."""

    # -- the connection

    async def run(self) -> None:
        self.publish_waiting_for_initial_data()
        catalog = asyncio.create_task(self._publish_catalog(), name=f"catalog-{self.name}")
        try:
            await self._connection_loop()
        finally:
            catalog.cancel()
            await asyncio.gather(catalog, return_exceptions=True)

    def _new_client(self) -> aiomqtt.Client:
        return new_client(self.config, self.host, self.port, self._username, self._password, will=self._will(),
                          queue_type=functools.partial(DropOldestQueue, self.counters, self._set_incoming),
                          max_queued_incoming=MAX_QUEUED_MESSAGES, logger=self._client_log)

    def _set_incoming(self, queue: DropOldestQueue) -> None:
        self._incoming = queue

    async def _receive(self, client: aiomqtt.Client) -> None:
        """Every message, in order. aiomqtt hands out one message per task and wait; once behind, that cost
        kept it behind (1,400/s when 50,000/s were offered), so what is already queued is taken directly."""
        async for message in client.messages:
            await self._on_broker_message(client, message)
            queue = self._incoming
            while queue is not None and not queue.empty():
                for _ in range(min(DRAIN_SLICE, queue.qsize())):
                    await self._on_broker_message(client, queue.get_nowait())
                await asyncio.sleep(0)

    async def _connection_loop(self) -> None:
        backoff = Backoff(initial_s=0.5, max_s=self.config.reconnect_max_delay_s)
        where = f"{self.host}:{self.port}"
        while True:
            self.set_state(ConnectionState.CONNECTING, f"connecting to {where}")
            self._client_error.message = None
            reason = "the broker ended the connection"
            try:
                async with self._new_client() as client:
                    following = await self._on_connected(client)
                    self._client = client
                    self.counters.reconnects += self.counters.connects > 0
                    self.counters.connects += 1
                    self.set_state(ConnectionState.CONNECTED, f"{following} on {where}")
                    self.connection_log.connected(f"connected to {where}, {following}")
                    backoff.reset()
                    await self._receive(client)
            except aiomqtt.MqttError as exc:
                reason = describe_mqtt_error(exc, self._client_error.message)
            except Exception as exc:  # noqa: BLE001 - the source must go on; this one is a defect, so loud
                self.log.exception("source %s: unexpected error, reconnecting", self.name)
                reason = f"unexpected {type(exc).__name__}: {exc}"
            finally:
                self._client = None
            self._on_connection_lost()
            self.mark_all_bad(BAD_COMMUNICATION_ERROR)
            self.counters.connect_failures += 1
            self.set_state(ConnectionState.DISCONNECTED, reason)
            self.connection_log.failed(f"broker {where}: {reason}")
            await asyncio.sleep(backoff.next_delay_s())

    # -- writes

    async def _publish_and_confirm(self, tag: Tag, value: ScalarValue, topic: str, payload: str | bytes, qos: int,
                                   timeout_s: float, sent: str, confirmer: str) -> WriteResult:
        """Publish a command, then wait until the device's data shows the value (within the tag's tolerance)."""
        client = self._client
        if client is None:
            return WriteResult.rejected(f"not connected to the MQTT broker {self.host}:{self.port}")
        # Registered before publishing, so an immediate echo is not missed.
        confirmed = self._readback.expect(tag.name, lambda readback: readback_matches(tag, value, readback))
        deadline_s = asyncio.get_running_loop().time() + timeout_s
        try:
            await asyncio.wait_for(client.publish(topic, payload, qos=qos), timeout_s)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            self._readback.forget(tag.name, confirmed)
            return WriteResult.rejected(f"the command could not be published: {type(exc).__name__}: {exc}")
        try:
            remaining_s = max(0.0, deadline_s - asyncio.get_running_loop().time())
            readback = await asyncio.wait_for(confirmed, remaining_s)
            return WriteResult(WriteStatus.DONE, f"{sent} and confirmed by {confirmer}", readback)
        except TimeoutError:
            latest = self.latest(tag.name)
            readback = latest.value if latest is not None else None
            return WriteResult(WriteStatus.TIMED_OUT, f"{sent}, but {confirmer} did not show the value within"
                                                      f" {timeout_s:g} s (last {readback!r})", readback)
        finally:
            self._readback.forget(tag.name, confirmed)

    def _offer_readback(self, tv: TagValue) -> None:
        if self._readback:
            self._readback.offer(tv)

    # -- discovered tags

    def _discovered(self, tag: Tag) -> None:
        self._catalog_pending[tag.name] = tag
        self._catalog_wakeup.set()

    async def _publish_catalog(self) -> None:
        """Discovered definitions to sl:tag_catalog; kept (bounded by the tags themselves) while Redis is away."""
        failing = False
        while True:
            await self._catalog_wakeup.wait()
            self._catalog_wakeup.clear()
            pending, self._catalog_pending = self._catalog_pending, {}
            try:
                await publish_discovered_tags(self._store.redis, list(pending.values()))
                if failing:
                    self.log.info("source %s: discovered tags reach the tag catalog again", self.name)
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    self.log.error("source %s: cannot publish %d discovered tags: %s (retrying)",
                                   self.name, len(pending), exc)
                failing = True
                self._catalog_pending = {**pending, **self._catalog_pending}
                await asyncio.sleep(CATALOG_RETRY_S)
                self._catalog_wakeup.set()
