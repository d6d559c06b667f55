"""The OPC UA points of the demo plant: one frozen description per variable, as config/demo_plant.yaml names them.

Points are data: what to read from a snapshot, and for writable points which model
method takes the operator's value. The server module turns them into nodes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from simulator.process_model import PlantSnapshot, ProcessModel

NAMESPACE_URI = "urn:stacklight:demo-plant"
ENDPOINT_PATH = "/stacklight/demo"

PointType = Literal["float", "bool", "int"]


@dataclass(frozen=True)
class OpcUaPoint:
    name: str  # the string node id, "T101.Level"; the part before the dot is the unit's folder
    data_type: PointType
    value_fn: Callable[[PlantSnapshot], float | bool | int]
    write_fn: Callable[[ProcessModel, object], None] | None = None
    unit: str = ""
    eu_range: tuple[float, float] | None = None
    description: str = ""

    @property
    def folder(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def browse_name(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def writable(self) -> bool:
        return self.write_fn is not None


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {value!r}")
    return value


DEMO_POINTS: tuple[OpcUaPoint, ...] = (
    OpcUaPoint("T101.Level", "float", lambda s: s.tank_level_m, unit="m", eu_range=(0, 5),
               description="Tank T-101 level"),
    OpcUaPoint("T101.InletValve", "float", lambda s: s.inlet_valve_pct,
               lambda m, v: m.set_inlet_valve(_float(v)), unit="%", eu_range=(0, 100),
               description="Inlet valve XV-101 opening (operator setpoint)"),
    OpcUaPoint("T101.Inflow", "float", lambda s: s.inflow_m3h, unit="m3/h", eu_range=(0, 40),
               description="Inflow to T-101"),
    OpcUaPoint("T101.Outflow", "float", lambda s: s.outflow_m3h, unit="m3/h", eu_range=(0, 40),
               description="Outflow from T-101 (pump P-101)"),
    OpcUaPoint("P101.RunCommand", "bool", lambda s: s.pump_run_command,
               lambda m, v: m.set_pump_command(_bool(v)), description="Pump P-101 run command"),
    OpcUaPoint("P101.Running", "bool", lambda s: s.pump_running, description="Pump P-101 running feedback"),
    OpcUaPoint("R201.Temperature", "float", lambda s: s.reactor_temperature_degc, unit="degC",
               eu_range=(0, 150), description="Reactor R-201 temperature"),
    OpcUaPoint("R201.TemperatureSetpoint", "float", lambda s: s.reactor_setpoint_degc,
               lambda m, v: m.set_reactor_setpoint(_float(v)), unit="degC", eu_range=(0, 150),
               description="Reactor R-201 temperature setpoint (TIC-201)"),
    OpcUaPoint("R201.HeaterOutput", "float", lambda s: s.heater_output_pct, unit="%", eu_range=(0, 100),
               description="Heater output (TIC-201 controller output)"),
    OpcUaPoint("R201.Pressure", "float", lambda s: s.reactor_pressure_bar, unit="bar", eu_range=(0, 6),
               description="Reactor R-201 pressure"),
    OpcUaPoint("R201.AgitatorRunning", "bool", lambda s: s.agitator_running, description="Agitator M-201 running"),
    OpcUaPoint("R201.AgitatorSpeed", "float", lambda s: s.agitator_speed_rpm, unit="rpm", eu_range=(0, 300),
               description="Agitator M-201 speed"),
    OpcUaPoint("CV301.RunCommand", "bool", lambda s: s.conveyor_run_command,
               lambda m, v: m.set_conveyor_command(_bool(v)), description="Conveyor CV-301 run command"),
    OpcUaPoint("CV301.Running", "bool", lambda s: s.conveyor_running,
               description="Conveyor CV-301 running feedback"),
    OpcUaPoint("CV301.MotorCurrent", "float", lambda s: s.conveyor_current_a, unit="A", eu_range=(0, 30),
               description="Conveyor motor current"),
    OpcUaPoint("CV301.ItemCount", "int", lambda s: s.conveyor_item_count, unit="items",
               description="Items packed since start"),
)
