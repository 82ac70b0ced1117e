"""What the renderers get: the newest items, grouped by story, with who else reported them."""

from __future__ import annotations

import json
from typing import Any

from aggregator.store._base import StoreBase, _must_utc, parse_utc
from aggregator.types import (
    Coverage,
    Enclosure,
    OutputEntry,
    SourceFeed,
)


class OutputMixin(StoreBase):
    """Reads for the merged feed."""

    def latest_entries(self, limit: int, *, group_stories: bool = True) -> list[OutputEntry]:
        """The newest ``limit`` items, newest first, each with who else reported it.

        Grouped, a story is one item: its representative entry, its permanent story id, and its
        `updated` moved to when the last outlet joined. Ungrouped, every entry is an item and
        only other feeds carrying the very same URL count as coverage.
        """
        if group_stories:
            rows = self.db.query(
                """
                SELECT e.*, coalesce(st.uid, e.uid) AS out_uid,
                       max(e.updated, coalesce(st.updated, e.updated)) AS out_updated
                FROM entries e LEFT JOIN stories st ON st.id = e.story_id
                WHERE e.story_id IS NULL OR st.representative_id = e.id
                ORDER BY e.published DESC, e.id DESC LIMIT ?
                """,
                [limit],
            )
        else:
            rows = self.db.query(
                "SELECT e.*, e.uid AS out_uid, e.updated AS out_updated FROM entries e "
                "ORDER BY e.published DESC, e.id DESC LIMIT ?",
                [limit],
            )
        selected = list(rows)
        if not selected:
            return []
        feeds = self._source_feeds()
        coverage = self._coverage(selected, feeds, group_stories)
        return [
            OutputEntry(
                id=r["out_uid"],
                title=r["title"],
                link=r["link"],
                summary=r["summary"],
                content=r["content"],
                published=_must_utc(r["published"]),
                updated=_must_utc(r["out_updated"]),
                source=feeds[r["feed_id"]],
                authors=tuple(json.loads(r["authors"])),
                tags=tuple(json.loads(r["tags"])),
                enclosures=tuple(Enclosure(**e) for e in json.loads(r["enclosures"])),
                coverage=coverage.get(r["id"], ()),
            )
            for r in selected
        ]

    def _coverage(
        self, selected: list[dict[str, Any]], feeds: dict[int, SourceFeed], group_stories: bool
    ) -> dict[int, tuple[Coverage, ...]]:
        """For each shown entry: the other outlets' copies (story members, same-URL sources)."""
        copies: dict[int, list[tuple[int, str, str | None]]] = {r["id"]: [] for r in selected}
        shown_for: dict[int, int] = {r["id"]: r["id"] for r in selected}  # entry -> shown entry
        story_of = {r["story_id"]: r["id"] for r in selected if r["story_id"] is not None}
        if group_stories and story_of:
            for member_id, story_id, feed_id, title, link in self.db.execute(
                "SELECT id, story_id, feed_id, title, link FROM entries "
                f"WHERE story_id IN ({', '.join('?' * len(story_of))}) "
                "ORDER BY published, id",
                list(story_of),
            ):
                shown = story_of[story_id]
                shown_for[member_id] = shown
                if member_id != shown:
                    copies[shown].append((feed_id, title, link))
        owner_feed = {r["id"]: r["feed_id"] for r in selected}
        for entry_id, feed_id, title, link in self.db.execute(
            "SELECT s.entry_id, s.feed_id, s.title, s.link FROM sources s "
            f"WHERE s.entry_id IN ({', '.join('?' * len(shown_for))}) ORDER BY s.id",
            list(shown_for),
        ):
            shown = shown_for[entry_id]
            if not (entry_id == shown and feed_id == owner_feed[shown]):
                copies[shown].append((feed_id, title, link))
        result: dict[int, tuple[Coverage, ...]] = {}
        for shown, found in copies.items():
            seen: set[tuple[int, str | None]] = {(owner_feed[shown], None)}
            unique = []
            for feed_id, title, link in found:
                if (feed_id, link) in seen or (feed_id == owner_feed[shown] and link is None):
                    continue
                seen.add((feed_id, link))
                unique.append(Coverage(feeds[feed_id], title, link))
            if unique:
                result[shown] = tuple(unique)
        return result

    def _source_feeds(self) -> dict[int, SourceFeed]:
        """Each feed as an atom:source: its permanent id, title, URL, site and newest update."""
        rows = self.db.query(
            """
            SELECT f.id, f.source_id, coalesce(f.configured_title, f.title, f.name) AS title,
                   f.url, f.link, f.last_success,
                   (SELECT max(e.updated) FROM entries e WHERE e.feed_id = f.id) AS newest
            FROM feeds f
            """
        )
        return {
            r["id"]: SourceFeed(
                id=r["source_id"],
                title=r["title"],
                url=r["url"],
                link=r["link"],
                updated=parse_utc(r["newest"] or r["last_success"]),
            )
            for r in rows
        }
