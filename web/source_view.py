"""Each data source as an engineer reads it: where it connects, its state, heartbeat and counters.

Pure: the plant's sources, the statuses the LiveCache holds and the time in, rows out.
The /sources page and GET /api/sources show the same rows. Addresses never carry
credentials; counters that mean lost or unusable data are flagged when non-zero.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from domain.config_model import MqttSource, OpcUaSource, PlantConfig, Tag
from domain.freshness import SOURCE_HEARTBEAT_TIMEOUT_S
from tag_store.source_status import SourceStatus

# Non-zero means values were lost or could not be used: the page highlights these.
# Counters that mean values were lost, refused or could not be placed: marked when non-zero.
LOSS_COUNTERS = frozenset({
    "dropped", "server_queue_overflows", "missed_notifications", "bad_payloads", "connect_failures",
    "payload_too_large", "payload_not_utf8", "payload_not_json", "payload_not_finite", "payload_wrong_type",
    "payload_bad_timestamp", "payload_bad_quality", "unknown_topics", "template_names_invalid",
    "template_limit_reached", "sparkplug_seq_gaps", "sparkplug_unknown_aliases", "sparkplug_decode_errors",
    "device_alarm_events_dropped",
})
# The order of data_sources/base.py SourceCounters; counters added later follow by name.
COUNTER_ORDER = (
    "received", "bad_payloads", "dropped", "missed_notifications", "server_queue_overflows",
    "items_sampling_revised", "items_queue_revised", "connects", "reconnects", "connect_failures",
    "writes_done", "writes_rejected", "writes_timed_out",
)
EMBEDDED_BROKER = "embedded broker"


class Heartbeat(StrEnum):
    FRESH = "fresh"
    STALE = "stale"      # the data source process stopped beating: it is down or hung
    MISSING = "missing"  # no heartbeat at all (never started, expired, or Redis unreachable)


@dataclass(frozen=True, slots=True)
class CounterView:
    name: str
    label: str
    value: int
    loss: bool  # a loss counter that is non-zero


@dataclass(frozen=True, slots=True)
class SourceRow:
    name: str
    kind: str
    address: str
    state: str             # connecting / connected / disconnected as last reported, or "unknown"
    detail: str
    heartbeat: Heartbeat
    heartbeat_age_s: float | None
    heartbeat_text: str
    tag_count: int
    counters: tuple[CounterView, ...]
    discovered_tag_count: int = 0  # of tag_count, those the source discovered at run time

    @property
    def has_loss(self) -> bool:
        return any(c.loss for c in self.counters)

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["heartbeat"] = self.heartbeat.value
        record["counters"] = {c.name: c.value for c in self.counters}
        record["loss_counters"] = [c.name for c in self.counters if c.loss]
        return record


def source_address(source: OpcUaSource | MqttSource) -> str:
    """Where the source connects, without user names or passwords."""
    if isinstance(source, OpcUaSource):
        parts = urlsplit(source.endpoint)
        host = parts.netloc.rsplit("@", 1)[-1]  # drop any user:password@ written into the URL
        return parts._replace(netloc=host).geturl()
    if source.host is None:
        return f"{EMBEDDED_BROKER}:{source.port}" if source.port else EMBEDDED_BROKER
    return f"{source.host}:{source.port or 1883}"


def counter_label(name: str) -> str:
    return name.replace("_", " ")


def ordered_counters(counters: dict[str, int]) -> tuple[CounterView, ...]:
    known = [n for n in COUNTER_ORDER if n in counters]
    others = sorted(n for n in counters if n not in COUNTER_ORDER)
    return tuple(
        CounterView(name, counter_label(name), counters[name], name in LOSS_COUNTERS and counters[name] != 0)
        for name in known + others
    )


def judge_heartbeat(status: SourceStatus | None, now_ms: int) -> tuple[Heartbeat, float | None, str]:
    if status is None or status.heartbeat_ms <= 0:
        return Heartbeat.MISSING, None, "no heartbeat: data source process not running"
    age_s = max(0.0, (now_ms - status.heartbeat_ms) / 1000)
    if age_s > SOURCE_HEARTBEAT_TIMEOUT_S:
        return Heartbeat.STALE, round(age_s, 1), f"stale heartbeat ({age_s:.0f} s ago): data source process down"
    return Heartbeat.FRESH, round(age_s, 1), f"{age_s:.1f} s ago"


def source_rows(config: PlantConfig, statuses: dict[str, SourceStatus | None], now_ms: int,
                discovered: Iterable[Tag] = ()) -> list[SourceRow]:
    """One row per configured source, in plant-file order; tag counts include the discovered tags given."""
    found = Counter(t.source for t in discovered)
    rows = []
    for name, source in config.sources.items():
        status = statuses.get(name)
        heartbeat, age_s, heartbeat_text = judge_heartbeat(status, now_ms)
        rows.append(SourceRow(
            name=name,
            kind=source.kind,
            address=source_address(source),
            state=status.state.value if status is not None else "unknown",
            detail=status.detail if status is not None else "",
            heartbeat=heartbeat,
            heartbeat_age_s=age_s,
            heartbeat_text=heartbeat_text,
            tag_count=len(config.tags_of_source(name)) + found[name],
            counters=ordered_counters(status.counters if status is not None else {}),
            discovered_tag_count=found[name],
        ))
    return rows
