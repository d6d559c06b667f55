"""Translating between OPC UA (asyncua) values and Stacklight's: part of the OPC UA adapter.

Node ids, StatusCodes -> Quality, DataValues -> TagValues, Python values ->
Variants of the node's exact type for writes, and planned items -> monitored item requests.
"""
from __future__ import annotations

import math
import struct
from datetime import datetime, timezone

from asyncua import ua
from asyncua.ua import status_codes

from data_sources.opcua_plan import DeadbandKind, DeadbandSetting, ItemSettings
from domain.config_model import DataType, Tag
from domain.quality import BAD_OUT_OF_RANGE, BAD_TYPE_MISMATCH, GOOD, Quality, quality_from_code
from domain.tag_value import ScalarValue, TagValue

# StatusCode bits 10-11 = 01 (InfoType DataValue) and bit 7: the server's item queue overflowed.
_OVERFLOW_INFO_BITS = 0x0480
_EPOCH_1971 = datetime(1971, 1, 1, tzinfo=timezone.utc)

_INTEGER_RANGES = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}
WRITABLE_VARIANT_TYPES = {
    ua.VariantType.Boolean, ua.VariantType.Float, ua.VariantType.Double, ua.VariantType.String, *_INTEGER_RANGES,
}
_FLOAT32_MAX = 3.4028234663852886e38


class UnknownNamespace(ValueError):
    pass


def resolve_node_id(text: str, namespace_uris: list[str]) -> ua.NodeId:
    """`nsu=<uri>;s=...` via the server's namespace array; `ns=2;s=...` and `i=85` as they are."""
    if text.startswith("nsu="):
        uri, separator, rest = text[len("nsu="):].partition(";")
        if not separator or not rest:
            raise ValueError(f"'{text}' has no identifier after the namespace URI")
        if uri not in namespace_uris:
            raise UnknownNamespace(f"the server has no namespace '{uri}'")
        text = f"ns={namespace_uris.index(uri)};{rest}"
    try:
        return ua.NodeId.from_string(text)
    except ua.UaError as exc:
        raise ValueError(f"'{text}' is not an OPC UA node id") from exc


_quality_cache: dict[int, Quality] = {}


def quality_of_status(code: int) -> Quality:
    """Quality for a full 32-bit StatusCode, named after its code (info bits aside)."""
    quality = _quality_cache.get(code)
    if quality is None:
        name = status_codes.get_name_and_doc(code & 0xFFFF0000)[0]
        quality = _quality_cache[code] = quality_from_code(code, name)
    return quality


def overflow_flagged(code: int) -> bool:
    return code & _OVERFLOW_INFO_BITS == _OVERFLOW_INFO_BITS


def source_time_ms(timestamp: datetime | None) -> int | None:
    """Epoch ms of an OPC UA DateTime; None when the server sent none (or the 1601 'null' time)."""
    if timestamp is None:
        return None
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=timezone.utc)
    if timestamp < _EPOCH_1971:
        return None
    return int(timestamp.timestamp() * 1000)


def tag_value_from_data_value(tag: Tag, dv: ua.DataValue, receive_time_ms: int) -> TagValue:
    """The TagValue for one notification: the server's StatusCode, its SourceTimestamp, a JSON-safe value."""
    status = dv.StatusCode
    quality = GOOD if status is None or status.value == 0 else quality_of_status(status.value)
    variant = dv.Value
    raw = variant.Value if variant is not None else None
    value, problem = convert_to_data_type(raw, tag.data_type)
    if problem is not None and not quality.is_bad:
        quality = problem
    source_ms = source_time_ms(dv.SourceTimestamp)
    if source_ms is None:
        return TagValue(tag.name, value, quality, receive_time_ms, receive_time_ms, source_time_is_receive_time=True)
    return TagValue(tag.name, value, quality, source_ms, receive_time_ms)


def convert_to_data_type(raw: object, data_type: DataType) -> tuple[ScalarValue, Quality | None]:
    """(value, None) when `raw` fits the tag's data type, else (None, the Bad quality that says why)."""
    kind = type(raw)
    if raw is None:
        return None, None
    if data_type is DataType.FLOAT:
        if kind is float:
            return (raw, None) if math.isfinite(raw) else (None, BAD_OUT_OF_RANGE)
        if kind is int:
            return float(raw), None
    elif data_type is DataType.INT:
        if kind is int:
            return raw, None
        if kind is float and math.isfinite(raw) and raw == int(raw):
            return int(raw), None
    elif data_type is DataType.BOOL:
        if kind is bool:
            return raw, None
        if kind is int:
            return raw != 0, None
    else:
        if kind is str:
            return raw, None
        if isinstance(raw, ua.LocalizedText):
            return raw.Text, None
        if kind in (int, bool) or (kind is float and math.isfinite(raw)):
            return str(raw), None
    return None, BAD_TYPE_MISMATCH


def variant_type_of(data_type_node: object, current_value: ua.Variant | None) -> ua.VariantType | None:
    """The VariantType to write a node with: its DataType when built in, else its current value's type."""
    if isinstance(data_type_node, ua.NodeId) and data_type_node.NamespaceIndex == 0:
        identifier = data_type_node.Identifier
        if isinstance(identifier, int) and 1 <= identifier <= 12:
            return ua.VariantType(identifier)
        if identifier == ua.ObjectIds.Duration:
            return ua.VariantType.Double
    if current_value is not None and current_value.VariantType in WRITABLE_VARIANT_TYPES:
        return current_value.VariantType
    return None


def value_for_variant(value: ScalarValue, variant_type: ua.VariantType) -> ScalarValue:
    """`value` as the Python value of that VariantType, exactly as the node will hold it.

    Floats come back rounded to single precision, so the readback can be compared
    with what the device can actually store. ValueError when it does not fit.
    """
    if variant_type is ua.VariantType.Boolean:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{value!r} is not on/off; the node is Boolean")
    if variant_type is ua.VariantType.String:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number; the node is {variant_type.name}")
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if variant_type is ua.VariantType.Double:
        return _exact_if_integer(value, float(value), variant_type)
    if variant_type is ua.VariantType.Float:
        if abs(value) > _FLOAT32_MAX:
            raise ValueError(f"{value:g} does not fit a Float node")
        return _exact_if_integer(value, struct.unpack("<f", struct.pack("<f", float(value)))[0], variant_type)
    low, high = _INTEGER_RANGES.get(variant_type, (None, None))
    if low is None:
        raise ValueError(f"cannot write a {variant_type.name} node")
    if value != int(value):
        raise ValueError(f"{value:g} is not a whole number; the node is {variant_type.name}")
    if not low <= int(value) <= high:
        raise ValueError(f"{value:g} does not fit {variant_type.name} ({low} .. {high})")
    return int(value)


def _exact_if_integer(value: int | float, stored: float, variant_type: ua.VariantType) -> float:
    """An integer the node would round (above 2**53 for Double, 2**24 for Float) is refused, not changed.

    Fractions are rounded on purpose (0.1 has no exact binary form); a whole number that
    silently became another whole number would be a different setpoint.
    """
    if isinstance(value, int) and stored != value:
        raise ValueError(f"{value} cannot be held exactly by a {variant_type.name} node (it would become {stored:.0f})")
    return stored


# --- monitored item requests ---------------------------------------------------------------------

# What a server answers for a monitored item whose deadband filter it cannot apply.
FILTER_REJECTED_CODES = frozenset({
    ua.StatusCodes.BadDeadbandFilterInvalid,
    ua.StatusCodes.BadFilterNotAllowed,
    ua.StatusCodes.BadMonitoredItemFilterUnsupported,
    ua.StatusCodes.BadMonitoredItemFilterInvalid,
})


def data_change_filter(deadband: DeadbandSetting | None) -> ua.DataChangeFilter | None:
    """Trigger StatusValue (a quality change passes even inside the deadband); None without a deadband."""
    if deadband is None:
        return None
    deadband_type = ua.DeadbandType.Absolute if deadband.kind is DeadbandKind.ABSOLUTE else ua.DeadbandType.Percent
    return ua.DataChangeFilter(
        Trigger=ua.DataChangeTrigger.StatusValue, DeadbandType=deadband_type, DeadbandValue=float(deadband.value))


def monitored_item_request(
    node_id: ua.NodeId, item: ItemSettings, deadband: DeadbandSetting | None
) -> ua.MonitoredItemCreateRequest:
    """Reporting, the item's own sampling interval and queue, oldest discarded first (the server flags it)."""
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=ua.MonitoringParameters(
            ClientHandle=item.handle, SamplingInterval=item.sampling_interval_ms, QueueSize=item.queue_size,
            DiscardOldest=True, Filter=data_change_filter(deadband)),
    )
