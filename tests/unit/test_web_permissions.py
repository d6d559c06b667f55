"""Per-tag write roles and per-area limits on top of the role rule."""
import pytest

from domain.config_model import Tag
from web.permissions import require_tag_permission
from web.roles import Action, PermissionDenied, Role
from web.sessions import Session
from web.users import decode_areas, encode_areas


def _tag(**overrides) -> Tag:
    fields = {"name": "R1.sp", "source": "plc", "node_id": "ns=2;s=sp", "writable": True, "area": "Reactor"}
    return Tag(**{**fields, **overrides})


def _session(role: Role, areas: tuple[str, ...] = ()) -> Session:
    return Session("ann", role, "csrf", 0, areas)


def test_a_tag_may_demand_a_higher_role_for_writing_than_the_role_rule():
    tag = _tag(write_role="engineer")
    with pytest.raises(PermissionDenied, match="engineer or higher only; your role is operator"):
        require_tag_permission(_session(Role.OPERATOR), Action.WRITE_SETPOINT, tag)
    require_tag_permission(_session(Role.ENGINEER), Action.WRITE_SETPOINT, tag)
    # The write role is about writing: an operator still acknowledges that tag's alarms.
    require_tag_permission(_session(Role.OPERATOR), Action.ACKNOWLEDGE_ALARM, tag)


def test_a_user_limited_to_areas_acts_only_there():
    in_utilities = _session(Role.OPERATOR, ("Utilities",))
    with pytest.raises(PermissionDenied, match="in area 'Reactor'; you may write a setpoint only in: Utilities"):
        require_tag_permission(in_utilities, Action.WRITE_SETPOINT, _tag())
    with pytest.raises(PermissionDenied, match="this alarm is in area 'Reactor'"):
        require_tag_permission(in_utilities, Action.ACKNOWLEDGE_ALARM, area="Reactor")
    require_tag_permission(in_utilities, Action.WRITE_SETPOINT, _tag(area="Utilities"))
    require_tag_permission(_session(Role.OPERATOR), Action.WRITE_SETPOINT, _tag())  # no list: every area


def test_the_role_rule_comes_first():
    with pytest.raises(PermissionDenied, match="your role \\(viewer\\) may not write a setpoint"):
        require_tag_permission(_session(Role.VIEWER), Action.WRITE_SETPOINT, _tag())
    with pytest.raises(PermissionDenied, match="not logged in"):
        require_tag_permission(None, Action.SHELVE_ALARM, _tag())


def test_area_lists_round_trip_and_a_damaged_one_grants_no_area():
    assert decode_areas(encode_areas(["Reactor", "Utilities", "Reactor"])) == ("Reactor", "Utilities")
    assert decode_areas(None) == ()
    assert decode_areas(b'{"not": "a list"}') == ("(unreadable area list)",)
    assert decode_areas("not json") == ("(unreadable area list)",)


def test_critical_and_reason_need_a_writable_tag():
    with pytest.raises(ValueError, match="writable tags only"):
        _tag(writable=False, critical=True)
    assert _tag(critical=True, reason_required=True).critical
