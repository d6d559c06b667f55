"""The alarms the plant file configures, and which tags each one listens to.

Built once at start from PlantConfig: one ConfiguredAlarm per alarm (with the plant's
bad-quality default added where a tag has process alarms but no bad_quality alarm),
and indexes from a tag to the alarms it feeds (its own, deviation setpoints, design
suppression), so a tag change re-evaluates exactly the alarms it can change.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from domain.alarms.conditions import RateWindow, default_message
from domain.alarms.records import AlarmRecord, alarm_id_for
from domain.alarms.settings import AnyAlarm, RateOfChangeAlarm, alarms_with_defaults
from domain.alarms.state_model import AlarmRules, rules_for
from domain.config_model import PlantConfig


@dataclass(frozen=True, slots=True)
class ConfiguredAlarm:
    alarm_id: str
    tag: str
    kind: str
    alarm: AnyAlarm
    rules: AlarmRules
    area: str
    message: str
    # Deviation alarms: the setpoint tag (a plain field: reading it off the pydantic model is slow).
    setpoint_tag: str | None = None

    def new_record(self, now_ms: int) -> AlarmRecord:
        return AlarmRecord(alarm_id=self.alarm_id, tag=self.tag, kind=self.kind, priority=self.alarm.priority,
                           message=self.message, area=self.area, state_since_ms=now_ms)


@dataclass
class AlarmCatalog:
    alarms: dict[str, ConfiguredAlarm] = field(default_factory=dict)
    # tag -> alarms whose condition reads it (the tag itself, or a deviation alarm's setpoint)
    by_input_tag: dict[str, list[str]] = field(default_factory=dict)
    # tag -> alarms it suppresses by design
    by_suppressing_tag: dict[str, list[str]] = field(default_factory=dict)
    # alarm id -> its rate-of-change window (in memory: refilled within window_s after a restart)
    rate_windows: dict[str, RateWindow] = field(default_factory=dict)

    @property
    def input_tags(self) -> set[str]:
        return set(self.by_input_tag) | set(self.by_suppressing_tag)


def build_catalog(config: PlantConfig) -> AlarmCatalog:
    catalog = AlarmCatalog()
    system = config.alarm_system
    for tag in config.tags:
        for kind, alarm in alarms_with_defaults(tag.alarms, system):
            alarm_id = alarm_id_for(tag.name, kind)
            setpoint = getattr(alarm, "setpoint_tag", None)
            catalog.alarms[alarm_id] = ConfiguredAlarm(
                alarm_id=alarm_id, tag=tag.name, kind=kind, alarm=alarm, rules=rules_for(alarm, system),
                area=alarm.area or tag.area, message=alarm.message or default_message(tag.name, kind, alarm, tag.unit),
                setpoint_tag=setpoint,
            )
            catalog.by_input_tag.setdefault(tag.name, []).append(alarm_id)
            if setpoint is not None:
                catalog.by_input_tag.setdefault(setpoint, []).append(alarm_id)
            if alarm.suppressed_when is not None:
                catalog.by_suppressing_tag.setdefault(alarm.suppressed_when.tag, []).append(alarm_id)
            if isinstance(alarm, RateOfChangeAlarm):
                catalog.rate_windows[alarm_id] = RateWindow(alarm.window_s)
    return catalog
