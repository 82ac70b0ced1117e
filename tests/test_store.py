"""The store on a real SQLite file: migrations, WAL, FTS kept in sync, readers not blocked."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.dedupe import plan
from aggregator.store import migrations, open_store
from aggregator.types import Entry, FeedConfig, FetchResult, ParsedFeed, Schedule

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
LATER = Schedule(NOW + timedelta(minutes=30), timedelta(minutes=30), "config")


def parsed(*entries: Entry) -> ParsedFeed:
    return ParsedFeed("rss20", "Feed", "https://f.example/", None, None, entries)


def test_schema_wal_fts_and_idempotent_migrations(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with open_store(path) as store:
        assert store.db.journal_mode == "wal"
        assert {"feeds", "entries", "sources", "entries_fts"} <= set(store.db.table_names())
        triggers = {t.name for t in store.db.triggers}
        # Inserts are indexed by the store itself (m009: cheaper than a trigger on FTS5).
        assert {"entries_ad", "entries_au"} <= triggers and "entries_ai" not in triggers
        assert migrations.pending(store.db) == []
        applied = [m.name for m in migrations.applied(store.db)]
    with open_store(path) as store:  # opening again applies nothing twice
        assert [m.name for m in migrations.applied(store.db)] == applied
        assert store.db.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_entries_are_searchable_and_stay_in_sync(tmp_path: Path) -> None:
    with open_store(tmp_path / "a.db") as store:
        state = store.sync_feeds([FeedConfig(url="https://f.example/rss", name="f")], NOW)["f"]
        first = Entry(
            "1", "Volcano erupts in Iceland", "https://f.example/1", summary="<p>lava</p>"
        )
        result = FetchResult(200, "https://f.example/rss", {"ETag": '"e"'}, b"")
        store.record_update(state, result, parsed(first), plan([first], {}), NOW, LATER)
        hits = list(store.db["entries"].search("volcano"))
        assert [h["title"] for h in hits] == ["Volcano erupts in Iceland"]
        changed = Entry("1", "Glacier melts in Iceland", "https://f.example/1")
        known = store.known_fingerprints(state.feed_id)
        store.record_update(state, result, parsed(changed), plan([changed], known), NOW, LATER)
        assert list(store.db["entries"].search("volcano")) == []
        assert [h["title"] for h in store.db["entries"].search("glacier")] == [
            "Glacier melts in Iceland"
        ]


def test_a_reader_sees_the_last_commit_while_a_write_is_open(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with open_store(path) as store:
        store.sync_feeds([FeedConfig(url="https://f.example/rss", name="f")], NOW)
        store.db.execute("BEGIN IMMEDIATE")
        store.db.execute("UPDATE feeds SET title = 'uncommitted'")
        reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1)
        assert reader.execute("SELECT title FROM feeds").fetchall() == [(None,)]
        reader.close()
        store.db.execute("ROLLBACK")


def test_feed_rows_survive_removal_from_config(tmp_path: Path) -> None:
    with open_store(tmp_path / "a.db") as store:
        store.sync_feeds([FeedConfig(url="https://a/", name="a")], NOW)
        states = store.sync_feeds([FeedConfig(url="https://b/", name="b")], NOW)
        assert set(states) == {"b"}
        assert [r.name for r in store.feed_rows()] == ["a", "b"]
