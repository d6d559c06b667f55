"""Level 1 overview: every tag grouped by area, live, each row one click from its faceplate."""
from __future__ import annotations

import dash
from dash import html

from components.tag_table import TagTable
from web.runtime import current_runtime

dash.register_page(__name__, path="/", name="Overview", title="Overview", order=0)


def tags_by_area(tags):
    """Areas in the order they first appear in the plant file, tags in file order."""
    areas: dict[str, list] = {}
    for tag in tags:
        areas.setdefault(tag.area, []).append(tag)
    return areas


def layout(**_query):
    config = current_runtime().config
    sections = [TagTable(tags, title=area) for area, tags in tags_by_area(config.tags).items()]
    return html.Div([html.H1("Plant overview", className="sl-page-title"), *sections], className="sl-page")
