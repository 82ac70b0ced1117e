"""Shared by the benchmarks: store one entry as if its feed had just delivered it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from aggregator.pipeline import apply_response, place_in_stories
from aggregator.store import Store
from aggregator.stories import DEFAULT_STORY_POLICY, StoryPolicy
from aggregator.types import Entry, FeedState, FetchResult, ParsedFeed, Schedule

BENCH_SCHEDULE = Schedule(None, timedelta(hours=1), "bench")


def store_and_place(
    store: Store,
    state: FeedState,
    entry: Entry,
    now: datetime,
    policy: StoryPolicy = DEFAULT_STORY_POLICY,
) -> float:
    """The pipeline's write path for one entry, in one transaction; returns seconds placing it."""
    parsed = ParsedFeed("rss20", state.name, None, None, None, (entry,))
    with store.transaction("bench"):
        _, created = apply_response(
            store, state, FetchResult(200, state.url, {}, b""), parsed, now, BENCH_SCHEDULE
        )
        started = time.perf_counter()
        place_in_stories(store, created, now, policy=policy)
        return time.perf_counter() - started
