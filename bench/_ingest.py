"""Shared by the benchmarks: store one entry as if its feed had just delivered it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from aggregator.pipeline import apply_response, story_placer
from aggregator.store import Store
from aggregator.stories import DEFAULT_STORY_POLICY, StoryPolicy
from aggregator.types import (
    Entry,
    FeedState,
    FetchResult,
    ParsedFeed,
    Schedule,
    StoryPlacement,
)

BENCH_SCHEDULE = Schedule(None, timedelta(hours=1), "bench")


def store_and_place(
    store: Store,
    state: FeedState,
    entry: Entry,
    now: datetime,
    policy: StoryPolicy = DEFAULT_STORY_POLICY,
) -> float:
    """The pipeline's write path for one entry, in one transaction (its story decided just
    before its row is written, `pipeline.story_placer`); returns the seconds spent deciding
    its story: finding the window's candidates and choosing among them."""
    parsed = ParsedFeed("rss20", state.name, None, None, None, (entry,))
    place = story_placer(store, policy=policy)
    deciding = 0.0

    def timed(title: str, published: datetime) -> StoryPlacement:
        nonlocal deciding
        started = time.perf_counter()
        placement = place(title, published)
        deciding += time.perf_counter() - started
        return placement

    with store.transaction("bench"):
        apply_response(
            store, state, FetchResult(200, state.url, {}, b""), parsed, now, BENCH_SCHEDULE, timed
        )
    return deciding
