"""What is drawn over a trend besides the pens: alarm limits, setpoints, Bad and Uncertain periods.

- A pen's limit alarms (HH, H, L, LL) are dashed grey lines across the plot on its axis, labelled
  with the pen and the limit; grey, not the alarm colours: a limit is not an alarm.
- A pen's deviation alarm names a setpoint tag; its history is drawn dotted in the pen's colour
  (web/trend_figure.py), so the operator sees how far the value strays.
- Bad periods are hatched grey bands over the whole height, Uncertain ones lighter, each with one
  legend entry; the pens' lines have gaps there (connectgaps off).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.alarms.settings import KIND_LABELS, LIMIT_KINDS
from domain.config_model import Tag
from web.history_query import merge_periods
from web.trend_axes import PenAxis

LIMIT_LINE = "#6f6f6f"
LIMIT_TEXT = "#4a4a4a"
MAX_BANDS = 400  # per kind; closer periods are joined beyond that
BANDS = {
    "bad": {"name": "Bad/no data", "fillcolor": "rgba(110,110,110,0.30)",
            "fillpattern": {"shape": "/", "fgcolor": "#7a7a7a", "size": 8, "solidity": 0.25}},
    "uncertain": {"name": "Uncertain", "fillcolor": "rgba(150,150,150,0.15)",
                  "fillpattern": {"shape": ".", "fgcolor": "#9a9a9a", "size": 6, "solidity": 0.2}},
}


def limit_lines(tag: Tag) -> list[tuple[str, float]]:
    """(label, limit) of each configured limit alarm, highest first."""
    if tag.alarms is None:
        return []
    found = [(kind, getattr(tag.alarms, kind)) for kind in LIMIT_KINDS]
    return [(KIND_LABELS[kind], float(alarm.limit)) for kind, alarm in found if alarm is not None]


def setpoint_tag(tag: Tag) -> str | None:
    """The tag a pen's deviation alarm compares against, if it has one."""
    deviation = tag.alarms.deviation if tag.alarms is not None else None
    return deviation.setpoint_tag if deviation is not None else None


def limit_shapes(tag: Tag, pen_axis: PenAxis, label_at: str = "end") -> list[dict[str, Any]]:
    """One dashed, labelled horizontal line per limit, on the pen's axis; label_at "start" or "end"
    (pens alternate, so that labels of limits at one height do not cover each other)."""
    return [
        {
            "type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": pen_axis.ref,
            "y0": pen_axis.to_axis(limit), "y1": pen_axis.to_axis(limit), "layer": "above",
            "line": {"color": LIMIT_LINE, "width": 1, "dash": "dash"},
            "label": {"text": f"{tag.name} {label} {limit:g}", "textposition": label_at, "yanchor": "bottom",
                      "font": {"size": 10, "color": LIMIT_TEXT}},
            "name": f"{tag.name} {label}",
        }
        for label, limit in limit_lines(tag)
    ]


def band_trace(kind: str, periods: Sequence[tuple[int, int]], to_x, span_ms: int) -> dict[str, Any] | None:
    """The periods of one kind as one hatched, filled trace over the hidden 0..1 axis; None if none."""
    if not periods:
        return None
    joined = merge_periods(list(periods), 0)
    join_ms = span_ms // MAX_BANDS
    while len(joined) > MAX_BANDS:
        joined = merge_periods(joined, join_ms)
        join_ms *= 2
    xs: list[Any] = []
    ys: list[Any] = []
    for start_ms, end_ms in joined:
        left, right = to_x(start_ms), to_x(max(end_ms, start_ms + 1))
        xs += [left, left, right, right, left, None]
        ys += [0, 1, 1, 0, 0, None]
    style = BANDS[kind]
    return {
        "type": "scatter", "mode": "lines", "x": xs, "y": ys, "yaxis": "y", "fill": "toself",
        "fillcolor": style["fillcolor"], "fillpattern": style["fillpattern"], "line": {"width": 0},
        "name": style["name"], "legendgroup": kind, "hoverinfo": "skip", "showlegend": True,
        "meta": {"band": kind},
    }
