"""Walking an OPC UA server's address space and turning its variables into plant-file tags.

Part of the OPC UA adapter: asyncua stays inside; what leaves is frozen dataclasses and text.
The walk follows hierarchical references (HasProperty aside) from a start node to a maximum
depth; every Variable found becomes a BrowsedVariable with the facts a Tag needs. Variables
that a Tag cannot hold (arrays, structures, dates...) are kept with a note that says why.
Alarms & Conditions instances (objects whose type is ConditionType or a subtype: an alarm's
ActiveState, AckedState, Comment...) are neither listed nor entered: they are an alarm's
state, reported through events, not process values to poll as tags.

Imported tags are never writable: the server may allow writes, but an engineer enables them.
"""
from __future__ import annotations

import asyncio
import contextlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import yaml
from asyncua import Client, ua

from data_sources.opcua_client import REQUEST_TIMEOUT_S, disconnect_quietly, new_client
from data_sources.opcua_values import resolve_node_id
from domain.config_model import TAG_NAME_PATTERN, DataType, OpcUaSource

DEFAULT_MAX_DEPTH = 6
# OPC UA built-in DataType ids (namespace 0) that a Tag can hold.
_DATA_TYPES = {
    ua.ObjectIds.Boolean: DataType.BOOL,
    **dict.fromkeys((ua.ObjectIds.SByte, ua.ObjectIds.Byte, ua.ObjectIds.Int16, ua.ObjectIds.UInt16,
                     ua.ObjectIds.Int32, ua.ObjectIds.UInt32, ua.ObjectIds.Int64, ua.ObjectIds.UInt64),
                    DataType.INT),
    ua.ObjectIds.Float: DataType.FLOAT,
    ua.ObjectIds.Double: DataType.FLOAT,
    ua.ObjectIds.Duration: DataType.FLOAT,
    ua.ObjectIds.String: DataType.STRING,
    ua.ObjectIds.LocalizedText: DataType.STRING,
}
_CURRENT_WRITE = 1 << 1  # AccessLevel bit: the value may be written
_CONDITION_TYPE = ua.NodeId(ua.ObjectIds.ConditionType)
# Object types known not to be conditions without asking the server.
_NOT_CONDITION_TYPES = {ua.NodeId(ua.ObjectIds.BaseObjectType): False, ua.NodeId(ua.ObjectIds.FolderType): False}
_NAME_PATTERN = re.compile(TAG_NAME_PATTERN)
_MAX_NAME_LENGTH = 128


@dataclass(frozen=True, slots=True)
class BrowsedNode:
    """One node of the walk, in depth-first order; `variable` is None for objects and folders."""

    depth: int
    browse_path: tuple[str, ...]
    variable: BrowsedVariable | None = None


@dataclass(frozen=True, slots=True)
class BrowsedVariable:
    node_id: str  # "nsu=<namespace uri>;s=..." (or ";i=..."), robust to namespace reordering
    browse_path: tuple[str, ...]
    opcua_type: str  # the server's DataType, by name
    data_type: DataType | None  # None: a Tag cannot hold it; `note` says why
    unit: str = ""
    eu_range: tuple[float, float] | None = None
    description: str = ""
    server_writable: bool = False
    note: str = ""


async def browse(client: Client, start: str | None = None, max_depth: int = DEFAULT_MAX_DEPTH) -> list[BrowsedNode]:
    """Objects and variables below `start` (default the Objects folder), down to `max_depth` levels.

    The server's own standard nodes (namespace 0, e.g. the Server object) are not entered.
    """
    namespace_uris = await client.get_namespace_array()
    start_id = resolve_node_id(start, namespace_uris) if start else ua.NodeId(ua.ObjectIds.ObjectsFolder)
    found: list[tuple[int, tuple[str, ...], ua.ReferenceDescription]] = []
    await _walk(client, start_id, (), 1, max_depth, found, {start_id}, dict(_NOT_CONDITION_TYPES))
    variables = [ref.NodeId for _, _, ref in found if ref.NodeClass == ua.NodeClass.Variable]
    facts = await _variable_facts(client, variables, namespace_uris,
                                  [path for _, path, ref in found if ref.NodeClass == ua.NodeClass.Variable])
    nodes, facts_iter = [], iter(facts)
    for depth, path, ref in found:
        variable = next(facts_iter) if ref.NodeClass == ua.NodeClass.Variable else None
        nodes.append(BrowsedNode(depth, path, variable))
    return nodes


async def _walk(client: Client, node_id: ua.NodeId, path: tuple[str, ...], depth: int, max_depth: int,
                found: list, seen: set[ua.NodeId], condition_types: dict[ua.NodeId, bool]) -> None:
    """Depth first; a node reached a second time (two folders organize it, or a cycle) is listed once."""
    if depth > max_depth:
        return
    references = await client.get_node(node_id).get_references(
        refs=ua.ObjectIds.HierarchicalReferences, direction=ua.BrowseDirection.Forward,
        nodeclassmask=ua.NodeClass.Object | ua.NodeClass.Variable)
    for ref in references:
        if (ref.ReferenceTypeId == ua.NodeId(ua.ObjectIds.HasProperty) or ref.NodeId.NamespaceIndex == 0
                or ref.NodeId in seen):
            continue
        seen.add(ref.NodeId)
        if ref.NodeClass == ua.NodeClass.Object and await _is_condition_type(client, ref.TypeDefinition,
                                                                             condition_types):
            continue
        child_path = (*path, ref.BrowseName.Name)
        found.append((depth, child_path, ref))
        await _walk(client, ref.NodeId, child_path, depth + 1, max_depth, found, seen, condition_types)


async def _is_condition_type(client: Client, type_id: ua.NodeId | None, known: dict[ua.NodeId, bool]) -> bool:
    """Is this object type ConditionType or a subtype of it? Asked up the type tree once per type and walk."""
    chain: list[ua.NodeId] = []
    current = type_id
    while current is not None and not current.is_null() and current not in known:
        if current == _CONDITION_TYPE:
            known[current] = True
            break
        chain.append(current)
        supertypes = await client.get_node(current).get_references(
            refs=ua.ObjectIds.HasSubtype, direction=ua.BrowseDirection.Inverse, includesubtypes=False)
        current = supertypes[0].NodeId if supertypes else None
    answer = known.get(current, False) if current is not None else False
    for type_on_the_way in chain:
        known[type_on_the_way] = answer
    return answer


async def _variable_facts(client: Client, node_ids: list[ua.NodeId], namespace_uris: list[str],
                          paths: list[tuple[str, ...]]) -> list[BrowsedVariable]:
    if not node_ids:
        return []
    nodes = [client.get_node(n) for n in node_ids]
    data_types, value_ranks, access_levels, descriptions, values = [
        await client.read_attributes(nodes, attribute) for attribute in (
            ua.AttributeIds.DataType, ua.AttributeIds.ValueRank, ua.AttributeIds.AccessLevel,
            ua.AttributeIds.Description, ua.AttributeIds.Value)]
    facts, type_names = [], {}
    for i, node in enumerate(nodes):
        units, eu_range = await _engineering_properties(client, node)
        data_type_id = _attribute(data_types[i])
        opcua_type, data_type, note = await _tag_data_type(client, data_type_id, _attribute(value_ranks[i]),
                                                           values[i].Value, type_names)
        description = _attribute(descriptions[i])
        access = _attribute(access_levels[i]) or 0
        facts.append(BrowsedVariable(
            node_id=portable_node_id(node_ids[i], namespace_uris), browse_path=paths[i], opcua_type=opcua_type,
            data_type=data_type, unit=units, eu_range=eu_range,
            description=description.Text or "" if isinstance(description, ua.LocalizedText) else "",
            server_writable=bool(access & _CURRENT_WRITE), note=note))
    return facts


def _attribute(dv: ua.DataValue):
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return None
    return dv.Value.Value if dv.Value is not None else None


async def _tag_data_type(client: Client, data_type_id: object, value_rank: object, value: ua.Variant | None,
                         type_names: dict[ua.NodeId, str]) -> tuple[str, DataType | None, str]:
    """(the server's type name, the Tag data type or None, why not)."""
    if not isinstance(data_type_id, ua.NodeId):
        return "?", None, "no DataType readable"
    name = await _type_name(client, data_type_id, type_names)
    is_array = (isinstance(value_rank, int) and value_rank >= 0) or (
        value is not None and (value.is_array or bool(value.Dimensions)))
    if is_array:
        return f"{name}[]", None, "skipped: an array"
    if data_type_id.NamespaceIndex == 0 and data_type_id.Identifier in _DATA_TYPES:
        return name, _DATA_TYPES[data_type_id.Identifier], ""
    if data_type_id.NamespaceIndex != 0 or (value is not None and value.VariantType is ua.VariantType.ExtensionObject):
        return name, None, "skipped: a structure"
    return name, None, f"skipped: data type {name} has no Tag equivalent"


async def _type_name(client: Client, data_type_id: ua.NodeId, type_names: dict[ua.NodeId, str]) -> str:
    """Built-in types by their standard name; others asked once per walk (a name is only for display)."""
    name = type_names.get(data_type_id)
    if name is None:
        name = ua.ObjectIdNames.get(data_type_id.Identifier) if data_type_id.NamespaceIndex == 0 else None
        if name is None:
            try:
                name = (await client.get_node(data_type_id).read_browse_name()).Name
            except Exception:  # noqa: BLE001 - fall back to the id
                name = data_type_id.to_string()
        type_names[data_type_id] = name
    return name


async def _engineering_properties(client: Client, node) -> tuple[str, tuple[float, float] | None]:
    """EngineeringUnits' DisplayName and EURange's low/high, where the node has them."""
    properties = await node.get_references(refs=ua.ObjectIds.HasProperty, direction=ua.BrowseDirection.Forward)
    wanted = {ref.BrowseName.Name: ref.NodeId for ref in properties
              if ref.BrowseName.Name in ("EngineeringUnits", "EURange")}
    if not wanted:
        return "", None
    names = list(wanted)
    values = await client.read_attributes([client.get_node(wanted[n]) for n in names], ua.AttributeIds.Value)
    read = {n: _attribute(v) for n, v in zip(names, values, strict=True)}
    units = read.get("EngineeringUnits")
    unit = units.DisplayName.Text or "" if isinstance(units, ua.EUInformation) and units.DisplayName else ""
    eu = read.get("EURange")
    eu_range = None
    if isinstance(eu, ua.Range) and math.isfinite(eu.Low) and math.isfinite(eu.High) and eu.Low < eu.High:
        eu_range = (float(eu.Low), float(eu.High))
    return unit, eu_range


def portable_node_id(node_id: ua.NodeId, namespace_uris: list[str]) -> str:
    """`nsu=<uri>;s=...`: the namespace by URI, so the tag survives a server that reorders namespaces."""
    text = node_id.to_string()
    if node_id.NamespaceIndex == 0 or node_id.NamespaceIndex >= len(namespace_uris):
        return text
    identifier = text.partition(";")[2]
    return f"nsu={namespace_uris[node_id.NamespaceIndex]};{identifier}"


# --- tags for the plant file ---------------------------------------------------------------------

def tag_name(browse_path: tuple[str, ...], prefix: str, taken: set[str]) -> str:
    """A name valid per TAG_NAME_PATTERN, made from the browse path and unique among `taken`."""
    cleaned = ".".join(re.sub(r"[^A-Za-z0-9_\-]+", "_", part).strip("_") or "_" for part in browse_path)
    name = f"{prefix}{cleaned}"
    if not name[:1].isalpha():
        name = f"t_{name}"
    name = name[:_MAX_NAME_LENGTH]
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        suffix = f"_{number}"
        candidate = f"{name[:_MAX_NAME_LENGTH - len(suffix)]}{suffix}"
    if not _NAME_PATTERN.match(candidate):
        raise ValueError(f"cannot make a valid tag name from {'/'.join(browse_path)!r} with prefix {prefix!r}")
    taken.add(candidate)
    return candidate


def tags_yaml(nodes: list[BrowsedNode], source: str, prefix: str = "", header: str = "") -> str:
    """A `tags:` block for the plant file; skipped variables appear as comments, writes stay off."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines.append("tags:")
    taken: set[str] = set()
    for node in nodes:
        variable = node.variable
        if variable is None:
            continue
        path = "/".join(variable.browse_path)
        if variable.data_type is None:
            lines.append(f"  # {path} ({variable.node_id}, {variable.opcua_type}): {variable.note}")
            continue
        entry: dict[str, object] = {
            "name": tag_name(variable.browse_path, prefix, taken),
            "source": source,
            "node_id": variable.node_id,
            "data_type": variable.data_type.value,
        }
        if variable.unit:
            entry["unit"] = variable.unit
        if variable.description:
            entry["description"] = variable.description
        if variable.eu_range is not None and variable.data_type.is_numeric:
            entry["range"] = {"low": variable.eu_range[0], "high": variable.eu_range[1]}
        entry["writable"] = False
        dumped = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=1000).splitlines()
        for line in dumped:
            if line == "  writable: false" and variable.server_writable:
                line += "  # server allows writes"
            lines.append(f"  {line}")
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def connected(source_name: str, config: OpcUaSource, password: str | None,
                    data_dir: Path) -> AsyncIterator[Client]:
    """A session with the same security and user as the data source would use; closed on exit."""
    client = await new_client(source_name, config, password, data_dir)
    try:
        await asyncio.wait_for(client.connect(), REQUEST_TIMEOUT_S * 2)
        yield client
    finally:
        await disconnect_quietly(client)
