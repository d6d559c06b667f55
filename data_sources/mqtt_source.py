"""MQTT source (aiomqtt): state topics into the tag store, commands out with readback by state.

The connection is a visible loop around `async with aiomqtt.Client`. Each
configured topic is subscribed once; one message may feed many tags (value_path).
Payloads that cannot be used turn their tags Bad and are counted; the source goes on.

Time to Bad: when the broker closes the connection (stopped, restarted) every tag
turns BadCommunicationError at once. When the link dies silently, the MQTT
keepalive notices: a PINGREQ goes out after keepalive_s without traffic and the
connection is dropped when no answer came a further keepalive_s later, so tags
turn Bad at most 2 x keepalive_s + 1 s after the last message.
"""
from __future__ import annotations

import asyncio
import functools
import json
from typing import Callable

import aiomqtt

from data_sources.backoff import Backoff
from data_sources.base import DataSource, SourceConfigError, SourceCounters, WriteResult, now_ms
from data_sources.mqtt_connection import broker_address, new_client, read_credentials
from domain.config_model import MqttSource, Tag
from domain.payload_paths import read_tags_from_payload
from domain.quality import BAD_COMMUNICATION_ERROR
from domain.tag_value import ScalarValue, TagValue
from domain.write_rules import readback_matches
from tag_store.source_status import ConnectionState
from tag_store.write_requests import WriteStatus

MAX_QUEUED_MESSAGES = 10_000
TOPICS_PER_SUBSCRIBE = 100
PAYLOAD_SAMPLE_BYTES = 120


class DropOldestQueue(asyncio.Queue):
    """aiomqtt's incoming queue, bounded: when full the oldest message goes, and is counted."""

    def __init__(self, counters: SourceCounters, maxsize: int = 0):
        super().__init__(maxsize=maxsize)
        self._counters = counters

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


class MqttDataSource(DataSource):
    kind = "mqtt"
    config: MqttSource

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.host, self.port = broker_address(self.config)
            self._username, self._password = read_credentials(self.config)
            self._new_client()  # TLS files and settings are checked now, not at the first connection
        except SourceConfigError as exc:
            raise SourceConfigError(f"source {self.name}: {exc}") from None
        self.tags_by_topic: dict[str, list[Tag]] = {}
        for tag in self.tags:
            self.tags_by_topic.setdefault(tag.topic or "", []).append(tag)
        self._wildcard_topics = [t for t in self.tags_by_topic if "+" in t or "#" in t]
        self._client: aiomqtt.Client | None = None
        self._readback = ReadbackWaiters()
        self._failing_topics: set[str] = set()

    async def run(self) -> None:
        self.publish_waiting_for_initial_data()
        backoff = Backoff(initial_s=0.5, max_s=self.config.reconnect_max_delay_s)
        where = f"{self.host}:{self.port}"
        while True:
            self.set_state(ConnectionState.CONNECTING, f"connecting to {where}")
            reason = "the broker ended the connection"
            try:
                async with self._new_client() as client:
                    await self._subscribe_all(client)
                    self._client = client
                    self.counters.reconnects += self.counters.connects > 0
                    self.counters.connects += 1
                    self.set_state(ConnectionState.CONNECTED, f"{len(self.tags_by_topic)} topics subscribed on {where}")
                    self.connection_log.connected(f"connected to {where}, {len(self.tags_by_topic)} topics")
                    backoff.reset()
                    async for message in client.messages:
                        self._on_message(message.topic.value, message.payload)
            except aiomqtt.MqttError as exc:
                reason = str(exc) or type(exc).__name__
            except Exception as exc:  # noqa: BLE001 - the source must go on; this one is a defect, so loud
                self.log.exception("source %s: unexpected error, reconnecting", self.name)
                reason = f"unexpected {type(exc).__name__}: {exc}"
            finally:
                self._client = None
            self.mark_all_bad(BAD_COMMUNICATION_ERROR)
            self.counters.connect_failures += 1
            self.set_state(ConnectionState.DISCONNECTED, reason)
            self.connection_log.failed(f"broker {where}: {reason}")
            await asyncio.sleep(backoff.next_delay_s())

    def _new_client(self) -> aiomqtt.Client:
        return new_client(self.config, self.host, self.port, self._username, self._password,
                          queue_type=functools.partial(DropOldestQueue, self.counters),
                          max_queued_incoming=MAX_QUEUED_MESSAGES)

    async def _subscribe_all(self, client: aiomqtt.Client) -> None:
        topics = list(self.tags_by_topic)
        for start in range(0, len(topics), TOPICS_PER_SUBSCRIBE):
            await client.subscribe([(topic, 1) for topic in topics[start:start + TOPICS_PER_SUBSCRIBE]])

    def _tags_for(self, topic: str) -> list[Tag]:
        tags = self.tags_by_topic.get(topic)
        if tags is not None and topic not in self._wildcard_topics:
            return tags
        matching: list[Tag] = list(tags or [])
        for pattern in self._wildcard_topics:
            if pattern != topic and aiomqtt.Topic(topic).matches(pattern):
                matching.extend(self.tags_by_topic[pattern])
        return matching

    def _on_message(self, topic: str, payload: object) -> None:
        """One state message: every tag it feeds gets a value, or Bad with the reason. Hot path."""
        tags = self._tags_for(topic)
        if not tags:
            return
        if not isinstance(payload, (bytes, bytearray)):
            payload = b"" if payload is None else str(payload).encode()
        readings = read_tags_from_payload(bytes(payload), tags, now_ms())
        first_error = None
        for tv, error in readings:
            if error is None:
                self.publish_value(tv)
                if self._readback:
                    self._readback.offer(tv)
            else:
                first_error = first_error or error
                self.mark_tag_bad(tv.tag, tv.quality, tv.receive_time_ms)
        if first_error is not None:
            self._on_bad_payload(topic, payload, first_error)
        elif topic in self._failing_topics:
            self._failing_topics.discard(topic)
            self.log.info("source %s: payloads on %s decode again", self.name, topic)

    def _on_bad_payload(self, topic: str, payload: bytes, error: Exception) -> None:
        self.counters.bad_payloads += 1
        if topic in self._failing_topics:
            self.log.debug("source %s: bad payload on %s: %s", self.name, topic, error)
            return
        self._failing_topics.add(topic)
        sample = bytes(payload[:PAYLOAD_SAMPLE_BYTES])
        self.log.error("source %s: bad payload on %s: %s; sample (%d bytes): %r",
                       self.name, topic, error, len(payload), sample)

    async def write(self, tag: Tag, value: ScalarValue, timeout_s: float) -> WriteResult:
        """Publish the command at QoS 1, then wait for the state topic to show the value."""
        client = self._client
        if client is None:
            return WriteResult.rejected(f"not connected to the MQTT broker {self.host}:{self.port}")
        if not tag.command_topic:
            return WriteResult.rejected(f"{tag.name} has no command_topic")
        payload = tag.command_template.replace("{value}", json.dumps(value))
        # Registered before publishing, so an immediate echo is not missed.
        confirmed = self._readback.expect(tag.name, lambda readback: readback_matches(tag, value, readback))
        deadline_s = asyncio.get_running_loop().time() + timeout_s
        try:
            await asyncio.wait_for(client.publish(tag.command_topic, payload, qos=1), timeout_s)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            self._readback.forget(tag.name, confirmed)
            return WriteResult.rejected(f"the command could not be published: {type(exc).__name__}: {exc}")
        try:
            remaining_s = max(0.0, deadline_s - asyncio.get_running_loop().time())
            readback = await asyncio.wait_for(confirmed, remaining_s)
            return WriteResult(WriteStatus.DONE, "published and confirmed by the state topic", readback)
        except TimeoutError:
            latest = self.latest(tag.name)
            readback = latest.value if latest is not None else None
            return WriteResult(
                WriteStatus.TIMED_OUT,
                f"published, but {tag.topic} did not show the value within {timeout_s:g} s (last {readback!r})",
                readback)
        finally:
            self._readback.forget(tag.name, confirmed)
