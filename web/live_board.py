"""The display-ready state of every known tag, shared by all sessions of one worker.

refresh() pulls what changed from the LiveCache, and once a second re-judges
every tag's freshness (a value goes stale without any message arriving). The
tags are the TagDirectory's (configured and discovered); when its version moves,
the board takes the new set and re-judges every tag, so a newly discovered tag's
value (already in the LiveCache) is pushed at once. Each
entry carries "n", the board version at which it last changed, so a push loop
asks entries_since(n) and sends only what is new to its browser.
"""
from __future__ import annotations

from typing import Any

from tag_store.live_cache import LiveCache
from web.tag_directory import TagDirectory
from web.tag_display import judge_encoded, live_entry

REJUDGE_INTERVAL_MS = 1000


class LiveBoard:
    def __init__(self, directory: TagDirectory, cache: LiveCache):
        self._directory = directory
        self._directory_version = directory.version
        self._tags = {t.name: t for t in directory.tags()}
        self._cache = cache
        self._cache_version = 0
        self._judged_at_ms = 0
        self._judged_connected: bool | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.version = 0

    @property
    def connected(self) -> bool:
        return self._cache.connected

    def refresh(self, now_ms: int) -> None:
        """Bring entries up to date; cheap when nothing changed."""
        tags_changed = self._directory.version != self._directory_version
        if tags_changed:
            self._take_tags()
        cache_version, changed = self._cache.changes_since(self._cache_version)
        connected = self._cache.connected
        rejudge_all = (tags_changed or connected != self._judged_connected
                       or now_ms - self._judged_at_ms >= REJUDGE_INTERVAL_MS
                       or self._cache_version == 0)
        names = self._tags.keys() if rejudge_all else [n for n in changed if n in self._tags]
        next_version = self.version + 1
        updated = False
        for name in names:
            entry = self._build(name, now_ms, connected)
            old = self.entries.get(name)
            if old is None or any(old.get(k) != v for k, v in entry.items()):
                entry["n"] = next_version
                self.entries[name] = entry
                updated = True
        if updated:
            self.version = next_version
        self._cache_version = cache_version
        if rejudge_all:
            self._judged_at_ms = now_ms
            self._judged_connected = connected

    def _take_tags(self) -> None:
        self._directory_version = self._directory.version
        self._tags = {t.name: t for t in self._directory.tags()}
        for name in [n for n in self.entries if n not in self._tags]:
            del self.entries[name]

    @property
    def tags_version(self) -> int:
        """The tag directory version these entries were judged with."""
        return self._directory_version

    def _build(self, name: str, now_ms: int, connected: bool) -> dict[str, Any]:
        tag = self._tags[name]
        encoded = self._cache.values.get(name)
        status = self._cache.source_statuses.get(tag.source)
        heartbeat_ms = status.heartbeat_ms if status is not None else None
        return live_entry(tag, encoded, judge_encoded(tag, encoded, heartbeat_ms, now_ms, connected))

    def entries_since(self, version: int) -> dict[str, dict[str, Any]]:
        if version == 0:
            return dict(self.entries)
        return {name: e for name, e in self.entries.items() if e["n"] > version}
