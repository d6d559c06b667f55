"""Audit trail: logins, writes, alarm actions, user and plant-file changes, searched and exported.

Engineer and admin search everyone's actions; viewer and operator only their own (the user
filter is theirs and fixed: an operator checks that a write went through); the kiosk view and
logged-out clients get a message instead of the page. The search callback checks again. A preset (last hour, day, week) or a custom range
whose times the browser reads in its own zone; the CSV link asks /api/audit.csv for exactly the
search shown. The work is in web/audit_query.py; the status line also says how the archive
(audit_trail/) stands, from the archiver's heartbeat.
"""
from __future__ import annotations

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html
from dash.exceptions import PreventUpdate

from audit_trail.archive import audit_archive_path
from components.search_page import labelled_field as field, search_page
from web.audit_query import ACTIONS, INVALID_TIME, OWN_ONLY, PAGE_LIMIT, RESULTS, AuditScope, audit_scope, audit_view
from web.auth import current_identity
from web.runtime import current_runtime

dash.register_page(__name__, path="/audit", name="Audit trail", title="Audit trail", order=6)

PRESET_OPTIONS = [{"label": "Last hour", "value": "hour"}, {"label": "Last day", "value": "day"},
                  {"label": "Last week", "value": "week"}, {"label": "From / to below", "value": "custom"}]

COLUMNS = [
    {"field": "time_ms", "headerName": "Time", "width": 150, "sort": "desc",
     "valueFormatter": {"function": "stacklightTime(params.value)"}},
    {"field": "user", "headerName": "User", "width": 120},
    {"field": "action", "headerName": "Action", "width": 130},
    {"field": "result", "headerName": "Result", "width": 110},
    {"field": "tag", "headerName": "Tag / alarm", "width": 180},
    {"field": "old", "headerName": "Old", "width": 110},
    {"field": "new", "headerName": "New", "width": 110},
    {"field": "reason", "headerName": "Reason", "flex": 1, "minWidth": 200},
    {"field": "comment", "headerName": "Comment", "width": 180},
    {"field": "source_ip", "headerName": "From address", "width": 140},
]


def current_scope() -> AuditScope:
    identity = current_identity()
    if identity is None:
        return audit_scope(None, None)
    return audit_scope(identity.session.role, identity.session.user, identity.is_kiosk)


def layout(**_query):
    scope = current_scope()
    if not scope.allowed:
        return html.Div([html.H1("Audit trail", className="sl-page-title"),
                         html.P(scope.refusal, id="audit-not-allowed", className="sl-page-subtitle", role="alert")],
                        className="sl-page")
    from layouts.alarms import GRID_THEME  # noqa: PLC0415 - see layouts/alarm_journal.py

    filters = [
        field("Range", dcc.Dropdown(id="audit-preset", options=PRESET_OPTIONS, value="day", clearable=False,
                                    style={"width": 170})),
        field("From", dcc.Input(id="audit-from", type="datetime-local", step=1, className="sl-input")),
        field("To", dcc.Input(id="audit-to", type="datetime-local", step=1, className="sl-input")),
        field("User", dcc.Input(id="audit-user", type="text", maxLength=200, className="sl-input",
                                value=scope.only_user, disabled=scope.only_user is not None)),
        field("Tag", dcc.Input(id="audit-tag", type="text", placeholder="T1.level or T1.*", maxLength=200,
                               className="sl-input")),
        field("Action", dcc.Dropdown(id="audit-action", options=list(ACTIONS), placeholder="any",
                                     style={"width": 170})),
        field("Result", dcc.Dropdown(id="audit-result", options=list(RESULTS), placeholder="any",
                                     style={"width": 130})),
        field("Text", dcc.Input(id="audit-text", type="text", placeholder="values, reason, comment, address",
                                maxLength=200, className="sl-input")),
        html.Button("Search", id="audit-search", className="sl-button sl-button-primary"),
        html.A("Download CSV", id="audit-csv", className="sl-button", download=""),
    ]
    subtitle = f"Who did what, newest first; the page shows up to {PAGE_LIMIT:,} events, the CSV up to 100,000."
    if scope.only_user is not None:
        subtitle = f"{OWN_ONLY} {subtitle}"
    return search_page("audit", "Audit trail", subtitle, filters, COLUMNS, "No audit events", GRID_THEME)


# The browser reads custom times in its own zone; the search runs below.
clientside_callback(
    """function(_clicks, _userEnter, _tagEnter, _textEnter, preset, fromText, toText) {
        function ms(text) {
            if (!text) { return null; }
            const t = new Date(text).getTime();
            return isNaN(t) ? '""" + INVALID_TIME + """' : t;
        }
        return {preset: preset, from_ms: ms(fromText), to_ms: ms(toText), now_ms: Date.now()};
    }""",
    Output("audit-range", "data"),
    Input("audit-search", "n_clicks"), Input("audit-user", "n_submit"), Input("audit-tag", "n_submit"),
    Input("audit-text", "n_submit"),
    State("audit-preset", "value"), State("audit-from", "value"), State("audit-to", "value"),
)


@callback(
    Output("audit-grid", "rowData"),
    Output("audit-message", "children"),
    Output("audit-csv", "href"),
    Input("audit-range", "data"),
    State("audit-user", "value"),
    State("audit-tag", "value"),
    State("audit-action", "value"),
    State("audit-result", "value"),
    State("audit-text", "value"),
)
async def search(time_range, user, tag, action, result, text):
    if not time_range:
        raise PreventUpdate  # the browser's times come first (above)
    runtime = await current_runtime().ensure_started()
    view = await audit_view(runtime.redis, current_scope(), time_range, user, tag, action,
                            result, text, int(time_range["now_ms"]), audit_archive_path(runtime.config))
    return view.rows, view.message, view.csv_href
