"""Alarm engine benchmark: the real engine process following sl:changes, against a bare reader.

    python -m bench.alarm_engine --alarms 10000 --updates-per-s 10000 --seconds 20
    python -m bench.alarm_engine --alarms 10000 --mix mixed
    python -m bench.alarm_engine --alarms 10000 --profile     # the engine in-process under cProfile

Starts a private, non-persistent redis-server and a feeder in its own process that
writes tag changes exactly as the tag-store writer does (HSET sl:latest, one XADD to
sl:changes per batch, field "b" = {tag: encoded TagValue}), --batch-tags tags per batch
at --updates-per-s. Every update moves its tag a little (analog noise); a fraction
(--crossing-fraction) moves it into the next band (normal <-> H <-> HH, normal <-> L <-> LL,
a bool flips), so that alarms go in and out. The plant is built in code: --alarms
alarms over 4-alarm tags (--mix limits: HH/H/L/LL on every tag; --mix mixed: also
deviation from a setpoint tag, rate of change, discrete bool tags and bad-quality
alarms). Then, one after the other, for windows of the same length:
  (a) a bare reader: XREAD of sl:changes and json.loads of each batch (the floor any
      engine pays), in its own process;
  (b) `python -m alarm_engine` with the generated plant file, as in production.
Reports updates/s consumed (from the engine's cursor sl:alarm:cursor against the
stream), lag at the end of the window, delay from a change (its sl:changes entry
id, Redis' clock) to the transition it caused (its journal entry id, written in
the same MULTI as sl:alarms), CPU of every process, and (b)/(a). Everything lives
in a temporary directory that is removed at the end, also on Ctrl-C.
"""
from __future__ import annotations

import argparse
import bisect
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import percentile, process_cpu_s

WARMUP_S = 3.0
DRAIN_TIMEOUT_S = 120.0
# Bands of an analog tag: value and noise. Limits HH 90, H 80, L 20, LL 10, deadband 2 each.
BANDS = {"LL": 5.0, "L": 15.0, "N": 50.0, "H": 85.0, "HH": 95.0}
NEXT_BANDS = {"LL": ["L"], "L": ["LL", "N"], "N": ["L", "H"], "H": ["N", "HH"], "HH": ["H"]}
SETPOINT = 50.0


def tag_name(index: int) -> str:
    return f"B{index:05d}.pv"


# --- the plant ----------------------------------------------------------------------------------


def build_plant(alarms: int, mix: str) -> tuple[dict, list[tuple[str, str]]]:
    """A plant file (as a dict) with `alarms` alarms, and the feed plan: (tag, signal) per tag."""
    limit = {"deadband": 2.0}
    four_limits = {"high_high": {"limit": 90.0, **limit}, "high": {"limit": 80.0, **limit},
                   "low": {"limit": 20.0, **limit}, "low_low": {"limit": 10.0, **limit, "priority": 1}}
    tags: list[dict] = []
    plan: list[tuple[str, str]] = []
    count, index = 0, 0
    # mixed: per 4 tags, 2 with HH/H/L/LL, 1 with H/L/deviation/rate of change (+ its setpoint tag),
    # 1 bool with a discrete alarm; every tag with process alarms also gets the plant's bad-quality alarm.
    pattern = ["limits"] if mix == "limits" else ["limits", "limits", "pv", "discrete"]
    while count < alarms:
        name = tag_name(index)
        kind = pattern[index % len(pattern)]
        tag: dict = {"name": name, "source": "bench", "topic": f"bench/{index}", "area": f"Area{index % 10}"}
        if kind == "limits":
            tag["alarms"] = four_limits
            plan.append((name, "analog"))
        elif kind == "pv":
            setpoint = f"B{index:05d}.sp"
            tags.append({"name": setpoint, "source": "bench", "topic": f"bench/{index}/sp"})
            plan.append((setpoint, "setpoint"))
            tag["alarms"] = {"high": four_limits["high"], "low": four_limits["low"],
                             "deviation": {"setpoint_tag": setpoint, "limit": 20.0, "deadband": 2.0},
                             "rate_of_change": {"limit_per_s": 2.0, "deadband_per_s": 0.5, "window_s": 5.0}}
            plan.append((name, "analog"))
        else:
            tag.update(data_type="bool", alarms={"discrete": {"normal": False, "priority": 2}})
            plan.append((name, "bool"))
        tags.append(tag)
        count += len(tag["alarms"]) + (1 if mix == "mixed" else 0)
        index += 1
    plant = {
        "site_name": "alarm engine bench",
        "alarm_system": {"bad_quality_default": {"priority": 3, "on_delay_s": 10.0} if mix == "mixed" else None},
        "sources": {"bench": {"kind": "mqtt", "host": "127.0.0.1", "port": 1}},
        "tags": tags,
    }
    return plant, plan


def count_alarms(plant: dict) -> int:
    from alarm_engine.alarm_catalog import build_catalog  # noqa: PLC0415
    from domain.config_model import PlantConfig  # noqa: PLC0415

    return len(build_catalog(PlantConfig.model_validate(plant)).alarms)


# --- the feeder process -------------------------------------------------------------------------


class Signals:
    """Each tag's next value: noise within its band, and now and then a move to the next band."""

    def __init__(self, plan: list[tuple[str, str]], crossing_fraction: float, seed: int = 1):
        self._random = random.Random(seed)
        self._plan = plan
        self._crossing = crossing_fraction
        self._band = {tag: "N" for tag, signal in plan if signal == "analog"}
        self._on = {tag: False for tag, signal in plan if signal == "bool"}

    def next(self, tag: str, signal: str) -> tuple[float | bool, bool]:
        """(value, crossed): crossed when this update moves the tag into another band."""
        crossed = self._random.random() < self._crossing
        if signal == "bool":
            if crossed:
                self._on[tag] = not self._on[tag]
            return self._on[tag], crossed
        if signal == "setpoint":
            return SETPOINT, False
        if crossed:
            self._band[tag] = self._random.choice(NEXT_BANDS[self._band[tag]])
        band = self._band[tag]
        return round(BANDS[band] + self._random.uniform(-1.0, 1.0), 6), crossed


def feed(redis_url: str, plan_file: Path, updates_per_s: float, batch_tags: int, crossing_fraction: float,
         log_file: Path) -> None:
    """Write batches like TagStoreWriter.flush_once (without the history script, which the engine never
    reads); log one line per batch 'B entry_id tags' and per band crossing 'X entry_id tag value'."""
    import redis  # noqa: PLC0415

    from domain.quality import GOOD  # noqa: PLC0415
    from domain.tag_value import TagValue  # noqa: PLC0415
    from tag_store import keys  # noqa: PLC0415
    from tag_store.codec import encode_tag_value  # noqa: PLC0415

    plan = [tuple(item) for item in json.loads(plan_file.read_text())]
    signals = Signals(plan, crossing_fraction)
    client = redis.Redis.from_url(redis_url)
    period_s = batch_tags / updates_per_s
    parent, position = os.getppid(), 0
    now_ms = time.time_ns() // 1_000_000
    initial = {tag: encode_tag_value(TagValue(tag, False if signal == "bool" else
                                              (SETPOINT if signal == "setpoint" else BANDS["N"]), GOOD, now_ms, now_ms))
               for tag, signal in plan}
    client.hset(keys.LATEST, mapping=initial)
    print("ready", flush=True)
    next_batch = time.monotonic()
    with log_file.open("a", buffering=1) as log:
        while os.getppid() == parent:  # the bench died without stopping us: stop too
            now_ms = time.time_ns() // 1_000_000
            latest: dict[str, str] = {}
            crossings = []
            for _ in range(batch_tags):
                tag, signal = plan[position % len(plan)]
                position += 1
                value, crossed = signals.next(tag, signal)
                latest[tag] = encode_tag_value(TagValue(tag, value, GOOD, now_ms, now_ms))
                if crossed:
                    crossings.append((tag, value))
            changes = "{" + ",".join(f"{json.dumps(tag)}:{value}" for tag, value in latest.items()) + "}"
            pipe = client.pipeline(transaction=False)
            pipe.hset(keys.LATEST, mapping=latest)
            pipe.xadd(keys.CHANGES, {"b": changes}, maxlen=keys.feed_maxlen(keys.CHANGES_BUDGET_SAMPLES, len(latest)),
                      approximate=True)
            entry_id = pipe.execute()[1].decode()
            log.write(f"B {entry_id} {len(latest)}\n"
                      + "".join(f"X {entry_id} {tag} {value!r}\n" for tag, value in crossings))
            next_batch += period_s
            time.sleep(max(0.0, next_batch - time.monotonic()))


@dataclass
class FeedLog:
    entry_ids: list[tuple[int, int]] = field(default_factory=list)
    cumulative: list[int] = field(default_factory=list)  # updates up to and including entry i
    # (tag, str(value)) -> ids of the entries that moved the tag into that value's band
    crossings: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> FeedLog:
        log, total = cls(), 0
        for line in path.read_text().splitlines():
            parts = line.split(" ")
            if parts[0] == "B":
                total += int(parts[2])
                log.entry_ids.append(parse_id(parts[1]))
                log.cumulative.append(total)
            elif parts[0] == "X":
                log.crossings.setdefault((parts[2], parts[3]), []).append(parse_id(parts[1]))
        return log

    def updates_up_to(self, entry_id: tuple[int, int]) -> int:
        """Updates in the entries up to and including entry_id."""
        at = bisect.bisect_right(self.entry_ids, entry_id)
        return self.cumulative[at - 1] if at else 0

    def updates_between_ms(self, start_ms: int, end_ms: int) -> int:
        return self.updates_up_to((end_ms, 2**63)) - self.updates_up_to((start_ms - 1, 2**63))

    def change_that_caused(self, tag: str, value: str, journal_id: tuple[int, int]) -> tuple[int, int] | None:
        """The newest band crossing of tag to this value written before the journal entry."""
        ids = self.crossings.get((tag, value))
        if not ids:
            return None
        at = bisect.bisect_right(ids, journal_id)
        return ids[at - 1] if at else None


def parse_id(entry_id: str | bytes) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


# --- (a) the bare reader process ----------------------------------------------------------------


async def bare_read(redis_url: str, start_ms: int, end_ms: int) -> None:
    """XREAD + json.loads, as the engine's loop reads; prints the updates in entries of the window."""
    import redis.asyncio as aioredis  # noqa: PLC0415

    from tag_store import keys  # noqa: PLC0415

    client = aioredis.Redis.from_url(redis_url)
    cursor, updates, newest_ms = "$", 0, 0
    while newest_ms < end_ms:
        replies = await client.xread({keys.CHANGES: cursor}, block=1000, count=200)
        for _stream, entries in replies or []:
            for entry_id, fields in entries:
                batch = json.loads(fields[b"b"])
                cursor = entry_id
                newest_ms = parse_id(entry_id)[0]
                if start_ms <= newest_ms <= end_ms:
                    updates += len(batch)
    await client.aclose()
    print(json.dumps({"updates": updates}), flush=True)


# --- (b) the engine -----------------------------------------------------------------------------


@dataclass
class EngineWindow:
    start_ms: int = 0
    end_ms: int = 0
    cursor_start: tuple[int, int] = (0, 0)
    cursor_end: tuple[int, int] = (0, 0)
    newest_at_end: tuple[int, int] = (0, 0)
    lag_samples_ms: list[int] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    drain_s: float | None = None
    journal_from: str = "0-0"


def read_cursor(client) -> tuple[int, int] | None:
    from tag_store import keys  # noqa: PLC0415

    raw = client.get(keys.ALARM_ENGINE_CURSOR)
    return None if raw is None else parse_id(raw)


def newest_change(client) -> tuple[int, int]:
    from tag_store import keys  # noqa: PLC0415

    newest = client.xrevrange(keys.CHANGES, count=1)
    return parse_id(newest[0][0]) if newest else (0, 0)


def wait_for_cursor(client, engine: subprocess.Popen | None, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while read_cursor(client) is None:
        if engine is not None and engine.poll() is not None:
            raise RuntimeError(f"the alarm engine exited with code {engine.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError("the alarm engine wrote no cursor")
        time.sleep(0.1)


def measure_window(client, seconds: float, pids: dict[str, int]) -> EngineWindow:
    """The window: cursor and CPU at both ends, the lag every second."""
    from tag_store import keys  # noqa: PLC0415

    window = EngineWindow()
    last_journal = client.xrevrange(keys.ALARM_JOURNAL, count=1)
    window.journal_from = last_journal[0][0].decode() if last_journal else "0-0"
    time.sleep(WARMUP_S)
    cpu_start = {name: process_cpu_s(pid) for name, pid in pids.items()}
    window.start_ms, window.cursor_start = int(time.time() * 1000), read_cursor(client)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - started))))
        window.lag_samples_ms.append(int(time.time() * 1000) - read_cursor(client)[0])
    window.end_ms, window.cursor_end = int(time.time() * 1000), read_cursor(client)
    window.newest_at_end = newest_change(client)
    window.cpu_s = {name: process_cpu_s(pid) - cpu_start[name] for name, pid in pids.items()}
    return window


def drain(client, stop_feeder) -> float | None:
    """Stop the feed; how long until the engine has consumed the last entry (None: not within the timeout)."""
    stop_feeder()
    newest, started = newest_change(client), time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        if read_cursor(client) >= newest:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def transition_delays(client, log: FeedLog, window: EngineWindow) -> tuple[list[float], int, int]:
    """Delays change -> journal entry of the transitions that band crossings in the window caused;
    with the count of all transitions journalled for changes in the window and of those matched."""
    from tag_store import keys  # noqa: PLC0415

    delays, journalled = [], 0
    cursor = window.journal_from
    while True:
        entries = client.xrange(keys.ALARM_JOURNAL, min=f"({cursor}", count=10_000)
        if not entries:
            break
        cursor = entries[-1][0].decode()
        for entry_id, fields in entries:
            journal_id = parse_id(entry_id)
            cause = log.change_that_caused(fields[b"tag"].decode(), fields[b"value"].decode(), journal_id)
            if cause is not None and window.start_ms <= cause[0] <= window.end_ms:
                delays.append(journal_id[0] - cause[0])
            if window.start_ms <= journal_id[0] <= window.end_ms:
                journalled += 1
    return delays, journalled, len(delays)


async def profile_engine(redis_url: str, plant: dict, seconds: float, top: int) -> str:
    """The engine in this process under cProfile for WARMUP_S + seconds; the hot spots as text."""
    import asyncio  # noqa: PLC0415

    import redis.asyncio as aioredis  # noqa: PLC0415

    from alarm_engine.engine import AlarmEngine  # noqa: PLC0415
    from domain.config_model import PlantConfig  # noqa: PLC0415
    from tag_store import keys  # noqa: PLC0415
    from tag_store.cancellation import cancel_and_wait  # noqa: PLC0415

    client = aioredis.Redis.from_url(redis_url)
    engine = AlarmEngine(client, PlantConfig.model_validate(plant))
    task = asyncio.create_task(engine.run())
    while await client.get(keys.ALARM_ENGINE_CURSOR) is None:
        await asyncio.sleep(0.1)
    await asyncio.sleep(WARMUP_S)
    profiler = cProfile.Profile()
    profiler.enable()
    await asyncio.sleep(seconds)
    profiler.disable()
    await cancel_and_wait([task])
    await client.aclose()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return text.getvalue()


# --- the run ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.alarm_engine", description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=10_000, help="alarms configured (about; whole tags)")
    parser.add_argument("--updates-per-s", "--rate-hz", dest="updates_per_s", type=float, default=10_000.0,
                        help="tag updates per second offered on sl:changes, all tags in turn")
    parser.add_argument("--batch-tags", type=int, default=100, help="tags per sl:changes entry")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured window")
    parser.add_argument("--crossing-fraction", type=float, default=0.01,
                        help="share of updates that move their tag into the next band (causing a transition)")
    parser.add_argument("--mix", choices=("limits", "mixed"), default="limits")
    parser.add_argument("--profile", action="store_true",
                        help="run the engine in this process under cProfile instead of `python -m alarm_engine`")
    parser.add_argument("--top", type=int, default=30, help="functions shown with --profile")
    parser.add_argument("--engine-module", default="alarm_engine",
                        help="the module run as `python -m MODULE --config FILE` (to measure a variant)")
    parser.add_argument("--feed", nargs=4, metavar=("REDIS_URL", "PLAN", "LOG", "CROSSING"), help=argparse.SUPPRESS)
    parser.add_argument("--bare-read", nargs=3, metavar=("REDIS_URL", "START_MS", "END_MS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _exit_on_sigterm(_signum, _frame) -> None:
    raise SystemExit(143)  # unwinds through every `finally` below, as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.feed:
        redis_url, plan, log, crossing = args.feed
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            feed(redis_url, Path(plan), args.updates_per_s, args.batch_tags, float(crossing), Path(log))
        return 0
    if args.bare_read:
        import asyncio  # noqa: PLC0415

        redis_url, start_ms, end_ms = args.bare_read
        asyncio.run(bare_read(redis_url, int(start_ms), int(end_ms)))
        return 0
    import redis  # noqa: PLC0415

    from launcher.embedded_servers import RedisServer, stop_process  # noqa: PLC0415

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    plant, plan = build_plant(args.alarms, args.mix)
    alarm_count = count_alarms(plant)
    with contextlib.ExitStack() as cleanup:
        work_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="stacklight-bench-")))
        server = RedisServer(work_dir / "redis", persistent=False)
        cleanup.callback(server.stop)
        server.start()
        client = redis.Redis.from_url(server.url)
        cleanup.callback(client.close)
        plant_file, plan_file, log_file = work_dir / "plant.yaml", work_dir / "plan.json", work_dir / "feed.log"
        plant_file.write_text(json.dumps(plant))  # JSON is YAML
        plan_file.write_text(json.dumps(plan))
        feeder = subprocess.Popen(
            [sys.executable, "-m", "bench.alarm_engine", "--feed", server.url, str(plan_file), str(log_file),
             str(args.crossing_fraction), "--updates-per-s", str(args.updates_per_s),
             "--batch-tags", str(args.batch_tags)],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        cleanup.callback(stop_process, feeder, 5)
        if feeder.stdout.readline().strip() != "ready":
            raise RuntimeError("the feeder process did not start")
        alarmed_tags = sum(1 for tag in plant["tags"] if tag.get("alarms"))
        print(f"Alarm engine: {alarm_count:,} alarms on {alarmed_tags:,} tags ({args.mix}; {len(plan):,} tags fed), "
              f"{args.updates_per_s:,.0f} updates/s offered in entries of {args.batch_tags} tags, "
              f"{100 * args.crossing_fraction:g} % of updates cross a band; {args.seconds:g} s window per phase; "
              f"{os.cpu_count()} cores", flush=True)

        # (a) the bare reader
        start_ms = int(time.time() * 1000 + WARMUP_S * 1000)
        end_ms = start_ms + int(args.seconds * 1000)
        reader = subprocess.Popen([sys.executable, "-m", "bench.alarm_engine", "--bare-read", server.url,
                                   str(start_ms), str(end_ms)], stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        cleanup.callback(stop_process, reader, 5)
        time.sleep(max(0.0, start_ms / 1000 - time.time()))
        cpu_before = {"reader": process_cpu_s(reader.pid), "redis": process_cpu_s(server.process.pid),
                      "feeder": process_cpu_s(feeder.pid)}
        time.sleep(max(0.0, end_ms / 1000 - time.time()))
        bare_cpu = {"reader": process_cpu_s(reader.pid) - cpu_before["reader"],
                    "redis": process_cpu_s(server.process.pid) - cpu_before["redis"],
                    "feeder": process_cpu_s(feeder.pid) - cpu_before["feeder"]}
        bare_updates = json.loads(reader.communicate(timeout=30)[0])["updates"]
        print("  ... bare reader done", flush=True)

        # (b) the engine
        if args.profile:
            import asyncio  # noqa: PLC0415

            report_text = asyncio.run(profile_engine(server.url, plant, args.seconds, args.top))
            stop_process(feeder, 5)
            print(f"  the engine in-process under cProfile for {args.seconds:g} s (the profiler slows it:"
                  " read the shares, not the times)")
            print(report_text)
            return 0
        engine_log = (work_dir / "alarm_engine.log").open("wb")
        engine = subprocess.Popen([sys.executable, "-m", args.engine_module, "--config", str(plant_file)],
                                  env={**os.environ, "REDIS_URL": server.url}, stdout=engine_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        cleanup.callback(stop_process, engine, 5)
        started = time.monotonic()
        wait_for_cursor(client, engine)
        load_s = time.monotonic() - started
        window = measure_window(client, args.seconds, {"engine": engine.pid, "redis": server.process.pid,
                                                      "feeder": feeder.pid})
        window.drain_s = drain(client, lambda: stop_process(feeder, 5))
        log = FeedLog.read(log_file)
        delays, journalled, matched = transition_delays(client, log, window)
        if engine.poll() is not None:
            print((work_dir / "alarm_engine.log").read_text()[-3000:], file=sys.stderr)
            raise RuntimeError(f"the alarm engine exited with code {engine.returncode}")
        report(args, window, log, load_s, delays, journalled, matched, bare_updates, bare_cpu)
    return 0


def report(args, window: EngineWindow, log: FeedLog, load_s: float, delays: list[float], journalled: int,
           matched: int, bare_updates: int, bare_cpu: dict[str, float]) -> None:
    span_s = (window.end_ms - window.start_ms) / 1000
    offered = log.updates_between_ms(window.start_ms, window.end_ms) / span_s
    consumed = (log.updates_up_to(window.cursor_end) - log.updates_up_to(window.cursor_start)) / span_s
    behind_updates = log.updates_up_to(window.newest_at_end) - log.updates_up_to(window.cursor_end)
    bare_rate = bare_updates / args.seconds
    engine_cpu, bare_reader_cpu = window.cpu_s["engine"] / span_s, bare_cpu["reader"] / args.seconds
    print()
    print(f"  {'':38} {'(a) bare reader':>18} {'(b) alarm engine':>18} {'(b)/(a)':>9}")
    print(f"  {'updates offered /s':38} {'':>18} {offered:>18,.0f}")
    print(f"  {'updates consumed /s':38} {bare_rate:>18,.0f} {consumed:>18,.0f} {consumed / bare_rate:>9.2f}")
    print(f"  {'CPU, % of one core':38} {100 * bare_reader_cpu:>18.1f} {100 * engine_cpu:>18.1f} "
          f"{engine_cpu / bare_reader_cpu if bare_reader_cpu else float('nan'):>9.1f}")
    bare_us, engine_us = 1e6 * bare_cpu["reader"] / max(bare_updates, 1), \
        1e6 * window.cpu_s["engine"] / max(consumed * span_s, 1)
    print(f"  {'CPU us per update':38} {bare_us:>18.1f} {engine_us:>18.1f} {engine_us / bare_us:>9.1f}")
    print(f"  {'redis-server CPU, % of one core':38} {100 * bare_cpu['redis'] / args.seconds:>18.1f} "
          f"{100 * window.cpu_s['redis'] / span_s:>18.1f}")
    print(f"  {'feeder CPU, % of one core':38} {100 * bare_cpu['feeder'] / args.seconds:>18.1f} "
          f"{100 * window.cpu_s['feeder'] / span_s:>18.1f}")
    print()
    kept_up = consumed >= 0.98 * offered and window.end_ms - window.cursor_end[0] < 1000
    print(f"  engine keeps up                        {'yes' if kept_up else 'NO'} (at most "
          f"{1e6 / engine_us if engine_us else float('nan'):,.0f} updates/s per core at this CPU cost)")
    print(f"  engine start (load + first snapshot)   {load_s:.1f} s")
    print(f"  lag at the end of the window           {behind_updates:,} updates "
          f"({window.end_ms - window.cursor_end[0]:,} ms behind the clock; max over the window "
          f"{max(window.lag_samples_ms, default=0):,} ms)")
    print(f"  drain after the feed stopped           "
          + (f"{window.drain_s:.1f} s" if window.drain_s is not None else f"not done in {DRAIN_TIMEOUT_S:.0f} s"))
    print(f"  transitions journalled in the window   {journalled:,} "
          f"({journalled / span_s:,.0f}/s; {100 * journalled / max(consumed * span_s, 1):.2f} % of updates)")
    print(f"  change -> transition in sl:alarms      p50 {percentile(delays, 0.5):,.0f} ms, "
          f"p99 {percentile(delays, 0.99):,.0f} ms, max {max(delays, default=float('nan')):,.0f} ms "
          f"({matched:,} transitions caused by band crossings in the window; Redis entry ids)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every child and the temporary directory are gone by now
        print("interrupted", file=sys.stderr)
        sys.exit(130)
