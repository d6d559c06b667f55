"""Wiring: one process model stepped in real time, served by the OPC UA face and the MQTT face.

`async with running_simulator(options) as sim:` is for tests (free ports, in-process);
`await run_simulator(options, stop)` is what `python -m simulator` runs until `stop` is set.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from simulator.mqtt_unit import MqttUnit
from simulator.sparkplug_edge import SparkplugEdge
from simulator.opcua_server import PlantOpcUaServer
from simulator.process_model import ProcessModel

_log = logging.getLogger(__name__)
# A stalled loop (a suspended laptop) resumes with at most this much simulated catch-up.
_MAX_CATCH_UP_S = 60.0


@dataclass(frozen=True)
class SimulatorOptions:
    opcua_port: int | None = 4840  # None: no OPC UA face
    opcua_host: str = "127.0.0.1"
    mqtt_host: str | None = "127.0.0.1"  # None: no MQTT face
    mqtt_port: int = 1883
    extra_tags: int = 0
    extra_rate_hz: float = 1.0
    step_interval_s: float = 0.1
    mqtt_state_interval_s: float = 1.0
    mqtt_meter_interval_s: float = 2.0
    sparkplug: bool = True  # the packaging line as a Sparkplug B edge node (on the MQTT broker)
    sparkplug_interval_s: float = 1.0
    seed: int = 101


@dataclass
class RunningSimulator:
    model: ProcessModel
    opcua: PlantOpcUaServer | None = None
    mqtt: MqttUnit | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)


async def _plant_loop(model: ProcessModel, opcua: PlantOpcUaServer | None, interval_s: float) -> None:
    loop = asyncio.get_running_loop()
    last = next_step = loop.time()
    while True:
        next_step += interval_s
        await asyncio.sleep(max(0.0, next_step - loop.time()))
        now = loop.time()
        model.step(min(now - last, _MAX_CATCH_UP_S))
        last = now
        next_step = max(next_step, now - interval_s)  # after a stall, resume the rhythm instead of bursting
        if opcua is not None:
            await opcua.publish()


@asynccontextmanager
async def running_simulator(options: SimulatorOptions) -> AsyncIterator[RunningSimulator]:
    sim = RunningSimulator(model=ProcessModel(seed=options.seed))
    try:
        if options.opcua_port is not None:
            opcua = PlantOpcUaServer(sim.model, options.opcua_port, options.opcua_host,
                                     extra_tags=options.extra_tags, extra_rate_hz=options.extra_rate_hz)
            await opcua.start()  # on failure asyncua has already cleaned up after itself
            sim.opcua = opcua
            if opcua.extra is not None:
                sim.tasks.append(asyncio.create_task(opcua.extra.run(), name="extra-tags"))
        if options.mqtt_host is not None:
            sim.mqtt = MqttUnit(sim.model, options.mqtt_host, options.mqtt_port,
                                state_interval_s=options.mqtt_state_interval_s,
                                meter_interval_s=options.mqtt_meter_interval_s)
            sim.tasks.append(asyncio.create_task(sim.mqtt.run(), name="mqtt-unit"))
            _log.info("MQTT unit publishing to %s:%d (stacklight/demo/...)", options.mqtt_host, options.mqtt_port)
            if options.sparkplug:
                edge = SparkplugEdge(options.mqtt_host, options.mqtt_port, options.sparkplug_interval_s)
                sim.tasks.append(asyncio.create_task(edge.run(), name="sparkplug-edge"))
        sim.tasks.append(asyncio.create_task(
            _plant_loop(sim.model, sim.opcua, options.step_interval_s), name="plant"))
        yield sim
    finally:
        for task in sim.tasks:
            task.cancel()
        await asyncio.gather(*sim.tasks, return_exceptions=True)
        if sim.opcua is not None:
            await sim.opcua.stop()


async def run_simulator(options: SimulatorOptions, stop: asyncio.Event) -> None:
    """Serve until stop is set; a crashed face ends the run with its exception."""
    async with running_simulator(options) as sim:
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stopper, *sim.tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        for task in done:
            if task is not stopper:
                task.result()
                raise RuntimeError(f"simulator task {task.get_name()} ended unexpectedly")
