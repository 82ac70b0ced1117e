"""Stories: the word index bounded by time, placement decisions written, stories audited."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aggregator.store._base import StoreBase, _must_utc, utc_text
from aggregator.stories.index import WindowIndex
from aggregator.types import StoryCandidate, StoryDecision, StoryPlacement

# The headline words of the entries published in [?, ?): what the window loads for its days,
# through the entries' time index and the words' key by entry (m016).
DAY_WORDS = (
    "SELECT e.published, w.entry_id, w.word FROM entries e "
    "JOIN entry_words w ON w.entry_id = e.id "
    "WHERE e.published >= ? AND e.published < ?"
)


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


class StoriesMixin(StoreBase):
    """Same-story clustering state: candidates for the pure decision, and its writes."""

    # The story window's postings (stories/index.py), loaded on the first placement.
    _window: WindowIndex | None = None
    _window_version = -1
    _window_checked_in: int | None = None  # the unit of work it was last checked in

    def entry_for_story(self, entry_id: int) -> tuple[str, datetime]:
        """The title and publication time of an entry, what story detection looks at."""
        title, published = self.db.execute(
            "SELECT title, published FROM entries WHERE id = ?", [entry_id]
        ).fetchone()
        return title, _must_utc(published)

    def story_candidates(
        self,
        words: Sequence[str],
        published: datetime,
        window: timedelta,
        min_words: int,
    ) -> list[StoryCandidate]:
        """The stories of the entries within the window (either side) that share a word with
        the headline, each with its centroid: what `stories.decide` chooses among.

        The index (`stories/index.py`) finds them from memory; this reads the days and the
        centroids it lacks.
        """
        if not words:
            return []
        moment = _epoch(published)
        earliest, latest = _epoch(published - window), _epoch(published + window)
        index = self._window_index(earliest, latest)
        return index.candidates(words, moment, earliest, latest, min_words)

    def _window_index(self, earliest: int, latest: int) -> WindowIndex:
        """The in-memory postings, loaded for [earliest, latest]; a new one if stale.

        The cache is dropped when another connection committed (PRAGMA data_version moves;
        asked once a unit of work, as no other commit can come inside one), and by
        `_discard_caches` after a rollback or a delete: then it reloads from the table.
        """
        unit = self.current_unit()
        if self._window is None or unit is None or unit != self._window_checked_in:
            (version,) = self.db.conn.execute("PRAGMA data_version").fetchone()
            if self._window is None or version != self._window_version:
                self._window, self._window_version = WindowIndex(), version
            self._window_checked_in = unit  # no other commit can come until this unit ends
        index = self._window
        if index.missing_days(earliest, latest):
            index.make_room(earliest, latest)
            for start, end in index.missing_days(earliest, latest):
                span = [utc_text(_from_epoch(start)), utc_text(_from_epoch(end))]
                stories = dict(
                    self.db.conn.execute(
                        "SELECT id, story_id FROM entries "
                        "WHERE published >= ? AND published < ? AND story_id IS NOT NULL",
                        span,
                    ).fetchall()
                )
                # The word rows are read as they are taken: a week of them at 1,000 feeds is
                # ~350,000 rows, tens of MB if fetched all at once.
                rows = self.db.conn.execute(DAY_WORDS, span)
                index.load(start, end, _with_epochs(rows), stories)
                self._load_centroids(index, index.stories_missing(stories.values()))
        return index

    def _load_centroids(self, index: WindowIndex, stories: Sequence[int]) -> None:
        """Read these stories' centroids into the index (a few hundred at a time)."""
        for chunk in range(0, len(stories), 500):
            ids = list(stories[chunk : chunk + 500])
            marks = ", ".join("?" * len(ids))
            weights: dict[int, list[tuple[str, float]]] = {story: [] for story in ids}
            for story, word, weight in self.db.conn.execute(
                f"SELECT story_id, word, weight FROM story_words WHERE story_id IN ({marks})", ids
            ):
                weights[story].append((word, weight))
            for story, members in self.db.conn.execute(
                f"SELECT id, members FROM stories WHERE id IN ({marks})", ids
            ):
                index.load_centroid(story, members, weights[story])

    def reset_stories(self, since: datetime | None) -> tuple[list[int], dict[int, int]]:
        """Undo the placement of the entries published since `since` (all when None) and of
        every member of their stories; returns them in publication order, and their stories
        before. For `aggregator stories --rebuild`, inside its transaction."""
        low = utc_text(since) if since else ""
        old: dict[int, int] = {}
        entries: list[int] = []
        for entry, story in self.db.execute(
            "SELECT id, story_id FROM entries WHERE published >= ? OR story_id IN "
            "(SELECT story_id FROM entries WHERE published >= ? AND story_id IS NOT NULL) "
            "ORDER BY published, id",
            [low, low],
        ):
            entries.append(entry)
            if story is not None:
                old[entry] = story
        stories = sorted(set(old.values()))
        for chunk in range(0, max(len(entries), 1), 500):
            ids = entries[chunk : chunk + 500]
            marks = ", ".join("?" * len(ids))
            self.db.execute(f"DELETE FROM entry_words WHERE entry_id IN ({marks})", ids)
            self.db.execute(
                "UPDATE entries SET story_id = NULL, story_rule = NULL, story_score = NULL "
                f"WHERE id IN ({marks})",
                ids,
            )
        for chunk in range(0, len(stories), 500):
            ids = stories[chunk : chunk + 500]
            marks = ", ".join("?" * len(ids))
            self.db.execute(f"DELETE FROM story_words WHERE story_id IN ({marks})", ids)
            self.db.execute(f"DELETE FROM stories WHERE id IN ({marks})", ids)
        self._discard_caches()
        return entries, old

    def story_assignments(self, entries: Sequence[int]) -> dict[int, int]:
        """entry -> its story, for these entries."""
        found: dict[int, int] = {}
        for chunk in range(0, len(entries), 500):
            ids = list(entries[chunk : chunk + 500])
            found.update(
                self.db.execute(
                    f"SELECT id, story_id FROM entries WHERE id IN ({', '.join('?' * len(ids))}) "
                    "AND story_id IS NOT NULL",
                    ids,
                ).fetchall()
            )
        return found

    def _discard_caches(self) -> None:
        self._window = None

    def place_in_story(
        self,
        entry_id: int,
        words: Sequence[str],
        vector: Mapping[str, float],
        published: datetime,
        decision: StoryDecision,
        now: datetime,
    ) -> int:
        """Put an entry already stored in the decided story (merging those decided), and index
        its words: `aggregator stories --rebuild`. A new entry is placed as it is inserted
        (`story_for_new_entry`, `placed`)."""
        now_text = utc_text(now)
        uid, newest = self.db.conn.execute(
            "SELECT uid, max(updated, published) FROM entries WHERE id = ?", [entry_id]
        ).fetchone()
        story_id = self.story_for_new_entry(decision)
        self.db.conn.execute(
            "UPDATE entries SET story_id = ?, story_rule = ?, story_score = ?, story_joined = ?, "
            "story_word_count = ? WHERE id = ?",
            [story_id, decision.rule, decision.score, now_text, len(words), entry_id],
        )
        placement = StoryPlacement(tuple(words), vector, decision)
        self.placed(entry_id, uid, newest, published, placement, story_id, now_text)
        return story_id

    def story_for_new_entry(self, decision: StoryDecision) -> int:
        """The story an entry about to be placed goes in: the decided one, once the stories it
        merges are folded into it, or the id its new story will take. That story's row is
        written after the entry's (`placed`), which foreign keys checked at commit allow
        (`StoreBase.defer_foreign_keys`): the entries row is written once, with its story,
        instead of inserted and then rewritten whole (its text overflows the page)."""
        if decision.story_id is None:
            self.defer_foreign_keys()  # the story's row comes after the entry's
            (last,) = self.db.conn.execute("SELECT max(id) FROM stories").fetchone()
            return (last or 0) + 1  # what SQLite itself gives the next row
        for other in decision.merge:
            self._merge_story(other, into=decision.story_id)
        return decision.story_id

    def placed(
        self,
        entry_id: int,
        uid: str,
        newest: str,
        published: datetime,
        placement: StoryPlacement,
        story_id: int,
        now_text: str,
    ) -> None:
        """The rest of a placement, once the entries row holds its story (`story_id`, from
        `story_for_new_entry`): its words indexed, its story created or grown. `newest` is the
        later of the entry's stored `updated` and `published`."""
        words, vector = placement.words, placement.vector
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO entry_words (entry_id, word) VALUES (?, ?)",
            [(entry_id, word) for word in words],
        )
        weights = [(story_id, word, vector.get(word, 0.0)) for word in words]
        if placement.decision.story_id is None:
            # A story of its own (the usual case): created with its one member and its words.
            self.db.conn.execute(
                "INSERT INTO stories (id, uid, representative_id, members, first_seen, updated) "
                "VALUES (?, ?, ?, 1, ?, ?)",
                [story_id, uid, entry_id, now_text, newest],
            )
            self.db.conn.executemany(
                "INSERT INTO story_words (story_id, word, count, weight) VALUES (?, ?, 1, ?)",
                weights,
            )
            if self._window is not None:
                self._window.started(story_id)
        else:
            self.db.conn.executemany(
                "INSERT INTO story_words (story_id, word, count, weight) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (story_id, word) DO UPDATE SET count = count + 1, "
                "weight = weight + excluded.weight",
                weights,
            )
            # A story changes when a source joins it: its `updated` is its newest member's own
            # time, not the time of the run that placed it (issue 14: loading old entries
            # stamped them all with today, and two stories shared one atom:updated).
            self.db.conn.execute(
                "UPDATE stories SET members = members + 1, updated = max(updated, ?) WHERE id = ?",
                [newest, story_id],
            )
            self._choose_representative(story_id)
        if self._window is not None:
            self._window.add(entry_id, _epoch(published), words, story_id, vector)

    def _merge_story(self, story_id: int, *, into: int) -> None:
        """Fold one story into another: its members, word counts and size move over."""
        if self._window is not None:
            members = self.db.execute(
                "SELECT id FROM entries INDEXED BY idx_entries_story_id WHERE story_id = ?",
                [story_id],
            )
            self._window.merged(story_id, into, [member for (member,) in members])
        self.db.execute("UPDATE entries SET story_id = ? WHERE story_id = ?", [into, story_id])
        self.db.execute(
            "INSERT INTO story_words (story_id, word, count, weight) "
            "SELECT ?, word, count, weight FROM story_words WHERE story_id = ? "
            "ON CONFLICT (story_id, word) DO UPDATE SET "
            "count = story_words.count + excluded.count, "
            "weight = story_words.weight + excluded.weight",
            [into, story_id],
        )
        # The later `updated` of the two: never before a member's publication (the window's
        # big stories are found by it, _big_stories_in_window).
        self.db.execute(
            "UPDATE stories SET (members, updated) = (SELECT stories.members + o.members, "
            "max(stories.updated, o.updated) FROM stories o WHERE o.id = ?) WHERE id = ?",
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


def _epoch(moment: datetime) -> int:
    """Whole seconds, as the stored text keeps them (`utc_text` drops the fraction)."""
    return int(moment.timestamp() // 1)


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _with_epochs(rows: Iterable[tuple[str, int, str]]) -> Iterator[tuple[int, int, str]]:
    """(published text, entry, word) rows with the time as epoch seconds (parsed once each)."""
    seen: dict[str, int] = {}
    for text, entry, word in rows:
        moment = seen.get(text)
        if moment is None:
            moment = seen[text] = _epoch(_must_utc(text))
        yield moment, entry, word
