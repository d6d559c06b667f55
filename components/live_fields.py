"""Placeholders that assets/live_render.js fills from the live store.

Every live element carries data-sl-tag (the tag) and data-sl-field (what to
show: value, status, age, bar, marker, time, quality, alarm, row); the script
indexes them whenever a page mounts and updates only what changed. The tag
tables draw the same hooks in the browser (components/tag_table.py).
"""
from __future__ import annotations

from typing import Any

from dash import html


LIVE_FIELDS = ("value", "status", "age", "bar", "marker", "time", "quality", "alarm", "row")


def live_attrs(tag_name: str, field: str) -> dict[str, str]:
    if field not in LIVE_FIELDS:
        raise ValueError(f"unknown live field '{field}'")
    return {"data-sl-tag": tag_name, "data-sl-field": field}


def live_span(tag_name: str, field: str, className: str = "", placeholder: str = "", **props: Any) -> html.Span:
    return html.Span(placeholder, className=f"sl-live sl-live-{field} {className}".strip(),
                     **live_attrs(tag_name, field), **props)
