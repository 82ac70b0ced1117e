"""The database schema as versioned migrations (sqlite-utils Migrations, applied on open).

Never edit an applied migration: add the next one. sqlite-utils' `transform()` is avoided: it
rebuilds the table and drops its triggers, the full-text index's among them.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

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
        db.execute(
            f"ALTER TABLE feeds ADD COLUMN {column} {kind}"
        )  # no transform(): it drops triggers
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


@migrations()
def m007_word_frequency(db: sqlite_utils.Database) -> None:
    """How many stored headlines carry each word: common words stop finding story candidates."""
    db.execute(
        "CREATE TABLE word_frequency (word TEXT PRIMARY KEY, entries INTEGER NOT NULL) "
        "WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO word_frequency (word, entries) "
        "SELECT word, count(*) FROM entry_words GROUP BY word"
    )


@migrations()
def m008_window_word_counts(db: sqlite_utils.Database) -> None:
    """Drop m007's all-history word counts: story lookup now counts words in its time window.

    Counted over all history, more words passed the limit as the database grew, and fewer new
    entries found their story; the count in the window is an index range, bounded by the limit.
    """
    db.execute("DROP TABLE IF EXISTS word_frequency")


@migrations()
def m009_search_index_written_by_the_store(db: sqlite_utils.Database) -> None:
    """New entries are added to entries_fts by the store, as it inserts them.

    Through the AFTER INSERT trigger, each entry cost ~210 us against ~80 us written directly
    (bench/writer_bench.py): a trigger runs inside a statement savepoint, and FTS5 (SQLite 3.40)
    flushes its pending terms to disk at every savepoint, so each row became its own index
    segment to merge. Deletes and text updates keep their triggers (entries_ad, entries_au);
    entries are only ever inserted by `EntriesMixin.apply_update`.
    """
    db.execute("DROP TRIGGER IF EXISTS entries_ai")


@migrations()
def m010_big_stories(db: sqlite_utils.Database) -> None:
    """Find the window's stories big enough for the story-signature rule without reading the
    window's every story (35,000 at 1,000 feeds: 23 ms a lookup, against 3 us from this)."""
    db.table("stories").create_index(["members", "updated"], if_not_exists=True)


@migrations()
def m011_big_stories_by_time(db: sqlite_utils.Database) -> None:
    """Replace m010's (members, updated) index: it read every big story of all history, and
    placements at 1M stored entries cost 1.7x those at 10k. The window's big stories come from
    a partial index by time, which holds stories of 10 members or more (the story-signature
    rule's minimum size then; m013 drops it with the rule)."""
    db.execute("DROP INDEX IF EXISTS idx_stories_members_updated")
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_stories_big_updated ON stories(updated) WHERE members >= 10"
    )


@migrations()
def m012_entry_words_by_time(db: sqlite_utils.Database) -> None:
    """Key the headline-word index by time: the writer now keeps the story window's postings
    in memory (store/window.py) and loads them a day range at a time, which keyed by word was a
    scan of the whole table. Nothing looks words up across entries in SQL any more."""
    db.execute(
        """
        CREATE TABLE entry_words_by_time (
            word TEXT NOT NULL,
            published TEXT NOT NULL,
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            PRIMARY KEY (published, entry_id, word)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        "INSERT INTO entry_words_by_time (word, published, entry_id) "
        "SELECT word, published, entry_id FROM entry_words ORDER BY published, entry_id, word"
    )
    db.execute("DROP TABLE entry_words")
    db.execute("ALTER TABLE entry_words_by_time RENAME TO entry_words")
    db.execute("CREATE INDEX idx_entry_words_entry_id ON entry_words(entry_id)")


@migrations()
def m013_story_centroids(db: sqlite_utils.Database) -> None:
    """Stories as wholes (issue 12): each story word carries its summed weight, so a story's
    centroid is read with its rows. Filled from the stored headline words; the signature
    rule's big-story index goes with the rule. `aggregator stories --rebuild` re-places old
    entries with the current rules."""
    from aggregator.stories.words import headline_vector

    db.execute("ALTER TABLE story_words ADD COLUMN weight REAL NOT NULL DEFAULT 0")
    db.execute("DROP INDEX IF EXISTS idx_stories_big_updated")
    headlines: dict[tuple[int, int], list[str]] = {}
    for entry, story, word in db.execute(
        "SELECT w.entry_id, e.story_id, w.word FROM entry_words w "
        "JOIN entries e ON e.id = w.entry_id WHERE e.story_id IS NOT NULL"
    ):
        headlines.setdefault((entry, story), []).append(word)
    weights: dict[tuple[int, str], float] = {}
    for (_, story), words in headlines.items():
        for word, weight in headline_vector(words).items():
            weights[story, word] = weights.get((story, word), 0.0) + weight
    db.conn.executemany(
        "UPDATE story_words SET weight = ? WHERE story_id = ? AND word = ?",
        [(weight, story, word) for (story, word), weight in weights.items()],
    )


@migrations()
def m014_keep_and_block_rules(db: sqlite_utils.Database) -> None:
    """Keep and block rules (issue 16): each entry's verdict, and what it was judged under.

    `entries.filtered_by` is the rule that leaves the entry out of the outputs (NULL: shown),
    found newest first by a partial index holding the filtered ones only. `rules_pending` lists
    the entries inserted or changed since the rules last judged them, so a poll judges only
    those: a table of its own, as marking a column of `entries` and clearing it rewrote each
    new entry's row (1.3 s for 50,000 entries). `rule_state` holds the fingerprint of the rules
    last applied and when: other rules mean every entry is judged again. No row yet: the first
    application judges every entry.
    """
    db.execute("ALTER TABLE entries ADD COLUMN filtered_by TEXT")
    db.execute(
        "CREATE INDEX idx_entries_filtered ON entries(published) WHERE filtered_by IS NOT NULL"
    )
    db.execute(
        "CREATE TABLE rules_pending ("
        "entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE)"
    )
    db.execute(
        """
        CREATE TABLE rule_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            fingerprint TEXT NOT NULL,
            evaluated TEXT NOT NULL
        )
        """
    )
    db.create_view(
        "entries_view",
        """
        SELECT e.id, e.uid, e.published, e.updated, f.name AS feed,
               coalesce(f.configured_title, f.title, f.name) AS feed_title,
               f.tags AS feed_tags, e.title, e.link, e.summary, e.content, e.tags, e.authors,
               e.story_id, (SELECT count(*) FROM sources s WHERE s.entry_id = e.id) AS sources,
               e.filtered_by
        FROM entries e JOIN feeds f ON f.id = e.feed_id
        """,
        replace=True,
    )


@migrations()
def m015_stories_by_representative(db: sqlite_utils.Database) -> None:
    """Index stories by their representative. A new entry is now stored with its story in the
    same row write, the story's row just after it, under foreign keys checked at commit; while
    one is pending, SQLite looks for the stories naming each entry inserted, and without this
    index that was a scan of every story, for every entry (`StoriesMixin.story_for_new_entry`).
    Deleting an entry (retention) looks them up the same way."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_stories_representative_id ON stories(representative_id)"
    )


@migrations()
def m016_entry_words_by_entry(db: sqlite_utils.Database) -> None:
    """Key the headline-word index by entry, without a time of its own. Keyed by time (m012),
    each new entry's words went in at random places in it, and a second index by entry was
    kept beside it: two B-trees written per word, and thousands of pages dirtied by each
    commit. Keyed by entry, they are appended. The window reads a range of days through
    `entries.published` (indexed) joined to this key, as fast as the range by time was; the
    entry's time is its own, so it cannot go stale when a feed changes an entry's date."""
    db.execute(
        """
        CREATE TABLE entry_words_by_entry (
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            word TEXT NOT NULL,
            PRIMARY KEY (entry_id, word)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        "INSERT OR IGNORE INTO entry_words_by_entry (entry_id, word) "
        "SELECT entry_id, word FROM entry_words ORDER BY entry_id, word"
    )
    db.execute("DROP TABLE entry_words")  # and its index by entry
    db.execute("ALTER TABLE entry_words_by_entry RENAME TO entry_words")
