"""Level 3 faceplate of one tag: value, quality, age, range and limits, the setpoint entry, and
the tag's alarms, live, with the actions of the alarm page (web/faceplate_alarms.py)."""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote, urlencode

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from components.limit_bar import limit_bar
from components.live_fields import live_attrs, live_span
from components.priority_indicator import priority_indicator
from components.setpoint_entry import SetpointEntry
from domain.alarms.settings import KIND_LABELS
from domain.config_model import DataType, Tag
from web.alarm_actions import default_shelve_choice, may_act, shelve_duration_options
from web.auth import current_identity, current_session
from web.discovered_view import group_title
from web.faceplate_alarms import (
    FaceplateAlarmRow, act_on_tag_alarm, configured_rules, longest_shelve_s, rows_key, shelve_limit_text,
    tag_alarm_rows,
)
from web.live_push import LIVE_STORE_ID
from web.tag_display import alarm_setting_text
from web.runtime import WebRuntime, current_runtime
from web.shell import engine_notice
from web.writes import why_not_write

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
    why_not = why_not_write(tag, current_session())
    if why_not:
        return html.Section([title, html.P(why_not, className="sl-muted sl-write-why-not")], className="sl-panel")
    return html.Section([title, SetpointEntry(tag, aio_id="faceplate")], className="sl-panel")


# ---- the tag's alarms -------------------------------------------------------------------------

ACTION_BUTTON = "sl-fp-alarm-action"  # pattern-matching id type: {"type", "action", "alarm_id"}
ALARM_COLUMNS = ("Pri", "Alarm", "State", "Since", "Condition now", "Details", "Actions")


def _role():
    session = current_session()
    return session.role if session else None


def alarm_time(ms: int | None) -> html.Time | str:
    """UTC as served; assets/live_render.js shows it in the browser's time zone (data-sl-time-ms)."""
    if not ms:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return html.Time(moment.strftime("%Y-%m-%d %H:%M:%S UTC"), dateTime=moment.isoformat(timespec="seconds"),
                     **{"data-sl-time-ms": str(ms)})


def _details(row: FaceplateAlarmRow) -> list[html.Div]:
    lines: list = []
    if row.input_bad:
        lines.append(html.Span("input BAD", className="sl-fp-alarm-bad",
                               title="the input is Bad: the alarm holds its state until it can be judged again"))
    if row.acknowledged_by:
        lines.append(["Acknowledged by ", html.B(row.acknowledged_by), " at ", alarm_time(row.acknowledged_ms),
                      f": {row.ack_comment}" if row.ack_comment else ""])
    if row.shelved_by:
        until = alarm_time(row.shelved_until_ms)
        end = (["until it clears"] + ([" (at most ", until, ")"] if row.shelved_until_ms else [])
               if row.shelve_one_shot else ["until ", until])
        lines.append(["Shelved by ", html.B(row.shelved_by), " ", *end,
                      f": {row.shelve_comment}" if row.shelve_comment else ""])
    if row.out_of_service_by:
        lines.append(["Out of service by ", html.B(row.out_of_service_by),
                      f": {row.out_of_service_comment}" if row.out_of_service_comment else ""])
    if row.unacknowledged and row.ack_comment_required:
        lines.append("Acknowledging needs a comment.")
    if row.max_shelve_s:
        lines.append(shelve_limit_text(row))
    if row.origin != "Stacklight":
        lines.append(f"Decided by the {row.origin}: only acknowledge is passed on.")
    return [html.Div(line, className="sl-fp-alarm-detail") for line in lines]


def alarm_row_view(row: FaceplateAlarmRow) -> html.Tr:
    buttons = [html.Button(b.label, id={"type": ACTION_BUTTON, "action": b.action, "alarm_id": row.alarm_id},
                           disabled=not b.enabled, title=b.why_not, className="sl-button sl-row-button",
                           **{"data-action": b.action})
               for b in row.buttons]
    return html.Tr([
        html.Td(priority_indicator(row.priority, row.unacknowledged), className="sl-fp-alarm-prio"),
        html.Td([html.Div(row.message), html.Div(row.kind_label, className="sl-muted sl-fp-alarm-kind")]),
        html.Td(row.state_text, className="sl-fp-alarm-state"),
        html.Td(alarm_time(row.since_ms), className="sl-fp-alarm-since"),
        html.Td("ACTIVE" if row.condition_active else "CLEAR", className="sl-fp-alarm-condition",
                **{"data-active": "true" if row.condition_active else "false"}),
        html.Td(_details(row), className="sl-fp-alarm-details"),
        html.Td(buttons, className="sl-fp-alarm-actions"),
    ], className="sl-fp-alarm-row", **{"data-alarm-id": row.alarm_id, "data-state": row.state,
                                       "data-unacked": "true" if row.unacknowledged else "false"})


def alarm_rows_view(rows: list[FaceplateAlarmRow] | None, configured: bool):
    """configured: the plant file gives the tag alarms (the engine makes their records when it starts)."""
    if rows is None:
        return html.P("Loading the alarms…", className="sl-muted")
    if not rows and configured:
        return html.P("No alarm records for this tag yet: the alarm engine makes them when it starts.",
                      className="sl-muted")
    if not rows:
        return html.P("This tag has no alarms.", className="sl-muted")
    return html.Table([html.Thead(html.Tr([html.Th(c) for c in ALARM_COLUMNS])),
                       html.Tbody([alarm_row_view(r) for r in rows])], className="sl-fp-alarm-table")


def current_alarm_rows(runtime: WebRuntime, tag: Tag) -> list[FaceplateAlarmRow] | None:
    """The tag's rows from this worker's alarm cache; None until the cache has read the records."""
    try:
        cache = runtime.alarm_cache
    except RuntimeError:  # the runtime starts on the first request or push; the callback fills in
        return None
    if not cache.loaded:
        return None
    return tag_alarm_rows(cache.records, tag, runtime.config.alarm_system, _role())


def has_configured_alarms(tag: Tag, runtime: WebRuntime) -> bool:
    return bool(configured_rules(tag, runtime.config.alarm_system))


def alarm_controls(tag: Tag, runtime: WebRuntime) -> html.Div:
    role = _role()
    longest_s = longest_shelve_s(tag, runtime.config.alarm_system)
    operator_hint = "" if may_act(role, "acknowledge") else \
        "Acknowledging, resetting and shelving need the operator role."
    engineer_hint = "" if may_act(role, "remove_from_service") else \
        "Taking an alarm out of service or returning it needs the engineer role."
    return html.Div([
        html.Div([
            dcc.Input(id="fp-alarm-comment", type="text", maxLength=500, autoComplete="off",
                      placeholder="Comment (required to shelve or take out of service)",
                      disabled=not (may_act(role, "acknowledge") or may_act(role, "remove_from_service")),
                      className="sl-input sl-input-wide sl-alarm-comment"),
            html.Label("Shelve for", htmlFor="fp-alarm-shelve-duration", className="sl-muted"),
            dcc.Dropdown(id="fp-alarm-shelve-duration", options=shelve_duration_options(longest_s),
                         value=default_shelve_choice(longest_s), clearable=False, searchable=False,
                         disabled=not may_act(role, "shelve"), className="sl-shelve-duration"),
        ], className="sl-ack-controls"),
        html.Div([html.Span(operator_hint, className="sl-muted sl-role-hint"),
                  html.Span(engineer_hint, className="sl-muted sl-role-hint")], className="sl-role-hints"),
    ], id="fp-alarm-controls", className="sl-fp-alarm-controls")


def alarms_section(tag: Tag, runtime: WebRuntime) -> html.Section:
    rows = current_alarm_rows(runtime, tag)
    controls = alarm_controls(tag, runtime)
    controls.hidden = not rows
    return html.Section([
        html.H2("Alarms", className="sl-section-title"),
        engine_notice("faceplate"),
        dcc.Store(id="fp-alarm-tag", data=tag.name),
        dcc.Store(id="fp-alarm-view-key", data=None),
        dcc.Store(id="fp-alarm-rows-key", data=None if rows is None else rows_key(rows)),
        html.Div(alarm_rows_view(rows, has_configured_alarms(tag, runtime)), id="fp-alarm-rows"),
        controls,
        dcc.Loading(html.Div(id="fp-alarm-result", className="sl-ack-result", role="status"),
                    type="dot", delay_show=300),
    ], id="fp-alarms", className="sl-panel sl-fp-alarms")


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
            alarms_section(tag, runtime),
        ],
        className="sl-page",
    )


# The alarm view moved (any alarm, or the engine's health): a key into a store, so the server
# redraws the section only then, not at every live push.
clientside_callback(ClientsideFunction(namespace="stacklight", function_name="alarmViewKey"),
                    Output("fp-alarm-view-key", "data"), Input(LIVE_STORE_ID, "data"),
                    State("fp-alarm-view-key", "data"))


@callback(
    Output("fp-alarm-rows", "children"),
    Output("fp-alarm-rows-key", "data"),
    Output("fp-alarm-controls", "hidden"),
    Input("fp-alarm-view-key", "data"),
    State("fp-alarm-tag", "data"),
    State("fp-alarm-rows-key", "data"),
    prevent_initial_call=True,
)
async def redraw_alarms(_view_key, tag_name, shown_key):
    runtime = await current_runtime().ensure_started()
    tag = runtime.tags.tag(tag_name) if isinstance(tag_name, str) else None
    rows = current_alarm_rows(runtime, tag) if tag is not None else None
    if rows is None or rows_key(rows) == shown_key:
        raise PreventUpdate  # nothing of this tag changed: leave the buttons (and any focus) alone
    return alarm_rows_view(rows, has_configured_alarms(tag, runtime)), rows_key(rows), not rows


@callback(
    Output("fp-alarm-result", "children"),
    Output("fp-alarm-comment", "value"),
    Input({"type": ACTION_BUTTON, "action": ALL, "alarm_id": ALL}, "n_clicks"),
    State("fp-alarm-comment", "value"),
    State("fp-alarm-shelve-duration", "value"),
    prevent_initial_call=True,
)
async def act_on_alarm(_clicks, comment, shelve_duration):
    pressed = ctx.triggered_id
    if not isinstance(pressed, dict) or not ctx.triggered or not ctx.triggered[0].get("value"):
        raise PreventUpdate  # the rows were redrawn; nothing was pressed
    runtime = await current_runtime().ensure_started()
    outcome = await act_on_tag_alarm(runtime, current_identity(), pressed.get("action"), pressed.get("alarm_id"),
                                     comment, shelve_duration)
    # After an accepted action the comment is used up; after a refusal it stays for another try.
    return outcome.text, None if outcome.accepted else dash.no_update
