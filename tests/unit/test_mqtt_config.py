"""MQTT plant-file settings: topic templates, availability, per-tag QoS and paths, max_age_s defaults."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.config_model import MqttSource, MqttTopicTemplate, PlantConfig, Tag


def plant(source: dict, tags: list[dict]) -> PlantConfig:
    return PlantConfig.model_validate({"sources": {"broker": {"kind": "mqtt", **source}}, "tags": tags})


def test_a_tag_takes_its_sources_max_age_unless_it_has_its_own():
    config = plant({"max_age_s": 30}, [
        {"name": "a", "source": "broker", "topic": "x/a"},
        {"name": "b", "source": "broker", "topic": "x/b", "max_age_s": 5},
    ])
    assert [config.tag("a").max_age_s, config.tag("b").max_age_s] == [30, 5]
    assert plant({}, [{"name": "a", "source": "broker", "topic": "x/a"}]).tag("a").max_age_s is None
    built = PlantConfig(sources={"broker": MqttSource(kind="mqtt", max_age_s=12)},
                        tags=[Tag(name="a", source="broker", topic="x/a")])
    assert built.tag("a").max_age_s == 12


def test_per_tag_qos_and_payload_paths():
    tag = Tag(name="t", source="s", topic="a/b", value_path="v", timestamp_path="meta.time",
              quality_path="meta.q", qos=2)
    assert (tag.qos, tag.timestamp_path, tag.quality_path) == (2, "meta.time", "meta.q")
    with pytest.raises(ValidationError, match="qos"):
        Tag(name="t", source="s", topic="a/b", qos=3)
    with pytest.raises(ValidationError, match="MQTT settings"):
        Tag(name="t", source="s", node_id="ns=2;s=x", qos=1)


def test_topic_templates_are_checked_against_their_topic():
    template = MqttTopicTemplate(topic="plant/+/temperature", tag="{1}.temperature", area="{1}")
    assert template.max_tags == 10_000
    with pytest.raises(ValidationError, match="no \\+ or # level"):
        MqttTopicTemplate(topic="plant/r1/temperature", tag="r1.temperature")
    with pytest.raises(ValidationError, match="names topic level 3"):
        MqttTopicTemplate(topic="plant/+/temperature", tag="{3}.temperature")
    with pytest.raises(ValidationError, match="not an MQTT topic filter"):
        MqttTopicTemplate(topic="plant/a+/temperature", tag="{1}.t")
    with pytest.raises(ValidationError, match="as many \\+ levels"):
        MqttTopicTemplate(topic="plant/+/temperature", tag="{1}.t", availability={"topic": "plant/status"})
    # After a #, any level may exist at run time.
    assert MqttTopicTemplate(topic="plant/#", tag="{1}.{2}").tag == "{1}.{2}"


def test_a_sources_availability_names_one_device():
    source = MqttSource(kind="mqtt", availability={"topic": "plant/c401/status"})
    assert (source.availability.payload_online, source.availability.payload_offline) == ("online", "offline")
    with pytest.raises(ValidationError, match="no \\+ levels"):
        MqttSource(kind="mqtt", availability={"topic": "plant/+/status"})
    with pytest.raises(ValidationError, match="not #"):
        MqttSource(kind="mqtt", availability={"topic": "plant/#"})
