"""Roles and the request rules of the auth middleware, without a server."""
from __future__ import annotations

import pytest

from web.auth import is_page_request, is_public, login_redirect_target, same_origin
from web.login import safe_next
from web.roles import Action, PermissionDenied, Role, may, parse_role, require


def test_roles_are_ordered_viewer_operator_engineer_admin():
    assert Role.ADMIN.at_least(Role.ENGINEER) and Role.ENGINEER.at_least(Role.OPERATOR)
    assert not Role.VIEWER.at_least(Role.OPERATOR)
    assert parse_role(" Operator ") is Role.OPERATOR
    with pytest.raises(ValueError, match="one of: viewer, operator, engineer, admin"):
        parse_role("superuser")


@pytest.mark.parametrize(("role", "action", "allowed"), [
    (Role.VIEWER, Action.VIEW, True),
    (Role.VIEWER, Action.WRITE_SETPOINT, False),
    (Role.VIEWER, Action.ACKNOWLEDGE_ALARM, False),
    (Role.OPERATOR, Action.WRITE_SETPOINT, True),
    (Role.OPERATOR, Action.ACKNOWLEDGE_ALARM, True),
    (Role.OPERATOR, Action.CONFIGURE, False),
    (Role.ENGINEER, Action.CONFIGURE, True),
    (Role.ENGINEER, Action.MANAGE_USERS, False),
    (Role.ADMIN, Action.MANAGE_USERS, True),
    (None, Action.VIEW, False),
])
def test_permissions(role, action, allowed):
    assert may(role, action) is allowed


def test_a_refusal_names_the_role_and_what_is_needed():
    with pytest.raises(PermissionDenied, match=r"your role \(viewer\) may not write a setpoint; operator"):
        require(Role.VIEWER, Action.WRITE_SETPOINT)
    with pytest.raises(PermissionDenied, match="not logged in"):
        require(None, Action.VIEW)


def test_only_login_assets_and_health_are_public():
    assert is_public("/login") and is_public("/assets/stacklight.css") and is_public("/health")
    for path in ("/", "/alarms", "/api/tags", "/_dash-update-component", "/_dash-layout",
                 "/_dash-component-suites/dash/x.js", "/_reload-hash", "/assetsx"):
        assert not is_public(path), path


def test_pages_redirect_while_data_requests_get_401():
    assert is_page_request("GET", "/tag/T1.level")
    assert not is_page_request("GET", "/api/tags")
    assert not is_page_request("POST", "/_dash-update-component")
    assert not is_page_request("GET", "/_dash-layout")
    assert login_redirect_target("/trend", "tags=a,b") == "/login?next=%2Ftrend%3Ftags%3Da%2Cb"


def test_cross_site_requests_are_recognised():
    assert same_origin("http://hmi:8050", "hmi:8050")
    assert same_origin("http://hmi:8050/alarms", "hmi:8050")
    assert not same_origin("http://evil.example", "hmi:8050")
    assert same_origin(None, "hmi:8050")  # non-browser clients send none


@pytest.mark.parametrize(("given", "kept"), [
    ("/alarms", "/alarms"), ("/trend?tags=a", "/trend?tags=a"), (None, "/"), ("", "/"),
    ("https://evil.example/", "/"), ("//evil.example/", "/"), ("/\\evil.example", "/"),
])
def test_login_only_returns_to_local_pages(given, kept):
    assert safe_next(given) == kept


@pytest.mark.parametrize(("role", "action", "allowed"), [
    (Role.VIEWER, Action.RESET_ALARM, False),
    (Role.VIEWER, Action.SHELVE_ALARM, False),
    (Role.OPERATOR, Action.RESET_ALARM, True),
    (Role.OPERATOR, Action.SHELVE_ALARM, True),
    (Role.OPERATOR, Action.ALARM_SERVICE, False),
    (Role.ENGINEER, Action.ALARM_SERVICE, True),
    (Role.ADMIN, Action.ALARM_SERVICE, True),
])
def test_alarm_permissions(role, action, allowed):
    assert may(role, action) is allowed


def test_every_alarm_engine_action_has_a_permission():
    from alarm_engine.commands import ACTIONS  # noqa: PLC0415
    from web.roles import ALARM_ACTION_PERMISSIONS  # noqa: PLC0415

    assert set(ALARM_ACTION_PERMISSIONS) == set(ACTIONS)
    assert ALARM_ACTION_PERMISSIONS["remove_from_service"] is ALARM_ACTION_PERMISSIONS["return_to_service"]
    with pytest.raises(PermissionDenied, match=r"your role \(operator\) may not take alarms out of service.*engineer"):
        require(Role.OPERATOR, ALARM_ACTION_PERMISSIONS["remove_from_service"])
