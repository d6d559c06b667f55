"""SetpointEntry: enter -> "Write…" -> confirm "old -> new" (+ reason) -> PENDING -> DONE (confirmed),
FAILED (refused by the device) or TIMED OUT (write failed).

All-in-One component with MATCH callbacks. The callbacks only pass the click on: web.writes
decides on the server (role, the tag's write role, areas, limits, step, reason), holds the
prepared write there and gives the page only a nonce; Confirm sends the nonce back, and the
server checks everything again before it sends, waits and audits. A critical tag's write then
waits for a second person's name and password (web.write_approval) before it is sent.
Numeric tags get an entry field; bool tags get ON / OFF buttons with the same confirmation.
"""
from __future__ import annotations

import uuid

from dash import MATCH, Input, Output, State, callback, ctx, dcc, html
from redis.exceptions import RedisError

from components.limit_bar import proposal_bar
from domain.config_model import DataType, Tag
from domain.write_rules import MAX_REASON_LENGTH
from web.auth import current_identity
from web.pending_writes import Stage, take_write
from web.runtime import current_runtime
from web.write_approval import approve_write
from web.writes import WriteResult, confirm_pending, confirmation_step

PENDING_TEXT = "PENDING: sent, waiting for the device's answer…"


def _id(subcomponent: str):
    return staticmethod(lambda aio_id: {"component": "SetpointEntry", "subcomponent": subcomponent, "aio_id": aio_id})


class SetpointEntry(html.Div):
    class ids:
        tag = _id("tag")
        entry = _id("entry")
        write = _id("write")
        turn_on = _id("turn_on")
        turn_off = _id("turn_off")
        pending = _id("pending")          # the held write's nonce (nothing else of it is in the page)
        confirm_panel = _id("confirm_panel")
        question = _id("question")
        preview = _id("preview")          # the range bar with the old value and the proposed one
        reason = _id("reason")
        confirm = _id("confirm")
        cancel = _id("cancel")
        approval = _id("approval")        # the nonce of a critical write waiting for its approver
        approval_panel = _id("approval_panel")
        approval_question = _id("approval_question")
        approver = _id("approver")
        approver_password = _id("approver_password")
        approve = _id("approve")
        cancel_approval = _id("cancel_approval")
        busy = _id("busy")
        approval_busy = _id("approval_busy")
        status = _id("status")

    def __init__(self, tag: Tag, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        ids = self.ids
        is_bool = tag.data_type is DataType.BOOL
        band = tag.limits or tag.range
        hint = f"{band.low:g} .. {band.high:g} {tag.unit}".strip() if band else ""
        notes = []
        if tag.reason_required:
            notes.append("Each write of this tag needs a reason.")
        if tag.critical:
            notes.append("Critical: a second person (operator or higher) approves each write with their password.")
        super().__init__(
            [
                dcc.Store(id=ids.tag(aio_id), data=tag.name),
                dcc.Store(id=ids.pending(aio_id), data=None),
                dcc.Store(id=ids.approval(aio_id), data=None),
                html.Div(
                    [
                        dcc.Input(id=ids.entry(aio_id), type="text", inputMode="decimal", debounce=False,
                                  placeholder=hint or "new value", className="sl-input", autoComplete="off",
                                  style={"display": "none"} if is_bool else None),
                        html.Button("Write…", id=ids.write(aio_id), className="sl-button", hidden=is_bool),
                        html.Button("ON (Start)", id=ids.turn_on(aio_id), className="sl-button", hidden=not is_bool),
                        html.Button("OFF (Stop)", id=ids.turn_off(aio_id), className="sl-button",
                                    hidden=not is_bool),
                    ],
                    className="sl-setpoint-row",
                ),
                html.Div([html.P(n, className="sl-muted sl-write-note") for n in notes]),
                html.Div(
                    [
                        html.Div("Confirm write", className="sl-confirm-title"),
                        html.Div(id=ids.question(aio_id), className="sl-confirm-question"),
                        html.Div(id=ids.preview(aio_id), className="sl-confirm-preview"),
                        dcc.Input(id=ids.reason(aio_id), type="text", maxLength=MAX_REASON_LENGTH, autoComplete="off",
                                  placeholder="Reason (required)" if tag.reason_required else "Reason (optional)",
                                  className="sl-input sl-input-wide sl-write-reason"),
                        html.Button("Confirm", id=ids.confirm(aio_id), className="sl-button sl-button-primary"),
                        html.Button("Cancel", id=ids.cancel(aio_id), className="sl-button"),
                    ],
                    id=ids.confirm_panel(aio_id), className="sl-confirm", hidden=True, role="dialog",
                ),
                html.Div(
                    [
                        html.Div("Second person's approval", className="sl-confirm-title"),
                        html.Div(id=ids.approval_question(aio_id), className="sl-approval-question"),
                        dcc.Input(id=ids.approver(aio_id), type="text", autoComplete="off", maxLength=64,
                                  placeholder="Approver's user name", className="sl-input sl-approver"),
                        dcc.Input(id=ids.approver_password(aio_id), type="password", autoComplete="off",
                                  placeholder="Approver's password", className="sl-input sl-approver-password"),
                        html.Button("Approve and write", id=ids.approve(aio_id),
                                    className="sl-button sl-button-primary"),
                        html.Button("Cancel", id=ids.cancel_approval(aio_id), className="sl-button"),
                    ],
                    id=ids.approval_panel(aio_id), className="sl-approval", hidden=True, role="dialog",
                ),
                html.Div(id=ids.busy(aio_id), className="sl-write-busy"),
                html.Div(id=ids.approval_busy(aio_id), className="sl-write-busy"),
                html.Div(id=ids.status(aio_id), className="sl-write-status", role="status"),
            ],
            className="sl-setpoint",
        )


def status_view(result: WriteResult | None, fallback: str = "") -> html.Span | str:
    if result is None:
        return fallback
    return html.Span(result.text, className=f"sl-write-result sl-write-{result.state.name.lower()}",
                     **{"data-state": result.state.name.lower()})


@callback(
    Output(SetpointEntry.ids.pending(MATCH), "data"),
    Output(SetpointEntry.ids.question(MATCH), "children"),
    Output(SetpointEntry.ids.preview(MATCH), "children"),
    Output(SetpointEntry.ids.confirm_panel(MATCH), "hidden"),
    Output(SetpointEntry.ids.status(MATCH), "children"),
    Output(SetpointEntry.ids.approval_panel(MATCH), "hidden"),
    Output(SetpointEntry.ids.reason(MATCH), "value"),
    Input(SetpointEntry.ids.write(MATCH), "n_clicks"),
    Input(SetpointEntry.ids.turn_on(MATCH), "n_clicks"),
    Input(SetpointEntry.ids.turn_off(MATCH), "n_clicks"),
    State(SetpointEntry.ids.entry(MATCH), "value"),
    State(SetpointEntry.ids.tag(MATCH), "data"),
    prevent_initial_call=True,
)
async def ask_for_confirmation(_write, _on, _off, entry, tag_name):
    pressed = ctx.triggered_id["subcomponent"] if isinstance(ctx.triggered_id, dict) else "write"
    entry = {"turn_on": True, "turn_off": False}.get(pressed, entry)
    runtime = await current_runtime().ensure_started()
    step = await confirmation_step(runtime, current_identity(), tag_name, entry)
    tag = runtime.tags.tag(tag_name) if isinstance(tag_name, str) else None
    preview = proposal_bar(tag, step.old, step.new) if step.nonce and tag is not None else None
    return step.nonce, step.question, preview, step.nonce is None, status_view(step.status), True, ""


@callback(
    Output(SetpointEntry.ids.status(MATCH), "children", allow_duplicate=True),
    Output(SetpointEntry.ids.pending(MATCH), "data", allow_duplicate=True),
    Output(SetpointEntry.ids.confirm_panel(MATCH), "hidden", allow_duplicate=True),
    Output(SetpointEntry.ids.approval(MATCH), "data"),
    Output(SetpointEntry.ids.approval_panel(MATCH), "hidden", allow_duplicate=True),
    Output(SetpointEntry.ids.approval_question(MATCH), "children"),
    Input(SetpointEntry.ids.confirm(MATCH), "n_clicks"),
    State(SetpointEntry.ids.pending(MATCH), "data"),
    State(SetpointEntry.ids.reason(MATCH), "value"),
    running=[
        (Output(SetpointEntry.ids.busy(MATCH), "children"), PENDING_TEXT, ""),
        (Output(SetpointEntry.ids.confirm(MATCH), "disabled"), True, False),
    ],
    prevent_initial_call=True,
)
async def confirm_write(_confirm, nonce, reason):
    runtime = await current_runtime().ensure_started()
    outcome = await confirm_pending(runtime, current_identity(), nonce, reason)
    waiting = outcome.approval_nonce is not None
    return (status_view(outcome.result), None, True, outcome.approval_nonce, not waiting,
            outcome.result.message if waiting else "")


@callback(
    Output(SetpointEntry.ids.status(MATCH), "children", allow_duplicate=True),
    Output(SetpointEntry.ids.approval(MATCH), "data", allow_duplicate=True),
    Output(SetpointEntry.ids.approval_panel(MATCH), "hidden", allow_duplicate=True),
    Output(SetpointEntry.ids.approver_password(MATCH), "value"),
    Input(SetpointEntry.ids.approve(MATCH), "n_clicks"),
    State(SetpointEntry.ids.approval(MATCH), "data"),
    State(SetpointEntry.ids.approver(MATCH), "value"),
    State(SetpointEntry.ids.approver_password(MATCH), "value"),
    running=[
        (Output(SetpointEntry.ids.approval_busy(MATCH), "children"), PENDING_TEXT, ""),
        (Output(SetpointEntry.ids.approve(MATCH), "disabled"), True, False),
    ],
    prevent_initial_call=True,
)
async def approve_and_write(_approve, nonce, approver, password):
    runtime = await current_runtime().ensure_started()
    result = await approve_write(runtime, current_identity(), nonce, approver, password)
    if result.still_held:  # a refused approver: the panel stays for the right person
        return status_view(result), nonce, False, ""
    return status_view(result), None, True, ""


@callback(
    Output(SetpointEntry.ids.pending(MATCH), "data", allow_duplicate=True),
    Output(SetpointEntry.ids.confirm_panel(MATCH), "hidden", allow_duplicate=True),
    Output(SetpointEntry.ids.approval(MATCH), "data", allow_duplicate=True),
    Output(SetpointEntry.ids.approval_panel(MATCH), "hidden", allow_duplicate=True),
    Output(SetpointEntry.ids.status(MATCH), "children", allow_duplicate=True),
    Input(SetpointEntry.ids.cancel(MATCH), "n_clicks"),
    Input(SetpointEntry.ids.cancel_approval(MATCH), "n_clicks"),
    State(SetpointEntry.ids.pending(MATCH), "data"),
    State(SetpointEntry.ids.approval(MATCH), "data"),
    prevent_initial_call=True,
)
async def cancel_write(_cancel, _cancel_approval, nonce, approval_nonce):
    """Drop the held write on the server too (it would expire anyway)."""
    runtime = await current_runtime().ensure_started()
    session = current_identity().session if current_identity() else None
    try:
        await take_write(runtime.redis, nonce, session, Stage.CONFIRM)
        await take_write(runtime.redis, approval_nonce, session, Stage.APPROVAL)
    except (RedisError, OSError):
        pass  # it expires on its own
    return None, True, None, True, "Cancelled: nothing was sent."
