"""History query benchmark: 8 pens over 24 h and over 30 days against sending every raw point, and
Redis memory while the tag-store writer runs far past its streams' caps.

    python -m bench.history_query                    # generates the history first (minutes), caches it
    python -m bench.history_query --reuse            # the history generated last time (under /tmp)
    python -m bench.history_query --reuse --skip-memory
    python -m bench.history_query --tags 100 --hours 2 --days 2 --runs 3 --memory-hours 1   # a quick look

The history (bench/history_data.py) is written with the historian's own bulk loader into a data dir
under --cache-dir: --tags tags at 1 sample/s for the last --hours hours, and the --pens pens alone for
--days days. A private, non-persistent redis-server holds the recent tier: the newest
history_samples_per_tag samples of every pen in sl:hist:<tag>, as the writer leaves them (its entry
encoding, ids = receive times, approximate MAXLEN), overlapping the files as the historian's copy does.

Then, for 8 pens over the last --hours hours and over the last --days days, in the same run:
  (a) the server's work: query_history of every pen at once (asyncio.gather, as one web worker
      answers a trend's 8 requests), each answer rendered as its HTTP body (history_json, json.dumps
      with FastAPI's options): time and bytes, cold (data files dropped from the page cache, a new
      HistoryReader) and warm (the same reader again);
  (b) the bare baseline: HistoryReader.raw of every pen and every point as JSON
      {"tag", "ts_ms": [...], "values": [...]} (Bad = null);
  and where (a)'s warm time goes, pen after pen: the reader's calls, the Redis read, merging,
  downsampling, JSON.
Then (unless --skip-memory) Redis memory: the real TagStoreWriter writes every tag once per simulated
second, as fast as it goes (the clock compressed), and INFO memory is sampled while the streams fill to
their caps and beyond; with --historian, `python -m historian` follows sl:samples meanwhile. Redis holds
only capped streams (sl:hist:<tag> by history_samples_per_tag, the feeds sl:changes and sl:samples by a
budget of samples), so memory depends on the samples written, not on the time they span: every cap is
reached after about an hour of simulated time, and the default run goes on well past it; a literal
week (--memory-hours 168) is 605 million samples, hours of the writer at full speed.
Everything but the cached history is removed at the end, also on Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench.measure import percentile

TARGET_S = 0.300
TARGET_BYTES = 1_000_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# FastAPI's JSONResponse renders with these options.
JSON_OPTIONS = {"ensure_ascii": False, "allow_nan": False, "indent": None, "separators": (",", ":")}


# --- one case: our answer and the raw baseline --------------------------------------------------

@dataclass
class Runs:
    """Per run: seconds to read (query_history / HistoryReader.raw), to render JSON, both; and the
    process's CPU seconds for both (every thread: less disturbed than wall time by a busy machine)."""

    read_s: list[float] = field(default_factory=list)
    encode_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    payload_bytes: int = 0
    points: int = 0

    def add(self, read_s: float, encode_s: float, cpu_s: float) -> None:
        self.read_s.append(read_s)
        self.encode_s.append(encode_s)
        self.total_s.append(read_s + encode_s)
        self.cpu_s.append(cpu_s)


@dataclass
class CaseResult:
    name: str
    cold: Runs
    warm: Runs
    base_cold: Runs
    base_warm: Runs
    raw_count: int = 0  # points before downsampling, all pens
    resolution: str = ""
    stages: dict[str, float] = field(default_factory=dict)  # seconds, all pens, one after the other


def drop_from_page_cache(directory: Path) -> None:
    """Ask the kernel to forget the cached pages of every file under directory."""
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


async def query_pens(runtime, reader, pens, start_ms: int, end_ms: int, max_points: int):
    """(query seconds, JSON seconds, payload bytes, answers): query_history of every pen at once."""
    from web.history_api import history_json  # noqa: PLC0415
    from web.history_query import query_history  # noqa: PLC0415

    started = time.perf_counter()
    answers = await asyncio.gather(*(query_history(runtime, tag, start_ms, end_ms, max_points, live=False,
                                                   now_ms=end_ms, reader=reader) for tag in pens))
    queried = time.perf_counter()
    payload = sum(len(json.dumps(history_json(answer), **JSON_OPTIONS).encode()) for answer in answers)
    return queried - started, time.perf_counter() - queried, payload, answers


def raw_baseline(reader, pens, start_ms: int, end_ms: int) -> tuple[float, float, int, int]:
    """(read seconds, JSON seconds, bytes, points): every raw point of every pen as JSON."""
    read_s = encode_s = 0.0
    payload = points = 0
    for tag in pens:
        started = time.perf_counter()
        series = reader.raw(tag.name, start_ms, end_ms)
        ts, values = np.asarray(series.ts_ms), np.asarray(series.value, dtype=np.float64)
        read = time.perf_counter()
        body = {"tag": tag.name, "ts_ms": ts.tolist(), "values": [None if v != v else v for v in values.tolist()]}
        payload += len(json.dumps(body, **JSON_OPTIONS).encode())
        encode_s += time.perf_counter() - read
        read_s += read - started
        points += len(ts)
    return read_s, encode_s, payload, points


async def measure_case(name: str, data_dir: Path, runtime, make_reader, pens, start_ms: int, end_ms: int,
                       runs: int, baseline_runs: int, max_points: int) -> CaseResult:
    result = CaseResult(name, Runs(), Runs(), Runs(), Runs())
    for _ in range(runs):
        drop_from_page_cache(data_dir)
        cpu = time.process_time()
        read_s, encode_s, payload, answers = await query_pens(runtime, make_reader(), pens, start_ms, end_ms,
                                                              max_points)
        result.cold.add(read_s, encode_s, time.process_time() - cpu)
    warm_reader = make_reader()
    await query_pens(runtime, warm_reader, pens, start_ms, end_ms, max_points)  # warms it up
    for _ in range(runs):
        cpu = time.process_time()
        read_s, encode_s, payload, answers = await query_pens(runtime, warm_reader, pens, start_ms, end_ms,
                                                              max_points)
        result.warm.add(read_s, encode_s, time.process_time() - cpu)
    for ours in (result.cold, result.warm):
        ours.payload_bytes, ours.points = payload, sum(len(answer.ts_ms) for answer in answers)
    result.raw_count = sum(answer.raw_count for answer in answers)
    result.resolution = ", ".join(sorted({answer.resolution for answer in answers}))
    result.stages = await time_stages(runtime, warm_reader, pens, start_ms, end_ms, max_points)
    for _ in range(baseline_runs):
        drop_from_page_cache(data_dir)
        cpu = time.process_time()
        read_s, encode_s, result.base_cold.payload_bytes, result.base_cold.points = raw_baseline(
            make_reader(), pens, start_ms, end_ms)
        result.base_cold.add(read_s, encode_s, time.process_time() - cpu)
    for _ in range(baseline_runs):  # the reader (and the page cache) warm from the runs before
        cpu = time.process_time()
        read_s, encode_s, result.base_warm.payload_bytes, result.base_warm.points = raw_baseline(
            warm_reader, pens, start_ms, end_ms)
        result.base_warm.add(read_s, encode_s, time.process_time() - cpu)
    return result


# --- where the time goes ------------------------------------------------------------------------

class Stopwatch:
    """Seconds spent in wrapped callables, summed per name."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        return timed

    def wrap_async(self, name: str, function):
        async def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        return timed


async def time_stages(runtime, reader, pens, start_ms: int, end_ms: int, max_points: int) -> dict[str, float]:
    """Where a warm query's time goes (seconds, all pens, one pen after the other): each tier's read
    alone (query_history overlaps them: the disk read runs in a worker thread, but both need the GIL),
    then query_history itself with merging and downsampling timed inside it, then the JSON body."""
    import web.history_query as history_query  # noqa: PLC0415
    from web.history_api import history_json  # noqa: PLC0415

    watch = Stopwatch()
    order = ["disk tier alone (read_disk)", "  reader.count_estimate", "  reader.rollup", "  reader.raw",
             "  reader.last_sample_before", "Redis tier alone (read_recent after the disk's newest)",
             "query_history (both tiers at once)", "  rollup_points", "  merge + dedupe", "  downsample",
             "history_json + json.dumps"]
    watch.seconds = dict.fromkeys(order, 0.0)
    timed_reader = SimpleNamespace(data_dir=getattr(reader, "data_dir", None), **{
        method: watch.wrap(f"  reader.{method}", getattr(reader, method))
        for method in ("count_estimate", "rollup", "raw", "last_sample_before")})
    read_disk = watch.wrap(order[0], history_query.read_disk)
    read_recent = watch.wrap_async(order[5], history_query.read_recent)
    query = watch.wrap_async(order[6], history_query.query_history)
    limit = 2 * runtime.config.history_samples_per_tag + history_query.REDIS_PAGE
    inside = ("rollup_points", "merge", "downsample")
    originals = {name: getattr(history_query, name) for name in inside}
    for tag in pens:
        part = read_disk(timed_reader, tag.name, start_ms, end_ms, history_query.RAW_BUDGET_PER_PEN)
        # As query_history does: Redis only from the disk tier's newest sample (minus the receive skew).
        newest_ms = int(part.raw.ts_ms[-1]) if len(part.raw) else None
        await read_recent(runtime.redis, tag, start_ms, end_ms, limit, disk_newest_ms=newest_ms)
        try:
            for name in inside:
                setattr(history_query, name, watch.wrap(f"  {name.replace('merge', 'merge + dedupe')}",
                                                        originals[name]))
            answer = await query(runtime, tag, start_ms, end_ms, max_points, live=False, now_ms=end_ms,
                                 reader=reader)
        finally:
            for name, function in originals.items():
                setattr(history_query, name, function)
        watch.wrap(order[-1], lambda: json.dumps(history_json(answer), **JSON_OPTIONS))()
    return {name: seconds for name, seconds in watch.seconds.items() if seconds}


# --- reporting ----------------------------------------------------------------------------------

def ms(values: list[float], fraction: float) -> str:
    return f"{1000 * percentile(values, fraction):,.0f}" if values else "-"


def report_case(result: CaseResult, pens: int, runs: int, baseline_runs: int) -> None:
    print()
    print(f"  {pens} pens x {result.name}: {result.raw_count:,} points before downsampling "
          f"(resolution {result.resolution}); {runs} runs each, baseline {baseline_runs}")
    print(f"  {'':36} {'p50 ms':>9} {'p99 ms':>9} {'read p50':>9} {'JSON p50':>9} {'CPU p50':>9} {'bytes sent':>13} "
          f"{'points':>11}")
    rows = [("(a) query_history + JSON, cold", result.cold), ("(a) query_history + JSON, warm", result.warm),
            ("(b) every raw point as JSON, cold", result.base_cold),
            ("(b) every raw point as JSON, warm", result.base_warm)]
    for label, runs_of in rows:
        print(f"  {label:36} {ms(runs_of.total_s, 0.5):>9} {ms(runs_of.total_s, 0.99):>9} "
              f"{ms(runs_of.read_s, 0.5):>9} {ms(runs_of.encode_s, 0.5):>9} {ms(runs_of.cpu_s, 0.5):>9} "
              f"{runs_of.payload_bytes:>13,} "
              f"{runs_of.points:>11,}")
    for temperature, ours, base in (("cold", result.cold, result.base_cold), ("warm", result.warm, result.base_warm)):
        print(f"  (b)/(a) {temperature}: time x{percentile(base.total_s, 0.5) / percentile(ours.total_s, 0.5):,.1f}, "
              f"bytes x{base.payload_bytes / max(ours.payload_bytes, 1):,.0f}")
    verdict = {True: "met", False: "MISSED"}
    print(f"  target < {1000 * TARGET_S:.0f} ms: warm p99 {verdict[percentile(result.warm.total_s, 0.99) < TARGET_S]}, "
          f"cold p99 {verdict[percentile(result.cold.total_s, 0.99) < TARGET_S]}; "
          f"target < {TARGET_BYTES / 1e6:g} MB sent: {verdict[result.warm.payload_bytes < TARGET_BYTES]}")
    print("  where the warm time goes, pen after pen (ms, all pens; indented: inside the line above):")
    for name, seconds in result.stages.items():
        print(f"    {name:50} {1000 * seconds:>9,.1f}")


# --- the recent tier ----------------------------------------------------------------------------

async def fill_recent(redis_url: str, signals, pen_indices: list[int], names: list[str], end_ms: int,
                      cap: int) -> int:
    """The newest `cap` samples of every pen before end_ms in sl:hist:<tag>, as TagStoreWriter leaves them:
    its encoding, approximate MAXLEN, entry ids = receive times (here source time + 20 ms). Entries written."""
    import redis.asyncio as aioredis  # noqa: PLC0415

    from domain.quality import quality_from_code  # noqa: PLC0415
    from domain.tag_value import TagValue  # noqa: PLC0415
    from tag_store import keys  # noqa: PLC0415
    from tag_store.codec import encode_tag_value  # noqa: PLC0415

    client = aioredis.Redis.from_url(redis_url)
    last_hour = (end_ms - 1) // HOUR_MS
    blocks = [signals.hour(hour, pen_indices) for hour in range(last_hour - cap // 3600 - 1, last_hour + 1)]
    tag = np.concatenate([b.tag for b in blocks])
    ts = np.concatenate([b.ts_ms for b in blocks])
    value = np.concatenate([b.value for b in blocks])
    quality = np.concatenate([b.quality for b in blocks])
    written = 0
    for index in pen_indices:
        mine = np.flatnonzero((tag == index) & (ts < end_ms))
        mine = mine[np.argsort(ts[mine], kind="stable")][-cap:]
        pipe = client.pipeline(transaction=False)
        for row in mine:
            t, code = int(ts[row]), int(quality[row])
            tv = TagValue(names[index], None if np.isnan(value[row]) else float(value[row]),
                          quality_from_code(code), t, t + 20)
            pipe.xadd(keys.history(names[index]), {"d": encode_tag_value(tv)}, id=f"{t + 20}-0",
                      maxlen=cap, approximate=True)
        await pipe.execute()
        written += len(mine)
    await client.aclose()
    return written


def plant_dict(names: list[str], data_dir: Path, cap: int) -> dict:
    units = {"TT": "degC", "LT": "%", "FT": "m3/h", "PT": "bar"}
    return {
        "site_name": "history query bench",
        "data_dir": str(data_dir),
        "history_samples_per_tag": cap,
        "sources": {"bench": {"kind": "mqtt", "host": "127.0.0.1", "port": 1}},
        "tags": [{"name": name, "source": "bench", "topic": f"bench/{i}", "unit": units[name.split(".")[1][:2]]}
                 for i, name in enumerate(names)],
    }


# --- Redis memory -------------------------------------------------------------------------------

@dataclass
class MemoryPoint:
    simulated_s: int
    samples: int
    used_bytes: int
    hist_entries: int  # XLEN of the first tag's sl:hist:<tag>
    samples_entries: int
    changes_entries: int
    historian_behind: int | None  # sl:samples entries not on disk yet (its heartbeat; None: no historian)


async def simulate_writes(redis_url: str, names: list[str], seconds: int, batch_samples: int, cap: int,
                          points: int, historian: bool) -> tuple[list[MemoryPoint], float]:
    """The real TagStoreWriter fed `seconds` simulated seconds of every tag as fast as it goes, flushed
    in batches of batch_samples; INFO memory `points` times along the way. (series, seconds taken)."""
    import redis.asyncio as aioredis  # noqa: PLC0415

    from bench.history_data import PlantSignals  # noqa: PLC0415
    from domain.quality import GOOD, quality_from_code  # noqa: PLC0415
    from domain.tag_value import TagValue  # noqa: PLC0415
    from tag_store.writer import TagStoreWriter  # noqa: PLC0415

    client = aioredis.Redis.from_url(redis_url)
    writer = TagStoreWriter(client, cap, max_batch=batch_samples, max_pending=10 * batch_samples + len(names))
    signals = PlantSignals(len(names), seed=7)
    start_s = int(time.time()) - seconds - 60  # source times end about now
    every_s = max(1, seconds // points)
    series: list[MemoryPoint] = []
    written, hour, started = 0, None, time.perf_counter()
    for second in range(seconds):
        t_s = start_s + second
        if hour != t_s // 3600:  # an hour of signals at a time, as (tag, second) grids
            hour = t_s // 3600
            block = signals.hour(hour)
            column = block.ts_ms // 1000 - hour * 3600
            value = np.full((len(names), 3600), np.nan)
            quality = np.zeros((len(names), 3600), dtype=np.uint32)
            present = np.zeros((len(names), 3600), dtype=bool)
            value[block.tag, column], quality[block.tag, column], present[block.tag, column] = \
                block.value, block.quality, True
        column_now, ts_ms = t_s - hour * 3600, t_s * 1000
        for index in np.flatnonzero(present[:, column_now]):
            code = int(quality[index, column_now])
            tv = TagValue(names[index], float(value[index, column_now]) if code == GOOD.code else None,
                          GOOD if code == GOOD.code else quality_from_code(code), ts_ms, ts_ms + 20)
            writer.submit(tv)
            written += 1
            if written % batch_samples == 0 and not await writer.flush_once():
                raise RuntimeError("the writer could not write to Redis")
        if (second + 1) % every_s == 0 or second == seconds - 1:
            await writer.drain()
            series.append(await memory_point(client, names[0], second + 1, written, historian))
            print(f"  ... memory: {(second + 1) / 3600:.2f} simulated h, {series[-1].used_bytes / 2**20:,.0f} MB "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    await writer.drain()
    took_s = time.perf_counter() - started
    await client.aclose()
    return series, took_s


async def memory_point(client, pen: str, simulated_s: int, samples: int, historian: bool) -> MemoryPoint:
    from historian.heartbeat import read_heartbeat  # noqa: PLC0415
    from tag_store import keys  # noqa: PLC0415

    info = await client.info("memory")
    pipe = client.pipeline(transaction=False)
    pipe.xlen(keys.history(pen))
    pipe.xlen(keys.SAMPLES)
    pipe.xlen(keys.CHANGES)
    hist, sample_entries, change_entries = await pipe.execute()
    behind = int((await read_heartbeat(client)).get("behind_entries", -1)) if historian else None
    return MemoryPoint(simulated_s, samples, int(info["used_memory"]), hist, sample_entries, change_entries, behind)


def plateau(series: list[MemoryPoint], cap: int, batch_samples: int) -> list[MemoryPoint]:
    """The points of the second half of the run taken after every stream had reached its cap."""
    from tag_store import keys  # noqa: PLC0415

    full = [i for i, p in enumerate(series) if p.hist_entries >= cap
            and p.samples_entries >= keys.feed_maxlen(keys.SAMPLES_BUDGET_SAMPLES, batch_samples)
            and p.changes_entries >= keys.feed_maxlen(keys.CHANGES_BUDGET_SAMPLES, batch_samples)]
    if not full:
        return []
    return [p for p in series[full[0] + 1:] if p.simulated_s >= series[-1].simulated_s / 2]


def report_memory(series: list[MemoryPoint], tags: int, batch_samples: int, cap: int, took_s: float,
                  key_sizes: dict[str, int]) -> None:
    print()
    last = series[-1]
    print(f"  Redis memory: {tags:,} tags x {last.simulated_s / 3600:g} simulated h ({last.samples:,} samples "
          f"written in {took_s:.0f} s, {last.samples / took_s:,.0f}/s), writer batches of {batch_samples} "
          f"samples; caps: sl:hist:<tag> {cap:,}, sl:changes and sl:samples in samples (tag_store/keys.py)")
    print(f"  {'simulated':>10} {'samples':>12} {'used_memory MB':>15} {'sl:hist:<tag>':>14} {'sl:samples':>11} "
          f"{'sl:changes':>11} {'historian behind':>17}")
    for point in series:
        behind = {None: "-", -1: "unknown"}.get(point.historian_behind) or f"{point.historian_behind:,} entries"
        print(f"  {point.simulated_s / 3600:>9.2f}h {point.samples:>12,} {point.used_bytes / 2**20:>15,.1f} "
              f"{point.hist_entries:>14,} {point.samples_entries:>11,} {point.changes_entries:>11,} {behind:>17}")
    flat = plateau(series, cap, batch_samples)
    if len(flat) < 3:
        print("  flat: not known: fewer than 3 points in the second half after every stream reached its cap "
              "(a longer --memory-hours)")
    else:
        mb = np.array([p.used_bytes / 2**20 for p in flat])
        slope = float(np.polyfit([p.simulated_s / 3600 for p in flat], mb, 1)[0])
        spread = (mb.max() - mb.min()) / mb.mean()
        print(f"  from {flat[0].simulated_s / 3600:.2f} h (every cap reached, second half) to the end: "
              f"{mb.min():,.1f} to {mb.max():,.1f} MB ({100 * spread:.1f} % of the mean; approximate MAXLEN "
              f"trims whole nodes), slope {slope:+,.2f} MB per simulated hour; flat (within 2 %): "
              f"{'yes' if spread < 0.02 else 'NO'}")
    if key_sizes:
        print("  at the end, MEMORY USAGE: " + ", ".join(f"{name} {size / 2**20:,.1f} MB"
                                                         for name, size in key_sizes.items()))


def wait_for_historian(redis_url: str, process: subprocess.Popen, log_file: Path, timeout_s: float = 60.0) -> None:
    """Until `python -m historian` writes its first heartbeat (it has read its cursor and the feed)."""
    import redis  # noqa: PLC0415

    from historian.heartbeat import HEARTBEAT_KEY  # noqa: PLC0415

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout_s
    try:
        while not client.exists(HEARTBEAT_KEY):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the historian did not start:\n{log_file.read_text()[-3000:]}")
            time.sleep(0.2)
    finally:
        client.close()


def measure_memory(args, names: list[str], cap: int, work_dir: Path, cleanup: contextlib.ExitStack) -> None:
    import redis  # noqa: PLC0415

    from launcher.embedded_servers import RedisServer, stop_process  # noqa: PLC0415
    from tag_store import keys  # noqa: PLC0415

    seconds = int(args.memory_hours * 3600)
    for batch_samples in (int(b) for b in args.batch_samples.split(",")):
        run_dir = work_dir / f"memory-{batch_samples}"
        server = RedisServer(run_dir / "redis", persistent=False)
        cleanup.callback(server.stop)
        server.start()
        if args.historian:
            plant_file = run_dir / "plant.yaml"
            plant_file.write_text(json.dumps(plant_dict(names, run_dir / "data", cap)))  # JSON is YAML
            log_file = (run_dir / "historian.log").open("wb")
            cleanup.callback(log_file.close)
            historian = subprocess.Popen([sys.executable, "-m", "historian", "--config", str(plant_file)],
                                         env={**os.environ, "REDIS_URL": server.url}, stdout=log_file,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            cleanup.callback(stop_process, historian, 10)
            wait_for_historian(server.url, historian, run_dir / "historian.log")
        series, took_s = asyncio.run(simulate_writes(server.url, names, seconds, batch_samples, cap,
                                                     args.memory_points, args.historian))
        client = redis.Redis.from_url(server.url)
        key_sizes = {name: int(client.memory_usage(key, samples=0) or 0)
                     for name, key in (("sl:changes", keys.CHANGES), ("sl:samples", keys.SAMPLES),
                                       ("sl:latest", keys.LATEST))}
        one_hist = int(client.memory_usage(keys.history(names[0]), samples=0) or 0)
        key_sizes[f"sl:hist:<tag> x {len(names)} (one x {len(names)})"] = one_hist * len(names)
        heartbeat = {k.decode(): v.decode() for k, v in client.hgetall("sl:historian").items()}
        client.close()
        report_memory(series, len(names), batch_samples, cap, took_s, key_sizes)
        if args.historian:
            print("  the historian's heartbeat at the end: " + ", ".join(
                f"{name} {heartbeat.get(name, '?')}" for name in
                ("state", "behind_entries", "buffered_samples", "dropped_samples", "disk_bytes", "last_error")))
        server.stop()


# --- the run ------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.history_query", description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1_000, help="tags at 1 sample/s")
    parser.add_argument("--hours", type=int, default=24, help="hours of history of every tag (the short query)")
    parser.add_argument("--days", type=int, default=30, help="days of history of the pens (the long query)")
    parser.add_argument("--pens", type=int, default=8, help="pens per query (tags spread over the plant)")
    parser.add_argument("--reuse", action="store_true",
                        help="use the history generated by an earlier run with the same parameters, if any")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "stacklight-bench-history",
                        help="where generated history is kept between runs")
    parser.add_argument("--runs", type=int, default=10, help="cold and warm runs of each query")
    parser.add_argument("--baseline-runs", type=int, default=3, help="cold and warm runs of the raw baseline")
    parser.add_argument("--long-baseline-runs", type=int, default=1,
                        help="cold and warm runs of the raw baseline over --days (tens of seconds each)")
    parser.add_argument("--max-points", type=int, default=2_000, help="max_points per pen (the trend's default)")
    parser.add_argument("--skip-queries", action="store_true", help="only the Redis memory simulation")
    parser.add_argument("--skip-memory", action="store_true", help="no Redis memory simulation")
    parser.add_argument("--memory-hours", type=float, default=3.0,
                        help="simulated hours of every tag in the memory part: every cap is reached after "
                             "about 1 h (sl:hist:<tag> at history_samples_per_tag samples)")
    parser.add_argument("--memory-tags", type=int, default=None, help="tags in the memory part (default --tags)")
    parser.add_argument("--batch-samples", default="1000",
                        help="samples per writer batch in the memory part, one simulation per number (comma "
                             "separated): 1000 = every tag at once each second (an OPC UA publish), 20 = the "
                             "tags spread over the second (MQTT) at the writer's 20 ms flush interval")
    parser.add_argument("--memory-points", type=int, default=24, help="INFO memory samples along the way")
    parser.add_argument("--historian", action="store_true",
                        help="run `python -m historian` on the memory part's Redis (its lag is printed)")
    return parser.parse_args(argv)


def _exit_on_sigterm(_signum, _frame) -> None:
    raise SystemExit(143)  # unwinds through every `finally`, as Ctrl-C does


def measure_queries(args, names: list[str], cap: int, work_dir: Path, cleanup: contextlib.ExitStack) -> None:
    import redis.asyncio as aioredis  # noqa: PLC0415

    from bench.history_data import PlantSignals, ensure_dataset  # noqa: PLC0415
    from domain.config_model import PlantConfig  # noqa: PLC0415
    from historian.reader import HistoryReader  # noqa: PLC0415
    from launcher.embedded_servers import RedisServer  # noqa: PLC0415

    pen_indices = sorted({int(round(i)) for i in np.linspace(0, args.tags - 1, args.pens)})
    dataset = ensure_dataset(args.cache_dir, args.tags, args.hours, args.days, pen_indices, reuse=args.reuse)
    print(f"History query: {dataset.description}; {os.cpu_count()} cores", flush=True)
    server = RedisServer(work_dir / "redis", persistent=False)
    cleanup.callback(server.stop)
    server.start()
    started = time.perf_counter()
    entries = asyncio.run(fill_recent(server.url, PlantSignals(args.tags, seed=dataset.seed), pen_indices,
                                      names, dataset.end_ms, cap))
    print(f"  recent tier: {entries:,} entries in sl:hist:<pen> for {len(pen_indices)} pens, "
          f"overlapping the files ({time.perf_counter() - started:.1f} s)", flush=True)
    config = PlantConfig.model_validate(plant_dict(names, dataset.data_dir, cap))
    pens = [config.tag(names[i]) for i in pen_indices]
    cases = [(f"{args.hours} h", dataset.end_ms - args.hours * HOUR_MS, args.baseline_runs),
             (f"{args.days} days", dataset.end_ms - args.days * DAY_MS, args.long_baseline_runs)]

    async def measure_all() -> list[CaseResult]:
        client = aioredis.Redis.from_url(server.url)
        runtime = SimpleNamespace(redis=client, config=config)
        results = []
        for name, start_ms, baseline_runs in cases:
            results.append(await measure_case(name, dataset.data_dir, runtime, lambda: HistoryReader(dataset.data_dir),
                                              pens, start_ms, dataset.end_ms, args.runs, baseline_runs,
                                              args.max_points))
            print(f"  ... {len(pens)} pens x {name} measured", flush=True)
        await client.aclose()
        return results

    results = asyncio.run(measure_all())
    server.stop()
    for result, (_name, _start, baseline_runs) in zip(results, cases):
        report_case(result, len(pens), args.runs, baseline_runs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.history_data import tag_name  # noqa: PLC0415
    from domain.config_model import PlantConfig  # noqa: PLC0415

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cap = PlantConfig.model_fields["history_samples_per_tag"].default
    with contextlib.ExitStack() as cleanup:
        work_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="stacklight-bench-")))
        if not args.skip_queries:
            measure_queries(args, [tag_name(i) for i in range(args.tags)], cap, work_dir, cleanup)
        if not args.skip_memory:
            measure_memory(args, [tag_name(i) for i in range(args.memory_tags or args.tags)], cap, work_dir,
                           cleanup)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every child and the temporary directory are gone by now
        print("interrupted", file=sys.stderr)
        sys.exit(130)
