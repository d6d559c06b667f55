"""Source diagnostics: each data source's address, state, heartbeat and counters, every 2 s,
and the historian's health (is history written to disk?) on the same refresh.

Read from this worker's LiveCache (the sl:source:<name> heartbeats); rows come from
web/source_view.py, which GET /api/sources serves too. The historian panel reads its heartbeat
hash (one HGETALL per refresh) through web/historian_health.py, as GET /api/history/health does.
Any logged-in role may look.
"""
from __future__ import annotations

import time

import dash
from dash import Input, Output, callback, dcc, html

from web.historian_health import (
    HistorianHealth, flush_interval_of, historian_figures, historian_health_text, read_historian_health,
    unreadable_health,
)
from web.runtime import current_runtime
from web.source_view import Heartbeat, SourceRow, source_rows

dash.register_page(__name__, path="/sources", name="Sources", title="Sources", order=3)

REFRESH_INTERVAL_MS = 2000
HEADERS = ("Source", "Kind", "Address", "State", "Heartbeat", "Tags", "Counters")


def layout(**_query):
    return html.Div(
        [
            html.H1("Data sources", className="sl-page-title"),
            html.P("Connection state, heartbeat and diagnostics counters of every data source. "
                   "Marked counters mean values were lost or could not be used.", className="sl-page-subtitle"),
            html.Div(id="sources-message", className="sl-muted", role="status"),
            html.Div(id="sources-table", className="sl-tag-table-block"),
            html.Section([html.H2("Historian", className="sl-section-title"), html.Div(id="sources-historian")],
                         className="sl-panel"),
            dcc.Interval(id="sources-refresh", interval=REFRESH_INTERVAL_MS),
        ],
        className="sl-page",
    )


def counter_chip(counter) -> html.Span:
    text = f"{counter.label} {counter.value}"
    return html.Span(
        ["! " + text if counter.loss else text],
        className="sl-counter sl-counter-loss" if counter.loss else "sl-counter",
        title="values lost or unusable" if counter.loss else None,
        **{"data-counter": counter.name, "data-loss": "1" if counter.loss else "0"},
    )


def state_text(row: SourceRow) -> str:
    if row.heartbeat is Heartbeat.FRESH:
        return row.state
    return "unknown" if row.heartbeat is Heartbeat.MISSING else f"{row.state} (last report)"


def source_row(row: SourceRow) -> html.Tr:
    chips = [counter_chip(c) for c in row.counters]
    return html.Tr(
        [
            html.Td(row.name, className="sl-source-name"),
            html.Td(row.kind),
            html.Td(row.address, className="sl-source-address"),
            html.Td([html.Span(state_text(row), className="sl-source-state"),
                     html.Div(row.detail, className="sl-source-detail")]),
            html.Td(row.heartbeat_text, className="sl-source-heartbeat"),
            html.Td(f"{row.tag_count:,}" + (f" ({row.discovered_tag_count:,} discovered)"
                                            if row.discovered_tag_count else "")),
            html.Td(html.Div(chips or html.Span("none reported", className="sl-muted"), className="sl-source-counters")),
        ],
        className="sl-source-row",
        **{"data-source": row.name, "data-state": row.state, "data-heartbeat": row.heartbeat.value,
           "data-loss": "1" if row.has_loss else "0"},
    )


def sources_table(rows: list[SourceRow]) -> html.Table:
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in HEADERS])), html.Tbody([source_row(r) for r in rows])],
        className="sl-source-table",
    )


def historian_panel(health: HistorianHealth, now_ms: int) -> html.Div:
    """The historian's state in one line, then its figures; wrong ones marked "!" and hatched."""
    figures = historian_figures(health)
    return html.Div(
        [
            html.P(historian_health_text(health, now_ms) if health.is_running
                   else html.Strong(historian_health_text(health, now_ms)), className="sl-historian-text"),
            html.Table(html.Tbody([
                html.Tr([html.Th(f.label),
                         html.Td(html.Span("! " + f.text, className="sl-historian-marked")
                                 if f.marked else f.text)],
                        **{"data-figure": f.name, "data-marked": "1" if f.marked else "0"})
                for f in figures
            ]), className="sl-source-table sl-historian-table"),
        ],
        className="sl-historian",
        **{"data-state": health.state.value},
    )


async def historian_health_now(runtime, now_ms: int) -> HistorianHealth:
    try:
        return await read_historian_health(runtime.redis, now_ms, flush_interval_of(runtime.config))
    except Exception as exc:  # noqa: BLE001 - the page must show the sources even when this read fails
        return unreadable_health(f"heartbeat cannot be read: {exc}")


@callback(
    Output("sources-table", "children"),
    Output("sources-message", "children"),
    Output("sources-historian", "children"),
    Input("sources-refresh", "n_intervals"),
)
async def refresh_sources(_n):
    runtime = await current_runtime().ensure_started()
    cache = runtime.live_cache
    now_ms = int(time.time() * 1000)
    rows = source_rows(runtime.config, cache.source_statuses, now_ms, runtime.tags.discovered())
    message = "" if cache.connected else "No connection to Redis: source states are unknown."
    return sources_table(rows), message, historian_panel(await historian_health_now(runtime, now_ms), now_ms)
