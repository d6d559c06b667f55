"""Level 3 faceplate of one tag: value, quality, age, range and limits, and the setpoint entry."""
from __future__ import annotations

from urllib.parse import unquote, urlencode

import dash
from dash import dcc, html

from components.limit_bar import limit_bar
from components.live_fields import live_attrs, live_span
from components.setpoint_entry import SetpointEntry
from domain.alarms.settings import KIND_LABELS
from domain.config_model import DataType, Tag
from web.auth import current_session
from web.discovered_view import group_title
from web.tag_display import alarm_setting_text
from web.roles import Action, may
from web.runtime import current_runtime

dash.register_page(__name__, path_template="/tag/<name>", name="Faceplate", title="Faceplate")


def discovered_badge() -> html.Span:
    return html.Span("discovered", className="sl-discovered-badge",
                     title="found by its data source at run time, not listed in the plant file")


def _fact(label: str, content) -> html.Div:
    return html.Div([html.Dt(label), html.Dd(content)], className="sl-fact")


def limits_section(tag: Tag) -> html.Section | None:
    table = limits_table(tag)
    if not table.children:
        return None
    return html.Section([html.H2("Limits", className="sl-section-title"), table], className="sl-panel")


def limits_table(tag: Tag) -> html.Table:
    rows = []
    if tag.range:
        rows.append(("Engineering range", f"{tag.range.low:g} .. {tag.range.high:g} {tag.unit}"))
    if tag.limits:
        rows.append(("Operator limits", f"{tag.limits.low:g} .. {tag.limits.high:g} {tag.unit}"))
    if tag.max_step:
        rows.append(("Largest step per write", f"{tag.max_step:g} {tag.unit}"))
    for kind, alarm in (tag.alarms.items() if tag.alarms else []):
        rows.append((f"Alarm {KIND_LABELS[kind]} (priority {alarm.priority})",
                     alarm_setting_text(kind, alarm, tag.unit)))
    return html.Table([html.Tr([html.Th(k), html.Td(v.strip())]) for k, v in rows], className="sl-limits-table")


def control_section(tag: Tag):
    if not tag.writable:
        return None
    title = html.H2("Command" if tag.data_type is DataType.BOOL else "Setpoint", className="sl-section-title")
    session = current_session()
    if not may(session.role if session else None, Action.WRITE_SETPOINT):
        return html.Section([title, html.P("Changing this value needs the operator role.", className="sl-muted")],
                            className="sl-panel")
    return html.Section([title, SetpointEntry(tag)], className="sl-panel")


def layout(name: str | None = None, **_query):
    runtime = current_runtime()
    tag = runtime.tags.tag(unquote(name or ""))
    if tag is None:
        return html.Div([html.H1("Unknown tag", className="sl-page-title"),
                         html.P(f"There is no tag named '{unquote(name or '')}'."),
                         dcc.Link("Back to the overview", href="/")], className="sl-page")
    source = runtime.config.sources[tag.source]
    discovered = runtime.tags.is_discovered(tag.name)
    return html.Div(
        [
            html.Div([dcc.Link("Overview", href="/"), html.Span(" / "),
                      html.Span(group_title(tag) if discovered else tag.area), html.Span(" / "),
                      html.Span(tag.name)], className="sl-breadcrumb"),
            html.H1([tag.name, discovered_badge() if discovered else None], className="sl-page-title"),
            html.P(tag.description, className="sl-page-subtitle"),
            html.Div(
                [
                    html.Section(
                        [
                            html.Div([live_span(tag.name, "alarm"), live_span(tag.name, "value", "sl-big-value", "…"),
                                      html.Span(tag.unit, className="sl-big-unit")],
                                     className="sl-big", **live_attrs(tag.name, "row")),
                            limit_bar(tag) if tag.data_type.is_numeric else None,
                            html.Dl([
                                _fact("Status", live_span(tag.name, "status")),
                                _fact("Quality", live_span(tag.name, "quality")),
                                _fact("Updated", live_span(tag.name, "age")),
                                _fact("Source time", live_span(tag.name, "time")),
                                _fact("Source", f"{tag.source} ({source.kind})"
                                      + (", discovered at run time" if discovered else "")),
                                _fact("Address", tag.node_id or tag.topic or getattr(tag, "metric", None) or ""),
                            ], className="sl-facts"),
                        ],
                        className="sl-panel sl-faceplate-main",
                    ),
                    html.Div([
                        limits_section(tag),
                        control_section(tag),
                        html.Section(dcc.Link("Trend this tag", href="/trend?" + urlencode({"tags": tag.name})),
                                     className="sl-panel"),
                    ], className="sl-faceplate-side"),
                ],
                className="sl-faceplate",
            ),
        ],
        className="sl-page",
    )
