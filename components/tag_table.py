"""TagTable: a list of tags with live value, range bar, status and age; each row opens its faceplate.

All-in-One component. With a thousand tags, a thousand rows of Dash components
would make every live update walk them all, so the table is one Dash component
holding its row model (data-sl-rows, JSON); assets/live_render.js builds the
rows once, with the same data-sl-tag / data-sl-field hooks as every live field,
and fills them from the live store. No server callback is needed.
"""
from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from dash import html

from domain.config_model import Tag
from web.tag_display import alarm_limit_marks

COLUMNS = ("", "Tag", "Description", "Value", "Range", "Status", "Updated")


def faceplate_href(tag_name: str) -> str:
    return "/tag/" + quote(tag_name, safe="")


def tag_row_model(tag: Tag, discovered: bool = False) -> dict[str, Any]:
    """What the browser needs to draw one row (see buildRow in assets/live_tables.js)."""
    model = {
        "tag": tag.name,
        "href": faceplate_href(tag.name),
        "description": tag.description,
        "unit": tag.unit,
        "range": [tag.range.low, tag.range.high] if tag.range else None,
        "marks": [[label, round(percent, 2)] for label, percent in alarm_limit_marks(tag)],
    }
    if discovered:
        model["discovered"] = True
    return model


class TagTable(html.Div):
    class ids:
        table = staticmethod(lambda aio_id: {"component": "TagTable", "subcomponent": "table", "aio_id": aio_id})

    def __init__(self, tags: list[Tag] | tuple[Tag, ...], title=None, aio_id: str | None = None,
                 discovered: bool = False):
        aio_id = aio_id or str(uuid.uuid4())
        model = {"columns": list(COLUMNS), "rows": [tag_row_model(t, discovered) for t in tags]}
        children = [html.H2(title, className="sl-section-title")] if title else []
        children.append(html.Div(id=self.ids.table(aio_id), className="sl-tag-table-host",
                                 **{"data-sl-rows": json.dumps(model, separators=(",", ":"))}))
        super().__init__(children, className="sl-tag-table-block")
