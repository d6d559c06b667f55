"""Tags a data source discovered at run time (MQTT wildcard templates, Sparkplug B births).

The plant file lists tags one by one; a source may also find tags by itself. It
publishes their definitions here so every reader (web app, API, alarm engine)
sees them like configured ones. A configured tag of the same name always wins:
discovery never changes what an engineer wrote down.

Keys (docs/redis-keys.md): TAG_CATALOG hash tag name -> JSON Tag definition;
TAG_CATALOG_VERSION counter, raised on every change, so readers reload only then.
"""
from __future__ import annotations

import json
import logging

import redis.asyncio as aioredis
from pydantic import ValidationError

from domain.config_model import Tag
from tag_store import keys

log = logging.getLogger(__name__)


def encode_tag(tag: Tag) -> str:
    return tag.model_dump_json(exclude_defaults=True)


def decode_tag(raw: str | bytes) -> Tag:
    return Tag.model_validate(json.loads(raw))


async def publish_discovered_tags(redis: aioredis.Redis, tags: list[Tag]) -> int:
    """Add or update definitions; returns how many changed (unchanged ones cost no version bump)."""
    if not tags:
        return 0
    names = [tag.name for tag in tags]
    current = await redis.hmget(keys.TAG_CATALOG, names)
    changed = {tag.name: encoded for tag, old in zip(tags, current, strict=True)
               if (encoded := encode_tag(tag)) != (old.decode() if isinstance(old, bytes) else old)}
    if changed:
        pipe = redis.pipeline(transaction=True)
        pipe.hset(keys.TAG_CATALOG, mapping=changed)
        pipe.incr(keys.TAG_CATALOG_VERSION)
        await pipe.execute()
    return len(changed)


async def catalog_version(redis: aioredis.Redis) -> int:
    return int(await redis.get(keys.TAG_CATALOG_VERSION) or 0)


async def read_discovered_tags(redis: aioredis.Redis) -> dict[str, Tag]:
    """Every discovered tag; an entry that no longer validates (older version) is skipped and logged."""
    found = {}
    for name, raw in (await redis.hgetall(keys.TAG_CATALOG)).items():
        try:
            tag = decode_tag(raw)
        except (ValidationError, ValueError) as exc:
            log.warning("ignoring discovered tag %r: %s", name, exc)
            continue
        found[tag.name] = tag
    return found


def merged_tags(configured: list[Tag], discovered: dict[str, Tag]) -> list[Tag]:
    """Configured tags first, in file order, then discovered ones by name; a configured name wins."""
    names = {tag.name for tag in configured}
    return [*configured, *(discovered[n] for n in sorted(discovered) if n not in names)]
