"""Pure same-story detection: does a new entry tell a story another outlet already told?

Two rules, tuned on `../shared/corpus/stories-dev.tsv` for precision (merging two different
stories hides news; missing a merge only repeats it). See docs/stories.md for the numbers.

- similar-title: the new headline shares at least 3 significant words with an earlier one, and
  those are at least 60% of the shorter headline's words (NewsBlur's overlap measure, with a
  stricter bar). An entry that links two stories this way merges them: a story is a connected
  component of such links, so it grows as outlets reword it.
- story-signature: a story that already has 10+ members has signature words, the ones in at
  least 40% of its headlines (e.g. "Snowden", "SXSW"); a headline carrying 2+ of them joins it
  even when it shares few words with any one member.
Plus the trivial cases: the same canonical URL (the store merges those before we get here) and
the same headline word for word (wire copy republished verbatim).

Everything here takes and returns plain records; the store finds the neighbours (earlier entries
in the time window sharing a word, through an inverted index) and the story profiles.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from aggregator.types import Neighbour, StoryDecision, StoryProfile

# Function words and headline boilerplate carry no story; a small fixed list keeps the rule
# explainable (and the dev-set numbers reproducible).
STOPWORDS = frozenset(
    """
    a about above after again against all also am amid an and any are as at be been before
    being below between both but by can could did do does doing down during each few for from
    further get gets got had has have having he her here hers him his how i if in into is it its
    just me more most my new no nor not now of off on once one only or other our out over own
    says say said same she should so some such than that the their them then there these they
    this those through to too two under until up us very via vs was we were what when where
    which while who whom why will with would you your
    update updated updates live video watch report reports breaking exclusive
    am pm gmt utc today yesterday tomorrow week
    monday tuesday wednesday thursday friday saturday sunday mon tue wed thu fri sat sun
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()
)
# Day numbers and years say when, not what: "March 11, 2014" must not link unrelated roundups.
_DATE_NUMBER = re.compile(r"^(?:\d{1,2}|(?:19|20)\d\d)(?:st|nd|rd|th)?$")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@dataclass(frozen=True, slots=True)
class StoryPolicy:
    """The decision's knobs; defaults are the ones measured in docs/stories.md."""

    window: timedelta = timedelta(hours=72)
    min_shared: int = 3  # similar-title: words in common
    min_overlap: float = 0.6  # similar-title: share of the shorter headline's words
    signature_min_members: int = 10  # story-signature: only established stories have one
    signature_share: float = 0.4  # a signature word is in at least this share of members
    signature_min_words: int = 2  # signature words the new headline must carry


DEFAULT_STORY_POLICY = StoryPolicy()


# A headline has a dozen words; a "title" of thousands (a feed's whole body, a hostile one)
# would make every lookup as wide as it is. Words past this many are not looked at.
MAX_HEADLINE_WORDS = 50


def story_words(title: str) -> tuple[str, ...]:
    """The distinct significant words of a headline, in order: casefolded, accents removed.

    At most MAX_HEADLINE_WORDS of them, the first ones.
    """
    text = unicodedata.normalize("NFKD", title.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words: list[str] = []
    for match in _WORD.finditer(text):
        word = re.sub(r"['’]s$", "", match.group()).replace("’", "'")
        if (
            len(word) > 1
            and word not in STOPWORDS
            and not _DATE_NUMBER.match(word)
            and word not in words
        ):
            words.append(word)
            if len(words) == MAX_HEADLINE_WORDS:
                break
    return tuple(words)


def decide(
    words: Sequence[str],
    neighbours: Sequence[Neighbour],
    profiles: Sequence[StoryProfile],
    policy: StoryPolicy = DEFAULT_STORY_POLICY,
) -> StoryDecision:
    """Which story (if any) a headline with these words joins, given its candidates."""
    size = len(words)
    if size == 0:
        return StoryDecision(None)
    linked: dict[int, float] = {}  # story -> best overlap with one of its members
    same_title: int | None = None
    for n in neighbours:
        overlap = n.shared / min(size, n.words) if n.words else 0.0
        if n.shared == size == n.words and size >= 2:
            same_title = n.story_id if same_title is None else same_title
            linked[n.story_id] = max(linked.get(n.story_id, 0.0), 1.0)
        elif n.shared >= policy.min_shared and overlap >= policy.min_overlap:
            linked[n.story_id] = max(linked.get(n.story_id, 0.0), overlap)
    if linked:
        # Every linked story is the same story told in other words: merge them (connected
        # components of similar titles) into the oldest, whose id readers already have.
        oldest = min(linked)
        strongest = max(linked.values())
        rule = "same-title" if same_title is not None and strongest == 1.0 else "similar-title"
        others = tuple(sorted(story for story in linked if story != oldest))
        return StoryDecision(oldest, others, round(strongest, 3), rule)
    best: tuple[float, int] | None = None
    for profile in profiles:
        if profile.members < policy.signature_min_members:
            continue
        shares = [
            profile.counts.get(word, 0) / profile.members
            for word in words
            if profile.counts.get(word, 0) >= policy.signature_share * profile.members
        ]
        if len(shares) >= policy.signature_min_words:
            score = sum(shares)
            if best is None or (score, -profile.story_id) > (best[0], -best[1]):
                best = (score, profile.story_id)
    if best is not None:
        return StoryDecision(best[1], (), round(best[0], 3), "story-signature")
    return StoryDecision(None)
