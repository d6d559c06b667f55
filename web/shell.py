"""The frame around every page: alarm banner, navigation, user, connection state, live store.

The banner is filled in the browser by assets/live_render.js from the live
store, which the persistent push loop (web/live_push.py) keeps current: the
unacknowledged alarms per priority (states B, D and LU; shelved, suppressed and
out-of-service alarms are not counted) and the newest alarm, one click from the
alarm list. assets/alarm_tone.js sounds the alarm tone and drives its controls here.
Below them, a notice that cannot be missed when the alarm engine is not running or
behind (web/engine_health.py): the alarm counts are then not to be trusted.
"""
from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, clientside_callback, dcc, html

from components.priority_indicator import priority_indicator
from web.alarm_view import PRIORITIES
from web.auth import KIOSK_USER, current_session
from web.live_push import LIVE_STORE_ID
from web.roles import Action, may
from web.runtime import current_runtime

NAVIGATION = (("Overview", "/"), ("Trend", "/trend"), ("Alarms", "/alarms"), ("Journal", "/alarms/journal"),
              ("Alarm KPIs", "/alarms/performance"), ("Sources", "/sources"), ("Audit", "/audit"))


def alarm_counts() -> dcc.Link:
    counts = [
        html.Span([priority_indicator(p), html.Span("0", className="sl-alarm-count-n")],
                  className="sl-alarm-count", **{"data-sl-priority": str(p), "data-count": "0"},
                  title=f"unacknowledged priority {p} alarms")
        for p in PRIORITIES
    ]
    newest = html.Span("No alarms", id="sl-newest-alarm", className="sl-newest-alarm")
    return dcc.Link([html.Span(counts, className="sl-alarm-counts"), newest],
                    href="/alarms", id="sl-alarm-summary", className="sl-alarm-summary")


def tone_controls() -> html.Div:
    """Silence (the alarms sounding now) and Mute (remembered by this browser); see assets/alarm_tone.js."""
    return html.Div(
        [
            html.Button("Silence", id="sl-tone-silence", className="sl-tone-button", disabled=True,
                        title="Silence the alarms sounding now; a new alarm sounds again"),
            html.Button("Mute", id="sl-tone-mute", className="sl-tone-button",
                        title="No alarm tone in this browser until unmuted", **{"aria-pressed": "false"}),
            html.Span("Sound off (click to enable)", id="sl-tone-state", className="sl-tone-state", role="status"),
        ],
        id="sl-tone", className="sl-tone",
    )


def engine_notice(where: str) -> html.Div:
    """Filled and shown by assets/live_render.js unless the alarm engine is running (see web/engine_health.py)."""
    return html.Div("", className=f"sl-engine-notice sl-engine-notice-{where}", role="alert",
                    **{"data-sl-engine-notice": where, "data-state": ""})


def user_box() -> html.Div:
    session = current_session()
    if session is not None and session.user == KIOSK_USER:  # no account: offer a login instead
        return html.Div([html.Span("Kiosk (read-only)", className="sl-user-name", id="sl-user-name"),
                         html.A("Log in", href="/login", className="sl-logout")], className="sl-user")
    name, role = (session.user, session.role.value) if session else ("-", "")
    return html.Div(
        [
            html.Span(name, className="sl-user-name", id="sl-user-name"),
            html.Span(role, className="sl-user-role", id="sl-user-role"),
            dcc.Link("Account", href="/account", className="sl-logout", id="sl-account-link",
                     title="Who you are, your API tokens"),
            html.A("Log out", href="/logout", className="sl-logout"),
        ],
        className="sl-user",
    )


def admin_links() -> list:
    """Users: shown to whoever may manage users (the page and its callbacks check again)."""
    session = current_session()
    return [dcc.Link("Users", href="/users", className="sl-nav-link")] if may(session.role if session else None,
                                                                            Action.MANAGE_USERS) else []


def banner(site_name: str) -> html.Header:
    return html.Header(
        [
            html.Div([dcc.Link(site_name, href="/", className="sl-site-name")], className="sl-brand"),
            html.Nav([dcc.Link(label, href=href, className="sl-nav-link") for label, href in NAVIGATION]
                     + admin_links(), className="sl-nav"),
            alarm_counts(),
            tone_controls(),
            html.Div("CONNECTING…", id="sl-conn", className="sl-conn", role="status"),
            user_box(),
            engine_notice("banner"),
        ],
        className="sl-banner",
    )


def root_layout() -> html.Div:
    """Called per page load (Dash serves a function layout on every request)."""
    config = current_runtime().config
    return html.Div(
        [
            banner(config.site_name),
            html.Div("NO DATA CONNECTION: the values below are not live", id="sl-conn-lost",
                     className="sl-conn-lost", role="alert"),
            html.Main(dash.page_container, className="sl-main"),
            dcc.Store(id=LIVE_STORE_ID),
        ],
        className="sl-app",
    )


# Every live push goes straight to the DOM (see assets/live_render.js); no Dash output.
clientside_callback(ClientsideFunction(namespace="stacklight", function_name="onLiveData"),
                    Input(LIVE_STORE_ID, "data"))
