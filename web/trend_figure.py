"""The trend figure: one line per pen, Bad samples as gaps, on a calm grey plot.

Times are written as local wall-clock strings in the browser's time zone (its
offset is passed in), the same form assets/live_render.js uses when it extends
the lines live, so history and live points line up.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go

from domain.config_model import DataType, Tag
from web.trend_history import Point

WINDOWS_MIN = (5, 15, 60)
PEN_OPTIONS_SHOWN = 300
# Pens are told apart by hue; the alarm colours (red, orange, yellow, blue) are left out on purpose.
PEN_COLOURS = ("#2b2b2b", "#00796b", "#6d4c41", "#7b1fa2", "#558b2f", "#ad1457", "#00838f", "#5d4037")


def local_time_text(ms: int, utc_offset_min: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=utc_offset_min)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def parse_pens(text: object, config_tags: dict[str, Tag]) -> list[str]:
    """Tag names from "?tags=a,b" (or a list), keeping only known tags, in order, without repeats."""
    if isinstance(text, list):
        names = [str(n) for n in text]
    elif isinstance(text, str):
        names = [n.strip() for n in text.split(",")]
    else:
        names = []
    return [n for n in dict.fromkeys(names) if n in config_tags]


def pen_options(tags: Iterable[Tag], search: str | None, selected: list[str] | None,
                limit: int = PEN_OPTIONS_SHOWN) -> list[dict[str, str]]:
    """The pen picker's choices: the chosen pens, then up to `limit` trendable tags matching every word.

    A plant with thousands of discovered tags must not ship them all to each browser;
    the picker asks again as the operator types.
    """
    words = (search or "").lower().split()
    chosen = set(selected or [])
    picked, found = [], 0
    for tag in tags:
        if tag.data_type is DataType.STRING:
            continue
        label = f"{tag.name}: {tag.description}" if tag.description else tag.name
        if tag.name in chosen:
            picked.append({"label": label, "value": tag.name})
        elif found < limit and all(w in label.lower() for w in words):
            found += 1
            picked.append({"label": label, "value": tag.name})
    return picked


def held_in_steps(tag: Tag) -> bool:
    """Setpoints, states and counts change in steps; a ramp between two samples would be invented."""
    return tag.writable or tag.data_type is not DataType.FLOAT


def trend_figure(pens: list[tuple[Tag, list[Point]]], window_min: int, now_ms: int,
                 utc_offset_min: int) -> go.Figure:
    figure = go.Figure()
    for index, (tag, points) in enumerate(pens):
        last_ms = points[-1][0] if points else 0
        figure.add_trace(go.Scatter(
            x=[local_time_text(t, utc_offset_min) for t, _ in points],
            y=[v for _, v in points],
            name=f"{tag.name} [{tag.unit}]" if tag.unit else tag.name,
            mode="lines",
            line={"color": PEN_COLOURS[index % len(PEN_COLOURS)], "width": 1.6,
                  "shape": "hv" if held_in_steps(tag) else "linear"},
            connectgaps=False,
            meta={"tag": tag.name, "last_ts": last_ms},
            hovertemplate="%{y}<extra>" + tag.name + "</extra>",
        ))
    start_ms = now_ms - window_min * 60_000
    figure.update_layout(
        meta={"window_ms": window_min * 60_000, "utc_offset_min": utc_offset_min},
        margin={"l": 56, "r": 16, "t": 16, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="#e4e4e4",
        font={"family": "Segoe UI, Helvetica Neue, Arial, sans-serif", "size": 12, "color": "#333"},
        legend={"orientation": "h", "y": -0.15, "x": 0},
        xaxis={"range": [local_time_text(start_ms, utc_offset_min), local_time_text(now_ms, utc_offset_min)],
               "gridcolor": "#cfcfcf", "type": "date"},
        yaxis={"gridcolor": "#cfcfcf", "zeroline": False},
        uirevision=f"{window_min}|" + ",".join(tag.name for tag, _ in pens),
        showlegend=True,
    )
    if not pens:
        figure.add_annotation(text="Choose tags to trend", showarrow=False, xref="paper", yref="paper",
                              x=0.5, y=0.5, font={"size": 16, "color": "#666"})
    return figure
