"""The faceplate's range graphic: engineering range, operator limits band, alarm limits, value marker.

Plain HTML/CSS; the marker and fill are moved by assets/live_render.js.
"""
from __future__ import annotations

from dash import html

from components.live_fields import live_attrs
from domain.config_model import Tag
from web.tag_display import alarm_limit_marks, range_percent


def limit_bar(tag: Tag) -> html.Div:
    if tag.range is None:
        return html.Div("No engineering range configured.", className="sl-muted")
    parts = []
    if tag.limits is not None:
        low, high = range_percent(tag, tag.limits.low), range_percent(tag, tag.limits.high)
        parts.append(html.Div(className="sl-limitbar-oplimits", style={"left": f"{low:.2f}%", "width": f"{high - low:.2f}%"},
                              title=f"operator limits {tag.limits.low:g} .. {tag.limits.high:g} {tag.unit}"))
    for label, percent in alarm_limit_marks(tag):
        parts.append(html.Div([html.Span(label, className="sl-limitbar-alarm-label")],
                              className="sl-limitbar-alarm", style={"left": f"{percent:.2f}%"}))
    parts.append(html.Div(className="sl-bar-fill sl-limitbar-fill"))
    parts.append(html.Div(className="sl-limitbar-marker", **live_attrs(tag.name, "marker")))
    return html.Div(
        [
            html.Div(parts, className="sl-limitbar-track", **live_attrs(tag.name, "bar"),
                     **{"data-lo": str(tag.range.low), "data-hi": str(tag.range.high)}),
            html.Div([html.Span(f"{tag.range.low:g}"), html.Span(tag.unit, className="sl-unit"),
                      html.Span(f"{tag.range.high:g}")], className="sl-limitbar-scale"),
        ],
        className="sl-limitbar",
    )
