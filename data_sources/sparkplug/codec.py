"""Sparkplug B payloads: protobuf bytes <-> the domain's frozen dataclasses (domain/sparkplug_model.py).

The protobuf library stops here: decode() raises only SparkplugDecodeError, whatever the bytes.
"""
from __future__ import annotations

from google.protobuf.message import DecodeError

from data_sources.sparkplug import sparkplug_b_pb2 as pb
from domain.sparkplug_model import VALUE_FIELDS, Metric, Payload, PropertyValue, SparkplugDecodeError

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
_SCALAR_FIELDS = ("int_value", "long_value", "float_value", "double_value", "boolean_value", "string_value",
                  "bytes_value")


def decode(data: bytes) -> Payload:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise SparkplugDecodeError(f"payload of {len(data)} bytes is larger than {MAX_PAYLOAD_BYTES}")
    message = pb.Payload()
    try:
        message.ParseFromString(data)
        return Payload(
            timestamp_ms=message.timestamp if message.HasField("timestamp") else None,
            seq=message.seq if message.HasField("seq") else None,
            metrics=tuple(_metric(m) for m in message.metrics),
            uuid=_text(message.uuid) if message.HasField("uuid") else None,
        )
    except SparkplugDecodeError:
        raise
    except DecodeError as exc:
        raise SparkplugDecodeError(f"not a Sparkplug B payload: {exc}") from None
    except (ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise SparkplugDecodeError(f"not a Sparkplug B payload: {type(exc).__name__}: {exc}") from None


def _metric(m: pb.Payload.Metric) -> Metric:
    which = m.WhichOneof("value")
    return Metric(
        name=_text(m.name) if m.HasField("name") else None,
        alias=m.alias if m.HasField("alias") else None,
        timestamp_ms=m.timestamp if m.HasField("timestamp") else None,
        datatype=m.datatype if m.HasField("datatype") else None,
        is_null=m.is_null,
        is_historical=m.is_historical,
        raw=_scalar(m, which),
        properties=_properties(m.properties) if m.HasField("properties") else (),
    )


def _scalar(message, which: str | None) -> int | float | bool | str | bytes | None:
    if which not in _SCALAR_FIELDS:
        return None
    value = getattr(message, which)
    return _text(value) if which == "string_value" else value


def _text(value: str | bytes) -> str:
    """proto2 hands out a string field with invalid UTF-8 as bytes: that is a malformed payload."""
    if isinstance(value, bytes):
        raise SparkplugDecodeError(f"invalid UTF-8 in a string field: {value[:40]!r}")
    return value


def _properties(props: pb.Payload.PropertySet) -> tuple[tuple[str, PropertyValue], ...]:
    """Scalar properties only (nested property sets are not used here)."""
    found = []
    for key, value in zip(props.keys, props.values):
        which = value.WhichOneof("value")
        if which in _SCALAR_FIELDS and not value.is_null:
            found.append((_text(key), _scalar(value, which)))
    return tuple(found)


def encode(payload: Payload) -> bytes:
    """The protobuf bytes of a payload (commands; the tests' edge node). ValueError for a value of no field."""
    message = pb.Payload()
    if payload.timestamp_ms is not None:
        message.timestamp = payload.timestamp_ms
    if payload.seq is not None:
        message.seq = payload.seq
    if payload.uuid is not None:
        message.uuid = payload.uuid
    for metric in payload.metrics:
        out = message.metrics.add()
        if metric.name is not None:
            out.name = metric.name
        if metric.alias is not None:
            out.alias = metric.alias
        if metric.timestamp_ms is not None:
            out.timestamp = metric.timestamp_ms
        if metric.datatype is not None:
            out.datatype = metric.datatype
        if metric.is_null:
            out.is_null = True
        elif metric.raw is not None:
            value_field = VALUE_FIELDS.get(metric.datatype or 0) or (
                "bytes_value" if isinstance(metric.raw, bytes) else None)
            if value_field is None:
                raise ValueError(f"metric {metric.name or metric.alias}: no value field for datatype {metric.datatype}")
            setattr(out, value_field, metric.raw)
        for key, value in metric.properties:
            out.properties.keys.append(key)
            prop = out.properties.values.add()
            if isinstance(value, str):
                prop.type, prop.string_value = 12, value
            elif isinstance(value, bool):
                prop.type, prop.boolean_value = 11, value
            elif isinstance(value, int):
                prop.type, prop.int_value = 3, value & 0xFFFFFFFF
            elif isinstance(value, float):
                prop.type, prop.double_value = 10, value
            else:
                prop.is_null = True
    return message.SerializeToString()
