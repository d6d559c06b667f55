"""Alarm performance: rate against the EEMUA 191 / ISA-18.2 benchmarks, floods, chattering and stale
alarms, bad actors and the priority mix over a chosen period; the same report as CSV.

The report comes from web/performance_data.py (journal + current alarms), figures and rows
from web/performance_view.py; docs/alarm-performance.md says what each figure means. Any
logged-in role may look.
"""
from __future__ import annotations

import time

import dash
from dash import Input, Output, callback, clientside_callback, dcc, html
from dash.exceptions import PreventUpdate

from domain.alarms.performance import PerformanceReport
from domain.alarms.performance_verdicts import Level, Verdict, headline_verdicts
from web.performance_data import JOURNAL_ERRORS, JOURNAL_LIMIT, PeriodError, load_report, period_from_choice
from web.performance_view import (
    build_performance_figures, chattering_rows, csv_href, flood_rows, stale_rows,
)
from web.runtime import current_runtime
from web.trend_figure import local_time_text

dash.register_page(__name__, path="/alarms/performance", name="Alarm performance", title="Alarm performance",
                   order=5)

PERIODS = (("Last 24 h", "24h"), ("Last 7 days", "7d"), ("Last 30 days", "30d"), ("Custom", "custom"))
GRAPH_CONFIG = {"displaylogo": False}


def layout(**_query):
    return html.Div(
        [
            html.H1("Alarm performance", className="sl-page-title"),
            html.P("Alarms presented to the operator (entries into unacknowledged active) over a period, against "
                   "the EEMUA 191 / ISA-18.2 benchmarks.", className="sl-page-subtitle"),
            html.Div(
                [
                    dcc.RadioItems(id="perf-period", value="24h", inline=True, className="sl-trend-window",
                                   options=[{"label": label, "value": value} for label, value in PERIODS]),
                    html.Div(dcc.DatePickerRange(id="perf-dates", display_format="YYYY-MM-DD", disabled=True,
                                                 minimum_nights=0, clearable=False), className="sl-perf-dates"),
                    html.A("Download CSV", id="perf-csv", className="sl-button", download="", href=None),
                ],
                className="sl-perf-controls",
            ),
            html.Div(id="perf-message", className="sl-perf-message", role="status"),
            dcc.Store(id="perf-utc-offset"),
            dcc.Loading(html.Div(id="perf-body"), type="dot", delay_show=300),
        ],
        className="sl-page",
    )


clientside_callback("function(_id) { return -new Date().getTimezoneOffset(); }",
                    Output("perf-utc-offset", "data"), Input("perf-period", "id"))


@callback(Output("perf-dates", "disabled"), Input("perf-period", "value"))
def enable_dates(period):
    return period != "custom"


def verdict_tile(verdict: Verdict) -> html.Div:
    return html.Div(
        [html.Div(verdict.title, className="sl-perf-tile-title"),
         html.Div(("! " if verdict.level is not Level.OK else "") + verdict.value_text, className="sl-perf-tile-value"),
         html.Div(verdict.text, className="sl-perf-tile-text")],
        className="sl-perf-tile", **{"data-level": verdict.level.value, "data-figure": verdict.figure},
    )


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]], empty: str, table_id: str) -> html.Div:
    if not rows:
        return html.Div(empty, className="sl-muted", id=table_id)
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in headers])),
                       html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows])],
                      className="sl-source-table", id=table_id)


def panel(title: str, *children) -> html.Section:
    return html.Section([html.H2(title, className="sl-section-title"), *children], className="sl-panel")


def performance_body(report: PerformanceReport, utc_offset_min: int) -> list:
    figures = build_performance_figures(report, utc_offset_min)
    period = (f"{local_time_text(report.start_ms, utc_offset_min)[:16]} to "
              f"{local_time_text(report.end_ms, utc_offset_min)[:16]} · {report.annunciations:,} alarms")
    return [
        html.Div(period, className="sl-muted sl-perf-period"),
        html.Div([verdict_tile(v) for v in headline_verdicts(report)], className="sl-perf-tiles"),
        panel("Alarms per 10 min", dcc.Graph(id="perf-rate", figure=figures.rate, config=GRAPH_CONFIG,
                                             style={"height": "340px"})),
        html.Div(
            [panel("Priority distribution", dcc.Graph(id="perf-priorities", figure=figures.priorities,
                                                      config=GRAPH_CONFIG, style={"height": "300px"})),
             panel("Top 10 bad actors", dcc.Graph(id="perf-bad-actors", figure=figures.bad_actors,
                                                  config=GRAPH_CONFIG, style={"height": "300px"}))],
            className="sl-perf-pair",
        ),
        panel("Flood periods (more than 10 in 10 min, until fewer than 5)",
              table(("Start", "End", "Duration", "Alarms", "Peak in 10 min"), flood_rows(report, utc_offset_min),
                    "No floods.", "perf-floods")),
        panel("Chattering alarms (3 or more in 60 s)",
              table(("Alarm", "Pri", "Alarms in period", "Most in 60 s", "First chatter"),
                    chattering_rows(report, utc_offset_min), "No chattering alarms.", "perf-chattering")),
        panel("Stale alarms (active over 24 h)",
              table(("Alarm", "Pri", "Message", "Active since", "Cleared", "Active for", "From"),
                    stale_rows(report, utc_offset_min), "No stale alarms.", "perf-stale")),
    ]


def problem(text: str) -> html.Div:
    return html.Div(text, className="sl-perf-problem")


def incomplete_warning(report: PerformanceReport) -> html.Div | None:
    if report.journal_complete:
        return None
    return problem(f"The journal holds more than {JOURNAL_LIMIT:,} entries for this period: only the newest were "
                   "read, so the figures undercount. Choose a shorter period.")


@callback(
    Output("perf-body", "children"),
    Output("perf-message", "children"),
    Output("perf-csv", "href"),
    Input("perf-period", "value"),
    Input("perf-dates", "start_date"),
    Input("perf-dates", "end_date"),
    Input("perf-utc-offset", "data"),
)
async def show_report(period, start_date, end_date, utc_offset_min):
    if utc_offset_min is None:
        raise PreventUpdate  # the browser's time zone arrives first
    if period == "custom" and not (start_date and end_date):
        return [], html.Span("Choose the first and the last day of the period.", className="sl-muted"), None
    try:
        start_ms, end_ms = period_from_choice(period, start_date, end_date, int(utc_offset_min),
                                              int(time.time() * 1000))
    except PeriodError as exc:
        return [], problem(str(exc)), None
    runtime = await current_runtime().ensure_started()
    try:
        report = await load_report(runtime, start_ms, end_ms)
    except JOURNAL_ERRORS as exc:
        return [], problem(f"Alarm journal unavailable: {exc}"), None
    return performance_body(report, int(utc_offset_min)), incomplete_warning(report), csv_href(start_ms, end_ms)
