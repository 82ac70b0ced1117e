"""Poll one feed / poll many: fetch -> parse -> dedupe -> store; then render.

The only module that joins the stages. Fetching and parsing run in a thread pool (the network
is the slow part); every write happens on the calling thread, so SQLite has exactly one writer.
A FeedError becomes a PollResult; anything else is a bug and propagates.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import (
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import TypeVar

from aggregator import __version__
from aggregator.errors import (
    AggregatorError,
    FeedError,
    FetchError,
    ParseError,
    StorageError,
)
from aggregator.fetch import FetchLimits, Session, fetch, make_session, publish_to_hub
from aggregator.formats import counted
from aggregator.parse_worker import parse_response, start_worker
from aggregator.plan import lookups, moved_to, plan_update
from aggregator.politeness import HostTurns, host_of
from aggregator.render import HTML_FILE, LOCAL_PAGE, write_outputs
from aggregator.render import OUTPUT_FILES as FEED_FILES
from aggregator.rules import GIVE_UP_AFTER, RuleSet
from aggregator.schedule import Outcome, PollFacts, SchedulePolicy, failure_outcome, next_poll
from aggregator.store import PruneCounts, Store, TransactionLost, open_store
from aggregator.stories import (
    DEFAULT_STORY_POLICY,
    PartitionChanges,
    StoryPolicy,
    decide,
    headline_vector,
    partition_changes,
    story_words,
)
from aggregator.types import (
    AUTO,
    Config,
    CreatedEntry,
    Defaults,
    ExtraOutput,
    FeedConfig,
    FeedState,
    FeedUpdate,
    FetchResult,
    FilterPlan,
    OutputEntry,
    OutputFeed,
    OutputLink,
    ParsedFeed,
    Placer,
    PollResult,
    PollStatus,
    Schedule,
    StoryDecision,
    StoryPlacement,
)
from aggregator.urls import without_tracking

log = logging.getLogger("aggregator.pipeline")
Key = TypeVar("Key")
Clock = Callable[[], datetime]
EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)  # a fixed date keeps empty output stable


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Retrieved:
    """The I/O half of a poll, done in a worker thread: what came back, parsed, or the error.

    `retrieve` leaves `fetched.body` None: once parsed (or failed), the bytes are dropped, so a
    retrieval waiting for the writer holds its ParsedFeed, not also a body of up to 10 MB. A
    304 is the retrieval with neither `parsed` nor `error`.
    """

    state: FeedState
    started: datetime
    duration: float
    fetched: FetchResult | None = None
    parsed: ParsedFeed | None = None
    error: FeedError | None = None

    @property
    def not_modified(self) -> bool:
        """Nothing new came back (a 304): saving it changes only the feed's own row."""
        return self.error is None and self.parsed is None and self.fetched is not None


@dataclass(frozen=True, slots=True)
class UpdateReport:
    results: tuple[PollResult, ...]
    written: tuple[Path, ...]

    @property
    def failed(self) -> list[PollResult]:
        return [r for r in self.results if r.status is PollStatus.ERROR]


ParseFunction = Callable[..., ParsedFeed]
PROCESSES_FROM_FEEDS = (
    16  # fewer feeds than this: starting worker processes costs more than it saves
)
# Seconds one parse may take in a worker process before it is abandoned (issue 13): the
# config's `defaults.parse_timeout`, whose default is this.
DEFAULT_PARSE_BUDGET = Defaults().parse_timeout

# Retrievals submitted ahead of the writer, per fetch worker: enough that no worker waits for
# the writer to hand it the next feed, few enough that parsed feeds do not pile up in memory
# (all 1,000 at once came to 546 MB, issue 6).
AHEAD_PER_WORKER = 2
# Feed responses committed together (StoreBase.batch): a commit, and the search index's flush,
# per batch instead of per feed. Bounded in size and time so results keep flowing and the
# write lock is never held long (another process may be waiting to write).
BATCH_FEEDS = 20
BATCH_SECONDS = 1.0


class Parser:
    """Parses feeds on every core: feedparser is pure Python, so threads would share one.

    Worker threads still fetch; each hands its body to a process and waits, at most
    `budget` seconds: a parse that takes longer is abandoned, its worker processes killed and
    replaced, and the feed gets a ParseError (it backs off like any failing feed); the other
    parses that were running in the killed processes are submitted again. With one core, or
    few feeds, it parses in the calling thread (no budget can stop a thread; the parser's
    own input bounds still hold). Either way the entries' fingerprints, headline words and
    headline vectors come back with the feed (aggregator.prepare), off the writer thread. The
    processes run `aggregator.parse_worker`'s initializer, so they import the parse stack only,
    not this module and the store.
    """

    def __init__(
        self,
        feeds: int,
        processes: int | None = None,
        *,
        budget: float = DEFAULT_PARSE_BUDGET,
        always_processes: bool = False,
    ) -> None:
        self.cores = processes if processes is not None else (os.cpu_count() or 1)
        self.budget = budget
        self._lock = threading.Lock()
        self._closed = False
        self._use_processes = self.cores > 1 and (always_processes or feeds >= PROCESSES_FROM_FEEDS)
        # Started by the first body to parse: a run of 304s never starts it (a process pool
        # costs more than its processes, its queues' locks start multiprocessing's resource
        # tracker, a Python process of its own).
        self.pool: ProcessPoolExecutor | None = None

    def workers(self) -> ProcessPoolExecutor | None:
        """The worker processes, started if they are not yet (None: this parser parses in the
        calling thread)."""
        if not self._use_processes:
            return None
        with self._lock:
            if self._closed:
                raise ParseError("the parse process was stopped")
            if self.pool is None:
                self.pool = self._new_pool()
            return self.pool

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.cores,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(os.getpid(),),
        )

    def __call__(
        self, body: bytes, *, url: str, headers: Mapping[str, str], now: datetime
    ) -> ParsedFeed:
        pool = self.workers()
        if pool is None:
            return parse_response(body, url=url, headers=headers, now=now)
        for attempt in range(2):
            future = pool.submit(parse_response, body, url=url, headers=dict(headers), now=now)
            try:
                return future.result(timeout=self.budget)
            except FuturesTimeout:
                self._replace(pool)
                raise ParseError(
                    f"took longer than {self.budget:g} s to parse: abandoned"
                ) from None
            except BrokenProcessPool:
                # Another feed's parse ran out of time and its pool was killed under this one,
                # or a worker died: either way the next attempt runs in a working pool.
                if self._closed:
                    raise ParseError("the parse process was stopped") from None
                pool = self._replace(pool)
                if attempt:
                    raise ParseError("the parse process died twice") from None
        raise AssertionError("unreachable")

    def _replace(self, pool: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """Kill `pool`'s processes (a parse is running away in one) and start a new pool; the
        pool to use from now on (another thread may have replaced it already)."""
        with self._lock:
            if self.pool is not pool or self._closed:
                return self.pool or pool
            replacement = self.pool = self._new_pool()
        _kill(pool)
        return replacement

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers; with `wait=False` a parse still running is killed, not awaited
        (a stop must not hang on a pathological feed)."""
        with self._lock:
            self._closed = True
        if self.pool is not None:
            if not wait:
                _kill(self.pool)
            self.pool.shutdown(wait=wait, cancel_futures=True)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes; its pending futures fail with BrokenProcessPool."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def retrieve(
    session: Session,
    state: FeedState,
    limits: FetchLimits,
    clock: Clock,
    parse: ParseFunction = parse_response,
) -> Retrieved:
    """Fetch and parse one feed; a FeedError is returned as a value, not raised."""
    started = clock()
    began = time.monotonic()
    fetched: FetchResult | None = None
    try:
        fetched = fetch(
            session, state.url, etag=state.etag, last_modified=state.last_modified, limits=limits
        )
        parsed = None
        if fetched.body is not None:  # a 304 costs no parsing
            parsed = parse(fetched.body, url=fetched.url, headers=fetched.headers, now=started)
    except FeedError as error:
        return Retrieved(
            state, started, time.monotonic() - began, _without_body(fetched), error=error
        )
    return Retrieved(state, started, time.monotonic() - began, _without_body(fetched), parsed)


def _without_body(fetched: FetchResult | None) -> FetchResult | None:
    """The response minus its bytes: the store reads only status, URL and headers."""
    return fetched if fetched is None or fetched.body is None else replace(fetched, body=None)


def policy_for(feed: FeedConfig, defaults: Defaults) -> SchedulePolicy:
    """The schedule policy of one feed: its interval (or the default), under the global floor."""
    interval = feed.interval or defaults.interval
    return SchedulePolicy(
        interval=None if interval == AUTO else interval,
        min_interval=defaults.min_interval,
    )


def save(
    store: Store,
    retrieved: Retrieved,
    policy: SchedulePolicy,
    rand: Callable[[], float] = random.random,
) -> PollResult:
    """Write one retrieval, with when to poll next, to the store (on the writer thread)."""
    state, fetched, parsed = retrieved.state, retrieved.fetched, retrieved.parsed
    if retrieved.error is not None or fetched is None:
        return _failed(store, retrieved, policy, rand)
    # The feed's publishing rate matters to an "auto" interval only (a query per feed).
    auto = policy.interval is None
    if parsed is None:
        facts = PollFacts(
            now=retrieved.started,
            outcome=Outcome.OK,
            headers=fetched.headers,
            hints=state.hints,
            entry_times=store.recent_entry_times(state.feed_id) if auto else (),
            previous_interval=state.interval,
        )
        schedule = next_poll(facts, policy, rand)
        store.record_not_modified(
            state, fetched, retrieved.started, schedule, moved_to=moved_to(state, fetched)
        )
        return PollResult(
            state.name,
            PollStatus.NOT_MODIFIED,
            304,
            duration=retrieved.duration,
            url=fetched.url,
            next_due=schedule.due,
            interval_reason=schedule.reason,
        )
    entry_times = [e.published for e in parsed.entries if e.published and not e.date_clamped]
    facts = PollFacts(
        now=retrieved.started,
        outcome=Outcome.OK,
        headers=fetched.headers,
        hints=parsed.hints,
        entry_times=entry_times or (store.recent_entry_times(state.feed_id) if auto else ()),
        previous_interval=state.interval,
    )
    schedule = next_poll(facts, policy, rand)
    try:
        # A batch of its own (search-indexed just before the commit), or a unit of poll's.
        with store.batch(f"entries of feed {state.name}"):
            counts = store_response(store, state, fetched, parsed, retrieved.started, schedule)
    except TransactionLost:
        raise  # the whole batch is gone: `poll` reports each of its feeds
    except StorageError as error:
        # Nothing of this response was kept (one transaction); recording the failure is itself
        # a write, so a database that cannot be written at all stops the run right there.
        return _failed(store, retrieved, policy, rand, storage_error=error)
    warnings = [parsed.warning] if parsed.warning else []
    if counts.rekeyed:
        warnings.append(
            f"the feed changed the ids of {counted(counts.rekeyed, 'item')} it had given before"
        )
    return PollResult(
        state.name,
        PollStatus.UPDATED,
        fetched.status,
        new=counts.new,
        updated=counts.updated,
        error="; ".join(warnings) or None,
        duration=retrieved.duration,
        url=fetched.url,
        next_due=schedule.due,
        interval_reason=schedule.reason,
    )


def store_response(
    store: Store,
    state: FeedState,
    fetched: FetchResult,
    parsed: ParsedFeed,
    now: datetime,
    schedule: Schedule,
) -> FeedUpdate:
    """Store a parsed 200 response (`apply_response`), each new entry in its story, in the
    caller's transaction. Returns what was decided."""
    place = story_placer(store, parsed.headline_words, parsed.headline_vectors)
    update, _ = apply_response(store, state, fetched, parsed, now, schedule, place)
    return update


def apply_response(
    store: Store,
    state: FeedState,
    fetched: FetchResult,
    parsed: ParsedFeed,
    now: datetime,
    schedule: Schedule,
    place: Placer | None = None,
) -> tuple[FeedUpdate, list[CreatedEntry]]:
    """Decide what a parsed 200 response changes (`plan.plan_update`, against what is stored:
    the feed's own copies, then the answers to what `plan.lookups` asks about the others) and
    apply it, each new entry in the story `place` decides (without it, none is placed): the
    decision, and the entries rows it created."""
    stored = store.stored_copies(state)
    sources, pruned = stored
    known = store.known_for(state, stored, lookups(state, parsed, sources.keys() | pruned))
    update = plan_update(state, fetched, parsed, known, now, schedule)
    return update, store.apply_update(update, place)


MAX_STORY_LOOKUPS = 200  # per feed response; real feeds bring tens of new entries at a time


def story_placer(
    store: Store,
    headline_words: Mapping[str, tuple[str, ...]] | None = None,
    headline_vectors: Mapping[str, Mapping[str, float]] | None = None,
    policy: StoryPolicy = DEFAULT_STORY_POLICY,
) -> Placer:
    """Decides the story of each new entry of one response (a new one, or one another outlet
    told), in the order they are stored: the window's candidates, then `stories.decide`. The
    words and vectors worked out by the parse workers are used when given.

    Each lookup reads the window's entries sharing a word, so a response flooding us with
    thousands of look-alikes would cost quadratic time; past MAX_STORY_LOOKUPS entries of one
    response, the rest start stories of their own (their words are still indexed).
    """
    looked_up = 0

    def place(title: str, published: datetime) -> StoryPlacement:
        nonlocal looked_up
        words = headline_words.get(title) if headline_words else None
        vector = headline_vectors.get(title) if headline_vectors and words is not None else None
        if words is None:
            words = story_words(title)
        if vector is None:
            vector = headline_vector(words)
        if looked_up >= MAX_STORY_LOOKUPS:
            return StoryPlacement(words, vector, StoryDecision(None))
        looked_up += 1
        candidates = store.story_candidates(
            words, published, policy.window, policy.min_words_in_common
        )
        return StoryPlacement(words, vector, decide(vector, candidates, policy))

    return place


def place_in_stories(
    store: Store,
    created: Iterable[CreatedEntry],
    now: datetime,
    headline_words: Mapping[str, tuple[str, ...]] | None = None,
    headline_vectors: Mapping[str, Mapping[str, float]] | None = None,
    policy: StoryPolicy = DEFAULT_STORY_POLICY,
) -> None:
    """Put entries already stored without a story (`apply_response` without a placer, or
    reset by a rebuild) in the story each tells, in order, as `story_placer` decides."""
    place = story_placer(store, headline_words, headline_vectors, policy)
    for entry_id, title, published in ((c.entry_id, c.title, c.published) for c in created):
        placement = place(title, published)
        store.place_in_story(
            entry_id, placement.words, placement.vector, published, placement.decision, now
        )


def rebuild_stories(
    store: Store,
    since: datetime | None,
    now: datetime,
    policy: StoryPolicy = DEFAULT_STORY_POLICY,
) -> tuple[int, PartitionChanges]:
    """Re-place the entries published since `since` (all when None), and every member of
    their stories, with the current rules, in one transaction: how many, and what changed."""
    with store.transaction("rebuild stories"):
        entries, before = store.reset_stories(since)
        for entry_id in entries:  # one at a time: MAX_STORY_LOOKUPS bounds one feed response
            title, published = store.entry_for_story(entry_id)
            place_in_stories(store, [CreatedEntry(entry_id, title, published)], now, policy=policy)
        after = store.story_assignments(entries)
    return len(entries), partition_changes(before, after)


def _failed(
    store: Store,
    retrieved: Retrieved,
    policy: SchedulePolicy,
    rand: Callable[[], float],
    storage_error: StorageError | None = None,
) -> PollResult:
    """Record a failed poll and back off; a 410 disables the feed, a 429/503 slows it down."""
    error: AggregatorError = storage_error or retrieved.error or FetchError("no response")
    fetched = retrieved.fetched
    status = getattr(error, "status", None) or (fetched.status if fetched else None)
    headers = getattr(error, "headers", None) or {}
    outcome = failure_outcome(status)
    facts = PollFacts(
        now=retrieved.started,
        outcome=outcome,
        headers=headers,
        hints=retrieved.state.hints,
        error_count=retrieved.state.error_count + 1,
        previous_interval=retrieved.state.interval,
    )
    schedule = next_poll(facts, policy, rand)
    store.record_error(
        retrieved.state,
        str(error),
        status,
        retrieved.started,
        schedule,
        disable=outcome is Outcome.GONE,
    )
    return PollResult(
        retrieved.state.name,
        PollStatus.ERROR,
        status,
        error=str(error),
        duration=retrieved.duration,
        next_due=schedule.due,
        interval_reason=schedule.reason,
    )


def poll(
    store: Store,
    config: Config,
    states: Iterable[FeedState],
    *,
    clock: Clock = utc_now,
    on_result: Callable[[PollResult], None] | None = None,
) -> list[PollResult]:
    """Poll the given feeds concurrently; store each as it arrives; results in `states` order.

    Only AHEAD_PER_WORKER x workers retrievals are in flight (fetching, parsing or waiting for
    the writer) at any time; each is dropped once saved, so memory does not grow with the
    number of feeds however far the fetchers could run ahead of the single writer. At most
    `defaults.per_host` of them are feeds of one host (`politeness.HostTurns`, as in `run`):
    the others of that host wait their turn while other hosts' feeds go ahead.
    """
    limits = FetchLimits.from_defaults(config.defaults)
    policies = {f.name: policy_for(f, config.defaults) for f in config.feeds}
    states = list(states)
    workers = max(1, min(config.defaults.workers, 32))
    ahead = AHEAD_PER_WORKER * workers
    results: list[PollResult | None] = [None] * len(states)
    turns = HostTurns(
        config.defaults.per_host, range(len(states)), lambda p: host_of(states[p].url)
    )
    pending: dict[Future[Retrieved], int] = {}  # in flight -> its position in `states`
    # Each finished retrieval is put here by its own worker: the writer sleeps on one queue
    # instead of registering a waiter on every pending future for each one that finishes.
    finished: SimpleQueue[Future[Retrieved]] = SimpleQueue()
    session = make_session(config.defaults.user_agent)
    parser = Parser(len(states), budget=config.defaults.parse_timeout)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:

            def refill() -> None:
                while len(pending) < ahead and (position := turns.take()) is not None:
                    state = states[position]
                    future = pool.submit(retrieve, session, state, limits, clock, parser)
                    pending[future] = position
                    future.add_done_callback(finished.put)

            try:
                refill()
                while pending:
                    ready = _ready(finished, pending, policies, turns.done, refill)
                    for position, result in save_batch(store, ready):
                        results[position] = result
                        if on_result is not None:
                            on_result(result)
                    refill()  # a batch that failed whole gave slots back without refilling
            finally:
                for future in pending:  # only after an exception: queued ones never start
                    future.cancel()
    finally:
        session.close()
        parser.close()
    return [result for result in results if result is not None]


def _ready(
    finished: SimpleQueue[Future[Retrieved]],
    pending: dict[Future[Retrieved], int],
    policies: Mapping[str, SchedulePolicy],
    done: Callable[[int], None],
    refill: Callable[[], None],
) -> Iterator[tuple[int, Retrieved, SchedulePolicy]]:
    """The retrievals that are done, up to a batch (BATCH_FEEDS, BATCH_SECONDS): it waits for
    the first. With nothing more ready, a batch that stores something ends rather than wait;
    one of 304s alone waits for more (within BATCH_SECONDS), since its rows are only a cheap
    statement at the commit and each commit costs more than they do. Each is dropped from
    `pending` as it is taken, and another is started before it is saved."""
    began = time.monotonic()
    taken = 0
    only_not_modified = True
    while taken < BATCH_FEEDS and (left := BATCH_SECONDS - (time.monotonic() - began)) > 0:
        try:
            if taken == 0:
                future = finished.get()
            elif only_not_modified and pending:
                future = finished.get(timeout=left)
            else:
                future = finished.get_nowait()
        except Empty:
            return
        position = pending.pop(future)
        done(position)  # its host may take another request now
        refill()
        retrieved = future.result()
        del future  # a Future holds its Retrieved (a parsed feed) until dropped
        only_not_modified = only_not_modified and retrieved.not_modified
        yield position, retrieved, policies[retrieved.state.name]
        del retrieved
        taken += 1


def save_batch(
    store: Store,
    items: Iterable[tuple[Key, Retrieved, SchedulePolicy]],
    rand: Callable[[], float] = random.random,
) -> list[tuple[Key, PollResult]]:
    """Save retrievals in one commit, each feed its own savepoint; each key with its result.

    `items` is read inside the transaction, one at a time (`poll` hands over feeds as they
    finish). One feed's storage error undoes that feed alone (its result says so). Results are
    only final once committed, so a failed commit turns every feed of the batch into an error:
    nothing of it was stored, its validators included, and it is fetched again next time.
    """
    saved: list[tuple[Key, PollResult | None, Retrieved, SchedulePolicy]] = []
    committing = False
    try:
        with store.batch("a batch of feed responses"):
            for key, retrieved, policy in items:
                slim = replace(retrieved, parsed=None)
                try:
                    result = save(store, retrieved, policy, rand)
                except TransactionLost:
                    saved.append((key, None, slim, policy))  # gone with the rest of the batch
                    raise
                del retrieved
                saved.append((key, result, slim, policy))
            committing = True
    except StorageError as error:
        # A feed's own storage error is its result (save); one raised here is the batch's:
        # the commit failed, or SQLite rolled the whole transaction back under a feed.
        if not committing and not isinstance(error, TransactionLost):
            raise  # not even the failure could be recorded: the database cannot be written
        return [
            (key, _failed(store, slim, policy, rand, storage_error=error))
            for key, _, slim, policy in saved
        ]
    return [(key, result) for key, result, _, _ in saved if result is not None]


def update(
    config: Config,
    *,
    names: Iterable[str] | None = None,
    clock: Clock = utc_now,
    on_result: Callable[[PollResult], None] | None = None,
) -> UpdateReport:
    """Poll every enabled feed once (or those named), then rewrite the outputs if needed.

    Rendering is skipped when no feed stored a response (all 304s or errors), the outputs are
    all there and the last run rendered them from this database with this configuration (the
    stamp beside the database): a 304 changes nothing the outputs show.
    """
    wanted = set(names) if names is not None else None
    feeds = [f for f in config.feeds if f.enabled and (wanted is None or f.name in wanted)]
    with open_store(config.database) as store:
        states = store.sync_feeds(config.feeds, clock())
        # A feed that answered 410 Gone stays quiet unless asked for by name.
        feeds = [f for f in feeds if wanted is not None or not states[f.name].disabled_reason]
        rendered = _outputs_current(config)
        # Until the outputs are rendered again, the stamp must not vouch for them: a run that
        # dies after storing a change and before rendering it leaves no stamp behind.
        outputs_rendered(config, False)
        results = poll(
            store, config, [states[f.name] for f in feeds], clock=clock, on_result=on_result
        )
        filtering = apply_rules(store, config, clock())
        # A 200 may change the feed's title or link (shown in the outputs) even with no new
        # or updated entries, so every stored response counts as a change.
        changed = any(r.status is PollStatus.UPDATED for r in results) or bool(filtering.changes)
        written = build_outputs(store, config, now=clock()) if changed or not rendered else []
        outputs_rendered(config, True)
    return UpdateReport(tuple(results), tuple(written))


def outputs_rendered(config: Config, current: bool) -> None:
    """Record whether the outputs show the database as configured (the stamp `update` reads).

    A writer that stores a change says False before rendering it, so a process killed in
    between leaves no stamp vouching for stale outputs; after a full render, True.
    """
    stamp = _outputs_stamp(config)
    if current:
        stamp.write_text(_outputs_fingerprint(config), encoding="utf-8")
    else:
        stamp.unlink(missing_ok=True)


def _outputs_stamp(config: Config) -> Path:
    """Where `update` notes that the outputs show the database: beside it, like SQLite's -wal.

    Not in the output directory, which is published.
    """
    return config.database.with_name(config.database.name + "-outputs")


def _outputs_fingerprint(config: Config) -> str:
    """What the outputs depend on besides the database: the output settings, feeds, version."""
    described = repr((__version__, config.output, config.feeds))
    described += repr(config.outputs)
    return hashlib.sha256(described.encode("utf-8")).hexdigest()


def _outputs_current(config: Config) -> bool:
    """True when every output file exists and the last `update` rendered them as configured.

    Never with a user template: it may include any file beside it, edited since.
    """
    if config.output.template is not None:
        return False
    names = (*FEED_FILES, HTML_FILE)
    if not all((config.output.dir / name).is_file() for name in names):
        return False
    if not _extra_outputs_current(config):
        return False
    try:
        stamp = _outputs_stamp(config).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return stamp == _outputs_fingerprint(config)


def _extra_outputs_current(config: Config) -> bool:
    """Every extra output's files exist, and none depends on the clock (`since:` makes
    entries leave an output as time passes, with no change to the database)."""
    for extra in config.outputs:
        if extra.selection.since is not None:
            return False
        folder = config.output.dir / extra.name
        if not all((folder / name).is_file() for name in (*FEED_FILES, HTML_FILE)):
            return False
    return True


TOMBSTONE_MINIMUM = timedelta(days=90)


def prune(store: Store, config: Config, now: datetime) -> PruneCounts:
    """Apply `retention:`; tombstones outlive what they stand for, so items never come back.

    They are kept for twice the retention period (at least 90 days): long enough for any feed
    to have dropped the item from its document.
    """
    days = config.retention.days
    keep_tombstones = max(TOMBSTONE_MINIMUM, timedelta(days=2 * (days or 0)))
    return store.prune(
        older_than=now - timedelta(days=days) if days else None,
        max_per_feed=config.retention.max_entries_per_feed,
        forget_tombstones_before=now - keep_tombstones,
        now=now,
    )


def prune_and_build(config: Config, *, clock: Clock = utc_now) -> tuple[PruneCounts, list[Path]]:
    """`aggregator prune`: apply retention, then rewrite the outputs if anything went."""
    with open_store(config.database) as store:
        # Entries pruned but not yet rendered away (killed in between): `update` must not skip.
        outputs_rendered(config, False)
        counts = prune(store, config, clock())
        filtering = apply_rules(store, config, clock())
        written = build_outputs(store, config) if counts.entries or filtering.changes else []
    return counts, written


def build(config: Config) -> list[Path]:
    """Rewrite the outputs from the database alone (no network)."""
    with open_store(config.database) as store:
        store.sync_feeds(config.feeds, utc_now())
        apply_rules(store, config, utc_now())
        written = build_outputs(store, config)
        outputs_rendered(config, True)
        return written


# Output directories already warned about in this process: `run` rebuilds often, says it once.
_WARNED_WITHOUT_BASE_URL: set[Path] = set()


def warn_without_base_url(config: Config) -> bool:
    """Say once per process and output directory that the feeds cannot name their own URL.

    Without output.base_url no feed carries rel="self" (or feed_url), which validators and
    WebSub expect, and a guessed one would be worse than none. Returns True when it warned.
    """
    out = config.output
    if out.base_url or out.dir in _WARNED_WITHOUT_BASE_URL:
        return False
    _WARNED_WITHOUT_BASE_URL.add(out.dir)
    site = (
        ""
        if out.link
        else f", and name {LOCAL_PAGE} (where `aggregator serve` puts them) as their page"
    )
    log.warning(
        "output.base_url is not set: the feeds in %s carry no self link%s; set it to the "
        'public URL of that directory for valid feeds (see the README, "Valid feeds")',
        out.dir,
        site,
    )
    return True


def apply_rules(store: Store, config: Config, now: datetime) -> FilterPlan:
    """Judge the stored entries by the keep and block rules (`rules.RuleSet`), before a build.

    Every entry when the rules changed since they were last applied; else only those stored
    or changed since, and those an `older_than` may now judge differently. Read, decided and
    written in one transaction; the verdicts that changed are one batched UPDATE.
    """
    rules = RuleSet.of(config)
    with store.transaction("the keep and block rules"):
        stored = store.rule_state()
        everything = rules.check_everything(stored, now)
        windows = rules.recheck_windows(stored[1], now) if stored and not everything else []
        if rules.empty:  # every entry is shown: only those filtered now change
            subjects = store.rule_subjects(rules.fields, filtered=True)
        else:
            subjects = store.rule_subjects(rules.fields, everything=everything, windows=windows)
        plan = rules.decide(subjects, now, everything=everything)
        store.apply_filtering(plan)
    for rule, count in plan.timed_out.items():
        log.warning(
            "rules: searching for %s timed out %s: taken as no match%s; simplify it",
            rule,
            counted(count, "time"),
            " and skipped for the rest of the entries" if count >= GIVE_UP_AFTER else "",
        )
    return plan


def build_outputs(
    store: Store,
    config: Config,
    *,
    session: Session | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Render the merged feed and each extra output; files whose bytes would not change are
    left untouched. The extra outputs go first, so the main page never links to a folder not
    written yet.

    When a WebSub hub is configured, it is pinged for the feeds that changed, and only then.
    """
    warn_without_base_url(config)
    now = now or utc_now()
    written: list[Path] = []
    for extra in config.outputs:
        folder = config.output.dir / extra.name
        written += write_outputs(
            extra_feed(store, config, extra, now), folder, config.output.template
        )
    written += write_outputs(merged_feed(store, config), config.output.dir, config.output.template)
    _announce(config, written, session)
    return written


def _announce(config: Config, written: list[Path], session: Session | None) -> None:
    """Ping the WebSub hub with the public URL of each feed file rewritten (its topic)."""
    hub, base = config.output.websub_hub, config.output.base_url
    topics = (
        [
            base + path.relative_to(config.output.dir).as_posix()
            for path in written
            if path.name in FEED_FILES
        ]
        if base
        else []
    )
    if hub and topics:
        own_session = session is None
        session = session or make_session(config.defaults.user_agent)
        try:
            publish_to_hub(session, hub, topics)
            log.info("WebSub: announced %s to %s", ", ".join(topics), hub)
        except FetchError as e:
            log.warning("%s (the feeds were written; the hub will catch up next change)", e)
        finally:
            if own_session:
                session.close()


def output_links(config: Config, current: str | None = None) -> tuple[OutputLink, ...]:
    """The other outputs, as the page of ``current`` (an extra output's name, or None for the
    main one) links to them: relative links, so the pages work wherever they are served."""
    if current is None:
        return tuple(OutputLink(extra.title, f"{extra.name}/") for extra in config.outputs)
    others = [extra for extra in config.outputs if extra.name != current]
    return (
        OutputLink(config.output.title, "../"),
        *(OutputLink(extra.title, f"../{extra.name}/") for extra in others),
    )


def extra_feed(store: Store, config: Config, extra: ExtraOutput, now: datetime) -> OutputFeed:
    """An extra output: its selection's entries, its own id and title, and links (self, page)
    to its own folder, ``output.base_url + name/``. Without a base_url its page link is the
    site's (`output.link`), else the folder as `aggregator serve` shows it."""
    entries = store.selected_entries(
        extra.selection, now, group_stories=config.output.group_stories
    )
    newest = max((e.updated for e in entries), default=EMPTY_FEED_UPDATED)
    base = config.output.base_url
    folder_url = f"{base}{extra.name}/" if base else None
    return OutputFeed(
        id=extra.id,
        title=extra.title,
        updated=newest,
        entries=tuple(entries),
        # Without either, where `aggregator serve` shows the folder (as the main page's).
        link=folder_url or config.output.link or f"{LOCAL_PAGE}{extra.name}/",
        base_url=folder_url,
        generator_version=__version__,
        hub=config.output.websub_hub,
        outputs=output_links(config, extra.name),
    )


def output_counts(config: Config, *, clock: Clock = utc_now) -> list[tuple[ExtraOutput, int]]:
    """`aggregator outputs`: each extra output with how many items it shows now.

    The feed rows are synced with the config first (as `build` does): the tags an output
    selects by are the ones feeds.yaml gives now. No database yet: every count is 0.
    """
    if not config.database.exists():
        return [(extra, 0) for extra in config.outputs]
    now = clock()
    with open_store(config.database) as store:
        store.sync_feeds(config.feeds, now)
        return [
            (
                extra,
                store.count_selected(
                    extra.selection, now, group_stories=config.output.group_stories
                ),
            )
            for extra in config.outputs
        ]


def merged_feed(store: Store, config: Config) -> OutputFeed:
    entries = store.latest_entries(
        config.output.max_entries, group_stories=config.output.group_stories
    )
    newest = max((e.updated for e in entries), default=EMPTY_FEED_UPDATED)
    return OutputFeed(
        id=config.output.id,
        title=config.output.title,
        updated=newest,
        entries=tuple(published_links(e, config.output.keep_tracking) for e in entries),
        link=config.output.link,
        base_url=config.output.base_url,
        generator_version=__version__,
        hub=config.output.websub_hub,
        outputs=output_links(config),
    )


def published_links(entry: OutputEntry, keep_tracking: bool = False) -> OutputEntry:
    """The entry with its links as published: its own and its coverage's without tracking
    parameters (`urls.without_tracking`), unless ``output.keep_tracking``. The store keeps
    them as the feed gave them."""
    if keep_tracking:
        return entry
    return replace(
        entry,
        link=without_tracking(entry.link),
        coverage=tuple(replace(c, link=without_tracking(c.link)) for c in entry.coverage),
    )
