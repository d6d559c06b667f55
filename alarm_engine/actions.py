"""An operator's command on one alarm, decided with the state model: the outcome and what changed."""
from __future__ import annotations

from alarm_engine.alarm_catalog import ConfiguredAlarm
from alarm_engine.commands import AlarmCommand, CommandOutcome, unknown_alarm
from domain.alarms import state_model
from domain.alarms.records import ActionRefused, AlarmRecord, AlarmTransition

Decision = tuple[CommandOutcome, AlarmRecord | None, list[AlarmTransition]]


def decide_command(command: AlarmCommand, record: AlarmRecord | None, configured: ConfiguredAlarm | None,
                   now_ms: int) -> Decision:
    def refuse(reason: str) -> Decision:
        return CommandOutcome(command.request_id, False, reason), None, []

    if record is None:
        return unknown_alarm(command), None, []
    if configured is None:
        return refuse(f"{command.alarm_id} is decided by the device ({record.device_source}): only acknowledge"
                      " is passed on; shelve or take it out of service on the device")
    comment = command.comment or None
    try:
        match command.action:
            case "acknowledge":
                updated, events = state_model.acknowledge(record, configured.rules, command.user, now_ms, comment)
            case "reset":
                updated, events = state_model.reset(record, command.user, now_ms, comment)
            case "shelve":
                updated, events = state_model.shelve(record, configured.rules, command.user, now_ms, comment,
                                                     duration_s=command.duration_s, one_shot=command.one_shot)
            case "unshelve":
                updated, events = state_model.unshelve(record, command.user, now_ms, comment)
            case "remove_from_service":
                updated, events = state_model.remove_from_service(record, command.user, now_ms, comment)
            case "return_to_service":
                updated, events = state_model.return_to_service(record, command.user, now_ms, comment)
            case _:
                return refuse(f"unknown action {command.action!r}")
    except ActionRefused as refusal:
        return refuse(str(refusal))
    if not events and command.action == "acknowledge":  # a repeated acknowledge: harmless, and said so
        return CommandOutcome(command.request_id, True, f"already acknowledged by {record.acknowledged_by}"), None, []
    return CommandOutcome(command.request_id, True, ""), updated, events
