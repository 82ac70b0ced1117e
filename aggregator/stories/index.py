"""The story window, held in memory by the writer: who said what, when, and each story's centroid.

Finding a new headline's candidate stories asks, for each of its words, which headlines of the
time window carry it, then which story each of those is in and what that story's centroid is.
This index answers from memory: per word, the entries carrying it sorted by publication time,
each with its story; per entry, its words and its story; per story, its centroid (word ->
summed weight) and norm. It is a cache of the `entry_words` and `story_words` tables and of the
entries' `story_id`, complete for the days it has loaded: a query for days it lacks loads them
(one range read by time); an entry placed on a loaded day is added as it is written, and a
merge moves members and adds centroids. Plain data only: the store reads the rows and decides
when the cache is stale.

Its size is bounded by entries held, not by days: feeds' entries span from hours to a year,
and a cold start or a late item arrives out of time order, so a cap in days made the index
forget and reload days over and over (issue 12). Past MAX_ENTRIES, the days farthest from the
query go, down to half the budget, so evicting is rare and its cost is spread over many
placements.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from sys import intern

from aggregator.types import StoryCandidate

DAY = 86_400

# Entries held at most (about 1 KB each with their postings and stories): a year of 250 feeds
# posting daily, or the last weeks of 1,000 busy ones.
MAX_ENTRIES = 120_000

# A word in more headlines of the window than this does not find candidates on its own:
# its entries nearest in time stand for it (a story that big has members among them). It
# bounds one placement's cost whatever the traffic.
CANDIDATE_WORD_LIMIT = 150
NEAREST_FOR_COMMON_WORD = 40
# Entries one headline's full postings may cover in all, rarest words first.
CANDIDATE_BUDGET = 400
# The story of a posting whose entry is in none (kept out of the candidates).
NO_STORY = -1


class WindowIndex:
    """Entries, their headline words and their stories' centroids, by day of publication."""

    def __init__(self, max_entries: int | None = None) -> None:
        self.max_entries = max_entries or MAX_ENTRIES
        # word -> (publication times, entry ids, their stories), in time order (ties in the
        # order added). The stories are a copy of `_story` kept beside each posting: finding a
        # headline's candidates reads them for every carrier of each word, a slice instead of
        # a lookup each (the hottest line of a placement); a merge updates them.
        self._postings: dict[str, _Postings] = {}
        self._words: dict[int, tuple[str, ...]] = {}  # entry id -> its words (interned)
        self._days: dict[int, array[int]] = {}  # loaded day -> the entries published that day
        self._story: dict[int, int] = {}  # entry id -> its story
        self._centroids: dict[int, dict[str, float]] = {}  # story -> word -> summed weight
        self._norms: dict[int, float] = {}
        self._members: dict[int, int] = {}  # story -> its members (all, not only those held)
        self.evictions = 0  # times days were let go (the tests check the budget is enforced)

    def __len__(self) -> int:
        return len(self._words)

    # ------------------------------------------------------------------ loading

    def missing_days(self, low: int, high: int) -> list[tuple[int, int]]:
        """The runs of days touching [low, high] not loaded yet, as [start, end) seconds."""
        runs: list[tuple[int, int]] = []
        for day in range(low // DAY, high // DAY + 1):
            if day in self._days:
                continue
            if runs and runs[-1][1] == day * DAY:
                runs[-1] = (runs[-1][0], (day + 1) * DAY)
            else:
                runs.append((day * DAY, (day + 1) * DAY))
        return runs

    def make_room(self, low: int, high: int) -> None:
        """Before loading for a query on [low, high]: while more than the budget is held, drop
        the days farthest from it, down to half the budget."""
        if len(self._words) <= self.max_entries:
            return
        keep = set(range(low // DAY, high // DAY + 1))
        centre = (low + high) / 2 / DAY
        spare = sorted(self._days.keys() - keep, key=lambda day: abs(day - centre), reverse=True)
        held, dropped = len(self._words), set()
        for day in spare:
            if held <= self.max_entries // 2:
                break
            dropped.add(day)
            held -= len(self._days[day])
        self._forget_days(dropped)

    def stories_missing(self, stories: Iterable[int]) -> list[int]:
        """Of these stories, those whose centroid is not held (to be read with `load`)."""
        return sorted({story for story in stories if story not in self._centroids})

    def load(
        self,
        start: int,
        end: int,
        rows: Iterable[tuple[int, int, str]],
        stories: Mapping[int, int],
    ) -> None:
        """Take the stored (time, entry, word) rows of the days in [start, end), and the
        stories of those entries (an entry in none is left out of `stories`)."""
        added: dict[int, tuple[int, list[str]]] = {}
        for moment, entry, word in rows:
            if entry in self._words:
                continue  # already held (cannot happen for a day not loaded; kept safe)
            added.setdefault(entry, (moment, []))[1].append(intern(word))
        touched: set[str] = set()
        for day in range(start // DAY, end // DAY):
            self._days[day] = array("q")
        for entry, (moment, words) in added.items():
            self._days[moment // DAY].append(entry)
            self._words[entry] = tuple(words)
            story = stories.get(entry, NO_STORY)
            if story != NO_STORY:
                self._story[entry] = story
            for word in words:
                times, ids, of = self._postings.get(word) or self._new_postings(word)
                times.append(moment)
                ids.append(entry)
                of.append(story)
                touched.add(word)
        for word in touched:  # appended out of order: sort each touched word once
            self._postings[word] = _arrays(sorted(zip(*self._postings[word], strict=True)))

    def load_centroid(self, story: int, members: int, weights: Iterable[tuple[str, float]]) -> None:
        """A story's stored centroid (`story_words.weight`) and size."""
        centroid = {intern(word): weight for word, weight in weights}
        self._centroids[story] = centroid
        self._norms[story] = _norm(centroid)
        self._members[story] = members

    # ------------------------------------------------------------------ what placement writes

    def add(
        self, entry: int, moment: int, words: Sequence[str], story: int, vector: Mapping[str, float]
    ) -> None:
        """An entry just placed in `story` with this unit vector. Its story's centroid moves
        (when held); the entry is held only if its day is (else it will load)."""
        centroid = self._centroids.get(story)
        if centroid is not None:
            squares = self._norms[story] ** 2
            for word, value in vector.items():
                old = centroid.get(word, 0.0)
                centroid[word] = old + value
                squares += (old + value) ** 2 - old * old
            self._norms[story] = math.sqrt(max(squares, 0.0))
            self._members[story] += 1
        day = self._days.get(moment // DAY)
        if day is None or entry in self._words:
            return
        words = tuple(map(intern, words))  # one copy of each word, not one per headline
        day.append(entry)
        self._words[entry] = words
        self._story[entry] = story
        for word in words:
            times, ids, of = self._postings.get(word) or self._new_postings(word)
            at = bisect_right(times, moment)
            times.insert(at, moment)
            ids.insert(at, entry)
            of.insert(at, story)
        if len(self._words) > self.max_entries:  # all days held, and they filled up
            self.make_room(moment, moment)

    def _new_postings(self, word: str) -> _Postings:
        """A word's empty postings, kept. Not `setdefault(word, _empty())`, which built three
        arrays for every word of every entry added, only to drop them: ~220 ns a word, about
        0.1 s of a cold update's writer at 1,000 feeds."""
        postings = self._postings[word] = _empty()
        return postings

    def started(self, story: int) -> None:
        """A new story, empty until its first member is added."""
        self._centroids[story] = {}
        self._norms[story] = 0.0
        self._members[story] = 0

    def merged(self, story: int, into: int, entries: Iterable[int]) -> None:
        """`story` was folded into `into`: its held members move, and its centroid adds up."""
        for entry in entries:
            if entry in self._story:
                self._story[entry] = into
                for word in self._words[entry]:
                    _, ids, of = self._postings[word]
                    of[ids.index(entry)] = into
        centroid = self._centroids.pop(story, None)
        members = self._members.pop(story, 0)
        self._norms.pop(story, None)
        target = self._centroids.get(into)
        if target is None:
            return  # not held: it loads from the table, which has the sum
        for word, value in (centroid or {}).items():
            target[word] = target.get(word, 0.0) + value
        self._norms[into] = _norm(target)
        self._members[into] += members

    # ------------------------------------------------------------------ queries

    def counts(self, words: Iterable[str], low: int, high: int, cap: int) -> list[int]:
        """For each of `words`, the entries carrying it published in [low, high], counted up
        to `cap`."""
        get, empty = self._postings.get, _empty()
        found = []
        for word in words:
            times = get(word, empty)[0]
            found.append(min(cap, bisect_right(times, high) - bisect_left(times, low)))
        return found

    def carrying(self, word: str, low: int, high: int) -> Sequence[int]:
        """The entries carrying `word` published in [low, high]."""
        held = self._postings.get(word)
        if held is None:
            return ()
        return held[1][slice(*_within(held[0], low, high))]

    def nearest_carrying(
        self, word: str, moment: int, low: int, high: int, n: int
    ) -> Sequence[int]:
        """The `n` entries carrying `word` published nearest `moment`, within [low, high]."""
        held = self._postings.get(word)
        if held is None:
            return ()
        return held[1][slice(*_nearest(held[0], moment, low, high, n))]

    def story_of(self, entry: int) -> int | None:
        return self._story.get(entry)

    def candidates(
        self,
        words: Sequence[str],
        moment: int,
        low: int,
        high: int,
        min_words: int,
    ) -> list[StoryCandidate]:
        """The stories of [low, high] that share at least `min_words` of the headline's words
        (`StoryPolicy.min_words_in_common`: fewer, and no rule can join them),
        with their centroids, what they share, and whether a member has exactly its words.

        Stories are reached through the headline's words' entries in the window: all of them
        for its rarest words, up to CANDIDATE_BUDGET entries in all; for the others (and any
        word in more than CANDIDATE_WORD_LIMIT headlines) the NEAREST_FOR_COMMON_WORD nearest
        in time, among which a story that big has members. Each story is counted by how many
        words reach it: most share one word only, no rule can join those, and no candidate is
        built for them. The cost is bounded per headline, whatever the window holds. The
        headline itself is not held yet: it is added once placed (`add`).
        """
        story_of = self._story.get
        reach: Counter[int] = Counter()
        counts = self.counts(words, low, high, CANDIDATE_WORD_LIMIT + 1)
        examined = 0
        rarest: Sequence[int] = ()
        # Rarest first: they tell most, and their postings are short; once the budget is
        # spent, a word stands by its entries nearest in time, as a common word does.
        for count, word in sorted(zip(counts, words, strict=True)):
            if count == 0:
                continue
            times, ids, of = self._postings[word]
            if count <= CANDIDATE_WORD_LIMIT and examined + count <= CANDIDATE_BUDGET:
                start, end = _within(times, low, high)
                examined += count
            else:
                start, end = _nearest(times, moment, low, high, NEAREST_FOR_COMMON_WORD)
            reach.update(set(of[start:end]))  # the stories of these carriers, each once
            if not rarest:
                rarest = ids[start:end]
        reach.pop(NO_STORY, None)
        centroids = self._centroids
        own = set(words)
        found = [
            story
            for story, n in reach.items()
            if n >= min_words and story is not None and story in centroids
        ]
        verbatim: set[int] = set()
        if len(own) >= 2:
            for other in rarest:  # a verbatim copy carries the rarest word too
                held = self._words.get(other)
                story = story_of(other)
                if (
                    held is not None
                    and len(held) == len(own)
                    and own.issuperset(held)
                    and story is not None
                    and story in centroids
                ):
                    verbatim.add(story)
        candidates = []
        for story in sorted(set(found) | verbatim):
            centroid = centroids[story]
            shared, terms = _in_common(words, centroid)
            candidates.append(
                StoryCandidate(
                    story_id=story,
                    members=self._members[story],
                    centroid=centroid,
                    norm=self._norms[story],
                    shared=shared,
                    terms=terms,
                    same_title=story in verbatim,
                )
            )
        return candidates

    def centroid(self, story: int) -> Mapping[str, float] | None:
        return self._centroids.get(story)

    # ------------------------------------------------------------------ eviction

    def _forget_days(self, dropped: set[int]) -> None:
        if not dropped:
            return
        self.evictions += 1
        for day in dropped:
            for entry in self._days.pop(day):
                del self._words[entry]
                self._story.pop(entry, None)
        for word in list(self._postings):
            times = self._postings[word][0]
            kept = [
                p for p in zip(*self._postings[word], strict=True) if p[0] // DAY not in dropped
            ]
            if not kept:
                del self._postings[word]
            elif len(kept) != len(times):
                self._postings[word] = _arrays(kept)
        held_stories = set(self._story.values())
        for story in [s for s in self._centroids if s not in held_stories]:
            del self._centroids[story]
            del self._norms[story]
            del self._members[story]


def shared_terms(words: Sequence[str], centroid: Mapping[str, float]) -> int:
    """How many separate terms of the headline the story has: a run of adjacent words all in
    the story counts once, so "Kim Jong Un" is one piece of evidence, not three."""
    return _in_common(words, centroid)[1]


def _in_common(words: Sequence[str], centroid: Mapping[str, float]) -> tuple[int, int]:
    """The headline's words in the story, and as separate terms (a run of adjacent ones counts
    once), in one pass."""
    shared = terms = 0
    previous = False
    for word in words:
        present = word in centroid
        if present:
            shared += 1
            if not previous:
                terms += 1
        previous = present
    return shared, terms


def _norm(centroid: Mapping[str, float]) -> float:
    return math.sqrt(sum(v * v for v in centroid.values()))


# A word's postings: publication times, entry ids and their stories, three parallel arrays.
_Postings = tuple["array[int]", "array[int]", "array[int]"]


def _empty() -> _Postings:
    return array("q"), array("q"), array("q")


def _arrays(postings: Sequence[tuple[int, int, int]]) -> _Postings:
    return (
        array("q", [t for t, _, _ in postings]),
        array("q", [i for _, i, _ in postings]),
        array("q", [s for _, _, s in postings]),
    )


def _within(times: array[int], low: int, high: int) -> tuple[int, int]:
    """Where the postings published in [low, high] start and end."""
    return bisect_left(times, low), bisect_right(times, high)


def _nearest(times: array[int], moment: int, low: int, high: int, n: int) -> tuple[int, int]:
    """Where the `n` postings published nearest `moment`, within [low, high], start and end."""
    first, last = _within(times, low, high)
    at = min(max(bisect_left(times, moment), first), last)
    start = max(first, min(at - n // 2, last - n))
    return start, min(last, start + n)
