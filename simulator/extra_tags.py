"""Synthetic load-test variables Extra.Tag00001... on the plant's OPC UA server, all changing every tick.

Each tick writes every tag straight into the address space (server.write_attribute_value),
yielding to the event loop between slices so client sessions stay served. A tick that
overruns its period is counted and the schedule slips instead of bursting to catch up.
"""
from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml
from asyncua import Server, ua

from simulator.opcua_points import NAMESPACE_URI
from simulator.opcua_values import data_value

_log = logging.getLogger(__name__)

FOLDER = "Extra"
_SLICE = 500  # writes between yields to the event loop
# asyncua scans a parent's references on every add: 100 children per group folder keeps
# creating 10,000 tags at seconds instead of minutes (and browsers like small folders too).
_GROUP_SIZE = 100
_STATS_EVERY_S = 30.0


def extra_tag_name(number: int) -> str:
    return f"{FOLDER}.Tag{number:05d}"


def extra_tags_config(count: int, source_name: str = "plant_opcua") -> list[dict]:
    """Tag entries (domain.config_model.Tag fields) for the extra variables."""
    return [
        {
            "name": extra_tag_name(n),
            "source": source_name,
            "node_id": f"nsu={NAMESPACE_URI};s={extra_tag_name(n)}",
            "description": f"Synthetic load-test signal {n}",
            "area": "Load test",
            "range": {"low": 0, "high": 100},
        }
        for n in range(1, count + 1)
    ]


def write_extra_tags_config(path: Path, count: int, source_name: str = "plant_opcua") -> None:
    """A YAML sequence indented like demo_plant.yaml, so it can be appended under its final `tags:`."""
    body = yaml.safe_dump(extra_tags_config(count, source_name), sort_keys=False, default_flow_style=None, width=200)
    indented = "".join(f"  {line}\n" for line in body.splitlines())
    header = f"  # {count} synthetic tags served by `python -m simulator --extra-tags {count}`\n"
    path.write_text(header + indented, encoding="utf-8")


class ExtraTags:
    def __init__(self, server: Server, count: int, rate_hz: float, seed: int = 4242):
        if count < 0 or count > 99_999:
            raise ValueError(f"extra tag count must be within 0..99999, got {count}")
        if not 0 < rate_hz <= 100:
            raise ValueError(f"extra tag rate must be within (0, 100] Hz, got {rate_hz}")
        self.server = server
        self.count = count
        self.period_s = 1.0 / rate_hz
        rng = random.Random(seed)
        # Each tag is a sine of its own period (20..120 s) and phase, plus a little noise.
        self._omega = [2.0 * math.pi / rng.uniform(20.0, 120.0) for _ in range(count)]
        self._phase = [rng.uniform(0.0, 2.0 * math.pi) for _ in range(count)]
        self._rng = rng
        self._node_ids: list[ua.NodeId] = []
        self.ticks = 0
        self.overruns = 0
        self.last_tick_s = 0.0

    async def add_nodes(self, idx: int) -> None:
        root = await self.server.nodes.objects.add_folder(ua.NodeId(FOLDER, idx), ua.QualifiedName(FOLDER, idx))
        started = time.perf_counter()
        folder = root
        for n in range(1, self.count + 1):
            if (n - 1) % _GROUP_SIZE == 0:
                group = f"Group{(n - 1) // _GROUP_SIZE + 1:03d}"
                folder = await root.add_folder(ua.NodeId(f"{FOLDER}.{group}", idx), ua.QualifiedName(group, idx))
            name = extra_tag_name(n)
            node = await folder.add_variable(ua.NodeId(name, idx), ua.QualifiedName(name.split(".", 1)[1], idx),
                                             0.0, ua.VariantType.Double)
            self._node_ids.append(node.nodeid)
        _log.info("added %d extra tags in %.1f s", self.count, time.perf_counter() - started)

    def values(self, t_s: float) -> list[float]:
        gauss = self._rng.gauss
        return [
            50.0 + 40.0 * math.sin(omega * t_s + phase) + gauss(0.0, 0.05)
            for omega, phase in zip(self._omega, self._phase)
        ]

    async def write_all(self, t_s: float) -> None:
        now = datetime.now(timezone.utc)
        double = ua.VariantType.Double
        write = self.server.write_attribute_value
        for i, (node_id, value) in enumerate(zip(self._node_ids, self.values(t_s))):
            await write(node_id, data_value(value, double, now))
            if i % _SLICE == _SLICE - 1:
                await asyncio.sleep(0)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = next_tick = loop.time()
        last_stats = start
        busy_s = 0.0
        while True:
            tick_started = time.perf_counter()
            await self.write_all(loop.time() - start)
            self.last_tick_s = time.perf_counter() - tick_started
            busy_s += self.last_tick_s
            self.ticks += 1
            next_tick += self.period_s
            now = loop.time()
            if now > next_tick:
                self.overruns += 1
                next_tick = now
            if now - last_stats >= _STATS_EVERY_S:
                _log.info("extra tags: %d values/tick at %.1f Hz, %.0f %% of the time busy writing, %d overruns",
                          self.count, 1.0 / self.period_s, 100.0 * busy_s / (now - last_stats), self.overruns)
                last_stats, busy_s = now, 0.0
            await asyncio.sleep(next_tick - now)
