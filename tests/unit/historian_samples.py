"""Shared by the historian's unit tests: a fixed day to write into and rows written as tuples."""
from __future__ import annotations

from domain.quality import BAD_NO_COMMUNICATION
from historian.storage import SampleRows

HOUR = 3_600_000
DAY = 86_400_000
MINUTE = 60_000
BASE = 1_764_633_600_000  # 2025-12-02 00:00 UTC
BAD = BAD_NO_COMMUNICATION.code
NAN = float("nan")


def rows(*samples: tuple[str, int, float, int]) -> SampleRows:
    """SampleRows of (tag, source time ms, value, quality code) tuples."""
    tags, ts, values, qualities = zip(*samples)
    return SampleRows.from_lists(list(tags), list(ts), list(values), list(qualities))
