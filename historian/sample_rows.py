"""SampleRows: a batch of samples as parallel numpy arrays, the one shape every historian write takes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SampleRows:
    """Parallel arrays in any order.

    tag: object array of tag names; ts_ms: int64 source time (epoch ms, UTC); value: float64, NaN for
    Bad samples (bools as 1.0 / 0.0; text tags are never stored); quality: uint32 OPC UA StatusCode.
    """

    tag: np.ndarray
    ts_ms: np.ndarray
    value: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        lengths = {len(self.tag), len(self.ts_ms), len(self.value), len(self.quality)}
        if len(lengths) != 1:
            raise ValueError(f"SampleRows arrays differ in length: tag {len(self.tag)}, ts_ms {len(self.ts_ms)}, "
                             f"value {len(self.value)}, quality {len(self.quality)}")

    @staticmethod
    def from_lists(tags: list[str], ts_ms: list[int], values: list[float], qualities: list[int]) -> SampleRows:
        tag = np.empty(len(tags), dtype=object)
        tag[:] = tags
        return SampleRows(tag, np.asarray(ts_ms, dtype=np.int64), np.asarray(values, dtype=np.float64),
                          np.asarray(qualities, dtype=np.uint32))

    @staticmethod
    def empty() -> SampleRows:
        return SampleRows.from_lists([], [], [], [])

    def __len__(self) -> int:
        return len(self.ts_ms)
