"""Every edge node's state as one Sparkplug B Host Application sees it; pure logic, no I/O.

The adapter (data_sources/sparkplug_source.py) feeds each decoded message to SparkplugHost.on_message
and carries out the Outcome (values, Bad marks, a rebirth request). The rules kept here (Sparkplug 3.0):
- An edge node's NBIRTH carries bdSeq and every metric by name (with its alias); NDEATH (its MQTT will)
  carries the same bdSeq, and an NDEATH whose bdSeq does not match the current birth is an old
  session's will and is ignored.
- seq runs 0..255 and wraps, one counter per edge node over its NBIRTH/NDATA/DBIRTH/DDATA/DDEATH.
- After a birth, data may name metrics by alias only; aliases are unique per edge node.
- A seq gap, an unknown alias, or data from a node or device not born: ask for a rebirth.
- Death: NDEATH turns the node's metrics and all its devices' Bad; DDEATH only that device's.
- Historical metrics (is_historical) are not current values and are not reported as such.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from domain.quality import Quality
from domain.sparkplug_model import (
    BAD_NO_DATA,
    BD_SEQ_METRIC,
    SEQ_MODULUS,
    UNITS_PROPERTY,
    MessageType,
    Metric,
    MetricKey,
    NodeKey,
    Payload,
    SparkplugTopic,
    coerce_value,
    sparkplug_quality,
)
from domain.tag_value import ScalarValue

# Memory bounds: a broker full of edge nodes (or a misbehaving one) must not grow us without end.
MAX_NODES = 10_000
MAX_DEVICES_PER_NODE = 1_000
MAX_METRICS_PER_NODE = 100_000


@dataclass(frozen=True, slots=True)
class MetricUpdate:
    key: MetricKey
    value: ScalarValue
    quality: Quality
    source_time_ms: int
    source_time_is_receive_time: bool = False


@dataclass(frozen=True, slots=True)
class BirthMetric:
    """A metric announced in a birth: what discovery needs to make it a tag."""

    key: MetricKey
    datatype: int
    alias: int | None
    unit: str = ""


class Problem(StrEnum):
    SEQ_GAP = "seq_gap"
    UNKNOWN_ALIAS = "unknown_alias"
    NOT_BORN = "not_born"
    NO_SEQ = "no_seq"
    TOO_MANY = "too_many"          # a memory bound was reached; the rest of the birth is ignored


@dataclass(slots=True)
class Outcome:
    """What one message means for the source: carry it out in this order."""

    updates: list[MetricUpdate] = field(default_factory=list)
    births: list[BirthMetric] = field(default_factory=list)
    dead: list[tuple[NodeKey, str | None]] = field(default_factory=list)   # (node, device | None: whole node)
    problems: list[Problem] = field(default_factory=list)
    rebirth: NodeKey | None = None
    detail: str = ""
    ignored: bool = False


@dataclass(slots=True)
class _Device:
    born: bool = False
    metrics: dict[str, int] = field(default_factory=dict)   # name -> datatype


@dataclass(slots=True)
class NodeState:
    born: bool = False
    bd_seq: int | None = None
    next_seq: int | None = None
    aliases: dict[int, tuple[str, str]] = field(default_factory=dict)   # alias -> (device, name)
    metrics: dict[str, int] = field(default_factory=dict)               # node metric name -> datatype
    devices: dict[str, _Device] = field(default_factory=dict)

    def metric_count(self) -> int:
        return len(self.metrics) + sum(len(d.metrics) for d in self.devices.values())


class SparkplugHost:
    """Every edge node's state as one Host Application sees it. Feed it messages in arrival order."""

    def __init__(self, *, max_nodes: int = MAX_NODES, max_devices_per_node: int = MAX_DEVICES_PER_NODE,
                 max_metrics_per_node: int = MAX_METRICS_PER_NODE):
        self.nodes: dict[NodeKey, NodeState] = {}
        self._max_nodes = max_nodes
        self._max_devices = max_devices_per_node
        self._max_metrics = max_metrics_per_node

    def datatype_of(self, key: MetricKey) -> int | None:
        node = self.nodes.get(key.node_key)
        if node is None:
            return None
        if not key.device:
            return node.metrics.get(key.name)
        device = node.devices.get(key.device)
        return device.metrics.get(key.name) if device is not None else None

    def alias_of(self, key: MetricKey) -> int | None:
        node = self.nodes.get(key.node_key)
        if node is not None:
            for alias, (device, name) in node.aliases.items():
                if device == key.device and name == key.name:
                    return alias
        return None

    def is_alive(self, key: MetricKey) -> bool:
        node = self.nodes.get(key.node_key)
        if node is None or not node.born:
            return False
        return not key.device or (key.device in node.devices and node.devices[key.device].born)

    def forget_all(self) -> None:
        """The broker connection is gone: births must come again (we ask for them when data arrives)."""
        self.nodes.clear()

    def on_message(self, topic: SparkplugTopic, payload: Payload, receive_ms: int) -> Outcome:
        kind = topic.message_type
        if kind in (MessageType.NCMD, MessageType.DCMD, MessageType.STATE):
            return Outcome(ignored=True)
        key = topic.node_key
        node = self.nodes.get(key)
        if kind is MessageType.NBIRTH:
            return self._node_birth(key, payload, receive_ms)
        if kind is MessageType.NDEATH:
            return self._node_death(key, node, payload)
        outcome = Outcome()
        if node is None or not node.born:
            return self._ask_rebirth(outcome, key, Problem.NOT_BORN, f"{kind} from {key} before its NBIRTH")
        self._check_seq(outcome, key, node, payload, kind)
        if kind is MessageType.NDATA:
            self._data(outcome, key, node, "", payload, receive_ms)
        elif kind is MessageType.DBIRTH:
            self._device_birth(outcome, key, node, topic.device, payload, receive_ms)
        elif kind is MessageType.DDEATH:
            device = node.devices.get(topic.device)
            if device is not None:
                device.born = False
            outcome.dead.append((key, topic.device))
        elif kind is MessageType.DDATA:
            device = node.devices.get(topic.device)
            if device is None or not device.born:
                return self._ask_rebirth(outcome, key, Problem.NOT_BORN,
                                         f"DDATA from {key}/{topic.device} before its DBIRTH")
            self._data(outcome, key, node, topic.device, payload, receive_ms)
        return outcome

    # -- births and deaths

    def _node_birth(self, key: NodeKey, payload: Payload, receive_ms: int) -> Outcome:
        outcome = Outcome()
        if key not in self.nodes and len(self.nodes) >= self._max_nodes:
            outcome.problems.append(Problem.TOO_MANY)
            outcome.detail = f"NBIRTH from {key} ignored: already {self._max_nodes} edge nodes"
            return outcome
        node = NodeState(born=True)
        old = self.nodes.get(key)
        if old is not None:   # devices must be born again after a node birth; until then their data is refused
            node.devices = {name: _Device(metrics=device.metrics) for name, device in old.devices.items()}
        self.nodes[key] = node
        node.next_seq = (payload.seq + 1) % SEQ_MODULUS if payload.seq is not None else None
        if payload.seq is None:
            outcome.problems.append(Problem.NO_SEQ)
        for metric in payload.metrics:
            if metric.name == BD_SEQ_METRIC and isinstance(metric.raw, int):
                node.bd_seq = metric.raw
        self._learn(outcome, key, node, "", payload, receive_ms, node.metrics)
        return outcome

    def _device_birth(self, outcome: Outcome, key: NodeKey, node: NodeState, device_name: str, payload: Payload,
                      receive_ms: int) -> None:
        if device_name not in node.devices and len(node.devices) >= self._max_devices:
            outcome.problems.append(Problem.TOO_MANY)
            outcome.detail = f"DBIRTH of {key}/{device_name} ignored: already {self._max_devices} devices"
            return
        for alias in [a for a, (device, _name) in node.aliases.items() if device == device_name]:
            del node.aliases[alias]
        device = _Device(born=True)
        node.devices[device_name] = device
        self._learn(outcome, key, node, device_name, payload, receive_ms, device.metrics)

    def _learn(self, outcome: Outcome, key: NodeKey, node: NodeState, device: str, payload: Payload,
               receive_ms: int, metrics: dict[str, int]) -> None:
        """A birth: every metric by name, with its alias and type; its value is the first value."""
        for metric in payload.metrics:
            if not metric.name or metric.datatype is None:
                continue   # a birth must name and type every metric; one that does not is of no use
            if metric.name not in metrics and node.metric_count() >= self._max_metrics:
                outcome.problems.append(Problem.TOO_MANY)
                outcome.detail = f"birth of {key}/{device}: only the first {self._max_metrics} metrics are kept"
                break
            metrics[metric.name] = metric.datatype
            if metric.alias is not None:
                node.aliases[metric.alias] = (device, metric.name)
            metric_key = MetricKey(key.group, key.node, device, metric.name)
            unit = metric.property(UNITS_PROPERTY)
            outcome.births.append(BirthMetric(metric_key, metric.datatype, metric.alias,
                                              unit if isinstance(unit, str) else ""))
            outcome.updates.append(_update(metric_key, metric, metric.datatype, payload, receive_ms))

    def _node_death(self, key: NodeKey, node: NodeState | None, payload: Payload) -> Outcome:
        bd_seq = next((m.raw for m in payload.metrics if m.name == BD_SEQ_METRIC and isinstance(m.raw, int)), None)
        if node is None or not node.born:
            return Outcome(ignored=True, detail=f"NDEATH of {key}, which is not alive")
        if bd_seq is not None and node.bd_seq is not None and bd_seq != node.bd_seq:
            return Outcome(ignored=True, detail=f"NDEATH of {key} with bdSeq {bd_seq}, not the current {node.bd_seq}")
        node.born = False
        node.next_seq = None
        for device in node.devices.values():
            device.born = False
        return Outcome(dead=[(key, None)])

    # -- data

    def _check_seq(self, outcome: Outcome, key: NodeKey, node: NodeState, payload: Payload,
                   kind: MessageType) -> None:
        if payload.seq is None:
            outcome.problems.append(Problem.NO_SEQ)
            return
        expected = node.next_seq
        node.next_seq = (payload.seq + 1) % SEQ_MODULUS
        if expected is not None and payload.seq != expected:
            self._ask_rebirth(outcome, key, Problem.SEQ_GAP,
                              f"{kind} from {key} has seq {payload.seq}, expected {expected}")

    def _data(self, outcome: Outcome, key: NodeKey, node: NodeState, device_name: str, payload: Payload,
              receive_ms: int) -> None:
        metrics = node.metrics if not device_name else node.devices[device_name].metrics
        for metric in payload.metrics:
            if metric.is_historical:
                continue   # a stored value the edge node forwards late: not the current one
            name = metric.name
            if metric.alias is not None and not name:
                known = node.aliases.get(metric.alias)
                if known is None or known[0] != device_name:
                    self._ask_rebirth(outcome, key, Problem.UNKNOWN_ALIAS,
                                      f"{key}/{device_name}: unknown alias {metric.alias}")
                    continue
                name = known[1]
            if not name or name not in metrics:
                self._ask_rebirth(outcome, key, Problem.UNKNOWN_ALIAS,
                                  f"{key}/{device_name}: metric {name or metric.alias!r} not in its birth")
                continue
            datatype = metric.datatype if metric.datatype is not None else metrics[name]
            outcome.updates.append(_update(MetricKey(key.group, key.node, device_name, name), metric, datatype,
                                           payload, receive_ms))

    @staticmethod
    def _ask_rebirth(outcome: Outcome, key: NodeKey, problem: Problem, detail: str) -> Outcome:
        outcome.problems.append(problem)
        outcome.rebirth = key
        outcome.detail = outcome.detail or detail
        return outcome


def _update(key: MetricKey, metric: Metric, datatype: int, payload: Payload, receive_ms: int) -> MetricUpdate:
    at_ms = metric.timestamp_ms if metric.timestamp_ms is not None else payload.timestamp_ms
    if metric.is_null:
        value, quality = None, BAD_NO_DATA
    else:
        value, quality = coerce_value(datatype, metric.raw)
        if quality.is_good:
            quality = sparkplug_quality(metric) or quality
    if at_ms is None or value is None:
        # Bad markers carry the receive time (docs/redis-keys.md); so does a value without any timestamp.
        return MetricUpdate(key, value, quality, receive_ms, True)
    return MetricUpdate(key, value, quality, at_ms)


class RebirthLimiter:
    """At most one rebirth request per edge node every min_interval_s: a node is asked, not flooded."""

    def __init__(self, min_interval_s: float, max_nodes: int = MAX_NODES):
        self._min_interval_s = min_interval_s
        self._last_s: dict[NodeKey, float] = {}
        self._max_nodes = max_nodes

    def allow(self, key: NodeKey, now_s: float) -> bool:
        last = self._last_s.get(key)
        if last is not None and now_s - last < self._min_interval_s:
            return False
        if key not in self._last_s and len(self._last_s) >= self._max_nodes:
            cutoff = now_s - self._min_interval_s
            self._last_s = {k: t for k, t in self._last_s.items() if t > cutoff}
            if len(self._last_s) >= self._max_nodes:
                return False
        self._last_s[key] = now_s
        return True
