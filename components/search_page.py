"""The frame of a search page over a log (alarm journal, audit trail): filters, a message line,
the range store and a sortable grid of what was found. Each page keeps its own filters and callbacks."""
from __future__ import annotations

import dash_ag_grid as dag
from dash import dcc, html


def labelled_field(label: str, control) -> html.Label:
    """A filter control with its label above it."""
    return html.Label([html.Span(label, className="sl-muted"), control],
                      style={"display": "flex", "flexDirection": "column", "gap": "2px"})


def search_page(prefix: str, title: str, subtitle: str, filters: list, columns: list[dict],
                no_rows_text: str, grid_theme: str) -> html.Div:
    """Ids: <prefix>-message, <prefix>-range (a store), <prefix>-grid (rows keyed by entry_id)."""
    return html.Div(
        [
            html.H1(title, className="sl-page-title"),
            html.P(subtitle, className="sl-page-subtitle"),
            html.Div(filters, className="sl-ack-controls", style={"flexWrap": "wrap", "alignItems": "end"}),
            html.Div(id=f"{prefix}-message", className="sl-ack-result", role="status"),
            dcc.Store(id=f"{prefix}-range"),
            dcc.Loading(dag.AgGrid(
                id=f"{prefix}-grid",
                columnDefs=columns,
                rowData=[],
                getRowId="params.data.entry_id",
                defaultColDef={"resizable": True, "sortable": True},
                dashGridOptions={"theme": {"function": grid_theme}, "animateRows": False,
                                 "localeText": {"noRowsToShow": no_rows_text}},
                style={"height": "62vh"},
            ), type="dot", delay_show=300),
        ],
        className="sl-page",
    )
