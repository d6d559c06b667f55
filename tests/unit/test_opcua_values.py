"""Translating OPC UA values: node ids, qualities, JSON-safe values, write Variants of the node's type."""
import math
from datetime import datetime, timezone

import pytest
from asyncua import ua

from data_sources.opcua_values import (
    UnknownNamespace,
    convert_to_data_type,
    quality_of_status,
    resolve_node_id,
    tag_value_from_data_value,
    value_for_variant,
    variant_type_of,
)
from domain.config_model import DataType, Tag
from domain.quality import BAD_OUT_OF_RANGE, BAD_TYPE_MISMATCH, GOOD

NAMESPACES = ["http://opcfoundation.org/UA/", "urn:server", "urn:plant"]


def test_node_ids_resolve_through_the_namespace_array():
    assert resolve_node_id("nsu=urn:plant;s=T1.Level", NAMESPACES) == ua.NodeId("T1.Level", 2)
    assert resolve_node_id("ns=1;i=42", NAMESPACES) == ua.NodeId(42, 1)
    assert resolve_node_id("nsu=urn:plant;s=A;B=C", NAMESPACES) == ua.NodeId("A;B=C", 2)
    with pytest.raises(UnknownNamespace):
        resolve_node_id("nsu=urn:elsewhere;s=X", NAMESPACES)
    with pytest.raises(ValueError):
        resolve_node_id("nonsense", NAMESPACES)


def test_status_codes_keep_their_code_and_name():
    quality = quality_of_status(ua.StatusCodes.BadSensorFailure)
    assert (quality.code, quality.name, quality.is_bad) == (0x808C0000, "BadSensorFailure", True)
    overflowed = quality_of_status(0x00000480)  # Good, with the "item queue overflowed" info bits
    assert overflowed.is_good and overflowed.name == "Good" and overflowed.code == 0x480


@pytest.mark.parametrize(
    ("raw", "data_type", "value", "problem"),
    [
        (1.5, DataType.FLOAT, 1.5, None),
        (3, DataType.FLOAT, 3.0, None),
        (math.nan, DataType.FLOAT, None, BAD_OUT_OF_RANGE),
        (math.inf, DataType.FLOAT, None, BAD_OUT_OF_RANGE),
        (True, DataType.FLOAT, None, BAD_TYPE_MISMATCH),
        (7.0, DataType.INT, 7, None),
        (7.5, DataType.INT, None, BAD_TYPE_MISMATCH),
        (1, DataType.BOOL, True, None),
        (ua.LocalizedText("open"), DataType.STRING, "open", None),
        ([1, 2], DataType.FLOAT, None, BAD_TYPE_MISMATCH),
    ],
)
def test_values_become_json_safe_values_of_the_tag_type(raw, data_type, value, problem):
    assert convert_to_data_type(raw, data_type) == (value, problem)


def test_a_missing_source_time_becomes_the_receive_time_and_says_so():
    tag = Tag(name="t", source="s", node_id="ns=2;s=T")
    dv = ua.DataValue(ua.Variant(2.0, ua.VariantType.Double))
    tv = tag_value_from_data_value(tag, dv, 1_700_000_000_000)
    assert (tv.value, tv.quality, tv.source_time_ms, tv.source_time_is_receive_time) == (
        2.0, GOOD, 1_700_000_000_000, True)
    at = datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=timezone.utc)
    dv = ua.DataValue(ua.Variant(2.0, ua.VariantType.Double), SourceTimestamp=at)
    assert tag_value_from_data_value(tag, dv, 1).source_time_ms == 1_700_000_000_250


@pytest.mark.parametrize(
    ("value", "variant_type", "sent"),
    [
        (True, ua.VariantType.Boolean, True),
        (1, ua.VariantType.Boolean, True),
        (-32768, ua.VariantType.Int16, -32768),
        (4_000_000_000.0, ua.VariantType.UInt32, 4_000_000_000),
        (1.1, ua.VariantType.Float, pytest.approx(1.1, rel=1e-7)),
        (2, ua.VariantType.Double, 2.0),
        (5, ua.VariantType.String, "5"),
    ],
)
def test_writes_take_the_exact_variant_type(value, variant_type, sent):
    assert value_for_variant(value, variant_type) == sent


@pytest.mark.parametrize(
    ("value", "variant_type"),
    [(40_000, ua.VariantType.Int16), (-1, ua.VariantType.UInt32), (1.5, ua.VariantType.Int32),
     (2, ua.VariantType.Boolean), (1e39, ua.VariantType.Float), ("x", ua.VariantType.Double),
     # Whole numbers the node would round to another whole number.
     (2**53 + 1, ua.VariantType.Double), (2**24 + 1, ua.VariantType.Float)],
)
def test_values_that_do_not_fit_the_node_are_refused(value, variant_type):
    with pytest.raises(ValueError):
        value_for_variant(value, variant_type)


def test_the_data_type_decides_the_variant_type_and_the_value_helps_otherwise():
    assert variant_type_of(ua.NodeId(ua.ObjectIds.Int16), None) is ua.VariantType.Int16
    assert variant_type_of(ua.NodeId(ua.ObjectIds.Duration), None) is ua.VariantType.Double
    assert variant_type_of(ua.NodeId(ua.ObjectIds.BaseDataType), ua.Variant(1, ua.VariantType.UInt16)) \
        is ua.VariantType.UInt16
    assert variant_type_of(ua.NodeId(ua.ObjectIds.BaseDataType), None) is None


def test_whole_numbers_a_float_node_holds_exactly_are_written_and_fractions_rounded():
    assert value_for_variant(2**53, ua.VariantType.Double) == float(2**53)
    assert value_for_variant(2**24, ua.VariantType.Float) == float(2**24)
    assert value_for_variant(0.1, ua.VariantType.Float) != 0.1  # single precision, on purpose
