"""Setpoint write path benchmark: an operator's write through the real processes, against bare asyncua.

    python -m bench.write_path                         # --writes 200 --logins 20 --gets 500
    python -m bench.write_path --writes 500 --gets 1000

Starts, on free loopback ports and in a temporary directory removed at the end: a private
non-persistent redis-server, a small asyncua server in its own process (one writable Double
node), `python -m data_sources` and `python -m web` with a one-tag plant file (limits, max_step,
write_tolerance as on the demo plant's reactor setpoint). Then, sequentially:
  1. --writes writes of alternating values (60.0, 61.0) through POST /api/tags/{name}/write with a
     session (login form, CSRF header): checks, audit, Redis request stream, the data source's
     checks, the OPC UA write and its readback, the answer back through Redis; each must answer
     200 / state done. Baseline: an asyncua Client on the same server doing write_value +
     read_value of the same node as many times. From the audit trail, the time between the
     "requested" and the "done" entries (Redis' clock, ms) splits the round trip in two.
  2. --logins logins through the /login form (argon2 verify in the web app) against a bare
     argon2 PasswordHasher().verify of the same hash in this process.
  3. --gets GETs of /api/tags/{name} with the session cookie and with an API token (Bearer),
     interleaved with GET /health (public, no authentication) on the same server as the baseline.
Ends with the sanity line: write/done entries in the audit trail against the writes sent.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import percentile, process_cpu_s

NAMESPACE = "urn:stacklight:bench-write"
NODE = "Bench.Setpoint"
TAG = "B1.setpoint"
SOURCE = "bench_opcua"
USER = "bench_operator"
PASSWORD = "bench-operator-password-1"
VALUES = (60.0, 61.0)
WARMUP_WRITES = 3
IDLE_S = 2.0
REPO_ROOT = Path(__file__).resolve().parents[1]

PLANT = """\
site_name: write path bench
data_dir: {data_dir}
sources:
  {source}:
    kind: opcua
    endpoint: {endpoint}
    security: {{policy: None, mode: None}}
    publishing_interval_ms: 250
    sampling_interval_ms: 100
tags:
  - name: {tag}
    source: {source}
    node_id: nsu={namespace};s={node}
    unit: degC
    area: Bench
    range: {{low: 0, high: 150}}
    writable: true
    limits: {{low: 20, high: 95}}
    max_step: 30
    write_tolerance: 0.01
"""


# --- the OPC UA server process ------------------------------------------------------------------


async def serve(port: int) -> None:
    from asyncua import Server, ua  # noqa: PLC0415 - only the server process needs it

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    index = await server.register_namespace(NAMESPACE)
    node = await server.nodes.objects.add_variable(ua.NodeId(NODE, index), NODE,
                                                   ua.Variant(VALUES[0], ua.VariantType.Double))
    await node.set_writable()
    async with server:
        print("ready", flush=True)
        while True:
            await asyncio.sleep(3600)


# --- setup through the project's own functions --------------------------------------------------


async def create_user_and_token(redis_url: str) -> tuple[str, str]:
    """The operator account and an API token of it; returns (the stored argon2 hash, the token)."""
    import redis.asyncio as aioredis  # noqa: PLC0415

    from tag_store import keys  # noqa: PLC0415
    from web.api_tokens import create_token  # noqa: PLC0415
    from web.roles import Role  # noqa: PLC0415
    from web.users import add_user  # noqa: PLC0415

    redis = aioredis.Redis.from_url(redis_url)
    try:
        await add_user(redis, USER, Role.OPERATOR, PASSWORD, by="bench")
        token, _record = await create_token(redis, USER, "bench", by="bench")
        stored_hash = (await redis.hget(keys.user(USER), "password_hash")).decode()
    finally:
        await redis.aclose()
    return stored_hash, token


async def audit_entries(redis_url: str) -> list[tuple[int, dict[str, str]]]:
    """Every audit entry: (its stream id's ms, Redis' clock; its fields)."""
    import redis.asyncio as aioredis  # noqa: PLC0415

    from tag_store import keys  # noqa: PLC0415

    redis = aioredis.Redis.from_url(redis_url)
    try:
        entries = await redis.xrange(keys.AUDIT)
    finally:
        await redis.aclose()
    return [(int(entry_id.split(b"-")[0]), {k.decode(): v.decode() for k, v in fields.items()})
            for entry_id, fields in entries]


def start_service(module: str, plant: Path, redis_url: str, log_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", module, "--config", str(plant), *extra], cwd=REPO_ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_until(check, timeout_s: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.1)


def login(base_url: str):
    """A requests session logged in through the /login form, with the CSRF header set."""
    import requests  # noqa: PLC0415

    session = requests.Session()
    response = session.post(base_url + "/login", data={"username": USER, "password": PASSWORD, "next": "/"},
                            allow_redirects=False, timeout=10)
    if response.status_code != 303 or "stacklight_csrf" not in session.cookies:
        raise RuntimeError(f"login failed: {response.status_code} {response.text[:200]}")
    session.headers["X-CSRFToken"] = session.cookies["stacklight_csrf"]
    return session


# --- 1. writes ----------------------------------------------------------------------------------


def stacklight_writes(session, base_url: str, count: int, first: int = 0) -> list[float]:
    """Sequential writes through the JSON API; each must be done (200). Latencies in ms."""
    url = f"{base_url}/api/tags/{TAG}/write"
    latencies_ms = []
    for i in range(first, first + count):
        value = VALUES[i % 2]
        started = time.perf_counter()
        response = session.post(url, json={"value": value, "reason": "bench"}, timeout=30)
        latencies_ms.append((time.perf_counter() - started) * 1000)
        answer = response.json()
        if response.status_code != 200 or answer.get("state") != "done":
            raise RuntimeError(f"write {i} of {value} answered {response.status_code}: {answer}")
    return latencies_ms


async def bare_writes(endpoint: str, count: int) -> tuple[list[float], float]:
    """asyncua write_value + read_value of the same node, each read checked; latencies in ms, and the
    CPU seconds this process spent in the measured writes (not connecting)."""
    from asyncua import Client, ua  # noqa: PLC0415

    latencies_ms = []
    async with Client(endpoint, timeout=10) as client:
        index = await client.get_namespace_index(NAMESPACE)
        node = client.get_node(ua.NodeId(NODE, index))
        for i in range(WARMUP_WRITES + count):
            if i == WARMUP_WRITES:
                cpu_start_s = time.process_time()
            value = VALUES[i % 2]
            started = time.perf_counter()
            await node.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
            readback = await node.read_value()
            if i >= WARMUP_WRITES:
                latencies_ms.append((time.perf_counter() - started) * 1000)
            if readback != value:
                raise RuntimeError(f"bare write of {value} read back {readback}")
        cpu_s = time.process_time() - cpu_start_s
    return latencies_ms, cpu_s


def requested_to_done_ms(entries: list[tuple[int, dict[str, str]]]) -> list[float]:
    """Per write of the bench user: the done entry's time minus its requested entry's (Redis' clock, ms)."""
    spans, requested_at = [], None
    for stamp_ms, fields in entries:
        if fields.get("action") != "write" or fields.get("user") != USER:
            continue
        if fields.get("result") == "requested":
            requested_at = stamp_ms
        elif fields.get("result") == "done" and requested_at is not None:
            spans.append(float(stamp_ms - requested_at))
            requested_at = None
    return spans


# --- 2. logins, 3. authorization ----------------------------------------------------------------


def timed_logins(base_url: str, stored_hash: str, count: int) -> tuple[list[float], list[float]]:
    """(logins through the form, bare verifies of the same hash here), interleaved; latencies in ms."""
    from argon2 import PasswordHasher  # noqa: PLC0415

    hasher, logins_ms, verifies_ms = PasswordHasher(), [], []
    for _ in range(count):
        started = time.perf_counter()
        session = login(base_url)
        logins_ms.append((time.perf_counter() - started) * 1000)
        session.close()
        started = time.perf_counter()
        hasher.verify(stored_hash, PASSWORD)
        verifies_ms.append((time.perf_counter() - started) * 1000)
    return logins_ms, verifies_ms


def timed_gets(session, base_url: str, token: str, count: int) -> dict[str, list[float]]:
    """Interleaved, so that the machine's noise falls on all three alike."""
    import requests  # noqa: PLC0415

    bearer = requests.Session()
    bearer.headers["Authorization"] = f"Bearer {token}"
    public = requests.Session()
    plans = {"session": (session, f"/api/tags/{TAG}"), "token": (bearer, f"/api/tags/{TAG}"),
             "health": (public, "/health")}
    latencies_ms: dict[str, list[float]] = {name: [] for name in plans}
    try:
        for _ in range(count):
            for name, (client, path) in plans.items():
                started = time.perf_counter()
                response = client.get(base_url + path, timeout=10)
                latencies_ms[name].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path} ({name}) answered {response.status_code}: {response.text[:200]}")
    finally:
        bearer.close()
        public.close()
    return latencies_ms


# --- the run ------------------------------------------------------------------------------------


def figures(values: list[float]) -> str:
    return (f"p50 {percentile(values, 0.5):6.2f}  p95 {percentile(values, 0.95):6.2f}  "
            f"p99 {percentile(values, 0.99):6.2f}  max {max(values):6.2f} ms")


def per_s(latencies_ms: list[float]) -> float:
    """Sequential operations per second: one after the other, so 1 / mean latency."""
    return 1000 * len(latencies_ms) / sum(latencies_ms)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.write_path", description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--gets", type=int, default=500)
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, work_dir: Path) -> None:
    import requests  # noqa: PLC0415

    from launcher.embedded_servers import RedisServer, free_port, stop_process, wait_for_port  # noqa: PLC0415

    opcua_port, web_port = free_port(), free_port()
    endpoint = f"opc.tcp://127.0.0.1:{opcua_port}/bench"
    base_url = f"http://127.0.0.1:{web_port}"
    plant = work_dir / "plant.yaml"
    plant.write_text(PLANT.format(data_dir=work_dir / "data", source=SOURCE, endpoint=endpoint, tag=TAG,
                                  namespace=NAMESPACE, node=NODE))
    processes: dict[str, subprocess.Popen] = {}
    redis = RedisServer(work_dir / "redis", persistent=False)
    session = None
    try:
        with (work_dir / "opcua.log").open("ab") as log:
            processes["opcua server"] = subprocess.Popen(
                [sys.executable, "-m", "bench.write_path", "--serve-port", str(opcua_port)], cwd=REPO_ROOT,
                stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        redis.start()
        if processes["opcua server"].stdout.readline().strip() != "ready":
            raise RuntimeError(f"the OPC UA server did not start; see {work_dir / 'opcua.log'}")
        stored_hash, token = asyncio.run(create_user_and_token(redis.url))
        # Its default log level, INFO, as in production: one line per write.
        processes["data_sources"] = start_service("data_sources", plant, redis.url, work_dir / "data_sources.log")
        processes["web"] = start_service("web", plant, redis.url, work_dir / "web.log", "--host", "127.0.0.1",
                                         "--port", str(web_port), "--log-level", "warning")
        wait_for_port(web_port, 60, processes["web"])
        wait_until(lambda: requests.get(base_url + "/health", timeout=5).status_code == 200, 60,
                   "web app healthy", processes["web"])
        session = login(base_url)

        def tag_is_live() -> bool:
            record = session.get(f"{base_url}/api/tags/{TAG}", timeout=5).json()
            return record.get("value") is not None and (record.get("quality") or {}).get("family") == "Good"

        wait_until(tag_is_live, 60, f"{TAG} live and Good in the web app", processes["data_sources"])
        pids = {name: p.pid for name, p in processes.items()} | {"redis": redis.process.pid}

        print(f"Setpoint write path: {args.writes} sequential writes of {VALUES[0]:g}/{VALUES[1]:g} to {TAG} "
              f"(OPC UA Double, limits, max_step, readback); web, data_sources, redis, OPC UA server in their own "
              f"processes on loopback")
        stacklight_writes(session, base_url, WARMUP_WRITES)
        cpu_0 = {name: process_cpu_s(pid) for name, pid in pids.items()}
        time.sleep(IDLE_S)  # what the processes burn anyway (subscription, heartbeats, caches)
        cpu_1 = {name: process_cpu_s(pid) for name, pid in pids.items()}
        started = time.monotonic()
        ours = stacklight_writes(session, base_url, args.writes, first=WARMUP_WRITES)
        writes_s = time.monotonic() - started
        cpu_s = {name: process_cpu_s(pid) - cpu_1[name] for name, pid in pids.items()}
        idle_cpu_s = {name: (cpu_1[name] - cpu_0[name]) * writes_s / IDLE_S for name in pids}
        server_cpu_0 = process_cpu_s(pids["opcua server"])
        bare, client_cpu_s = asyncio.run(bare_writes(endpoint, args.writes))
        bare_cpu_s = {"asyncua client": client_cpu_s,
                      "opcua server": process_cpu_s(pids["opcua server"]) - server_cpu_0}
        spans = requested_to_done_ms(asyncio.run(audit_entries(redis.url)))[WARMUP_WRITES:]

        print("1. write round trip")
        print(f"  (a) bare asyncua write_value + read_value   {figures(bare)}  "
              f"{per_s(bare):6.0f} writes/s")
        print(f"  (b) Stacklight POST /api/tags/.../write      {figures(ours)}  "
              f"{per_s(ours):6.0f} writes/s")
        print(f"      of which audit 'requested' -> 'done'    {figures(spans)}  (Redis' clock, 1 ms resolution: "
              "request stream, data source checks, OPC UA write + readback, answer)")
        print("      CPU per write (ms)                      "
              + ", ".join(f"{name} {1000 * cpu / len(ours):.2f}" for name, cpu in cpu_s.items())
              + "; (a): " + ", ".join(f"{name} {1000 * cpu / len(bare):.2f}" for name, cpu in bare_cpu_s.items())
              + " (10 ms ticks)")
        print("      of it idle (same time, no writes)      "
              + ", ".join(f"{name} {1000 * cpu / len(ours):.2f}" for name, cpu in idle_cpu_s.items()))
        print(f"  ratio (b)/(a) p50                           {ratio(percentile(ours, 0.5), percentile(bare, 0.5))}"
              "  buys: role/area/limit/step checks (web and again in the data source), audit "
              "'requested' + 'done', the Redis hop both ways (request stream, answer list), HTTP + session + CSRF, "
              "and a readback that confirms the value")

        logins, verifies = timed_logins(base_url, stored_hash, args.logins)
        print(f"2. login ({args.logins}x each, interleaved; argon2id {stored_hash.split('$')[3]}, "
              f"{os.cpu_count()} CPUs)")
        print(f"  (a) bare PasswordHasher().verify in-process {figures(verifies)}")
        print(f"  (b) POST /login (form, verify, session)     {figures(logins)}")
        print(f"  ratio (b)/(a) p50                           "
              f"{ratio(percentile(logins, 0.5), percentile(verifies, 0.5))}")

        web_cpu_0 = process_cpu_s(pids["web"])
        gets = timed_gets(session, base_url, token, args.gets)
        web_cpu_per_get_ms = 1000 * (process_cpu_s(pids["web"]) - web_cpu_0) / (3 * args.gets)
        health_p50 = percentile(gets["health"], 0.5)
        print(f"3. authorization ({args.gets}x each, interleaved; web CPU {web_cpu_per_get_ms:.2f} ms per GET, "
              "all three kinds)")
        print(f"  (a) GET /health (public, no auth)           {figures(gets['health'])}")
        print(f"  (b) GET /api/tags/<tag>, session cookie    {figures(gets['session'])}  "
              f"{ratio(percentile(gets['session'], 0.5), health_p50)} of (a)")
        print(f"  (c) GET /api/tags/<tag>, API token (Bearer){figures(gets['token'])}  "
              f"{ratio(percentile(gets['token'], 0.5), health_p50)} of (a)")

        entries = asyncio.run(audit_entries(redis.url))
        done = sum(1 for _, f in entries if f.get("action") == "write" and f.get("result") == "done"
                   and f.get("user") == USER and f.get("tag") == TAG)
        sent = WARMUP_WRITES + args.writes
        final = session.get(f"{base_url}/api/tags/{TAG}", timeout=5).json().get("value")
        print(f"sanity: audit write/done entries {done} == writes sent {sent} "
              f"({WARMUP_WRITES} warm-up + {args.writes}): {'OK' if done == sent else 'MISMATCH'}; "
              f"{TAG} now reads {final}")
        if done != sent:
            raise RuntimeError("the audit trail does not hold a done entry for every write")
    finally:
        if session is not None:
            session.close()
        for process in reversed(list(processes.values())):
            stop_process(process)
        redis.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # its session-timeout notice on every connect
    if args.serve_port:
        asyncio.run(serve(args.serve_port))
        return 0
    with tempfile.TemporaryDirectory(prefix="stacklight-bench-") as temp:
        try:
            run(args, Path(temp))
        except Exception:
            for log in sorted(Path(temp).glob("*.log")):
                print(f"--- {log.name} (last lines)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]),
                      file=sys.stderr)
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
