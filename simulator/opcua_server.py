"""The plant's OPC UA face: an asyncua server on loopback that serves DEMO_POINTS from the process model.

Values go out with a SourceTimestamp and only when they changed. A client's write
reaches the model inside the server's PostWrite callback, before any later publish,
so the simulator never overwrites an operator's value with a stale one.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback

from simulator.extra_tags import ExtraTags
from simulator.opcua_points import DEMO_POINTS, ENDPOINT_PATH, NAMESPACE_URI, OpcUaPoint
from simulator.opcua_values import VARIANT_TYPES, data_value, eu_information
from simulator.process_model import ProcessModel

_log = logging.getLogger(__name__)



def endpoint_url(host: str, port: int) -> str:
    return f"opc.tcp://{host}:{port}{ENDPOINT_PATH}"


class PlantOpcUaServer:
    """`async with PlantOpcUaServer(model, port) as server:` then `await server.publish()` after each step.

    With extra_tags > 0, `server.extra.run()` keeps the load-test variables changing.
    """

    def __init__(self, model: ProcessModel, port: int, host: str = "127.0.0.1",
                 points: tuple[OpcUaPoint, ...] = DEMO_POINTS, extra_tags: int = 0, extra_rate_hz: float = 1.0):
        self.model = model
        self.port = port
        self.endpoint = endpoint_url(host, port)
        self.points = points
        self.server = Server()
        self.namespace_index = 0
        self.extra = ExtraTags(self.server, extra_tags, extra_rate_hz) if extra_tags else None
        self._node_ids: dict[str, ua.NodeId] = {}
        self._writable: dict[ua.NodeId, OpcUaPoint] = {}
        # The last value published per point: a publish writes only what differs.
        self._published: dict[str, object] = {}

    async def __aenter__(self) -> PlantOpcUaServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        server = self.server
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Stacklight demo plant simulator")
        # Loopback demo only: a real plant server offers Basic256Sha256 with certificates.
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.namespace_index = await server.register_namespace(NAMESPACE_URI)
        await self._add_nodes()
        if self.extra is not None:
            await self.extra.add_nodes(self.namespace_index)  # before listening: clients find every tag
        server.subscribe_server_callback(CallbackType.PostWrite, self._on_client_write)
        await server.start()
        _log.info("OPC UA server listening on %s (namespace %s)", self.endpoint, NAMESPACE_URI)

    async def stop(self) -> None:
        await self.server.stop()

    def node_id(self, name: str) -> ua.NodeId:
        return ua.NodeId(name, self.namespace_index)

    async def _add_nodes(self) -> None:
        idx = self.namespace_index
        snapshot = self.model.snapshot()
        folders = {}
        for point in self.points:
            if point.folder not in folders:
                folders[point.folder] = await self.server.nodes.objects.add_folder(
                    self.node_id(point.folder), ua.QualifiedName(point.folder, idx))
            value = point.value_fn(snapshot)
            variable = await folders[point.folder].add_variable(
                self.node_id(point.name), ua.QualifiedName(point.browse_name, idx), value,
                VARIANT_TYPES[point.data_type])
            if point.description:
                await variable.write_attribute(
                    ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(point.description))))
            if point.eu_range is not None:
                low, high = point.eu_range
                await variable.add_property(self.node_id(f"{point.name}.EURange"), ua.QualifiedName("EURange", 0),
                                            ua.Range(Low=float(low), High=float(high)))
            if point.unit:
                await variable.add_property(self.node_id(f"{point.name}.EngineeringUnits"),
                                            ua.QualifiedName("EngineeringUnits", 0), eu_information(point.unit))
            if point.writable:
                await variable.set_writable()
                self._writable[variable.nodeid] = point
            self._node_ids[point.name] = variable.nodeid
            await self._write(point, value, datetime.now(timezone.utc))

    async def _write(self, point: OpcUaPoint, value: object, now: datetime) -> None:
        await self.server.write_attribute_value(self._node_ids[point.name],
                                                data_value(value, VARIANT_TYPES[point.data_type], now))
        self._published[point.name] = value

    async def publish(self) -> int:
        """Write the points whose value changed since the last publish; returns how many."""
        snapshot = self.model.snapshot()
        now = datetime.now(timezone.utc)
        written = 0
        for point in self.points:
            value = point.value_fn(snapshot)
            if self._published.get(point.name) != value:
                await self._write(point, value, now)
                written += 1
        return written

    async def _on_client_write(self, event: ServerItemCallback, _dispatcher: object) -> None:
        if not event.is_external:
            return
        for item, status in zip(event.request_params.NodesToWrite, event.response_params):
            point = self._writable.get(item.NodeId)
            if point is None or item.AttributeId != ua.AttributeIds.Value or not status.is_good():
                continue
            written = item.Value
            value = written.Value.Value if written.Value is not None else None
            try:
                if written.StatusCode is not None and not written.StatusCode.is_good():
                    raise ValueError(f"the written value has status {written.StatusCode.name}")
                point.write_fn(self.model, value)
                _log.info("client wrote %s = %r", point.name, value)
            except ValueError as exc:
                _log.warning("client write to %s refused by the plant: %s", point.name, exc)
            # Write back what the plant took (clamped, or the old value if refused), with our timestamp.
            await self._write(point, point.value_fn(self.model.snapshot()), datetime.now(timezone.utc))
