"""OPC UA writes: in the node's own data type, answered with the server's StatusCode, confirmed by readback."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from asyncua import Client, ua

from data_sources.base import WriteResult
from data_sources.opcua_values import value_for_variant, variant_type_of
from domain.config_model import Tag
from domain.tag_value import ScalarValue
from domain.write_rules import readback_matches
from tag_store.write_requests import WriteStatus

READBACK_POLL_S = 0.1
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WritableNode:
    node_id: ua.NodeId
    variant_type: ua.VariantType | None


async def read_writable_nodes(client: Client, tags_and_nodes: list[tuple[Tag, ua.NodeId]]) -> dict[str, WritableNode]:
    """Each writable node's DataType, read once per session: writes use that exact VariantType."""
    if not tags_and_nodes:
        return {}
    nodes = [client.get_node(node_id) for _tag, node_id in tags_and_nodes]
    data_types = await client.read_attributes(nodes, ua.AttributeIds.DataType)
    values = await client.read_attributes(nodes, ua.AttributeIds.Value)
    writable = {}
    for (tag, node_id), data_type, value in zip(tags_and_nodes, data_types, values, strict=True):
        data_type_node = data_type.Value.Value if data_type.Value is not None else None
        writable[tag.name] = WritableNode(node_id, variant_type_of(data_type_node, value.Value))
    return writable


async def write_and_confirm(client: Client, tag: Tag, node: WritableNode, value: ScalarValue,
                            timeout_s: float) -> WriteResult:
    """Send one write; done only when the server accepted it and a readback matches within timeout_s."""
    if node.variant_type is None:
        return WriteResult.rejected(f"node {tag.node_id} is not available for writing")
    try:
        device_value = value_for_variant(value, node.variant_type)
    except ValueError as exc:
        return WriteResult.rejected(str(exc), device_status="BadTypeMismatch")
    write_value = ua.WriteValue(
        NodeId=node.node_id, AttributeId=ua.AttributeIds.Value,
        Value=ua.DataValue(ua.Variant(device_value, node.variant_type)))
    deadline_s = time.monotonic() + timeout_s
    try:
        [status] = await asyncio.wait_for(
            client.get_node(node.node_id).write_params(ua.WriteParameters(NodesToWrite=[write_value])), timeout_s)
    except TimeoutError:
        return WriteResult(WriteStatus.TIMED_OUT, f"no answer from the server within {timeout_s:g} s")
    except Exception as exc:  # noqa: BLE001 - library errors stop here
        return WriteResult.rejected(f"the write could not be sent: {type(exc).__name__}: {exc}")
    if not status.is_good():
        return WriteResult.rejected(f"the server refused the write: {status.name}", device_status=status.name)
    return await _read_back(client, tag, node, device_value, deadline_s)


async def _read_back(client: Client, tag: Tag, node: WritableNode, expected: ScalarValue,
                     deadline_s: float) -> WriteResult:
    readback: ScalarValue = None
    while True:
        try:
            [dv] = await client.read_attributes([client.get_node(node.node_id)], ua.AttributeIds.Value)
            readback = dv.Value.Value if dv.Value is not None else None
            if dv.StatusCode.is_good() and readback_matches(tag, expected, readback):
                return WriteResult(WriteStatus.DONE, "written and confirmed", readback, "Good")
        except Exception as exc:  # noqa: BLE001 - keep trying until the deadline
            log.debug("readback of %s failed: %s", tag.name, exc)
        if time.monotonic() + READBACK_POLL_S > deadline_s:
            return WriteResult(WriteStatus.TIMED_OUT, f"written, but the readback is {readback!r}", readback, "Good")
        await asyncio.sleep(READBACK_POLL_S)
