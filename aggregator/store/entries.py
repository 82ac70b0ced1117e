"""Entries and sources: one feed response stored in one transaction, with exact dedup."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aggregator.dedupe import (
    Change,
    PlannedEntry,
    output_id,
    published_id,
)
from aggregator.dedupe import scoped_id as scoped_output_id
from aggregator.store._base import StoreBase, _row_id, _writing, utc_text
from aggregator.store.feeds import _schedule_values, _success_values
from aggregator.types import (
    Enclosure,
    Entry,
    FeedState,
    FetchResult,
    ParsedFeed,
    Schedule,
)


@dataclass(frozen=True, slots=True)
class WriteCounts:
    new: int = 0
    updated: int = 0
    created: tuple[int, ...] = ()  # entries rows created (not merged into one by URL)
    rekeyed: int = 0  # items the feed gave again under a new id (kept once, not duplicated)


class EntriesMixin(StoreBase):
    """Writes of entries and their per-feed copies."""

    def record_update(
        self,
        state: FeedState,
        fetched: FetchResult,
        parsed: ParsedFeed,
        planned: Sequence[PlannedEntry],
        now: datetime,
        schedule: Schedule,
    ) -> WriteCounts:
        """Store one 200 response: entries, sources and the feed's validators, atomically."""
        now_text = utc_text(now)
        new = updated = 0
        created: list[int] = []
        with _writing(f"entries of feed {state.name}"), self.atomic():
            hints = parsed.hints
            feed_values: dict[str, Any] = {
                **_success_values(state, fetched, now),
                "title": parsed.title,
                "link": parsed.link,
                "format": parsed.format,
                # Validators are replaced on every 200, even when nothing changed (R-H2).
                "etag": fetched.headers.get("ETag"),
                "last_modified": fetched.headers.get("Last-Modified"),
                "last_result": "updated",
                "warning": parsed.warning,
                "hint_ttl_seconds": hints.ttl.total_seconds() if hints.ttl else None,
                "hint_update_period_seconds": (
                    hints.update_period.total_seconds() if hints.update_period else None
                ),
                "hint_skip_hours": json.dumps(sorted(hints.skip_hours)),
                "hint_skip_days": json.dumps(sorted(hints.skip_days)),
                **_schedule_values(schedule),
            }
            first_success = (
                self.db.execute(
                    "SELECT last_success FROM feeds WHERE id = ?", [state.feed_id]
                ).fetchone()[0]
                is None
            )
            own_id = published_id(parsed.feed_id) if parsed.feed_id else None
            claimed = (
                own_id
                and self.db.execute(
                    "SELECT 1 FROM feeds WHERE source_id = ? AND id != ?", [own_id, state.feed_id]
                ).fetchone()
            )
            if first_success and own_id and not claimed:
                # An Atom feed's own id names it in atom:source (in its normal form); adopted
                # once, then kept (unless another feed already goes by it: copies of one feed
                # under two URLs exist).
                feed_values["source_id"] = own_id
                state = replace(state, source_id=own_id)
            self.db.conn.execute(
                f"UPDATE feeds SET {_set_clause(feed_values)} WHERE id = :row_id",
                {**feed_values, "row_id": state.feed_id},
            )
            in_document = {item.entry.source_id for item in planned}
            # A feed with nothing stored yet (every feed, on a cold start) has nothing to rekey.
            (stored_any,) = self.db.conn.execute(
                "SELECT EXISTS (SELECT 1 FROM sources WHERE feed_id = ?)", [state.feed_id]
            ).fetchone()
            rekeyed = 0
            for item in planned:
                if (
                    stored_any
                    and item.change is Change.NEW
                    and self._rekey(state, item, in_document, now_text)
                ):
                    rekeyed += 1
                elif item.change is Change.NEW:
                    row_id = self._insert(state, item, now_text)
                    if row_id is not None:
                        created.append(row_id)
                    new += 1
                elif item.change is Change.CHANGED:
                    self._update(state, item, now_text)
                    updated += 1
        return WriteCounts(new=new, updated=updated, created=tuple(created), rekeyed=rekeyed)

    def _rekey(
        self, state: FeedState, item: PlannedEntry, in_document: set[str], now_text: str
    ) -> bool:
        """A "new" id for an item this feed already gave under an id it no longer uses.

        Some feeds mint fresh ids on every poll; matching the item by its canonical URL or its
        exact content keeps one copy instead of a new one per poll (the database stays bounded).
        """
        entry = item.entry
        row = None
        if entry.canonical_url:
            # CROSS JOIN fixes the join order: from the canonical_url index, not every source.
            row = self.db.execute(
                "SELECT s.id, s.source_entry_id FROM entries e CROSS JOIN sources s "
                "ON s.entry_id = e.id WHERE e.canonical_url = ? AND s.feed_id = ? ORDER BY s.id",
                [entry.canonical_url, state.feed_id],
            ).fetchall()
        if not row:
            row = self.db.execute(
                "SELECT id, source_entry_id FROM sources WHERE feed_id = ? AND fingerprint = ? "
                "ORDER BY id",
                [state.feed_id, item.fingerprint],
            ).fetchall()
        stale = [(sid, old) for sid, old in row or () if old not in in_document]
        if not stale:
            return False
        source_row_id = stale[0][0]
        self.db.execute(
            "UPDATE sources SET source_entry_id = ? WHERE id = ?", [entry.source_id, source_row_id]
        )
        (stored,) = self.db.execute(
            "SELECT fingerprint FROM sources WHERE id = ?", [source_row_id]
        ).fetchone()
        if stored != item.fingerprint:
            self._update(state, item, now_text)
        return True

    def _insert(self, state: FeedState, item: PlannedEntry, now_text: str) -> int | None:
        """Store a new item; returns the new entries row, or None when merged by URL."""
        entry = item.entry
        entry_row_id = None
        created = None
        if entry.canonical_url:
            match = self.db.execute(
                "SELECT id FROM entries WHERE canonical_url = ? ORDER BY id LIMIT 1",
                [entry.canonical_url],
            ).fetchone()
            entry_row_id = match[0] if match else None
        if entry_row_id is None:
            uid = output_id(entry.source_id, state.source_id)
            if self.db.execute("SELECT 1 FROM entries WHERE uid = ?", [uid]).fetchone():
                # Another feed already claims this id for a different item: never merge
                # silently (RFC 4287 section 8.4); scope the id to this feed instead.
                # Scoped by the feed's row too: two feeds may share an atom:id.
                uid = scoped_output_id(entry.source_id, f"{state.source_id}#{state.feed_id}")
            published = entry.published or entry.updated
            updated = entry.updated or entry.published
            values = {
                "uid": uid,
                "feed_id": state.feed_id,
                "first_seen": now_text,
                **_entry_values(entry, item.fingerprint),
                "published": utc_text(published) if published else now_text,
                "updated": utc_text(updated) if updated else now_text,
            }
            entry_row_id = _row_id(self.db.conn.execute(_INSERT_ENTRY, values).lastrowid)
            created = entry_row_id
            # Indexed here, not by a trigger (migration m009); in a batch, just before it
            # commits (StoreBase.batch).
            searchable = (entry_row_id, entry.title, entry.summary, entry.content)
            if self._deferred_search is not None:
                self._deferred_search.append(searchable)
            else:
                self.db.conn.execute(
                    "INSERT INTO entries_fts (rowid, title, summary, content) VALUES (?, ?, ?, ?)",
                    searchable,
                )
        self.db.conn.execute(
            _INSERT_SOURCE,
            {
                "entry_id": entry_row_id,
                "feed_id": state.feed_id,
                "source_entry_id": entry.source_id,
                "first_seen": now_text,
                "last_changed": now_text,
                **_source_values(entry, item.fingerprint),
            },
        )
        return created

    def _update(self, state: FeedState, item: PlannedEntry, now_text: str) -> None:
        entry = item.entry
        row = self.db.execute(
            "SELECT s.id, s.entry_id, e.feed_id, e.published FROM sources s "
            "JOIN entries e ON e.id = s.entry_id WHERE s.feed_id = ? AND s.source_entry_id = ?",
            [state.feed_id, entry.source_id],
        ).fetchone()
        source_row_id, entry_row_id, owner_feed_id, stored_published = row
        source_values = {"last_changed": now_text, **_source_values(entry, item.fingerprint)}
        self.db.conn.execute(
            f"UPDATE sources SET {_set_clause(source_values)} WHERE id = :row_id",
            {**source_values, "row_id": source_row_id},
        )
        if owner_feed_id != state.feed_id:
            return  # another feed's copy is the one shown; ours stays queryable in sources
        if self._deferred_search and any(row[0] == entry_row_id for row in self._deferred_search):
            # Its text trigger (entries_au) deletes the indexed text: it must be indexed first.
            self._flush_search_index()
        values = _entry_values(entry, item.fingerprint)
        # A missing or clamped date never moves an entry's first publication time.
        published = entry.published if entry.published and not entry.date_clamped else None
        values["published"] = utc_text(published) if published else stored_published
        # It changed now; a feed that says when (and not in the future) knows better.
        fresh = entry.updated if entry.updated and not entry.date_clamped else None
        values["updated"] = utc_text(fresh) if fresh else now_text
        self.db.conn.execute(
            f"UPDATE entries SET {_set_clause(values)} WHERE id = :row_id",
            {**values, "row_id": entry_row_id},
        )


# Fixed statements (prepared once, cached by sqlite3): sqlite-utils' Table.insert rebuilt its
# SQL and read the table's schema on every row, a fifth of a cold update's time.
def _insert_statement(table: str, columns: str) -> str:
    names = columns.split()
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"


_INSERT_ENTRY = _insert_statement(
    "entries",
    "uid feed_id first_seen title link canonical_url summary content authors tags enclosures "
    "date_clamped fingerprint published updated",
)
_INSERT_SOURCE = _insert_statement(
    "sources",
    "entry_id feed_id source_entry_id first_seen last_changed title link published updated "
    "fingerprint",
)


def _set_clause(values: dict[str, Any]) -> str:
    return ", ".join(f"{column} = :{column}" for column in values)


def _entry_values(entry: Entry, digest: str) -> dict[str, Any]:
    return {
        "title": entry.title,
        "link": entry.link,
        "canonical_url": entry.canonical_url,
        "summary": entry.summary,
        "content": entry.content,
        "authors": _json_list(entry.authors),
        "tags": _json_list(entry.tags),
        "enclosures": _json_enclosures(entry.enclosures),
        "date_clamped": int(entry.date_clamped),
        "fingerprint": digest,
    }


def _source_values(entry: Entry, digest: str) -> dict[str, Any]:
    return {
        "title": entry.title,
        "link": entry.link,
        "published": utc_text(entry.published) if entry.published else None,
        "updated": utc_text(entry.updated) if entry.updated else None,
        "fingerprint": digest,
    }


# A feed's entries mostly repeat the same authors and tags (or none): each list is encoded once.
@functools.lru_cache(maxsize=1024)
def _json_list(items: tuple[str, ...]) -> str:
    return json.dumps(list(items), ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def _json_enclosures(enclosures: tuple[Enclosure, ...]) -> str:
    return json.dumps(
        [{"url": e.url, "type": e.type, "length": e.length} for e in enclosures],
        ensure_ascii=False,
    )
