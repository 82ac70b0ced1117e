"""The story window held in memory (stories/index.py) finds exactly what the tables hold.

The reference is the same index read afresh from the tables (by a store just opened): every
placement of a randomized history is checked against it, through loads, merges, evictions,
reloads after a rollback, another connection's writes and a prune.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from aggregator.errors import StorageError
from aggregator.pipeline import apply_response
from aggregator.store import Store, migrations, open_store, utc_text
from aggregator.store.stories import DAY_WORDS
from aggregator.stories import StoryPolicy, decide, headline_vector, story_words
from aggregator.stories import index as index_module
from aggregator.stories.index import DAY, WindowIndex
from aggregator.types import (
    Entry,
    FeedConfig,
    FetchResult,
    ParsedFeed,
    Schedule,
    StoryCandidate,
    StoryDecision,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
# The window reading its days' words (the trace writes the parameters in).
DAY_LOAD = re.compile(re.escape(DAY_WORDS).replace(r"\?", "'([^']+)'"))
SCHEDULE = Schedule(None, timedelta(hours=1), "test")
# Two words in most headlines (more than CANDIDATE_WORD_LIMIT in a window), then a long tail.
FREQUENT = ["market", "police"]
TAIL = [f"w{n}" for n in range(60)]


def comparable(found: Sequence[StoryCandidate]) -> list[tuple[object, ...]]:
    """Candidates with their centroids rounded (sums in another order differ in the last bit)."""
    return [
        (
            c.story_id,
            c.members,
            c.shared,
            c.same_title,
            round(c.norm, 6),
            sorted((w, round(v, 6)) for w, v in c.centroid.items()),
        )
        for c in found
    ]


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def headline(rng: random.Random) -> str:
    words = [w for w in FREQUENT if rng.random() < 0.6]
    words += rng.sample(TAIL[: rng.choice([15, 60])], rng.randint(1, 5))
    rng.shuffle(words)
    return " ".join(words)


def store_one(store: Store, title: str, published: datetime, n: int) -> int:
    """The write path for one new entry; returns its entries row."""
    state = store.sync_feeds([FeedConfig(url="https://f.example/rss", name="f")], START)["f"]
    entry = Entry(f"e{n}", title, f"https://f.example/{n}", published=published)
    parsed = ParsedFeed("rss20", "f", None, None, None, (entry,))
    _, (created,) = apply_response(
        store, state, FetchResult(200, state.url, {}, b""), parsed, published, SCHEDULE
    )
    return created.entry_id


def candidates_checked(
    store: Store, entry_id: int, words: Sequence[str], published: datetime, policy: StoryPolicy
) -> list[StoryCandidate]:
    """The entry's candidates, checked against those of an index read afresh from the tables
    by a store just opened (the cache kept through loads, adds, merges and evictions must
    equal it). That store sees what is committed: the entry's unit has placed nothing yet."""
    found = store.story_candidates(words, published, policy.window, policy.min_words_in_common)
    with open_store(store.path) as fresh:
        expected = fresh.story_candidates(
            words, published, policy.window, policy.min_words_in_common
        )
    assert comparable(found) == comparable(expected)
    return found


def place_checked(store: Store, entry_id: int, policy: StoryPolicy, check: bool = True) -> int:
    """Place an entry, its candidates checked against the tables (`candidates_checked`)."""
    title, published = store.entry_for_story(entry_id)
    words = story_words(title)
    if check:
        found = candidates_checked(store, entry_id, words, published, policy)
    else:
        found = store.story_candidates(words, published, policy.window, policy.min_words_in_common)
    vector = headline_vector(words)
    decision = decide(vector, found, policy)
    return store.place_in_story(entry_id, words, vector, published, decision, published)


@pytest.mark.parametrize("entries_held", [100_000, 150])
def test_candidates_match_the_tables_through_a_random_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries_held: int
) -> None:
    """900 headlines over 40 days, placed out of time order: loads, adds, merges and (150
    entries held: every far jump evicts and reloads) evictions all agree with the tables."""
    monkeypatch.setattr(index_module, "MAX_ENTRIES", entries_held)
    policy = StoryPolicy()
    rng = random.Random(7)
    with open_store(tmp_path / "a.db") as store:
        statements: list[str] = []
        store.db.conn.set_trace_callback(statements.append)
        for n in range(900):
            published = START + timedelta(seconds=rng.randrange(40 * DAY))
            with store.transaction("one"):
                place_checked(store, store_one(store, headline(rng), published, n), policy)
        store.db.conn.set_trace_callback(None)
        # The days the window read from entry_words: held, each is read once; evicted (150
        # entries held), some are read again.
        days = Counter(
            day
            for start, end in DAY_LOAD.findall("\n".join(statements))
            for day in range(_epoch(start) // DAY, _epoch(end) // DAY)
        )
        assert len(days) >= 40
        assert (max(days.values()) > 1) is (entries_held < 900), days
        (joined,) = store.db.execute(
            "SELECT count(*) FROM entries WHERE story_rule != 'new'"
        ).fetchone()
        assert joined > 100  # the history did exercise the rules, not only "new"


MOMENT = START + timedelta(days=3)
POLICY = StoryPolicy()


def place(store: Store, title: str, n: int) -> None:
    """Store and place one entry at MOMENT, in a transaction of its own."""
    with store.transaction(f"entry {n}"):
        place_checked(store, store_one(store, title, MOMENT, n), POLICY)


def neighbours_of(store: Store, title: str, n: int) -> list[int]:
    """The members of the candidate stories a new entry at MOMENT finds (stored, not placed)."""
    with store.transaction(f"entry {n}"):
        entry = store_one(store, title, MOMENT, n)
        words = story_words(store.entry_for_story(entry)[0])
        found = candidates_checked(store, entry, words, MOMENT, POLICY)
        stories = [c.story_id for c in found]
        if not stories:
            return []
        members = store.db.execute(
            f"SELECT id FROM entries WHERE story_id IN ({', '.join('?' * len(stories))})",
            stories,
        ).fetchall()
    return sorted(member for (member,) in members)


def test_a_story_is_never_updated_before_a_member_was_published(tmp_path: Path) -> None:
    """The window's big stories are found by `updated` (_big_stories_in_window): a story made
    by an entry the feed says was updated before it was published starts at the later date."""
    with open_store(tmp_path / "a.db") as store:
        state = store.sync_feeds([FeedConfig(url="https://f.example/rss", name="f")], START)["f"]
        entry = Entry(
            "e1",
            "volcano erupts grindavik",
            "https://f.example/1",
            published=MOMENT,
            updated=MOMENT - timedelta(days=2),
        )
        with store.transaction("one"):
            _, created = apply_response(
                store,
                state,
                FetchResult(200, state.url, {}, b""),
                ParsedFeed("rss20", "f", None, None, None, (entry,)),
                MOMENT,
                SCHEDULE,
            )
            words = story_words(entry.title)
            store.place_in_story(
                created[0].entry_id,
                words,
                headline_vector(words),
                MOMENT,
                StoryDecision(None),
                MOMENT,
            )
        assert store.db.execute("SELECT updated FROM stories").fetchall() == [(utc_text(MOMENT),)]


def test_the_window_is_checked_for_other_writers_once_a_unit_of_work(tmp_path: Path) -> None:
    """No other connection can commit inside a unit (this one writes): the window asks SQLite
    whether it is stale (PRAGMA data_version) at the unit's first placement only."""
    with open_store(tmp_path / "a.db") as store:
        assert store.current_unit() is None
        with store.transaction("a"):
            first = store.current_unit()
            with store.transaction("inner"):
                assert store.current_unit() == first is not None
        assert store.current_unit() is None
        with pytest.raises(StorageError), store.transaction("b"):
            assert store.current_unit() not in (None, first)
            raise StorageError("rolled back")
        assert store.current_unit() is None
        asked: list[str] = []
        store.db.conn.set_trace_callback(
            lambda sql: asked.append(sql) if sql == "PRAGMA data_version" else None
        )
        with store.transaction("two placements"):
            for n in (1, 2):
                entry = store_one(store, "volcano erupts grindavik", MOMENT, n)
                place_checked(store, entry, POLICY, check=False)
        assert len(asked) == 1
        with store.transaction("entry 3"):
            entry = store_one(store, "volcano erupts near grindavik", MOMENT, 3)
            place_checked(store, entry, POLICY, check=False)
        assert len(asked) == 2


def test_a_rolled_back_placement_is_not_a_candidate(tmp_path: Path) -> None:
    with open_store(tmp_path / "a.db") as store:
        place(store, "volcano erupts grindavik iceland", 1)
        with pytest.raises(StorageError), store.transaction("rolled back"):
            place_checked(
                store, store_one(store, "volcano erupts near grindavik", MOMENT, 2), POLICY
            )
            raise StorageError("disk full")
        # The window was dropped with what it held: it finds what the tables hold.
        assert neighbours_of(store, "grindavik volcano erupts again", 3) == [1]


def test_another_connection_s_placements_are_seen(tmp_path: Path) -> None:
    """Two writers (the service and an `aggregator update`): a commit by the other connection
    makes this one reload its window (PRAGMA data_version)."""
    path = tmp_path / "a.db"
    with open_store(path) as mine, open_store(path) as theirs:
        place(mine, "volcano erupts grindavik iceland", 1)  # its window is loaded
        place(theirs, "volcano erupts near grindavik", 2)
        assert neighbours_of(mine, "grindavik volcano erupts again", 3) == [1, 2]


def test_pruned_entries_leave_the_window(tmp_path: Path) -> None:
    with open_store(tmp_path / "a.db") as store:
        place(store, "volcano erupts grindavik iceland", 1)
        store.prune(
            older_than=MOMENT + timedelta(seconds=1),
            max_per_feed=None,
            forget_tombstones_before=START,
            now=MOMENT,
        )
        assert neighbours_of(store, "grindavik volcano erupts again", 2) == []


def test_the_index_alone() -> None:
    """Counts and lookups are by inclusive time range; an entry on a day not loaded waits for
    the load (adding it too would count it twice); a merge moves members and adds centroids."""
    index = WindowIndex()
    assert index.missing_days(DAY + 5, 3 * DAY) == [(DAY, 4 * DAY)]
    index.load(
        DAY,
        3 * DAY,
        [(DAY + 10, 1, "volcano"), (2 * DAY, 2, "volcano"), (DAY + 10, 1, "lava")],
        {1: 10},  # entry 2 is in no story
    )
    index.load_centroid(10, 1, [("volcano", 0.6), ("lava", 0.8)])
    assert index.missing_days(DAY + 5, 3 * DAY) == [(3 * DAY, 4 * DAY)]
    index.started(30)
    index.add(3, 2 * DAY - 1, ["volcano", "ash"], 30, {"volcano": 0.6, "ash": 0.8})
    index.add(4, 3 * DAY + 1, ["volcano"], 40, {"volcano": 1.0})  # day 3 not loaded: not held
    assert index.counts(["volcano", "lava", "none"], DAY, 2 * DAY, cap=10) == [3, 1, 0]
    assert index.counts(["volcano"], DAY, 2 * DAY, cap=2) == [2]
    assert index.counts(["volcano"], DAY + 11, 2 * DAY - 1, cap=10) == [1]
    assert list(index.carrying("volcano", DAY + 11, 2 * DAY)) == [3, 2]
    assert list(index.carrying("volcano", DAY, DAY + 10)) == [1]
    assert list(index.nearest_carrying("volcano", 2 * DAY, DAY, 3 * DAY, 2)) == [3, 2]
    assert len(index) == 3
    found = index.candidates(["volcano", "ash"], 2 * DAY, DAY, 2 * DAY, min_words=1)
    assert [(c.story_id, c.shared, c.terms, c.same_title) for c in found] == [
        (10, 1, 1, False),
        (30, 2, 1, True),
    ]
    # a story reached by one of the headline's words only is no candidate by default
    assert [c.story_id for c in index.candidates(["volcano", "ash"], 2 * DAY, DAY, 2 * DAY, 2)] == [
        30
    ]
    index.merged(30, 10, [3, 4])  # entry 4 is not held
    assert index.story_of(3) == 10 and index.centroid(30) is None
    assert index.centroid(10) == pytest.approx({"volcano": 1.2, "lava": 0.8, "ash": 0.8})
    # The postings keep each carrier's story beside it: the merge moved entry 3 there too, so
    # "ash" (entry 3's alone) reaches story 10.
    assert [c.story_id for c in index.candidates(["ash"], 2 * DAY, DAY, 2 * DAY, 1)] == [10]
    index.max_entries = 2
    index.make_room(DAY, DAY + 100)  # 3 held, 2 allowed: days away from the first go
    assert index.evictions == 1  # the second day only: entry 2
    assert len(index) == 2 and index.story_of(1) == index.story_of(3) == 10
    assert list(index.carrying("volcano", DAY, 3 * DAY)) == [1, 3]
    assert [c.story_id for c in index.candidates(["volcano"], DAY, DAY, 3 * DAY, 1)] == [10]


def test_a_name_of_several_words_is_one_shared_term() -> None:
    centroid = {"kim": 1.0, "jong": 1.0, "un": 1.0, "putin": 1.0, "trump": 1.0}
    assert index_module.shared_terms(["kim", "jong", "un", "missile"], centroid) == 1
    assert index_module.shared_terms(["putin", "tie", "kim", "jong", "un"], centroid) == 2


def test_migrations_keep_the_words(tmp_path: Path) -> None:
    """m012 rebuilt entry_words keyed by time, m016 keyed by entry: every row of a database
    made before them is kept, and the window's range of days is read through the entries'
    time index and the words' primary key, not a scan."""
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path)
    db = Database(conn)
    migrations.apply(db, stop_before="m012_entry_words_by_time")
    conn.execute(
        "INSERT INTO feeds (id, name, url, source_id, added) "
        "VALUES (1, 'f', 'https://f/', 'f', 'x')"
    )
    for n, (title, published) in enumerate(
        [("volcano erupts", "2026-11-03T10:00:00Z"), ("lava flows", "2026-11-01T09:00:00Z")], 1
    ):
        conn.execute(
            "INSERT INTO entries (id, uid, feed_id, first_seen, title, published, updated, "
            "fingerprint) VALUES (?, ?, 1, 'x', ?, ?, ?, 'f')",
            [n, f"u{n}", title, published, published],
        )
        conn.execute("INSERT INTO entries_fts (rowid, title) VALUES (?, ?)", [n, title])
        conn.executemany(
            "INSERT INTO entry_words (word, published, entry_id) VALUES (?, ?, ?)",
            [(word, published, n) for word in title.split()],
        )
    conn.commit()
    before = sorted(conn.execute("SELECT entry_id, word FROM entry_words"))
    conn.close()
    with open_store(path) as store:
        assert sorted(store.db.execute("SELECT entry_id, word FROM entry_words")) == before
        plan_rows = store.db.execute(
            f"EXPLAIN QUERY PLAN {DAY_WORDS}", ["2026-11-02", "2026-11-04"]
        ).fetchall()
        plan = str(plan_rows)
        assert "SCAN" not in plan and "idx_entries_published" in plan, plan_rows
        assert "PRIMARY KEY (entry_id=?)" in plan, plan_rows
        # The primary key is the index by entry: no other index to write.
        assert [i.origin for i in store.db["entry_words"].indexes] == ["pk"]
        # Deleting an entry still takes its words (the foreign key survived the rebuild).
        store.db.execute("DELETE FROM entries WHERE id = 2")
        assert [w for (w,) in store.db.execute("SELECT word FROM entry_words")] == [
            "erupts",
            "volcano",
        ]
