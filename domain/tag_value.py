"""The value of one tag at one time: what travels from a data source to the screen."""
from __future__ import annotations

from dataclasses import dataclass

from domain.quality import Quality

ScalarValue = float | int | bool | str | None


@dataclass(frozen=True, slots=True)
class TagValue:
    """One sample. Times are Unix epoch milliseconds (UTC).

    `source_time_ms` is the device's timestamp; when the device sent none it is
    the receive time and `source_time_is_receive_time` says so.
    """

    tag: str
    value: ScalarValue
    quality: Quality
    source_time_ms: int
    receive_time_ms: int
    source_time_is_receive_time: bool = False
