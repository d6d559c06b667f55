"""When is an alarm's condition true? One rule per alarm type, plus design suppression.

Each rule sees the alarm's input and whether the alarm is active now (deadbands
apply only to leaving the alarm). A rule answers None when the input cannot be
judged (Bad quality, no value, no setpoint): the state then holds and the record
says "input BAD"; the bad_quality alarm type is what annunciates that.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from domain.alarms.settings import (
    AnyAlarm, BadQualityAlarm, DeviationAlarm, DiscreteAlarm, KIND_LABELS, LimitAlarm, RateOfChangeAlarm,
    SuppressionCondition, is_high_kind,
)
from domain.quality import Quality, QualityFamily


@dataclass(frozen=True, slots=True)
class AlarmInput:
    value: float | str | bool | None
    quality: Quality
    # Deviation alarms: the setpoint tag's value, None when missing or Bad.
    setpoint: float | None = None
    # Rate-of-change alarms: units per second over the alarm's window, None until two samples
    # (the alarm then holds its state).
    rate_per_s: float | None = None


def as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def raw_condition(kind: str, alarm: AnyAlarm, data: AlarmInput, currently_active: bool) -> bool | None:
    """Is the alarm's condition true for this input? None: the input cannot be judged."""
    if isinstance(alarm, BadQualityAlarm):
        family = data.quality.family
        return family is QualityFamily.BAD or (alarm.include_uncertain and family is QualityFamily.UNCERTAIN)
    if data.quality.is_bad or data.value is None:
        return None
    if isinstance(alarm, DiscreteAlarm):
        if alarm.normal is not None:
            return data.value != alarm.normal
        return data.value in (alarm.alarm_on or [])
    value = as_number(data.value)
    if value is None:
        return None
    if isinstance(alarm, LimitAlarm):
        return _beyond(value, alarm.limit, alarm.deadband, is_high_kind(kind), currently_active)
    if isinstance(alarm, DeviationAlarm):
        if data.setpoint is None:
            return None
        return _beyond(abs(value - data.setpoint), alarm.limit, alarm.deadband, True, currently_active)
    if isinstance(alarm, RateOfChangeAlarm):
        if data.rate_per_s is None:
            return currently_active  # no rate yet (window filling after a restart): hold, not clear
        rate = data.rate_per_s
        signed = {"rising": rate, "falling": -rate, "both": abs(rate)}[alarm.direction]
        return _beyond(signed, alarm.limit_per_s, alarm.deadband_per_s, True, currently_active)
    raise TypeError(f"unknown alarm type {type(alarm).__name__}")


def _beyond(value: float, limit: float, deadband: float, high: bool, currently_active: bool) -> bool:
    """Enter at the limit; leave only once past the deadband (a value resting on the limit stays in)."""
    if high:
        return value >= limit - deadband if currently_active else value >= limit
    return value <= limit + deadband if currently_active else value <= limit


def is_suppressed(condition: SuppressionCondition, value: object, quality: Quality | None) -> bool:
    """Is design suppression on? Unknown or Bad input: no (an alarm is never hidden on a guess)."""
    if value is None or quality is None or quality.is_bad:
        return False
    if condition.equals is not None:
        return value == condition.equals
    number = as_number(value)
    if number is None:
        return False
    if condition.below is not None:
        return number < condition.below
    return number > condition.above


def default_message(tag: str, kind: str, alarm: AnyAlarm, unit: str) -> str:
    label = KIND_LABELS.get(kind, kind)
    if isinstance(alarm, LimitAlarm):
        comparison = ">=" if is_high_kind(kind) else "<="
        return f"{tag} {label} ({comparison} {alarm.limit:g} {unit})".strip()
    if isinstance(alarm, DeviationAlarm):
        return f"{tag} deviates from {alarm.setpoint_tag} by {alarm.limit:g} {unit} or more".replace("  ", " ")
    if isinstance(alarm, RateOfChangeAlarm):
        way = {"rising": "rises", "falling": "falls", "both": "changes"}[alarm.direction]
        return f"{tag} {way} faster than {alarm.limit_per_s:g} {unit}/s".replace(" /s", "/s")
    if isinstance(alarm, DiscreteAlarm):
        return f"{tag} off-normal" if alarm.normal is not None else f"{tag} in alarm state"
    return f"{tag} bad quality / communication lost"


class RateWindow:
    """The rate of change over the last window_s of samples (source time), for one tag.

    Bounded: at most max_samples are kept; the oldest go first.
    """

    def __init__(self, window_s: float, max_samples: int = 1000):
        self._window_ms = window_s * 1000
        self._samples: deque[tuple[int, float]] = deque(maxlen=max_samples)

    def add(self, time_ms: int, value: float) -> float | None:
        if self._samples and time_ms <= self._samples[-1][0]:
            return self.rate_per_s()  # a replayed or duplicate sample changes nothing
        self._samples.append((time_ms, value))
        while len(self._samples) > 2 and time_ms - self._samples[1][0] >= self._window_ms:
            self._samples.popleft()
        return self.rate_per_s()

    def rate_per_s(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, v0), (t1, v1) = self._samples[0], self._samples[-1]
        return (v1 - v0) / ((t1 - t0) / 1000)
