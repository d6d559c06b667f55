"""`python -m audit_trail verify [--config FILE | --data-dir DIR]`: recompute the audit archive's chain.

Exit 0: intact (rows and head hash printed); 1: broken (the first row that does not fit) or
unreadable; 2: usage (bad arguments, a bad plant file, no archive).
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from audit_trail.archive import ARCHIVE_FILE_NAME, audit_archive_path, verify
from domain.config_loading import ConfigError, load_config, resolve_config_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit_trail", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="recompute the hash chain of <data_dir>/" + ARCHIVE_FILE_NAME)
    where = check.add_mutually_exclusive_group()
    where.add_argument("--config", help="plant file (default: $STACKLIGHT_CONFIG or the demo plant)")
    where.add_argument("--data-dir", help="the data directory holding " + ARCHIVE_FILE_NAME)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    if args.data_dir:
        path = Path(args.data_dir) / ARCHIVE_FILE_NAME
    else:
        try:
            path = audit_archive_path(load_config(resolve_config_path(args.config)))
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    try:
        report = verify(path)
    except FileNotFoundError:
        print(f"no audit archive at {path}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"{path}: cannot be read as an audit archive: {exc}", file=sys.stderr)
        return 1
    if report.intact:
        print(f"{path}: chain intact, {report.rows} entries, head hash {report.head_hash}")
        return 0
    print(f"{path}: chain BROKEN at {report.broken} ({report.rows} entries before it are intact)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
