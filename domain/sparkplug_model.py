"""Sparkplug B vocabulary, pure: topics, metric types and values, payloads as frozen dataclasses, tag names.

Eclipse Sparkplug 3.0.0. Topics are spBv1.0/<group>/<NBIRTH|NDATA|NDEATH|NCMD|DBIRTH|DDATA|DDEATH|DCMD>/
<edge node>[/<device>] and spBv1.0/STATE/<host id>. The adapter (data_sources/sparkplug/codec.py)
turns protobuf into the Payload / Metric dataclasses here; what a message means for an edge node's
state is decided in domain/sparkplug_host.py.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from domain.config_model import TAG_NAME_PATTERN, DataType
from domain.quality import BAD_DECODING_ERROR, BAD_NO_COMMUNICATION, BAD_TYPE_MISMATCH, GOOD, Quality, quality_from_code
from domain.tag_value import ScalarValue

NAMESPACE = "spBv1.0"
STATE_GROUP = "STATE"
SEQ_MODULUS = 256
BD_SEQ_METRIC = "bdSeq"
REBIRTH_METRIC = "Node Control/Rebirth"
NODE_CONTROL_FOLDER = "Node Control/"
UNITS_PROPERTY = "EngineeringUnits"
QUALITY_PROPERTY = "Quality"

# A metric the device sent as null has no value: Bad, and the operator reads why.
BAD_NO_DATA = quality_from_code(0x809B0000, "BadNoData")
# A node's or device's death certificate: the edge node says the link to it is gone.
BAD_DEATH = BAD_NO_COMMUNICATION


class MessageType(StrEnum):
    NBIRTH = "NBIRTH"
    NDATA = "NDATA"
    NDEATH = "NDEATH"
    NCMD = "NCMD"
    DBIRTH = "DBIRTH"
    DDATA = "DDATA"
    DDEATH = "DDEATH"
    DCMD = "DCMD"
    STATE = "STATE"

    @property
    def is_device(self) -> bool:
        return self.value.startswith("D")


class SparkplugType(IntEnum):
    """Metric data types of the specification (the DataType enum of sparkplug_b.proto)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19


_SIGNED_BITS = {SparkplugType.INT8: 8, SparkplugType.INT16: 16, SparkplugType.INT32: 32, SparkplugType.INT64: 64}
_UNSIGNED_BITS = {SparkplugType.UINT8: 8, SparkplugType.UINT16: 16, SparkplugType.UINT32: 32,
                  SparkplugType.UINT64: 64}
# Which Stacklight type a Sparkplug type becomes; types missing here (DataSet, Bytes, File, Template,
# arrays, property sets) are not tags. DateTime is epoch milliseconds, an INT.
STACKLIGHT_TYPES: dict[int, DataType] = {
    **{t: DataType.INT for t in (*_SIGNED_BITS, *_UNSIGNED_BITS, SparkplugType.DATETIME)},
    SparkplugType.FLOAT: DataType.FLOAT, SparkplugType.DOUBLE: DataType.FLOAT,
    SparkplugType.BOOLEAN: DataType.BOOL,
    SparkplugType.STRING: DataType.STRING, SparkplugType.TEXT: DataType.STRING, SparkplugType.UUID: DataType.STRING,
}
# Which field of the protobuf value oneof carries each type (for writes: NCMD / DCMD).
VALUE_FIELDS: dict[int, str] = {
    **{t: "int_value" for t in (SparkplugType.INT8, SparkplugType.INT16, SparkplugType.INT32,
                                SparkplugType.UINT8, SparkplugType.UINT16, SparkplugType.UINT32)},
    **{t: "long_value" for t in (SparkplugType.INT64, SparkplugType.UINT64, SparkplugType.DATETIME)},
    SparkplugType.FLOAT: "float_value", SparkplugType.DOUBLE: "double_value",
    SparkplugType.BOOLEAN: "boolean_value",
    SparkplugType.STRING: "string_value", SparkplugType.TEXT: "string_value", SparkplugType.UUID: "string_value",
}


class SparkplugDecodeError(ValueError):
    """A payload or topic that is not Sparkplug B; str() says what is wrong."""


# ---------------------------------------------------------------------------------------------- topics

@dataclass(frozen=True, slots=True)
class NodeKey:
    group: str
    node: str

    def __str__(self) -> str:
        return f"{self.group}/{self.node}"


@dataclass(frozen=True, slots=True)
class MetricKey:
    """One metric of one edge node ("" device: the node's own metric)."""

    group: str
    node: str
    device: str
    name: str

    @property
    def node_key(self) -> NodeKey:
        return NodeKey(self.group, self.node)

    @property
    def address(self) -> str:
        """The form a plant file uses (Tag.metric): group/node/device/metric, device empty for node metrics."""
        return f"{self.group}/{self.node}/{self.device}/{self.name}"


def parse_metric_address(address: str) -> MetricKey:
    """'group/node/device/metric name' (device may be empty: 'group/node//metric'); the name may hold '/'."""
    parts = address.split("/", 3)
    if len(parts) != 4 or not parts[0] or not parts[1] or not parts[3]:
        raise ValueError(
            f"{address!r} is not 'group/edge node/device/metric name' (device empty for a node metric:"
            " 'group/edge node//metric name')")
    return MetricKey(*parts)


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    message_type: MessageType
    group: str              # for STATE: ""
    node: str               # for STATE: the host id
    device: str = ""

    @property
    def node_key(self) -> NodeKey:
        return NodeKey(self.group, self.node)


def parse_topic(topic: str) -> SparkplugTopic:
    levels = topic.split("/")
    if len(levels) < 3 or levels[0] != NAMESPACE:
        raise SparkplugDecodeError(f"{topic!r} is not in the {NAMESPACE} namespace")
    if levels[1] == STATE_GROUP and len(levels) == 3:
        return SparkplugTopic(MessageType.STATE, "", levels[2])
    if len(levels) not in (4, 5):
        raise SparkplugDecodeError(f"{topic!r} has {len(levels)} levels, not spBv1.0/group/type/node[/device]")
    try:
        message_type = MessageType(levels[2])
    except ValueError:
        raise SparkplugDecodeError(f"{topic!r}: unknown message type {levels[2]!r}") from None
    if message_type is MessageType.STATE or message_type.is_device != (len(levels) == 5):
        raise SparkplugDecodeError(f"{topic!r}: {message_type} does not fit this topic")
    if not all(levels[1:]):
        raise SparkplugDecodeError(f"{topic!r} has an empty level")
    return SparkplugTopic(message_type, levels[1], levels[3], levels[4] if len(levels) == 5 else "")


def command_topic(key: MetricKey) -> str:
    if key.device:
        return f"{NAMESPACE}/{key.group}/{MessageType.DCMD}/{key.node}/{key.device}"
    return f"{NAMESPACE}/{key.group}/{MessageType.NCMD}/{key.node}"


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/{STATE_GROUP}/{host_id}"


def subscriptions(group_ids: list[str], host_id: str | None) -> list[str]:
    """Every edge node message of the groups (all when none is named), and our own STATE topic."""
    topics = [f"{NAMESPACE}/{group}/#" for group in group_ids] or [f"{NAMESPACE}/+/#"]
    if host_id is not None:
        topics.append(state_topic(host_id))
    return topics


# ---------------------------------------------------------------------------------------------- payloads

PropertyValue = int | float | bool | str | None


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric of a payload as sent: `raw` is the value oneof's content (None when unset)."""

    name: str | None = None
    alias: int | None = None
    timestamp_ms: int | None = None
    datatype: int | None = None
    is_null: bool = False
    is_historical: bool = False
    raw: int | float | bool | str | bytes | None = None
    properties: tuple[tuple[str, PropertyValue], ...] = ()

    def property(self, key: str) -> PropertyValue:
        for name, value in self.properties:
            if name == key:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Payload:
    timestamp_ms: int | None = None
    seq: int | None = None
    metrics: tuple[Metric, ...] = ()
    uuid: str | None = None


def coerce_value(datatype: int | None, raw: object) -> tuple[ScalarValue, Quality]:
    """The Stacklight value of a metric's raw value, by its Sparkplug type; Bad with a reason if unusable.

    Signed integers arrive as two's complement in the unsigned field (int_value / long_value) and
    are read back from their own width; Int64 and UInt64 stay Python ints (exact, never via float).
    Float (32 bit) is shown by its shortest decimal form (0.1, not 0.10000000149011612).
    """
    if raw is None:
        return None, BAD_NO_DATA
    if datatype in _SIGNED_BITS or datatype in _UNSIGNED_BITS or datatype == SparkplugType.DATETIME:
        if not isinstance(raw, int) or isinstance(raw, bool):
            return None, BAD_TYPE_MISMATCH
        bits = _SIGNED_BITS.get(datatype) or _UNSIGNED_BITS.get(datatype) or 64
        value = raw & ((1 << bits) - 1)
        if datatype in _SIGNED_BITS and value >= 1 << (bits - 1):
            value -= 1 << bits
        return value, GOOD
    if datatype in (SparkplugType.FLOAT, SparkplugType.DOUBLE):
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):
            return None, BAD_TYPE_MISMATCH
        value = float(raw)
        if not math.isfinite(value):
            return None, BAD_DECODING_ERROR
        return (shortest_float32(value) if datatype == SparkplugType.FLOAT else value), GOOD
    if datatype == SparkplugType.BOOLEAN:
        return (raw, GOOD) if isinstance(raw, bool) else (None, BAD_TYPE_MISMATCH)
    if datatype in (SparkplugType.STRING, SparkplugType.TEXT, SparkplugType.UUID):
        return (raw, GOOD) if isinstance(raw, str) else (None, BAD_TYPE_MISMATCH)
    return None, BAD_TYPE_MISMATCH


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same 32-bit float (what the edge node meant)."""
    try:
        single = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return value
    for digits in range(6, 10):
        candidate = float(f"{single:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", candidate))[0] == single:
            return candidate
    return single


def raw_for_write(datatype: int, value: ScalarValue) -> int | float | bool | str:
    """What goes into the value field of an NCMD / DCMD metric; ValueError if the type cannot take it."""
    if datatype in _SIGNED_BITS or datatype in _UNSIGNED_BITS or datatype == SparkplugType.DATETIME:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ValueError(f"{value!r} is not a whole number")
        whole = int(value)
        bits = _SIGNED_BITS.get(datatype) or _UNSIGNED_BITS.get(datatype) or 64
        low, high = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if datatype in _SIGNED_BITS
                     else (0, (1 << bits) - 1))
        if not low <= whole <= high:
            raise ValueError(f"{whole} does not fit {SparkplugType(datatype).name} ({low} .. {high})")
        return whole & ((1 << max(bits, 32)) - 1)   # two's complement in the 32 / 64 bit unsigned field
    if datatype in (SparkplugType.FLOAT, SparkplugType.DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{value!r} is not a number")
        return float(value)
    if datatype == SparkplugType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not on/off")
        return value
    if datatype in (SparkplugType.STRING, SparkplugType.TEXT, SparkplugType.UUID):
        return str(value)
    raise ValueError(f"metrics of type {datatype} cannot be written")


def sparkplug_quality(metric: Metric) -> Quality | None:
    """The optional 'Quality' property (Ignition convention: 192 good, 0 bad, 500 stale); None if absent."""
    code = metric.property(QUALITY_PROPERTY)
    if not isinstance(code, int) or isinstance(code, bool) or code == 192:
        return None
    return quality_from_code(0x40000000, "Uncertain") if code == 500 else quality_from_code(0x80000000, "Bad")


# ---------------------------------------------------------------------------------------------- tag names

_TEMPLATE_FIELD = re.compile(r"\{(\w*)\}")
TEMPLATE_FIELDS = ("group", "node", "device", "metric")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.\-]")
_TAG_NAME = re.compile(TAG_NAME_PATTERN)


def is_session_metric(name: str) -> bool:
    """bdSeq and the Node Control/* metrics belong to the Sparkplug session, not the process: never tags by
    themselves (a configured tag may still name one)."""
    return name == BD_SEQ_METRIC or name.startswith(NODE_CONTROL_FOLDER)


def check_tag_template(template: str) -> None:
    """ValueError unless the template names {node}, {device} and {metric} and yields valid tag names."""
    used = _TEMPLATE_FIELD.findall(template)
    unknown = sorted(set(used) - set(TEMPLATE_FIELDS))
    if unknown:
        raise ValueError(f"tag_template: unknown field(s) {unknown}; use {{group}}, {{node}}, {{device}}, {{metric}}")
    missing = [f for f in ("node", "device", "metric") if f not in used]
    if missing:
        raise ValueError(f"tag_template must contain {', '.join('{' + m + '}' for m in missing)}"
                         " (else two metrics could get one name)")
    if tag_name_for(template, MetricKey("g", "n", "d", "m")) is None:
        raise ValueError(f"tag_template {template!r} does not give a valid tag name (letters, digits, _ . -)")


def tag_name_for(template: str, key: MetricKey) -> str | None:
    """The tag name of a discovered metric; None when none can be made (over 128 characters).

    Each field is cleaned on its own: '/' (Sparkplug's folder separator) becomes '.', every other
    character that a tag name cannot hold (space, ':', non-ASCII ...) becomes '_'. Then repeated
    dots collapse into one and dots at the ends go (an empty {device} leaves no '..'), and a name
    that does not start with a letter gets 'T' in front.
    """
    def clean(text: str) -> str:
        return _NOT_ALLOWED.sub("_", text.replace("/", "."))

    values = {"group": clean(key.group), "node": clean(key.node), "device": clean(key.device),
              "metric": clean(key.name)}
    name = _TEMPLATE_FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    name = re.sub(r"\.{2,}", ".", name).strip(".")
    if not name[:1].isalpha():
        name = "T" + name
    return name if _TAG_NAME.match(name) else None
