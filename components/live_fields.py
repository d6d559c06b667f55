"""Placeholders that assets/live_render.js fills from the live store.

Every live element carries data-sl-tag (the tag) and data-sl-field (what to
show: value, status, age, bar, marker, time, quality, alarm, row); the script
indexes them whenever a page mounts and updates only what changed.
"""
from __future__ import annotations

from typing import Any

from dash import html

from domain.config_model import Tag

LIVE_FIELDS = ("value", "status", "age", "bar", "marker", "time", "quality", "alarm", "row")


def live_attrs(tag_name: str, field: str) -> dict[str, str]:
    if field not in LIVE_FIELDS:
        raise ValueError(f"unknown live field '{field}'")
    return {"data-sl-tag": tag_name, "data-sl-field": field}


def live_span(tag_name: str, field: str, className: str = "", placeholder: str = "", **props: Any) -> html.Span:
    return html.Span(placeholder, className=f"sl-live sl-live-{field} {className}".strip(),
                     **live_attrs(tag_name, field), **props)


def value_bar(tag: Tag, limit_marks: list[tuple[str, float]] | None = None) -> html.Div:
    """A small bar of the value against its engineering range, with alarm limit ticks."""
    if tag.range is None:
        return html.Div(className="sl-bar sl-bar-none")
    ticks = [
        html.Span(className="sl-bar-tick", style={"left": f"{percent:.2f}%"}, title=label)
        for label, percent in (limit_marks or [])
    ]
    return html.Div(
        [html.Div(className="sl-bar-fill"), *ticks],
        className="sl-bar",
        title=f"{tag.range.low:g} .. {tag.range.high:g} {tag.unit}".strip(),
        **live_attrs(tag.name, "bar"),
        **{"data-lo": str(tag.range.low), "data-hi": str(tag.range.high)},
    )
