"""Pure same-story placement: which story, if any, a new headline tells.

A story is a whole, not a chain. Each story keeps a centroid: the sum of its headlines' unit
word vectors (`words.headline_vector`), each word weighted by how much it tells. A headline
joins the story whose centroid it is most similar to (cosine), when that similarity reaches
`join_similarity`; being close to one member is not enough, so a headline that bridges two
stories joins the closer one and merges nothing. Two stories merge only when their centroids
are similar as wholes (`merge_similarity`): that is how two outlets' first, differently worded
reports of one event, which each started a story, come together once more copies arrive.

Plus the trivial case: the same significant words as a member's (wire copy republished
verbatim). The same canonical URL never gets here (the store merges those first).

Everything here takes and returns plain records; the store and the index (`index.py`) find the
candidate stories (those of entries in the time window sharing a word) with their centroids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from aggregator.types import StoryCandidate, StoryDecision


@dataclass(frozen=True, slots=True)
class StoryPolicy:
    """The decision's knobs; defaults are the ones chosen by cross-validation in
    docs/stories.md (on four folds of the dev set, reported on the fifth)."""

    window: timedelta = timedelta(hours=72)  # candidates are published this close, either side
    min_shared: int = 2  # separate terms the headline shares with a candidate story...
    mostly_shared: float = 0.6  # ... unless 3+ of its words, this share of them, are the story's
    join_similarity: float = 0.4  # cosine of the headline with a story's centroid
    merge_similarity: float = 0.5  # cosine of two stories' centroids

    @property
    def min_words_in_common(self) -> int:
        """The fewest words a story must share with a headline for any rule to join them: the
        index builds no candidate for a story fewer reach."""
        return min(self.min_shared, 3)


DEFAULT_STORY_POLICY = StoryPolicy()


def cosine(vector: Mapping[str, float], centroid: Mapping[str, float], norm: float) -> float:
    """Cosine of a unit headline vector with a centroid of the given norm."""
    if not norm:
        return 0.0
    get = centroid.get
    return sum(value * get(word, 0.0) for word, value in vector.items()) / norm


def _centroid_cosine(
    one: Mapping[str, float], one_norm: float, other: Mapping[str, float], other_norm: float
) -> float:
    if not one_norm or not other_norm:
        return 0.0
    small, large = (one, other) if len(one) <= len(other) else (other, one)
    get = large.get
    return sum(value * get(word, 0.0) for word, value in small.items()) / (one_norm * other_norm)


def _enough_in_common(candidate: StoryCandidate, words: int, policy: StoryPolicy) -> bool:
    """Separate terms in common (a name of several words is one), or most of the headline."""
    return candidate.terms >= policy.min_shared or (
        candidate.shared >= 3 and candidate.shared >= policy.mostly_shared * words
    )


def decide(
    vector: Mapping[str, float],
    candidates: Sequence[StoryCandidate],
    policy: StoryPolicy = DEFAULT_STORY_POLICY,
) -> StoryDecision:
    """Where a headline (its unit word vector) goes, given the candidate stories."""
    if not vector or not candidates:
        return StoryDecision(None)
    verbatim = [c.story_id for c in candidates if c.same_title]
    scored = sorted(
        (
            (cosine(vector, c.centroid, c.norm), -c.story_id, c)
            for c in candidates
            if c.same_title or _enough_in_common(c, len(vector), policy)
        ),
        key=lambda item: item[:2],
        reverse=True,
    )
    if verbatim:
        joined = min(verbatim)
        score, rule = 1.0, "same-title"
    elif scored and scored[0][0] >= policy.join_similarity:
        joined, score, rule = scored[0][2].story_id, scored[0][0], "similar-story"
    else:
        return StoryDecision(None)
    merged = _stories_to_merge(vector, joined, scored, policy)
    if not merged:
        return StoryDecision(joined, (), round(score, 3), rule)
    # The oldest story keeps its id (readers of the merged feed already have it).
    keep = min(joined, *merged)
    others = tuple(sorted(story for story in (joined, *merged) if story != keep))
    return StoryDecision(keep, others, round(score, 3), rule)


def _stories_to_merge(
    vector: Mapping[str, float],
    joined: int,
    scored: Sequence[tuple[float, int, StoryCandidate]],
    policy: StoryPolicy,
) -> list[int]:
    """Other candidates whose centroid is similar, as a whole, to the joined story's once the
    headline is in it. Only those the headline itself is at least half as close to as joining
    asks are looked at: the rest cannot be about what it says."""
    by_id = {c.story_id: c for _, _, c in scored}
    target = by_id.get(joined)
    if target is None:  # joined by the same title to a story not scored (cannot share words)
        return []
    centroid = dict(target.centroid)
    for word, value in vector.items():
        centroid[word] = centroid.get(word, 0.0) + value
    norm = math.sqrt(sum(v * v for v in centroid.values()))
    merged: list[int] = []
    for score, _, candidate in scored:
        if candidate.story_id == joined or score < policy.join_similarity / 2:
            continue
        similarity = _centroid_cosine(centroid, norm, candidate.centroid, candidate.norm)
        if similarity >= policy.merge_similarity:
            merged.append(candidate.story_id)
            for word, value in candidate.centroid.items():
                centroid[word] = centroid.get(word, 0.0) + value
            norm = math.sqrt(sum(v * v for v in centroid.values()))
    return merged


@dataclass(frozen=True, slots=True)
class PartitionChanges:
    """How a re-placement regrouped the same entries."""

    stories_before: int
    stories_after: int
    split: int  # stories before whose entries are now in several stories
    joined: int  # stories now holding entries of several stories before


def partition_changes(before: Mapping[int, int], after: Mapping[int, int]) -> PartitionChanges:
    """Compare two groupings (entry -> story) of the same entries."""
    now_in: dict[int, set[int]] = {}
    was_in: dict[int, set[int]] = {}
    for entry, old in before.items():
        new = after.get(entry)
        if new is None:
            continue
        now_in.setdefault(old, set()).add(new)
        was_in.setdefault(new, set()).add(old)
    return PartitionChanges(
        stories_before=len(set(before.values())),
        stories_after=len(set(after.values())),
        split=sum(1 for stories in now_in.values() if len(stories) > 1),
        joined=sum(1 for stories in was_in.values() if len(stories) > 1),
    )
