"""The alarm performance page's figures and table rows, built from a PerformanceReport.

Plain functions, called by layouts/alarm_performance.py and by tests without a browser.
Grey like the trend; floods are shaded dark grey and labelled (abnormal, but not an alarm
colour: those mean alarms and nothing else). Times are local wall-clock text in the
browser's time zone (its UTC offset is passed in), as on the trend.
"""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from domain.alarms.performance import BENCHMARK_LINES, HOUR_MS, PerformanceReport
from web.trend_figure import local_time_text

BAR_GREY = "#6b6b6b"
TARGET_GREY = "#bdbdbd"
FLOOD_SHADE = "#3a3a3a"
BENCHMARK_DASH = {1: "dot", 2: "dash", 10: "solid"}
# Labels of the close lines at 1 and 2 go on opposite ends and sides so they never overlap.
BENCHMARK_LABEL_AT = {1: "bottom right", 2: "top right", 10: "top left"}
FONT = {"family": "Segoe UI, Helvetica Neue, Arial, sans-serif", "size": 12, "color": "#333"}


@dataclass(frozen=True, slots=True)
class PerformanceFigures:
    rate: go.Figure
    priorities: go.Figure
    bad_actors: go.Figure


def _calm(figure: go.Figure, **layout) -> go.Figure:
    """The trend's calm grey look; `layout` adds to or overrides it."""
    base = {"margin": {"l": 56, "r": 16, "t": 16, "b": 40}, "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "#e4e4e4", "font": FONT, "showlegend": True,
            "legend": {"orientation": "h", "y": -0.18, "x": 0}}
    figure.update_layout(**(base | layout))
    figure.update_xaxes(gridcolor="#cfcfcf")
    figure.update_yaxes(gridcolor="#cfcfcf", zeroline=False)
    return figure


def _note_if_empty(figure: go.Figure, empty: bool, text: str = "No alarms in this period") -> go.Figure:
    if empty:
        figure.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                              font={"size": 15, "color": "#666"})
    return figure


def rate_figure(report: PerformanceReport, utc_offset_min: int = 0) -> go.Figure:
    """Alarms per fixed 10-min bucket, the benchmark lines at 1, 2 and 10, flood periods shaded."""
    local = lambda ms: local_time_text(ms, utc_offset_min)  # noqa: E731
    figure = go.Figure(go.Bar(
        x=[local(b.start_ms) for b in report.buckets], y=[b.count for b in report.buckets],
        width=[b.end_ms - b.start_ms for b in report.buckets], offset=0, name="alarms per 10 min",
        marker={"color": BAR_GREY, "line": {"width": 0}},
        hovertemplate="%{x}<br>%{y} alarms<extra></extra>",
    ))
    for line in BENCHMARK_LINES:
        figure.add_hline(y=line.per_10min, line={"color": "#222", "width": 1.2, "dash": BENCHMARK_DASH[line.per_10min]},
                         annotation={"text": f"{line.per_10min} / 10 min: {line.label}", "font": {"size": 11}},
                         annotation_position=BENCHMARK_LABEL_AT[line.per_10min], name=f"benchmark {line.per_10min}")
    for flood in report.floods:
        figure.add_vrect(x0=local(flood.start_ms), x1=local(flood.end_ms), fillcolor=FLOOD_SHADE, opacity=0.22,
                         line={"width": 0}, layer="below", name="flood",
                         annotation={"text": "FLOOD", "font": {"size": 11, "color": "#111"}},
                         annotation_position="top left")
    _calm(figure, bargap=0, xaxis={"type": "date", "range": [local(report.start_ms), local(report.end_ms)]},
          yaxis={"title": {"text": "alarms per 10 min"}, "rangemode": "tozero"}, showlegend=False)
    return _note_if_empty(figure, report.annunciations == 0)


def priority_figure(report: PerformanceReport) -> go.Figure:
    """Share of alarms per priority next to the 80/15/5 guidance (critical under 1 %)."""
    labels = [f"{p.priority} {p.label}" for p in report.priorities]
    figure = go.Figure([
        go.Bar(x=labels, y=[p.percent for p in report.priorities], name="actual %", marker={"color": BAR_GREY},
               text=[f"{p.percent:.1f} % ({p.count})" for p in report.priorities], textposition="outside",
               hovertemplate="%{x}: %{y:.1f} %<extra>actual</extra>"),
        go.Bar(x=labels, y=[p.target_percent for p in report.priorities], name="guidance %",
               marker={"color": TARGET_GREY, "pattern": {"shape": "/", "fgcolor": "#8a8a8a"}},
               text=[p.target_text for p in report.priorities], textposition="outside",
               hovertemplate="%{x}: %{text}<extra>guidance</extra>"),
    ])
    _calm(figure, barmode="group", yaxis={"title": {"text": "% of alarms"}, "range": [0, 105]})
    return _note_if_empty(figure, report.annunciations == 0)


def bad_actors_figure(report: PerformanceReport) -> go.Figure:
    """The 10 most frequent alarms, most frequent on top, with their share of all alarms."""
    actors = list(reversed(report.bad_actors))
    figure = go.Figure(go.Bar(
        x=[a.count for a in actors], y=[a.alarm_id for a in actors], orientation="h", name="alarms",
        marker={"color": BAR_GREY}, text=[f"{a.share_percent:.1f} %" for a in actors], textposition="outside",
        cliponaxis=False, customdata=[a.message for a in actors],
        hovertemplate="%{y}<br>%{customdata}<br>%{x} alarms<extra></extra>",
    ))
    _calm(figure, showlegend=False, margin={"l": 180, "r": 40, "t": 16, "b": 40},
          xaxis={"title": {"text": f"alarms (top 10: {report.top10_share_percent:.1f} % of all)"},
                 "range": [0, max((a.count for a in actors), default=1) * 1.18]})
    return _note_if_empty(figure, not actors)


def build_performance_figures(report: PerformanceReport, utc_offset_min: int = 0) -> PerformanceFigures:
    return PerformanceFigures(rate_figure(report, utc_offset_min), priority_figure(report), bad_actors_figure(report))


def duration_text(ms: int) -> str:
    if ms >= 2 * 86_400_000:
        return f"{ms / 86_400_000:.1f} d"
    if ms >= HOUR_MS:
        return f"{ms / HOUR_MS:.1f} h"
    return f"{ms / 60_000:.0f} min"


def flood_rows(report: PerformanceReport, utc_offset_min: int = 0) -> list[tuple[str, ...]]:
    return [(local_time_text(f.start_ms, utc_offset_min)[:19],
             local_time_text(f.end_ms, utc_offset_min)[:19] + (" (period end)" if f.ongoing_at_end else ""),
             duration_text(f.end_ms - f.start_ms), str(f.count), str(f.peak_in_10min)) for f in report.floods]


def chattering_rows(report: PerformanceReport, utc_offset_min: int = 0) -> list[tuple[str, ...]]:
    return [(c.alarm_id, str(c.priority), str(c.annunciations), str(c.most_in_60s),
             local_time_text(c.first_chatter_ms, utc_offset_min)[:19]) for c in report.chattering]


def stale_rows(report: PerformanceReport, utc_offset_min: int = 0) -> list[tuple[str, ...]]:
    return [(s.alarm_id, str(s.priority), s.message,
             ("before " if s.since_before_period else "") + local_time_text(s.active_since_ms, utc_offset_min)[:19],
             local_time_text(s.cleared_ms, utc_offset_min)[:19] if s.cleared_ms is not None else "still active",
             ("over " if s.since_before_period else "") + duration_text(s.active_ms), s.source) for s in report.stale]


def csv_href(start_ms: int, end_ms: int) -> str:
    """The same period from the API as one CSV file (every table)."""
    return f"/api/alarms/performance?start={start_ms}&end={end_ms}&format=csv"
