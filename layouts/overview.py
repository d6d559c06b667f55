"""Level 1 overview: every tag grouped by area, live, each row one click from its faceplate.

Configured tags come first, by area. Tags the data sources discovered at run time
follow in their own block: grouped by area or source, marked as discovered, at most
web/discovered_view.MAX_ROWS rows with a count and a filter box. The block is
redrawn when the tag directory's version (sent with the live push) moves.
"""
from __future__ import annotations

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html
from dash.exceptions import PreventUpdate
from redis.exceptions import RedisError

from components.tag_table import TagTable
from web.discovered_view import DiscoveredView, discovered_view
from web.live_push import LIVE_STORE_ID
from web.runtime import current_runtime

dash.register_page(__name__, path="/", name="Overview", title="Overview", order=0)

TAGS_VERSION_ID = "overview-tags-version"
DISCOVERED_ID = "overview-discovered"
DISCOVERED_FILTER_ID = "overview-discovered-filter"
DISCOVERED_SUMMARY_ID = "overview-discovered-summary"
DISCOVERED_TABLES_ID = "overview-discovered-tables"


def tags_by_area(tags):
    """Areas in the order they first appear in the plant file, tags in file order."""
    areas: dict[str, list] = {}
    for tag in tags:
        areas.setdefault(tag.area, []).append(tag)
    return areas


def discovered_tables(view: DiscoveredView) -> list:
    return [TagTable(group.tags, title=_group_heading(group.title, len(group.tags), group.matching),
                     aio_id=f"discovered:{group.title}", discovered=True)
            for group in view.groups if group.tags]


def _group_heading(title: str, shown: int, matching: int) -> list:
    count = f"{matching:,}" if shown == matching else f"{shown:,} of {matching:,}"
    return [title, html.Span(f" · {count}", className="sl-muted"),
            html.Span("discovered", className="sl-discovered-badge")]


def discovered_block(view: DiscoveredView, version: int) -> html.Section:
    return html.Section(
        [
            html.Div([html.H2("Discovered tags", className="sl-section-title"),
                      html.Span(view.summary, id=DISCOVERED_SUMMARY_ID, className="sl-muted"),
                      dcc.Input(id=DISCOVERED_FILTER_ID, type="search", debounce=0.3, placeholder="Filter tags…",
                                className="sl-discovered-filter")],
                     className="sl-discovered-head"),
            html.Div(discovered_tables(view), id=DISCOVERED_TABLES_ID),
            dcc.Store(id=TAGS_VERSION_ID, data=version),
        ],
        id=DISCOVERED_ID, className="sl-discovered", hidden=view.total == 0,
    )


def layout(**_query):
    runtime = current_runtime()
    sections = [TagTable(tags, title=area) for area, tags in tags_by_area(runtime.config.tags).items()]
    view = discovered_view(runtime.tags.discovered())
    return html.Div([html.H1("Plant overview", className="sl-page-title"), *sections,
                     discovered_block(view, runtime.tags.version)], className="sl-page")


async def catch_up(runtime) -> None:
    try:
        await runtime.tags.reload_if_changed(runtime.redis)
    except (RedisError, OSError):
        pass  # the directory's own loop reports Redis trouble; show what this worker has


# The live push carries the tag directory version; pass it on only when it moved.
clientside_callback(
    """function(data, shown) {
        if (!data || data.tags === undefined || data.tags === shown) { return window.dash_clientside.no_update; }
        return data.tags;
    }""",
    Output(TAGS_VERSION_ID, "data"), Input(LIVE_STORE_ID, "data"), State(TAGS_VERSION_ID, "data"),
)


@callback(
    Output(DISCOVERED_TABLES_ID, "children"),
    Output(DISCOVERED_SUMMARY_ID, "children"),
    Output(DISCOVERED_ID, "hidden"),
    Input(TAGS_VERSION_ID, "data"),
    Input(DISCOVERED_FILTER_ID, "value"),
    prevent_initial_call=True,
)
async def redraw_discovered(version, filter_text):
    if version is None:
        raise PreventUpdate
    runtime = await current_runtime().ensure_started()
    if version > runtime.tags.version:
        # The push came from another worker that polled the catalog first: catch up now.
        await catch_up(runtime)
    view = discovered_view(runtime.tags.discovered(), filter_text)
    return discovered_tables(view), view.summary, view.total == 0
