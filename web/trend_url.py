"""A trend in its address, so it can be bookmarked and shared:

    /trend?tags=T101.level,R201.temperature&range=24h
    /trend?tags=T101.level&range=custom&start=2026-01-31T08:00:00Z&end=2026-01-31T12:00:00Z
    /trend?tags=T101.level&range=1h&paused=1&end=2026-01-31T12:00:00Z      (a paused preset)
    /trend?tags=T101.level&range=1h&paused=1&end=...&zoom=<ISO>/<ISO>      (zoomed in)
    &axes=normalised                                                          (default: one axis per unit)

Times are ISO 8601 UTC (epoch ms are read too). The old form ?window=5|15|60 (minutes) is read as
range=5m|15m|1h. Whatever cannot be read is left out, and a note says what and why.
"""
from __future__ import annotations

from collections.abc import Container, Mapping
from urllib.parse import urlencode

from web.api import iso_utc
from web.performance_data import PeriodError, parse_instant_ms
from web.trend_ranges import CUSTOM, DEFAULT_RANGE, LEGACY_WINDOWS, RANGES_MS, check_custom_range
from web.trend_state import AXES_MODES, MAX_PENS, TrendState


def _instant(params: Mapping[str, str], name: str, notes: list[str]) -> int | None:
    text = params.get(name)
    if not text:
        return None
    try:
        return parse_instant_ms(text, name)
    except PeriodError as exc:
        notes.append(f"Ignored {exc}")
        return None


def _zoom(text: str | None, notes: list[str]) -> tuple[int, int] | None:
    if not text:
        return None
    parts = text.split("/")
    try:
        if len(parts) != 2:
            raise PeriodError("")
        start_ms, end_ms = parse_instant_ms(parts[0], "zoom"), parse_instant_ms(parts[1], "zoom")
    except PeriodError:
        notes.append(f"Ignored zoom='{text}': not two times as <start>/<end>.")
        return None
    if end_ms <= start_ms:
        notes.append(f"Ignored zoom='{text}': it ends before it starts.")
        return None
    return start_ms, end_ms


def parse_trend_query(params: Mapping[str, str | None], known_tags: Container[str],
                      now_ms: int) -> tuple[TrendState, list[str]]:
    """The trend an address asks for, and notes on what it asked for that cannot be shown."""
    params = {k: v for k, v in params.items() if isinstance(v, str)}
    notes: list[str] = []
    names = [n.strip() for n in (params.get("tags") or "").split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in known_tags]
    if unknown:
        notes.append("No tag that can be trended named " + ", ".join(f"'{n}'" for n in unknown) + ": left out.")
    tags = [n for n in names if n in known_tags]
    if len(tags) > MAX_PENS:
        notes.append(f"At most {MAX_PENS} pens: {', '.join(tags[MAX_PENS:])} left out.")
        tags = tags[:MAX_PENS]

    range_key = params.get("range")
    if range_key is None and params.get("window") is not None:
        range_key = LEGACY_WINDOWS.get(params["window"])
        if range_key is None:
            notes.append(f"Ignored window='{params['window']}': use range= one of {', '.join(RANGES_MS)}.")
    start_ms, end_ms = _instant(params, "start", notes), _instant(params, "end", notes)
    if range_key is None and start_ms is not None and end_ms is not None:
        range_key = CUSTOM
    if range_key is not None and range_key != CUSTOM and range_key not in RANGES_MS:
        notes.append(f"Ignored range='{range_key}': one of {', '.join(RANGES_MS)} or custom; "
                     f"showing {DEFAULT_RANGE}.")
        range_key = None
    range_key = range_key or DEFAULT_RANGE

    axes = params.get("axes") or "unit"
    if axes not in AXES_MODES:
        notes.append(f"Ignored axes='{axes}': unit or normalised.")
        axes = "unit"

    state = TrendState(tags=tuple(tags), range_key=range_key, axes=axes)
    if range_key == CUSTOM:
        problem = check_custom_range(start_ms, end_ms, now_ms)
        if problem:
            notes.append(f"Ignored the custom range: {problem} Showing {DEFAULT_RANGE}.")
            state = TrendState(tags=tuple(tags), axes=axes)
        else:
            state = state.with_custom(start_ms, end_ms)
    elif params.get("paused") not in (None, "", "0"):
        state = state.paused_at(min(end_ms, now_ms) if end_ms is not None else now_ms)
    zoom = _zoom(params.get("zoom"), notes)
    if zoom is not None:
        state = state.zoomed(zoom[0], zoom[1], now_ms)
    return state, notes


def format_trend_query(state: TrendState) -> str:
    """The address's query string for a state (parse_trend_query reads it back)."""
    params: dict[str, str] = {}
    if state.tags:
        params["tags"] = ",".join(state.tags)
    params["range"] = state.range_key
    if state.axes != "unit":
        params["axes"] = state.axes
    if state.is_custom and state.start_ms is not None and state.end_ms is not None:
        params["start"], params["end"] = iso_utc(state.start_ms), iso_utc(state.end_ms)
    elif state.paused and state.end_ms is not None:
        params["paused"], params["end"] = "1", iso_utc(state.end_ms)
    if state.zoom is not None:
        params["zoom"] = f"{iso_utc(state.zoom[0])}/{iso_utc(state.zoom[1])}"
    return urlencode(params, safe=":,/")
