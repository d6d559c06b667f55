"""The faceplate's range graphic: engineering range, operator limits band, alarm limits, value marker,
and where a deviation alarm follows a setpoint tag, that setpoint's live marker.

Plain HTML/CSS; the markers and fill are moved by assets/live_render.js. proposal_bar() draws
the same range for the write confirmation: the value now and the proposed new one (a ghost marker).
"""
from __future__ import annotations

from dash import html

from components.live_fields import live_attrs
from domain.config_model import Tag
from domain.tag_value import ScalarValue
from web.tag_display import alarm_limit_marks, format_with_unit, range_percent


def _number(value: ScalarValue) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _band(tag: Tag) -> list[html.Div]:
    if tag.limits is None:
        return []
    low, high = range_percent(tag, tag.limits.low), range_percent(tag, tag.limits.high)
    return [html.Div(className="sl-limitbar-oplimits", style={"left": f"{low:.2f}%", "width": f"{high - low:.2f}%"},
                     title=f"operator limits {tag.limits.low:g} .. {tag.limits.high:g} {tag.unit}")]


def _scale(tag: Tag) -> html.Div:
    assert tag.range is not None
    return html.Div([html.Span(f"{tag.range.low:g}"), html.Span(tag.unit, className="sl-unit"),
                     html.Span(f"{tag.range.high:g}")], className="sl-limitbar-scale")


def setpoint_tag_of(tag: Tag) -> str | None:
    """The setpoint a deviation alarm of this tag compares against, if any."""
    deviation = tag.alarms.deviation if tag.alarms is not None else None
    return deviation.setpoint_tag if deviation is not None else None


def limit_bar(tag: Tag) -> html.Div:
    if tag.range is None:
        return html.Div("No engineering range configured.", className="sl-muted")
    parts = _band(tag)
    for label, percent in alarm_limit_marks(tag):
        parts.append(html.Div([html.Span(label, className="sl-limitbar-alarm-label")],
                              className="sl-limitbar-alarm", style={"left": f"{percent:.2f}%"}))
    parts.append(html.Div(className="sl-bar-fill sl-limitbar-fill"))
    setpoint = setpoint_tag_of(tag)
    if setpoint is not None:
        parts.append(html.Div(className="sl-limitbar-setpoint", hidden=True, title=f"setpoint {setpoint}",
                              **live_attrs(setpoint, "marker")))
    parts.append(html.Div(className="sl-limitbar-marker", **live_attrs(tag.name, "marker")))
    legend = html.Div([html.Span(className="sl-legend-setpoint"), f"setpoint ({setpoint})"],
                      className="sl-limitbar-legend sl-muted") if setpoint is not None else None
    return html.Div(
        [
            html.Div(parts, className="sl-limitbar-track", **live_attrs(tag.name, "bar"),
                     **{"data-lo": str(tag.range.low), "data-hi": str(tag.range.high)}),
            _scale(tag),
            legend,
        ],
        className="sl-limitbar",
    )


def proposal_bar(tag: Tag, old: ScalarValue, new: ScalarValue) -> html.Div | None:
    """The confirmation's picture: range, operator limits, the value now and the proposed one."""
    new_number = _number(new)
    if tag.range is None or new_number is None:
        return None
    parts = _band(tag)
    old_number = _number(old)
    if old_number is not None:
        parts.append(html.Div(className="sl-limitbar-marker sl-proposal-old",
                              style={"left": f"{range_percent(tag, old_number):.2f}%"},
                              title=f"now {format_with_unit(tag, old)}"))
    parts.append(html.Div(className="sl-limitbar-ghost", style={"left": f"{range_percent(tag, new_number):.2f}%"},
                          title=f"new {format_with_unit(tag, new)}", **{"data-value": f"{new_number:g}"}))
    return html.Div([
        html.Div(parts, className="sl-limitbar-track sl-proposal-track"),
        _scale(tag),
        html.Div([html.Span(className="sl-legend-now"), "now  ", html.Span(className="sl-legend-new"), "new"],
                 className="sl-limitbar-legend sl-muted"),
    ], className="sl-limitbar sl-proposal")
