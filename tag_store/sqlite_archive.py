"""Helpers shared by the SQLite archives of Redis streams (the alarm journal, the audit trail).

open_archive_db: the writer's connection (the file and its schema created, WAL) or a reader's
(read-only, never creates the file). ArchiveFile: the connection's life (opened on first use,
one call at a time, closed once). tag_condition: a tag filter (exact or prefix*) as SQL, a
prefix as an index range (prefix_upper_bound).
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Self

BUSY_TIMEOUT_S = 10.0


def open_archive_db(path: Path, *, read_only: bool, schema: str, synchronous: str = "NORMAL",
                    what: str = "archive") -> sqlite3.Connection:
    """read_only: FileNotFoundError when the file is missing. Usable from any one thread at a time."""
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"no {what} at {path}")
        return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                               check_same_thread=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript(schema)
    return db


class ArchiveFile:
    """An archive's SQLite file. Opened on first use (by the subclass's _open); safe to call from
    worker threads as long as each call holds self._lock around its use of _connection().

    read_only=True (the web): never creates or changes the file; FileNotFoundError if it is missing.
    """

    def __init__(self, path: Path | str, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        raise NotImplementedError


def tag_condition(tag_filter: str) -> tuple[str | None, list]:
    """SQL for a tag filter: exact, or a prefix ending in "*" as an index range (not LIKE, which
    ignores case). (None, []) for a bare "*", which matches every tag."""
    if not tag_filter.endswith("*"):
        return "tag = ?", [tag_filter]
    prefix = tag_filter[:-1]
    upper = prefix_upper_bound(prefix)
    if upper is not None:
        return "tag >= ? AND tag < ?", [prefix, upper]
    if prefix:
        return "substr(tag, 1, ?) = ?", [len(prefix), prefix]
    return None, []


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with prefix: its last character raised by one.

    Strings starting with prefix, and only those, sort in [prefix, bound): in Python (code points)
    and in SQLite (UTF-8 bytes, the same order). None when there is no such bound to use.
    """
    if not prefix:
        return None
    following = ord(prefix[-1]) + 1
    if following > 0x10FFFF or 0xD800 <= following <= 0xDFFF:
        return None
    return prefix[:-1] + chr(following)
