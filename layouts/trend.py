"""Trend: recent history from Redis, then extended live in the browser (Plotly.extendTraces).

The pen set lives in the address (?tags=a,b&window=15) so a trend can be bookmarked.
"""
from __future__ import annotations

import asyncio
import time

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html
from dash.exceptions import PreventUpdate
from redis.exceptions import RedisError

from domain.freshness import Freshness
from web.runtime import current_runtime
from web.trend_figure import WINDOWS_MIN, parse_pens, pen_options, trend_figure
from web.trend_history import hold_to_now, read_history

dash.register_page(__name__, path="/trend", name="Trend", title="Trend", order=1)

MAX_PENS = 8


def layout(tags: str | None = None, window: str | None = None, **_query):
    known = current_runtime().tags.tags()
    pens = parse_pens(tags, {t.name: t for t in known})[:MAX_PENS]
    window_min = int(window) if window in {str(w) for w in WINDOWS_MIN} else 15
    return html.Div(
        [
            html.H1("Trend", className="sl-page-title"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="trend-pens", multi=True, value=pens, options=pen_options(known, None, pens),
                        placeholder="Choose up to 8 tags…", className="sl-trend-pens",
                    ),
                    dcc.RadioItems(id="trend-window", value=window_min, inline=True, className="sl-trend-window",
                                   options=[{"label": f"{w} min", "value": w} for w in WINDOWS_MIN]),
                ],
                className="sl-trend-controls",
            ),
            html.Div(id="trend-message", className="sl-muted"),
            dcc.Store(id="trend-utc-offset"),
            dcc.Graph(id="trend-graph", className="sl-trend-graph", config={"displaylogo": False},
                      style={"height": "62vh"}),
        ],
        className="sl-page",
    )


# The browser's time zone, so history and live points use the same clock.
clientside_callback("function(_id) { return -new Date().getTimezoneOffset(); }",
                    Output("trend-utc-offset", "data"), Input("trend-graph", "id"))

# Keep the address in step with the pens without reloading the page.
clientside_callback(
    """function(pens, window_min) {
        const params = new URLSearchParams();
        if (pens && pens.length) { params.set('tags', pens.join(',')); }
        params.set('window', String(window_min));
        window.history.replaceState(null, '', '/trend?' + params.toString());
    }""",
    Input("trend-pens", "value"), Input("trend-window", "value"),
)


@callback(Output("trend-pens", "options"), Input("trend-pens", "search_value"), State("trend-pens", "value"),
          prevent_initial_call=True)
def search_pens(search, pens):
    """Options as the operator types: any known tag, configured or discovered since the page opened."""
    if search is None:
        raise PreventUpdate
    return pen_options(current_runtime().tags.tags(), search, pens)


def is_live(runtime, name: str) -> bool:
    return runtime.board.entries.get(name, {}).get("f") in (Freshness.LIVE, Freshness.UNCERTAIN)


@callback(
    Output("trend-graph", "figure"),
    Output("trend-message", "children"),
    Input("trend-pens", "value"),
    Input("trend-window", "value"),
    Input("trend-utc-offset", "data"),
)
async def draw_trend(pens, window_min, utc_offset_min):
    if utc_offset_min is None:
        raise PreventUpdate  # the browser's time zone arrives first (see above)
    runtime = await current_runtime().ensure_started()
    index = {t.name: t for t in runtime.tags.tags()}
    names = parse_pens(pens, index)[:MAX_PENS]
    window_min = window_min if window_min in WINDOWS_MIN else 15
    now_ms = int(time.time() * 1000)
    message = ""
    try:
        histories = await asyncio.gather(*(read_history(runtime.redis, index[n], now_ms - window_min * 60_000)
                                           for n in names))
    except (RedisError, OSError) as exc:
        histories, message = [[] for _ in names], f"History unavailable (Redis): {exc}"
    histories = [hold_to_now(points, now_ms) if is_live(runtime, name) else points
                 for name, points in zip(names, histories)]
    figure = trend_figure(list(zip((index[n] for n in names), histories)), window_min, now_ms,
                          int(utc_offset_min or 0))
    return figure, message
