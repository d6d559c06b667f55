"""MQTT ingest benchmark: bare MQTT receive loops vs the Stacklight MQTT source into Redis.

    python -m bench.ingest_mqtt --topics 1000 --rate-hz 10 --seconds 20
    python -m bench.ingest_mqtt --topics 1000 --rate-hz 50 --qos 1 --clients aiomqtt,paho,gmqtt,stacklight

Starts a private mosquitto and a private, non-persistent redis-server, and a
publisher in its own process (so it shares no GIL with the receivers) that sends
to every topic rate_hz times a second, in 10 ms slices, over a plain socket
(MQTT 3.1.1, prebuilt packets: the publisher must not be the bottleneck). Each
payload carries its publish time: JSON {"v": value, "ts": epoch ms} (Stacklight's
source time), or with --payload plain the value itself is the publish time in
epoch ms (Stacklight's source time is then its receive time; latency is read from
the value). Then, one after the other and for windows of the same length:
  (a) bare receive loops that only count messages: aiomqtt (the library the source
      uses) and, with --clients, aiomqtt-batch (the same, but taking every message
      already queued without another `async for` step), paho-mqtt (its own network
      thread) and gmqtt;
  (b) the Stacklight MQTT source writing through TagStoreWriter into Redis.
Reports messages/s, (b)/(a aiomqtt), latency publish -> received (a) / -> Redis
(b, from the history stream entry ids, which are Redis' own clock), messages lost,
what the broker dropped, and CPU seconds per process. Everything lives in a
temporary directory that is removed at the end, also on Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from bench.measure import percentile, process_cpu_s

WARMUP_S = 3.0
# After the window, time for late messages to arrive before counting: late is not lost.
TAIL_S = 5.0
SLICE_S = 0.01
TOPICS_PER_SUBSCRIBE = 100
LATENCY_SAMPLE_EVERY = 10
BARE_CLIENTS = ("aiomqtt", "aiomqtt-batch", "paho", "gmqtt")
ALL_CLIENTS = (*BARE_CLIENTS, "stacklight")


def topic_name(index: int) -> str:
    return f"bench/t{index:05d}"


def tag_name(index: int) -> str:
    return f"b.{index:05d}"


# --- the publisher process ----------------------------------------------------------------------


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def _connect_packet(client_id: str) -> bytes:
    # MQTT 3.1.1, clean session, keepalive 0 (off: this client sends without pause, no PINGREQ needed).
    body = _utf8("MQTT") + b"\x04\x02\x00\x00" + _utf8(client_id)
    return b"\x10" + _remaining_length(len(body)) + body


def publish(port: int, topics: int, rate_hz: float, qos: int, payload_kind: str, sent_file: Path) -> None:
    """Publish to every topic rate_hz times a second; one line 'publish_ms count' per slice to sent_file."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(_connect_packet(f"bench-publisher-{os.getpid()}"))
    if sock.recv(4)[:1] != b"\x20":
        raise RuntimeError("no CONNACK from the broker")
    acks = [0]

    def drain_acks() -> None:  # PUBACKs (4 bytes each) must be read, or the broker stops reading us
        while chunk := sock.recv(65536):
            acks[0] += len(chunk)

    threading.Thread(target=drain_acks, daemon=True).start()
    header = bytes([0x30 | (qos << 1)])
    topic_fields = [_utf8(topic_name(i)) for i in range(topics)]
    period_s = 1.0 / rate_hz
    slices_per_period = max(1, round(period_s / SLICE_S))
    chunk = -(-topics // slices_per_period)
    parent = os.getppid()
    print("ready", flush=True)
    next_slice, tick, packet_id = time.monotonic(), 0, 0
    with sent_file.open("a", buffering=1) as sent:
        while os.getppid() == parent:  # the bench died without stopping us: stop too
            tick += 1
            for s in range(slices_per_period):
                now_ms = time.time_ns() // 1_000_000
                body = (f'{{"v":{tick},"ts":{now_ms}}}' if payload_kind == "json" else str(now_ms)).encode()
                packets = []
                for topic in topic_fields[s * chunk:(s + 1) * chunk]:
                    if qos:
                        packet_id = packet_id % 65535 + 1
                        variable = topic + packet_id.to_bytes(2, "big")
                    else:
                        variable = topic
                    packets.append(header + _remaining_length(len(variable) + len(body)) + variable + body)
                sock.sendall(b"".join(packets))
                sent.write(f"{now_ms} {len(packets)}\n")
                next_slice += period_s / slices_per_period
                time.sleep(max(0.0, next_slice - time.monotonic()))


def read_sent(sent_file: Path) -> list[tuple[int, int]]:
    return [(int(ms), int(n)) for ms, n in (line.split() for line in sent_file.read_text().splitlines() if line)]


# --- measuring ----------------------------------------------------------------------------------


def publish_time_ms(payload: bytes, payload_kind: str) -> float:
    return json.loads(payload)["ts"] if payload_kind == "json" else float(payload)


class Window:
    """The counting window (publish times) of one phase, and what arrived inside it."""

    def __init__(self, seconds: float):
        self.start_ms = int(time.time() * 1000 + WARMUP_S * 1000)
        self.end_ms = self.start_ms + int(seconds * 1000)
        self.received = 0
        self.latencies_ms: list[float] = []

    def seen(self, published_ms: float, arrived_ms: float) -> None:
        if self.start_ms <= published_ms < self.end_ms:
            self.received += 1
            if self.received % LATENCY_SAMPLE_EVERY == 0:
                self.latencies_ms.append(arrived_ms - published_ms)

    def remaining_s(self) -> float:
        return (self.end_ms - time.time() * 1000) / 1000 + TAIL_S

    def result(self, cpu_s: float, **extra) -> dict:
        return {"received": self.received, "latencies_ms": self.latencies_ms,
                "window": (self.start_ms, self.end_ms), "cpu_s": cpu_s, **extra}


def subscription_batches(topics: int) -> list[list[str]]:
    names = [topic_name(i) for i in range(topics)]
    return [names[i:i + TOPICS_PER_SUBSCRIBE] for i in range(0, topics, TOPICS_PER_SUBSCRIBE)]


# --- (a) the bare loops -------------------------------------------------------------------------


async def bare_aiomqtt(
    port: int, topics: int, qos: int, payload_kind: str, seconds: float, take_queued: bool = False,
) -> dict:
    """aiomqtt as the source uses it (async for over client.messages), counting only.

    take_queued: after each message from the iterator, also take what is already queued with
    get_nowait(). aiomqtt 2.5's iterator creates a task and an asyncio.wait per message;
    this shows what that costs (it reads aiomqtt's private _queue: a measurement, not a design).
    """
    import aiomqtt  # noqa: PLC0415

    window = Window(seconds)
    cpu_start = time.process_time()
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-aiomqtt-{os.getpid()}") as client:
        for batch in subscription_batches(topics):
            # Under a flood the SUBACK queues behind the messages already sent: wait longer than the 10 s default.
            await client.subscribe([(t, qos) for t in batch], timeout=60)

        async def count() -> None:
            async for message in client.messages:
                window.seen(publish_time_ms(message.payload, payload_kind), time.time() * 1000)
                while take_queued and not client._queue.empty():  # noqa: SLF001 - see the docstring
                    message = client._queue.get_nowait()  # noqa: SLF001
                    window.seen(publish_time_ms(message.payload, payload_kind), time.time() * 1000)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(count(), window.remaining_s())
    return window.result(time.process_time() - cpu_start)


def bare_paho(port: int, topics: int, qos: int, payload_kind: str, seconds: float) -> dict:
    """paho-mqtt 2 with its own network thread (loop_start); on_message counts."""
    import paho.mqtt.client as paho  # noqa: PLC0415

    window = Window(seconds)
    cpu_start = time.process_time()
    subscribed = threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-paho-{os.getpid()}")
    client.on_message = lambda _c, _u, message: window.seen(
        publish_time_ms(message.payload, payload_kind), time.time() * 1000)

    def on_connect(c, _userdata, _flags, _reason, _properties) -> None:
        for batch in subscription_batches(topics):
            c.subscribe([(t, qos) for t in batch])
        subscribed.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not subscribed.wait(10):
            raise RuntimeError("paho did not connect")
        time.sleep(max(0.0, window.remaining_s()))
    finally:
        client.disconnect()
        client.loop_stop()
    return window.result(time.process_time() - cpu_start)


async def bare_gmqtt(port: int, topics: int, qos: int, payload_kind: str, seconds: float) -> dict:
    """gmqtt (its own asyncio protocol, no thread); on_message counts."""
    import gmqtt  # noqa: PLC0415
    from gmqtt.mqtt.constants import MQTTv311  # noqa: PLC0415

    window = Window(seconds)
    cpu_start = time.process_time()

    def on_message(_client, _topic, payload, _qos, _properties) -> int:
        window.seen(publish_time_ms(payload, payload_kind), time.time() * 1000)
        return 0  # PUBACK reason code: success

    client = gmqtt.Client(f"bench-gmqtt-{os.getpid()}")
    client.on_message = on_message
    await client.connect("127.0.0.1", port, version=MQTTv311)
    try:
        for batch in subscription_batches(topics):
            client.subscribe([gmqtt.Subscription(t, qos=qos) for t in batch])
        await asyncio.sleep(max(0.0, window.remaining_s()))
    finally:
        await client.disconnect()
    return window.result(time.process_time() - cpu_start)


# --- (b) the Stacklight source ------------------------------------------------------------------


async def stacklight_source(
    port: int, topics: int, qos: int, payload_kind: str, seconds: float, rate_hz: float, redis_url: str,
    work_dir: Path,
) -> dict:
    """The Stacklight MQTT source and TagStoreWriter into Redis; counted from what Redis holds."""
    import redis.asyncio as aioredis  # noqa: PLC0415

    from data_sources.mqtt_source import MqttDataSource  # noqa: PLC0415
    from data_sources.service import stop_writer  # noqa: PLC0415
    from domain.config_model import MqttSource, Tag  # noqa: PLC0415
    from tag_store import keys  # noqa: PLC0415
    from tag_store.cancellation import cancel_and_wait  # noqa: PLC0415
    from tag_store.codec import decode_tag_value  # noqa: PLC0415
    from tag_store.writer import TagStoreWriter  # noqa: PLC0415

    redis = aioredis.Redis.from_url(redis_url)
    config = MqttSource(kind="mqtt", host="127.0.0.1", port=port, qos=qos,
                        client_id=f"bench-stacklight-{os.getpid()}")
    json_fields = {"value_path": "v", "timestamp_path": "ts"} if payload_kind == "json" else {}
    tag_list = [Tag(name=tag_name(i), source="bench", topic=topic_name(i), **json_fields) for i in range(topics)]
    writer = TagStoreWriter(redis, history_samples_per_tag=int((seconds + WARMUP_S + TAIL_S) * rate_hz + 1000))
    source = MqttDataSource("bench", config, tag_list, writer, data_dir=work_dir)
    window = Window(seconds)
    cpu_start = time.process_time()
    tasks = [asyncio.create_task(writer.run()), asyncio.create_task(source.run())]
    await asyncio.sleep(window.remaining_s())
    await cancel_and_wait(tasks[1:])
    await stop_writer(writer, tasks[0])
    cpu_s = time.process_time() - cpu_start
    duplicates, receive_latencies_ms = 0, []
    for tag in tag_list:
        seen_publish_times: set[float] = set()
        for entry_id, fields in await redis.xrange(keys.history(tag.name)):
            tv = decode_tag_value(tag.name, fields[b"d"])
            if not tv.quality.is_good:
                continue
            published_ms = tv.source_time_ms if payload_kind == "json" else tv.value
            if published_ms in seen_publish_times:
                duplicates += 1
                continue
            seen_publish_times.add(published_ms)
            sampled = len(window.latencies_ms)
            window.seen(published_ms, int(entry_id.split(b"-")[0]))
            if payload_kind == "json" and len(window.latencies_ms) > sampled:  # the same sample, at receive time
                receive_latencies_ms.append(tv.receive_time_ms - published_ms)
    await redis.aclose()
    return window.result(cpu_s, counters=source.counters.as_dict(), writer=writer.stats, duplicates=duplicates,
                         receive_latencies_ms=receive_latencies_ms)


# --- the run ------------------------------------------------------------------------------------


def broker_dropped(port: int, timeout_s: float = 3.0) -> int | None:
    """Mosquitto's own count of messages it dropped (full client queues), from $SYS; None if not told."""
    import paho.mqtt.client as paho  # noqa: PLC0415

    values: list[int] = []
    told = threading.Event()

    def on_message(_client, _userdata, message) -> None:
        with contextlib.suppress(ValueError):
            values.append(int(message.payload))
        told.set()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-sys-{os.getpid()}")
    client.on_connect = lambda c, *_: c.subscribe("$SYS/broker/publish/messages/dropped")
    client.on_message = on_message
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    try:
        told.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return values[0] if values else None


def run_phase(name: str, args: argparse.Namespace, port: int, redis_url: str, work_dir: Path) -> dict:
    common = (port, args.topics, args.qos, args.payload, args.seconds)
    if name == "aiomqtt":
        return asyncio.run(bare_aiomqtt(*common))
    if name == "aiomqtt-batch":
        return asyncio.run(bare_aiomqtt(*common, take_queued=True))
    if name == "paho":
        return bare_paho(*common)
    if name == "gmqtt":
        return asyncio.run(bare_gmqtt(*common))
    return asyncio.run(stacklight_source(*common, args.rate_hz, redis_url, work_dir))


TITLES = {
    "aiomqtt": "(a) bare aiomqtt loop (the source's library)",
    "aiomqtt-batch": "(a) bare aiomqtt loop, queued messages taken in a batch",
    "paho": "(a) bare paho-mqtt loop (own network thread)",
    "gmqtt": "(a) bare gmqtt loop",
    "stacklight": "(b) Stacklight MQTT source -> Redis",
}


def report(name: str, result: dict, sent: list[tuple[int, int]], seconds: float) -> tuple[float, float]:
    start, end = result["window"]
    expected = sum(n for ms, n in sent if start <= ms < end)
    rate = result["received"] / seconds
    lost = expected - result["received"]
    ours = name == "stacklight"
    print(f"  {TITLES[name]}")
    print(f"    messages received  {result['received']:>10,}  of {expected:,} sent   -> {rate:,.0f} messages/s")
    dropped = result.get("broker_dropped")
    print(f"    messages lost      {lost:>10,}  ({100 * lost / max(expected, 1):.2f} %)"
          + (f"; mosquitto dropped {dropped:,} (all clients, $SYS)" if dropped is not None else ""))
    if result.get("receive_latencies_ms"):
        print(f"    latency p50 / p99  {percentile(result['receive_latencies_ms'], 0.5):>8.0f} / "
              f"{percentile(result['receive_latencies_ms'], 0.99):.0f} ms  publish -> received by the source")
    print(f"    latency p50 / p99  {percentile(result['latencies_ms'], 0.5):>8.0f} / "
          f"{percentile(result['latencies_ms'], 0.99):.0f} ms  publish -> "
          + ("in Redis (history entry id)" if ours else "seen by the loop"))
    print(f"    CPU seconds        receiver {result['cpu_s']:.1f}, mosquitto {result['broker_cpu_s']:.1f}, "
          f"publisher {result['publisher_cpu_s']:.1f}"
          + (f", redis-server {result['redis_cpu_s']:.1f}" if ours else "")
          + f" (phase of ~{seconds + WARMUP_S + TAIL_S:.0f} s)")
    if ours:
        counters, stats = result["counters"], result["writer"]
        print(f"    source counters    received {counters['received']:,}, "
              f"dropped (full queue) {counters['dropped']:,}, bad payloads {counters['bad_payloads']:,}, "
              f"reconnects {counters['reconnects']}")
        print(f"    tag store writer   {stats.batches:,} batches of {stats.written / max(stats.batches, 1):.1f} "
              f"samples on average, {stats.dropped_overflow} dropped (full), "
              f"{stats.dropped_replayed} dropped (replayed), {stats.redis_errors} Redis errors, "
              f"{result['duplicates']} duplicates in history")
    return rate, result["received"] / max(expected, 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_mqtt", description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--rate-hz", type=float, default=10.0, help="messages per topic per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--qos", type=int, choices=(0, 1), default=0, help="of the publisher and every subscription")
    parser.add_argument("--payload", choices=("json", "plain"), default="json")
    parser.add_argument("--clients", default="aiomqtt,stacklight",
                        help=f"phases to run, in this order, from {','.join(ALL_CLIENTS)}")
    parser.add_argument("--publish-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sent-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(args.clients) - set(ALL_CLIENTS)
    if unknown:
        parser.error(f"unknown --clients {', '.join(sorted(unknown))}; choose from {', '.join(ALL_CLIENTS)}")
    if "gmqtt" in args.clients and importlib.util.find_spec("gmqtt") is None:
        parser.error("gmqtt is not installed (it is no dependency of Stacklight): pip install gmqtt")
    return args


def _exit_on_sigterm(_signum, _frame) -> None:
    raise SystemExit(143)  # unwinds through every `finally` below, as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("paho.mqtt.client").setLevel(logging.CRITICAL)  # $SYS reads log their disconnects
    if args.publish_port:
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError, ConnectionResetError):
            publish(args.publish_port, args.topics, args.rate_hz, args.qos, args.payload, args.sent_file)
        return 0
    from launcher.embedded_servers import MqttBroker, RedisServer, stop_process  # noqa: PLC0415

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with contextlib.ExitStack() as cleanup:
        work_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="stacklight-bench-")))
        broker = MqttBroker(work_dir / "mqtt", extra_config="sys_interval 1\n")
        if broker.implementation != "mosquitto":
            raise SystemExit("this benchmark needs mosquitto (apt-get install mosquitto)")
        cleanup.callback(broker.stop)
        broker.start()
        redis = None
        if "stacklight" in args.clients:
            redis = RedisServer(work_dir / "redis", persistent=False)
            cleanup.callback(redis.stop)
            redis.start()
        sent_file = work_dir / "sent.txt"
        publisher = subprocess.Popen(
            [sys.executable, "-m", "bench.ingest_mqtt", "--publish-port", str(broker.port), "--topics",
             str(args.topics), "--rate-hz", str(args.rate_hz), "--qos", str(args.qos), "--payload", args.payload,
             "--sent-file", str(sent_file)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        cleanup.callback(stop_process, publisher, 5)
        if publisher.stdout.readline().strip() != "ready":
            raise RuntimeError("the publisher process did not start")
        print(f"MQTT ingest: {args.topics} topics x {args.rate_hz:g} Hz = {args.topics * args.rate_hz:,.0f} "
              f"messages/s offered, {args.seconds:g} s window per phase, QoS {args.qos}, {args.payload} payloads; "
              f"mosquitto, publisher in its own process; {os.cpu_count()} cores", flush=True)
        results = {}
        for name in args.clients:
            broker_cpu, publisher_cpu = process_cpu_s(broker.process.pid), process_cpu_s(publisher.pid)
            redis_cpu = process_cpu_s(redis.process.pid) if redis else 0.0
            dropped_before = broker_dropped(broker.port)
            result = run_phase(name, args, broker.port, redis.url if redis else "", work_dir)
            result["broker_cpu_s"] = process_cpu_s(broker.process.pid) - broker_cpu
            result["publisher_cpu_s"] = process_cpu_s(publisher.pid) - publisher_cpu
            result["redis_cpu_s"] = process_cpu_s(redis.process.pid) - redis_cpu if redis else 0.0
            dropped_after = broker_dropped(broker.port)
            if dropped_before is not None and dropped_after is not None:
                result["broker_dropped"] = dropped_after - dropped_before
            results[name] = result
            print(f"  ... {name} done", flush=True)
        sent = read_sent(sent_file)
        span_s = (sent[-1][0] - sent[0][0]) / 1000 or 1
        print(f"  publisher achieved {sum(n for _, n in sent) / span_s:>10,.0f} messages/s")
        rates = {name: report(name, result, sent, args.seconds) for name, result in results.items()}
        if "aiomqtt" in rates and "stacklight" in rates:
            (bare_rate, bare_share), (our_rate, our_share) = rates["aiomqtt"], rates["stacklight"]
            print(f"  ratio (b)/(a)      {our_rate / bare_rate if bare_rate else float('nan'):>10.2f}  messages/s, "
                  f"Stacklight source / bare aiomqtt ({our_share / bare_share if bare_share else float('nan'):.2f}"
                  " of the share of sent messages received)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every child and the temporary directory are gone by now
        print("interrupted", file=sys.stderr)
        sys.exit(130)
