"""A textbook PI(D) controller with output clamping and anti-windup, for the simulated loops."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PidGains:
    kp: float  # output units per unit of error
    ti_s: float  # integral time; the integral repeats the P action once per ti_s
    td_s: float = 0.0
    out_min: float = 0.0
    out_max: float = 100.0


class PidController:
    def __init__(self, gains: PidGains, initial_output: float = 0.0):
        self.gains = gains
        # Starting the integral at the steady-state output gives a bumpless start.
        self._integral = initial_output
        self._last_measured: float | None = None
        self.output = initial_output

    def update(self, setpoint: float, measured: float, dt_s: float) -> float:
        g = self.gains
        error = setpoint - measured
        proportional = g.kp * error
        # Derivative on the measurement, so a setpoint step gives no derivative kick.
        derivative = 0.0
        if g.td_s and self._last_measured is not None and dt_s > 0:
            derivative = -g.kp * g.td_s * (measured - self._last_measured) / dt_s
        self._last_measured = measured
        candidate = self._integral + g.kp * error * dt_s / g.ti_s
        unclamped = proportional + candidate + derivative
        self.output = min(g.out_max, max(g.out_min, unclamped))
        # Anti-windup: stop integrating while the output is saturated in the error's direction.
        pushing_high = unclamped > g.out_max and error > 0
        pushing_low = unclamped < g.out_min and error < 0
        if not (pushing_high or pushing_low):
            self._integral = min(g.out_max, max(g.out_min, candidate))
        return self.output
