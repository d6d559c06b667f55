"""TagTable: a list of tags with live value, range bar, status and age; each row opens its faceplate.

All-in-One component: the values are filled in the browser by assets/live_render.js,
so the table itself needs no server callback.
"""
from __future__ import annotations

import uuid
from urllib.parse import quote

from dash import dcc, html

from components.live_fields import live_attrs, live_span, value_bar
from domain.config_model import Tag
from web.tag_display import alarm_limit_marks

COLUMNS = ("", "Tag", "Description", "Value", "Range", "Status", "Updated")


def faceplate_href(tag_name: str) -> str:
    return "/tag/" + quote(tag_name, safe="")


class TagTable(html.Div):
    class ids:
        table = staticmethod(lambda aio_id: {"component": "TagTable", "subcomponent": "table", "aio_id": aio_id})

    def __init__(self, tags: list[Tag], title: str | None = None, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        header = html.Thead(html.Tr([html.Th(c, className=f"sl-col-{i}") for i, c in enumerate(COLUMNS)]))
        body = html.Tbody([tag_row(tag) for tag in tags])
        children = [html.H2(title, className="sl-section-title")] if title else []
        children.append(html.Table([header, body], id=self.ids.table(aio_id), className="sl-tag-table"))
        super().__init__(children, className="sl-tag-table-block")


def tag_row(tag: Tag) -> html.Tr:
    return html.Tr(
        [
            html.Td(live_span(tag.name, "alarm"), className="sl-cell-alarm"),
            html.Td(dcc.Link(tag.name, href=faceplate_href(tag.name), className="sl-tag-link"),
                    className="sl-cell-name"),
            html.Td(tag.description, className="sl-cell-description"),
            html.Td([live_span(tag.name, "value", placeholder="…"), html.Span(tag.unit, className="sl-unit")],
                    className="sl-cell-value"),
            html.Td(value_bar(tag, alarm_limit_marks(tag)), className="sl-cell-bar"),
            html.Td(live_span(tag.name, "status"), className="sl-cell-status"),
            html.Td(live_span(tag.name, "age"), className="sl-cell-age"),
        ],
        className="sl-tag-row",
        **live_attrs(tag.name, "row"),
    )
