"""Alarm journal: every transition and operator action, searched by time, tag, area, priority and text.

Times are entered in the browser's time zone and turned into epoch ms there (so a daylight
saving change is the browser's business); an empty start means 24 h before the end, an empty
end means now. The CSV link asks /api/alarms/journal for exactly the search shown. The work
is in web/alarm_journal.py.
"""
from __future__ import annotations

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html
from dash.exceptions import PreventUpdate

from components.search_page import labelled_field as field, search_page
from web.alarm_journal import INVALID_TIME, journal_view
from web.runtime import current_runtime

dash.register_page(__name__, path="/alarms/journal", name="Alarm journal", title="Alarm journal", order=4)

COLUMNS = [
    {"field": "time_ms", "headerName": "Time", "width": 150, "sort": "desc",
     "valueFormatter": {"function": "stacklightTime(params.value)"}},
    {"field": "tag", "headerName": "Tag", "cellRenderer": "TagLink", "width": 180},
    {"field": "area", "headerName": "Area", "width": 110},
    {"field": "priority", "headerName": "Pri", "cellRenderer": "PriorityIndicator", "width": 70},
    {"field": "transition", "headerName": "Transition", "width": 100},
    {"field": "states", "headerName": "From -> to", "width": 230},
    {"field": "value", "headerName": "Value", "width": 110},
    {"field": "user", "headerName": "User", "width": 110},
    {"field": "comment", "headerName": "Comment", "flex": 1, "minWidth": 160},
    {"field": "message", "headerName": "Message", "flex": 2, "minWidth": 220},
]


def layout(**_query):
    # Not imported at the top: Dash runs every page module itself, and a top-level import of
    # another page would run that page (and register its callbacks) a second time.
    from layouts.alarms import GRID_THEME  # noqa: PLC0415

    areas = sorted({t.area for t in current_runtime().tags.tags() if t.area})
    filters = [
        field("From", dcc.Input(id="journal-start", type="datetime-local", step=1, className="sl-input")),
        field("To", dcc.Input(id="journal-end", type="datetime-local", step=1, className="sl-input")),
        field("Tag", dcc.Input(id="journal-tag", type="text", placeholder="T1.level or T1.*", maxLength=200,
                               className="sl-input")),
        field("Area", dcc.Dropdown(id="journal-area", options=areas, placeholder="any", style={"width": 160})),
        field("Priority", dcc.Dropdown(id="journal-priority", options=[1, 2, 3, 4], placeholder="any",
                                       style={"width": 90})),
        field("Text", dcc.Input(id="journal-text", type="text", placeholder="message, user or comment",
                                maxLength=200, className="sl-input")),
        html.Button("Search", id="journal-search", className="sl-button sl-button-primary"),
        html.A("Download CSV", id="journal-csv", className="sl-button", download=""),
    ]
    subtitle = "Every alarm transition and operator action. Empty times: the last 24 hours."
    return search_page("journal", "Alarm journal", subtitle, filters, COLUMNS, "No journal entries", GRID_THEME)


# The browser reads the times in its own zone (also on page load: the last 24 h); the search runs below.
clientside_callback(
    """function(_clicks, _tagEnter, _textEnter, start, end) {
        function ms(text) {
            if (!text) { return null; }
            const t = new Date(text).getTime();
            return isNaN(t) ? '""" + INVALID_TIME + """' : t;
        }
        return {start_ms: ms(start), end_ms: ms(end), now_ms: Date.now()};
    }""",
    Output("journal-range", "data"),
    Input("journal-search", "n_clicks"), Input("journal-tag", "n_submit"), Input("journal-text", "n_submit"),
    State("journal-start", "value"), State("journal-end", "value"),
)


@callback(
    Output("journal-grid", "rowData"),
    Output("journal-message", "children"),
    Output("journal-csv", "href"),
    Input("journal-range", "data"),
    State("journal-tag", "value"),
    State("journal-area", "value"),
    State("journal-priority", "value"),
    State("journal-text", "value"),
)
async def search(time_range, tag, area, priority, text):
    if not time_range:
        raise PreventUpdate  # the browser's times come first (above)
    runtime = await current_runtime().ensure_started()
    view = await journal_view(runtime, time_range, tag, area, priority, text, int(time_range["now_ms"]))
    return view.rows, view.message, view.csv_href
