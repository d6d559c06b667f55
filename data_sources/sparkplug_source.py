"""Sparkplug B source (aiomqtt): edge nodes' births, data and deaths into the tag store; writes by NCMD / DCMD.

Stacklight is a Sparkplug Host Application: with a host_id it publishes its STATE
(spBv1.0/STATE/<host_id>, retained, QoS 1: {"online": true, "timestamp": ms}, its will
the same with false) so that edge nodes know it is there. What each message means is
decided in domain/sparkplug_model.py; this module does the I/O: subscribe, decode, ask for
rebirths (NCMD "Node Control/Rebirth", at most once per rebirth_min_interval_s per node),
publish values and Bad marks, and publish the tags that births discover to the tag catalog.

Time to Bad: a death certificate (NDEATH, the node's will; DDEATH) turns its metrics
BadNoCommunication at once; a lost broker connection turns every tag BadCommunicationError
(at most 2 x keepalive_s + 1 s after a silent link dies, as for the MQTT source).
"""
from __future__ import annotations

import asyncio
import json
import time

import aiomqtt

from data_sources.base import SourceConfigError, WriteResult, now_ms
from data_sources.broker_source import BrokerSource
from data_sources.sparkplug.codec import decode, encode
from domain.config_model import DataType, SparkplugSource, Tag
from domain.quality import BAD_TYPE_MISMATCH
from domain.sparkplug_host import BirthMetric, MetricUpdate, Outcome, Problem, RebirthLimiter, SparkplugHost
from domain.sparkplug_model import (
    BAD_DEATH,
    REBIRTH_METRIC,
    STACKLIGHT_TYPES,
    MessageType,
    Metric,
    MetricKey,
    NodeKey,
    Payload,
    SparkplugDecodeError,
    SparkplugType,
    command_topic,
    is_session_metric,
    parse_metric_address,
    parse_topic,
    raw_for_write,
    state_topic,
    subscriptions,
    tag_name_for,
)
from domain.tag_value import ScalarValue, TagValue

MAX_DISCOVERED_TAGS = 100_000
MAX_LOGGED_PLACES = 1_000          # edge nodes whose bad payloads were logged (then only counted)
PAYLOAD_SAMPLE_BYTES = 120


class SparkplugDataSource(BrokerSource):
    kind = "sparkplug"
    config: SparkplugSource

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._state_timestamp_ms = 0
        try:
            self._new_client()  # TLS files and settings are checked now, not at the first connection
        except SourceConfigError as exc:
            raise SourceConfigError(f"source {self.name}: {exc}") from None
        self.sparkplug = SparkplugHost()
        self._rebirths = RebirthLimiter(self.config.rebirth_min_interval_s)
        self._rebirths_due: set[NodeKey] = set()
        self._tags_by_key: dict[MetricKey, list[str]] = {}
        self._keys_by_node: dict[NodeKey, set[MetricKey]] = {}
        self._configured_keys: set[MetricKey] = set()
        for tag in self.tags:
            if tag.metric is not None:
                key = parse_metric_address(tag.metric)
                self._index(key, tag.name)
                self._configured_keys.add(key)
        self._logged_places: set[str] = set()
        self._state_task: asyncio.Task | None = None

    # -- connection

    async def _on_connected(self, client: aiomqtt.Client) -> str:
        topics = subscriptions(self.config.group_ids, self._state_host_id)
        await client.subscribe([(topic, self.config.qos) for topic in topics])
        await self._publish_state(client, online=True)
        return f"following {', '.join(topics)}"

    async def _on_broker_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        self._on_message(message.topic.value, message.payload)
        if self._rebirths_due:
            await self._request_rebirths(client)

    def _on_connection_lost(self) -> None:
        # What happened while we were away is unknown: every node must be born again to us.
        self.sparkplug.forget_all()

    @property
    def _state_host_id(self) -> str | None:
        return self.config.host_id if self.config.publish_state else None

    def _state_payload(self, online: bool) -> bytes:
        # The birth and its will carry the same timestamp (Sparkplug 3.0, host application STATE).
        return json.dumps({"online": online, "timestamp": self._state_timestamp_ms}).encode()

    def _will(self) -> aiomqtt.Will | None:
        if self._state_host_id is None:
            return None
        # Made for each connection: its STATE birth and this will carry the same, new timestamp.
        self._state_timestamp_ms = now_ms()
        return aiomqtt.Will(state_topic(self._state_host_id), self._state_payload(False), qos=1, retain=True)

    async def _publish_state(self, client: aiomqtt.Client, *, online: bool) -> None:
        if self._state_host_id is not None:
            await client.publish(state_topic(self._state_host_id), self._state_payload(online), qos=1, retain=True)

    # -- messages

    def _on_message(self, topic_text: str, payload: object) -> None:
        """One message from the broker. Hot path: no awaits; rebirth requests are collected."""
        data = bytes(payload) if isinstance(payload, (bytes, bytearray)) else str(payload or "").encode()
        try:
            topic = parse_topic(topic_text)
        except SparkplugDecodeError as exc:
            self._bad_payload(topic_text, topic_text, data, exc)
            return
        if topic.message_type is MessageType.STATE:
            self._on_state(topic.node, data)
            return
        if topic.message_type in (MessageType.NCMD, MessageType.DCMD):
            return   # commands (ours or another host's) are not data
        try:
            decoded = decode(data)
        except SparkplugDecodeError as exc:
            self.counters.sparkplug_decode_errors += 1
            self._bad_payload(str(topic.node_key), topic_text, data, exc)
            return
        self._apply(self.sparkplug.on_message(topic, decoded, now_ms()), topic.message_type)

    def _on_state(self, host_id: str, data: bytes) -> None:
        """Our own STATE topic says offline (an old will) while we are connected: say online again."""
        try:
            online = json.loads(data).get("online")
        except (ValueError, AttributeError):
            online = None
        if host_id == self._state_host_id and online is False and self._client is not None and not self._state_task:
            self._state_task = asyncio.get_running_loop().create_task(self._publish_state(self._client, online=True))
            self._state_task.add_done_callback(self._state_published)

    def _state_published(self, task: asyncio.Task) -> None:
        self._state_task = None
        if not task.cancelled() and task.exception() is not None:
            self.log.warning("source %s: could not publish STATE online again: %s", self.name, task.exception())

    def _apply(self, outcome: Outcome, kind: MessageType) -> None:
        if outcome.ignored:
            if outcome.detail:
                self.log.info("source %s: %s", self.name, outcome.detail)
            return
        if kind in (MessageType.NBIRTH, MessageType.DBIRTH):
            self.counters.sparkplug_births += 1
            self._discover(outcome.births)
        for update in outcome.updates:
            self._publish_update(update)
        for node, device in outcome.dead:
            self.counters.sparkplug_deaths += 1
            self._mark_dead(node, device)
        for problem in outcome.problems:
            if problem is Problem.SEQ_GAP:
                self.counters.sparkplug_seq_gaps += 1
            elif problem in (Problem.UNKNOWN_ALIAS, Problem.NOT_BORN):
                self.counters.sparkplug_unknown_aliases += 1
        if outcome.detail and outcome.problems:
            self.log.info("source %s: %s", self.name, outcome.detail)
        if outcome.rebirth is not None:
            self._rebirths_due.add(outcome.rebirth)

    def _publish_update(self, update: MetricUpdate) -> None:
        for name in self._tags_by_key.get(update.key, ()):
            tag = self.tags_by_name[name]
            value, quality = _as_tag_type(tag, update.value), update.quality
            if quality.is_good and value is None:
                quality = BAD_TYPE_MISMATCH
            if not quality.is_good and value is None:
                self.mark_tag_bad(name, quality, update.source_time_ms)
                continue
            tv = TagValue(name, value, quality, update.source_time_ms, now_ms(), update.source_time_is_receive_time)
            self.publish_value(tv)
            self._offer_readback(tv)

    def _mark_dead(self, node: NodeKey, device: str | None) -> None:
        at_ms = now_ms()
        for key in self._keys_by_node.get(node, ()):
            if device is None or key.device == device:
                for name in self._tags_by_key[key]:
                    self.mark_tag_bad(name, BAD_DEATH, at_ms)

    def _bad_payload(self, place: str, topic: str, data: bytes, error: Exception) -> None:
        """Counted always; logged with a sample the first time per edge node, then quietly."""
        self.counters.bad_payloads += 1
        if place in self._logged_places or len(self._logged_places) >= MAX_LOGGED_PLACES:
            self.log.debug("source %s: bad message on %s: %s", self.name, topic, error)
            return
        self._logged_places.add(place)
        self.log.error("source %s: bad message on %s: %s; sample (%d bytes): %r (further ones counted quietly)",
                       self.name, topic, error, len(data), data[:PAYLOAD_SAMPLE_BYTES])

    async def _request_rebirths(self, client: aiomqtt.Client) -> None:
        due, self._rebirths_due = self._rebirths_due, set()
        now_s = time.monotonic()
        for node in due:
            if not self._rebirths.allow(node, now_s):
                continue
            payload = encode(Payload(timestamp_ms=now_ms(), metrics=(
                Metric(name=REBIRTH_METRIC, datatype=SparkplugType.BOOLEAN, raw=True),)))
            topic = command_topic(MetricKey(node.group, node.node, "", REBIRTH_METRIC))
            await client.publish(topic, payload, qos=0)
            self.counters.sparkplug_rebirths_requested += 1
            self.log.info("source %s: asked %s for a rebirth", self.name, node)

    # -- discovery

    def _index(self, key: MetricKey, tag_name: str) -> None:
        self._tags_by_key.setdefault(key, []).append(tag_name)
        self._keys_by_node.setdefault(key.node_key, set()).add(key)

    def _discover(self, births: list[BirthMetric]) -> None:
        if not self.config.discover:
            return
        for birth in births:
            data_type = STACKLIGHT_TYPES.get(birth.datatype)
            if data_type is None or birth.key in self._configured_keys or is_session_metric(birth.key.name):
                continue
            name = tag_name_for(self.config.tag_template, birth.key)
            known = self.tags_by_name.get(name or "")
            if known is not None and known.metric != birth.key.address:
                name = None   # the template gave the name of another tag
            if name is None:
                self._bad_payload(f"name:{birth.key.address}", birth.key.address, b"",
                                  ValueError(f"metric {birth.key.address!r} gives no usable tag name"))
                continue
            tag = Tag(name=name, source=self.name, data_type=data_type, unit=birth.unit, metric=birth.key.address,
                      description=f"Sparkplug B {birth.key.address}", max_age_s=self.config.max_age_s)
            if known == tag:
                continue
            if known is None:
                if len(self._tags_by_key) >= MAX_DISCOVERED_TAGS + len(self._configured_keys):
                    continue
                self.tags.append(tag)
                self._index(birth.key, name)
                self.counters.sparkplug_tags_discovered += 1
            else:
                self.tags[self.tags.index(known)] = tag
            self.tags_by_name[name] = tag
            self._discovered(tag)

    # -- writes

    async def write(self, tag: Tag, value: ScalarValue, timeout_s: float) -> WriteResult:
        """NCMD / DCMD with the metric by name (and alias), QoS 0; confirmed by the next NDATA / DDATA."""
        if tag.metric is None:
            return WriteResult.rejected(f"{tag.name} has no Sparkplug B metric")
        key = parse_metric_address(tag.metric)
        datatype = self.sparkplug.datatype_of(key)
        if not self.sparkplug.is_alive(key) or datatype is None:
            return WriteResult.rejected(f"{tag.metric} is not online (no birth of its node or device)")
        try:
            raw = raw_for_write(datatype, value)
        except ValueError as exc:
            return WriteResult.rejected(f"{tag.metric}: {exc}")
        at_ms = now_ms()
        payload = encode(Payload(timestamp_ms=at_ms, metrics=(Metric(
            name=key.name, alias=self.sparkplug.alias_of(key), timestamp_ms=at_ms, datatype=datatype, raw=raw),)))
        kind = "DCMD" if key.device else "NCMD"
        return await self._publish_and_confirm(tag, value, command_topic(key), payload, 0, timeout_s,
                                               f"{kind} sent", "the edge node's data")


def _as_tag_type(tag: Tag, value: ScalarValue) -> ScalarValue:
    """The metric's value as the tag's data type; None when it is not one (a configured tag of another type)."""
    if value is None:
        return None
    if tag.data_type is DataType.BOOL:
        return value if isinstance(value, bool) else None
    if tag.data_type is DataType.STRING:
        return value if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if tag.data_type is DataType.INT:
        return value if isinstance(value, int) else (int(value) if value.is_integer() else None)
    return float(value) if isinstance(value, int) and abs(value) < 2**53 else value
