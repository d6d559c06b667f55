"""SetpointEntry: enter -> "Write…" -> confirm "old -> new" -> PENDING -> DONE / REJECTED / TIMED OUT.

All-in-One component with MATCH callbacks. The callbacks only pass the click on:
web.writes decides (role, limits, step) on the server, sends, waits and audits.
Numeric tags get an entry field; bool tags get ON / OFF buttons with the same confirmation.
"""
from __future__ import annotations

import uuid

from dash import MATCH, Input, Output, State, callback, ctx, dcc, html

from domain.config_model import DataType, Tag
from web.auth import current_identity
from web.runtime import current_runtime
from web.writes import WriteResult, confirmation_step, execute_write


def _id(subcomponent: str):
    return staticmethod(lambda aio_id: {"component": "SetpointEntry", "subcomponent": subcomponent, "aio_id": aio_id})


class SetpointEntry(html.Div):
    class ids:
        tag = _id("tag")
        entry = _id("entry")
        write = _id("write")
        turn_on = _id("turn_on")
        turn_off = _id("turn_off")
        pending = _id("pending")
        confirm_panel = _id("confirm_panel")
        question = _id("question")
        confirm = _id("confirm")
        cancel = _id("cancel")
        busy = _id("busy")
        status = _id("status")

    def __init__(self, tag: Tag, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        ids = self.ids
        is_bool = tag.data_type is DataType.BOOL
        band = tag.limits or tag.range
        hint = f"{band.low:g} .. {band.high:g} {tag.unit}".strip() if band else ""
        super().__init__(
            [
                dcc.Store(id=ids.tag(aio_id), data=tag.name),
                dcc.Store(id=ids.pending(aio_id), data=None),
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
                html.Div(
                    [
                        html.Div("Confirm write", className="sl-confirm-title"),
                        html.Div(id=ids.question(aio_id), className="sl-confirm-question"),
                        html.Button("Confirm", id=ids.confirm(aio_id), className="sl-button sl-button-primary"),
                        html.Button("Cancel", id=ids.cancel(aio_id), className="sl-button"),
                    ],
                    id=ids.confirm_panel(aio_id), className="sl-confirm", hidden=True, role="dialog",
                ),
                html.Div(id=ids.busy(aio_id), className="sl-write-busy"),
                html.Div(id=ids.status(aio_id), className="sl-write-status", role="status"),
            ],
            className="sl-setpoint",
        )


def status_view(result: WriteResult | None, fallback: str = "") -> html.Span | str:
    if result is None:
        return fallback
    return html.Span(result.text, className=f"sl-write-result sl-write-{result.state.name.lower()}")


@callback(
    Output(SetpointEntry.ids.pending(MATCH), "data"),
    Output(SetpointEntry.ids.question(MATCH), "children"),
    Output(SetpointEntry.ids.confirm_panel(MATCH), "hidden"),
    Output(SetpointEntry.ids.status(MATCH), "children"),
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
    return step.pending, step.question, step.pending is None, status_view(step.status)


@callback(
    Output(SetpointEntry.ids.status(MATCH), "children", allow_duplicate=True),
    Output(SetpointEntry.ids.pending(MATCH), "data", allow_duplicate=True),
    Output(SetpointEntry.ids.confirm_panel(MATCH), "hidden", allow_duplicate=True),
    Input(SetpointEntry.ids.confirm(MATCH), "n_clicks"),
    State(SetpointEntry.ids.pending(MATCH), "data"),
    running=[
        (Output(SetpointEntry.ids.busy(MATCH), "children"), "PENDING: sent, waiting for the device's answer…", ""),
        (Output(SetpointEntry.ids.confirm(MATCH), "disabled"), True, False),
    ],
    prevent_initial_call=True,
)
async def confirm_write(_confirm, pending):
    pending = pending if isinstance(pending, dict) else {}
    runtime = await current_runtime().ensure_started()
    result = await execute_write(runtime, current_identity(), pending.get("tag"), pending.get("value"))
    return status_view(result), None, True


@callback(
    Output(SetpointEntry.ids.pending(MATCH), "data", allow_duplicate=True),
    Output(SetpointEntry.ids.confirm_panel(MATCH), "hidden", allow_duplicate=True),
    Output(SetpointEntry.ids.status(MATCH), "children", allow_duplicate=True),
    Input(SetpointEntry.ids.cancel(MATCH), "n_clicks"),
    prevent_initial_call=True,
)
def cancel_write(_cancel):
    return None, True, "Cancelled: nothing was sent."
