"""Unknown addresses get a plain page back to the overview."""
from __future__ import annotations

import dash
from dash import dcc, html

dash.register_page(__name__, path="/404", title="Not found")


def layout(**_query):
    return html.Div([
        html.H1("Page not found", className="sl-page-title"),
        dcc.Link("Back to the overview", href="/"),
    ], className="sl-page")
