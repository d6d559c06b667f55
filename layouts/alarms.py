"""Alarm list: shown alarms by priority then time; unacknowledged rows flash; select and acknowledge.

Rows arrive with every live push (web/live_push.py); acknowledging is checked
for the role on the server and carried out by the alarm engine.
"""
from __future__ import annotations

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from web.alarm_actions import acknowledge_alarms, describe_ack_results
from web.auth import current_identity, current_session
from web.live_push import LIVE_STORE_ID
from web.roles import Action, may
from web.runtime import current_runtime

dash.register_page(__name__, path="/alarms", name="Alarms", title="Alarms", order=2)

GRID_THEME = """themeBalham.withParams({
    backgroundColor: '#e2e2e2', foregroundColor: '#222', headerBackgroundColor: '#cfcfcf',
    oddRowBackgroundColor: '#dcdcdc', borderColor: '#bdbdbd', accentColor: '#4a4a4a',
    selectedRowBackgroundColor: '#c4c4c4', fontSize: 13, rowHeight: 30, headerHeight: 30,
    fontFamily: 'Segoe UI, Helvetica Neue, Arial, sans-serif'
})"""

COLUMNS = [
    # Rows arrive sorted (priority, then newest first: web/alarm_view.py); the grid keeps that order.
    {"field": "priority", "headerName": "Pri", "cellRenderer": "PriorityIndicator", "width": 70},
    {"field": "time_ms", "headerName": "Time", "width": 110,
     "valueFormatter": {"function": "stacklightTime(params.value)"}},
    {"field": "tag", "headerName": "Tag", "cellRenderer": "TagLink", "width": 190},
    {"field": "message", "headerName": "Message", "flex": 2, "minWidth": 220},
    {"field": "value", "headerName": "Value", "width": 130},
    {"field": "state_text", "headerName": "State", "width": 130},
    {"field": "area", "headerName": "Area", "width": 120},
    # A device alarm was decided by the PLC (OPC UA Alarms & Conditions); acknowledging asks the device.
    {"field": "origin", "headerName": "Origin", "width": 130},
]


def layout(**_query):
    session = current_session()
    can_ack = may(session.role if session else None, Action.ACKNOWLEDGE_ALARM)
    controls = [
        dcc.Input(id="alarm-ack-comment", type="text", placeholder="Comment (optional)", maxLength=500,
                  className="sl-input sl-input-wide", disabled=not can_ack),
        html.Button("Acknowledge selected", id="alarm-ack-button", className="sl-button sl-button-primary",
                    disabled=not can_ack),
        html.Span("" if can_ack else "Acknowledging needs the operator role.", className="sl-muted"),
    ]
    return html.Div(
        [
            html.H1("Alarms", className="sl-page-title"),
            dag.AgGrid(
                id="alarm-grid",
                columnDefs=COLUMNS,
                rowData=[],
                getRowId="params.data.alarm_id",
                defaultColDef={"resizable": True, "sortable": True},
                rowClassRules={"sl-alarm-unack": "params.data.unacked",
                               "sl-alarm-rtn": "params.data.state === 'D'"},
                dashGridOptions={"rowSelection": {"mode": "multiRow"}, "theme": {"function": GRID_THEME},
                                 "localeText": {"noRowsToShow": "No alarms"}, "animateRows": False},
                style={"height": "60vh"},
                className="sl-alarm-grid",
            ),
            html.Div(controls, className="sl-ack-controls"),
            dcc.Loading(html.Div(id="alarm-ack-result", className="sl-ack-result", role="status"),
                        type="dot", delay_show=300),
        ],
        className="sl-page",
    )


# New alarm rows come with the live pushes; only hand them to the grid when they changed.
clientside_callback(dash.ClientsideFunction(namespace="stacklight", function_name="alarmRows"),
                    Output("alarm-grid", "rowData"), Input(LIVE_STORE_ID, "data"))


@callback(
    Output("alarm-ack-result", "children"),
    Input("alarm-ack-button", "n_clicks"),
    State("alarm-grid", "selectedRows"),
    State("alarm-ack-comment", "value"),
    prevent_initial_call=True,
)
async def acknowledge_selected(_clicks, selected_rows, comment):
    runtime = await current_runtime().ensure_started()
    alarm_ids = [row.get("alarm_id") for row in (selected_rows or []) if isinstance(row, dict)]
    results = await acknowledge_alarms(runtime, current_identity(), alarm_ids, comment)
    return describe_ack_results(results)
