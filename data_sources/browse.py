"""`python -m data_sources.browse opc.tcp://host:port [...]`: print a server's variables, write a tags block.

Exit codes: 0 when the walk finished, 2 for unusable options (or an unset password variable),
1 when the server could not be reached or browsed.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from data_sources.opcua_browse import DEFAULT_MAX_DEPTH, BrowsedNode, browse, connected, tags_yaml
from domain.config_model import OpcUaSecurityMode, OpcUaSecurityPolicy, OpcUaSource
from domain.secrets import SecretUnavailable, read_secret


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m data_sources.browse", description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="opc.tcp://host:port[/path]")
    parser.add_argument("--policy", default="None", choices=[p.value for p in OpcUaSecurityPolicy])
    parser.add_argument("--mode", default="None", choices=[m.value for m in OpcUaSecurityMode])
    parser.add_argument("--username")
    parser.add_argument("--password-env", metavar="VAR", help="environment variable that holds the password")
    parser.add_argument("--trust-on-first-use", action="store_true",
                        help="trust the server's certificate if it is new (as trust_on_first_use of the source)")
    parser.add_argument("--client-certificate", help="Stacklight's certificate (as client_certificate)")
    parser.add_argument("--client-private-key", help="its private key (as client_private_key)")
    parser.add_argument("--start", metavar="NODE", help="node id to start from (default: the Objects folder)")
    parser.add_argument("--depth", type=int, default=DEFAULT_MAX_DEPTH, help="levels below the start node")
    parser.add_argument("--source", default="opcua", help="the source: of every tag (and the session name)")
    parser.add_argument("--prefix", default="", help="put in front of every tag name, e.g. 'line1.'")
    parser.add_argument("--data-dir", default="./data", help="where the client certificate is kept (as data_dir)")
    parser.add_argument("--output", metavar="FILE", help="write a YAML tags block here")
    args = parser.parse_args(argv)
    if args.depth < 1:
        parser.error("--depth must be at least 1")
    if args.password_env and not args.username:
        parser.error("--password-env needs --username")
    return args


def source_config(args: argparse.Namespace) -> OpcUaSource:
    """The same model the plant file uses, so the client is built exactly as the data source builds it."""
    credentials = None
    if args.username:
        credentials = {"username": args.username, "password": {"env": args.password_env or "OPCUA_PASSWORD"}}
    return OpcUaSource(kind="opcua", endpoint=args.endpoint, security={"policy": args.policy, "mode": args.mode},
                       credentials=credentials, trust_on_first_use=args.trust_on_first_use,
                       client_certificate=args.client_certificate, client_private_key=args.client_private_key)


def tree_lines(nodes: list[BrowsedNode]) -> list[str]:
    lines = []
    for node in nodes:
        indent = "  " * (node.depth - 1)
        variable = node.variable
        if variable is None:
            lines.append(f"{indent}{node.browse_path[-1]}/")
            continue
        details = [variable.data_type.value if variable.data_type else variable.opcua_type]
        if variable.unit:
            details.append(variable.unit)
        if variable.eu_range:
            details.append(f"{variable.eu_range[0]:g} .. {variable.eu_range[1]:g}")
        if variable.server_writable:
            details.append("writable on server")
        if variable.note:
            details.append(variable.note)
        lines.append(f"{indent}{node.browse_path[-1]}  [{', '.join(details)}]  {variable.node_id}")
    return lines


async def run(args: argparse.Namespace, config: OpcUaSource, password: str | None) -> list[BrowsedNode]:
    async with connected(args.source, config, password, Path(args.data_dir)) as client:
        return await browse(client, args.start, args.depth)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = source_config(args)
        password = read_secret(config.credentials.password) if config.credentials else None
    except (ValidationError, SecretUnavailable) as exc:
        print(f"browse: {exc}", file=sys.stderr)
        return 2
    try:
        nodes = asyncio.run(run(args, config, password))
    except Exception as exc:  # noqa: BLE001 - a command-line tool: say what failed and stop
        print(f"browse: cannot browse {args.endpoint}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(tree_lines(nodes)))
    if args.output:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        header = (f"Imported from {args.endpoint} on {stamp} (python -m data_sources.browse).\n"
                  "Writes stay off: set writable: true deliberately, with range or limits, tag by tag.")
        Path(args.output).write_text(tags_yaml(nodes, args.source, args.prefix, header), encoding="utf-8")
        count = sum(1 for n in nodes if n.variable and n.variable.data_type)
        print(f"\n{count} tags written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
