"""How the simulator's values and units look in OPC UA: variant types, timestamped DataValues, EUInformation."""
from __future__ import annotations

from datetime import datetime

from asyncua import ua

VARIANT_TYPES = {"float": ua.VariantType.Double, "bool": ua.VariantType.Boolean, "int": ua.VariantType.Int32}
_CEFACT_URI = "http://www.opcfoundation.org/UA/units/un/cefact"
# UNECE Recommendation 20 common codes of the units the demo uses.
_UNECE_CODES = {"m": "MTR", "%": "P1", "m3/h": "MQH", "degC": "CEL", "bar": "BAR", "A": "AMP"}


class SharedDataValue(ua.DataValue):
    """A DataValue that asyncua's monitored items share instead of deep-copying.

    asyncua deep-copies the value once per monitored item per change; at 10,000 changes/s
    that copy took half of the server's CPU. Ours hold immutable scalars and are never
    mutated after the write, so sharing them is safe.
    """

    __slots__ = ()

    def __deepcopy__(self, _memo: dict) -> SharedDataValue:
        return self


def data_value(value: float | bool | int, variant_type: ua.VariantType, now: datetime) -> ua.DataValue:
    return SharedDataValue(ua.Variant(value, variant_type), SourceTimestamp=now, ServerTimestamp=now)


def eu_information(unit: str) -> ua.EUInformation:
    """EUInformation as OPC UA Part 8 encodes it: the UNECE code packed into an Int32, -1 if unknown."""
    code = _UNECE_CODES.get(unit)
    unit_id = -1
    if code is not None:
        unit_id = 0
        for char in code:
            unit_id = (unit_id << 8) | ord(char)
    return ua.EUInformation(
        NamespaceUri=_CEFACT_URI, UnitId=unit_id,
        DisplayName=ua.LocalizedText(unit), Description=ua.LocalizedText(unit),
    )
