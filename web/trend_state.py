"""What a trend shows: its pens, range, axes, pause and zoom, and how the operator's actions change it.

A TrendState is kept in the page (a dcc.Store, as a dict) and in the address (web/trend_url.py).
Its view is the time span drawn:
- a live preset: [now - range, now], following the clock;
- a paused preset: [end - range, end], fixed (Resume jumps back to now);
- a custom range: [start, end], fixed;
- a zoom (or pan) replaces either with the span chosen, and pauses a live preset.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from web.trend_ranges import CUSTOM, DEFAULT_RANGE, RANGES_MS, extends_live, refresh_interval_s

MAX_PENS = 8
AXES_MODES = ("unit", "normalised")


@dataclass(frozen=True)
class View:
    start_ms: int
    end_ms: int
    live: bool      # follows the clock
    extend: bool    # live and extended in the browser from the live push
    refresh_s: int | None  # live and queried again this often


@dataclass(frozen=True)
class TrendState:
    tags: tuple[str, ...] = ()
    range_key: str = DEFAULT_RANGE
    axes: str = "unit"
    paused: bool = False
    start_ms: int | None = None  # custom ranges only
    end_ms: int | None = None    # custom ranges, and the fixed end of a paused preset
    zoom: tuple[int, int] | None = None

    @property
    def is_custom(self) -> bool:
        return self.range_key == CUSTOM

    @property
    def follows_now(self) -> bool:
        return not self.is_custom and not self.paused and self.zoom is None

    def base_span(self, now_ms: int) -> tuple[int, int]:
        """The range as chosen, before any zoom."""
        if self.is_custom and self.start_ms is not None and self.end_ms is not None:
            return self.start_ms, self.end_ms
        span_ms = RANGES_MS.get(self.range_key, RANGES_MS[DEFAULT_RANGE])
        end_ms = self.end_ms if self.paused and self.end_ms is not None else now_ms
        return end_ms - span_ms, end_ms

    def view(self, now_ms: int) -> View:
        if self.zoom is not None:
            return View(self.zoom[0], self.zoom[1], False, False, None)
        start_ms, end_ms = self.base_span(now_ms)
        live = self.follows_now
        return View(start_ms, end_ms, live, live and extends_live(self.range_key),
                    refresh_interval_s(self.range_key) if live else None)

    # --- the operator's actions -----------------------------------------------------------------

    def with_tags(self, tags: list[str]) -> TrendState:
        return replace(self, tags=tuple(dict.fromkeys(tags))[:MAX_PENS])

    def with_range(self, range_key: str, now_ms: int) -> TrendState:
        """A preset goes live at once; Custom fixes the span on view now, to be edited and applied."""
        if range_key == CUSTOM:
            view = self.view(now_ms)
            start_ms, end_ms = view.start_ms, view.end_ms
            return replace(self, range_key=CUSTOM, paused=False, start_ms=start_ms, end_ms=end_ms, zoom=None)
        if range_key not in RANGES_MS:
            return self
        return replace(self, range_key=range_key, paused=False, start_ms=None, end_ms=None, zoom=None)

    def with_custom(self, start_ms: int, end_ms: int) -> TrendState:
        return replace(self, range_key=CUSTOM, paused=False, start_ms=start_ms, end_ms=end_ms, zoom=None)

    def with_axes(self, axes: str) -> TrendState:
        return replace(self, axes=axes) if axes in AXES_MODES else self

    def paused_at(self, now_ms: int) -> TrendState:
        if self.is_custom or self.paused:
            return self
        return replace(self, paused=True, end_ms=now_ms)

    def resumed(self) -> TrendState:
        """Back to now: a preset live again, without zoom (a custom range stays as it is)."""
        if self.is_custom:
            return replace(self, zoom=None)
        return replace(self, paused=False, end_ms=None, zoom=None)

    def zoomed(self, start_ms: int, end_ms: int, now_ms: int) -> TrendState:
        """A zoom or pan: that span, re-queried; a live preset pauses where it was."""
        if end_ms <= start_ms:
            return self
        state = self.paused_at(now_ms) if self.follows_now else self
        return replace(state, zoom=(int(start_ms), int(end_ms)))

    def zoom_reset(self) -> TrendState:
        return replace(self, zoom=None)

    # --- as kept in the page --------------------------------------------------------------------

    def to_store(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        data["zoom"] = list(self.zoom) if self.zoom else None
        return data

    @staticmethod
    def from_store(data: dict[str, Any] | None) -> TrendState:
        if not data:
            return TrendState()
        zoom = data.get("zoom")
        return TrendState(
            tags=tuple(data.get("tags") or ()), range_key=data.get("range_key") or DEFAULT_RANGE,
            axes=data.get("axes") if data.get("axes") in AXES_MODES else "unit",
            paused=bool(data.get("paused")), start_ms=data.get("start_ms"), end_ms=data.get("end_ms"),
            zoom=(int(zoom[0]), int(zoom[1])) if zoom and len(zoom) == 2 else None,
        )
