"""The historian's settings (`historian:` in the plant file), validated once at start.

The historian (`python -m historian`, docs/historian.md) copies every sample from Redis into
Parquet files under data_dir. These settings say how much a crash may lose, how long files are
kept and how much memory it may use while the disk is failing.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a plant file must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HistorianSettings(_Strict):
    # Files older than this are deleted. At least a day: the historian is the only long-term copy.
    retention_days: Annotated[float, Field(ge=1, le=36_500)] = 35.0
    # Samples are written to disk at least this often: the most a crash may lose (a clean stop loses nothing).
    flush_interval_s: Annotated[float, Field(ge=0.05, le=60)] = 2.0
    # How often small files are merged (compaction) and old ones deleted (retention).
    compaction_interval_s: Annotated[float, Field(ge=1, le=86_400)] = 60.0
    # Only files older than this are merged: a recent file may still be read by a query.
    compaction_grace_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    # Samples held in memory while the disk refuses writes; beyond it the oldest are dropped and counted.
    max_buffer_samples: Annotated[int, Field(ge=10_000, le=100_000_000)] = 2_000_000

    @model_validator(mode="after")
    def _compaction_after_flush(self) -> HistorianSettings:
        if self.compaction_interval_s < self.flush_interval_s:
            raise ValueError(f"compaction_interval_s ({self.compaction_interval_s}) must not be shorter than "
                             f"flush_interval_s ({self.flush_interval_s})")
        return self
