"""The trend's time ranges: the presets, which of them are live, custom ranges typed in local time,
and how many points a pen may bring for the plot's width.

Presets end now and follow the clock. Up to LIVE_EXTEND_MAX_MS the browser extends the lines
from the live push (assets/trend_live.js); longer presets are queried again every
refresh_interval_s instead. A custom range is fixed.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from web.history_query import DAY_MS, MAX_RANGE_MS, MIN_POINTS

MINUTE_MS = 60_000
HOUR_MS = 3_600_000

RANGES_MS: dict[str, int] = {
    "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "1h": HOUR_MS, "8h": 8 * HOUR_MS,
    "24h": 24 * HOUR_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS,
}
RANGE_LABELS: dict[str, str] = {
    "5m": "5 min", "15m": "15 min", "1h": "1 h", "8h": "8 h", "24h": "24 h", "7d": "7 d", "30d": "30 d",
    "custom": "Custom",
}
CUSTOM = "custom"
DEFAULT_RANGE = "15m"
# The old address form (?window=5) names minutes.
LEGACY_WINDOWS = {"5": "5m", "15": "15m", "60": "1h"}

LIVE_EXTEND_MAX_MS = HOUR_MS
MAX_POINTS_PER_PEN = 5_000
POINTS_PER_PIXEL = 2
DEFAULT_PLOT_WIDTH_PX = 1_200
LOCAL_INPUT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


def extends_live(range_key: str) -> bool:
    """Whether a live preset is extended in the browser (else queried again now and then)."""
    return range_key in RANGES_MS and RANGES_MS[range_key] <= LIVE_EXTEND_MAX_MS


def refresh_interval_s(range_key: str) -> int | None:
    """How often a live preset that is not extended in the browser is queried again."""
    if range_key not in RANGES_MS or extends_live(range_key):
        return None
    return 30 if RANGES_MS[range_key] <= DAY_MS else 60


def max_points_for_width(plot_width_px: int | float | None) -> int:
    """About two points per pixel of the plot, at most MAX_POINTS_PER_PEN (and at least MIN_POINTS)."""
    width = int(plot_width_px) if plot_width_px and plot_width_px > 0 else DEFAULT_PLOT_WIDTH_PX
    return max(MIN_POINTS, min(MAX_POINTS_PER_PEN, POINTS_PER_PIXEL * width))


def parse_local_input(text: str | None, utc_offset_min: int) -> int | None:
    """Epoch ms of a time typed in the browser's zone ("2026-01-31 08:00"), or None if it is not one."""
    if not text:
        return None
    for form in LOCAL_INPUT_FORMATS:
        try:
            wall = datetime.strptime(text.strip(), form).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int((wall - timedelta(minutes=utc_offset_min)).timestamp() * 1000)
    return None


def local_input_text(ms: int, utc_offset_min: int) -> str:
    """A time as the custom range's inputs show it: the browser's wall clock, to the minute."""
    wall = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=utc_offset_min)
    return wall.strftime("%Y-%m-%d %H:%M")


def check_custom_range(start_ms: int | None, end_ms: int | None, now_ms: int) -> str | None:
    """Why a custom range cannot be shown, or None when it can."""
    if start_ms is None or end_ms is None:
        return "Give a start and an end (date and time)."
    if end_ms <= start_ms:
        return "The end must be after the start."
    if start_ms >= now_ms:
        return "The range must start before now."
    if end_ms - start_ms > MAX_RANGE_MS:
        return (f"The range is {(end_ms - start_ms) / DAY_MS:.1f} days long; "
                f"at most {MAX_RANGE_MS // DAY_MS} days.")
    return None
