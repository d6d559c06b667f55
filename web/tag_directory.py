"""Every tag the web app knows: the plant file's, and those the data sources discovered at run time.

The catalog (tag_store/tag_catalog.py, sl:tag_catalog) holds definitions that
sources found by themselves (MQTT wildcard templates, Sparkplug B births). One
TagDirectory per web worker merges them with the configured tags; a configured
name always wins. follow_catalog() polls the catalog's version counter and
reloads only when it moved, so pages and the live board rebuild on `version`.

TagSet is the pure part: built from configured and discovered tags, never changed.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from domain.config_model import PlantConfig, Tag
from tag_store import keys
from tag_store.tag_catalog import catalog_version, decode_tag, merged_tags

log = logging.getLogger(__name__)

CATALOG_POLL_S = 1.0


@dataclass(frozen=True)
class TagSet:
    """One merged view: configured tags first (file order), then discovered ones by name."""

    tags: tuple[Tag, ...]
    discovered_names: frozenset[str]
    index: dict[str, Tag] = field(repr=False)
    catalog_version: int = 0

    @classmethod
    def build(cls, config: PlantConfig, discovered: dict[str, Tag], version: int) -> tuple[TagSet, list[str]]:
        """The merged set, and the discovered names left out because their source is not configured."""
        orphans = sorted(n for n, t in discovered.items() if t.source not in config.sources)
        usable = {n: t for n, t in discovered.items() if t.source in config.sources}
        tags = tuple(merged_tags(config.tags, usable))
        configured = {t.name for t in config.tags}
        return cls(tags, frozenset(n for n in usable if n not in configured),
                   {t.name: t for t in tags}, version), orphans


class TagDirectory:
    """The current TagSet of this worker; `version` is the catalog version it was loaded at."""

    def __init__(self, config: PlantConfig):
        self._config = config
        self._set, _ = TagSet.build(config, {}, 0)
        self._orphans_logged: frozenset[str] = frozenset()
        # name -> (encoded definition, Tag): a reload decodes only what changed (10k decodes take ~0.1 s).
        self._decoded: dict[str, tuple[bytes, Tag | None]] = {}

    @property
    def version(self) -> int:
        return self._set.catalog_version

    def tag(self, name: str) -> Tag | None:
        return self._set.index.get(name) if isinstance(name, str) else None

    def tags(self) -> tuple[Tag, ...]:
        return self._set.tags

    def by_source(self, source: str) -> list[Tag]:
        return [t for t in self._set.tags if t.source == source]

    def is_discovered(self, name: str) -> bool:
        return name in self._set.discovered_names

    def discovered(self) -> list[Tag]:
        return [t for t in self._set.tags if t.name in self._set.discovered_names]

    def apply(self, version: int, discovered: dict[str, Tag]) -> None:
        """Swap in the catalog as read at `version` (one assignment: readers see old or new, never half)."""
        new_set, orphans = TagSet.build(self._config, discovered, version)
        new_orphans = frozenset(orphans) - self._orphans_logged
        if new_orphans:
            log.warning("discovered tags on sources this plant file does not have are not shown: %s",
                        ", ".join(sorted(new_orphans)[:20]))
            self._orphans_logged |= new_orphans
        self._set = new_set

    async def reload_if_changed(self, redis: aioredis.Redis) -> bool:
        """One poll: read the version counter, and the catalog only when it moved."""
        version = await catalog_version(redis)
        if version == self.version:
            return False
        # Read after the version: a change in between is picked up again by the next poll.
        self.apply(version, self._decode_changed(await redis.hgetall(keys.TAG_CATALOG)))
        log.info("tag directory: catalog version %d, %d discovered tags", version, len(self._set.discovered_names))
        return True

    def _decode_changed(self, raw_catalog: dict[bytes, bytes]) -> dict[str, Tag]:
        """Like tag_catalog.read_discovered_tags, reusing the Tags of unchanged entries."""
        decoded = {}
        for name, raw in raw_catalog.items():
            known = self._decoded.get(name)
            if known is None or known[0] != raw:
                try:
                    known = (raw, decode_tag(raw))
                except (ValidationError, ValueError) as exc:
                    log.warning("ignoring discovered tag %r: %s", name, exc)
                    known = (raw, None)
            decoded[name] = known
        self._decoded = decoded
        return {tag.name: tag for _raw, tag in decoded.values() if tag is not None}

    async def follow(self, redis: aioredis.Redis, poll_s: float = CATALOG_POLL_S) -> None:
        connected = True
        while True:
            try:
                await self.reload_if_changed(redis)
                if not connected:
                    log.info("tag directory reading the catalog again")
                connected = True
            except (RedisError, OSError) as exc:
                if connected:
                    log.error("tag directory cannot read the catalog: %s", exc)
                connected = False
            await asyncio.sleep(poll_s)
