"""Tags made at run time from wildcard topics: `plant/+/temperature` -> `{1}.temperature`.

{N} is level N of the received topic, counted from 0: on `plant/r201/temperature`
{0} is `plant`, {1} is `r201`. A template makes each tag once, at most max_tags of
them; a name that is not a valid tag name, or is already taken, makes no tag.
Pure bookkeeping, no I/O: the MQTT source publishes what it returns.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from domain.config_model import TAG_NAME_PATTERN, MQTT_TOPIC_LEVEL_REF, MqttTopicTemplate, Tag

_TAG_NAME = re.compile(TAG_NAME_PATTERN)


def topic_matches(filter_levels: list[str], topic_levels: list[str]) -> bool:
    """MQTT filter matching (+ one level, # the rest); topics starting with $ match no wildcard at level 0."""
    if topic_levels and topic_levels[0].startswith("$") and filter_levels and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or (level != "+" and level != topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


def plus_values(filter_levels: list[str], topic_levels: list[str]) -> tuple[str, ...]:
    """The levels a topic put where the filter has +, in order: they name a device."""
    return tuple(topic_levels[i] for i, level in enumerate(filter_levels) if level == "+")


def fill_template(text: str, topic_levels: list[str]) -> str | None:
    """`{1}.temperature` with the topic's levels; None when a level does not exist."""
    try:
        return MQTT_TOPIC_LEVEL_REF.sub(lambda m: topic_levels[int(m.group(1))], text)
    except IndexError:
        return None


class Outcome(StrEnum):
    CREATED = "created"
    INVALID_NAME = "invalid_name"
    NAME_TAKEN = "name_taken"
    LIMIT_REACHED = "limit_reached"


@dataclass
class TopicTemplate:
    """One configured template and the tags it has made so far (at most config.max_tags)."""

    config: MqttTopicTemplate
    source_name: str
    default_max_age_s: float | None
    default_qos: int
    filter_levels: list[str] = field(init=False)
    made: dict[str, Tag] = field(default_factory=dict)   # topic -> the tag made from it

    def __post_init__(self) -> None:
        self.filter_levels = self.config.topic.split("/")

    @property
    def qos(self) -> int:
        return self.config.qos if self.config.qos is not None else self.default_qos

    def matches(self, topic_levels: list[str]) -> bool:
        return topic_matches(self.filter_levels, topic_levels)

    def device_of(self, topic_levels: list[str]) -> tuple[str, ...]:
        return plus_values(self.filter_levels, topic_levels)

    def make_tag(self, topic: str, topic_levels: list[str], taken: set[str] | dict) -> tuple[Outcome, Tag | str]:
        """A new tag for `topic`, or why not (with the name it would have had)."""
        if len(self.made) >= self.config.max_tags:
            return Outcome.LIMIT_REACHED, topic
        name = fill_template(self.config.tag, topic_levels)
        if name is None or not _TAG_NAME.match(name):
            return Outcome.INVALID_NAME, name or self.config.tag
        if name in taken:
            return Outcome.NAME_TAKEN, name
        template = self.config
        try:
            tag = Tag(
                name=name, source=self.source_name, topic=topic, data_type=template.data_type, unit=template.unit,
                description=fill_template(template.description, topic_levels) or template.description,
                area=fill_template(template.area, topic_levels) or template.area,
                value_path=template.value_path, timestamp_path=template.timestamp_path,
                quality_path=template.quality_path, qos=template.qos, range=template.range,
                max_age_s=template.max_age_s if template.max_age_s is not None else self.default_max_age_s,
            )
        except ValueError:
            return Outcome.INVALID_NAME, name
        self.made[topic] = tag
        return Outcome.CREATED, tag
