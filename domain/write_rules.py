"""Whether an operator's requested write may be sent: decided before anything leaves the server."""
from __future__ import annotations

import math

from domain.config_model import DataType, Tag
from domain.quality import Quality
from domain.tag_value import ScalarValue


class WriteRefused(Exception):
    """The write is not sent; str() is the reason shown to the operator."""


MAX_REASON_LENGTH = 500

_TRUE_WORDS = {"1", "true", "on", "yes", "run", "start"}
_FALSE_WORDS = {"0", "false", "off", "no", "stop"}


def parse_entry(tag: Tag, entry: object) -> ScalarValue:
    """Turn what the operator typed (or an API value) into a value of the tag's data type."""
    if entry is None or (isinstance(entry, str) and not entry.strip()):
        raise WriteRefused("enter a value")
    if tag.data_type is DataType.STRING:
        return str(entry)
    if tag.data_type is DataType.BOOL:
        if isinstance(entry, bool):
            return entry
        word = str(entry).strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise WriteRefused(f"'{entry}' is not on/off")
    if isinstance(entry, bool):
        raise WriteRefused("a number is needed, not on/off")
    if tag.data_type is DataType.INT:
        whole = _exact_integer(entry)
        if whole is not None:
            return whole
    try:
        number = float(str(entry).strip()) if not isinstance(entry, (int, float)) else float(entry)
    except ValueError:
        raise WriteRefused(f"'{entry}' is not a number") from None
    if not math.isfinite(number):
        raise WriteRefused("the value must be a finite number (not NaN or infinity)")
    if tag.data_type is DataType.INT:
        if number != int(number):
            raise WriteRefused(f"{tag.name} takes whole numbers only")
        return int(number)
    return number


def check_reason(tag: Tag, reason: object) -> str:
    """The write's reason as it will be recorded (trimmed; "" when none was given).

    Refused when the tag requires one and none was given, or when it is not text or too long.
    Runs of white space (line breaks, tabs) become one space.
    """
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise WriteRefused("the reason must be text")
    reason = " ".join(reason.split())  # one line: no control characters or line breaks into the audit trail
    if len(reason) > MAX_REASON_LENGTH:
        raise WriteRefused(f"the reason is longer than {MAX_REASON_LENGTH} characters ({len(reason)})")
    if tag.reason_required and not reason:
        raise WriteRefused(f"a reason is required to write {tag.name}")
    return reason


def _exact_integer(entry: object) -> int | None:
    """An integer as given, never through float: a double holds every integer only up to 2**53."""
    if isinstance(entry, int):
        return entry
    if isinstance(entry, str):
        try:
            return int(entry.strip())
        except ValueError:
            return None
    return None


def check_write(tag: Tag, value: ScalarValue, current: ScalarValue | None,
                current_quality: Quality | None = None) -> None:
    """Raise WriteRefused unless `value` may be written to `tag` now.

    A tag with a max_step is refused while its current value is unknown (none, not a
    number, or of Bad quality): the step cannot be judged, so it is not taken on trust.
    """
    if not tag.writable:
        raise WriteRefused(f"{tag.name} is not writable")
    if not tag.data_type.is_numeric:
        return
    assert isinstance(value, (int, float))
    band = tag.limits or tag.range
    if band is not None and not (band.low <= value <= band.high):
        which = "operator limits" if tag.limits else "engineering range"
        raise WriteRefused(f"{value:g} is outside the {which} {band.low:g} .. {band.high:g} {tag.unit}".rstrip())
    if tag.max_step is not None:
        known = _known_number(current, current_quality)
        if isinstance(known, str):
            raise WriteRefused(
                f"current value unknown ({known}): the step limit of {tag.max_step:g} {tag.unit}".rstrip()
                + " cannot be checked"
            )
        if abs(value - known) > tag.max_step:
            raise WriteRefused(
                f"a step of {abs(value - known):g} is larger than the allowed {tag.max_step:g} {tag.unit}".rstrip()
            )


def _known_number(current: ScalarValue | None, quality: Quality | None) -> float | int | str:
    """The current value if a step can be judged from it, else why not (a str)."""
    if quality is not None and quality.is_bad:
        return quality.name or "Bad"
    if current is None:
        return "no value"
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        return "not a number"
    if isinstance(current, float) and not math.isfinite(current):
        return "not a finite number"
    return current


def readback_matches(tag: Tag, requested: ScalarValue, readback: ScalarValue) -> bool:
    """Did the device take the value? Numbers agree within the tag's write tolerance."""
    if tag.data_type.is_numeric and isinstance(readback, (int, float)) and not isinstance(readback, bool):
        if isinstance(requested, int) and not isinstance(requested, bool):
            # Exact: 64-bit integers exceed a double (2**53 + 1 must not match 2**53.0).
            if isinstance(readback, float) and readback.is_integer():
                readback = int(readback)
            if isinstance(readback, int):
                return abs(readback - requested) <= tag.write_tolerance
        return abs(float(readback) - float(requested)) <= tag.write_tolerance + 1e-9 * max(1.0, abs(float(requested)))
    return readback == requested
