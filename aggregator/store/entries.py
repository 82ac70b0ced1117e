"""Entries and sources: one feed response's decided changes applied in one transaction.

What to store is decided in `aggregator.plan` (pure); here it is read for (`stored_copies`
and `known_for`, a few bulk reads) and written (`apply_update`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from aggregator.store._base import _row_id, _writing, parse_utc, utc_text
from aggregator.store.feeds import _schedule_values
from aggregator.store.stories import StoriesMixin
from aggregator.types import (
    AddSource,
    CreatedEntry,
    Enclosure,
    Entry,
    FeedState,
    FeedUpdate,
    InsertEntry,
    Known,
    Lookups,
    Placer,
    Rekey,
    ShownCopy,
    StoredSource,
    UpdateEntry,
)

_IN_CHUNK = 500  # values bound in one IN (...) list


class EntriesMixin(StoriesMixin):
    """Reads and writes of entries and their per-feed copies (sources)."""

    def stored_copies(self, state: FeedState) -> tuple[dict[str, StoredSource], frozenset[str]]:
        """This feed's stored items by id, and the ids of those retention deleted: what a
        response is first compared with (`plan.lookups` asks about the rest)."""
        conn = self.db.conn
        sources = {
            source_id: StoredSource(
                source_id, row_id, entry_row_id, digest, owner == state.feed_id, url
            )
            for source_id, row_id, entry_row_id, digest, owner, url in conn.execute(
                "SELECT s.source_entry_id, s.id, s.entry_id, s.fingerprint, e.feed_id, "
                "e.canonical_url FROM sources s JOIN entries e ON e.id = s.entry_id "
                "WHERE s.feed_id = ?",
                [state.feed_id],
            )
        }
        pruned = frozenset(
            row[0]
            for row in conn.execute(
                "SELECT source_entry_id FROM tombstones WHERE feed_id = ?", [state.feed_id]
            )
        )
        return sources, pruned

    def known_for(
        self,
        state: FeedState,
        stored: tuple[dict[str, StoredSource], frozenset[str]],
        lookups: Lookups,
    ) -> Known:
        """What `plan.plan_update` decides one response of this feed against: its stored copies
        (`stored_copies`) and the answers to `lookups`."""
        conn = self.db.conn
        sources, pruned = stored
        first_success, feed_id_taken, preferred = conn.execute(
            "SELECT last_success IS NULL, EXISTS (SELECT 1 FROM feeds other "
            "WHERE other.source_id = ? AND other.id != feeds.id), prefer FROM feeds WHERE id = ?",
            [lookups.feed_id, state.feed_id],
        ).fetchone()
        entry_by_url = dict(
            self._in(
                "SELECT canonical_url, min(id) FROM entries WHERE canonical_url IN ({}) "
                "GROUP BY canonical_url",
                lookups.canonical_urls,
            )
        )
        shown = {
            row_id: ShownCopy(parse_utc(published), bool(prefer))
            for row_id, published, prefer in self._in(
                "SELECT e.id, e.published, f.prefer FROM entries e "
                "JOIN feeds f ON f.id = e.feed_id WHERE e.id IN ({})",
                set(entry_by_url.values()),
            )
        }
        taken = frozenset(
            row[0]
            for row in self._in("SELECT uid FROM entries WHERE uid IN ({})", lookups.output_ids)
        )
        return Known(
            sources=sources,
            pruned=pruned,
            first_success=bool(first_success),
            feed_id_taken=bool(feed_id_taken),
            entry_by_url=entry_by_url,
            taken_output_ids=taken,
            shown=shown,
            preferred=bool(preferred),
        )

    def _in(self, sql: str, values: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` (one ``IN ({})``) over all `values`, bound in chunks."""
        values = sorted(values)
        for first in range(0, len(values), _IN_CHUNK):
            chunk = values[first : first + _IN_CHUNK]
            yield from self.db.conn.execute(sql.format(", ".join("?" * len(chunk))), chunk)

    def apply_update(self, update: FeedUpdate, place: Placer | None = None) -> list[CreatedEntry]:
        """Write one decided 200 response atomically: the feed row, then each intent. With
        `place`, each new entry is stored in the story it decides; without, its story is left
        for the caller to place (`pipeline.place_in_stories`). Returns the entries rows it
        created, with what story placement needs (nothing is re-read)."""
        state, row = update.state, update.row
        now_text = utc_text(row.fetched_at)
        created: list[CreatedEntry] = []
        with _writing(f"entries of feed {state.name}"), self.atomic():
            hints = row.hints
            feed_values: dict[str, Any] = {
                "final_url": row.final_url,
                "last_fetched": now_text,
                "last_success": now_text,
                "last_status": row.status,
                "last_error": None,
                "error_count": 0,
                "failing_since": None,
                "title": row.title,
                "link": row.link,
                "format": row.format,
                "etag": row.etag,
                "last_modified": row.last_modified,
                "last_result": "updated",
                "warning": row.warning,
                "hint_ttl_seconds": hints.ttl.total_seconds() if hints.ttl else None,
                "hint_update_period_seconds": (
                    hints.update_period.total_seconds() if hints.update_period else None
                ),
                "hint_skip_hours": json.dumps(sorted(hints.skip_hours)),
                "hint_skip_days": json.dumps(sorted(hints.skip_days)),
                **_schedule_values(row.schedule),
            }
            if row.moved_to:
                feed_values.update(moved_to=row.moved_to, moved_at=now_text)
            if row.adopted_source_id:
                feed_values["source_id"] = row.adopted_source_id
            self.db.conn.execute(
                f"UPDATE feeds SET {_set_clause(feed_values)} WHERE id = :row_id",
                {**feed_values, "row_id": state.feed_id},
            )
            inserted: dict[int, int] = {}  # index of an InsertEntry -> its entries row
            changed: list[int] = []  # entries rows whose text is new: the rules judge them again
            for index, intent in enumerate(update.intents):
                if isinstance(intent, InsertEntry):
                    entry_row_id = self._insert_entry(state, intent, now_text, place)
                    inserted[index] = entry_row_id
                    changed.append(entry_row_id)
                    created.append(CreatedEntry(entry_row_id, intent.entry.title, intent.published))
                    self._insert_source(
                        state, intent.entry, intent.fingerprint, entry_row_id, now_text
                    )
                elif isinstance(intent, AddSource):
                    onto = intent.entry_row_id
                    if onto is None:
                        onto = inserted[intent.insert_index]  # type: ignore[index]
                    self._insert_source(state, intent.entry, intent.fingerprint, onto, now_text)
                    self._copy_joined(state, intent, onto)
                elif isinstance(intent, UpdateEntry):
                    changed.extend(self._update(intent, now_text))
                elif isinstance(intent, Rekey):
                    self.db.conn.execute(
                        "UPDATE sources SET source_entry_id = ? WHERE id = ?",
                        [intent.entry.source_id, intent.stored.row_id],
                    )
                    if intent.update is not None:
                        changed.extend(self._update(intent.update, now_text))
            # Marked for the keep and block rules, applied before the next build, in one
            # statement: a row of a small table each, not a column of entries (clearing that
            # rewrote every new entry's row).
            self.db.conn.executemany(_RULES_PENDING, [(row_id,) for row_id in changed])
        return created

    def _insert_entry(
        self, state: FeedState, intent: InsertEntry, now_text: str, place: Placer | None
    ) -> int:
        entry = intent.entry
        published, updated = utc_text(intent.published), utc_text(intent.updated)
        placement = place(entry.title, intent.published) if place is not None else None
        story_id = self.story_for_new_entry(placement.decision) if placement is not None else None
        values = {
            "uid": intent.output_id,
            "feed_id": state.feed_id,
            "first_seen": now_text,
            **_entry_values(entry, intent.fingerprint),
            "published": published,
            "updated": updated,
            "story_id": story_id,
            "story_rule": placement.decision.rule if placement else None,
            "story_score": placement.decision.score if placement else None,
            "story_joined": now_text if placement else None,
            "story_word_count": len(placement.words) if placement else 0,
        }
        entry_row_id = _row_id(self.db.conn.execute(_INSERT_ENTRY, values).lastrowid)
        if placement is not None and story_id is not None:
            self.placed(
                entry_row_id,
                intent.output_id,
                max(published, updated),
                intent.published,
                placement,
                story_id,
                now_text,
            )
        # Indexed here, not by a trigger (migration m009); in a batch, just before it commits
        # (StoreBase.batch).
        searchable = (entry_row_id, entry.title, entry.summary, entry.content)
        if self._deferred_search is not None:
            self._deferred_search.append(searchable)
        else:
            self.db.conn.execute(
                "INSERT INTO entries_fts (rowid, title, summary, content) VALUES (?, ?, ?, ?)",
                searchable,
            )
        return entry_row_id

    def _insert_source(
        self, state: FeedState, entry: Entry, digest: str, entry_row_id: int, now_text: str
    ) -> None:
        self.db.conn.execute(
            _INSERT_SOURCE,
            {
                "entry_id": entry_row_id,
                "feed_id": state.feed_id,
                "source_entry_id": entry.source_id,
                "first_seen": now_text,
                "last_changed": now_text,
                **_source_values(entry, digest),
            },
        )

    def _copy_joined(self, state: FeedState, intent: AddSource, entry_row_id: int) -> None:
        """Another feed's copy of a stored entry: it moves the story's `updated` if newer, and
        becomes what the entry shows when it was decided so (`AddSource.takes_over`)."""
        entry = intent.entry
        own_time = (
            None
            if entry.date_clamped
            else max((t for t in (entry.published, entry.updated) if t is not None), default=None)
        )
        if own_time is not None:
            self.db.conn.execute(
                "UPDATE stories SET updated = max(updated, ?) "
                "WHERE id = (SELECT story_id FROM entries WHERE id = ?)",
                [utc_text(own_time), entry_row_id],
            )
        if not intent.takes_over:
            return
        if self._deferred_search and any(row[0] == entry_row_id for row in self._deferred_search):
            self._flush_search_index()  # its text trigger deletes the indexed text: index first
        values = {**_entry_values(entry, intent.fingerprint), "feed_id": state.feed_id}
        published = entry.published or entry.updated
        if published is not None and not entry.date_clamped:  # else the stored times stay
            values["published"] = utc_text(published)
            values["updated"] = utc_text(entry.updated or published)
        self.db.conn.execute(
            f"UPDATE entries SET {_set_clause(values)} WHERE id = :row_id",
            {**values, "row_id": entry_row_id},
        )
        (story_id,) = self.db.conn.execute(
            "SELECT story_id FROM entries WHERE id = ?", [entry_row_id]
        ).fetchone()
        if story_id is not None:
            self._choose_representative(story_id)

    def _update(self, intent: UpdateEntry, now_text: str) -> tuple[int, ...]:
        """Store a changed item: its source row, and its entry if that is the copy shown. The
        entries row whose text changed, if one did."""
        stored = intent.stored
        source_values = {
            "last_changed": now_text,
            **_source_values(intent.entry, intent.fingerprint),
        }
        self.db.conn.execute(
            f"UPDATE sources SET {_set_clause(source_values)} WHERE id = :row_id",
            {**source_values, "row_id": stored.row_id},
        )
        if not stored.shown:
            return ()  # another feed's copy is the one shown; ours stays queryable in sources
        entry_row_id = stored.entry_row_id
        if self._deferred_search and any(row[0] == entry_row_id for row in self._deferred_search):
            # Its text trigger (entries_au) deletes the indexed text: it must be indexed first.
            self._flush_search_index()
        values = _entry_values(intent.entry, intent.fingerprint)
        if intent.published is not None:
            values["published"] = utc_text(intent.published)
        values["updated"] = utc_text(intent.updated)
        self.db.conn.execute(
            f"UPDATE entries SET {_set_clause(values)} WHERE id = :row_id",
            {**values, "row_id": entry_row_id},
        )
        return (entry_row_id,)


# Fixed statements (prepared once, cached by sqlite3): sqlite-utils' Table.insert rebuilt its
# SQL and read the table's schema on every row, a fifth of a cold update's time.
def _insert_statement(table: str, columns: str) -> str:
    names = columns.split()
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"


_INSERT_ENTRY = _insert_statement(
    "entries",
    "uid feed_id first_seen title link canonical_url summary content authors tags enclosures "
    "date_clamped fingerprint published updated story_id story_rule story_score story_joined "
    "story_word_count",
)
_RULES_PENDING = "INSERT OR IGNORE INTO rules_pending (entry_id) VALUES (?)"
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
