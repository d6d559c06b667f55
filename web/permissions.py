"""Per-tag and per-area permissions, on top of the role rule (web.roles).

A tag may demand more than the role rule for writing it (`write_role` in the plant file),
and a user may be limited to some plant areas (their account's area list, empty for all).
Both are checked on the server for every write and every alarm action, wherever it comes from.
"""
from __future__ import annotations

from domain.config_model import Tag
from web.roles import Action, PermissionDenied, Role, require
from web.sessions import Session


def require_tag_permission(session: Session | None, action: Action, tag: Tag | None = None,
                           area: str | None = None) -> None:
    """Raise PermissionDenied unless the session's user may do `action` on `tag` (or in `area`).

    `area` is for what has an area but no configured tag (an alarm of a discovered tag);
    given a tag, the tag's area is used.
    """
    require(session.role if session else None, action)
    assert session is not None
    if tag is not None and action is Action.WRITE_SETPOINT:
        needed = Role(tag.write_role)
        if not session.role.at_least(needed):
            raise PermissionDenied(f"{tag.name} may be written by {needed.value} or higher only;"
                                   f" your role is {session.role.value}")
    where = tag.area if tag is not None else area
    if session.areas and where is not None and where not in session.areas:
        raise PermissionDenied(f"{tag.name if tag is not None else 'this alarm'} is in area '{where}';"
                               f" you may {action.value} only in: {', '.join(session.areas)}")
