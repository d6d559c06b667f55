"""Who may do what: four roles in a strict order, checked on the server for every action."""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ENGINEER = "engineer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def at_least(self, minimum: Role) -> bool:
        return self.rank >= minimum.rank


_ORDER = [Role.VIEWER, Role.OPERATOR, Role.ENGINEER, Role.ADMIN]


class Action(StrEnum):
    VIEW = "view"
    WRITE_SETPOINT = "write a setpoint"
    ACKNOWLEDGE_ALARM = "acknowledge alarms"
    RESET_ALARM = "reset latched alarms"
    SHELVE_ALARM = "shelve or unshelve alarms"
    ALARM_SERVICE = "take alarms out of service or return them"
    CONFIGURE = "change the configuration"
    MANAGE_USERS = "manage users"


MINIMUM_ROLE: dict[Action, Role] = {
    Action.VIEW: Role.VIEWER,
    Action.WRITE_SETPOINT: Role.OPERATOR,
    Action.ACKNOWLEDGE_ALARM: Role.OPERATOR,
    Action.RESET_ALARM: Role.OPERATOR,
    Action.SHELVE_ALARM: Role.OPERATOR,
    Action.ALARM_SERVICE: Role.ENGINEER,
    Action.CONFIGURE: Role.ENGINEER,
    Action.MANAGE_USERS: Role.ADMIN,
}

# Who may ask what of an alarm, by the alarm engine's action names (alarm_engine.commands.ACTIONS).
ALARM_ACTION_PERMISSIONS: dict[str, Action] = {
    "acknowledge": Action.ACKNOWLEDGE_ALARM,
    "reset": Action.RESET_ALARM,
    "shelve": Action.SHELVE_ALARM,
    "unshelve": Action.SHELVE_ALARM,
    "remove_from_service": Action.ALARM_SERVICE,
    "return_to_service": Action.ALARM_SERVICE,
}


class PermissionDenied(Exception):
    """str() is the reason shown to the user and written to the audit trail."""


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role '{text}' (one of: {names})") from None


def may(role: Role | None, action: Action) -> bool:
    return role is not None and role.at_least(MINIMUM_ROLE[action])


def require(role: Role | None, action: Action) -> None:
    """Raise PermissionDenied unless `role` may perform `action`."""
    if role is None:
        raise PermissionDenied(f"not logged in: you may not {action.value}")
    if not may(role, action):
        needed = MINIMUM_ROLE[action].value
        raise PermissionDenied(f"your role ({role.value}) may not {action.value}; {needed} or higher is needed")
