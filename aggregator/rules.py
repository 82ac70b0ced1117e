"""Keep and block rules: which stored entries the outputs leave out, and why. Pure.

An entry is shown when no block condition matches it and, if there are keep conditions (the
top-level ones and its feed's own together), one of them does. A filtered entry stays stored
and queryable; the verdict is the readable text of the rule that filtered it
(``block: title ~ /Sponsored/``), which the store keeps in ``entries.filtered_by`` and the
output query skips.

Rules are re-applied without refetching: `RuleSet.fingerprint` changes with any rule, and then
every stored entry is judged again; otherwise only new and changed entries are, plus those an
`older_than` condition may judge differently since the last time (`recheck_windows`).

Regular expressions come from the config, so a bad one must not stall the writer: the `regex`
package's timeout bounds every search (stdlib `re` has none), a field is searched on its first
`MAX_MATCH_CHARS` characters, and a pattern that is catastrophically slow on the test strings
of `pattern_problem` is refused when the config loads.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import regex

from aggregator.types import (
    OLDER_THAN,
    Condition,
    Config,
    FilterChange,
    FilterPlan,
    Rules,
    RuleSubject,
)

MAX_MATCH_CHARS = 50_000  # of one field; the rest of a very long article is not searched
MATCH_TIMEOUT = 0.05  # seconds one search may take while rules are applied
GIVE_UP_AFTER = 3  # a condition whose searches timed out this often is skipped for the pass
# Refusing a pattern at load time: each test string may take CHECK_TIMEOUT, all CHECK_BUDGET.
CHECK_TIMEOUT = 0.05
CHECK_BUDGET = 0.25
CHECK_LENGTHS = (30, 10_000)  # exponential backtracking shows at 30, polynomial at 10,000
# Characters of the test strings besides the pattern's own: what \w, \d, \s, . and the usual
# separators match.
_SAMPLES = "aA0 _.,-@x\n"
_SYNTAX = frozenset("\\()[]{}?*+|^$")
# The RuleSubject field each condition searches (author and tag search every item of a list).
_SUBJECT_FIELD = {
    "title": "title",
    "summary": "summary",
    "content": "content",
    "author": "authors",
    "link": "link",
    "tag": "tags",
}
# Bumped when what a verdict means changes, so stored verdicts are judged again.
_SEMANTICS = "1"


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> regex.Pattern[str]:
    """The pattern compiled once (it was checked by `pattern_problem` when the config loaded)."""
    return regex.compile(pattern)


def _test_strings(pattern: str) -> list[str]:
    """Long runs of what the pattern may match, each ending in a character it will not: what
    makes a pattern with nested or overlapping repetition backtrack."""
    chars = [c for c in dict.fromkeys(pattern + _SAMPLES) if c.isprintable() or c == "\n"]
    chars = [c for c in chars if c not in _SYNTAX]
    mixed = "".join(chars)
    strings = []
    for length in CHECK_LENGTHS:
        strings += [c * length + "\x00" for c in chars]
        strings.append((mixed * (length // len(mixed) + 1))[:length] + "\x00")
    return strings


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a rule, or None: it does not compile, or it is catastrophically
    slow on a test string (a search over CHECK_TIMEOUT, or all of them over CHECK_BUDGET)."""
    try:
        compiled_pattern = compiled(pattern)
    except (regex.error, ValueError, TypeError) as e:
        return f"{pattern!r} is not a regular expression: {e}"
    began = time.monotonic()
    for text in _test_strings(pattern):
        try:
            compiled_pattern.search(text, timeout=CHECK_TIMEOUT)
        except TimeoutError:
            return (
                f"{pattern!r} is catastrophically slow: one search of a {len(text)}-character "
                f"test string took over {CHECK_TIMEOUT:g} s (nested or overlapping repetition, "
                "such as (a+)+ or (a|aa)*, backtracks catastrophically; simplify it)"
            )
        if time.monotonic() - began > CHECK_BUDGET:
            return (
                f"{pattern!r} is too slow: its test strings took over {CHECK_BUDGET:g} s "
                "(nested or overlapping repetition; simplify it)"
            )
    return None


def condition_text(condition: Condition) -> str:
    """``title ~ /Sponsored/`` or ``older_than 30d``: how a verdict names a condition."""
    if condition.field == OLDER_THAN:
        assert condition.older_than is not None
        return f"{OLDER_THAN} {_duration_text(condition.older_than)}"
    return f"{condition.field} ~ /{condition.pattern}/"


def _duration_text(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class RuleSet:
    """The config's rules, ready to judge entries: the top-level ones and each feed's."""

    def __init__(self, top: Rules, per_feed: Mapping[str, Rules]) -> None:
        self.top = top
        self.per_feed = {name: rules for name, rules in per_feed.items() if rules != Rules()}
        every = [top, *self.per_feed.values()]
        conditions = [c for rules in every for c in (*rules.block, *rules.keep)]
        self.empty = not conditions  # every entry is shown
        self.durations = tuple(
            sorted({c.older_than for c in conditions if c.older_than is not None})
        )
        fields = {_SUBJECT_FIELD[c.field] for c in conditions if c.field in _SUBJECT_FIELD}
        self.fields = frozenset(fields | ({"published"} if self.durations else set()))
        described = repr(
            (_SEMANTICS, MAX_MATCH_CHARS, top, sorted(self.per_feed.items(), key=lambda i: i[0]))
        )
        self.fingerprint = hashlib.sha256(described.encode("utf-8")).hexdigest()[:32]
        # Per condition, worked out once: its text (the timeouts' key) and its compiled pattern.
        self._texts = {c: condition_text(c) for c in conditions}
        self._patterns = {c: compiled(c.pattern) for c in conditions if c.pattern is not None}

    @classmethod
    def of(cls, config: Config) -> RuleSet:
        return cls(config.rules, {feed.name: feed.rules for feed in config.feeds})

    def check_everything(self, stored: tuple[str, datetime] | None, now: datetime) -> bool:
        """Whether every stored entry must be judged again: the rules differ from those last
        applied (``stored``: their fingerprint and time), none were, or the clock went back
        (the `older_than` windows assume time moves forward)."""
        return stored is None or stored[0] != self.fingerprint or now < stored[1]

    def recheck_windows(self, since: datetime, now: datetime) -> list[tuple[datetime, datetime]]:
        """Publication times whose `older_than` verdicts may have changed between ``since``
        and ``now``: for each age, [since - age, now - age), a second wider either side
        (stored times have whole seconds)."""
        second = timedelta(seconds=1)
        return [(since - age - second, now - age + second) for age in self.durations]

    def verdict(
        self, subject: RuleSubject, now: datetime, timeouts: dict[str, int] | None = None
    ) -> str | None:
        """The rule that filters ``subject`` (its readable text), or None: it is shown.

        Block conditions first, top-level then the feed's, the first that matches named; then
        the keep conditions of both. A search that times out counts as no match, and is
        counted in ``timeouts`` (by condition), past GIVE_UP_AFTER of which that condition is
        not searched again.
        """
        own = self.per_feed.get(subject.feed, Rules())
        for rules, whose in ((self.top, ""), (own, " (feed rule)")):
            for condition in rules.block:
                if self._matches(condition, subject, now, timeouts):
                    return f"block: {self._texts[condition]}{whose}"
        keep = [(c, "") for c in self.top.keep] + [(c, " (feed rule)") for c in own.keep]
        if keep and not any(self._matches(c, subject, now, timeouts) for c, _ in keep):
            listed = ", ".join(self._texts[c] + whose for c, whose in keep)
            return f"keep: none of {listed}"
        return None

    def _matches(
        self,
        condition: Condition,
        subject: RuleSubject,
        now: datetime,
        timeouts: dict[str, int] | None,
    ) -> bool:
        if condition.older_than is not None:
            return subject.published is not None and subject.published < now - condition.older_than
        key = self._texts[condition]
        if timeouts and timeouts.get(key, 0) >= GIVE_UP_AFTER:
            return False
        value = getattr(subject, _SUBJECT_FIELD[condition.field])
        # A missing value is matched as empty text, so `^$` finds entries without one.
        texts = (value or ("",)) if isinstance(value, tuple) else (value or "",)
        pattern = self._patterns[condition]
        for text in texts:
            try:
                if pattern.search(text[:MAX_MATCH_CHARS], timeout=MATCH_TIMEOUT):
                    return True
            except TimeoutError:
                if timeouts is not None:
                    timeouts[key] = timeouts.get(key, 0) + 1
                return False
        return False

    def decide(
        self, subjects: Iterable[RuleSubject], now: datetime, *, everything: bool
    ) -> FilterPlan:
        """Judge ``subjects`` (read one at a time: a full pass does not hold them all) and
        return the verdicts that differ from the stored ones."""
        timeouts: dict[str, int] = {}
        changes: list[FilterChange] = []
        checked = 0
        for subject in subjects:
            checked += 1
            verdict = self.verdict(subject, now, timeouts)
            if verdict != subject.filtered_by:
                changes.append(FilterChange(subject.entry_id, verdict))
        return FilterPlan(
            fingerprint=self.fingerprint,
            evaluated=now,
            changes=tuple(changes),
            checked=checked,
            everything=everything,
            timed_out=timeouts,
        )
