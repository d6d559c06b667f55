"""Discovered tags as the overview lists them: grouped, filtered, and limited to what a page can hold.

A source may discover thousands of tags, so the overview never draws them all:
it shows at most MAX_ROWS rows that match the operator's filter, grouped under
their area (when the definition sets one) or else their source, and says how
many there are in all. Pure: tags and filter text in, groups out.
"""
from __future__ import annotations

from dataclasses import dataclass

from domain.config_model import Tag

MAX_ROWS = 200


@dataclass(frozen=True, slots=True)
class TagGroup:
    title: str
    tags: tuple[Tag, ...]  # the rows shown
    matching: int          # how many of the group match the filter


@dataclass(frozen=True, slots=True)
class DiscoveredView:
    groups: tuple[TagGroup, ...]
    shown: int
    matching: int
    total: int

    @property
    def summary(self) -> str:
        if self.total == 0:
            return "No tags discovered."
        noun = "tag" if self.total == 1 else "tags"
        if self.matching == self.total and self.shown == self.total:
            return f"{self.total:,} discovered {noun}."
        text = f"Showing {self.shown:,} of {self.matching:,} matching ({self.total:,} discovered {noun})."
        return text + (" Type in the filter to narrow." if self.shown < self.matching else "")


def group_title(tag: Tag) -> str:
    """The tag's area when its definition names one, else 'from <source>'."""
    return tag.area if "area" in tag.model_fields_set else f"from {tag.source}"


def matches(tag: Tag, words: list[str]) -> bool:
    text = f"{tag.name} {tag.description}".lower()
    return all(word in text for word in words)


def discovered_view(tags: list[Tag] | tuple[Tag, ...], filter_text: str | None = None,
                    limit: int = MAX_ROWS) -> DiscoveredView:
    """Groups by title (sorted), tags by name; the first `limit` matching rows are shown."""
    words = (filter_text or "").lower().split()
    grouped: dict[str, list[Tag]] = {}
    for tag in tags:
        if matches(tag, words):
            grouped.setdefault(group_title(tag), []).append(tag)
    groups, room = [], limit
    for title in sorted(grouped):
        members = sorted(grouped[title], key=lambda t: t.name)
        shown = tuple(members[:max(room, 0)])
        room -= len(shown)
        groups.append(TagGroup(title, shown, len(members)))
    matching = sum(g.matching for g in groups)
    return DiscoveredView(tuple(groups), min(matching, limit), matching, len(tags))
