"""The trend figure: one line per pen, Bad samples as gaps, on a calm grey plot, as a plain dict.

Times are the browser's wall clock as if it were UTC: epoch ms shifted by the browser's offset
(axis_x), so Plotly's date axis shows local time; assets/trend_live.js extends the lines the same
way. Plain dicts rather than plotly.graph_objects: thousands of points per pen, validated by
nobody, go straight to JSON.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.config_model import DataType, Tag
from web.history_query import PenHistory
from web.trend_axes import PenAxis, assign_axes, axes_layout
from web.trend_overlays import band_trace, limit_shapes

PEN_OPTIONS_SHOWN = 300
# Pens are told apart by hue; the alarm colours (red, orange, yellow, blue) are left out on purpose.
PEN_COLOURS = ("#2b2b2b", "#00796b", "#6d4c41", "#7b1fa2", "#558b2f", "#ad1457", "#00838f", "#5d4037")
SIGNIFICANT_DIGITS = 6
FONT = {"family": "Segoe UI, Helvetica Neue, Arial, sans-serif", "size": 12, "color": "#333"}


def local_time_text(ms: int, utc_offset_min: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=utc_offset_min)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def axis_x(ms: int, utc_offset_min: int) -> int:
    """A time as the x axis holds it: the browser's wall clock in ms, read by Plotly as UTC."""
    return int(ms) + utc_offset_min * 60_000


_AXIS_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?$")


def axis_ms(value: Any, utc_offset_min: int) -> int | None:
    """Epoch ms of an x-axis value as Plotly reports it (a date text or a number), None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value) - utc_offset_min * 60_000
    if not isinstance(value, str) or not _AXIS_TEXT.match(value.strip()):
        return None
    text = value.strip().replace(" ", "T")
    date, _, clock = text.partition("T")
    clock = clock or "00:00:00"
    clock += ":00" * (2 - clock.count(":"))
    whole, _, fraction = clock.partition(".")
    moment = datetime.fromisoformat(f"{date}T{whole}").replace(tzinfo=UTC)
    ms = int(moment.timestamp() * 1000) + int((fraction + "000")[:3])
    return ms - utc_offset_min * 60_000


def parse_pens(text: object, config_tags: dict[str, Tag]) -> list[str]:
    """Tag names from "?tags=a,b" (or a list), keeping only known tags, in order, without repeats."""
    if isinstance(text, list):
        names = [str(n) for n in text]
    elif isinstance(text, str):
        names = [n.strip() for n in text.split(",")]
    else:
        names = []
    return [n for n in dict.fromkeys(names) if n in config_tags]


def pen_label(tag: Tag) -> str:
    text = f"{tag.name}: {tag.description}" if tag.description else tag.name
    return f"{text} [{tag.unit}]" if tag.unit else text


def pen_options(tags: Iterable[Tag], search: str | None, selected: list[str] | None,
                limit: int = PEN_OPTIONS_SHOWN) -> list[dict[str, str]]:
    """The pen picker's choices: the chosen pens, then up to `limit` trendable tags matching every word
    of the search in their name, description or unit.

    A plant with thousands of discovered tags must not ship them all to each browser;
    the picker asks again as the operator types.
    """
    words = (search or "").lower().split()
    chosen = set(selected or [])
    picked, found = [], 0
    for tag in tags:
        if tag.data_type is DataType.STRING:
            continue
        label = pen_label(tag)
        if tag.name in chosen:
            picked.append({"label": label, "value": tag.name})
        elif found < limit and all(w in label.lower() for w in words):
            found += 1
            picked.append({"label": label, "value": tag.name})
    return picked


def held_in_steps(tag: Tag) -> bool:
    """Setpoints, states and counts change in steps; a ramp between two samples would be invented."""
    return tag.writable or tag.data_type is not DataType.FLOAT


def short_number(value: float | None) -> float | None:
    """Six significant digits: plenty for a line on a screen, and half the JSON."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


@dataclass(frozen=True)
class Pen:
    """One pen to draw: its tag and its history (None when it could not be read)."""

    tag: Tag
    history: PenHistory | None
    setpoint: tuple[Tag, PenHistory] | None = None  # its deviation alarm's setpoint, if trended


@dataclass(frozen=True)
class FigureView:
    start_ms: int
    end_ms: int
    utc_offset_min: int
    live: bool = False
    extend: bool = False
    axes: str = "unit"
    revision: str = ""
    png_name: str = "trend"


def _hover(unit: str, scaled: bool) -> str:
    unit_text = f" {unit}" if unit else ""
    if scaled:
        return "%{customdata:.4~g}" + unit_text + " (%{y:.0f} %)"
    return "%{y:.4~g}" + unit_text


def line_trace(tag: Tag, history: PenHistory | None, colour: str, pen_axis: PenAxis, offset_min: int,
               *, name: str | None = None, dash: str = "solid", role: str = "pen") -> dict[str, Any]:
    ts = history.ts_ms if history else []
    values = [short_number(v) for v in (history.values if history else [])]
    trace: dict[str, Any] = {
        "type": "scatter", "mode": "lines", "name": name or (f"{tag.name} [{tag.unit}]" if tag.unit else tag.name),
        "x": [axis_x(t, offset_min) for t in ts],
        "y": [pen_axis.to_axis(v) for v in values] if pen_axis.scale else values,
        "yaxis": pen_axis.ref, "connectgaps": False,
        "line": {"color": colour, "width": 1.6 if role == "pen" else 1.2, "dash": dash,
                 "shape": "hv" if held_in_steps(tag) else "linear"},
        "hovertemplate": _hover(tag.unit, pen_axis.scale is not None),
        "meta": {"tag": tag.name, "last_ts": ts[-1] if ts else 0, "role": role,
                 "scale": list(pen_axis.scale) if pen_axis.scale else None},
    }
    if pen_axis.scale:
        trace["customdata"] = values
    return trace


def trend_figure(pens: Sequence[Pen], view: FigureView) -> dict[str, Any]:
    """The figure for dcc.Graph: pens, their setpoints, limit lines, Bad/Uncertain bands, axes."""
    tags = [p.tag for p in pens]
    mode, pen_axes, titles, notes = assign_axes(tags, view.axes,
                                                 [p.history.values if p.history else [] for p in pens])
    offset = view.utc_offset_min
    traces: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    for index, (pen, pen_axis) in enumerate(zip(pens, pen_axes)):
        colour = PEN_COLOURS[index % len(PEN_COLOURS)]
        traces.append(line_trace(pen.tag, pen.history, colour, pen_axis, offset))
        shapes += limit_shapes(pen.tag, pen_axis, "start" if index % 2 else "end")
    for index, (pen, pen_axis) in enumerate(zip(pens, pen_axes)):
        if pen.setpoint is not None:
            sp_tag, sp_history = pen.setpoint
            traces.append(line_trace(sp_tag, sp_history, PEN_COLOURS[index % len(PEN_COLOURS)], pen_axis, offset,
                                     name=f"{sp_tag.name} (setpoint of {pen.tag.name})", dash="dot",
                                     role="setpoint"))
    span_ms = max(1, view.end_ms - view.start_ms)
    for kind, attribute in (("bad", "quality_bad_periods"), ("uncertain", "quality_uncertain_periods")):
        periods = [p for pen in pens if pen.history for p in getattr(pen.history, attribute)]
        band = band_trace(kind, periods, lambda ms: axis_x(ms, offset), span_ms)
        if band is not None:
            traces.append(band)

    layout: dict[str, Any] = {
        "meta": {"live": view.live, "extend": view.extend, "window_ms": span_ms, "utc_offset_min": offset,
                 "view": [view.start_ms, view.end_ms], "png_name": view.png_name, "axes": mode, "notes": notes},
        "margin": {"l": 56, "r": 24, "t": 16, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "#e4e4e4", "font": FONT,
        "legend": {"orientation": "h", "y": -0.12, "x": 0},
        "hovermode": "x unified",
        # Every pen in the hover, however far its nearest point: a value holds until the next sample.
        "hoverdistance": -1, "spikedistance": -1,
        "hoverlabel": {"bgcolor": "#f2f2f2", "bordercolor": "#8a8a8a", "font": {"color": "#1f1f1f"}},
        "shapes": shapes,
        "uirevision": view.revision,
        "showlegend": True,
        "dragmode": "zoom",
    }
    layout.update(axes_layout(titles))
    layout["xaxis"].update({
        "type": "date", "range": [axis_x(view.start_ms, offset), axis_x(view.end_ms, offset)],
        "gridcolor": "#cfcfcf", "showspikes": True, "spikemode": "across", "spikesnap": "cursor",
        "spikecolor": "#555", "spikethickness": 1, "spikedash": "solid", "hoverformat": "%Y-%m-%d %H:%M:%S",
        "anchor": "y",
    })
    if not pens:
        layout["annotations"] = [{"text": "Choose tags to trend", "showarrow": False, "xref": "paper",
                                  "yref": "paper", "x": 0.5, "y": 0.5, "font": {"size": 16, "color": "#666"}}]
    return {"data": traces, "layout": layout}


def png_name(tags: Sequence[str], end_ms: int, utc_offset_min: int) -> str:
    first = tags[0] if len(tags) == 1 else (f"{len(tags)}-pens" if tags else "empty")
    stamp = (datetime.fromtimestamp(end_ms / 1000, tz=UTC) + timedelta(minutes=utc_offset_min)).strftime("%Y%m%d-%H%M")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"trend-{first}-{stamp}")
