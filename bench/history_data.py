"""Synthetic plant signals for bench/history_query.py: any hour of any tag, made alone and repeatably.

A tag's value at second t is a function of (seed, tag, t) plus noise drawn from a generator seeded by
(seed, hour): so an hour can be made on its own, for all tags or a few, and comes out the same every
time. Four kinds of tag, in turn: temperatures (slow sine), levels (fill and drain), flows (setpoint
steps) and pressures (sine with a pump's pulsation); every value has sensor noise and is rounded to
the 3 decimals a transmitter sends; now and then a one-sample spike. Two kinds of Bad period:
communication loss (one BadNoCommunication sample, then nothing until the source reconnects, as the
data sources report it) and sensor failure (a BadSensorFailure sample every second, value NaN).
A Bad period never crosses an hour boundary (so an hour needs nothing from the one before).

ensure_dataset() writes such a history with the historian's bulk loader (historian.storage
.write_compacted), hour by hour, then compacts closed days as the running historian would, and keeps it
under a cache directory keyed by its parameters for the next run.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domain.quality import BAD_NO_COMMUNICATION, BAD_SENSOR_FAILURE, GOOD

HOUR_S = 3600
HOUR_MS = 3_600_000
KINDS = ("TT", "LT", "FT", "PT")  # temperature, level, flow, pressure
SPIKE_PER_SAMPLE = 2e-4
COMM_LOSS_PER_TAG_HOUR = 0.02  # about one loss per tag per two days
SENSOR_FAILURE_PER_TAG_HOUR = 0.005
STEP_S = 600  # flows: a new setpoint every 10 minutes (some stay)


def tag_name(index: int) -> str:
    return f"U{index // 50:02d}.{KINDS[index % 4]}{index:04d}"


@dataclass(frozen=True)
class HourSamples:
    """Rows sorted by (tag, ts): tag index, source time, value (NaN when Bad), quality code."""

    tag: np.ndarray
    ts_ms: np.ndarray
    value: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ms)


class PlantSignals:
    def __init__(self, tags: int, seed: int = 6):
        self.tags = tags
        self.seed = seed
        params = np.random.default_rng([seed, 0])
        self.base = params.uniform(20.0, 80.0, tags)
        self.amplitude = params.uniform(2.0, 15.0, tags)
        self.period_s = params.uniform(1_800.0, 14_400.0, tags)
        self.phase = params.uniform(0.0, 1.0, tags)
        self.noise = self.amplitude * params.uniform(0.005, 0.03, tags)
        self.kind = np.arange(tags) % 4

    def hour(self, hour_index: int, indices: np.ndarray | None = None) -> HourSamples:
        """Every sample of hour `hour_index` (epoch hours) of the tags `indices` (default: all)."""
        idx = np.arange(self.tags) if indices is None else np.asarray(indices, dtype=np.int64)
        n = len(idx)
        rng = np.random.default_rng([self.seed, 1, hour_index])
        # Draw for every tag, then pick: the same tag gets the same noise whichever tags are asked for.
        noise = rng.standard_normal((self.tags, HOUR_S), dtype=np.float32)[idx]
        spikes = rng.random((self.tags, HOUR_S), dtype=np.float32)[idx] < SPIKE_PER_SAMPLE
        loss = rng.random(self.tags)[idx] < COMM_LOSS_PER_TAG_HOUR
        loss_start = rng.integers(0, HOUR_S - 60, self.tags)[idx]
        loss_len = rng.integers(60, 900, self.tags)[idx]
        failure = rng.random(self.tags)[idx] < SENSOR_FAILURE_PER_TAG_HOUR
        failure_start = rng.integers(0, HOUR_S - 30, self.tags)[idx]
        failure_len = rng.integers(30, 300, self.tags)[idx]

        t_s = hour_index * HOUR_S + np.arange(HOUR_S, dtype=np.int64)
        base, amp = self.base[idx, None], self.amplitude[idx, None]
        cycle = t_s[None, :] / self.period_s[idx, None] + self.phase[idx, None]
        kind = self.kind[idx, None]
        sine = np.sin(2 * np.pi * cycle)
        triangle = 2 * np.abs(2 * (cycle % 1.0) - 1) - 1
        steps = _uniform_hash(idx[:, None] * 1_000_003 + t_s[None, :] // STEP_S) * 2 - 1
        pulsation = sine + 0.2 * np.sin(2 * np.pi * t_s[None, :] / 97.0)
        shape = np.where(kind == 0, sine, np.where(kind == 1, triangle, np.where(kind == 2, steps, pulsation)))
        value = base + amp * shape + self.noise[idx, None] * noise
        value = np.where(spikes, value + 3 * amp * np.sign(noise + 1e-9), value)
        value = np.round(value, 3)

        second = np.arange(HOUR_S)[None, :]
        quality = np.full((n, HOUR_S), GOOD.code, dtype=np.uint32)
        failing = failure[:, None] & (second >= failure_start[:, None]) \
            & (second < failure_start[:, None] + failure_len[:, None])
        quality[failing] = BAD_SENSOR_FAILURE.code
        keep = np.ones((n, HOUR_S), dtype=bool)
        silent = loss[:, None] & (second > loss_start[:, None]) & (second < loss_start[:, None] + loss_len[:, None])
        keep[silent] = False
        quality[loss[:, None] & (second == loss_start[:, None])] = BAD_NO_COMMUNICATION.code
        value[quality != GOOD.code] = np.nan

        rows = keep.ravel()
        return HourSamples(
            tag=np.repeat(idx, HOUR_S)[rows],
            ts_ms=np.tile(t_s * 1000, n)[rows],
            value=value.ravel()[rows],
            quality=quality.ravel()[rows],
        )


def _uniform_hash(x: np.ndarray) -> np.ndarray:
    """splitmix64 of x as a float in [0, 1): a setpoint that depends only on (tag, step)."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# --- the cached data set ------------------------------------------------------------------------

@dataclass(frozen=True)
class Dataset:
    data_dir: Path  # a plant data_dir: the historian's files are under data_dir/historian/
    end_ms: int  # the history ends here (an hour boundary)
    seed: int
    description: str


def ensure_dataset(cache_dir: Path, tags: int, hours: int, days: int, pen_indices: list[int], *,
                   reuse: bool, seed: int = 6) -> Dataset:
    """The history the bench queries, written with the historian's bulk loader (write_compacted):
    every tag for the last `hours` hours, the pens alone for the `days` days before that end.
    Cached under cache_dir by its parameters (and the storage code's version); with reuse, a complete
    earlier data set is taken as it is, otherwise it is made again."""
    from historian import storage  # noqa: PLC0415

    parameters = "-".join([f"t{tags}", f"h{hours}", f"d{days}", "p" + ".".join(map(str, pen_indices)), f"s{seed}"])
    root = cache_dir / f"{parameters}-{_storage_version()}"
    meta_file = root / "dataset.json"
    if reuse and meta_file.exists():
        meta = json.loads(meta_file.read_text())
        return Dataset(root / "data", meta["end_ms"], seed, meta["description"] + " (reused)")
    for stale in cache_dir.glob(f"{parameters}-*"):  # this one, or one written by other storage code
        shutil.rmtree(stale, ignore_errors=True)
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    names = np.array([tag_name(i) for i in range(tags)], dtype=object)
    signals = PlantSignals(tags, seed)
    end_hour = int(time.time()) // HOUR_S
    pens = np.asarray(pen_indices, dtype=np.int64)
    plan = [(h, pens) for h in range(end_hour - max(days * 24, hours), end_hour - hours)] \
        + [(h, None) for h in range(end_hour - hours, end_hour)]
    started, samples = time.perf_counter(), 0
    for done, (hour_index, indices) in enumerate(plan, 1):
        block = signals.hour(hour_index, indices)
        storage.write_compacted(data_dir, storage_rows(block, names))
        samples += len(block)
        if done % 24 == 0 or done == len(plan):
            print(f"  ... history: {done}/{len(plan)} hours written ({samples:,} samples, "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
    took_s = time.perf_counter() - started
    # As the running historian would have: closed days merged into day files (today's hours stay).
    merged = storage.compact(data_dir, int(time.time() * 1000))
    compact_s = time.perf_counter() - started - took_s
    disk = storage.disk_bytes(data_dir)
    description = (f"{tags:,} tags at 1 s for {hours} h and {len(pens)} pens for {days} days "
                   f"({samples:,} samples, {samples / took_s:,.0f}/s made and written in {took_s:.0f} s, "
                   f"{merged} partitions compacted in {compact_s:.0f} s; {disk / 2**20:,.0f} MB on disk, "
                   f"{disk / samples:.2f} B/sample)")
    meta_file.write_text(json.dumps({"end_ms": end_hour * HOUR_MS, "description": description}))
    return Dataset(data_dir, end_hour * HOUR_MS, seed, description)


def storage_rows(block: HourSamples, names: np.ndarray):
    """An hour of samples as the historian's SampleRows (tag names, not indices)."""
    from historian.sample_rows import SampleRows  # noqa: PLC0415

    return SampleRows(tag=names[block.tag], ts_ms=block.ts_ms.astype(np.int64),
                      value=block.value.astype(np.float64), quality=block.quality.astype(np.uint32))


def _storage_version() -> str:
    """A short hash of the historian's code that writes files: a data set written by other code is made again."""
    import historian  # noqa: PLC0415

    package = Path(historian.__file__).parent
    digest = hashlib.sha256()
    for name in ("sample_rows.py", "storage.py", "parquet_files.py", "paths.py", "compaction.py", "rollups.py"):
        path = package / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]
