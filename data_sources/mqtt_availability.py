"""Which devices said they are offline, and which tags that makes Bad.

A source's `availability` topic speaks for all its tags (configured ones and those of
templates without their own). A template's availability topic has the same number of
+ levels as the template's topic; their values name the device: `plant/r201/status`
speaks for the tags made from `plant/r201/temperature`. Pure bookkeeping, no I/O.
"""
from __future__ import annotations

from domain.config_model import MqttAvailability, MqttSource, Tag
from data_sources.mqtt_templates import TopicTemplate, plus_values, topic_matches

SOURCE_DEVICE: tuple = ("<source>",)
# Offline announcements of devices that have no tags yet are kept too (their tags start Bad); bounded.
MAX_OFFLINE_DEVICES = 100_000


class AvailabilityTracker:
    def __init__(self, config: MqttSource, templates: list[TopicTemplate], configured: list[Tag]):
        self._source = config.availability
        self._templates = [(index, t) for index, t in enumerate(templates) if t.config.availability is not None]
        self._device_of: dict[str, tuple] = {}
        self._tags_of: dict[tuple, list[str]] = {}
        self._offline: set[tuple] = set()
        if self._source is not None:
            for tag in configured:
                self._attach(tag.name, SOURCE_DEVICE)

    def topics(self) -> list[str]:
        topics = [self._source.topic] if self._source is not None else []
        return topics + [t.config.availability.topic for _i, t in self._templates]

    @property
    def any_offline(self) -> bool:
        return bool(self._offline)

    def watches(self, topic: str) -> bool:
        if self._source is not None and topic == self._source.topic:
            return True
        if not self._templates:
            return False
        levels = topic.split("/")
        return any(topic_matches(t.config.availability.topic.split("/"), levels) for _i, t in self._templates)

    def is_offline(self, tag_name: str) -> bool:
        device = self._device_of.get(tag_name)
        return device is not None and device in self._offline

    def add_template_tag(self, tag: Tag, template: TopicTemplate, topic_levels: list[str]) -> None:
        for index, candidate in self._templates:
            if candidate is template:
                self._attach(tag.name, (index, template.device_of(topic_levels)))
                return
        if self._source is not None:
            self._attach(tag.name, SOURCE_DEVICE)

    def announce(self, topic: str, payload: bytes) -> tuple[bool | None, list[str]]:
        """(True: online / False: offline / None: neither payload, the tag names it concerns)."""
        devices: list[tuple[tuple, MqttAvailability]] = []
        if self._source is not None and topic == self._source.topic:
            devices.append((SOURCE_DEVICE, self._source))
        levels = topic.split("/")
        for index, template in self._templates:
            filter_levels = template.config.availability.topic.split("/")
            if topic_matches(filter_levels, levels):
                devices.append(((index, plus_values(filter_levels, levels)), template.config.availability))
        word = payload.strip().decode("utf-8", "replace").casefold()
        online: bool | None = None
        names: list[str] = []
        for device, availability in devices:
            if word == availability.payload_offline.casefold():
                online = False
                if len(self._offline) < MAX_OFFLINE_DEVICES:
                    self._offline.add(device)
            elif word == availability.payload_online.casefold():
                online = True
                self._offline.discard(device)
            else:
                continue
            names.extend(self._tags_of.get(device, ()))
        return online, names

    def _attach(self, tag_name: str, device: tuple) -> None:
        self._device_of[tag_name] = device
        self._tags_of.setdefault(device, []).append(tag_name)
