"""MQTT source (aiomqtt): state topics into the tag store, commands out with readback by state.

The connection loop lives in data_sources/broker_source.py. Each
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

import json
import logging

import aiomqtt

from data_sources.base import SourceConfigError, WriteResult, now_ms
from data_sources.broker_source import BrokerSource
from data_sources.mqtt_availability import AvailabilityTracker
from data_sources.mqtt_templates import Outcome, TopicTemplate, topic_matches
from domain.config_model import MqttSource, MqttTopicTemplate, Tag
from domain.payload_paths import PayloadError, ValuePathSyntaxError, parse_value_path, read_tags_from_payload
from domain.quality import BAD_NO_COMMUNICATION, BAD_WAITING_FOR_INITIAL_DATA
from domain.tag_value import ScalarValue

TOPICS_PER_SUBSCRIBE = 100
PAYLOAD_SAMPLE_BYTES = 120
# Topics remembered as failing (for the "decode again" message) and topics routed to their tags: bounded.
MAX_TRACKED_FAILING_TOPICS = 1_000
MAX_ROUTES = 200_000


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


class MqttDataSource(BrokerSource):
    kind = "mqtt"
    config: MqttSource

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
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
        self._failing_topics: set[str] = set()    # for the "decode again" info; bounded
        self._logged_kinds: set[str] = set()      # each kind of bad input is logged loudly once

    async def _on_connected(self, client: aiomqtt.Client) -> str:
        return f"{await self._subscribe_all(client)} topics subscribed"

    async def _on_broker_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        self._on_message(message.topic.value, message.payload)

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
        self._discovered(tag)

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
                self._offer_readback(tv)
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
        if not tag.command_topic:
            return WriteResult.rejected(f"{tag.name} has no command_topic")
        payload = tag.command_template.replace("{value}", json.dumps(value))
        return await self._publish_and_confirm(tag, value, tag.command_topic, payload, 1, timeout_s,
                                               "published", f"the state topic {tag.topic}")
