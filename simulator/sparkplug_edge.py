"""A packaging line as a Sparkplug B edge node: group "Demo", node "Packaging", device "Filler1".

It behaves as Sparkplug 3.0 asks of an edge node: NDEATH as its will (with a bdSeq
that grows with every connection), NBIRTH then DBIRTH with every metric by name and
alias, DDATA by alias once a second with seq 0..255, a fresh birth on an NCMD
"Node Control/Rebirth", and DCMD writes to the speed setpoint answered with DDATA.
The filler's speed ramps to its setpoint while it runs; the bottle count follows.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiomqtt

from data_sources.sparkplug.codec import decode, encode
from domain.sparkplug_model import Metric, Payload, SparkplugDecodeError
from domain.sparkplug_model import SparkplugType as T

_log = logging.getLogger(__name__)

GROUP, NODE, DEVICE = "Demo", "Packaging", "Filler1"
NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
SETPOINT = "Speed setpoint"
SPEED_LIMITS_BPM = (0.0, 600.0)
RAMP_BPM_PER_S = 20.0


def topic(kind: str, device: str = "") -> str:
    return f"{NAMESPACE}/{GROUP}/{kind}/{NODE}" + (f"/{device}" if device else "")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Filler:
    """The device's process: speed follows the setpoint at a limited ramp while running."""

    setpoint_bpm: float = 300.0
    speed_bpm: float = 0.0
    running: bool = True
    bottles: int = 0
    _carry: float = 0.0

    def step(self, dt_s: float) -> None:
        target = self.setpoint_bpm if self.running else 0.0
        change = max(-RAMP_BPM_PER_S * dt_s, min(RAMP_BPM_PER_S * dt_s, target - self.speed_bpm))
        self.speed_bpm += change
        self._carry += self.speed_bpm * dt_s / 60.0
        whole = int(self._carry)
        self.bottles, self._carry = self.bottles + whole, self._carry - whole

    def metrics(self) -> list[tuple[str, int, int, object, str]]:
        """(name, alias, datatype, value, unit) in birth order."""
        return [("Speed", 10, T.DOUBLE, round(self.speed_bpm, 2), "bpm"),
                (SETPOINT, 11, T.DOUBLE, self.setpoint_bpm, "bpm"),
                ("Bottles", 12, T.UINT64, self.bottles, ""),
                ("Running", 13, T.BOOLEAN, self.running, "")]


class SparkplugEdge:
    def __init__(self, host: str, port: int, interval_s: float = 1.0):
        self.host, self.port, self.interval_s = host, port, interval_s
        self.filler = Filler()
        self.bd_seq = 0
        self.seq = 0

    async def run(self) -> None:
        """Connect, be born, publish; on any loss, reconnect with a new bdSeq (the broker sent our NDEATH)."""
        while True:
            will = aiomqtt.Will(topic("NDEATH"), self._bd_seq_payload(), qos=1)
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=f"demo-{NODE}", will=will) as client:
                    await client.subscribe([(topic("NCMD"), 0), (topic("DCMD", DEVICE), 0)])
                    await self._birth(client)
                    _log.info("Sparkplug B edge node %s/%s connected to %s:%d", GROUP, NODE, self.host, self.port)
                    await asyncio.gather(self._publish(client), self._commands(client))
            except aiomqtt.MqttError as exc:
                _log.warning("Sparkplug B edge node: %s; reconnecting", exc)
            self.bd_seq = (self.bd_seq + 1) % 256
            await asyncio.sleep(1.0)

    def _bd_seq_payload(self) -> bytes:
        return encode(Payload(timestamp_ms=now_ms(), metrics=(Metric(name="bdSeq", datatype=T.INT64,
                                                                       raw=self.bd_seq),)))

    def _next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 256
        return seq

    async def _send(self, client: aiomqtt.Client, where: str, metrics: list[Metric]) -> None:
        payload = Payload(timestamp_ms=now_ms(), seq=self._next_seq(), metrics=tuple(metrics))
        await client.publish(where, encode(payload), qos=0)

    async def _birth(self, client: aiomqtt.Client) -> None:
        self.seq = 0
        at_ms = now_ms()
        await self._send(client, topic("NBIRTH"), [
            Metric(name="bdSeq", datatype=T.INT64, raw=self.bd_seq),
            Metric(name=REBIRTH, alias=1, datatype=T.BOOLEAN, timestamp_ms=at_ms, raw=False)])
        await self._send(client, topic("DBIRTH", DEVICE), [
            Metric(name=name, alias=alias, datatype=datatype, timestamp_ms=at_ms, raw=value,
                   properties=(("EngineeringUnits", unit),) if unit else ())
            for name, alias, datatype, value, unit in self.filler.metrics()])

    async def _data(self, client: aiomqtt.Client) -> None:
        at_ms = now_ms()
        await self._send(client, topic("DDATA", DEVICE), [
            Metric(alias=alias, datatype=datatype, timestamp_ms=at_ms, raw=value)
            for _name, alias, datatype, value, _unit in self.filler.metrics()])

    async def _publish(self, client: aiomqtt.Client) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.interval_s)
            now = time.monotonic()
            self.filler.step(now - last)
            last = now
            await self._data(client)

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                payload = decode(bytes(message.payload))
            except SparkplugDecodeError as exc:
                _log.warning("Sparkplug B edge node: ignoring an unreadable command: %s", exc)
                continue
            for metric in payload.metrics:
                if metric.name == REBIRTH or metric.alias == 1:
                    if metric.raw is True:
                        await self._birth(client)
                elif metric.name == SETPOINT or metric.alias == 11:
                    self._set_speed(metric.raw)
                    await self._data(client)

    def _set_speed(self, raw: object) -> None:
        low, high = SPEED_LIMITS_BPM
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
            _log.warning("Sparkplug B edge node: refusing speed setpoint %r (%g..%g bpm)", raw, low, high)
            return
        self.filler.setpoint_bpm = float(raw)
