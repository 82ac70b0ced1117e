"""SQLite storage: schema, migrations, writes and queries. The only module importing sqlite_utils.

One writer (the process running update/run), any number of readers: WAL mode, a busy timeout,
and one short transaction per feed response. Entries and the feed's new validators commit
together, so a crash can never leave an ETag for entries that were not stored (R-D7).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from aggregator.dedupe import (
    PRUNED,
    Change,
    PlannedEntry,
    feed_source_id,
    is_absolute_iri,
    output_id,
)
from aggregator.dedupe import scoped_id as scoped_output_id
from aggregator.errors import StorageError
from aggregator.types import (
    Coverage,
    Enclosure,
    Entry,
    FeedConfig,
    FeedHints,
    FeedState,
    FetchResult,
    Neighbour,
    OutputEntry,
    ParsedFeed,
    Schedule,
    SourceFeed,
    StoryDecision,
    StoryProfile,
)

BUSY_TIMEOUT_SECONDS = 30.0

migrations = Migrations("aggregator")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """feeds, entries, sources (each feed's copy of an entry), and full-text search."""
    db.execute(
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            source_id TEXT NOT NULL,
            title TEXT,
            configured_title TEXT,
            link TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            enabled INTEGER NOT NULL DEFAULT 1,
            format TEXT,
            final_url TEXT,
            etag TEXT,
            last_modified TEXT,
            added TEXT NOT NULL,
            last_fetched TEXT,
            last_success TEXT,
            last_status INTEGER,
            last_result TEXT,
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            warning TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            title TEXT NOT NULL,
            link TEXT,
            canonical_url TEXT,
            summary TEXT,
            content TEXT,
            authors TEXT NOT NULL DEFAULT '[]',
            tags TEXT NOT NULL DEFAULT '[]',
            enclosures TEXT NOT NULL DEFAULT '[]',
            published TEXT NOT NULL,
            updated TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            date_clamped INTEGER NOT NULL DEFAULT 0,
            fingerprint TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            source_entry_id TEXT NOT NULL,
            title TEXT NOT NULL,
            link TEXT,
            published TEXT,
            updated TEXT,
            fingerprint TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_changed TEXT NOT NULL
        )
        """
    )
    sources, entries = db.table("sources"), db.table("entries")
    sources.create_index(["feed_id", "source_entry_id"], unique=True, if_not_exists=True)
    sources.create_index(["entry_id"], if_not_exists=True)
    entries.create_index(["canonical_url"], if_not_exists=True)
    entries.create_index(["published"], if_not_exists=True)
    entries.create_index(["feed_id", "updated"], if_not_exists=True)  # atom:source updated
    entries.enable_fts(["title", "summary", "content"], create_triggers=True, tokenize="porter")


@migrations()
def m002_scheduling(db: sqlite_utils.Database) -> None:
    """Per-feed schedule (survives restarts), permanent moves, 410 disabling, publisher hints."""
    for column, kind in [
        ("moved_to", "TEXT"),
        ("moved_at", "TEXT"),
        ("disabled_reason", "TEXT"),
        ("failing_since", "TEXT"),
        ("next_due", "TEXT"),
        ("interval_seconds", "REAL"),
        ("interval_reason", "TEXT"),
        ("hint_ttl_seconds", "REAL"),
        ("hint_update_period_seconds", "REAL"),
        ("hint_skip_hours", "TEXT NOT NULL DEFAULT '[]'"),
        ("hint_skip_days", "TEXT NOT NULL DEFAULT '[]'"),
    ]:
        db.execute(f"ALTER TABLE feeds ADD COLUMN {column} {kind}")  # no transform(): R-D3
    db.table("feeds").create_index(["next_due"], if_not_exists=True)
    db.table("sources").create_index(["feed_id", "published"], if_not_exists=True)


@migrations()
def m003_stories(db: sqlite_utils.Database) -> None:
    """Same-story clustering: stories, each entry's story, a word index bounded by time."""
    db.execute(
        """
        CREATE TABLE stories (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            representative_id INTEGER NOT NULL REFERENCES entries(id),
            members INTEGER NOT NULL DEFAULT 1,
            first_seen TEXT NOT NULL,
            updated TEXT NOT NULL
        )
        """
    )
    for column, kind in [
        ("story_id", "INTEGER REFERENCES stories(id)"),
        ("story_rule", "TEXT"),
        ("story_score", "REAL"),
        ("story_joined", "TEXT"),
        ("story_word_count", "INTEGER NOT NULL DEFAULT 0"),
    ]:
        db.execute(f"ALTER TABLE entries ADD COLUMN {column} {kind}")
    db.execute("ALTER TABLE feeds ADD COLUMN prefer INTEGER NOT NULL DEFAULT 0")
    # Entries stored before stories existed each become a story of their own.
    db.execute(
        "INSERT INTO stories (uid, representative_id, first_seen, updated) "
        "SELECT uid, id, first_seen, updated FROM entries"
    )
    db.execute(
        "UPDATE entries SET story_rule = 'new', story_joined = first_seen, "
        "story_id = (SELECT s.id FROM stories s WHERE s.representative_id = entries.id)"
    )
    db.execute(
        """
        CREATE TABLE entry_words (
            word TEXT NOT NULL,
            published TEXT NOT NULL,
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            PRIMARY KEY (word, published, entry_id)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE story_words (
            story_id INTEGER NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
            word TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (story_id, word)
        ) WITHOUT ROWID
        """
    )
    db.table("entries").create_index(["story_id"], if_not_exists=True)
    db.table("entry_words").create_index(["entry_id"], if_not_exists=True)
    db.table("stories").create_index(["updated"], if_not_exists=True)


@migrations()
def m004_fts_on_text_changes_only(db: sqlite_utils.Database) -> None:
    """Reindex an entry for search only when its text changes, not on every story update."""
    db.execute("DROP TRIGGER IF EXISTS entries_au")
    db.execute(
        """
        CREATE TRIGGER entries_au AFTER UPDATE OF title, summary, content ON entries BEGIN
          INSERT INTO entries_fts (entries_fts, rowid, title, summary, content)
            VALUES ('delete', old.rowid, old.title, old.summary, old.content);
          INSERT INTO entries_fts (rowid, title, summary, content)
            VALUES (new.rowid, new.title, new.summary, new.content);
        END
        """
    )


@migrations()
def m005_views(db: sqlite_utils.Database) -> None:
    """Views for people: entries with their outlet and tags; stories with how many told them."""
    db.create_view(
        "entries_view",
        """
        SELECT e.id, e.uid, e.published, e.updated, f.name AS feed,
               coalesce(f.configured_title, f.title, f.name) AS feed_title,
               f.tags AS feed_tags, e.title, e.link, e.summary, e.content, e.tags, e.authors,
               e.story_id, (SELECT count(*) FROM sources s WHERE s.entry_id = e.id) AS sources
        FROM entries e JOIN feeds f ON f.id = e.feed_id
        """,
        replace=True,
    )
    db.create_view(
        "stories_view",
        """
        SELECT st.id, st.uid, st.updated, st.first_seen, st.members AS entries,
               (SELECT count(DISTINCT s.feed_id) FROM entries m JOIN sources s ON s.entry_id = m.id
                WHERE m.story_id = st.id) AS outlets,
               r.title, r.link, r.published, f.name AS feed
        FROM stories st JOIN entries r ON r.id = st.representative_id
        JOIN feeds f ON f.id = r.feed_id
        """,
        replace=True,
    )


@migrations()
def m006_retention(db: sqlite_utils.Database) -> None:
    """Tombstones for pruned items, and the lookup that bounds feeds that re-key their items."""
    db.execute(
        """
        CREATE TABLE tombstones (
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            source_entry_id TEXT NOT NULL,
            pruned TEXT NOT NULL,
            PRIMARY KEY (feed_id, source_entry_id)
        ) WITHOUT ROWID
        """
    )
    db.table("tombstones").create_index(["pruned"], if_not_exists=True)
    db.table("sources").create_index(["feed_id", "fingerprint"], if_not_exists=True)


def utc_text(moment: datetime) -> str:
    """ISO 8601 UTC text with a Z, the one date format stored (sorts as it reads)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@contextmanager
def _writing(what: str) -> Iterator[None]:
    """Turn a failed write into a StorageError naming what was being written."""
    try:
        yield
    except sqlite3.Error as e:
        raise StorageError(f"could not store {what}: {e}") from e


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed as the `feeds` command shows it."""

    name: str
    url: str
    title: str | None
    enabled: bool
    last_fetched: str | None
    last_result: str | None
    last_status: int | None
    last_error: str | None
    error_count: int
    entries: int
    final_url: str | None
    moved_to: str | None
    disabled_reason: str | None
    failing_since: str | None
    next_due: str | None
    interval_seconds: float | None
    interval_reason: str | None


@dataclass(frozen=True, slots=True)
class StoryMember:
    """One entry of a story, and why it joined."""

    feed: str
    title: str
    link: str | None
    published: str
    rule: str | None
    score: float | None
    representative: bool


@dataclass(frozen=True, slots=True)
class StoryRow:
    """A story as `aggregator stories` shows it."""

    id: int
    uid: str
    updated: str
    members: tuple[StoryMember, ...]


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """What a prune removed."""

    entries: int
    stories: int
    tombstones_expired: int


@dataclass(frozen=True, slots=True)
class WriteCounts:
    new: int = 0
    updated: int = 0
    created: tuple[int, ...] = ()  # entries rows created (not merged into one by URL)
    rekeyed: int = 0  # items the feed gave again under a new id (kept once, not duplicated)


class Store:
    """The aggregator's database. Create with :func:`open_store`."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path

    def close(self) -> None:
        self.db.conn.close()

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file so it does not grow without bound (R-D8)."""
        # A reader holding an old snapshot makes it fail: the next checkpoint will do.
        with suppress(sqlite3.OperationalError):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------ feeds

    def sync_feeds(self, feeds: Sequence[FeedConfig], now: datetime) -> dict[str, FeedState]:
        """Make the feeds table match the config (rows are never deleted: entries keep a home).

        A feed whose configured URL changed starts afresh: validators, a permanent move and a
        410 belonged to the old URL.
        """
        with _writing("the feed list"), self.db.atomic():
            for feed in feeds:
                existing = self.db.execute(
                    "SELECT id, url FROM feeds WHERE name = ?", [feed.name]
                ).fetchone()
                values: dict[str, Any] = {
                    "url": feed.url,
                    "configured_title": feed.title,
                    "tags": json.dumps(list(feed.tags), ensure_ascii=False),
                    "enabled": int(feed.enabled),
                    "prefer": int(feed.prefer),
                }
                if existing is None:
                    self.db.table("feeds").insert(
                        {
                            "name": feed.name,
                            "source_id": feed_source_id(feed.url),
                            "added": utc_text(now),
                            **values,
                        }
                    )
                    continue
                if existing[1] != feed.url:
                    values.update(
                        etag=None,
                        last_modified=None,
                        moved_to=None,
                        moved_at=None,
                        disabled_reason=None,
                        next_due=None,
                        error_count=0,
                        failing_since=None,
                    )
                self.db.table("feeds").update(existing[0], values)
        return self.feed_states([feed.name for feed in feeds])

    def feed_states(self, names: Iterable[str]) -> dict[str, FeedState]:
        wanted = list(names)
        rows = self.db.query(
            f"SELECT * FROM feeds WHERE name IN ({', '.join('?' * len(wanted))})", wanted
        )
        return {row["name"]: _feed_state(row) for row in rows}

    def due_feeds(self, names: Iterable[str], now: datetime) -> list[FeedState]:
        """Enabled, not disabled, configured feeds whose time has come, most overdue first."""
        wanted = list(names)
        rows = self.db.query(
            "SELECT * FROM feeds WHERE enabled AND disabled_reason IS NULL "
            "AND (next_due IS NULL OR next_due <= ?) "
            f"AND name IN ({', '.join('?' * len(wanted))}) ORDER BY next_due IS NOT NULL, next_due",
            [utc_text(now), *wanted],
        )
        return [_feed_state(row) for row in rows]

    def next_due(self, names: Iterable[str]) -> datetime | None:
        """The earliest time any of these feeds is due (None: nothing scheduled)."""
        wanted = list(names)
        row = self.db.execute(
            "SELECT min(coalesce(next_due, '')) FROM feeds WHERE enabled AND "
            f"disabled_reason IS NULL AND name IN ({', '.join('?' * len(wanted))})",
            wanted,
        ).fetchone()
        return parse_utc(row[0]) if row and row[0] else None

    def recent_entry_times(self, feed_id: int, limit: int = 20) -> list[datetime]:
        """Publication times of the feed's latest entries: its publishing rate, for "auto"."""
        rows = self.db.execute(
            "SELECT published FROM sources WHERE feed_id = ? AND published IS NOT NULL "
            "ORDER BY published DESC LIMIT ?",
            [feed_id, limit],
        ).fetchall()
        return [moment for (text,) in rows if (moment := parse_utc(text)) is not None]

    def known_fingerprints(self, feed_id: int) -> dict[str, str]:
        """source id -> fingerprint of everything this feed has given us (PRUNED if deleted)."""
        return dict(
            self.db.execute(
                "SELECT source_entry_id, ? FROM tombstones WHERE feed_id = ? "
                "UNION ALL SELECT source_entry_id, fingerprint FROM sources WHERE feed_id = ?",
                [PRUNED, feed_id, feed_id],
            ).fetchall()
        )

    def record_not_modified(
        self, state: FeedState, fetched: FetchResult, now: datetime, schedule: Schedule
    ) -> None:
        """A 304: keep entries, refresh validators if the server sent new ones (R-H2, R-H3)."""
        values: dict[str, Any] = {
            **_success_values(state, fetched, now),
            "last_result": "not-modified",
            **_schedule_values(schedule),
        }
        if fetched.headers.get("ETag"):
            values["etag"] = fetched.headers["ETag"]
        if fetched.headers.get("Last-Modified"):
            values["last_modified"] = fetched.headers["Last-Modified"]
        with _writing(f"feed {state.name}"), self.db.atomic():
            self.db.table("feeds").update(state.feed_id, values)

    def record_error(
        self,
        state: FeedState,
        message: str,
        http_status: int | None,
        now: datetime,
        schedule: Schedule,
        *,
        disable: bool = False,
    ) -> None:
        """A failed poll: stored entries and validators are left exactly as they were."""
        with _writing(f"feed {state.name}"), self.db.atomic():
            self.db.execute(
                "UPDATE feeds SET last_fetched = ?, last_status = ?, last_result = 'error', "
                "last_error = ?, error_count = error_count + 1, "
                "failing_since = coalesce(failing_since, ?), disabled_reason = ?, "
                "next_due = ?, interval_seconds = ?, interval_reason = ? WHERE id = ?",
                [
                    utc_text(now),
                    http_status,
                    message,
                    utc_text(now),
                    message if disable else None,
                    *_schedule_values(schedule).values(),
                    state.feed_id,
                ],
            )

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
        with _writing(f"entries of feed {state.name}"), self.db.atomic():
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
            if first_success and parsed.feed_id and is_absolute_iri(parsed.feed_id):
                # An Atom feed's own id names it in atom:source; adopted once, then kept.
                feed_values["source_id"] = parsed.feed_id
                state = replace(state, source_id=parsed.feed_id)
            self.db.table("feeds").update(state.feed_id, feed_values)
            in_document = {item.entry.source_id for item in planned}
            rekeyed = 0
            for item in planned:
                if item.change is Change.NEW and self._rekey(state, item, in_document, now_text):
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
            row = self.db.execute(
                "SELECT s.id, s.source_entry_id FROM sources s JOIN entries e ON e.id = s.entry_id "
                "WHERE s.feed_id = ? AND e.canonical_url = ? ORDER BY s.id",
                [state.feed_id, entry.canonical_url],
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
                uid = scoped_output_id(entry.source_id, state.source_id)
            published = entry.published or entry.updated
            updated = entry.updated or entry.published
            entry_row_id = (
                self.db.table("entries")
                .insert(
                    {
                        "uid": uid,
                        "feed_id": state.feed_id,
                        "first_seen": now_text,
                        **_entry_values(entry, item.fingerprint),
                        "published": utc_text(published) if published else now_text,
                        "updated": utc_text(updated) if updated else now_text,
                    }
                )
                .last_pk
            )
            created = entry_row_id
        self.db.table("sources").insert(
            {
                "entry_id": entry_row_id,
                "feed_id": state.feed_id,
                "source_entry_id": entry.source_id,
                "first_seen": now_text,
                "last_changed": now_text,
                **_source_values(entry, item.fingerprint),
            }
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
        self.db.table("sources").update(
            source_row_id,
            {"last_changed": now_text, **_source_values(entry, item.fingerprint)},
        )
        if owner_feed_id != state.feed_id:
            return  # another feed's copy is the one shown; ours stays queryable in sources
        values = _entry_values(entry, item.fingerprint)
        # A missing or clamped date never moves an entry's first publication time.
        published = entry.published if entry.published and not entry.date_clamped else None
        values["published"] = utc_text(published) if published else stored_published
        # It changed now; a feed that says when (and not in the future) knows better.
        fresh = entry.updated if entry.updated and not entry.date_clamped else None
        values["updated"] = utc_text(fresh) if fresh else now_text
        self.db.table("entries").update(entry_row_id, values)

    # ------------------------------------------------------------ stories

    @contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        """One atomic unit of work (nested writes become savepoints)."""
        with _writing(what), self.db.atomic():
            yield

    def entry_for_story(self, entry_id: int) -> tuple[str, datetime]:
        """The title and publication time of an entry, what story detection looks at."""
        title, published = self.db.execute(
            "SELECT title, published FROM entries WHERE id = ?", [entry_id]
        ).fetchone()
        return title, _must_utc(published)

    def story_candidates(
        self,
        entry_id: int,
        words: Sequence[str],
        published: datetime,
        window: timedelta,
        min_members: int,
    ) -> tuple[list[Neighbour], list[StoryProfile]]:
        """Other entries within the window (either side) sharing a word, and their stories.

        The word index is bounded by time, so the cost follows the window's traffic, not the
        size of the database.
        """
        if not words:
            return [], []
        marks = ", ".join("?" * len(words))
        rows = self.db.execute(
            f"""
            SELECT w.entry_id, e.story_id, count(*) AS shared, e.story_word_count
            FROM entry_words w JOIN entries e ON e.id = w.entry_id
            WHERE w.word IN ({marks}) AND w.published BETWEEN ? AND ? AND w.entry_id != ?
            GROUP BY w.entry_id
            """,
            [*words, utc_text(published - window), utc_text(published + window), entry_id],
        ).fetchall()
        neighbours = [Neighbour(*row) for row in rows if row[1] is not None]
        story_ids = sorted({n.story_id for n in neighbours})
        if not story_ids:
            return neighbours, []
        sizes = dict(
            self.db.execute(
                f"SELECT id, members FROM stories WHERE id IN ({', '.join('?' * len(story_ids))})"
                " AND members >= ?",
                [*story_ids, min_members],
            ).fetchall()
        )
        counts: dict[int, dict[str, int]] = {story: {} for story in sizes}
        if sizes:
            for story, word, count in self.db.execute(
                f"SELECT story_id, word, count FROM story_words WHERE story_id IN "
                f"({', '.join('?' * len(sizes))}) AND word IN ({marks})",
                [*sizes, *words],
            ):
                counts[story][word] = count
        profiles = [StoryProfile(story, sizes[story], counts[story]) for story in sorted(sizes)]
        return neighbours, profiles

    def place_in_story(
        self,
        entry_id: int,
        words: Sequence[str],
        published: datetime,
        decision: StoryDecision,
        now: datetime,
    ) -> int:
        """Index the entry's words and put it in the decided story (merging bridged ones)."""
        now_text = utc_text(now)
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO entry_words (word, published, entry_id) VALUES (?, ?, ?)",
            [(word, utc_text(published), entry_id) for word in words],
        )
        if decision.story_id is not None:
            story_id = decision.story_id
        else:
            uid, entry_updated = self.db.execute(
                "SELECT uid, updated FROM entries WHERE id = ?", [entry_id]
            ).fetchone()
            story_id = _row_id(
                self.db.table("stories")
                .insert(
                    {
                        "uid": uid,
                        "representative_id": entry_id,
                        "members": 0,
                        "first_seen": now_text,
                        "updated": entry_updated,
                    }
                )
                .last_pk
            )
        for other in decision.merge:
            self._merge_story(other, into=story_id)
        self.db.execute(
            "UPDATE entries SET story_id = ?, story_rule = ?, story_score = ?, story_joined = ?, "
            "story_word_count = ? WHERE id = ?",
            [story_id, decision.rule, decision.score, now_text, len(words), entry_id],
        )
        self.db.conn.executemany(
            "INSERT INTO story_words (story_id, word, count) VALUES (?, ?, 1) "
            "ON CONFLICT (story_id, word) DO UPDATE SET count = count + 1",
            [(story_id, word) for word in words],
        )
        # A story changes when a source joins it: its entry's `updated` moves (not at creation).
        self.db.execute(
            "UPDATE stories SET members = members + 1, "
            "updated = CASE WHEN members > 0 THEN max(updated, ?) ELSE updated END WHERE id = ?",
            [now_text, story_id],
        )
        self._choose_representative(story_id)
        return story_id

    def _merge_story(self, story_id: int, *, into: int) -> None:
        """Fold one story into another: its members, word counts and size move over."""
        self.db.execute("UPDATE entries SET story_id = ? WHERE story_id = ?", [into, story_id])
        self.db.execute(
            "INSERT INTO story_words (story_id, word, count) "
            "SELECT ?, word, count FROM story_words WHERE story_id = ? "
            "ON CONFLICT (story_id, word) DO UPDATE SET count = story_words.count + excluded.count",
            [into, story_id],
        )
        self.db.execute(
            "UPDATE stories SET members = members + "
            "(SELECT members FROM stories WHERE id = ?) WHERE id = ?",
            [story_id, into],
        )
        self.db.execute("DELETE FROM stories WHERE id = ?", [story_id])
        self.db.execute("DELETE FROM story_words WHERE story_id = ?", [story_id])

    def _choose_representative(self, story_id: int) -> None:
        """The earliest member from a preferred feed, else the earliest member."""
        self.db.execute(
            """
            UPDATE stories SET representative_id = (
                SELECT e.id FROM entries e JOIN feeds f ON f.id = e.feed_id
                WHERE e.story_id = ? ORDER BY f.prefer DESC, e.published, e.id LIMIT 1
            ) WHERE id = ?
            """,
            [story_id, story_id],
        )

    # ------------------------------------------------------------ retention

    def prune(
        self,
        *,
        older_than: datetime | None,
        max_per_feed: int | None,
        forget_tombstones_before: datetime,
        now: datetime,
    ) -> PruneCounts:
        """Delete old entries, keeping their ids as tombstones, in one transaction.

        A feed that still carries a pruned item must not bring it back as new, so each copy's
        id is remembered; stories lose the members (and word counts) they had, and die with
        their last one; the search index follows through its delete trigger.
        """
        with _writing("a prune"), self.db.atomic():
            self.db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS prune_victims (id INTEGER PRIMARY KEY)"
            )
            self.db.execute("DELETE FROM prune_victims")
            if older_than is not None:
                self.db.execute(
                    "INSERT OR IGNORE INTO prune_victims "
                    "SELECT id FROM entries WHERE published < ?",
                    [utc_text(older_than)],
                )
            if max_per_feed is not None:
                self.db.execute(
                    """
                    INSERT OR IGNORE INTO prune_victims SELECT id FROM (
                        SELECT id, row_number() OVER (
                            PARTITION BY feed_id ORDER BY published DESC, id DESC
                        ) AS newest FROM entries
                    ) WHERE newest > ?
                    """,
                    [max_per_feed],
                )
            (victims,) = self.db.execute("SELECT count(*) FROM prune_victims").fetchone()
            removed_stories = 0
            if victims:
                removed_stories = self._remove_victims(now)
            expired = self.db.execute(
                "DELETE FROM tombstones WHERE pruned < ?", [utc_text(forget_tombstones_before)]
            ).rowcount
            self.db.execute("DELETE FROM prune_victims")
        return PruneCounts(victims, removed_stories, expired)

    def _remove_victims(self, now: datetime) -> int:
        """Delete the entries listed in prune_victims; returns how many stories died."""
        victims = "SELECT id FROM prune_victims"
        self.db.execute(
            "INSERT OR REPLACE INTO tombstones (feed_id, source_entry_id, pruned) "
            f"SELECT feed_id, source_entry_id, ? FROM sources WHERE entry_id IN ({victims})",
            [utc_text(now)],
        )
        lost = Counter(
            self.db.execute(
                "SELECT e.story_id, w.word FROM entry_words w JOIN entries e ON e.id = w.entry_id "
                f"WHERE w.entry_id IN ({victims}) AND e.story_id IS NOT NULL"
            ).fetchall()
        )
        self.db.conn.executemany(
            "UPDATE story_words SET count = count - ? WHERE story_id = ? AND word = ?",
            [(n, story, word) for (story, word), n in lost.items()],
        )
        affected = [
            story
            for (story,) in self.db.execute(
                f"SELECT DISTINCT story_id FROM entries WHERE id IN ({victims}) "
                "AND story_id IS NOT NULL"
            )
        ]
        # Entries and stories point at each other: detach the victims first.
        self.db.execute(f"UPDATE entries SET story_id = NULL WHERE id IN ({victims})")
        died = 0
        for story in affected:
            (left,) = self.db.execute(
                "SELECT count(*) FROM entries WHERE story_id = ?", [story]
            ).fetchone()
            if left == 0:
                self.db.execute("DELETE FROM stories WHERE id = ?", [story])
                died += 1
            else:
                self.db.execute("UPDATE stories SET members = ? WHERE id = ?", [left, story])
                self._choose_representative(story)
        self.db.execute(f"DELETE FROM entries WHERE id IN ({victims})")
        self.db.execute("DELETE FROM story_words WHERE count <= 0")
        return died

    # ------------------------------------------------------------ queries

    def feed_rows(self) -> list[FeedRow]:
        rows = self.db.query(
            """
            SELECT f.*, (SELECT count(*) FROM sources s WHERE s.feed_id = f.id) AS entry_count
            FROM feeds f ORDER BY f.name
            """
        )
        same_name = [
            f.name for f in fields(FeedRow) if f.name not in ("title", "enabled", "entries")
        ]
        return [
            FeedRow(
                title=r["configured_title"] or r["title"],
                enabled=bool(r["enabled"]),
                entries=r["entry_count"],
                **{name: r[name] for name in same_name},
            )
            for r in rows
        ]

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

    def stories(
        self, *, since: datetime | None = None, min_members: int = 2, limit: int = 100
    ) -> list[StoryRow]:
        """Stories with every outlet's copy and why it joined, most recently changed first.

        A copy is a source: an entry merged with another by URL counts once per feed, with the
        rule "same-url"; ``min_members`` counts those copies.
        """
        stories = self.db.execute(
            """
            SELECT st.id, st.uid, st.updated, st.representative_id FROM stories st
            WHERE st.updated >= ? AND (
                SELECT count(*) FROM sources s JOIN entries e ON e.id = s.entry_id
                WHERE e.story_id = st.id
            ) >= ?
            ORDER BY st.updated DESC, st.id DESC LIMIT ?
            """,
            [utc_text(since) if since else "", min_members, limit],
        ).fetchall()
        if not stories:
            return []
        members: dict[int, list[StoryMember]] = {story[0]: [] for story in stories}
        representative = {story[0]: story[3] for story in stories}
        for row in self.db.query(
            """
            SELECT e.id, e.story_id, e.feed_id = s.feed_id AS own, e.story_rule, e.story_score,
                   coalesce(f.configured_title, f.title, f.name) AS feed,
                   s.title, s.link, coalesce(s.published, e.published) AS published
            FROM sources s JOIN entries e ON e.id = s.entry_id JOIN feeds f ON f.id = s.feed_id
            WHERE e.story_id IN ({})
            ORDER BY e.published, e.id, s.id
            """.format(", ".join("?" * len(members))),
            list(members),
        ):
            members[row["story_id"]].append(
                StoryMember(
                    feed=row["feed"],
                    title=row["title"],
                    link=row["link"],
                    published=row["published"],
                    rule=row["story_rule"] if row["own"] else "same-url",
                    score=row["story_score"] if row["own"] else 1.0,
                    representative=bool(row["own"])
                    and row["id"] == representative[row["story_id"]],
                )
            )
        return [
            StoryRow(id=sid, uid=uid, updated=updated, members=tuple(members[sid]))
            for sid, uid, updated, _ in stories
        ]

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

    def count(self, table: str) -> int:
        return self.db[table].count


def _feed_state(row: dict[str, Any]) -> FeedState:
    interval = row["interval_seconds"]
    return FeedState(
        feed_id=row["id"],
        name=row["name"],
        url=row["moved_to"] or row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        source_id=row["source_id"],
        error_count=row["error_count"],
        interval=timedelta(seconds=interval) if interval else None,
        hints=FeedHints(
            ttl=_seconds(row["hint_ttl_seconds"]),
            update_period=_seconds(row["hint_update_period_seconds"]),
            skip_hours=frozenset(json.loads(row["hint_skip_hours"])),
            skip_days=frozenset(json.loads(row["hint_skip_days"])),
        ),
        next_due=parse_utc(row["next_due"]),
        disabled_reason=row["disabled_reason"],
    )


def _row_id(value: object) -> int:
    """sqlite-utils types last_pk loosely; an insert into an INTEGER PRIMARY KEY gives an int."""
    assert isinstance(value, int)
    return value


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None


def _success_values(state: FeedState, fetched: FetchResult, now: datetime) -> dict[str, Any]:
    """What any answer from the server (200 or 304) resets, and a permanent move it records."""
    values: dict[str, Any] = {
        "final_url": fetched.url,
        "last_fetched": utc_text(now),
        "last_success": utc_text(now),
        "last_status": fetched.status,
        "last_error": None,
        "error_count": 0,
        "failing_since": None,
    }
    if fetched.redirected_permanently and fetched.url != state.url:
        # Only a chain of 301/308 moves a feed (RFC 9110 15.4.2, 15.4.9; R-H7).
        values.update(moved_to=fetched.url, moved_at=utc_text(now))
    return values


def _schedule_values(schedule: Schedule) -> dict[str, Any]:
    return {
        "next_due": utc_text(schedule.due) if schedule.due else None,
        "interval_seconds": schedule.interval.total_seconds(),
        "interval_reason": schedule.reason,
    }


def _entry_values(entry: Entry, digest: str) -> dict[str, Any]:
    return {
        "title": entry.title,
        "link": entry.link,
        "canonical_url": entry.canonical_url,
        "summary": entry.summary,
        "content": entry.content,
        "authors": json.dumps(list(entry.authors), ensure_ascii=False),
        "tags": json.dumps(list(entry.tags), ensure_ascii=False),
        "enclosures": json.dumps(
            [{"url": e.url, "type": e.type, "length": e.length} for e in entry.enclosures],
            ensure_ascii=False,
        ),
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


def _must_utc(text: str) -> datetime:
    moment = parse_utc(text)
    assert moment is not None
    return moment


@contextmanager
def open_store(path: Path) -> Iterator[Store]:
    """Open (creating and migrating if needed) the database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA foreign_keys = ON")
        if db.journal_mode != "wal":
            db.enable_wal()
        migrations.apply(db)
    except (sqlite3.Error, OSError) as e:
        raise StorageError(f"cannot open database {path}: {e}") from e
    store = Store(db, path)
    try:
        yield store
    finally:
        store.close()
