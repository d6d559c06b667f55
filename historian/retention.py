"""Retention: whole partitions older than the retention period are deleted, nothing else."""
from __future__ import annotations

from pathlib import Path

from historian.paths import DAY_MS, list_files, root_of


def prune(data_dir: Path, now_ms: int, retention_days: float) -> int:
    """Delete every partition (segments, hour, day) whose end is at or before now - retention, with its
    rollups; returns how many partitions were removed. A partition reaching into the period is kept."""
    if retention_days <= 0:
        raise ValueError(f"retention_days={retention_days}: must be positive")
    cutoff_ms = now_ms - int(retention_days * DAY_MS)
    listing = list_files(root_of(data_dir), None, cutoff_ms)
    removed = set()
    for f in listing.files:
        if f.end_ms <= cutoff_ms:
            for path in (f.rollup_path, f.path):  # rollups first: a data file is never left without them
                if path is not None:
                    path.unlink(missing_ok=True)
            if f.level == "segment":
                try:
                    f.path.parent.rmdir()
                except OSError:
                    pass
            removed.add(f.partition)
    return len(removed)
