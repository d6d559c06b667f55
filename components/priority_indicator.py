"""The alarm priority symbol: colour, shape and number together, never colour alone.

1 red square, 2 orange diamond, 3 yellow triangle, 4 blue circle (see assets/stacklight.css).
"""
from __future__ import annotations

from dash import html

PRIORITY_NAMES = {1: "critical", 2: "high", 3: "medium", 4: "low"}


def priority_class(priority: int, unacknowledged: bool = False) -> str:
    return f"sl-prio sl-prio-{priority}" + (" sl-unack" if unacknowledged else "")


def priority_indicator(priority: int, unacknowledged: bool = False) -> html.Span:
    return html.Span(
        html.Span(str(priority), className="sl-prio-number"),
        className=priority_class(priority, unacknowledged),
        title=f"priority {priority} ({PRIORITY_NAMES.get(priority, '')})",
        role="img",
        **{"aria-label": f"alarm priority {priority}"},
    )
