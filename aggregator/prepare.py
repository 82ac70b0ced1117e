"""The writer's pure share of each entry, computed where the feed is parsed.

One thread writes to the database (issue 6: it bounds a cold update). What it needs that no
database is needed for, the fingerprint of each entry (`plan.plan_update`), and the significant
words of each headline with their weights (`stories`), is worked out here, in the parse worker
processes that run on every core, and travels back with the parsed feed. The writer computes
whatever is missing.

Imported by the parse workers: nothing here may import the store or the network.
"""

from __future__ import annotations

from dataclasses import replace

from aggregator.dedupe import fingerprint
from aggregator.stories import headline_vector, story_words
from aggregator.types import ParsedFeed


def prepared(parsed: ParsedFeed) -> ParsedFeed:
    """The feed with what `plan.plan_update` and story placement would otherwise compute on the
    writer thread; each source id and each title worked out once."""
    fingerprints: dict[str, str] = {}
    headline_words: dict[str, tuple[str, ...]] = {}
    headline_vectors: dict[str, dict[str, float]] = {}
    for entry in parsed.entries:
        if entry.source_id not in fingerprints:  # `plan` keeps an id's first entry only
            fingerprints[entry.source_id] = fingerprint(entry)
        if entry.title not in headline_words:
            words = headline_words[entry.title] = story_words(entry.title)
            headline_vectors[entry.title] = headline_vector(words)
    return replace(
        parsed,
        fingerprints=fingerprints,
        headline_words=headline_words,
        headline_vectors=headline_vectors,
    )
