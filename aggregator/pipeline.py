"""Poll one feed / poll many: fetch -> parse -> dedupe -> store; then render.

The only module that joins the stages. Fetching and parsing run in a thread pool (the network
is the slow part); every write happens on the calling thread, so SQLite has exactly one writer.
A FeedError becomes a PollResult; anything else is a bug and propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aggregator import __version__
from aggregator.dedupe import plan
from aggregator.errors import FeedError, FetchError, StorageError
from aggregator.fetch import FetchLimits, Session, fetch, make_session
from aggregator.parse import parse_feed
from aggregator.render import write_outputs
from aggregator.store import Store, open_store
from aggregator.types import (
    Config,
    FeedState,
    FetchResult,
    OutputFeed,
    ParsedFeed,
    PollResult,
    PollStatus,
)

Clock = Callable[[], datetime]
EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)  # a fixed date keeps empty output stable


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Retrieved:
    """The I/O half of a poll, done in a worker thread: what came back, parsed, or the error."""

    state: FeedState
    started: datetime
    duration: float
    fetched: FetchResult | None = None
    parsed: ParsedFeed | None = None
    error: FeedError | None = None


@dataclass(frozen=True, slots=True)
class UpdateReport:
    results: tuple[PollResult, ...]
    written: tuple[Path, ...]

    @property
    def failed(self) -> list[PollResult]:
        return [r for r in self.results if r.status is PollStatus.ERROR]


def retrieve(session: Session, state: FeedState, limits: FetchLimits, clock: Clock) -> Retrieved:
    """Fetch and parse one feed; a FeedError is returned as a value, not raised."""
    started = clock()
    began = time.monotonic()
    fetched: FetchResult | None = None
    try:
        fetched = fetch(
            session, state.url, etag=state.etag, last_modified=state.last_modified, limits=limits
        )
        parsed = None
        if fetched.body is not None:  # a 304 costs no parsing (R-H3)
            parsed = parse_feed(fetched.body, url=fetched.url, headers=fetched.headers, now=started)
    except FeedError as error:
        return Retrieved(state, started, time.monotonic() - began, fetched, error=error)
    return Retrieved(state, started, time.monotonic() - began, fetched, parsed)


def save(store: Store, retrieved: Retrieved) -> PollResult:
    """Write one retrieval to the store (on the writer thread) and say what happened."""
    state, fetched = retrieved.state, retrieved.fetched
    if retrieved.error is not None or fetched is None:
        error = retrieved.error or FetchError("no response")
        status = getattr(error, "status", None) or (fetched.status if fetched else None)
        return _failed(store, retrieved, str(error), status)
    if retrieved.parsed is None:
        store.record_not_modified(state, fetched, retrieved.started)
        return PollResult(
            state.name, PollStatus.NOT_MODIFIED, 304, duration=retrieved.duration, url=fetched.url
        )
    planned = plan(retrieved.parsed.entries, store.known_fingerprints(state.feed_id))
    try:
        counts = store.record_update(state, fetched, retrieved.parsed, planned, retrieved.started)
    except StorageError as error:
        # Nothing of this response was kept (one transaction); recording the failure is itself
        # a write, so a database that cannot be written at all stops the run right there.
        return _failed(store, retrieved, str(error), fetched.status)
    return PollResult(
        state.name,
        PollStatus.UPDATED,
        fetched.status,
        new=counts.new,
        updated=counts.updated,
        error=retrieved.parsed.warning,
        duration=retrieved.duration,
        url=fetched.url,
    )


def _failed(store: Store, retrieved: Retrieved, message: str, status: int | None) -> PollResult:
    store.record_error(retrieved.state, message, status, retrieved.started)
    return PollResult(
        retrieved.state.name,
        PollStatus.ERROR,
        status,
        error=message,
        duration=retrieved.duration,
    )


def poll(
    store: Store,
    config: Config,
    states: Iterable[FeedState],
    *,
    clock: Clock = utc_now,
    on_result: Callable[[PollResult], None] | None = None,
) -> list[PollResult]:
    """Poll the given feeds concurrently; store each as it arrives."""
    limits = FetchLimits.from_defaults(config.defaults)
    session = make_session(config.defaults.user_agent)
    results: list[PollResult] = []
    states = list(states)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(config.defaults.workers, 32))) as pool:
            futures = [pool.submit(retrieve, session, s, limits, clock) for s in states]
            for future in as_completed(futures):
                result = save(store, future.result())
                results.append(result)
                if on_result is not None:
                    on_result(result)
    finally:
        session.close()
    order = {s.name: i for i, s in enumerate(states)}
    return sorted(results, key=lambda r: order[r.feed_name])


def update(
    config: Config,
    *,
    names: Iterable[str] | None = None,
    clock: Clock = utc_now,
    on_result: Callable[[PollResult], None] | None = None,
) -> UpdateReport:
    """Poll every enabled feed once (or those named), then rewrite the outputs."""
    wanted = set(names) if names is not None else None
    feeds = [f for f in config.feeds if f.enabled and (wanted is None or f.name in wanted)]
    with open_store(config.database) as store:
        states = store.sync_feeds(config.feeds, clock())
        results = poll(
            store, config, [states[f.name] for f in feeds], clock=clock, on_result=on_result
        )
        written = build_outputs(store, config)
    return UpdateReport(tuple(results), tuple(written))


def build(config: Config) -> list[Path]:
    """Rewrite the outputs from the database alone (no network)."""
    with open_store(config.database) as store:
        store.sync_feeds(config.feeds, utc_now())
        return build_outputs(store, config)


def build_outputs(store: Store, config: Config) -> list[Path]:
    """Render the merged feed; files whose bytes would not change are left untouched."""
    return write_outputs(merged_feed(store, config), config.output.dir)


def merged_feed(store: Store, config: Config) -> OutputFeed:
    entries = store.latest_entries(config.output.max_entries)
    newest = max((e.updated for e in entries), default=EMPTY_FEED_UPDATED)
    return OutputFeed(
        id=config.output.id,
        title=config.output.title,
        updated=newest,
        entries=tuple(entries),
        link=config.output.link,
        base_url=config.output.base_url,
        generator_version=__version__,
    )
