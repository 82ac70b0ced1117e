"""The story engine: which entries tell the same story, in pure code.

- `words`: a headline's significant words and their weights (information in the language);
- `index`: the writer's in-memory window of recent headlines and story centroids, which finds
  a headline's candidate stories;
- `decision`: the placement itself (join the closest story as a whole, merge stories only as
  wholes).

The store reads and writes the rows (`store/stories.py`); the pipeline asks and applies.
"""

from aggregator.stories.decision import (
    DEFAULT_STORY_POLICY,
    PartitionChanges,
    StoryPolicy,
    cosine,
    decide,
    partition_changes,
)
from aggregator.stories.words import MAX_HEADLINE_WORDS, headline_vector, story_words, word_weight

__all__ = [
    "DEFAULT_STORY_POLICY",
    "MAX_HEADLINE_WORDS",
    "PartitionChanges",
    "StoryPolicy",
    "cosine",
    "decide",
    "headline_vector",
    "partition_changes",
    "story_words",
    "word_weight",
]
