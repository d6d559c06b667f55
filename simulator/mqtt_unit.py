"""The compressor skid C-401 and the site meters as an MQTT device, the way a gateway would publish them.

State is one retained JSON document per second (and at once after a command); the meters
are retained plain numbers every 2 s. Commands arrive as JSON on the cmd topic; a bad one is
logged and ignored. The connection is the aiomqtt loop: `while True: try: async with Client`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from datetime import datetime, timezone

import aiomqtt

from simulator.process_model import PlantSnapshot, ProcessModel

_log = logging.getLogger(__name__)

STATE_TOPIC = "stacklight/demo/c401/state"
COMMAND_TOPIC = "stacklight/demo/c401/cmd"
POWER_TOPIC = "stacklight/demo/utilities/power_kw"
WATER_FLOW_TOPIC = "stacklight/demo/utilities/water_flow_m3h"
_COMMAND_WARNING_INTERVAL_S = 60.0


class InvalidCommand(ValueError):
    pass


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compressor_state(snapshot: PlantSnapshot, now: datetime) -> dict:
    """The state document; its paths are the value_path entries of config/demo_plant.yaml."""
    return {
        "ts": iso_utc(now),
        "discharge": {"pressure": round(snapshot.discharge_pressure_bar, 3)},
        "suction": {"pressure": round(snapshot.suction_pressure_bar, 3)},
        "oil": {"temperature": round(snapshot.oil_temperature_degc, 2)},
        "motor": {"current": round(snapshot.compressor_current_a, 1), "running": snapshot.compressor_running},
        "flow": round(snapshot.compressor_flow_nm3h, 1),
        "pressure_setpoint": snapshot.compressor_setpoint_bar,
    }


def parse_command(payload: bytes | bytearray | str) -> dict[str, float | bool]:
    """{"pressure_setpoint": 8.0} and/or {"run": false}; anything else raises InvalidCommand."""
    try:
        document = json.loads(payload)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidCommand(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not document:
        raise InvalidCommand("expected a JSON object with 'pressure_setpoint' and/or 'run'")
    unknown = set(document) - {"pressure_setpoint", "run"}
    if unknown:
        raise InvalidCommand(f"unknown keys {sorted(unknown)}")
    if "pressure_setpoint" in document:
        setpoint = document["pressure_setpoint"]
        if isinstance(setpoint, bool) or not isinstance(setpoint, int | float) or not _finite(setpoint):
            raise InvalidCommand(f"pressure_setpoint must be a finite number, got {setpoint!r:.40}")
    if "run" in document and not isinstance(document["run"], bool):
        raise InvalidCommand(f"run must be true or false, got {document['run']!r:.40}")
    return document


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer beyond float range
        return False


def apply_command(model: ProcessModel, command: dict[str, float | bool]) -> None:
    if "pressure_setpoint" in command:
        model.set_compressor_setpoint(float(command["pressure_setpoint"]))
    if "run" in command:
        model.set_compressor_running(bool(command["run"]))


class MqttUnit:
    """`await MqttUnit(model, host, port).run()` publishes until cancelled, reconnecting forever."""

    def __init__(self, model: ProcessModel, host: str, port: int, *, state_interval_s: float = 1.0,
                 meter_interval_s: float = 2.0, reconnect_max_delay_s: float = 10.0,
                 client_id: str = "stacklight-demo-c401"):
        self.model = model
        self.host = host
        self.port = port
        self.state_interval_s = state_interval_s
        self.meter_interval_s = meter_interval_s
        self.reconnect_max_delay_s = reconnect_max_delay_s
        self.client_id = client_id
        self.connected = asyncio.Event()
        self.commands_applied = 0
        self.commands_rejected = 0
        self._command_applied = asyncio.Event()
        self._last_command_warning = -math.inf

    async def run(self) -> None:
        delay_s = 0.5
        failures = 0
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=self.client_id, keepalive=10) as client:
                    await client.subscribe(COMMAND_TOPIC, qos=1)
                    self.connected.set()
                    _log.info("MQTT unit connected to %s:%d%s", self.host, self.port,
                              f" after {failures} failed attempts" if failures else "")
                    failures, delay_s = 0, 0.5
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                _log.log(level, "MQTT unit has no connection to %s:%d (%s); retrying in %.1f s",
                         self.host, self.port, exc, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self.reconnect_max_delay_s)

    async def _serve(self, client: aiomqtt.Client) -> None:
        tasks = [asyncio.create_task(self._publish_loop(client)), asyncio.create_task(self._command_loop(client))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # re-raises the MqttError that ended the session

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        next_state = next_meters = loop.time()
        while True:
            now = loop.time()
            if now >= next_state or self._command_applied.is_set():
                self._command_applied.clear()
                state = compressor_state(self.model.snapshot(), datetime.now(timezone.utc))
                await client.publish(STATE_TOPIC, json.dumps(state), qos=0, retain=True)
                next_state = now + self.state_interval_s
            if now >= next_meters:
                snapshot = self.model.snapshot()
                await client.publish(POWER_TOPIC, f"{snapshot.site_power_kw:.1f}", qos=0, retain=True)
                await client.publish(WATER_FLOW_TOPIC, f"{snapshot.water_flow_m3h:.2f}", qos=0, retain=True)
                next_meters = now + self.meter_interval_s
            try:
                await asyncio.wait_for(self._command_applied.wait(), max(0.0, min(next_state, next_meters) - now))
            except TimeoutError:
                pass

    async def _command_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                command = parse_command(message.payload)
            except InvalidCommand as exc:
                self._reject(message.payload, exc)
                continue
            apply_command(self.model, command)
            self.commands_applied += 1
            _log.info("C-401 command applied: %s", command)
            self._command_applied.set()

    def _reject(self, payload: object, reason: InvalidCommand) -> None:
        """Loud once a minute at most: a misbehaving publisher must not flood the log."""
        self.commands_rejected += 1
        now = time.monotonic()
        loud = now - self._last_command_warning >= _COMMAND_WARNING_INTERVAL_S
        if loud:
            self._last_command_warning = now
        _log.log(logging.WARNING if loud else logging.DEBUG, "ignored C-401 command %.100r: %s (%d ignored so far)",
                 payload, reason, self.commands_rejected)
