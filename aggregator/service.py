"""`aggregator run`: the long-running service, a thin shell over the pipeline.

Threads and who owns what:
- the main thread is the only writer: it owns the SQLite connection, handles every event
  (dispatch, a fetched feed, reload, stop) from one queue, and rebuilds the outputs;
- an APScheduler BackgroundScheduler runs one dispatcher job every few seconds whose only
  work is to post "dispatch" on that queue (the schedule itself lives in SQLite: `next_due`);
- daemon worker threads fetch and parse, and post the result back. Being daemons, a fetch stuck
  in a slow server never holds up shutdown, and none of them writes, so none can write partly.
Per-host politeness (at most `per_host` feeds of one host in flight) is decided on the main
thread by `politeness.HostTurns`, as in `aggregator update`: a host's next feed goes to the
workers only when one of its feeds has been stored.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.config import ALLOW_EMPTY_HINT, load_config, no_feeds
from aggregator.errors import AlreadyRunning, ConfigError
from aggregator.fetch import FetchLimits, make_session
from aggregator.formats import counted, poll_line
from aggregator.pipeline import (
    BATCH_FEEDS,
    Clock,
    Parser,
    Retrieved,
    apply_rules,
    build_outputs,
    outputs_rendered,
    policy_for,
    prune,
    retrieve,
    save_batch,
    utc_now,
)
from aggregator.politeness import HostTurns, host_of
from aggregator.rules import RuleSet
from aggregator.store import Store, open_store
from aggregator.types import Config, FeedState, PollStatus, Retention

log = logging.getLogger("aggregator.service")

SHUTDOWN_GRACE = (
    5.0  # seconds to let in-flight fetches finish and be stored; SIGTERM -> exit < 10 s
)
MAX_DISPATCH_EVERY = 30.0
REBUILD_AT_LEAST_EVERY = 60.0  # with feeds always in flight, still publish changes this often
# With an `older_than` rule, entries age out of the outputs this often (seconds) even while no
# feed brings anything new (every rebuild applies the rules too).
AGE_RULES_EVERY = 300.0


@dataclass(frozen=True, slots=True)
class _Dispatch:
    pass


@dataclass(frozen=True, slots=True)
class _Fetched:
    retrieved: Retrieved


@dataclass(frozen=True, slots=True)
class _Reload:
    pass


@dataclass(frozen=True, slots=True)
class _Prune:
    pass


_Event = _Dispatch | _Fetched | _Reload | _Prune
PRUNE_EVERY = timedelta(days=1)
FIRST_PRUNE_AFTER = timedelta(minutes=5)  # not in the way of the first round of polls


@contextlib.contextmanager
def exclusive_lock(database: Path) -> Iterator[None]:
    """Refuse a second service on one database; the OS frees the lock even after kill -9."""
    database.parent.mkdir(parents=True, exist_ok=True)
    lock_path = database.with_name(database.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise AlreadyRunning(
                f"another `aggregator run` (pid {holder}) is already using {database}; "
                "stop it first, or point this one at another database"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def next_round(
    due: Sequence[datetime | None], now: datetime, tick: timedelta
) -> tuple[datetime, int] | None:
    """When the next poll is, and how many feeds are due then: the earliest due time (``now``
    for a feed overdue or never polled) and the feeds due within one dispatch ``tick`` of it,
    which the dispatcher takes together. None: no feed is polled at all."""
    if not due:
        return None
    times = [now if moment is None or moment <= now else moment for moment in due]
    first = min(times)
    return first, sum(moment <= first + tick for moment in times)


def describe_next_round(round_: tuple[datetime, int] | None, now: datetime) -> str:
    """The log line saying when the service polls next: an idle service is not a stuck one."""
    if round_ is None:
        return "nothing to poll: no feed is enabled (see `aggregator feeds`)"
    when, count = round_
    due = counted(count, "feed")
    if when <= now:
        return f"next poll now: {due} due"
    return f"next poll at {when.strftime('%Y-%m-%dT%H:%M:%SZ')} (in {_span(when - now)}): {due} due"


def _span(gap: timedelta) -> str:
    """A wait as people say it: 40s, 25m, 3h 10m, 2d 4h."""
    seconds = max(1, round(gap.total_seconds()))
    if seconds < 90:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


class Service:
    """Keeps every configured feed fresh until told to stop."""

    def __init__(
        self,
        config_path: Path,
        *,
        clock: Clock = utc_now,
        rand: Callable[[], float] = random.random,
        on_ready: Callable[[Config], None] | None = None,
        allow_empty: bool = False,
    ) -> None:
        self.config_path = config_path
        self.config = load_config(config_path)
        self.allow_empty = allow_empty  # run (and reload to) a config without feeds
        empty = no_feeds(self.config)
        if empty is not None and not allow_empty:
            raise ConfigError(f"{empty}; {ALLOW_EMPTY_HINT}")
        self.clock = clock
        self.rand = rand
        self.on_ready = on_ready
        self.events: queue.Queue[_Event] = queue.Queue()
        self.jobs: queue.Queue[FeedState] = queue.Queue()
        self.stopping = threading.Event()
        self.in_flight: set[str] = set()
        # At most per_host feeds of one host in flight, as in `aggregator update`.
        self.turns: HostTurns[FeedState] = HostTurns(
            self.config.defaults.per_host, (), lambda state: host_of(state.url)
        )
        self.changed = False
        self.last_build = time.monotonic()
        self.last_judged = time.monotonic()
        # How often the dispatcher looks for due feeds (at most MAX_DISPATCH_EVERY seconds).
        self.dispatch_every = timedelta(
            seconds=max(
                1.0, min(MAX_DISPATCH_EVERY, self.config.defaults.min_interval.total_seconds())
            )
        )
        self.session = make_session(self.config.defaults.user_agent)
        # Always processes: the service runs for months, and only a process can be stopped
        # when one feed's parse runs away (defaults.parse_timeout).
        self.parser = Parser(
            len(self.config.feeds),
            budget=self.config.defaults.parse_timeout,
            always_processes=True,
        )

    # ------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code."""
        with exclusive_lock(self.config.database), open_store(self.config.database) as store:
            store.sync_feeds(self.config.feeds, self.clock())
            self._start_workers()
            scheduler = self._start_scheduler()
            self._install_signal_handlers()
            log.info(
                "running: %s, database %s, outputs in %s",
                counted(len(self.config.feeds), "feed"),
                self.config.database,
                self.config.output.dir,
            )
            if (empty := no_feeds(self.config)) is not None:
                log.warning("%s: polling nothing until a reload (SIGHUP) adds feeds", empty)
            self._log_next_round(store)
            if self.on_ready is not None:
                self.on_ready(self.config)
            try:
                while not self.stopping.is_set():
                    try:
                        event = self.events.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    self._handle(store, event)
            finally:
                scheduler.shutdown(wait=False)
                self._finish(store)
                self.parser.close(wait=False)
        log.info("stopped")
        return 0

    def stop(self) -> None:
        self.stopping.set()

    def reload(self) -> None:
        """Reread the config on the main thread as soon as it is free (what SIGHUP asks)."""
        self.events.put(_Reload())

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded in a test or another program: the caller stops us with stop()

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("%s received: finishing in-flight fetches", signal.Signals(signum).name)
            self.stopping.set()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _start_workers(self) -> None:
        limits = FetchLimits.from_defaults(self.config.defaults)

        def work() -> None:
            while True:
                state = self.jobs.get()
                retrieved = retrieve(self.session, state, limits, self.clock, self.parser)
                self.events.put(_Fetched(retrieved))

        for number in range(max(1, self.config.defaults.workers)):
            threading.Thread(target=work, name=f"fetch-{number}", daemon=True).start()

    def _start_scheduler(self) -> BackgroundScheduler:
        every = self.dispatch_every.total_seconds()
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(
            lambda: self.events.put(_Dispatch()),
            "interval",
            seconds=every,
            id="dispatch",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,  # the 1 s default would silently skip runs
            next_run_time=self.clock(),
        )

        scheduler.add_job(
            lambda: self.events.put(_Prune()),
            "interval",
            seconds=PRUNE_EVERY.total_seconds(),
            id="prune",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=self.clock() + FIRST_PRUNE_AFTER,
        )

        def on_job_trouble(event: JobExecutionEvent) -> None:
            log.warning("scheduler: job %s: %s", event.job_id, event.exception or event.code)

        scheduler.add_listener(
            on_job_trouble, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        scheduler.start()
        return scheduler

    # ------------------------------------------------------------ events (main thread)

    def _handle(self, store: Store, event: _Event) -> None:
        if isinstance(event, _Dispatch):
            self._dispatch(store)
            self._age_rules(store)
        elif isinstance(event, _Fetched):
            self.store_results(store, [event.retrieved, *self._more_fetched()])
            if not self.in_flight:  # the round is over: say when the next one is
                self._log_next_round(store)
        elif isinstance(event, _Reload):
            self._reload(store)
        elif isinstance(event, _Prune):
            self._prune(store)
        if self.changed and (
            not self.in_flight or time.monotonic() - self.last_build > REBUILD_AT_LEAST_EVERY
        ):
            self._rebuild(store)

    def _dispatch(self, store: Store) -> None:
        names = [f.name for f in self.config.feeds if f.enabled]
        for state in store.due_feeds(names, self.clock()):
            if state.name in self.in_flight:
                continue
            self.in_flight.add(state.name)
            self.turns.add(state)
        self._start_fetches()

    def _start_fetches(self) -> None:
        """Hand the fetch threads every waiting feed whose host has a free slot."""
        while (state := self.turns.take()) is not None:
            self.jobs.put(state)

    def _more_fetched(self) -> list[Retrieved]:
        """Fetched feeds already waiting in the queue, up to a batch: stored in one commit."""
        more: list[Retrieved] = []
        while len(more) < BATCH_FEEDS - 1:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if not isinstance(event, _Fetched):
                self.events.put(event)  # handled after this batch
                break
            more.append(event.retrieved)
        return more

    def store_results(self, store: Store, fetched: list[Retrieved]) -> None:
        """Store fetched feeds in one commit (`pipeline.save_batch`, as `update` does), and
        give their hosts' turns to the next feeds. Main thread only; public so that a test can
        hand it a batch without the threads that make one."""
        batch = []
        for retrieved in fetched:
            state = retrieved.state
            self.turns.done(state)
            self.in_flight.discard(state.name)
            feed = next((f for f in self.config.feeds if f.name == state.name), None)
            if feed is None:
                continue  # removed from the config while it was being fetched
            batch.append((state.name, retrieved, policy_for(feed, self.config.defaults)))
        del fetched
        self._start_fetches()
        if any(retrieved.parsed is not None for _, retrieved, _ in batch) and not self.changed:
            # About to store responses the outputs do not show yet: until the next rebuild,
            # `aggregator update` must not take them for current (a kill in between).
            outputs_rendered(self.config, False)
        for _, result in save_batch(store, batch, self.rand):
            (log.warning if result.status is PollStatus.ERROR else log.info)(
                poll_line(result, schedule=True)
            )
            if result.new or result.updated:
                self.changed = True

    def _log_next_round(self, store: Store) -> None:
        """At start and after each round: when the next poll is, so that silence means idle."""
        names = [f.name for f in self.config.feeds if f.enabled]
        now = self.clock()
        due = store.due_times(names) if names else []
        log.info(describe_next_round(next_round(due, now, self.dispatch_every), now))

    def _reload(self, store: Store) -> None:
        try:
            config = load_config(self.config_path)
        except ConfigError as e:
            log.error("reload refused, keeping the running config: %s", e)
            return
        empty = no_feeds(config)
        if empty is not None and not self.allow_empty:
            log.error(
                "reload refused, keeping the running config: %s (start with --allow-empty "
                "to allow that)",
                empty,
            )
            return
        if empty is not None:
            log.warning("%s: polling nothing until a reload adds feeds", empty)
        before = {f.name for f in self.config.feeds}
        after = {f.name for f in config.feeds}
        self.config = config
        self.turns.per_host = max(1, config.defaults.per_host)
        store.sync_feeds(config.feeds, self.clock())
        log.info(
            "reloaded %s: %s (%d added, %d removed)",
            self.config_path,
            counted(len(after), "feed"),
            len(after - before),
            len(before - after),
        )
        self.changed = True  # output settings may have changed too
        self._dispatch(store)

    def _prune(self, store: Store) -> None:
        if self.config.retention == Retention():
            return
        outputs_rendered(self.config, False)  # until the rebuild shows what was pruned
        counts = prune(store, self.config, self.clock())
        # Reclaim what the WAL grew to, now that the writer is idle for a moment.
        store.checkpoint()
        if counts.entries:
            log.info(
                "pruned %s (%s ended), forgot %s",
                counted(counts.entries, "entry"),
                counted(counts.stories, "story"),
                counted(counts.tombstones_expired, "old tombstone"),
            )
            self.changed = True

    def _age_rules(self, store: Store) -> None:
        """Apply an `older_than` rule at least every AGE_RULES_EVERY seconds, so old entries
        leave the outputs of a quiet service too (without one, nothing changes with time)."""
        if time.monotonic() - self.last_judged < AGE_RULES_EVERY:
            return
        self.last_judged = time.monotonic()
        if (
            RuleSet.of(self.config).durations
            and apply_rules(store, self.config, self.clock()).changes
        ):
            self.changed = True

    def _rebuild(self, store: Store) -> None:
        apply_rules(store, self.config, self.clock())  # new entries, and rules changed by a reload
        self.last_judged = time.monotonic()
        written = build_outputs(store, self.config, session=self.session, now=self.clock())
        outputs_rendered(self.config, True)
        self.changed = False
        self.last_build = time.monotonic()
        store.checkpoint()
        if written:
            shown = (p.relative_to(self.config.output.dir).as_posix() for p in written)
            log.info("outputs rebuilt: %s", ", ".join(shown))

    def _finish(self, store: Store) -> None:
        """Store what finishes within the grace period; abandon the rest unwritten."""
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while self.in_flight and time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(event, _Fetched):
                self.store_results(store, [event.retrieved])
        if self.in_flight:
            log.info(
                "abandoned %s: %s",
                counted(len(self.in_flight), "in-flight fetch"),
                sorted(self.in_flight),
            )
        if self.changed:
            self._rebuild(store)
