"""The plant configuration: sources, tags and their alarms, validated once at start.

These pydantic models are the edge where a YAML file becomes trusted data.
Everything after loading reads frozen models; nothing re-validates.
Secrets never live here: a source names an environment variable or a file.
"""
from __future__ import annotations

import math
import re
from enum import StrEnum
from ipaddress import ip_network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from domain.alarms.settings import AlarmSystemSettings, AnyAlarm, TagAlarms
from domain.historian_settings import HistorianSettings

TAG_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$"
# An OPC UA node id as written in a plant file: "i=2253", "ns=2;s=Tank1", "nsu=urn:plc;s=Tank1".
NODE_ID_PATTERN = r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$"
# The least role that may write a tag (the web's roles, by name: domain does not import web).
WriteRole = Literal["operator", "engineer", "admin"]


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a plant file must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"

    @property
    def is_numeric(self) -> bool:
        return self in (DataType.FLOAT, DataType.INT)


class SecretRef(_Strict):
    """Where a secret comes from: an environment variable or a file (first line)."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self


class Credentials(_Strict):
    username: str
    password: SecretRef


class OpcUaSecurityPolicy(StrEnum):
    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128Sha256RsaOaep"
    AES256_SHA256_RSAPSS = "Aes256Sha256RsaPss"


class OpcUaSecurityMode(StrEnum):
    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class OpcUaSecurity(_Strict):
    policy: OpcUaSecurityPolicy
    mode: OpcUaSecurityMode

    @model_validator(mode="after")
    def _policy_matches_mode(self) -> OpcUaSecurity:
        none_policy = self.policy is OpcUaSecurityPolicy.NONE
        none_mode = self.mode is OpcUaSecurityMode.NONE
        if none_policy != none_mode:
            raise ValueError("policy None goes with mode None, and only with it")
        return self


class Deadband(_Strict):
    """OPC UA data-change deadband: absolute (engineering units) or percent of the EURange."""

    absolute: Annotated[float, Field(ge=0)] | None = None
    percent: Annotated[float, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Deadband:
        if (self.absolute is None) == (self.percent is None):
            raise ValueError("give exactly one of 'absolute' or 'percent'")
        return self


class DeviceAlarms(_Strict):
    """OPC UA Alarms & Conditions: the server's conditions shown in Stacklight's alarm list.

    Severity (1..1000) becomes a priority: at least priority_from_severity[0] -> 1,
    at least [1] -> 2, at least [2] -> 3, below that 4.
    """

    # Objects whose events are followed; default the Server object, which sees every event of the server.
    notifiers: Annotated[list[Annotated[str, Field(pattern=NODE_ID_PATTERN)]], Field(min_length=1)] = ["i=2253"]
    # "" puts an alarm in its source tag's area when the condition's source node is a configured tag.
    area: str = ""
    priority_from_severity: tuple[
        Annotated[int, Field(ge=1, le=1000)], Annotated[int, Field(ge=1, le=1000)], Annotated[int, Field(ge=1, le=1000)]
    ] = (800, 600, 400)

    @model_validator(mode="after")
    def _descending(self) -> DeviceAlarms:
        first, second, third = self.priority_from_severity
        if not first > second > third:
            raise ValueError("priority_from_severity must be three severities from high to low, e.g. [800, 600, 400]")
        return self


class OpcUaSource(_Strict):
    kind: Literal["opcua"]
    endpoint: Annotated[str, Field(pattern=r"^opc\.tcp://")]
    # Security is required on purpose: an unencrypted link must be chosen, never defaulted.
    security: OpcUaSecurity
    credentials: Credentials | None = None
    publishing_interval_ms: Annotated[int, Field(ge=10, le=60_000)] = 250
    sampling_interval_ms: Annotated[int, Field(ge=0, le=60_000)] = 100
    # Tags turn Bad_NoCommunication when nothing (data or keep-alive) arrived for this long.
    stale_after_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    reconnect_max_delay_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    write_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    # Per-source defaults for every tag's monitored item (a tag may override each).
    queue_size: Annotated[int, Field(ge=1, le=10_000)] = 10
    deadband: Deadband | None = None
    # Large plants: items are spread over several subscriptions, and those over several connections.
    max_items_per_subscription: Annotated[int, Field(ge=1, le=100_000)] = 1000
    max_items_per_connection: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    # Stacklight's own certificate and key; default: created on first use under data_dir/pki/.
    client_certificate: str | None = None
    client_private_key: str | None = None
    # Trust an unknown server certificate the first time it is seen (logged); off by default.
    trust_on_first_use: bool = False
    # A CA-issued server certificate needs its CA's current revocation list in pki/crl/ (OPC UA Part 4).
    require_revocation_lists: bool = True
    # OPC UA Alarms & Conditions from this server into the alarm list; None: not followed.
    device_alarms: DeviceAlarms | None = None


class MqttTls(_Strict):
    """TLS to the broker. Hostname checking stays on unless switched off on purpose."""

    ca_file: str | None = None          # None: the system's trusted CAs
    client_certificate: str | None = None
    client_private_key: str | None = None
    check_hostname: bool = True

    @model_validator(mode="after")
    def _pair(self) -> MqttTls:
        if (self.client_certificate is None) != (self.client_private_key is None):
            raise ValueError("client_certificate and client_private_key must be configured together")
        return self


class MqttConnection(_Strict):
    """How to reach a broker; shared by plain/JSON MQTT sources and Sparkplug B sources."""

    # No host means "the embedded broker that Stacklight starts for itself".
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None   # default 1883, or 8883 with tls
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    tls: MqttTls | None = None
    client_id: str | None = None
    keepalive_s: Annotated[int, Field(ge=1, le=3600)] = 15
    credentials: Credentials | None = None
    # False: a persistent session (the broker keeps subscriptions and QoS 1/2 messages while we are away);
    # needs a client_id. With MQTT 5 the session lasts session_expiry_s after a disconnect.
    clean_session: bool = True
    session_expiry_s: Annotated[int, Field(ge=0, le=4_294_967_295)] = 3600
    # QoS of every subscription unless a tag says otherwise.
    qos: Literal[0, 1, 2] = 1
    reconnect_max_delay_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    write_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    # Default for tags without max_age_s: stale when no message arrived for this long (None: never by age).
    max_age_s: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _persistent_needs_identity(self) -> MqttConnection:
        if not self.clean_session and not self.client_id:
            raise ValueError("a persistent session (clean_session: false) needs a fixed client_id")
        return self


MQTT_TOPIC_LEVEL_REF = re.compile(r"\{(\d+)\}")


def _check_subscription_topic(topic: str) -> str:
    levels = topic.split("/")
    if not topic or any(("+" in level and level != "+") or ("#" in level and level != "#") for level in levels) \
            or "#" in levels[:-1]:
        raise ValueError(f"'{topic}' is not an MQTT topic filter (+ and # fill a whole level, # only the last)")
    return topic


class MqttAvailability(_Strict):
    """A device's online/offline topic (typically its Last Will): offline turns its tags Bad at once.

    On a topic template its + levels name the device: plant/+/status goes with plant/+/temperature,
    matched by the values of the + levels in order.
    """

    topic: str
    payload_online: str = "online"
    payload_offline: str = "offline"

    @field_validator("topic")
    @classmethod
    def _filter(cls, topic: str) -> str:
        if "#" in topic:
            raise ValueError("an availability topic may use + levels, not #")
        return _check_subscription_topic(topic)


class MqttTopicTemplate(_Strict):
    """Tags made at run time from a wildcard topic: {N} in tag, area and description is topic level N (0-based)."""

    topic: str
    tag: str
    data_type: DataType = DataType.FLOAT
    unit: str = ""
    description: str = ""
    area: str = "Plant"
    value_path: str | None = None
    timestamp_path: str | None = None
    quality_path: str | None = None
    qos: Literal[0, 1, 2] | None = None
    max_age_s: Annotated[float, Field(gt=0)] | None = None
    range: EngineeringRange | None = None
    # At most this many tags from this template: a flood of topics cannot exhaust memory.
    max_tags: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    availability: MqttAvailability | None = None

    @model_validator(mode="after")
    def _coherent(self) -> MqttTopicTemplate:
        levels = _check_subscription_topic(self.topic).split("/")
        if "+" not in levels and "#" not in levels:
            raise ValueError(f"topic '{self.topic}' has no + or # level: list such a tag under tags instead")
        for text in (self.tag, self.area, self.description):
            for ref in MQTT_TOPIC_LEVEL_REF.findall(text):
                if int(ref) >= len(levels) and levels[-1] != "#":
                    raise ValueError(f"'{{{ref}}}' names topic level {ref}, but '{self.topic}' has levels 0..{len(levels) - 1}")
        if self.availability is not None and self.availability.topic.split("/").count("+") != levels.count("+"):
            raise ValueError("the availability topic needs as many + levels as the template topic (they name the device)")
        return self


class MqttSource(MqttConnection):
    kind: Literal["mqtt"]
    # Wildcard topics whose messages create tags by a naming template (published to the tag catalog).
    topic_templates: list[MqttTopicTemplate] = []
    # Online/offline topic of the device behind this source's configured tags (no + levels here).
    availability: MqttAvailability | None = None
    # Larger payloads are refused (counted, their tags Bad) before any parsing.
    max_payload_bytes: Annotated[int, Field(ge=16, le=64 * 1024 * 1024)] = 256 * 1024

    @model_validator(mode="after")
    def _plain_availability(self) -> MqttSource:
        if self.availability is not None and "+" in self.availability.topic.split("/"):
            raise ValueError("a source's availability topic has no + levels (templates may have them)")
        return self


class SparkplugSource(MqttConnection):
    """Sparkplug B edge nodes on a broker, with Stacklight as a (Primary) Host Application."""

    kind: Literal["sparkplug"]
    # Groups followed; empty: every group on the broker.
    group_ids: list[Annotated[str, Field(pattern=r"^[^/+#]+$")]] = []
    # Stacklight's Host Application id: with it, STATE (online, will offline) is published on spBv1.0/STATE/<host_id>.
    host_id: Annotated[str, Field(pattern=r"^[^/+#]+$")] | None = None
    publish_state: bool = True
    # Discovered metrics become tags by this template: {group}, {node}, {device} (empty for node metrics), {metric}.
    tag_template: str = "{group}.{node}.{device}.{metric}"
    discover: bool = True
    # A node is asked for a rebirth (NCMD Node Control/Rebirth) at most once in this time.
    rebirth_min_interval_s: Annotated[float, Field(ge=0, le=3600)] = 5.0

    @field_validator("tag_template")
    @classmethod
    def _template_makes_tag_names(cls, template: str) -> str:
        from domain.sparkplug_model import check_tag_template  # noqa: PLC0415 - that module imports this one

        check_tag_template(template)
        return template


Source = Annotated[OpcUaSource | MqttSource | SparkplugSource, Field(discriminator="kind")]


class EngineeringRange(_Strict):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> EngineeringRange:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError("low must be a finite number below high")
        return self


class Tag(_Strict):
    name: Annotated[str, Field(pattern=TAG_NAME_PATTERN)]
    source: str
    data_type: DataType = DataType.FLOAT
    unit: str = ""
    description: str = ""
    area: str = "Plant"
    # OPC UA address: "ns=2;s=Tank1.Level" or, robust to namespace order, "nsu=urn:...;s=Tank1.Level".
    node_id: str | None = None
    # MQTT address: topic of the state message, and where the value sits in a JSON payload.
    topic: str | None = None
    value_path: str | None = None
    # MQTT JSON payloads: where the source time (ISO 8601, epoch s or ms) and a quality field sit.
    timestamp_path: str | None = None
    quality_path: str | None = None
    # MQTT subscription QoS; None takes the source's qos.
    qos: Literal[0, 1, 2] | None = None
    command_topic: str | None = None
    # Sparkplug B address: "group/edge node/device/metric name"; device empty for a node metric
    # ("group/edge node//metric name"); the metric name may contain "/".
    metric: str | None = None
    # The command payload; "{value}" is replaced by the JSON encoding of the new value.
    command_template: str = "{value}"
    # OPC UA monitored item settings; None takes the source's default.
    sampling_interval_ms: Annotated[int, Field(ge=0, le=3_600_000)] | None = None
    publishing_interval_ms: Annotated[int, Field(ge=10, le=60_000)] | None = None
    queue_size: Annotated[int, Field(ge=1, le=10_000)] | None = None
    deadband: Deadband | None = None
    # Stale when no message arrived for this long (MQTT publishes on change or cyclically).
    max_age_s: Annotated[float, Field(gt=0)] | None = None
    range: EngineeringRange | None = None
    writable: bool = False
    # Operator limits: the tighter band an operator may write within.
    limits: EngineeringRange | None = None
    max_step: Annotated[float, Field(gt=0)] | None = None
    # Readback must agree within this absolute tolerance to confirm a write.
    write_tolerance: Annotated[float, Field(ge=0)] = 0.0
    # Write safety: the least role that may write this tag (per tag, on top of the role rule);
    # a reason the operator must give with each write; a second person's approval (critical).
    write_role: WriteRole = "operator"
    reason_required: bool = False
    critical: bool = False
    alarms: TagAlarms | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Tag:
        addresses = [a for a in (self.node_id, self.topic, self.metric) if a is not None]
        if len(addresses) > 1:
            raise ValueError("a tag has one of node_id (OPC UA), topic (MQTT) or metric (Sparkplug B), not several")
        if not addresses:
            raise ValueError("a tag needs node_id (OPC UA), topic (MQTT) or metric (Sparkplug B)")
        if self.metric is not None:
            from domain.sparkplug_model import parse_metric_address  # noqa: PLC0415 - that module imports this one

            parse_metric_address(self.metric)
        if self.writable and self.topic is not None and self.command_topic is None:
            raise ValueError("a writable MQTT tag needs command_topic")
        if self.limits and self.range and (
            self.limits.low < self.range.low or self.limits.high > self.range.high
        ):
            raise ValueError("operator limits must lie inside the engineering range")
        if not self.writable and (self.critical or self.reason_required):
            raise ValueError("critical and reason_required apply to writable tags only (set writable: true)")
        if (self.limits or self.max_step) and not self.data_type.is_numeric:
            raise ValueError("limits and max_step need a numeric data_type")
        if self.alarms and self.alarms.needs_numeric_input and not self.data_type.is_numeric:
            raise ValueError("limit, deviation and rate-of-change alarms need a numeric data_type"
                             " (use a discrete alarm for a bool or string)")
        mqtt_only = ("value_path", "timestamp_path", "quality_path", "qos", "command_topic")
        if self.node_id is not None and any(getattr(self, f) is not None for f in mqtt_only):
            raise ValueError("value_path, timestamp_path, quality_path, qos and command_topic are MQTT settings")
        opcua_only = ("sampling_interval_ms", "publishing_interval_ms", "queue_size", "deadband")
        if self.topic is not None and any(getattr(self, f) is not None for f in opcua_only):
            raise ValueError("sampling_interval_ms, publishing_interval_ms, queue_size and deadband are OPC UA settings")
        if self.metric is not None and any(getattr(self, f) is not None for f in (*mqtt_only, *opcua_only)):
            raise ValueError("a Sparkplug B tag (metric) has no MQTT topic settings or OPC UA settings")
        if self.deadband is not None and not self.data_type.is_numeric:
            raise ValueError("a deadband needs a numeric data_type")
        if "{value}" not in self.command_template:
            raise ValueError("command_template must contain {value}")
        return self


class RedisSettings(_Strict):
    # No URL (and no REDIS_URL in the environment) means "start a private Redis".
    url: str | None = None
    # An ACL user (Redis 6+) and/or password (requirepass), added to the URL's; never written in it.
    username: str | None = None
    password: SecretRef | None = None


class KioskSettings(_Strict):
    """A read-only view without login, only for these client networks (e.g. a wall screen)."""

    allowed_networks: Annotated[list[str], Field(min_length=1)]

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                parsed = ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"'{network}' is not an IP address or network (e.g. 10.1.2.0/24)") from None
            if parsed.prefixlen == 0:
                raise ValueError(f"'{network}' is every address: a kiosk for every address is no login at all")
        return networks


class WebSettings(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8050
    push_rate_hz: Annotated[float, Field(gt=0, le=10)] = 10.0
    session_idle_timeout_s: Annotated[int, Field(ge=60)] = 1800
    # HTTPS when both are set (PEM files); cookies are then Secure.
    tls_cert: str | None = None
    tls_key: str | None = None
    # Reverse proxies whose X-Forwarded-For/-Proto are believed (addresses, as uvicorn takes them).
    trusted_proxies: list[str] = []
    kiosk: KioskSettings | None = None
    # Per-user API tokens expire after at most this many days.
    api_token_max_days: Annotated[int, Field(ge=1, le=3650)] = 365

    @model_validator(mode="after")
    def _tls_pair(self) -> WebSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("web.tls_cert and web.tls_key go together: give both or neither")
        return self


class PlantConfig(_Strict):
    _tag_index: dict[str, Tag] = PrivateAttr(default_factory=dict)

    site_name: str = "Stacklight plant"
    data_dir: str = "./data"
    redis: RedisSettings = RedisSettings()
    web: WebSettings = WebSettings()
    alarm_system: AlarmSystemSettings = AlarmSystemSettings()
    historian: HistorianSettings = HistorianSettings()
    # Redis keeps this many recent samples per tag; older history is the historian's.
    history_samples_per_tag: Annotated[int, Field(ge=10, le=1_000_000)] = 3600
    sources: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")], Source]
    tags: list[Tag]

    @model_validator(mode="before")
    @classmethod
    def _source_max_age_is_the_tag_default(cls, data: object) -> object:
        """A tag without max_age_s takes its source's, so freshness can be judged from the tag alone."""
        if not isinstance(data, dict) or not isinstance(data.get("sources"), dict) or not isinstance(data.get("tags"), list):
            return data
        def setting(item: object, key: str) -> object:
            return item.get(key) if isinstance(item, dict) else getattr(item, key, None)

        tags = []
        for tag in data["tags"]:
            default = setting(data["sources"].get(setting(tag, "source")), "max_age_s")
            if default is not None and setting(tag, "max_age_s") is None:
                tag = {**tag, "max_age_s": default} if isinstance(tag, dict) else \
                    tag.model_copy(update={"max_age_s": default}) if isinstance(tag, Tag) else tag
            tags.append(tag)
        return {**data, "tags": tags}

    @model_validator(mode="after")
    def _references_resolve(self) -> PlantConfig:
        seen: set[str] = set()
        for tag in self.tags:
            if tag.name in seen:
                raise ValueError(f"tag name '{tag.name}' is used twice")
            seen.add(tag.name)
            source = self.sources.get(tag.source)
            if source is None:
                raise ValueError(f"tag '{tag.name}' names unknown source '{tag.source}'")
            if source.kind == "opcua" and tag.node_id is None:
                raise ValueError(f"tag '{tag.name}' is on OPC UA source '{tag.source}' but has no node_id")
            if source.kind == "mqtt" and tag.topic is None:
                raise ValueError(f"tag '{tag.name}' is on MQTT source '{tag.source}' but has no topic")
            if source.kind == "sparkplug" and tag.metric is None:
                raise ValueError(f"tag '{tag.name}' is on Sparkplug B source '{tag.source}' but has no metric")
            if tag.metric is not None and source.kind != "sparkplug":
                raise ValueError(f"tag '{tag.name}' has a Sparkplug B metric but source '{tag.source}' is {source.kind}")
            if tag.metric is not None and source.group_ids and tag.metric.split("/", 1)[0] not in source.group_ids:
                raise ValueError(f"tag '{tag.name}': metric group '{tag.metric.split('/', 1)[0]}' is not in"
                                 f" the group_ids {source.group_ids} of source '{tag.source}'")
        for index, tag in enumerate(self.tags):
            for kind, alarm in tag.alarms.items() if tag.alarms else []:
                self._check_alarm_references(f"tags[{index}].alarms.{kind}", tag, alarm, seen)
        return self

    @staticmethod
    def _check_alarm_references(path: str, tag: Tag, alarm: AnyAlarm, tag_names: set[str]) -> None:
        setpoint = getattr(alarm, "setpoint_tag", None)
        if setpoint is not None and setpoint not in tag_names:
            raise ValueError(f"{path}.setpoint_tag: unknown tag '{setpoint}'")
        if setpoint == tag.name:
            raise ValueError(f"{path}.setpoint_tag: tag '{tag.name}' cannot be its own setpoint")
        if alarm.suppressed_when is not None and alarm.suppressed_when.tag not in tag_names:
            raise ValueError(f"{path}.suppressed_when.tag: unknown tag '{alarm.suppressed_when.tag}'")

    def model_post_init(self, _context: object) -> None:
        self._tag_index = {t.name: t for t in self.tags}

    def tag(self, name: str) -> Tag | None:
        return self._tag_index.get(name)

    def tags_of_source(self, source_name: str) -> list[Tag]:
        return [t for t in self.tags if t.source == source_name]
