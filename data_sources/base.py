"""The interface every data source implements, and what all of them share.

A source owns one connection loop (`run`, forever, until cancelled) and answers
writes (`write`). Values go to the tag store only through `publish_value` /
`mark_all_bad`, which also keep the source's view of each tag's latest value.
"""
from __future__ import annotations

import abc
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from domain.config_model import MqttSource, OpcUaSource, SparkplugSource, Tag
from domain.quality import BAD_WAITING_FOR_INITIAL_DATA, Quality
from domain.tag_value import ScalarValue, TagValue
from tag_store.source_status import ConnectionState, SourceStatus
from tag_store.write_requests import WriteStatus
from tag_store.writer import TagStoreWriter

SourceConfig = OpcUaSource | MqttSource | SparkplugSource


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SourceConfigError(Exception):
    """A source that cannot start as configured; str() is the message for the operator."""


@dataclass(slots=True)
class SourceCounters:
    """Diagnostics published with the source's heartbeat (sl:source:<name>, fields n.<counter>)."""

    received: int = 0        # values from the device handed to the tag store
    bad_payloads: int = 0    # messages / values that could not be used (their tags marked Bad)
    dropped: int = 0         # updates lost in a full queue (counted, never silently)
    missed_notifications: int = 0  # OPC UA: gaps in notification sequence numbers
    server_queue_overflows: int = 0  # OPC UA: values flagged "overflow" by the server's item queue
    items_sampling_revised: int = 0  # OPC UA: items the server samples slower than configured (now)
    items_queue_revised: int = 0     # OPC UA: items whose queue the server made smaller than configured (now)
    device_alarm_events: int = 0     # OPC UA Alarms & Conditions: events received
    device_alarm_events_dropped: int = 0  # ... lost in a full outbox while Redis was away (counted, never silently)
    sparkplug_births: int = 0             # Sparkplug B: NBIRTH / DBIRTH received
    sparkplug_deaths: int = 0             # ... NDEATH / DDEATH that turned metrics Bad
    sparkplug_seq_gaps: int = 0           # ... messages whose seq was not the next of their edge node
    sparkplug_unknown_aliases: int = 0    # ... metrics by an alias (or name) not in the birth, or data before a birth
    sparkplug_rebirths_requested: int = 0  # ... NCMD Node Control/Rebirth sent (rate-limited per node)
    sparkplug_decode_errors: int = 0      # ... payloads that are not Sparkplug B protobuf (also in bad_payloads)
    sparkplug_tags_discovered: int = 0    # ... metrics that became tags from births
    # MQTT: bad payloads by kind (each also counts in bad_payloads), topics nobody asked for, templates.
    payload_too_large: int = 0
    payload_not_utf8: int = 0
    payload_not_json: int = 0
    payload_not_finite: int = 0      # NaN / Infinity
    payload_wrong_type: int = 0      # the value (or its path) is not what the tag needs
    payload_bad_timestamp: int = 0
    payload_bad_quality: int = 0
    unknown_topics: int = 0          # messages on topics no tag, template or availability wants
    template_tags: int = 0           # tags made by topic templates
    template_names_invalid: int = 0  # messages whose template gave no valid tag name (or one already taken)
    template_limit_reached: int = 0  # messages refused because their template made max_tags already
    devices_offline: int = 0         # offline announcements (Last Will) on availability topics
    connects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    writes_done: int = 0
    writes_rejected: int = 0
    writes_timed_out: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What the device did with a write; the write handler turns it into a WriteOutcome."""

    status: WriteStatus
    reason: str
    readback: ScalarValue = None
    device_status: str = ""

    @staticmethod
    def rejected(reason: str, device_status: str = "") -> WriteResult:
        return WriteResult(WriteStatus.REJECTED, reason, device_status=device_status)


class ConnectionLog:
    """The first failure is logged loudly (error), repeats quietly (debug), recovery at info."""

    def __init__(self, logger: logging.Logger, source_name: str):
        self._log = logger
        self._source_name = source_name
        self._failing = False

    @property
    def failing(self) -> bool:
        return self._failing

    def failed(self, message: str) -> None:
        if self._failing:
            self._log.debug("source %s: %s", self._source_name, message)
        else:
            self._log.error("source %s: %s (retrying quietly)", self._source_name, message)
            self._failing = True

    def connected(self, message: str) -> None:
        if self._failing:
            self._log.info("source %s recovered: %s", self._source_name, message)
            self._failing = False
        else:
            self._log.info("source %s: %s", self._source_name, message)


class DataSource(abc.ABC):
    kind: ClassVar[str]

    def __init__(self, name: str, config: SourceConfig, tags: list[Tag], store: TagStoreWriter, *, data_dir: Path):
        self.name = name
        self.config = config
        self.tags = list(tags)
        self.tags_by_name = {tag.name: tag for tag in self.tags}
        self.data_dir = Path(data_dir)
        self.counters = SourceCounters()
        self.state = ConnectionState.CONNECTING
        self.detail = "starting"
        self._store = store
        self._latest: dict[str, TagValue] = {}
        self.log = logging.getLogger(f"{type(self).__module__}.{name}")
        self.connection_log = ConnectionLog(self.log, name)

    @abc.abstractmethod
    async def run(self) -> None:
        """Connect, stream values, and reconnect forever; returns only by cancellation."""

    @abc.abstractmethod
    async def write(self, tag: Tag, value: ScalarValue, timeout_s: float) -> WriteResult:
        """Send `value` (already checked against the write rules) and confirm it by readback."""

    def publish_value(self, tv: TagValue) -> None:
        """A value from the device: to the tag store, and remembered as the tag's latest."""
        self._latest[tv.tag] = tv
        self._store.submit(tv)
        self.counters.received += 1

    def mark_tag_bad(self, tag_name: str, quality: Quality, receive_time_ms: int | None = None) -> None:
        """The tag has no usable value (with `quality` saying why); repeated marks are not re-sent."""
        last = self._latest.get(tag_name)
        if last is not None and last.quality == quality and last.value is None:
            return
        at_ms = receive_time_ms or now_ms()
        tv = TagValue(tag_name, None, quality, at_ms, at_ms, source_time_is_receive_time=True)
        self._latest[tag_name] = tv
        self._store.submit(tv)

    def mark_all_bad(self, quality: Quality) -> None:
        at_ms = now_ms()
        for tag in self.tags:
            self.mark_tag_bad(tag.name, quality, at_ms)

    def publish_waiting_for_initial_data(self) -> None:
        """Before the first data: every tag shows as not-yet-live rather than missing."""
        self.mark_all_bad(BAD_WAITING_FOR_INITIAL_DATA)

    def latest(self, tag_name: str) -> TagValue | None:
        return self._latest.get(tag_name)

    def current_value(self, tag_name: str) -> ScalarValue:
        """The tag's latest usable value (None when it has none): what max_step is judged against."""
        tv = self._latest.get(tag_name)
        return tv.value if tv is not None and not tv.quality.is_bad else None

    def set_state(self, state: ConnectionState, detail: str) -> None:
        self.state = state
        self.detail = detail

    def status(self) -> SourceStatus:
        return SourceStatus(self.name, self.state, self.detail, now_ms(), self.counters.as_dict())
