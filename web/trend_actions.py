"""The trend page's controls as changes of TrendState: what a click, a choice or a zoom does.

apply_action is what the page's one state callback calls (layouts/trend.py), so it is testable
without a browser. It answers the new state, a message for the custom-range form ("" when all is
well) and, when Custom is chosen, the span to show in its inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web.trend_figure import axis_ms
from web.trend_ranges import CUSTOM, check_custom_range, local_input_text, parse_local_input
from web.trend_state import MAX_PENS, TrendState


@dataclass(frozen=True)
class ActionResult:
    state: TrendState
    message: str = ""
    custom_inputs: tuple[str, str] | None = None  # (start, end) for the custom range's inputs


def zoom_span(zoom: dict[str, Any] | None, utc_offset_min: int) -> tuple[int, int] | None:
    """The x range of a zoom or pan as epoch ms, from the values Plotly reported."""
    if not zoom:
        return None
    start_ms, end_ms = axis_ms(zoom.get("start"), utc_offset_min), axis_ms(zoom.get("end"), utc_offset_min)
    if start_ms is None or end_ms is None or end_ms <= start_ms:
        return None
    return start_ms, end_ms


def apply_action(state: TrendState, trigger: str | None, values: dict[str, Any], utc_offset_min: int,
                 now_ms: int) -> ActionResult:
    """trigger: the control's id; values: the controls' current values by short name
    (pens, range, axes, zoom, custom_start, custom_end)."""
    if trigger == "trend-pens":
        pens = list(values.get("pens") or [])
        message = f"At most {MAX_PENS} pens: {', '.join(pens[MAX_PENS:])} left out." if len(pens) > MAX_PENS else ""
        return ActionResult(state.with_tags(pens), message)
    if trigger == "trend-axes":
        return ActionResult(state.with_axes(values.get("axes") or "unit"))
    if trigger == "trend-range":
        new = state.with_range(values.get("range") or "", now_ms)
        if new.is_custom and new.start_ms is not None and new.end_ms is not None:
            return ActionResult(new, "", (local_input_text(new.start_ms, utc_offset_min),
                                          local_input_text(new.end_ms, utc_offset_min)))
        return ActionResult(new)
    if trigger == "trend-custom-apply":
        start_ms = parse_local_input(values.get("custom_start"), utc_offset_min)
        end_ms = parse_local_input(values.get("custom_end"), utc_offset_min)
        problem = check_custom_range(start_ms, end_ms, now_ms)
        if problem:
            return ActionResult(state, problem)
        return ActionResult(state.with_custom(start_ms, end_ms))
    if trigger == "trend-pause":
        if state.follows_now:
            return ActionResult(state.paused_at(now_ms))
        return ActionResult(state.resumed())
    if trigger == "trend-reset-zoom":
        return ActionResult(state.zoom_reset())
    if trigger == "trend-zoom":
        span = zoom_span(values.get("zoom"), utc_offset_min)
        if span is None:
            return ActionResult(state)
        return ActionResult(state.zoomed(span[0], span[1], now_ms))
    return ActionResult(state)


def pause_button(state: TrendState) -> tuple[str, bool, str]:
    """The pause button's (text, disabled, title)."""
    if state.range_key == CUSTOM:
        return "Pause", True, "A custom range is fixed; choose a preset range for a live trend"
    if state.follows_now:
        return "Pause", False, "Freeze the trend here; Resume jumps back to now"
    return "Resume", False, "Back to now, following live"
