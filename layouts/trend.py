"""Trend: pens chosen by search, ranges from 5 minutes (live) to 30 days or custom, pause, zoom that
re-queries the server, limits, setpoints and Bad periods drawn, CSV and PNG export.

What is shown is a TrendState (web/trend_state.py) kept in `trend-state` and in the address
(web/trend_url.py). One callback turns the controls into a new state (web/trend_actions.py); one
draws it: every pen and setpoint queried at once (web/trend_history.py), the figure built as a dict
(web/trend_figure.py). The browser side (assets/trend_live.js) extends live presets of up to an
hour from the live push, slides their window, debounces zooms and downloads the PNG.
"""
from __future__ import annotations

import time
from urllib.parse import urlencode

import dash
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from web.api import iso_utc
from web.history_csv import CSV_CAP_ROWS
from web.runtime import current_runtime
from web.trend_actions import apply_action, pause_button
from web.trend_figure import FigureView, Pen, parse_pens, pen_options, png_name, trend_figure
from web.trend_history import answer_notes, query_pens, setpoints_to_query
from web.trend_overlays import setpoint_tag
from web.trend_ranges import CUSTOM, RANGE_LABELS, max_points_for_width
from web.trend_state import MAX_PENS, TrendState
from web.trend_url import format_trend_query, parse_trend_query

dash.register_page(__name__, path="/trend", name="Trend", title="Trend", order=1)

GRAPH_CONFIG = {
    "displaylogo": False, "doubleClick": False, "scrollZoom": False,
    "toImageButtonOptions": {"format": "png", "filename": "trend", "scale": 2},
    "modeBarButtonsToRemove": ["autoScale2d", "resetScale2d", "lasso2d", "select2d"],
}


def now_ms() -> int:
    return int(time.time() * 1000)


def layout(**query):
    known = current_runtime().tags.tags()
    state, notes = parse_trend_query(query, {t.name for t in known if t.data_type != "string"}, now_ms())
    pens = list(state.tags)
    custom = state.range_key == CUSTOM
    return html.Div(
        [
            html.H1("Trend", className="sl-page-title"),
            html.Div(
                [
                    dcc.Dropdown(id="trend-pens", multi=True, value=pens, options=pen_options(known, None, pens),
                                 placeholder=f"Search tags by name, description or unit (up to {MAX_PENS})…",
                                 className="sl-trend-pens"),
                    dcc.RadioItems(id="trend-axes", value=state.axes, inline=True, className="sl-trend-axes",
                                   options=[{"label": "Axis per unit", "value": "unit"},
                                            {"label": "Normalised", "value": "normalised"}]),
                ],
                className="sl-trend-controls",
            ),
            html.Div(
                [
                    dcc.RadioItems(id="trend-range", value=state.range_key, inline=True,
                                   className="sl-trend-window",
                                   options=[{"label": label, "value": key} for key, label in RANGE_LABELS.items()]),
                    html.Div(
                        [
                            dcc.Input(id="trend-custom-start", type="text", className="sl-trend-time",
                                      placeholder="start: YYYY-MM-DD HH:MM"),
                            html.Span("to"),
                            dcc.Input(id="trend-custom-end", type="text", className="sl-trend-time",
                                      placeholder="end: YYYY-MM-DD HH:MM"),
                            html.Span("local time", className="sl-muted sl-trend-cap"),
                            html.Button("Show", id="trend-custom-apply", className="sl-trend-button"),
                        ],
                        id="trend-custom", className="sl-trend-custom", hidden=not custom,
                    ),
                    html.Button("Pause", id="trend-pause", className="sl-trend-button"),
                    html.Button("Reset zoom", id="trend-reset-zoom", className="sl-trend-button", hidden=True),
                    html.Span(id="trend-action-message", className="sl-trend-error", role="alert"),
                    html.Span(className="sl-trend-spacer"),
                    html.A("CSV", id="trend-csv", className="sl-trend-button sl-trend-link", href="",
                           title=f"Raw samples of the pens in the visible range, with time and quality; "
                                 f"at most {CSV_CAP_ROWS:,} rows"),
                    html.Button("PNG", id="trend-png", className="sl-trend-button",
                                title="The chart as a PNG image"),
                    html.Span(f"CSV: raw values with quality, at most {CSV_CAP_ROWS:,} rows",
                              className="sl-muted sl-trend-cap"),
                ],
                className="sl-trend-controls",
            ),
            html.Ul([html.Li(n) for n in notes], id="trend-url-notes", className="sl-trend-notes"),
            html.Ul(id="trend-message", className="sl-trend-notes"),
            dcc.Store(id="trend-state", data=state.to_store()),
            dcc.Store(id="trend-client"),
            dcc.Store(id="trend-zoom"),
            dcc.Store(id="trend-url"),
            dcc.Interval(id="trend-refresh", interval=30_000, disabled=True),
            dcc.Graph(id="trend-graph", className="sl-trend-graph", config=GRAPH_CONFIG, style={"height": "62vh"}),
        ],
        className="sl-page sl-trend-page",
    )


# The browser's time zone and plot width first (and again when the window is resized).
clientside_callback(ClientsideFunction("stacklightTrend", "client"),
                    Output("trend-client", "data"), Input("trend-graph", "id"))
# Zooms and pans by the operator reach trend-zoom from assets/trend_live.js (Plotly's relayout event,
# debounced; our own sliding of the window is not one).
# The address follows every change, without reloading.
clientside_callback(ClientsideFunction("stacklightTrend", "address"), Input("trend-url", "data"))
clientside_callback(ClientsideFunction("stacklightTrend", "png"), Input("trend-png", "n_clicks"),
                    prevent_initial_call=True)


@callback(Output("trend-pens", "options"), Input("trend-pens", "search_value"), State("trend-pens", "value"),
          prevent_initial_call=True)
def search_pens(search, pens):
    """Options as the operator types: any known tag, configured or discovered since the page opened."""
    if search is None:
        raise PreventUpdate
    return pen_options(current_runtime().tags.tags(), search, pens)


@callback(
    Output("trend-state", "data"),
    Output("trend-pens", "value"),
    Output("trend-action-message", "children"),
    Output("trend-custom-start", "value"),
    Output("trend-custom-end", "value"),
    Input("trend-pens", "value"),
    Input("trend-range", "value"),
    Input("trend-axes", "value"),
    Input("trend-pause", "n_clicks"),
    Input("trend-reset-zoom", "n_clicks"),
    Input("trend-custom-apply", "n_clicks"),
    Input("trend-zoom", "data"),
    State("trend-custom-start", "value"),
    State("trend-custom-end", "value"),
    State("trend-client", "data"),
    State("trend-state", "data"),
    prevent_initial_call=True,
)
def change_state(pens, range_key, axes, _pause, _reset, _apply, zoom, custom_start, custom_end, client, data):
    offset = int((client or {}).get("utc_offset_min") or 0)
    values = {"pens": parse_pens(pens, {t.name: t for t in current_runtime().tags.tags()}), "range": range_key,
              "axes": axes, "zoom": zoom, "custom_start": custom_start, "custom_end": custom_end}
    result = apply_action(TrendState.from_store(data), ctx.triggered_id, values, offset, now_ms())
    start_text, end_text = result.custom_inputs or (dash.no_update, dash.no_update)
    kept = list(result.state.tags) if len(pens or []) > MAX_PENS else dash.no_update
    return result.state.to_store(), kept, result.message, start_text, end_text


def csv_href(tags: list[str], start_ms: int, end_ms: int) -> str:
    if not tags:
        return ""
    return "/api/history.csv?" + urlencode({"tags": ",".join(tags), "start": iso_utc(start_ms),
                                            "end": iso_utc(end_ms)}, safe=":,")


@callback(
    Output("trend-graph", "figure"),
    Output("trend-message", "children"),
    Output("trend-csv", "href"),
    Output("trend-url", "data"),
    Output("trend-refresh", "disabled"),
    Output("trend-refresh", "interval"),
    Output("trend-pause", "children"),
    Output("trend-pause", "disabled"),
    Output("trend-pause", "title"),
    Output("trend-reset-zoom", "hidden"),
    Output("trend-custom", "hidden"),
    Input("trend-state", "data"),
    Input("trend-client", "data"),
    Input("trend-refresh", "n_intervals"),
)
async def draw_trend(data, client, _ticks):
    if not client:
        raise PreventUpdate  # the browser's time zone and width arrive first (see above)
    runtime = await current_runtime().ensure_started()
    offset = int(client.get("utc_offset_min") or 0)
    state = TrendState.from_store(data)
    index = {t.name: t for t in runtime.tags.tags()}
    tags = [index[n] for n in state.tags if n in index]
    now = now_ms()
    view = state.view(now)
    setpoints = setpoints_to_query(tags, index)
    answers, setpoint_answers = await query_pens(runtime, tags, setpoints, view.start_ms, view.end_ms,
                                                 max_points_for_width(client.get("plot_px")))
    pens = []
    for answer in answers:
        sp = setpoint_answers.get(setpoint_tag(answer.tag))
        pens.append(Pen(answer.tag, answer.history,
                        (sp.tag, sp.history) if sp is not None and sp.history is not None else None))
    name = png_name([t.name for t in tags], view.end_ms, offset)
    figure = trend_figure(pens, FigureView(
        view.start_ms, view.end_ms, offset, live=view.live, extend=view.extend, axes=state.axes,
        revision=format_trend_query(state), png_name=name,
    ))
    notes = answer_notes(answers, offset) + figure["layout"]["meta"]["notes"]
    if view.refresh_s:
        notes.append(f"Live: queried again every {view.refresh_s} s.")
    text, disabled, title = pause_button(state)
    return (figure, [html.Li(n) for n in notes], csv_href([t.name for t in tags], view.start_ms, view.end_ms),
            format_trend_query(state), not view.refresh_s, (view.refresh_s or 30) * 1000,
            text, disabled, title, state.zoom is None, state.range_key != CUSTOM)
