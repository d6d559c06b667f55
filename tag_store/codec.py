"""TagValue <-> compact JSON, the wire format of LATEST, history and CHANGES."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from domain.quality import quality_from_code
from domain.tag_value import TagValue


def tag_value_to_dict(tv: TagValue) -> dict[str, Any]:
    encoded: dict[str, Any] = {
        "v": tv.value,
        "q": tv.quality.code,
        "qn": tv.quality.name,
        "ts": tv.source_time_ms,
        "rt": tv.receive_time_ms,
    }
    if tv.source_time_is_receive_time:
        encoded["tsr"] = 1
    return encoded


# allow_nan=False: a NaN must never reach a browser as invalid JSON; sources map it to Bad.
# One encoder for all calls: json.dumps with options builds a new one each time (a third of the cost).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode_tag_value(tv: TagValue) -> str:
    return _ENCODER.encode(tag_value_to_dict(tv))


def tag_value_from_dict(tag: str, d: dict[str, Any]) -> TagValue:
    return TagValue(
        tag=tag,
        value=d.get("v"),
        quality=quality_from_code(int(d["q"]), d.get("qn")),
        source_time_ms=int(d["ts"]),
        receive_time_ms=int(d["rt"]),
        source_time_is_receive_time=bool(d.get("tsr")),
    )


def decode_tag_value(tag: str, raw: str | bytes) -> TagValue:
    return tag_value_from_dict(tag, json.loads(raw))


def decode_tag_dicts(raws: Sequence[str | bytes]) -> list[dict[str, Any]]:
    """Many encoded TagValues at once, as the dicts tag_value_to_dict makes: one json.loads over the
    joined entries (a history page of thousands), a fraction of the cost of decode_tag_value each."""
    if not raws:
        return []
    if all(isinstance(raw, bytes) for raw in raws):
        return json.loads(b"[" + b",".join(raws) + b"]")
    return json.loads("[" + ",".join(raw.decode() if isinstance(raw, bytes) else raw for raw in raws) + "]")
