"""Your account: who you are (name, role, areas) and your API tokens, made and revoked here.

A new token is shown once, in a read-only field with a copy button; afterwards only its label
and public id are known. Every callback checks the login on the server again (the kiosk and
anyone not logged in are refused); the decisions are in web/account_view.py.
"""
from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from web.account_view import areas_text, make_token, my_tokens, refusal, revoke_mine, token_rows
from web.api_tokens import DEFAULT_DAYS
from web.auth import current_identity
from web.runtime import current_runtime

dash.register_page(__name__, path="/account", name="Account", title="Account")

COLUMNS = (("label", "Label"), ("id", "Id"), ("created", "Created"), ("expires", "Expires"),
           ("last_used", "Last used"))


def _field(label: str, control) -> html.Label:
    return html.Label([html.Span(label, className="sl-account-label"), control], className="sl-account-field")


def layout(**_query):
    identity = current_identity()
    why_not = refusal(identity)
    if why_not:
        return html.Div([html.H1("Account", className="sl-page-title"),
                         html.P(why_not, id="account-refused", className="sl-page-subtitle", role="alert"),
                         html.A("Log in", href="/login?next=%2Faccount", className="sl-button")],
                        className="sl-page")
    session = identity.session
    max_days = current_runtime().config.web.api_token_max_days
    who = html.Dl([html.Dt("User"), html.Dd(session.user, id="account-user"),
                   html.Dt("Role"), html.Dd(session.role.value, id="account-role"),
                   html.Dt("Areas"), html.Dd(areas_text(session.areas), id="account-areas")],
                  className="sl-account-who")
    create = html.Div(
        [
            _field("Label", dcc.Input(id="account-token-label", type="text", maxLength=80, className="sl-input",
                                      placeholder="what or who uses it")),
            # text, not number: a number field hands the server nothing for 9999 > max, not the reason why
            _field("Days", dcc.Input(id="account-token-days", type="text", inputMode="numeric", maxLength=5,
                                     className="sl-input", placeholder=str(min(DEFAULT_DAYS, max_days)))),
            html.Button("Create token", id="account-token-create", className="sl-button sl-button-primary"),
        ],
        className="sl-setpoint-row",
    )
    new_token = html.Div(
        [
            html.P("Your new token; copy it now: it is shown only once.", className="sl-page-subtitle"),
            dcc.Input(id="account-new-token", type="text", readOnly=True, className="sl-input",
                      style={"width": "32rem", "fontFamily": "monospace"}),
            dcc.Clipboard(target_id="account-new-token", title="Copy the token", className="sl-button"),
            html.P("Use it as the header  Authorization: Bearer <token>  on /api/ requests.",
                   className="sl-page-subtitle"),
        ],
        id="account-new-token-panel", hidden=True,
    )
    return html.Div(
        [
            html.H1("Account", className="sl-page-title"),
            who,
            html.H2("API tokens", className="sl-page-subtitle"),
            html.P(f"A token acts with your current role and areas on /api/ only; it lasts up to {max_days} days.",
                   className="sl-page-subtitle"),
            create,
            new_token,
            html.Div("", id="account-message", role="status", className="sl-page-subtitle"),
            html.Table(id="account-tokens", className="sl-source-table"),
            dcc.Store(id="account-refresh", data=0),
        ],
        className="sl-page",
    )


def tokens_table(rows: list[dict[str, str]]) -> list:
    head = html.Thead(html.Tr([html.Th(title) for _, title in COLUMNS] + [html.Th("")]))
    if not rows:
        return [head, html.Tbody(html.Tr(html.Td("No API tokens", colSpan=len(COLUMNS) + 1)))]
    body = [html.Tr([html.Td(row[key]) for key, _ in COLUMNS]
                    + [html.Td(html.Button("Revoke", id={"type": "account-revoke", "token": row["id"]},
                                           className="sl-button", title=f"Revoke {row['label']}"))],
                    **{"data-token-id": row["id"]}) for row in rows]
    return [head, html.Tbody(body)]


@callback(Output("account-tokens", "children"), Input("account-refresh", "data"))
async def show_tokens(_refresh):
    runtime = await current_runtime().ensure_started()
    tokens, why_not = await my_tokens(runtime.redis, current_identity())
    if why_not:
        return [html.Tbody(html.Tr(html.Td(why_not)))]
    return tokens_table(token_rows(tokens))


@callback(
    Output("account-new-token", "value"),
    Output("account-new-token-panel", "hidden"),
    Output("account-message", "children"),
    Output("account-refresh", "data"),
    Output("account-token-label", "value"),
    Input("account-token-create", "n_clicks"),
    State("account-token-label", "value"),
    State("account-token-days", "value"),
    State("account-refresh", "data"),
    prevent_initial_call=True,
)
async def create_clicked(_clicks, label, days, refresh):
    runtime = await current_runtime().ensure_started()
    outcome = await make_token(runtime.redis, current_identity(), label, days,
                               runtime.config.web.api_token_max_days)
    if not outcome.ok:
        return "", True, outcome.message, dash.no_update, dash.no_update
    return outcome.token, False, outcome.message, (refresh or 0) + 1, ""


@callback(
    Output("account-message", "children", allow_duplicate=True),
    Output("account-refresh", "data", allow_duplicate=True),
    Output("account-new-token", "value", allow_duplicate=True),
    Output("account-new-token-panel", "hidden", allow_duplicate=True),
    Input({"type": "account-revoke", "token": ALL}, "n_clicks"),
    State("account-refresh", "data"),
    prevent_initial_call=True,
)
async def revoke_clicked(clicks, refresh):
    if not isinstance(ctx.triggered_id, dict) or not any(clicks or []):
        raise PreventUpdate  # the table was drawn again, nothing pressed
    runtime = await current_runtime().ensure_started()
    outcome = await revoke_mine(runtime.redis, current_identity(), ctx.triggered_id.get("token"))
    return outcome.message, (refresh or 0) + 1, "", True
