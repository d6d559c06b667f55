"""MQTT source (aiomqtt): state topics into the tag store, commands out with readback by state.

The connection is a visible loop around `async with aiomqtt.Client`. Each
configured topic is subscribed once (at the highest QoS its tags ask for); one
message may feed many tags (value_path). Topic templates subscribe a wildcard and
make a tag for each new topic that matches (data_sources/mqtt_templates.py),
published to the tag catalog. Payloads that cannot be used turn their tags Bad and
are counted by kind (n.payload_<kind>); the source goes on. Every set that a
stream of messages could grow is bounded.

Time to Bad: when the broker closes the connection (stopped, restarted) every tag
turns BadCommunicationError at once. When the link dies silently, the MQTT
keepalive notices: a PINGREQ goes out after keepalive_s without traffic and the
connection is dropped when no answer came a further keepalive_s later, so tags
turn Bad at most 2 x keepalive_s + 1 s after the last message. The source then
reconnects forever (backoff from 0.5 s doubling to reconnect_max_delay_s) and
subscribes again. A device that announces "offline" on its availability topic
(usually its Last Will, sent by the broker when the device's connection dies)
turns its tags BadNoCommunication at once; its values are ignored until it
announces "online" again.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Callable

import aiomqtt
from redis.exceptions import RedisError

from data_sources.backoff import Backoff
from data_sources.base import DataSource, SourceConfigError, SourceCounters, WriteResult, now_ms
from data_sources.mqtt_connection import broker_address, new_client, read_credentials
from data_sources.mqtt_availability import AvailabilityTracker
from data_sources.mqtt_templates import Outcome, TopicTemplate, topic_matches
from domain.config_model import MqttSource, MqttTopicTemplate, Tag
from domain.payload_paths import PayloadError, ValuePathSyntaxError, parse_value_path, read_tags_from_payload
from domain.quality import BAD_COMMUNICATION_ERROR, BAD_NO_COMMUNICATION, BAD_WAITING_FOR_INITIAL_DATA
from tag_store.tag_catalog import publish_discovered_tags
from domain.tag_value import ScalarValue, TagValue
from domain.write_rules import readback_matches
from tag_store.source_status import ConnectionState
from tag_store.write_requests import WriteStatus

MAX_QUEUED_MESSAGES = 10_000
TOPICS_PER_SUBSCRIBE = 100
PAYLOAD_SAMPLE_BYTES = 120
# Topics remembered as failing (for the "decode again" message) and topics routed to their tags: bounded.
MAX_TRACKED_FAILING_TOPICS = 1_000
MAX_ROUTES = 200_000
CATALOG_RETRY_S = 1.0


def _check_paths(tags: list[Tag], templates: list[MqttTopicTemplate]) -> None:
    """Every value, timestamp and quality path parses: a typo fails at start, not per message."""
    for owner, item in [*((t.name, t) for t in tags), *((t.topic, t) for t in templates)]:
        for key in ("value_path", "timestamp_path", "quality_path"):
            path = getattr(item, key)
            if path is not None:
                try:
                    parse_value_path(path)
                except ValuePathSyntaxError as exc:
                    raise SourceConfigError(f"{owner}: {key}: {exc}") from None


class LastClientError(logging.Handler):
    """The MQTT library's last warning or error, e.g. a TLS alert it only logs before timing out."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


def _describe_mqtt_error(exc: aiomqtt.MqttError, client_error: str | None = None) -> str:
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
        self._client_error = LastClientError()
        # Not registered with logging (one per source object): records still reach the source's log.
        self._client_log = logging.Logger(f"{self.log.name}.client")
        self._client_log.parent = self.log
        self._client_log.addHandler(self._client_error)
        try:
            self.host, self.port = broker_address(self.config)
            self._username, self._password = read_credentials(self.config)
            self._new_client()  # TLS files and settings are checked now, not at the first connection
            _check_paths(self.tags, self.config.topic_templates)
        except SourceConfigError as exc:
            raise SourceConfigError(f"source {self.name}: {exc}") from None
        self._configured_tags = list(self.tags)
        self.tags_by_topic: dict[str, list[Tag]] = {}
        for tag in self.tags:
            self.tags_by_topic.setdefault(tag.topic or "", []).append(tag)
        self._wildcard_topics = [t for t in self.tags_by_topic if "+" in t or "#" in t]
        self._templates = [TopicTemplate(t, self.name, self.config.max_age_s, self.config.qos)
                           for t in self.config.topic_templates]
        self._availability = AvailabilityTracker(self.config, self._templates, self.tags)
        self._routes: dict[str, list[Tag]] = {}   # topic -> its tags, for topics that have tags (bounded)
        self._client: aiomqtt.Client | None = None
        self._readback = ReadbackWaiters()
        self._failing_topics: set[str] = set()    # for the "decode again" info; bounded
        self._logged_kinds: set[str] = set()      # each kind of bad input is logged loudly once
        self._catalog_outbox: list[Tag] = []
        self._catalog_wakeup = asyncio.Event()

    async def run(self) -> None:
        self.publish_waiting_for_initial_data()
        catalog_task = asyncio.create_task(self._publish_discovered_tags(), name=f"catalog-{self.name}")
        try:
            await self._connection_loop()
        finally:
            catalog_task.cancel()
            await asyncio.gather(catalog_task, return_exceptions=True)

    async def _connection_loop(self) -> None:
        backoff = Backoff(initial_s=0.5, max_s=self.config.reconnect_max_delay_s)
        where = f"{self.host}:{self.port}"
        while True:
            self.set_state(ConnectionState.CONNECTING, f"connecting to {where}")
            self._client_error.message = None
            reason = "the broker ended the connection"
            try:
                async with self._new_client() as client:
                    subscribed = await self._subscribe_all(client)
                    self._client = client
                    self.counters.reconnects += self.counters.connects > 0
                    self.counters.connects += 1
                    self.set_state(ConnectionState.CONNECTED, f"{subscribed} topics subscribed on {where}")
                    self.connection_log.connected(f"connected to {where}, {subscribed} topics")
                    backoff.reset()
                    async for message in client.messages:
                        self._on_message(message.topic.value, message.payload)
            except aiomqtt.MqttError as exc:
                reason = _describe_mqtt_error(exc, self._client_error.message)
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
                          max_queued_incoming=MAX_QUEUED_MESSAGES, logger=self._client_log)

    def subscriptions(self) -> dict[str, int]:
        """Topic filter -> QoS: each tag's qos (else the source's), the highest where a topic is shared."""
        wanted: dict[str, int] = {}

        def want(topic: str, qos: int) -> None:
            wanted[topic] = max(qos, wanted.get(topic, 0))

        for tag in self._configured_tags:
            if tag.topic:
                want(tag.topic, tag.qos if tag.qos is not None else self.config.qos)
        for template in self._templates:
            want(template.config.topic, template.qos)
        for topic in self._availability.topics():
            want(topic, self.config.qos)
        return wanted

    async def _subscribe_all(self, client: aiomqtt.Client) -> int:
        topics = list(self.subscriptions().items())
        for start in range(0, len(topics), TOPICS_PER_SUBSCRIBE):
            await client.subscribe(topics[start:start + TOPICS_PER_SUBSCRIBE])
        return len(topics)

    def _tags_for(self, topic: str) -> list[Tag]:
        tags = self._routes.get(topic)
        if tags is not None:
            return tags
        tags = list(self.tags_by_topic.get(topic, ()))
        if self._wildcard_topics or self._templates:
            levels = topic.split("/")
            for pattern in self._wildcard_topics:
                if pattern != topic and topic_matches(pattern.split("/"), levels):
                    tags.extend(self.tags_by_topic[pattern])
            for template in self._templates:
                if template.matches(levels):
                    tags.extend(self._template_tags(template, topic, levels))
        if tags and len(self._routes) < MAX_ROUTES:
            self._routes[topic] = tags
        return tags

    def _template_tags(self, template: TopicTemplate, topic: str, levels: list[str]) -> list[Tag]:
        made = template.made.get(topic)
        if made is not None:
            return [made]
        outcome, result = template.make_tag(topic, levels, self.tags_by_name)
        if outcome is Outcome.CREATED:
            self._add_discovered(result, template, levels)
            return [result]
        if outcome is Outcome.LIMIT_REACHED:
            self.counters.template_limit_reached += 1
            self._log_once("template_limit", "template %s made its max_tags (%d) already; %s makes no tag",
                           template.config.topic, template.config.max_tags, topic)
        else:
            self.counters.template_names_invalid += 1
            why = "is taken by another tag" if outcome is Outcome.NAME_TAKEN else "is not a valid tag name"
            self._log_once(f"template_{outcome}", "template %s: %r for topic %s %s", template.config.topic,
                           result, topic, why)
        return []

    def _add_discovered(self, tag: Tag, template: TopicTemplate, levels: list[str]) -> None:
        self.tags.append(tag)
        self.tags_by_name[tag.name] = tag
        self.counters.template_tags += 1
        self._availability.add_template_tag(tag, template, levels)
        if self._availability.is_offline(tag.name):
            self.mark_tag_bad(tag.name, BAD_NO_COMMUNICATION)
        self._catalog_outbox.append(tag)
        self._catalog_wakeup.set()

    async def _publish_discovered_tags(self) -> None:
        """Discovered tags into the tag catalog, in batches; kept and retried while Redis is away."""
        failing = False
        while True:
            await self._catalog_wakeup.wait()
            self._catalog_wakeup.clear()
            batch, self._catalog_outbox = self._catalog_outbox, []
            try:
                await publish_discovered_tags(self._store.redis, batch)
                if failing:
                    self.log.info("source %s: discovered tags reach the tag catalog again", self.name)
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    self.log.error("source %s: cannot publish %d discovered tags: %s (retrying)",
                                   self.name, len(batch), exc)
                failing = True
                self._catalog_outbox[:0] = batch   # bounded: the templates' max_tags bound the tags
                await asyncio.sleep(CATALOG_RETRY_S)
                self._catalog_wakeup.set()

    def _on_message(self, topic: str, payload: object) -> None:
        """One state message: every tag it feeds gets a value, or Bad with the reason. Hot path."""
        if not isinstance(payload, (bytes, bytearray)):
            payload = b"" if payload is None else str(payload).encode()
        if self._availability.watches(topic):
            self._on_availability(topic, bytes(payload))
            return
        tags = self._tags_for(topic)
        if not tags:
            self.counters.unknown_topics += 1
            self._log_once("unknown_topic", "message on %s, which no tag or template wants (ignored);"
                           " sample %r", topic, bytes(payload[:PAYLOAD_SAMPLE_BYTES]))
            return
        readings = read_tags_from_payload(bytes(payload), tags, now_ms(), self.config.max_payload_bytes)
        first_error = None
        offline = self._availability.any_offline
        for tv, error in readings:
            if offline and self._availability.is_offline(tv.tag):
                continue
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

    def _on_availability(self, topic: str, payload: bytes) -> None:
        """An online/offline announcement (an availability topic carries no values)."""
        online, tag_names = self._availability.announce(topic, payload)
        if online is None:
            self.counters.bad_payloads += 1
            self.counters.payload_wrong_type += 1
            self._log_once("availability", "availability topic %s: %r is neither the online nor the offline"
                           " payload (ignored)", topic, payload[:PAYLOAD_SAMPLE_BYTES])
        elif online:
            self.log.info("source %s: %s announces online (%d tags)", self.name, topic, len(tag_names))
            for name in tag_names:
                self.mark_tag_bad(name, BAD_WAITING_FOR_INITIAL_DATA)
        else:
            self.counters.devices_offline += 1
            self.log.warning("source %s: %s announces offline: %d tags Bad", self.name, topic, len(tag_names))
            for name in tag_names:
                self.mark_tag_bad(name, BAD_NO_COMMUNICATION)

    def _on_bad_payload(self, topic: str, payload: bytes, error: PayloadError) -> None:
        self.counters.bad_payloads += 1
        counter = f"payload_{error.kind}"
        if hasattr(self.counters, counter):
            setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        if len(self._failing_topics) < MAX_TRACKED_FAILING_TOPICS:
            self._failing_topics.add(topic)
        self._log_once(counter, "bad payload on %s: %s; sample (%d bytes): %r",
                       topic, error, len(payload), bytes(payload[:PAYLOAD_SAMPLE_BYTES]))

    def _log_once(self, kind: str, message: str, *args: object) -> None:
        """The first of each kind at error, repeats at debug: a flood of garbage cannot flood the log."""
        level = logging.DEBUG if kind in self._logged_kinds else logging.ERROR
        self._logged_kinds.add(kind)
        self.log.log(level, f"source %s: {message}", self.name, *args)

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
