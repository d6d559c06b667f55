"""Data quality as OPC UA StatusCodes, the one quality language of Stacklight.

MQTT and other sources map their failures onto the same codes so the operator
reads one vocabulary (Good / Uncertain / Bad plus a sub-code) for every tag.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class QualityFamily(StrEnum):
    GOOD = "Good"
    UNCERTAIN = "Uncertain"
    BAD = "Bad"


@dataclass(frozen=True, slots=True)
class Quality:
    """An OPC UA StatusCode (Part 4, 7.39) with its symbolic name."""

    code: int
    name: str

    @property
    def family(self) -> QualityFamily:
        severity = (self.code >> 30) & 0b11  # top two bits
        if severity == 0:
            return QualityFamily.GOOD
        if severity == 1:
            return QualityFamily.UNCERTAIN
        return QualityFamily.BAD

    @property
    def is_good(self) -> bool:
        return self.family is QualityFamily.GOOD

    @property
    def is_bad(self) -> bool:
        return self.family is QualityFamily.BAD


GOOD = Quality(0x00000000, "Good")
UNCERTAIN = Quality(0x40000000, "Uncertain")
UNCERTAIN_LAST_USABLE_VALUE = Quality(0x40900000, "UncertainLastUsableValue")
BAD = Quality(0x80000000, "Bad")
BAD_COMMUNICATION_ERROR = Quality(0x80050000, "BadCommunicationError")
BAD_DECODING_ERROR = Quality(0x80070000, "BadDecodingError")
BAD_NO_COMMUNICATION = Quality(0x80310000, "BadNoCommunication")
BAD_WAITING_FOR_INITIAL_DATA = Quality(0x80320000, "BadWaitingForInitialData")
BAD_NODE_ID_UNKNOWN = Quality(0x80340000, "BadNodeIdUnknown")
BAD_OUT_OF_RANGE = Quality(0x803C0000, "BadOutOfRange")
BAD_TYPE_MISMATCH = Quality(0x80740000, "BadTypeMismatch")
BAD_CONFIGURATION_ERROR = Quality(0x80890000, "BadConfigurationError")
BAD_SENSOR_FAILURE = Quality(0x808C0000, "BadSensorFailure")

_KNOWN = {
    q.code: q
    for q in (
        GOOD, UNCERTAIN, UNCERTAIN_LAST_USABLE_VALUE, BAD, BAD_COMMUNICATION_ERROR,
        BAD_DECODING_ERROR, BAD_NO_COMMUNICATION, BAD_WAITING_FOR_INITIAL_DATA,
        BAD_NODE_ID_UNKNOWN, BAD_OUT_OF_RANGE, BAD_TYPE_MISMATCH,
        BAD_CONFIGURATION_ERROR, BAD_SENSOR_FAILURE,
    )
}


def quality_from_code(code: int, name: str | None = None) -> Quality:
    """The Quality for a StatusCode; the name comes from the source when we do not know it."""
    code &= 0xFFFFFFFF
    known = _KNOWN.get(code)
    if known is not None:
        return known
    if name:
        return Quality(code, name)
    family = Quality(code, "").family
    return Quality(code, f"{family.value}_0x{code:08X}")


def known_qualities() -> list[Quality]:
    """The StatusCodes Stacklight names itself (a device may name these in a quality field)."""
    return list(_KNOWN.values())
