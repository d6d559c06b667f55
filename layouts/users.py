"""User administration (admin only): accounts, roles, plant areas, passwords, lock-outs.

Others get the reason instead of the page, and every action is checked again on the server in
the callback (web/user_admin.py, the same functions as /api/users): a forged request from a
viewer or operator is refused, audited and changes nothing. Deleting asks first, naming the account.
"""
from __future__ import annotations

import dash
from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from redis.exceptions import RedisError

from components.search_page import labelled_field as field
from web import user_admin
from web.auth import current_identity
from web.roles import PermissionDenied, Role
from web.runtime import current_runtime
from web.users import UserError, areas_text

dash.register_page(__name__, path="/users", name="Users", title="Users", order=7)

ROLE_OPTIONS = [{"label": r.value, "value": r.value} for r in Role]
ACTION_BUTTONS = ("users-add", "users-set-role", "users-set-areas", "users-reset-password", "users-unlock",
                  "users-delete", "users-delete-confirm", "users-delete-cancel")
PASSWORD_BOXES = ("users-new-password", "users-new-password2", "users-password", "users-password2")


def _plant_areas() -> list[str]:
    return sorted({t.area for t in current_runtime().config.tags if t.area})


def _locked(seconds: int) -> str:
    return f"locked out ({max(1, round(seconds / 60))} min left)" if seconds else "-"


def accounts_table(rows: list[user_admin.AccountRow]) -> html.Table:
    head = html.Tr([html.Th(h) for h in ("User", "Role", "Areas", "Login")])
    body = [html.Tr([html.Td(r.name, className="sl-source-name"), html.Td(r.role), html.Td(areas_text(r.areas)),
                     html.Td(_locked(r.locked_out_s))], **{"data-user": r.name}) for r in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="sl-source-table", id="users-table")


def _password_input(box_id: str, placeholder: str) -> dcc.Input:
    return dcc.Input(id=box_id, type="password", placeholder=placeholder, autoComplete="new-password",
                     maxLength=200, className="sl-input")


def _add_panel() -> html.Div:
    return html.Div([
        html.H2("Add a user", className="sl-section-title"),
        html.Div([
            field("Name", dcc.Input(id="users-new-name", type="text", maxLength=64, className="sl-input")),
            field("Role", dcc.Dropdown(id="users-new-role", options=ROLE_OPTIONS, value=Role.VIEWER.value,
                                       clearable=False, style={"width": 140})),
            field("Password", _password_input("users-new-password", "at least 8 characters")),
            field("Password again", _password_input("users-new-password2", "the same again")),
            field("Areas", dcc.Input(id="users-new-areas", type="text", placeholder="empty: all areas",
                                     maxLength=2000, className="sl-input sl-input-wide")),
            html.Button("Add user", id="users-add", className="sl-button sl-button-primary"),
        ], className="sl-ack-controls users-form"),
    ], className="sl-panel")


def _change_panel(names: list[str]) -> html.Div:
    return html.Div([
        html.H2("Change a user", className="sl-section-title"),
        html.Div([field("User", dcc.Dropdown(id="users-target", options=names, placeholder="choose a user",
                                             style={"width": 220}))], className="sl-ack-controls users-form"),
        html.Div([
            field("Role", dcc.Dropdown(id="users-role", options=ROLE_OPTIONS, clearable=False, style={"width": 140})),
            html.Button("Set role", id="users-set-role", className="sl-button"),
        ], className="sl-ack-controls users-form"),
        html.Div([
            field("Areas", dcc.Input(id="users-areas", type="text", placeholder="empty: all areas", maxLength=2000,
                                     className="sl-input sl-input-wide")),
            html.Button("Set areas", id="users-set-areas", className="sl-button"),
        ], className="sl-ack-controls users-form"),
        html.Div([
            field("New password", _password_input("users-password", "at least 8 characters")),
            field("Password again", _password_input("users-password2", "the same again")),
            html.Button("Reset password", id="users-reset-password", className="sl-button"),
        ], className="sl-ack-controls users-form"),
        html.Div([
            html.Button("Unlock login", id="users-unlock", className="sl-button"),
            html.Button("Delete user…", id="users-delete", className="sl-button"),
        ], className="sl-ack-controls users-form"),
        html.Div([
            html.Div("Delete a user", className="sl-confirm-title"),
            html.Div(id="users-confirm-text", className="sl-confirm-question"),
            html.Button("Delete", id="users-delete-confirm", className="sl-button sl-button-primary"),
            html.Button("Cancel", id="users-delete-cancel", className="sl-button"),
        ], id="users-confirm", className="sl-confirm", hidden=True),
        dcc.Store(id="users-pending-delete"),
    ], className="sl-panel")


def layout(**_query):
    identity = current_identity()
    refusal = user_admin.refusal_text(identity)
    if refusal:
        return html.Div([html.H1("Users", className="sl-page-title"),
                         html.P(f"{refusal[0].upper()}{refusal[1:]}.", id="users-not-allowed",
                                className="sl-page-subtitle", role="alert")], className="sl-page")
    return html.Div([
        html.H1("Users", className="sl-page-title"),
        html.P("Accounts, their roles and plant areas (empty: all areas). Changes apply to open sessions at once; "
               "a new password or deleting a user ends their sessions. Everything here is in the audit trail.",
               className="sl-page-subtitle"),
        html.P(f"This plant's areas: {', '.join(_plant_areas()) or '(none configured)'}", className="sl-muted"),
        html.Div(id="users-message", className="sl-ack-result", role="status"),
        html.Div(id="users-list", className="sl-panel"),
        _add_panel(),
        _change_panel([]),
        dcc.Store(id="users-loaded"),
    ], className="sl-page users-page")


async def _rows(redis, identity):
    return await user_admin.list_accounts(redis, identity)


@callback(
    Output("users-list", "children"),
    Output("users-target", "options"),
    Input("users-loaded", "id"),
)
async def show_users(_loaded):
    """The list when the page opens (checked like every action)."""
    runtime = await current_runtime().ensure_started()
    try:
        rows = await _rows(runtime.redis, current_identity())
    except PermissionDenied as exc:
        return html.P(str(exc), role="alert"), []
    return accounts_table(rows), [r.name for r in rows]


@callback(
    Output("users-role", "value"),
    Output("users-areas", "value"),
    Input("users-target", "value"),
    prevent_initial_call=True,
)
async def show_user(name):
    if not name:
        raise PreventUpdate
    runtime = await current_runtime().ensure_started()
    try:
        row = await user_admin.account(runtime.redis, current_identity(), name)
    except (PermissionDenied, UserError):
        return no_update, no_update
    return row.role, ", ".join(row.areas)


# The audit trail's action for a refusal of each button.
AUDIT_ACTIONS = {"users-add": "user_added", "users-set-role": "role_changed", "users-set-areas": "areas_changed",
                 "users-reset-password": "password_changed", "users-unlock": "user_unlocked",
                 "users-delete": "user_deleted", "users-delete-confirm": "user_deleted",
                 "users-delete-cancel": "user_deleted"}


async def perform(redis, identity, action: str, form: dict) -> tuple[str, str | None]:
    """One page action; (message, the account awaiting a delete confirmation or None)."""
    target = form.get("target")
    name = form.get("new_name") if action == "users-add" else (
        form.get("pending") if action.startswith("users-delete-") else target)
    await user_admin.require_admin(redis, identity, AUDIT_ACTIONS[action], name or "")
    if action == "users-add":
        row = await user_admin.add_account(redis, identity, (form.get("new_name") or "").strip(), form.get("new_role"),
                                           form.get("new_password") or "",
                                           user_admin.parse_areas_text(form.get("new_areas")),
                                           password_again=form.get("new_password2") or "")
        return f"Added {user_admin.describe(row)}.", None
    if action == "users-delete-cancel":
        return "Delete cancelled.", None
    if action == "users-delete-confirm":
        pending = form.get("pending")
        if not pending:
            raise UserError("nothing to delete: choose a user and press Delete user… first")
        await user_admin.delete_account(redis, identity, pending)
        return f"Deleted {pending}; their open sessions ended.", None
    if not target:
        raise UserError("choose a user first")
    if action == "users-set-role":
        await user_admin.change_role(redis, identity, target, form.get("role"))
        return f"{target} is now {form.get('role')}.", None
    if action == "users-set-areas":
        areas = await user_admin.change_areas(redis, identity, target, user_admin.parse_areas_text(form.get("areas")))
        return f"{target} may now act in: {areas_text(areas)}.", None
    if action == "users-reset-password":
        ended = await user_admin.reset_password(redis, identity, target, form.get("password") or "",
                                                password_again=form.get("password2") or "")
        return f"Password of {target} changed; {ended} open session{'' if ended == 1 else 's'} ended.", None
    if action == "users-unlock":
        left_s = await user_admin.unlock(redis, identity, target)
        return (f"{target} may log in again." if left_s else f"{target} was not locked out."), None
    if action == "users-delete":
        row = await user_admin.ask_delete(redis, identity, target)
        return "", row.name
    raise UserError(f"unknown action {action}")


@callback(
    Output("users-message", "children"),
    Output("users-list", "children", allow_duplicate=True),
    Output("users-target", "options", allow_duplicate=True),
    Output("users-confirm", "hidden"),
    Output("users-confirm-text", "children"),
    Output("users-pending-delete", "data"),
    Output("users-delete-confirm", "children"),
    *[Output(box, "value") for box in PASSWORD_BOXES],
    *[Input(button, "n_clicks") for button in ACTION_BUTTONS],
    State("users-new-name", "value"), State("users-new-role", "value"), State("users-new-password", "value"),
    State("users-new-password2", "value"), State("users-new-areas", "value"), State("users-target", "value"),
    State("users-role", "value"), State("users-areas", "value"), State("users-password", "value"),
    State("users-password2", "value"), State("users-pending-delete", "data"),
    prevent_initial_call=True,
)
async def act(*args):
    action = ctx.triggered_id
    if action not in ACTION_BUTTONS:
        raise PreventUpdate
    keys = ("new_name", "new_role", "new_password", "new_password2", "new_areas", "target", "role", "areas",
            "password", "password2", "pending")
    form = dict(zip(keys, args[len(ACTION_BUTTONS):], strict=True))
    identity = current_identity()
    runtime = await current_runtime().ensure_started()
    cleared = [""] * len(PASSWORD_BOXES)
    try:
        message, pending = await perform(runtime.redis, identity, action, form)
    except PermissionDenied as exc:
        return (f"REFUSED: {exc}", no_update, no_update, True, "", None, "Delete", *cleared)
    except UserError as exc:
        return (f"NOT DONE: {exc}", no_update, no_update, True, "", None, "Delete", *cleared)
    except (RedisError, OSError) as exc:
        return (f"NOT DONE: the user store (Redis) is unavailable: {exc}", no_update, no_update, True, "", None,
                "Delete", *cleared)
    rows = await _rows(runtime.redis, identity)
    if pending:
        question = f"Delete user '{pending}'? Their open sessions end; this cannot be undone."
        return ("", accounts_table(rows), [r.name for r in rows], False, question, pending, f"Delete {pending}",
                *cleared)
    return (message, accounts_table(rows), [r.name for r in rows], True, "", None, "Delete", *cleared)
