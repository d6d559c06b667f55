"""Alarm configuration as written in the plant file: types, attributes, design suppression.

Checked once at load: limits ordered HH > H > L > LL with deadbands that do not
overlap, finite numbers, and (in domain.config_model.PlantConfig) that every tag an
alarm refers to exists.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator

Priority = Annotated[int, Field(ge=1, le=4)]
DiscreteValue = bool | int | float | str

LIMIT_KINDS = ("high_high", "high", "low", "low_low")
ALARM_KINDS = (*LIMIT_KINDS, "deviation", "rate_of_change", "discrete", "bad_quality")
KIND_LABELS = {"high_high": "HH", "high": "H", "low": "L", "low_low": "LL", "deviation": "DEV",
               "rate_of_change": "ROC", "discrete": "OFFNORM", "bad_quality": "BADPV", "device": "DEVICE"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SuppressionCondition(_Strict):
    """Suppression by design: the alarm is not annunciated while another tag says so.

    Exactly one of equals / below / above, e.g. {tag: P101.running, equals: false}.
    While that tag's value is missing or Bad, the alarm is NOT suppressed (fail towards alarming).
    """

    tag: str
    equals: DiscreteValue | None = None
    below: FiniteFloat | None = None
    above: FiniteFloat | None = None

    @model_validator(mode="after")
    def _one_test(self) -> SuppressionCondition:
        given = [k for k in ("equals", "below", "above") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("suppressed_when needs exactly one of equals, below or above")
        return self


class AlarmAttributes(_Strict):
    """What every alarm type has (ISA-18.2 attributes)."""

    priority: Priority = 3
    on_delay_s: Annotated[float, Field(ge=0, le=3600)] = 0.0
    off_delay_s: Annotated[float, Field(ge=0, le=3600)] = 0.0
    # An acknowledged alarm still active after this long is annunciated again (T7). None: never.
    realarm_s: Annotated[float, Field(ge=1, le=7 * 86400)] | None = None
    # A latching alarm stays (LU / LA) after it clears until acknowledged and reset.
    latching: bool = False
    message: str | None = None
    # None: the tag's area.
    area: str | None = None
    # Acknowledging needs a comment (also required for every alarm of a priority in alarm_system).
    ack_comment_required: bool = False
    suppressed_when: SuppressionCondition | None = None
    # Longest shelve an operator may set; None: alarm_system.max_shelve_s.
    max_shelve_s: Annotated[float, Field(gt=0, le=30 * 86400)] | None = None


class LimitAlarm(AlarmAttributes):
    limit: FiniteFloat
    deadband: Annotated[FiniteFloat, Field(ge=0)] = 0.0


class DeviationAlarm(AlarmAttributes):
    """|value - setpoint| >= limit, the setpoint being another tag's value."""

    setpoint_tag: str
    limit: Annotated[FiniteFloat, Field(gt=0)]
    deadband: Annotated[FiniteFloat, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _deadband_below_limit(self) -> DeviationAlarm:
        if self.deadband >= self.limit:
            raise ValueError(f"deadband ({self.deadband}) must be smaller than limit ({self.limit})")
        return self


class RateOfChangeAlarm(AlarmAttributes):
    """The value changes faster than limit_per_s (in units per second) over window_s."""

    limit_per_s: Annotated[FiniteFloat, Field(gt=0)]
    deadband_per_s: Annotated[FiniteFloat, Field(ge=0)] = 0.0
    window_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    direction: Literal["rising", "falling", "both"] = "both"

    @model_validator(mode="after")
    def _deadband_below_limit(self) -> RateOfChangeAlarm:
        if self.deadband_per_s >= self.limit_per_s:
            raise ValueError(f"deadband_per_s ({self.deadband_per_s}) must be smaller than limit_per_s ({self.limit_per_s})")
        return self


class DiscreteAlarm(AlarmAttributes):
    """Off-normal state: the value differs from `normal`, or is one of `alarm_on`."""

    normal: DiscreteValue | None = None
    alarm_on: list[DiscreteValue] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> DiscreteAlarm:
        if (self.normal is None) == (self.alarm_on is None):
            raise ValueError("a discrete alarm needs exactly one of normal or alarm_on")
        if self.alarm_on is not None and not self.alarm_on:
            raise ValueError("alarm_on must list at least one value")
        return self


class BadQualityAlarm(AlarmAttributes):
    """The input is Bad (sensor failure, communication lost, ...), or also Uncertain if asked."""

    include_uncertain: bool = False
    on_delay_s: Annotated[float, Field(ge=0, le=3600)] = 5.0


AnyAlarm = LimitAlarm | DeviationAlarm | RateOfChangeAlarm | DiscreteAlarm | BadQualityAlarm


class TagAlarms(_Strict):
    high_high: LimitAlarm | None = None
    high: LimitAlarm | None = None
    low: LimitAlarm | None = None
    low_low: LimitAlarm | None = None
    deviation: DeviationAlarm | None = None
    rate_of_change: RateOfChangeAlarm | None = None
    discrete: DiscreteAlarm | None = None
    bad_quality: BadQualityAlarm | None = None

    @model_validator(mode="after")
    def _ordered_without_overlap(self) -> TagAlarms:
        # Limits are ordered HH > H > L > LL, and each alarm's deadband band
        # (below a high limit, above a low one) must stay clear of the next band.
        ordered = self.limit_items()
        for (upper_kind, upper), (lower_kind, lower) in zip(ordered, ordered[1:]):
            if upper.limit <= lower.limit:
                raise ValueError(
                    f"{upper_kind}.limit ({upper.limit}) must be above {lower_kind}.limit ({lower.limit})"
                )
            upper_band_bottom = upper.limit - upper.deadband if is_high_kind(upper_kind) else upper.limit
            lower_band_top = lower.limit if is_high_kind(lower_kind) else lower.limit + lower.deadband
            if upper_band_bottom <= lower_band_top:
                raise ValueError(
                    f"deadbands of {upper_kind} and {lower_kind} overlap"
                    f" ({upper_kind} band reaches down to {upper_band_bottom},"
                    f" {lower_kind} band up to {lower_band_top})"
                )
        return self

    def limit_items(self) -> list[tuple[str, LimitAlarm]]:
        return [(kind, alarm) for kind, alarm in self.items() if kind in LIMIT_KINDS]

    def items(self) -> list[tuple[str, AnyAlarm]]:
        return [(kind, getattr(self, kind)) for kind in ALARM_KINDS if getattr(self, kind) is not None]

    @property
    def needs_numeric_input(self) -> bool:
        return any(kind not in ("discrete", "bad_quality") for kind, _ in self.items())


class AlarmSystemSettings(_Strict):
    """Plant-wide alarm settings (the `alarm_system:` block)."""

    # The longest shelve any operator may set (an alarm may lower it with max_shelve_s).
    max_shelve_s: Annotated[float, Field(gt=0, le=30 * 86400)] = 8 * 3600
    # Acknowledging an alarm of these priorities always needs a comment.
    ack_comment_required_priorities: list[Priority] = []
    # Every tag with process alarms but no bad_quality alarm of its own gets this one,
    # so a lost input is annunciated, not shown as normal. None: only where configured.
    bad_quality_default: BadQualityAlarm | None = BadQualityAlarm(priority=3, on_delay_s=10.0)
    # How long the alarm journal archive keeps entries.
    journal_retention_days: Annotated[int, Field(ge=1, le=36500)] = 400


def alarms_with_defaults(alarms: TagAlarms | None, system: AlarmSystemSettings) -> list[tuple[str, AnyAlarm]]:
    """A tag's alarms as the engine runs them: with the plant's bad-quality default added where
    the tag has process alarms but no bad_quality alarm of its own."""
    if alarms is None:
        return []
    items = alarms.items()
    if items and alarms.bad_quality is None and system.bad_quality_default is not None:
        items.append(("bad_quality", system.bad_quality_default))
    return items


def is_high_kind(kind: str) -> bool:
    return kind in ("high", "high_high")


def comment_required(alarm: AlarmAttributes, system: AlarmSystemSettings) -> bool:
    return alarm.ack_comment_required or alarm.priority in system.ack_comment_required_priorities


def max_shelve_s(alarm: AlarmAttributes, system: AlarmSystemSettings) -> float:
    return min(alarm.max_shelve_s or system.max_shelve_s, system.max_shelve_s)
