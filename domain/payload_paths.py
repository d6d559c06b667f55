"""Reading tag values out of message payloads: value paths, timestamps, plain and JSON payloads.

Pure functions, no I/O. A value path is a dotted path with list indices, e.g.
`sensors[2].value` or `[0].reading`; a timestamp is ISO 8601 or a Unix epoch in
seconds or milliseconds. Every failure raises a PayloadError whose `quality`
says how the tag is to be marked (BadDecodingError or BadTypeMismatch) and
whose `kind` names the failure for the source's counters (payload_<kind>).

A quality field (quality_path) may be a boolean, "good" / "uncertain" / "bad"
(any case) or an OPC UA StatusCode name, an OPC UA StatusCode number, or an
OPC DA quality (1..255, 192 = good, 64 = uncertain, below 64 = bad). 0 is read as
OPC UA Good, not as DA Bad: a DA gateway's bad values must carry a non-zero code.
"""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from domain.config_model import DataType, Tag
from domain.quality import (
    BAD,
    BAD_DECODING_ERROR,
    BAD_TYPE_MISMATCH,
    GOOD,
    UNCERTAIN,
    Quality,
    known_qualities,
    quality_from_code,
)
from domain.tag_value import ScalarValue, TagValue

MAX_PAYLOAD_BYTES = 256 * 1024
# Below this an epoch number is seconds (1e11 s is the year 5138), at or above it milliseconds.
EPOCH_MS_THRESHOLD = 1e11

PathPart = str | int

_SEGMENT = re.compile(r"^(?P<key>[^.\[\]]*)(?P<indices>(?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")
_TRUE_WORDS = {"true", "1", "on", "yes"}
_FALSE_WORDS = {"false", "0", "off", "no"}


class PayloadError(ValueError):
    """A payload (or a part of it) that cannot become a tag value; str() says why."""

    quality: Quality = BAD_DECODING_ERROR
    kind: str = "not_decodable"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class PayloadDecodingError(PayloadError):
    quality = BAD_DECODING_ERROR
    kind = "not_decodable"


class PayloadTypeMismatch(PayloadError):
    quality = BAD_TYPE_MISMATCH
    kind = "wrong_type"


# The kinds a PayloadError may have: each is a source counter n.payload_<kind>.
PAYLOAD_ERROR_KINDS = ("too_large", "not_utf8", "not_json", "not_finite", "wrong_type", "bad_timestamp", "bad_quality")


class ValuePathSyntaxError(ValueError):
    pass


def parse_value_path(path: str) -> tuple[PathPart, ...]:
    """`sensors[2].value` -> ("sensors", 2, "value"). Keys are non-empty; indices are >= 0."""
    if not path:
        raise ValuePathSyntaxError("the value path is empty")
    parts: list[PathPart] = []
    for position, segment in enumerate(path.split(".")):
        match = _SEGMENT.match(segment)
        if match is None:
            raise ValuePathSyntaxError(f"'{path}': segment '{segment}' is not 'key' or 'key[n]'")
        key, indices = match.group("key"), match.group("indices")
        if key:
            parts.append(key)
        elif position > 0 or not indices:
            raise ValuePathSyntaxError(f"'{path}': empty key in segment {position + 1}")
        parts.extend(int(i) for i in _INDEX.findall(indices))
    return tuple(parts)


def format_value_path(parts: tuple[PathPart, ...]) -> str:
    """The inverse of parse_value_path."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def extract_value(document: Any, parts: tuple[PathPart, ...]) -> Any:
    """The node of `document` at `parts`; PayloadTypeMismatch when the path is not there."""
    node = document
    for depth, part in enumerate(parts):
        where = format_value_path(parts[:depth]) or "the top level"
        if isinstance(part, int):
            if not isinstance(node, list):
                raise PayloadTypeMismatch(f"no list at {where} for index [{part}]")
            if part >= len(node):
                raise PayloadTypeMismatch(f"index [{part}] is past the end of the list at {where} ({len(node)} items)")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise PayloadTypeMismatch(f"no object at {where} for key '{part}'")
            if part not in node:
                raise PayloadTypeMismatch(f"key '{part}' is missing at {where}")
            node = node[part]
    return node


def parse_timestamp_ms(raw: object) -> int:
    """ISO 8601 text (naive means UTC) or epoch seconds / milliseconds -> epoch ms."""
    if isinstance(raw, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(raw, str):
        text = raw.strip()
        try:
            number = float(text)
        except ValueError:
            return _iso_to_ms(text)
        return _epoch_to_ms(number)
    if isinstance(raw, (int, float)):
        return _epoch_to_ms(float(raw))
    raise ValueError(f"{type(raw).__name__} is not a timestamp")


def _iso_to_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text[:40]}' is neither ISO 8601 nor an epoch number") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)


def _epoch_to_ms(number: float) -> int:
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{number} is not a valid epoch time")
    return round(number) if number >= EPOCH_MS_THRESHOLD else round(number * 1000)


def payload_text(payload: bytes, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> str:
    """The payload as text; too large or invalid UTF-8 is a decoding error."""
    if len(payload) > max_payload_bytes:
        raise PayloadDecodingError(f"payload of {len(payload)} bytes is larger than {max_payload_bytes}", "too_large")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadDecodingError(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})", "not_utf8") from None


def _refuse_constant(name: str) -> None:
    raise PayloadDecodingError(f"{name} is not a valid JSON number", "not_finite")


def parse_json_document(text: str) -> Any:
    """Strict JSON: NaN and Infinity are refused (JSON cannot carry them to the browser)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = f"{exc.msg} at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise PayloadDecodingError(f"not JSON: {reason}", "not_json") from None


_QUALITY_WORDS = {"good": GOOD, "uncertain": UNCERTAIN, "bad": BAD}
DA_GOOD_MASK = 0xC0


def parse_quality(raw: Any) -> Quality:
    """A device's quality field as a StatusCode (module docstring); anything else is a PayloadError."""
    if isinstance(raw, bool):
        return GOOD if raw else BAD
    if isinstance(raw, str):
        word = raw.strip().lower()
        quality = _QUALITY_WORDS.get(word) or _quality_names().get(word)
        if quality is None:
            raise PayloadTypeMismatch(f"quality {_describe(raw)} is not good, uncertain, bad or a StatusCode name",
                                      "bad_quality")
        return quality
    if isinstance(raw, (int, float)) and math.isfinite(raw) and raw == int(raw):
        code = int(raw)
        if code == 0 or 0x40000000 <= code <= 0xFFFFFFFF:
            return quality_from_code(code)
        if 0 < code <= 0xFF:  # OPC DA: the top two bits, 11 good, 01 uncertain, 00 bad (10 is not used)
            family = code & DA_GOOD_MASK
            return GOOD if family == DA_GOOD_MASK else UNCERTAIN if family == 0x40 else BAD
    raise PayloadTypeMismatch(f"quality {_describe(raw)} is neither a StatusCode nor an OPC DA quality", "bad_quality")


@lru_cache(maxsize=1)
def _quality_names() -> dict[str, Quality]:
    return {quality.name.lower(): quality for quality in known_qualities()}


def coerce_to_data_type(raw: Any, data_type: DataType) -> ScalarValue:
    """A decoded JSON node (or plain text) as a value of the tag's data type."""
    if data_type is DataType.STRING:
        if isinstance(raw, (dict, list)) or raw is None:
            raise PayloadTypeMismatch(f"expected text, got {_describe(raw)}")
        return raw if isinstance(raw, str) else json.dumps(raw)
    if data_type is DataType.BOOL:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, (int, float)) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str) and raw.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
            return raw.strip().lower() in _TRUE_WORDS
        raise PayloadTypeMismatch(f"expected on/off, got {_describe(raw)}")
    number = _as_number(raw)
    if data_type is DataType.INT:
        if number != int(number):
            raise PayloadTypeMismatch(f"expected a whole number, got {number!r}")
        return int(number)
    return float(number)


def _as_number(raw: Any) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise PayloadTypeMismatch(f"expected a number, got {_describe(raw)}")
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            raise PayloadTypeMismatch(f"expected a number, got {_describe(raw)}") from None
    if isinstance(raw, float) and not math.isfinite(raw):
        raise PayloadDecodingError(f"{raw} is not a finite number", "not_finite")
    return raw


def _describe(raw: Any) -> str:
    if isinstance(raw, str):
        return f"text '{raw[:40]}'"
    if raw is None:
        return "null"
    if isinstance(raw, (dict, list)):
        return "an object" if isinstance(raw, dict) else "a list"
    return f"{type(raw).__name__} {raw!r}"


def read_tags_from_payload(
    payload: bytes, tags: list[Tag], receive_time_ms: int, max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> list[tuple[TagValue, PayloadError | None]]:
    """One TagValue per tag fed by this message: its value with its quality, or Bad with the reason.

    Tags with a value_path read from the JSON document; tags without one take the
    whole payload as a plain value. A tag's timestamp_path gives the source time
    (without one, or when the message has no such field, the receive time is used
    and the value says so); its quality_path the quality (without one Good). A time
    or quality that is there but unusable, or a missing quality, makes the tag Bad:
    a wrong time or quality must not pass as right.
    """
    try:
        text = payload_text(payload, max_payload_bytes)
    except PayloadError as exc:
        return [(_bad(tag, exc, receive_time_ms), exc) for tag in tags]
    document: Any = None
    document_error: PayloadError | None = None
    if any(tag.value_path or tag.timestamp_path or tag.quality_path for tag in tags):
        try:
            document = parse_json_document(text)
        except PayloadError as exc:
            document_error = exc
    readings = []
    for tag in tags:
        try:
            if document_error is not None and (tag.value_path or tag.timestamp_path or tag.quality_path):
                raise document_error
            if tag.value_path:
                raw = extract_value(document, parse_value_path_cached(tag.value_path))
            else:
                raw = _plain_value(text, tag.data_type)
            value = coerce_to_data_type(raw, tag.data_type)
            source_time_ms = _source_time_ms(document, tag.timestamp_path)
            quality = GOOD if tag.quality_path is None else parse_quality(
                _at_path(document, tag.quality_path, "bad_quality"))
        except PayloadError as exc:
            readings.append((_bad(tag, exc, receive_time_ms), exc))
            continue
        readings.append((
            TagValue(tag.name, value, quality, source_time_ms or receive_time_ms, receive_time_ms,
                     source_time_is_receive_time=source_time_ms is None),
            None,
        ))
    return readings


def _plain_value(text: str, data_type: DataType) -> str:
    # Text tags keep the payload as sent; numbers and on/off words may carry whitespace.
    return text if data_type is DataType.STRING else text.strip()


def _at_path(document: Any, path: str, kind: str) -> Any:
    try:
        return extract_value(document, parse_value_path_cached(path))
    except PayloadError as exc:
        raise PayloadTypeMismatch(str(exc), kind) from None


def _source_time_ms(document: Any, timestamp_path: str | None) -> int | None:
    if timestamp_path is None:
        return None
    try:
        raw = extract_value(document, parse_value_path_cached(timestamp_path))
    except PayloadError:
        return None   # no time sent: the receive time stands in, and the value says so
    try:
        return parse_timestamp_ms(raw)
    except ValueError as exc:
        raise PayloadTypeMismatch(f"timestamp at {timestamp_path}: {exc}", "bad_timestamp") from None


def _bad(tag: Tag, error: PayloadError, receive_time_ms: int) -> TagValue:
    return TagValue(tag.name, None, error.quality, receive_time_ms, receive_time_ms, source_time_is_receive_time=True)


@lru_cache(maxsize=4096)
def parse_value_path_cached(path: str) -> tuple[PathPart, ...]:
    return parse_value_path(path)
