"""A small Sparkplug B edge node for the tests: births, data by alias, deaths, rebirth and writes on command.

It speaks through the project's own schema (data_sources/sparkplug) but builds its
payloads itself, as an independent edge node would. Its connection can go through a
TCP proxy, so a test can cut it without a DISCONNECT and the broker sends its NDEATH will.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import aiomqtt

from data_sources.sparkplug.codec import decode, encode
from domain.sparkplug_model import Metric, Payload
from domain.sparkplug_model import SparkplugType as T

NAMESPACE = "spBv1.0"


@dataclass
class EdgeMetric:
    name: str
    alias: int
    datatype: int
    value: object
    unit: str = ""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def node_metrics() -> list[EdgeMetric]:
    return [EdgeMetric("Node Control/Rebirth", 1, T.BOOLEAN, False),
            EdgeMetric("Properties/Uptime", 2, T.UINT64, 2**64 - 1),
            EdgeMetric("Status", 3, T.STRING, "running")]


def device_metrics() -> dict[str, list[EdgeMetric]]:
    return {
        "Pump1": [EdgeMetric("Inputs/Temp", 10, T.FLOAT, 21.5, "degC"),
                  EdgeMetric("Setpoint", 11, T.DOUBLE, 50.0, "%"),
                  EdgeMetric("Count", 12, T.INT64, -(2**63))],
        "Valve1": [EdgeMetric("Open", 20, T.BOOLEAN, True)],
    }


class EdgeNode:
    def __init__(self, port: int, group: str = "Plant1", node: str = "Edge1", bd_seq: int = 3):
        self.port = port
        self.group = group
        self.node = node
        self.bd_seq = bd_seq
        self.seq = 0
        self.node_metrics = node_metrics()
        self.devices = device_metrics()
        self.rebirth_requests = 0
        self.commands: list[tuple[str, Payload]] = []
        self.answer_writes = True
        self._client: aiomqtt.Client | None = None
        self._listener: asyncio.Task | None = None

    def topic(self, kind: str, device: str = "") -> str:
        return f"{NAMESPACE}/{self.group}/{kind}/{self.node}" + (f"/{device}" if device else "")

    def _death(self) -> bytes:
        return encode(Payload(timestamp_ms=now_ms(), metrics=(Metric(name="bdSeq", datatype=T.INT64,
                                                                       raw=self.bd_seq),)))

    async def __aenter__(self) -> EdgeNode:
        will = aiomqtt.Will(self.topic("NDEATH"), self._death(), qos=1)
        self._client = aiomqtt.Client("127.0.0.1", self.port, identifier=f"edge-{self.node}", will=will)
        await self._client.__aenter__()
        await self._client.subscribe([(self.topic("NCMD"), 0), (self.topic("DCMD", "+"), 0)])
        self._listener = asyncio.create_task(self._listen())
        await self.birth()
        return self

    async def __aexit__(self, *exc) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        with contextlib.suppress(Exception):
            await self._client.__aexit__(None, None, None)

    def next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % 256
        return seq

    async def birth(self) -> None:
        """NBIRTH (seq 0, bdSeq, every metric by name and alias), then each device's DBIRTH."""
        self.seq = 0
        metrics = [Metric(name="bdSeq", datatype=T.INT64, raw=self.bd_seq)]
        metrics += [self._birth_metric(m) for m in self.node_metrics]
        await self.send(self.topic("NBIRTH"), metrics)
        for device in self.devices:
            await self.device_birth(device)

    async def device_birth(self, device: str) -> None:
        await self.send(self.topic("DBIRTH", device), [self._birth_metric(m) for m in self.devices[device]])

    @staticmethod
    def _birth_metric(m: EdgeMetric) -> Metric:
        return Metric(name=m.name, alias=m.alias, datatype=m.datatype, timestamp_ms=now_ms(), raw=_raw(m),
                      properties=(("EngineeringUnits", m.unit),) if m.unit else ())

    async def send(self, topic: str, metrics: list[Metric], seq: int | None = None) -> None:
        payload = Payload(timestamp_ms=now_ms(), seq=self.next_seq() if seq is None else seq, metrics=tuple(metrics))
        await self._client.publish(topic, encode(payload), qos=0)

    async def data(self, device: str, values: dict[str, object], *, seq: int | None = None,
                   timestamp_ms: int | None = None) -> None:
        """DDATA (NDATA with device "") by alias; an unknown name is sent as alias 999."""
        metrics = self.devices[device] if device else self.node_metrics
        out = []
        for name, value in values.items():
            known = next((m for m in metrics if m.name == name), None)
            if known is not None:
                known.value = value
            alias = known.alias if known is not None else 999
            datatype = known.datatype if known is not None else T.DOUBLE
            out.append(Metric(alias=alias, timestamp_ms=timestamp_ms or now_ms(), datatype=datatype,
                              raw=_raw(EdgeMetric(name, alias, datatype, value))))
        await self.send(self.topic("DDATA" if device else "NDATA", device), out, seq)

    async def device_death(self, device: str) -> None:
        await self.send(self.topic("DDEATH", device), [])

    async def publish_raw(self, topic: str, data: bytes) -> None:
        await self._client.publish(topic, data, qos=0)

    async def _listen(self) -> None:
        async for message in self._client.messages:
            payload = decode(bytes(message.payload))
            topic = message.topic.value
            self.commands.append((topic, payload))
            if topic == self.topic("NCMD") and any(m.name == "Node Control/Rebirth" and m.raw for m in payload.metrics):
                self.rebirth_requests += 1
                await self.birth()
            elif "/DCMD/" in topic and self.answer_writes:
                device = topic.rsplit("/", 1)[1]
                for m in payload.metrics:
                    known = next(k for k in self.devices[device] if k.name == m.name or k.alias == m.alias)
                    known.value = m.raw
                    await self.send(self.topic("DDATA", device), [
                        Metric(alias=known.alias, timestamp_ms=now_ms(), datatype=known.datatype, raw=m.raw)])


def _raw(m: EdgeMetric) -> object:
    if m.datatype in (T.INT8, T.INT16, T.INT32):
        return m.value & 0xFFFFFFFF
    if m.datatype == T.INT64:
        return m.value & 0xFFFFFFFFFFFFFFFF
    return m.value
