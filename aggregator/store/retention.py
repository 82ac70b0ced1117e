"""Retention: prune old entries, keep their ids as tombstones, keep stories consistent."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from aggregator.store._base import _writing, utc_text
from aggregator.store.stories import StoriesMixin
from aggregator.stories.words import headline_vector


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """What a prune removed."""

    entries: int
    stories: int
    tombstones_expired: int


class RetentionMixin(StoriesMixin):
    """Deleting what `retention:` says is old."""

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
        self._discard_caches()  # entries go (or, on failure, whatever was cached may be stale)
        with _writing("a prune"), self.atomic():
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
        # Each victim's headline leaves its story's word counts and centroid.
        headlines: dict[tuple[int, int], list[str]] = {}
        for entry, story, word in self.db.execute(
            "SELECT w.entry_id, e.story_id, w.word FROM entry_words w "
            "JOIN entries e ON e.id = w.entry_id "
            f"WHERE w.entry_id IN ({victims}) AND e.story_id IS NOT NULL"
        ):
            headlines.setdefault((entry, story), []).append(word)
        lost: Counter[tuple[int, str]] = Counter()
        lost_weight: defaultdict[tuple[int, str], float] = defaultdict(float)
        for (_, story), words in headlines.items():
            vector = headline_vector(words)
            for word in words:
                lost[story, word] += 1
                lost_weight[story, word] += vector.get(word, 0.0)
        self.db.conn.executemany(
            "UPDATE story_words SET count = count - ?, weight = weight - ? "
            "WHERE story_id = ? AND word = ?",
            [(n, lost_weight[key], *key) for key, n in lost.items()],
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
