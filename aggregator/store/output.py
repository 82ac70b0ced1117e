"""What the renderers get: the newest items, grouped by story, with who else reported them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from aggregator.store._base import StoreBase, _must_utc, parse_utc, utc_text
from aggregator.types import (
    Coverage,
    Enclosure,
    OutputEntry,
    Selection,
    SourceFeed,
)
from aggregator.urls import canonical_url


class Copy(NamedTuple):
    """One feed's copy of an entry (a row of ``sources``)."""

    entry_id: int
    feed_id: int
    title: str
    link: str | None


def _report(copy: Copy) -> tuple[str, object]:
    """What makes copies one report: the canonical URL, tracking parameters dropped (a copy
    without an http(s) URL is one of its own)."""
    key = canonical_url(copy.link)
    if key is not None:
        return ("url", key)
    return ("link", copy.link) if copy.link else ("entry", copy.entry_id)


def outlets_of(
    item: Copy, copies: list[Copy], feeds: dict[int, SourceFeed]
) -> tuple[Coverage, ...]:
    """The "Also reported by" of ``item``: each outlet once, in the order of its earliest copy.

    ``copies`` (earliest first) may include the item itself and repeat a report. Copies whose
    URLs differ only by tracking parameters are one report (`canonical_url`). A report at the
    item's own URL is no other report when its feed is the item's (it is the item); another
    outlet carrying it is named, not linked (the reader is there already). Each outlet links
    to its earliest report at a URL not linked yet (never the item's), and counts its distinct
    reports (`Coverage.copies`, "Reuters (3)").
    """
    own = _report(item)
    reports: dict[int, dict[tuple[str, object], Copy]] = {}  # feed -> report -> first copy
    for copy in copies:
        report = _report(copy)
        if not (copy.feed_id == item.feed_id and report == own):
            reports.setdefault(copy.feed_id, {}).setdefault(report, copy)
    linked = {own}
    found = []
    for feed_id, distinct in reports.items():
        link = next((r for r in distinct if r[0] == "url" and r not in linked), None)
        shown = distinct[link] if link else next(iter(distinct.values()))
        if link:
            linked.add(link)
        found.append(
            Coverage(feeds[feed_id], shown.title, shown.link if link else None, len(distinct))
        )
    return tuple(found)


# The entry `e` (unfiltered, of a story) stands for its story when the stored representative is
# filtered: the story's first unfiltered member in the order the representative is chosen in
# (`StoriesMixin._choose_representative`). Asked only of a member that is not the
# representative, and answered by an index lookup unless the representative is filtered.
_SHOWN_MEMBER = """(
    (SELECT r.filtered_by IS NOT NULL FROM entries r WHERE r.id = st.representative_id)
    AND e.id = (
        SELECT m.id FROM entries m JOIN feeds f ON f.id = m.feed_id
        WHERE m.story_id = e.story_id AND m.filtered_by IS NULL
        ORDER BY f.prefer DESC, m.published, m.id LIMIT 1
    )
)"""


class OutputMixin(StoreBase):
    """Reads for the merged feed."""

    def latest_entries(self, limit: int, *, group_stories: bool = True) -> list[OutputEntry]:
        """The newest ``limit`` items, newest first, each with who else reported it.

        Grouped, a story is one item: its representative entry, its permanent story id, and its
        `updated` moved to when the last outlet joined. Ungrouped, every entry is an item and
        only other feeds carrying the very same URL count as coverage.

        An entry the keep and block rules filtered (`filtered_by`) is never an item, nor
        another outlet's coverage. A story whose representative is filtered is shown by its
        first unfiltered member (`_SHOWN_MEMBER`), and left out when all of them are.
        """
        if group_stories:
            rows = self.db.query(
                f"""
                SELECT e.*, coalesce(st.uid, e.uid) AS out_uid,
                       max(e.updated, coalesce(st.updated, e.updated)) AS out_updated
                FROM entries e LEFT JOIN stories st ON st.id = e.story_id
                WHERE e.filtered_by IS NULL AND (
                    e.story_id IS NULL OR st.representative_id = e.id OR {_SHOWN_MEMBER})
                ORDER BY e.published DESC, e.id DESC LIMIT ?
                """,
                [limit],
            )
        else:
            rows = self.db.query(
                "SELECT e.*, e.uid AS out_uid, e.updated AS out_updated FROM entries e "
                "WHERE e.filtered_by IS NULL ORDER BY e.published DESC, e.id DESC LIMIT ?",
                [limit],
            )
        return self._output_entries(list(rows), group_stories)

    def selected_entries(
        self, selection: Selection, now: datetime, *, group_stories: bool = True
    ) -> list[OutputEntry]:
        """An extra output's items: those `selection` picks, newest first, like latest_entries.

        Grouped, a story is shown by its representative when that entry matches, else by its
        earliest matching member (a preferred feed's first): the item carries the story's id
        and every outlet's copies, whichever member matched. `min_outlets` counts the feeds
        carrying any member of the story, the ones the selection did not pick included.
        """
        sql, params = _selected_sql(selection, now, group_stories)
        rows = self.db.query(
            "SELECT e.*, "
            + (
                "coalesce(st.uid, e.uid) AS out_uid, "
                "max(e.updated, coalesce(st.updated, e.updated)) AS out_updated "
                if group_stories
                else "e.uid AS out_uid, e.updated AS out_updated "
            )
            + "FROM entries e LEFT JOIN stories st ON st.id = e.story_id "
            f"WHERE e.id IN ({sql}) ORDER BY e.published DESC, e.id DESC",
            params,
        )
        return self._output_entries(list(rows), group_stories)

    def count_selected(
        self, selection: Selection, now: datetime, *, group_stories: bool = True
    ) -> int:
        """How many items `selected_entries` gives now (at most `selection.max_entries`)."""
        sql, params = _selected_sql(selection, now, group_stories)
        return int(self.db.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])

    def _output_entries(
        self, selected: list[dict[str, Any]], group_stories: bool
    ) -> list[OutputEntry]:
        """Rows of entries (with `out_uid`, `out_updated`) as the renderers' records."""
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
        """For each shown entry: the other outlets' copies, one Coverage per outlet.

        The copies are every feed's source row of the entry (the same URL carried by several
        feeds) and, grouped, of the other members of its story, earliest first: see
        `outlets_of` for how they are told apart and counted.
        """
        shown_for: dict[int, int] = {r["id"]: r["id"] for r in selected}  # entry -> shown entry
        story_of = {r["story_id"]: r["id"] for r in selected if r["story_id"] is not None}
        if group_stories and story_of:
            for member_id, story_id in self.db.execute(
                "SELECT id, story_id FROM entries WHERE filtered_by IS NULL AND "
                f"story_id IN ({', '.join('?' * len(story_of))})",
                list(story_of),
            ):
                shown_for[member_id] = story_of[story_id]
        copies: dict[int, list[Copy]] = {r["id"]: [] for r in selected}
        # Earliest copy first, by each copy's own date (an undated one by its entry's).
        for entry_id, feed_id, title, link in self.db.execute(
            "SELECT s.entry_id, s.feed_id, s.title, s.link "
            "FROM sources s JOIN entries e ON e.id = s.entry_id "
            f"WHERE s.entry_id IN ({', '.join('?' * len(shown_for))}) "
            "ORDER BY coalesce(s.published, e.published), e.id, s.feed_id != e.feed_id, s.id",
            list(shown_for),
        ):
            copies[shown_for[entry_id]].append(Copy(entry_id, feed_id, title, link))
        result: dict[int, tuple[Coverage, ...]] = {}
        for r in selected:
            item = Copy(r["id"], r["feed_id"], r["title"], r["link"])
            found = outlets_of(item, copies[r["id"]], feeds)
            if found:
                result[r["id"]] = found
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


def _matching(alias: str, selection: Selection) -> str:
    """The entry-level conditions of `selection` on the entries row ``alias``, as SQL over the
    sets `_found` defines (the parameters are theirs, and the `since` cutoff, ``:since``).

    A feed condition holds when any feed carrying the entry meets it (several feeds may carry
    one URL: each is a `sources` row), as for `aggregator entries --feed`. The entry's few
    sources are read by the entry (``+s.feed_id`` keeps SQLite off the feeds' index): joined
    to the feed by name, SQLite read every source of the feed once per entry (12 s for one
    feed of 500 in 200,000 entries).
    """
    # What the keep and block rules filtered is never shown, nor makes a story match.
    where = [f"{alias}.filtered_by IS NULL"]
    for condition, feeds in ((selection.tags, "tagged_feeds"), (selection.feeds, "named_feeds")):
        if condition:
            where.append(
                f"EXISTS (SELECT 1 FROM sources s WHERE s.entry_id = {alias}.id "
                f"AND +s.feed_id IN (SELECT id FROM {feeds}))"
            )
    if selection.search is not None:
        # A story's other members are looked up by the story; never by the search's list,
        # which SQLite tried (the list walked once per entry: 227 s in 200,000 entries).
        plus = "+" if alias == "o" else ""
        where.append(f"{plus}{alias}.id IN (SELECT id FROM found)")
    if selection.since is not None:
        where.append(f"{alias}.published >= :since")
    return " AND ".join(where)


def _found(selection: Selection) -> tuple[str, dict[str, Any]]:
    """The sets the conditions test against, each computed once per query (a WITH clause):
    the feeds with one of the tags, the feeds named, the entries the search finds. Written as
    a subquery inside the test of a story's members, the search ran again for every entry
    tested (190 s in 200,000 entries)."""
    sets: list[str] = []
    params: dict[str, Any] = {}
    if selection.tags:
        names = {f"tag{i}": tag for i, tag in enumerate(selection.tags)}
        sets.append(
            "tagged_feeds(id) AS (SELECT DISTINCT f.id FROM feeds f, json_each(f.tags) t "
            f"WHERE t.value IN ({', '.join(':' + n for n in names)}))"
        )
        params |= names
    if selection.feeds:
        names = {f"feed{i}": feed for i, feed in enumerate(selection.feeds)}
        sets.append(
            f"named_feeds(id) AS (SELECT id FROM feeds WHERE name IN "
            f"({', '.join(':' + n for n in names)}))"
        )
        params |= names
    if selection.search is not None:
        sets.append("found(id) AS (SELECT rowid FROM entries_fts WHERE entries_fts MATCH :search)")
        params["search"] = selection.search
    return ("WITH " + ", ".join(sets) + " " if sets else ""), params


def _selected_sql(
    selection: Selection, now: datetime, group_stories: bool
) -> tuple[str, dict[str, Any]]:
    """``SELECT e.id ...``: the ids of the entries an extra output shows, newest first.

    SQLite walks the entries by publication date (or the search's matches) and stops at
    `max_entries`: every condition is tested per entry, against its story's few members.
    """
    with_sets, params = _found(selection)
    if selection.since is not None:
        params["since"] = utc_text(now - selection.since)
    where = [_matching("e", selection)]
    if group_stories:
        # The member that shows the story: the representative if it matches, else the first
        # matching member in the representative's own order (preferred feed, earliest, id).
        where.append(
            "(e.story_id IS NULL OR e.id = st.representative_id OR NOT EXISTS ("
            "SELECT 1 FROM entries o JOIN feeds fo ON fo.id = o.feed_id "
            "WHERE o.story_id = e.story_id AND o.id != e.id "
            "AND (o.id = st.representative_id "
            "OR (-fo.prefer, o.published, o.id) < (-fe.prefer, e.published, e.id)) "
            f"AND {_matching('o', selection)}))"
        )
    if selection.min_outlets > 1:
        members = (
            "SELECT o.id FROM entries o WHERE o.story_id = e.story_id AND o.filtered_by IS NULL "
            "UNION ALL SELECT e.id"
            if group_stories
            else "SELECT e.id"
        )
        where.append(
            "(SELECT count(DISTINCT s.feed_id) FROM sources s "
            f"WHERE s.entry_id IN ({members})) >= :min_outlets"
        )
        params["min_outlets"] = selection.min_outlets
    params["max_entries"] = selection.max_entries
    sql = (
        f"{with_sets}SELECT e.id FROM entries e JOIN feeds fe ON fe.id = e.feed_id "
        "LEFT JOIN stories st ON st.id = e.story_id "
        f"WHERE {' AND '.join(where)} ORDER BY e.published DESC, e.id DESC LIMIT :max_entries"
    )
    return sql, params
