"""Y axes of a trend: one per engineering unit (at most MAX_UNIT_AXES, side by side), or normalised
(every pen 0-100 % of its engineering range, the real value and unit kept for the hover).

Axis ids: "y" is a hidden 0..1 axis under everything (the Bad/Uncertain bands, web/trend_overlays.py);
the pens' axes are y2..y5, overlaying it: the first on the left, the second on the right, then
further out on the left and on the right.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.config_model import DataType, Tag

MAX_UNIT_AXES = 4
AXIS_WIDTH = 0.055  # of the plot's width, for each axis pushed out beside another
GRID = "#cfcfcf"
AXIS_TEXT = "#444"


@dataclass(frozen=True)
class PenAxis:
    axis: int                              # 0..MAX_UNIT_AXES-1: y2..y5
    scale: tuple[float, float] | None      # (low, high) drawn as 0..100 %; None: real values

    @property
    def ref(self) -> str:
        return f"y{self.axis + 2}"

    def to_axis(self, value: float | None) -> float | None:
        if value is None or self.scale is None:
            return value
        low, high = self.scale
        return (value - low) / (high - low) * 100.0


def unit_label(tag: Tag) -> str:
    return tag.unit or ("0/1" if tag.data_type is DataType.BOOL else "no unit")


def normal_scale(tag: Tag, values: Sequence[float | None] = ()) -> tuple[float, float]:
    """The span drawn as 0..100 %: the engineering range, 0..1 for a bool, else the values' own span."""
    if tag.range is not None:
        return float(tag.range.low), float(tag.range.high)
    if tag.data_type is DataType.BOOL:
        return 0.0, 1.0
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high <= low:
        return low - 1.0, high + 1.0
    return low, high


def assign_axes(tags: Sequence[Tag], mode: str,
                values: Sequence[Sequence[float | None]] | None = None) -> tuple[str, list[PenAxis], list[str], list[str]]:
    """(mode used, each pen's axis, the axes' titles, notes). More units than axes: normalised."""
    units = list(dict.fromkeys(unit_label(t) for t in tags))
    notes: list[str] = []
    if mode != "normalised" and len(units) > MAX_UNIT_AXES:
        notes.append(f"{len(units)} units need more than {MAX_UNIT_AXES} axes: every pen is shown "
                     "normalised (0-100 % of its range).")
        mode = "normalised"
    if mode == "normalised":
        values = values or [() for _ in tags]
        pens = [PenAxis(0, normal_scale(t, v)) for t, v in zip(tags, values)]
        no_range = [t.name for t in tags if t.range is None and t.data_type is not DataType.BOOL]
        if no_range:
            notes.append("No engineering range, scaled to the values shown: " + ", ".join(no_range) + ".")
        return "normalised", pens, ["% of range"], notes
    return "unit", [PenAxis(units.index(unit_label(t)), None) for t in tags], units, notes


def axes_layout(titles: list[str]) -> dict[str, Any]:
    """Layout entries for the hidden band axis, the pens' axes and the x axis's domain."""
    count = max(1, len(titles))
    left_out = 1 if count >= 3 else 0
    right_out = 1 if count >= 4 else 0
    domain = [AXIS_WIDTH * left_out, 1 - AXIS_WIDTH * right_out]
    layout: dict[str, Any] = {
        "yaxis": {"visible": False, "range": [0, 1], "fixedrange": True, "showgrid": False},
        "xaxis": {"domain": domain},
    }
    for index, title in enumerate(titles or [""]):
        side = "left" if index % 2 == 0 else "right"
        axis: dict[str, Any] = {
            "title": {"text": title, "font": {"size": 11, "color": AXIS_TEXT}},
            "overlaying": "y", "side": side, "zeroline": False, "tickfont": {"color": AXIS_TEXT},
            "showgrid": index == 0, "gridcolor": GRID, "automargin": True, "showline": True, "linecolor": "#9e9e9e",
        }
        if index >= 2:
            axis.update(anchor="free", position=0.0 if side == "left" else 1.0, autoshift=True)
        else:
            axis["anchor"] = "x"
        layout[f"yaxis{index + 2}"] = axis
    return layout
