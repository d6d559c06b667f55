"""OPC UA ingest benchmark: a bare asyncua subscription vs the Stacklight OPC UA source into Redis.

    python -m bench.ingest_opcua --tags 2000 --rate-hz 10 --seconds 20
    python -m bench.ingest_opcua --tags 10000 --rate-hz 1 --connections 2


Starts a private, non-persistent redis-server and an asyncua server in a separate
process (N Double variables, all changed rate_hz times a second, SourceTimestamp
set). Then, one after the other and for the same window:
  (a) a bare asyncua subscription loop that only counts data changes;
  (b) the Stacklight OPC UA source writing through TagStoreWriter into Redis.
Both spread the tags over --connections client sessions (default: as many as the
source's max_items_per_connection asks for), each with subscriptions of at most
--items-per-subscription items. Reports updates/s, (b)/(a), latency source time -> arrival (a) / -> Redis (b, from
the history stream entry ids, which are Redis' own clock), and updates lost.
Everything lives in a temporary directory that is removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import math
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from bench.measure import percentile, process_cpu_s

NAMESPACE = "urn:stacklight:bench"
WARMUP_S = 3.0
# After the window, time for late updates to arrive before counting: late is not lost.
TAIL_S = 5.0
PUBLISHING_INTERVAL_MS = 100


def node_name(index: int) -> str:
    return f"Bench.T{index:05d}"


# --- the server process -------------------------------------------------------------------------


async def serve(port: int, tags: int, rate_hz: float, ticks_file: Path) -> None:
    from asyncua import Server, ua  # noqa: PLC0415 - only the server process needs it
    from asyncua.server import monitored_item_service  # noqa: PLC0415

    def keep_without_copy(self, value: ua.DataValue) -> None:
        self.old_dvalue, self.current_dvalue = self.current_dvalue, value

    # asyncua's server deep-copies every DataValue per monitored item (py-spy: ~60 % of its CPU here).
    # Each DataValue written below is a fresh object that nobody changes, so the copy is not needed;
    # skipping it lets this 2-core machine offer more load to the clients being measured.
    monitored_item_service.MonitoredItemValues.set_current_datavalue = keep_without_copy
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    index = await server.register_namespace(NAMESPACE)
    node_ids = []
    for i in range(tags):
        node = await server.nodes.objects.add_variable(ua.NodeId(node_name(i), index), node_name(i), 0.0)
        node_ids.append(node.nodeid)
    await server.start()
    print("ready", flush=True)
    period_s = 1.0 / rate_hz
    next_tick = time.monotonic()
    tick = 0
    with ticks_file.open("a", buffering=1) as ticks:
        while True:
            tick += 1
            now = datetime.now(timezone.utc)
            for i, node_id in enumerate(node_ids):
                await server.write_attribute_value(node_id, ua.DataValue(
                    ua.Variant(tick + i / 100_000, ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now))
            ticks.write(f"{int(now.timestamp() * 1000)}\n")
            next_tick += period_s
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))


# --- the two clients ----------------------------------------------------------------------------


def tick_times_ms(ticks_file: Path) -> list[int]:
    return [int(line) for line in ticks_file.read_text().split()]


def spread(tags: int, connections: int, items_per_subscription: int) -> list[list[list[int]]]:
    """Node indices per connection, per subscription: the same spreading the source plans."""
    from data_sources.opcua_plan import even_chunks  # noqa: PLC0415

    return [[list(sub) for sub in even_chunks(list(conn), items_per_subscription)]
            for conn in even_chunks(range(tags), math.ceil(tags / connections))]


async def bare_asyncua(endpoint: str, tags: int, seconds: float, connections: int, items_per_subscription: int) -> dict:
    """(a): subscribe to every node and count data changes with their source time in the window."""
    from asyncua import Client  # noqa: PLC0415
    from asyncua.common.subscription import DataChangeEvent  # noqa: PLC0415

    window_start_ms = int(time.time() * 1000 + WARMUP_S * 1000)
    window_end_ms = window_start_ms + int(seconds * 1000)
    received, latencies_ms = 0, []

    async def count_data_changes(subscription) -> None:
        nonlocal received
        async for event in subscription:
            if not isinstance(event, DataChangeEvent):
                print(f"    (a) subscription status: {event}", flush=True)
                continue
            source_ms = event.data.monitored_item.Value.SourceTimestamp.timestamp() * 1000
            if window_start_ms <= source_ms < window_end_ms:
                received += 1
                if received % 10 == 0:
                    latencies_ms.append(time.time() * 1000 - source_ms)

    async def one_connection(subscriptions: list[list[int]]) -> None:
        async with Client(endpoint, timeout=30, watchdog_intervall=10) as client:
            index = await client.get_namespace_index(NAMESPACE)
            counting = []
            for indices in subscriptions:
                nodes = [client.get_node(f"ns={index};s={node_name(i)}") for i in indices]
                subscription = await client.create_subscription(PUBLISHING_INTERVAL_MS, None, queue_maxsize=0)
                await subscription.subscribe_data_change(nodes, queuesize=2, sampling_interval=0)
                counting.append(asyncio.create_task(count_data_changes(subscription)))
            await asyncio.sleep((window_end_ms - time.time() * 1000) / 1000 + TAIL_S)
            for task in counting:
                task.cancel()

    cpu_start = time.process_time()
    await asyncio.gather(*(one_connection(c) for c in spread(tags, connections, items_per_subscription)))
    cpu_s = time.process_time() - cpu_start
    return {"received": received, "latencies_ms": latencies_ms, "window": (window_start_ms, window_end_ms),
            "cpu_s": cpu_s}


async def stacklight_source(
    endpoint: str, tags: int, seconds: float, redis_url: str, work_dir: Path, connections: int,
    items_per_subscription: int,
) -> dict:
    """(b): the Stacklight OPC UA source and TagStoreWriter into Redis; counted from what Redis holds."""
    import redis.asyncio as aioredis  # noqa: PLC0415

    from data_sources.opcua_source import OpcUaDataSource  # noqa: PLC0415
    from data_sources.service import stop_writer  # noqa: PLC0415
    from tag_store.cancellation import cancel_and_wait  # noqa: PLC0415
    from domain.config_model import OpcUaSource, Tag  # noqa: PLC0415
    from tag_store import keys  # noqa: PLC0415
    from tag_store.codec import decode_tag_value  # noqa: PLC0415
    from tag_store.writer import TagStoreWriter  # noqa: PLC0415

    redis = aioredis.Redis.from_url(redis_url)
    config = OpcUaSource(kind="opcua", endpoint=endpoint, security={"policy": "None", "mode": "None"},
                         publishing_interval_ms=PUBLISHING_INTERVAL_MS, sampling_interval_ms=0, stale_after_s=10,
                         max_items_per_connection=math.ceil(tags / connections),
                         max_items_per_subscription=items_per_subscription)
    tag_list = [Tag(name=f"b.{i:05d}", source="bench", node_id=f"nsu={NAMESPACE};s={node_name(i)}")
                for i in range(tags)]
    writer = TagStoreWriter(redis, history_samples_per_tag=int(seconds * 20 + 1000))
    source = OpcUaDataSource("bench", config, tag_list, writer, data_dir=work_dir)
    window_start_ms = int(time.time() * 1000 + WARMUP_S * 1000)
    window_end_ms = window_start_ms + int(seconds * 1000)
    cpu_start = time.process_time()
    tasks = [asyncio.create_task(writer.run()), asyncio.create_task(source.run())]
    await asyncio.sleep((window_end_ms - time.time() * 1000) / 1000 + TAIL_S)
    await cancel_and_wait(tasks[1:])
    await stop_writer(writer, tasks[0])
    cpu_s = time.process_time() - cpu_start
    received, duplicates, latencies_ms, receive_latencies_ms = 0, 0, [], []
    for tag in tag_list:
        seen_source_times: set[int] = set()
        for entry_id, fields in await redis.xrange(keys.history(tag.name)):
            tv = decode_tag_value(tag.name, fields[b"d"])
            if tv.quality.is_good and window_start_ms <= tv.source_time_ms < window_end_ms:
                if tv.source_time_ms in seen_source_times:
                    duplicates += 1
                    continue
                seen_source_times.add(tv.source_time_ms)
                received += 1
                if received % 10 == 0:
                    latencies_ms.append(int(entry_id.split(b"-")[0]) - tv.source_time_ms)
                    receive_latencies_ms.append(tv.receive_time_ms - tv.source_time_ms)
    await redis.aclose()
    return {"received": received, "latencies_ms": latencies_ms, "window": (window_start_ms, window_end_ms),
            "cpu_s": cpu_s, "counters": source.counters.as_dict(), "connections": source.connection_count, "writer": writer.stats, "duplicates": duplicates,
            "receive_latencies_ms": receive_latencies_ms}


# --- the run ------------------------------------------------------------------------------------


def report(title: str, result: dict, ticks_ms: list[int], tags: int, seconds: float) -> float:
    start, end = result["window"]
    expected = tags * sum(1 for t in ticks_ms if start <= t < end)
    rate = result["received"] / seconds
    lost = expected - result["received"]
    print(f"  {title}")
    print(f"    updates received   {result['received']:>10,}  of {expected:,} sent   -> {rate:,.0f} updates/s")
    print(f"    updates lost       {lost:>10,}  ({100 * lost / max(expected, 1):.2f} %)")
    if "receive_latencies_ms" in result:
        print(f"    latency p50 / p99  {percentile(result['receive_latencies_ms'], 0.5):>8.0f} / "
              f"{percentile(result['receive_latencies_ms'], 0.99):.0f} ms  source time -> received by the source")
    print(f"    latency p50 / p99  {percentile(result['latencies_ms'], 0.5):>8.0f} / "
          f"{percentile(result['latencies_ms'], 0.99):.0f} ms  source time -> "
          + ("in Redis (history entry id)" if "receive_latencies_ms" in result else "seen by the loop"))
    print(f"    CPU seconds        client {result['cpu_s']:.1f}, OPC UA server {result['server_cpu_s']:.1f}"
          + (f", redis-server {result['redis_cpu_s']:.1f}" if "redis_cpu_s" in result else "")
          + f" (run of ~{seconds + WARMUP_S + TAIL_S:.0f} s)")
    return rate, result["received"] / max(expected, 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_opcua", description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=None,
                        help="client sessions to spread the tags over (default: tags / 5000, rounded up)")
    parser.add_argument("--items-per-subscription", type=int, default=1000)
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ticks-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.serve_port:
        asyncio.run(serve(args.serve_port, args.tags, args.rate_hz, args.ticks_file))
        return 0
    from launcher.embedded_servers import RedisServer, free_port  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="stacklight-bench-") as temp:
        work_dir = Path(temp)
        port, ticks_file = free_port(), work_dir / "ticks.txt"
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.ingest_opcua", "--serve-port", str(port), "--tags", str(args.tags),
             "--rate-hz", str(args.rate_hz), "--ticks-file", str(ticks_file)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        redis = RedisServer(work_dir / "redis", persistent=False).start()
        try:
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError("the OPC UA server process did not start")
            endpoint = f"opc.tcp://127.0.0.1:{port}/bench"
            connections = args.connections or math.ceil(args.tags / 5000)
            spreading = (connections, args.items_per_subscription)
            subscriptions = sum(len(c) for c in spread(args.tags, *spreading))
            print(f"OPC UA ingest: {args.tags} Double tags x {args.rate_hz:g} Hz = "
                  f"{args.tags * args.rate_hz:,.0f} updates/s offered, {args.seconds:g} s window, "
                  f"publishing interval {PUBLISHING_INTERVAL_MS} ms; server in its own process; "
                  f"{connections} connection(s), {subscriptions} subscription(s) of <= {args.items_per_subscription}")
            server_cpu_0 = process_cpu_s(server.pid)
            bare = asyncio.run(bare_asyncua(endpoint, args.tags, args.seconds, *spreading))
            server_cpu_1, redis_cpu_1 = process_cpu_s(server.pid), process_cpu_s(redis.process.pid)
            ours = asyncio.run(stacklight_source(endpoint, args.tags, args.seconds, redis.url, work_dir, *spreading))
            bare["server_cpu_s"] = server_cpu_1 - server_cpu_0
            ours["server_cpu_s"] = process_cpu_s(server.pid) - server_cpu_1
            ours["redis_cpu_s"] = process_cpu_s(redis.process.pid) - redis_cpu_1
            ticks_ms = tick_times_ms(ticks_file)
            server_rate = args.tags * len(ticks_ms) / ((ticks_ms[-1] - ticks_ms[0]) / 1000 or 1)
            print(f"  server achieved    {server_rate:>10,.0f} updates/s")
            bare_rate, bare_share = report("(a) bare asyncua subscription", bare, ticks_ms, args.tags, args.seconds)
            our_rate, our_share = report("(b) Stacklight OPC UA source -> Redis", ours, ticks_ms, args.tags, args.seconds)
            counters, stats = ours["counters"], ours["writer"]
            print(f"    source counters    {ours['connections']} connection(s), "
                  f"missed notifications {counters['missed_notifications']}, "
                  f"server queue overflows {counters['server_queue_overflows']}, dropped (inbox) {counters['dropped']}, "
                  f"reconnects {counters['reconnects']}")
            print(f"    tag store writer   {stats.batches:,} batches, {stats.dropped_overflow} dropped (full), "
                  f"{stats.dropped_replayed} dropped (replayed), {stats.redis_errors} Redis errors, "
                  f"{ours['duplicates']} duplicates in history")
            print(f"  ratio (b)/(a)      {our_rate / bare_rate if bare_rate else float('nan'):>10.2f}  updates/s"
                  f"  ({our_share / bare_share if bare_share else float('nan'):.2f} of the share of sent updates"
                  " received: the server, sharing the cores, may send less during (b))")
        finally:
            server.terminate()
            server.wait(10)
            redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
