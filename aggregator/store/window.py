"""The story window's word postings, held in memory by the writer: who said what, and when.

Finding a new headline's story candidates asks, for each of its words, how many headlines of
the time window carry it and which ones, then which story each candidate is in. Asked of SQLite,
that was six statements and 45% of a cold update's writer time (issue 6), and reading a
candidate's story from its kilobyte-wide `entries` row another 6%. This index answers from
memory: per word, the entries carrying it sorted by publication time; per entry, its words and
its story. It is a cache of the `entry_words` table and of those entries' `story_id`, complete
for the days it has loaded: a query for days it lacks loads them (one range read of
`entry_words`, by time); an entry placed on a loaded day is added as it is written, and the
members of a merged story move as it is merged. Plain data only: the store decides when the
cache is stale and drops it.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from sys import intern

DAY = 86_400

# Days held at most. A cold start spans its feeds' week and the windows around it; the service
# moves forward a day at a time. When a query needs more, the days farthest from it go.
MAX_DAYS = 16


class WindowIndex:
    """Entries and their headline words, by day of publication (epoch seconds, UTC)."""

    def __init__(self) -> None:
        # word -> (publication times, entry ids), in time order (ties in the order added)
        self._postings: dict[str, tuple[array[int], array[int]]] = {}
        self._words: dict[int, tuple[str, ...]] = {}  # entry id -> its words (interned)
        self._days: dict[int, array[int]] = {}  # loaded day -> the entries published that day
        self._story: dict[int, int] = {}  # entry id -> its story

    def __len__(self) -> int:
        return len(self._words)

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
        """Before loading for a query on [low, high]: drop the days farthest from it while
        more than MAX_DAYS would be held (keeping the nearest, so the next query may need
        none)."""
        keep = set(range(low // DAY, high // DAY + 1))
        if len(self._days.keys() | keep) <= MAX_DAYS:
            return
        centre = (low + high) / 2 / DAY
        spare = sorted(self._days.keys() - keep, key=lambda day: abs(day - centre))
        self._forget_days(set(spare[MAX_DAYS // 2 :]))

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
            if (story := stories.get(entry)) is not None:
                self._story[entry] = story
            for word in words:
                times, ids = self._postings.setdefault(word, (array("q"), array("q")))
                times.append(moment)
                ids.append(entry)
                touched.add(word)
        for word in touched:  # appended out of order: sort each touched word once
            times, ids = self._postings[word]
            self._postings[word] = _arrays(sorted(zip(times, ids, strict=True)))

    def add(self, entry: int, moment: int, words: Sequence[str], story: int) -> None:
        """An entry just placed in `story`; held only if its day is (else it will load)."""
        day = self._days.get(moment // DAY)
        if day is None or entry in self._words:
            return
        words = tuple(map(intern, words))  # one copy of each word, not one per headline
        day.append(entry)
        self._words[entry] = words
        self._story[entry] = story
        for word in words:
            times, ids = self._postings.setdefault(word, (array("q"), array("q")))
            at = bisect_right(times, moment)
            times.insert(at, moment)
            ids.insert(at, entry)

    def counts(self, words: Iterable[str], low: int, high: int, cap: int) -> list[int]:
        """For each of `words`, the entries carrying it published in [low, high], counted up
        to `cap` (one call a headline)."""
        get, empty = self._postings.get, (array("q"), array("q"))
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
        times, ids = held
        return ids[bisect_left(times, low) : bisect_right(times, high)]

    def moved(self, entries: Iterable[int], story: int) -> None:
        """These entries now belong to `story` (a merge); those not held are ignored."""
        for entry in entries:
            if entry in self._story:
                self._story[entry] = story

    def placed(self, entries: Sequence[int]) -> list[tuple[int, int | None, int]]:
        """(entry, its story or None, how many words its headline has) for held entries."""
        stories, words = self._story, self._words
        return [(entry, stories.get(entry), len(words[entry])) for entry in entries]

    def sharing(self, entries: Sequence[int], words: set[str]) -> list[int]:
        """How many of `words` each of `entries` carries (held entries only)."""
        if not words:
            return [0] * len(entries)
        held = list(map(self._words.__getitem__, entries))
        if len(words) == 1:  # the usual case: a membership test per entry
            (word,) = words
            return list(map(operator.contains, held, repeat(word)))  # True counts as 1
        # Most candidates carry none of them: a disjointness test allocates no set.
        return [
            0 if disjoint else len(words.intersection(carried))
            for carried, disjoint in zip(held, map(words.isdisjoint, held), strict=True)
        ]

    def _forget_days(self, dropped: set[int]) -> None:
        if not dropped:
            return
        for day in dropped:
            for entry in self._days.pop(day):
                del self._words[entry]
                self._story.pop(entry, None)
        for word in list(self._postings):
            times, ids = self._postings[word]
            kept = [(t, i) for t, i in zip(times, ids, strict=True) if t // DAY not in dropped]
            if not kept:
                del self._postings[word]
            elif len(kept) != len(times):
                self._postings[word] = _arrays(kept)


def _arrays(pairs: Sequence[tuple[int, int]]) -> tuple[array[int], array[int]]:
    return array("q", [t for t, _ in pairs]), array("q", [i for _, i in pairs])
