"""The demo plant's physics: tank T-101, reactor R-201, conveyor CV-301, compressor C-401, site meters.

Pure and synchronous (no I/O, no asyncio): the OPC UA and MQTT faces call step() and
snapshot(), tests step thousands of simulated seconds in milliseconds. Measurement noise
comes from a seeded generator, so a run can be repeated, and values always move a little,
as a live plant's do.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulator.pid import PidController, PidGains

AMBIENT_DEGC = 20.0
# Longer steps (a paused process, a slow host) are split so the integration stays stable.
_MAX_SUBSTEP_S = 0.5


@dataclass(frozen=True)
class PlantSnapshot:
    """What the instruments read at one instant; the faces publish these values."""

    elapsed_s: float
    tank_level_m: float
    inlet_valve_pct: float
    inflow_m3h: float
    outflow_m3h: float
    pump_run_command: bool
    pump_running: bool
    reactor_temperature_degc: float
    reactor_setpoint_degc: float
    heater_output_pct: float
    reactor_pressure_bar: float
    agitator_running: bool
    agitator_speed_rpm: float
    conveyor_run_command: bool
    conveyor_running: bool
    conveyor_current_a: float
    conveyor_item_count: int
    compressor_running: bool
    compressor_setpoint_bar: float
    discharge_pressure_bar: float
    suction_pressure_bar: float
    oil_temperature_degc: float
    compressor_current_a: float
    compressor_flow_nm3h: float
    site_power_kw: float
    water_flow_m3h: float


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _lag(value: float, target: float, tau_s: float, dt_s: float) -> float:
    """One exact step of a first-order lag toward target."""
    return target + (value - target) * math.exp(-dt_s / tau_s)


def _finite(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value}")
    return value


class MotorFeedback:
    """A run command that the running feedback follows after a start/stop delay."""

    def __init__(self, running: bool, delay_s: float):
        self.command = running
        self.running = running
        self.delay_s = delay_s
        self._pending_s = 0.0

    def step(self, dt_s: float) -> None:
        if self.command == self.running:
            self._pending_s = 0.0
            return
        self._pending_s += dt_s
        if self._pending_s >= self.delay_s:
            self.running = self.command
            self._pending_s = 0.0


class Tank:
    AREA_M2 = 8.0
    MAX_LEVEL_M = 5.0
    MAX_INFLOW_M3H = 40.0
    PUMP_FLOW_AT_FULL_M3H = 25.0

    def __init__(self) -> None:
        self.level_m = 2.5
        self.inlet_valve_pct = 40.0
        self.pump = MotorFeedback(running=True, delay_s=1.0)
        self.inflow_m3h = 0.0
        self.outflow_m3h = 0.0

    def step(self, dt_s: float) -> None:
        self.pump.step(dt_s)
        self.inflow_m3h = self.MAX_INFLOW_M3H * self.inlet_valve_pct / 100.0
        # A centrifugal pump on a gravity-fed suction: flow grows with the square root of the head.
        head_fraction = self.level_m / self.MAX_LEVEL_M
        self.outflow_m3h = self.PUMP_FLOW_AT_FULL_M3H * math.sqrt(head_fraction) if self.pump.running else 0.0
        net_m3 = (self.inflow_m3h - self.outflow_m3h) * dt_s / 3600.0
        self.level_m = _clamp(self.level_m + net_m3 / self.AREA_M2, 0.0, self.MAX_LEVEL_M)


class Reactor:
    TAU_S = 25.0
    # Steady-state rise above ambient per % of heater output (100 % holds 150 degC).
    GAIN_DEGC_PER_PCT = 1.3
    PID = PidGains(kp=5.0, ti_s=10.0)

    def __init__(self) -> None:
        self.temperature_degc = 60.0
        self.setpoint_degc = 60.0
        steady_output = (self.setpoint_degc - AMBIENT_DEGC) / self.GAIN_DEGC_PER_PCT
        self.controller = PidController(self.PID, initial_output=steady_output)

    @property
    def heater_output_pct(self) -> float:
        return self.controller.output

    def step(self, dt_s: float, measured_degc: float) -> None:
        self.controller.update(self.setpoint_degc, measured_degc, dt_s)
        target = AMBIENT_DEGC + self.GAIN_DEGC_PER_PCT * self.heater_output_pct
        self.temperature_degc = _lag(self.temperature_degc, target, self.TAU_S, dt_s)

    @property
    def pressure_bar(self) -> float:
        # Vapour pressure grows faster than linearly: about 2.1 bar at 60 degC, 4.4 bar at 110 degC.
        rise = self.temperature_degc - AMBIENT_DEGC
        return 1.0 + 0.02 * rise + 0.0002 * rise * rise


class Conveyor:
    RUNNING_CURRENT_A = 15.0
    ITEMS_PER_S = 2.0

    def __init__(self) -> None:
        self.motor = MotorFeedback(running=True, delay_s=1.0)
        self.current_a = self.RUNNING_CURRENT_A
        self._items = 0.0

    @property
    def item_count(self) -> int:
        return int(self._items)

    def step(self, dt_s: float) -> None:
        self.motor.step(dt_s)
        if self.motor.running:
            self.current_a = _lag(self.current_a, self.RUNNING_CURRENT_A, 0.5, dt_s)
            self._items += self.ITEMS_PER_S * dt_s
        else:
            self.current_a = 0.0


class Compressor:
    SUCTION_BAR = 1.0
    PRESSURE_TAU_S = 3.0
    BLOWDOWN_TAU_S = 10.0
    MAX_PRESSURE_BAR = 12.0

    def __init__(self) -> None:
        self.running = True
        self.setpoint_bar = 7.0
        self.discharge_bar = 7.0
        self.oil_degc = 64.0

    def step(self, dt_s: float) -> None:
        if self.running:
            self.discharge_bar = _lag(self.discharge_bar, self.setpoint_bar, self.PRESSURE_TAU_S, dt_s)
            oil_target = 64.0 + 1.5 * (self.discharge_bar - 7.0)
            self.oil_degc = _lag(self.oil_degc, oil_target, 60.0, dt_s)
        else:
            self.discharge_bar = _lag(self.discharge_bar, self.SUCTION_BAR, self.BLOWDOWN_TAU_S, dt_s)
            self.oil_degc = _lag(self.oil_degc, AMBIENT_DEGC + 5.0, 300.0, dt_s)

    @property
    def current_a(self) -> float:
        return 80.0 + 6.0 * self.discharge_bar if self.running else 0.0

    @property
    def flow_nm3h(self) -> float:
        return max(0.0, 950.0 - 25.0 * (self.discharge_bar - 7.0)) if self.running else 0.0


class ProcessModel:
    """The whole plant; writes arrive through the set_* methods, which clamp to what the plant can do."""

    def __init__(self, seed: int = 101):
        self._rng = random.Random(seed)
        self.elapsed_s = 0.0
        self.tank = Tank()
        self.reactor = Reactor()
        self.conveyor = Conveyor()
        self.compressor = Compressor()
        self.agitator_running = True
        self._measure()

    # --- writes ------------------------------------------------------------
    def set_inlet_valve(self, opening_pct: float) -> None:
        self.tank.inlet_valve_pct = _clamp(_finite(opening_pct, "inlet valve opening"), 0.0, 100.0)

    def set_pump_command(self, run: bool) -> None:
        self.tank.pump.command = bool(run)

    def set_reactor_setpoint(self, setpoint_degc: float) -> None:
        self.reactor.setpoint_degc = _clamp(_finite(setpoint_degc, "reactor setpoint"), 0.0, 150.0)

    def set_conveyor_command(self, run: bool) -> None:
        self.conveyor.motor.command = bool(run)

    def set_compressor_setpoint(self, setpoint_bar: float) -> None:
        value = _finite(setpoint_bar, "compressor pressure setpoint")
        self.compressor.setpoint_bar = _clamp(value, 0.0, Compressor.MAX_PRESSURE_BAR)

    def set_compressor_running(self, run: bool) -> None:
        self.compressor.running = bool(run)

    # --- time --------------------------------------------------------------
    def step(self, dt_s: float) -> None:
        if dt_s < 0 or not math.isfinite(dt_s):
            raise ValueError(f"dt_s must be a finite, non-negative number, got {dt_s}")
        remaining = dt_s
        while remaining > 1e-9:
            sub = min(remaining, _MAX_SUBSTEP_S)
            self.tank.step(sub)
            self.reactor.step(sub, self._measured_temperature_degc)
            self.conveyor.step(sub)
            self.compressor.step(sub)
            self.elapsed_s += sub
            remaining -= sub
            self._measure()

    def _noise(self, sigma: float) -> float:
        return self._rng.gauss(0.0, sigma)

    def _measure(self) -> None:
        """Read the instruments once per step, so a snapshot between steps is stable."""
        tank, reactor, conveyor, compressor = self.tank, self.reactor, self.conveyor, self.compressor
        self._level_m = _clamp(tank.level_m + self._noise(0.002), 0.0, Tank.MAX_LEVEL_M)
        self._inflow_m3h = max(0.0, tank.inflow_m3h * (1.0 + self._noise(0.005)))
        self._outflow_m3h = max(0.0, tank.outflow_m3h * (1.0 + self._noise(0.005)))
        self._measured_temperature_degc = reactor.temperature_degc + self._noise(0.03)
        self._reactor_pressure_bar = max(0.0, reactor.pressure_bar + self._noise(0.005))
        self._agitator_rpm = 120.0 + self._noise(0.8) if self.agitator_running else 0.0
        self._conveyor_a = max(0.0, conveyor.current_a + self._noise(0.15)) if conveyor.motor.running else 0.0
        self._discharge_bar = max(0.0, compressor.discharge_bar + self._noise(0.01))
        self._suction_bar = Compressor.SUCTION_BAR + self._noise(0.005)
        self._oil_degc = compressor.oil_degc + self._noise(0.1)
        self._compressor_a = max(0.0, compressor.current_a + self._noise(0.5)) if compressor.running else 0.0
        self._flow_nm3h = max(0.0, compressor.flow_nm3h + self._noise(3.0)) if compressor.running else 0.0
        loads_kw = (
            180.0
            + (15.0 if tank.pump.running else 0.0)
            + 0.6 * reactor.heater_output_pct
            + (11.0 if self.agitator_running else 0.0)
            + 0.4 * self._conveyor_a
            + 0.6 * self._compressor_a
        )
        self._power_kw = max(0.0, loads_kw + self._noise(2.0))
        daily_swing = 12.0 * math.sin(2.0 * math.pi * self.elapsed_s / 300.0)
        self._water_m3h = max(0.0, 30.0 + daily_swing + self._noise(0.3))

    def snapshot(self) -> PlantSnapshot:
        tank, reactor, conveyor, compressor = self.tank, self.reactor, self.conveyor, self.compressor
        return PlantSnapshot(
            elapsed_s=self.elapsed_s,
            tank_level_m=self._level_m,
            inlet_valve_pct=tank.inlet_valve_pct,
            inflow_m3h=self._inflow_m3h,
            outflow_m3h=self._outflow_m3h,
            pump_run_command=tank.pump.command,
            pump_running=tank.pump.running,
            reactor_temperature_degc=self._measured_temperature_degc,
            reactor_setpoint_degc=reactor.setpoint_degc,
            heater_output_pct=reactor.heater_output_pct,
            reactor_pressure_bar=self._reactor_pressure_bar,
            agitator_running=self.agitator_running,
            agitator_speed_rpm=self._agitator_rpm,
            conveyor_run_command=conveyor.motor.command,
            conveyor_running=conveyor.motor.running,
            conveyor_current_a=self._conveyor_a,
            conveyor_item_count=conveyor.item_count,
            compressor_running=compressor.running,
            compressor_setpoint_bar=compressor.setpoint_bar,
            discharge_pressure_bar=self._discharge_bar,
            suction_pressure_bar=self._suction_bar,
            oil_temperature_degc=self._oil_degc,
            # A stop command takes effect at once, between steps too: no current, no flow.
            compressor_current_a=self._compressor_a if compressor.running else 0.0,
            compressor_flow_nm3h=self._flow_nm3h if compressor.running else 0.0,
            site_power_kw=self._power_kw,
            water_flow_m3h=self._water_m3h,
        )
