"""The store on a real SQLite file: migrations, WAL, FTS kept in sync, readers not blocked."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.errors import StorageError
from aggregator.pipeline import apply_response
from aggregator.store import WRITER_CACHE_KIB, feed_listing, migrations, open_store
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
        apply_response(store, state, result, parsed(first), NOW, LATER)
        hits = list(store.db["entries"].search("volcano"))
        assert [h["title"] for h in hits] == ["Volcano erupts in Iceland"]
        changed = Entry("1", "Glacier melts in Iceland", "https://f.example/1")
        apply_response(store, state, result, parsed(changed), NOW, LATER)
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


def test_a_batch_commits_its_units_and_indexes_them_for_search_once(tmp_path: Path) -> None:
    """Feeds' responses committed together (StoreBase.batch): a unit that fails takes only its
    own rows (search rows included) with it; an entry inserted and then changed within the
    batch is indexed with its new text; the full-text index stays consistent throughout."""
    from aggregator.errors import StorageError

    feeds = [FeedConfig(url=f"https://f{n}.example/rss", name=f"f{n}") for n in range(3)]
    result = FetchResult(200, "https://f.example/rss", {"ETag": '"e"'}, b"")
    with open_store(tmp_path / "a.db") as store:
        states = store.sync_feeds(feeds, NOW)

        def store_entry(feed: str, entry: Entry) -> None:
            apply_response(store, states[feed], result, parsed(entry), NOW, LATER)

        def indexed(word: str) -> list[int]:
            """The rows the search index holds for `word` (as this connection sees it, the
            batch's included), whether or not an entry has that row."""
            sql = "SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?"
            return [row for (row,) in store.db.execute(sql, [word])]

        with store.batch("three feeds"):
            with store.transaction("f0"):
                store_entry("f0", Entry("1", "Volcano erupts in Iceland", "https://f0.example/1"))
            assert indexed("volcano") == []  # not yet: indexed in one go before the commit
            with pytest.raises(StorageError), store.transaction("f1"):
                store_entry("f1", Entry("1", "Glacier volcano tremor", "https://f1.example/1"))
                raise StorageError("this feed's storage failed")
            with store.transaction("f2"):
                store_entry("f2", Entry("1", "Lava reaches the sea", "https://f2.example/1"))
                store_entry("f2", Entry("1", "Lava reaches the harbour", "https://f2.example/1"))
        titles = [t for (t,) in store.db.execute("SELECT title FROM entries ORDER BY id")]
        assert titles == ["Volcano erupts in Iceland", "Lava reaches the harbour"]
        store.db.execute("INSERT INTO entries_fts (entries_fts) VALUES ('integrity-check')")
        store.db.execute(
            "INSERT INTO entries_fts (entries_fts, rank) VALUES ('integrity-check', 1)"
        )  # the index matches the table's text, not only itself

        def found(word: str) -> list[str]:
            return [h["title"] for h in store.db["entries"].search(word)]

        assert found("volcano") == ["Volcano erupts in Iceland"]
        assert found("harbour") == ["Lava reaches the harbour"]
        assert found("sea") == [] and found("glacier") == []
        assert indexed("glacier") == indexed("tremor") == []  # f1's row went with f1


def test_units_nest_as_savepoints_of_one_reused_statement(tmp_path: Path) -> None:
    """A failed inner unit is undone alone; every savepoint is the same statement text
    (sqlite-utils names each one at random, so each was compiled anew: one per feed)."""
    with open_store(tmp_path / "a.db") as store:
        store.db.execute("CREATE TABLE notes (note TEXT)")
        said: list[str] = []
        store.db.conn.set_trace_callback(
            lambda sql: said.append(sql) if "SAVEPOINT" in sql else None
        )
        with store.transaction("outer"):
            store.db.execute("INSERT INTO notes VALUES ('kept')")
            with pytest.raises(StorageError), store.transaction("failed"):
                store.db.execute("INSERT INTO notes VALUES ('undone')")
                raise sqlite3.IntegrityError("this unit fails")
            with store.transaction("inner"), store.transaction("innermost"):
                store.db.execute("INSERT INTO notes VALUES ('kept too')")
        store.db.conn.set_trace_callback(None)
        assert [n for (n,) in store.db.execute("SELECT note FROM notes")] == ["kept", "kept too"]
        assert set(said) == {
            "SAVEPOINT aggregator_unit",
            "ROLLBACK TO SAVEPOINT aggregator_unit",
            "RELEASE SAVEPOINT aggregator_unit",
        }
        assert said.count("SAVEPOINT aggregator_unit") == 3


def test_the_feed_listing_merges_the_config_with_the_stored_state(tmp_path: Path) -> None:
    """Issue 14 #8: `feeds` before the first update was an empty table."""
    a, b = FeedConfig("https://a.example/rss", "a"), FeedConfig("https://b.example/rss", "b")
    gone = FeedConfig("https://gone.example/rss", "gone")
    assert feed_listing([b, a], []) == feed_listing([a, b], [])
    fresh = feed_listing([b, a], [])
    assert [(r.name, r.url, r.last_result, r.entries) for r in fresh] == [
        ("a", "https://a.example/rss", None, 0),
        ("b", "https://b.example/rss", None, 0),
    ]
    with open_store(tmp_path / "a.db") as store:
        store.sync_feeds([a, gone], NOW)
        store.record_error(store.feed_states(["a"])["a"], "HTTP 500", 500, NOW, LATER)
        stored = store.feed_rows()
    listed = feed_listing([b, a], stored)
    assert [(r.name, r.last_status) for r in listed] == [("a", 500), ("b", None), ("gone", None)]
    assert listed[0] == next(r for r in stored if r.name == "a")


def test_the_writer_keeps_a_page_cache_its_indexes_fit_in(tmp_path: Path) -> None:
    """SQLite's default page cache is 2 MiB; the store asks for WRITER_CACHE_KIB so story and
    fingerprint index inserts do not read their pages back from the file (docs/performance.md)."""
    with open_store(tmp_path / "a.db") as store:
        (size,) = store.db.conn.execute("PRAGMA cache_size").fetchone()
    assert size == -WRITER_CACHE_KIB
    assert WRITER_CACHE_KIB >= 16 * 1024


def test_a_new_entry_is_written_once_with_its_story(tmp_path: Path) -> None:
    """The story is decided before the entries row is written (`pipeline.story_placer`): no
    UPDATE rewrites the row after its insert. A new story's row follows its entry's, under
    foreign keys checked at commit, which leaves none broken."""
    from aggregator.pipeline import store_response
    from aggregator.stories import story_words

    headline = "Putin Strengthens Ties with Kim Jong Un Ahead of Trump Meeting"
    feeds = [FeedConfig(url=f"https://{name}.example/rss", name=name) for name in ("a", "b")]
    with open_store(tmp_path / "a.db") as store:
        states = store.sync_feeds(feeds, NOW)
        seen: list[str] = []
        store.db.conn.set_trace_callback(seen.append)
        for name in ("a", "b"):
            entry = Entry("1", headline, f"https://{name}.example/1", published=NOW)
            result = FetchResult(200, f"https://{name}.example/rss", {}, b"")
            store_response(store, states[name], result, parsed(entry), NOW, LATER)
        store.db.conn.set_trace_callback(None)
        assert not [s for s in seen if s.lstrip().upper().startswith("UPDATE ENTRIES")], seen
        rows = store.db.execute(
            "SELECT id, story_id, story_rule, story_score, story_joined, story_word_count "
            "FROM entries ORDER BY id"
        ).fetchall()
        first, second = rows
        assert first[1] == second[1] is not None
        assert (first[2], second[2], second[3]) == ("new", "same-title", 1.0)
        assert first[4] == second[4] == "2026-11-25T12:00:00Z"
        assert first[5] == len(story_words(headline)) == 9
        assert store.db.execute("SELECT representative_id, members FROM stories").fetchall() == [
            (first[0], 2)
        ]
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        indexes = {i.name for i in store.db["stories"].indexes}
        assert "idx_stories_representative_id" in indexes  # m015: FK lookups, not scans
