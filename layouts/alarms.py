"""Alarm summary: the alarm list and the lists of shelved, suppressed and out-of-service alarms.

The alarm list (ISA-18.2 states B, C, D, LU, LA) is ordered by priority, then
newest first, and can be sorted and filtered by priority, area, state and text;
unacknowledged rows flash. Rows arrive with every live push (web/live_push.py).
Every action (acknowledge, acknowledge all visible, reset, shelve, unshelve, out of
service) goes through web.alarm_actions.perform_alarm_action: the role is checked
on the server, the alarm engine decides, and each refusal is shown with its reason.
"""
from __future__ import annotations

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html

from web.alarm_actions import (
    acknowledge_all_question, default_shelve_choice, describe_results, may_act, perform_alarm_action, shelve_choice,
    shelve_duration_options,
)
from web.auth import current_identity, current_session
from web.live_push import LIVE_STORE_ID
from web.runtime import current_runtime
from web.shell import engine_notice

dash.register_page(__name__, path="/alarms", name="Alarms", title="Alarms", order=2)

GRID_THEME = """themeBalham.withParams({
    backgroundColor: '#e2e2e2', foregroundColor: '#222', headerBackgroundColor: '#cfcfcf',
    oddRowBackgroundColor: '#dcdcdc', borderColor: '#bdbdbd', accentColor: '#4a4a4a',
    selectedRowBackgroundColor: '#c4c4c4', fontSize: 13, rowHeight: 30, headerHeight: 30,
    fontFamily: 'Segoe UI, Helvetica Neue, Arial, sans-serif'
})"""

# The lists: (tab value, tab label, grid id). Tab labels get their counts from the live pushes.
LISTS = (
    ("active", "Active alarms", "alarm-grid"),
    ("shelved", "Shelved", "alarm-shelved-grid"),
    ("suppressed", "Suppressed by design", "alarm-suppressed-grid"),
    ("out_of_service", "Out of service", "alarm-oos-grid"),
)

TEXT_FILTER = {"filter": "agTextColumnFilter", "floatingFilter": True,
               "filterParams": {"filterOptions": ["contains", "equals", "notContains"], "maxNumConditions": 1}}
PRIORITY_FILTER = {"filter": "agNumberColumnFilter", "floatingFilter": True,
                   "filterParams": {"filterOptions": ["equals", "lessThanOrEqual", "greaterThanOrEqual"],
                                    "maxNumConditions": 1}}


def _priority(sort: str | None = "asc") -> dict:
    return {"field": "priority", "headerName": "Pri", "cellRenderer": "PriorityIndicator", "width": 95,
            "sort": sort, "sortIndex": 0, **PRIORITY_FILTER}


def _time(field: str, header: str, sort: str | None = None) -> dict:
    column = {"field": field, "headerName": header, "width": 110, "filter": False,
              "valueFormatter": {"function": "stacklightTime(params.value)"}}
    return column | ({"sort": sort, "sortIndex": 1} if sort else {})


TAG = {"field": "tag", "headerName": "Tag", "cellRenderer": "TagLink", "width": 180, **TEXT_FILTER}
MESSAGE = {"field": "message", "headerName": "Message", "flex": 2, "minWidth": 200, **TEXT_FILTER}
AREA = {"field": "area", "headerName": "Area", "width": 130, **TEXT_FILTER}
CONDITION = {"field": "condition", "headerName": "Condition", "width": 110, **TEXT_FILTER,
             "headerTooltip": "what the alarm would be now: the engine keeps following its input"}


def active_columns(can_reset: bool) -> list[dict]:
    # Default order: priority, then newest first (the rows also arrive that way: web/alarm_view.py).
    return [
        _priority(), _time("time_ms", "Time", "desc"), TAG, MESSAGE,
        {"field": "value", "headerName": "Trip value", "width": 120, "filter": False,
         "headerTooltip": "the input value when the alarm last changed; the live value is on the tag's faceplate"},
        {"field": "state_text", "headerName": "State", "width": 185, "cellRenderer": "AlarmState",
         "cellRendererParams": {"canReset": can_reset}, **TEXT_FILTER},
        AREA,
        # A device alarm was decided by the PLC (OPC UA Alarms & Conditions); only acknowledge is passed on.
        {"field": "origin", "headerName": "Origin", "width": 120, **TEXT_FILTER},
    ]


SHELVED_COLUMNS = [
    _priority(), TAG, MESSAGE, CONDITION,
    {"field": "shelved_by", "headerName": "Shelved by", "width": 120, **TEXT_FILTER},
    {"field": "shelved_until_ms", "headerName": "Until", "width": 190, "filter": False,
     "valueFormatter": {"function": "stacklightShelvedUntil(params.data)"}},
    {"field": "shelve_comment", "headerName": "Comment", "flex": 1, "minWidth": 160, **TEXT_FILTER},
    AREA,
]
SUPPRESSED_COLUMNS = [_priority(), TAG, MESSAGE, CONDITION, _time("since_ms", "Since"), AREA]
OUT_OF_SERVICE_COLUMNS = [
    _priority(), TAG, MESSAGE, CONDITION,
    {"field": "out_of_service_by", "headerName": "By", "width": 120, **TEXT_FILTER},
    {"field": "out_of_service_comment", "headerName": "Comment", "flex": 1, "minWidth": 160, **TEXT_FILTER},
    _time("since_ms", "Since"), AREA,
]


def alarm_grid(grid_id: str, columns: list[dict], empty_text: str, selectable: bool = True) -> dag.AgGrid:
    options = {"theme": {"function": GRID_THEME}, "localeText": {"noRowsToShow": empty_text},
               "animateRows": False, "tooltipShowDelay": 300}
    if selectable:
        options["rowSelection"] = {"mode": "multiRow"}
    return dag.AgGrid(
        id=grid_id,
        columnDefs=columns,
        rowData=[],
        getRowId="params.data.alarm_id",
        defaultColDef={"resizable": True, "sortable": True, "filter": False},
        rowClassRules={"sl-alarm-unack": "params.data.unacked", "sl-alarm-rtn": "params.data.state === 'D'",
                       "sl-alarm-latched": "params.data.latched"},
        dashGridOptions=options,
        style={"height": "56vh"},
        className="sl-alarm-grid",
    )


def _button(label: str, button_id: str, allowed: bool, why_not: str, primary: bool = False) -> html.Button:
    return html.Button(label, id=button_id, disabled=not allowed, title="" if allowed else why_not,
                       className="sl-button" + (" sl-button-primary" if primary else ""))


def _comment(input_id: str, placeholder: str, enabled: bool) -> dcc.Input:
    return dcc.Input(id=input_id, type="text", placeholder=placeholder, maxLength=500, disabled=not enabled,
                     className="sl-input sl-input-wide sl-alarm-comment", autoComplete="off")


def _hint(text: str) -> html.Span:
    return html.Span(text, className="sl-muted sl-role-hint")


def active_panel(can: dict[str, bool], max_shelve_s: float) -> html.Div:
    operator_hint = "" if can["acknowledge"] else "Acknowledging, resetting and shelving need the operator role."
    engineer_hint = "" if can["remove_from_service"] else "Taking an alarm out of service needs the engineer role."
    return html.Div([
        alarm_grid("alarm-grid", active_columns(can["reset"]), "No alarms"),
        html.Div([
            _comment("alarm-ack-comment", "Comment (required to shelve or take out of service)",
                     can["acknowledge"] or can["remove_from_service"]),
            _button("Acknowledge selected", "alarm-ack-button", can["acknowledge"], operator_hint, primary=True),
            _button("Acknowledge all visible…", "alarm-ack-all-button", can["acknowledge"], operator_hint),
            _button("Reset selected", "alarm-reset-button", can["reset"], operator_hint),
        ], className="sl-ack-controls"),
        html.Div([
            html.Div(
                [html.Div("Acknowledge all visible", className="sl-confirm-title"),
                 html.Div(id="alarm-ack-all-question", className="sl-confirm-question"),
                 html.Button("Acknowledge", id="alarm-ack-all-yes", className="sl-button sl-button-primary"),
                 html.Button("Cancel", id="alarm-ack-all-cancel", className="sl-button")],
                id="alarm-ack-all-confirm", className="sl-confirm", hidden=True, role="dialog",
            ),
            dcc.Store(id="alarm-ack-all-pending", data=None),
        ]),
        html.Div([
            html.Label("Shelve for", htmlFor="alarm-shelve-duration", className="sl-muted"),
            dcc.Dropdown(id="alarm-shelve-duration", options=shelve_duration_options(max_shelve_s),
                         value=default_shelve_choice(max_shelve_s), clearable=False, searchable=False,
                         disabled=not can["shelve"], className="sl-shelve-duration"),
            _button("Shelve selected", "alarm-shelve-button", can["shelve"], operator_hint),
            _button("Remove from service", "alarm-oos-button", can["remove_from_service"], engineer_hint),
        ], className="sl-ack-controls sl-shelve-controls"),
        html.Div([_hint(operator_hint), _hint(engineer_hint)], className="sl-role-hints"),
    ], id="alarm-panel-active", className="sl-alarm-panel")


def shelved_panel(can: dict[str, bool]) -> html.Div:
    hint = "" if can["unshelve"] else "Unshelving needs the operator role."
    return html.Div([
        alarm_grid("alarm-shelved-grid", SHELVED_COLUMNS, "No shelved alarms"),
        html.Div([
            _comment("alarm-unshelve-comment", "Comment (optional)", can["unshelve"]),
            _button("Unshelve selected", "alarm-unshelve-button", can["unshelve"], hint, primary=True),
            _hint(hint),
        ], className="sl-ack-controls"),
    ], id="alarm-panel-shelved", className="sl-alarm-panel", hidden=True)


def suppressed_panel() -> html.Div:
    return html.Div([
        alarm_grid("alarm-suppressed-grid", SUPPRESSED_COLUMNS, "No alarms suppressed by design", selectable=False),
        html.P("Suppressed by design: the plant file says when (another tag's state); the alarm engine"
               " applies it and lifts it by itself.", className="sl-muted"),
    ], id="alarm-panel-suppressed", className="sl-alarm-panel", hidden=True)


def out_of_service_panel(can: dict[str, bool]) -> html.Div:
    hint = "" if can["return_to_service"] else "Returning an alarm to service needs the engineer role."
    return html.Div([
        alarm_grid("alarm-oos-grid", OUT_OF_SERVICE_COLUMNS, "No alarms out of service"),
        html.Div([
            _comment("alarm-return-comment", "Comment (optional)", can["return_to_service"]),
            _button("Return to service", "alarm-return-button", can["return_to_service"], hint, primary=True),
            _hint(hint),
        ], className="sl-ack-controls"),
    ], id="alarm-panel-out_of_service", className="sl-alarm-panel", hidden=True)


def layout(**_query):
    session = current_session()
    role = session.role if session else None
    can = {action: may_act(role, action) for action in ("acknowledge", "reset", "shelve", "unshelve",
                                                           "remove_from_service", "return_to_service")}
    max_shelve_s = current_runtime().config.alarm_system.max_shelve_s
    return html.Div(
        [
            html.H1("Alarms", className="sl-page-title"),
            engine_notice("page"),  # the lists below are not kept current while the engine is down
            dcc.Tabs(id="alarm-list-tabs", value="active", className="sl-alarm-tabs",
                     colors={"border": "#a5a5a5", "primary": "#333333", "background": "#c9c9c9"},
                     children=[dcc.Tab(label=label, value=value, id=f"alarm-tab-{value}", className="sl-alarm-tab",
                                       selected_className="sl-alarm-tab-selected")
                               for value, label, _grid in LISTS]),
            active_panel(can, max_shelve_s),
            shelved_panel(can),
            suppressed_panel(),
            out_of_service_panel(can),
            dcc.Loading(html.Div(id="alarm-ack-result", className="sl-ack-result", role="status"),
                        type="dot", delay_show=300),
        ],
        className="sl-page",
    )


# New rows (and the tabs' counts) come with the live pushes; handed to the grids only when they changed.
clientside_callback(
    dash.ClientsideFunction(namespace="stacklight", function_name="alarmLists"),
    *[Output(grid, "rowData") for _value, _label, grid in LISTS],
    *[Output(f"alarm-tab-{value}", "label") for value, _label, _grid in LISTS],
    Input(LIVE_STORE_ID, "data"),
)

clientside_callback(
    "function (tab) { return [" + ", ".join(f"tab !== '{value}'" for value, _l, _g in LISTS) + "]; }",
    *[Output(f"alarm-panel-{value}", "hidden") for value, _label, _grid in LISTS],
    Input("alarm-list-tabs", "value"),
)


@callback(
    Output("alarm-ack-all-pending", "data"),
    Output("alarm-ack-all-question", "children"),
    Output("alarm-ack-all-confirm", "hidden"),
    Output("alarm-ack-result", "children", allow_duplicate=True),
    Input("alarm-ack-all-button", "n_clicks"),
    Input("alarm-ack-all-cancel", "n_clicks"),
    State("alarm-grid", "virtualRowData"),
    prevent_initial_call=True,
)
def ask_to_acknowledge_all(_ask, _cancel, shown_rows):
    """Step one of "acknowledge all visible": count the unacknowledged rows passing the grid's filters."""
    if ctx.triggered_id == "alarm-ack-all-cancel":
        return None, "", True, ""
    ids, question = acknowledge_all_question(shown_rows)
    if not ids:
        return None, "", True, question
    return ids, question, False, ""


# Which button acts on which list's selection, with which comment field.
BUTTONS = {
    "alarm-ack-button": ("acknowledge", "active"),
    "alarm-reset-button": ("reset", "active"),
    "alarm-shelve-button": ("shelve", "active"),
    "alarm-oos-button": ("remove_from_service", "active"),
    "alarm-unshelve-button": ("unshelve", "shelved"),
    "alarm-return-button": ("return_to_service", "out_of_service"),
}


def _ids(rows) -> list:
    return [row.get("alarm_id") for row in (rows or []) if isinstance(row, dict)]


@callback(
    Output("alarm-ack-result", "children"),
    Output("alarm-ack-all-pending", "data", allow_duplicate=True),
    Output("alarm-ack-all-confirm", "hidden", allow_duplicate=True),
    Output("alarm-ack-comment", "value"),
    Output("alarm-unshelve-comment", "value"),
    Output("alarm-return-comment", "value"),
    *[Output(grid, "selectedRows") for grid in ("alarm-grid", "alarm-shelved-grid", "alarm-oos-grid")],
    *[Input(button, "n_clicks") for button in BUTTONS],
    Input("alarm-ack-all-yes", "n_clicks"),
    Input("alarm-grid", "cellRendererData"),
    State("alarm-grid", "selectedRows"),
    State("alarm-shelved-grid", "selectedRows"),
    State("alarm-oos-grid", "selectedRows"),
    State("alarm-ack-comment", "value"),
    State("alarm-unshelve-comment", "value"),
    State("alarm-return-comment", "value"),
    State("alarm-shelve-duration", "value"),
    State("alarm-ack-all-pending", "data"),
    prevent_initial_call=True,
)
async def act_on_alarms(*args):
    *_clicks, row_button, active_rows, shelved_rows, oos_rows, comment, unshelve_comment, return_comment, \
        duration, pending = args
    comments = {"active": comment, "shelved": unshelve_comment, "out_of_service": return_comment}
    trigger = ctx.triggered_id
    duration_s, one_shot = None, False
    if trigger == "alarm-ack-all-yes":
        action, ids, panel = "acknowledge", pending, "active"
    elif trigger == "alarm-grid":  # a row's own Reset button (components: AlarmState cell renderer)
        action, ids, panel = "reset", [(row_button or {}).get("rowId")], "active"
    else:
        action, panel = BUTTONS[trigger]
        ids = _ids({"active": active_rows, "shelved": shelved_rows, "out_of_service": oos_rows}[panel])
        if action == "shelve":
            duration_s, one_shot = shelve_choice(duration)
    runtime = await current_runtime().ensure_started()
    results = await perform_alarm_action(runtime, current_identity(), action, ids, comments[panel],
                                         duration_s, one_shot)
    # After an accepted action the panel starts afresh: no comment or selection left for the next one.
    done = any(r.accepted for r in results)
    comments_out = [None if done and panel == name else dash.no_update for name in comments]
    selections_out = [[] if done and panel == name else dash.no_update for name in comments]
    return describe_results(action, results), None, True, *comments_out, *selections_out

