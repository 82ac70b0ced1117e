"""The warm path (issue 6): a run where every feed answers 304 should cost little more than the
bare conditional GETs. Connections are kept alive, the deadline needs no thread per request,
the store writes one fixed UPDATE per feed, and `aggregator update` skips imports it never uses.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FeedServer, item, rss, write_config

from aggregator.config import load_config
from aggregator.errors import FetchError
from aggregator.fetch import FetchLimits, fetch, make_session
from aggregator.fetch import deadline as deadline_module
from aggregator.fetch import http as http_module
from aggregator.pipeline import BATCH_SECONDS, poll, update
from aggregator.plan import moved_to
from aggregator.store import Store, open_store
from aggregator.types import FeedConfig, FetchResult, PollStatus, Schedule

FAST = FetchLimits(  # loopback test servers: redirects among them are allowed
    connect_timeout=2, read_timeout=1, total_timeout=3, max_body_bytes=100_000, allow_private=True
)
FEED = rss(item("1", "One", "https://example.org/1"))
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
LATER = Schedule(NOW + timedelta(hours=1), timedelta(hours=1), "config")


@pytest.fixture
def connections(feed_server: FeedServer) -> list[object]:
    """The client addresses of every TCP connection the feed server accepts."""
    accepted: list[object] = []
    process = feed_server.httpd.process_request

    def counting(request: Any, address: Any) -> None:
        accepted.append(address)
        process(request, address)

    feed_server.httpd.process_request = counting  # type: ignore[method-assign,assignment]
    return accepted


# ---------------------------------------------------------------- keep-alive


def test_304s_through_one_session_reuse_one_connection(
    feed_server: FeedServer, connections: list[object]
) -> None:
    url = feed_server.serve("/feed.xml", FEED, etag='"v1"')
    session = make_session()
    for _ in range(20):
        assert fetch(session, url, etag='"v1"', limits=FAST).status == 304
    assert len(feed_server.hits("/feed.xml")) == 20
    assert len(connections) == 1  # was one per 304: close() of an unread response drops it


def test_small_sized_redirect_and_error_bodies_keep_the_connection(
    feed_server: FeedServer, connections: list[object]
) -> None:
    final = feed_server.serve("/final.xml", FEED)
    moved = feed_server.serve("/moved", b"<html>moved</html>", status=302, location=final)
    missing = feed_server.serve("/missing", b"not here", status=404)
    session = make_session()
    for _ in range(5):
        assert fetch(session, moved, limits=FAST).body == FEED.encode()
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch(session, missing, limits=FAST)
    assert len(connections) == 1


def test_a_large_error_body_is_not_read_to_keep_its_connection(
    feed_server: FeedServer, connections: list[object]
) -> None:
    big = feed_server.serve("/big-error", b"x" * (http_module.DRAIN_BYTES + 1), status=500)
    session = make_session()
    with pytest.raises(FetchError, match="HTTP 500"):
        fetch(session, big, limits=FAST)
    with pytest.raises(FetchError, match="HTTP 500"):
        fetch(session, big, limits=FAST)
    assert len(connections) == 2  # dropped unread, as before


def test_a_slow_redirect_body_is_cut_after_the_drain_budget(
    feed_server: FeedServer, connections: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_module, "DRAIN_SECONDS", 0.2)
    final = feed_server.serve("/final.xml", FEED)
    slow = feed_server.serve("/slow", b"m" * 100, status=302, location=final, trickle=0.3)
    started = time.monotonic()
    result = fetch(make_session(), slow, limits=FAST)  # 30 s of body if it were waited for
    assert result.body == FEED.encode() and result.url == final
    assert time.monotonic() - started < 1.5  # well inside the 3 s whole-exchange deadline
    assert len(connections) == 2  # the cut connection was dropped, not pooled


def test_a_warm_update_opens_at_most_one_connection_per_worker(
    feed_server: FeedServer, connections: list[object], tmp_path: Path
) -> None:
    feeds = ""
    for n in range(12):
        url = feed_server.serve(
            f"/f{n}.xml", rss(item(f"{n}", f"Entry {n}"), title=f"F{n}"), etag=f'"e{n}"'
        )
        feeds += f"  - url: {url}\n    name: f{n}\n"
    config = load_config(write_config(tmp_path, feeds, "  workers: 2\n"))
    assert all(r.status is PollStatus.UPDATED for r in update(config).results)
    connections.clear()
    warm = update(config).results
    assert [r.status for r in warm] == [PollStatus.NOT_MODIFIED] * 12
    assert len(connections) <= 2


# ---------------------------------------------------------------- the deadline's watchdog


def test_fetches_start_no_thread_each(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = feed_server.serve("/feed.xml", FEED, etag='"v1"')
    session = make_session()
    fetch(session, url, etag='"v1"', limits=FAST)  # the watchdog starts once, if not yet
    started: list[str] = []
    start = threading.Thread.start

    def recording(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", recording)
    for _ in range(30):
        fetch(session, url, etag='"v1"', limits=FAST)
    assert started == []  # was a threading.Timer per fetch (and a server thread per 304)


def test_watchdog_runs_alarms_in_time_order_and_never_a_cancelled_one() -> None:
    watchdog = deadline_module.Watchdog()
    fired: list[str] = []
    done = threading.Event()
    now = time.monotonic()

    def fire(name: str, last: bool = False) -> Callable[[], None]:
        def alarm() -> None:
            fired.append(name)
            if last:
                done.set()

        return alarm

    def fail() -> None:
        raise RuntimeError("a broken alarm")

    watchdog.call_at(now + 0.15, fire("late", last=True))
    watchdog.call_at(now + 0.05, fire("early"))
    cancelled = watchdog.call_at(now + 0.10, fire("cancelled"))
    watchdog.cancel(cancelled)
    watchdog.call_at(now - 1, fail)  # a failing alarm does not stop the others
    assert done.wait(2)
    assert fired == ["early", "late"]


def test_watchdog_forgets_cancelled_alarms() -> None:
    """Most alarms are cancelled long before their time (the fetch ended): the watchdog lets
    their actions go, and keeps next to nothing of them however many there were."""
    watchdog = deadline_module.Watchdog()
    far = time.monotonic() + 3600
    actions = [lambda: None for _ in range(100)]
    held = [weakref.ref(action) for action in actions]
    for action in actions:
        watchdog.cancel(watchdog.call_at(far, action))
    del actions, action
    assert [ref for ref in held if ref() is not None] == []
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(10_000):
            watchdog.cancel(watchdog.call_at(far, lambda: None))
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    ours = [tracemalloc.Filter(True, deadline_module.__file__)]
    grown = after.filter_traces(ours).compare_to(before.filter_traces(ours), "filename")
    assert sum(stat.size_diff for stat in grown) < 50_000  # each one kept: ~500 KB


class _Connection:
    """Just what the deadline touches: a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_a_late_deadline_leaves_a_pooled_connection_alone(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = socket_pair
    connection = _Connection(ours)
    with deadline_module.Deadline(0.05) as deadline:
        deadline.watch(connection)
        deadline.unwatch(connection)  # back in the pool, maybe already another fetch's
        assert deadline.expired.wait(2)  # the watchdog's alarm ran
        theirs.sendall(b"still open")
        assert ours.recv(100) == b"still open" and not connection.closed


def test_an_expired_deadline_shuts_its_connection_and_never_pools_it(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = socket_pair
    connection = _Connection(ours)
    ours.settimeout(2)  # a deadline that never fires fails here, not hangs
    with deadline_module.Deadline(0.05) as deadline:
        deadline.watch(connection)
        assert ours.recv(100) == b""  # shut down when it expires: a blocked read returns
        assert deadline.expired.is_set()
        deadline.unwatch(connection)
        assert connection.closed


def test_the_deadline_fires_from_the_watchdog(feed_server: FeedServer) -> None:
    url = feed_server.serve("/hang", hang=True)
    limits = FetchLimits(connect_timeout=2, read_timeout=10, total_timeout=0.5, allow_private=True)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"longer than 0\.5s"):
        fetch(make_session(), url, limits=limits)
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------- the store


def _statements(store: Store) -> list[str]:
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    return seen


def _feed(store: Store, name: str) -> dict[str, object]:
    return next(store.db.query("SELECT * FROM feeds WHERE name = ?", [name]))


def test_record_not_modified_is_one_update_keeping_unsent_validators(tmp_path: Path) -> None:
    with open_store(tmp_path / "a.db") as store:
        state = store.sync_feeds([FeedConfig(url="https://f.example/rss", name="f")], NOW)["f"]
        store.db.execute(
            "UPDATE feeds SET etag = '\"old\"', last_modified = 'Mon, 01 Jan 2024 00:00:00 GMT', "
            "error_count = 3, failing_since = '2026-11-20T00:00:00Z', last_error = 'boom'"
        )
        store.db.conn.commit()
        seen = _statements(store)
        store.record_not_modified(
            state, FetchResult(304, "https://f.example/rss", {"ETag": '"new"'}, None), NOW, LATER
        )
        # The UPDATE's rows come in a WITH clause (one statement for a batch's 304s).
        writes = [s for s in seen if s.lstrip().upper().startswith(("UPDATE", "INSERT", "WITH"))]
        reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
        assert len(writes) == 1 and not reads, seen
        row = _feed(store, "f")
        assert row["etag"] == '"new"'  # a 304 that sends a new validator replaces it
        assert row["last_modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"  # not sent: kept
        assert (row["error_count"], row["failing_since"], row["last_error"]) == (0, None, None)
        assert row["last_result"] == "not-modified" and row["last_status"] == 304
        assert row["next_due"] == "2026-11-25T13:00:00Z" and row["interval_reason"] == "config"
        assert row["moved_to"] is None


def test_a_batch_writes_its_304s_in_one_statement_before_its_commit(tmp_path: Path) -> None:
    """Each statement of the writer lets the fetch threads run before it carries on: a batch of
    304s is one UPDATE for all of them, made as the batch commits, and none if it fails."""
    feeds = [FeedConfig(url=f"https://f{n}.example/rss", name=f"f{n}") for n in range(3)]
    with open_store(tmp_path / "a.db") as store:
        states = store.sync_feeds(feeds, NOW)
        seen = _statements(store)
        with store.batch("three 304s"):
            for n, state in enumerate(states.values()):
                answer = FetchResult(304, state.url, {"ETag": f'"v{n}"'}, None)
                store.record_not_modified(state, answer, NOW, LATER)
            assert not [s for s in seen if "UPDATE" in s.upper()]
            assert _feed(store, "f0")["etag"] is None  # not yet written
        # One statement at the commit, for the three rows: no savepoint per feed, nothing read
        # back, not even one step per row (each lets the fetch threads take the interpreter).
        verbs = [s.split()[0].upper() for s in seen if "sqlite_utils_query" not in s]
        verbs = [verb for verb in verbs if verb != "SELECT"]  # the test's own look inside
        assert verbs == ["BEGIN", "WITH", "COMMIT"], seen
        (written,) = [s for s in seen if s.startswith("WITH")]
        assert "UPDATE feeds" in written and written.count("'\"v") == 3  # the three ETags
        assert [_feed(store, f"f{n}")["etag"] for n in range(3)] == ['"v0"', '"v1"', '"v2"']
        assert {_feed(store, f"f{n}")["last_result"] for n in range(3)} == {"not-modified"}

        states = store.feed_states([f.name for f in feeds])
        with pytest.raises(RuntimeError), store.batch("a batch that fails"):
            store.record_not_modified(
                states["f0"],
                FetchResult(304, states["f0"].url, {"ETag": '"lost"'}, None),
                NOW,
                LATER,
            )
            raise RuntimeError("the batch fails before its commit")
        assert _feed(store, "f0")["etag"] == '"v0"'  # nothing of it stored
        store.record_not_modified(  # outside a batch: written at once
            states["f1"], FetchResult(304, states["f1"].url, {"ETag": '"now"'}, None), NOW, LATER
        )
        assert _feed(store, "f1")["etag"] == '"now"'


def test_a_batch_of_more_304s_than_one_statement_holds_writes_them_all(tmp_path: Path) -> None:
    feeds = [FeedConfig(url=f"https://f{n}.example/rss", name=f"f{n}") for n in range(250)]
    with open_store(tmp_path / "a.db") as store:
        states = store.sync_feeds(feeds, NOW)
        seen = _statements(store)
        with store.batch("250 304s"):
            for state in states.values():
                answer = FetchResult(304, state.url, {"ETag": f'"{state.name}"'}, None)
                store.record_not_modified(state, answer, NOW, LATER)
        assert len([s for s in seen if s.startswith("WITH")]) == 3  # 100 rows a statement
        etags = dict(store.db.execute("SELECT name, etag FROM feeds").fetchall())
    assert etags == {f"f{n}": f'"f{n}"' for n in range(250)}


def test_304s_arriving_one_by_one_are_committed_together_and_a_stored_response_at_once(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A commit costs more than a 304's row: 304s that arrive apart wait for each other (within
    BATCH_SECONDS) and go in one commit, where each used to end its own batch. A response that
    stores entries still ends its batch as soon as nothing else is ready."""
    spaced = [0.6 + 0.1 * n for n in range(4)]  # seconds: the 304s arrive 0.1 s apart
    assert spaced[-1] - spaced[0] < BATCH_SECONDS / 2
    urls = [feed_server.serve(f"/f{n}.xml", FEED, etag='"v1"') for n in range(5)]
    feeds = "".join(f"  - url: {url}\n    name: f{n}\n" for n, url in enumerate(urls))
    # All on one host: per_host lets them be fetched at once, as feeds of many hosts are.
    config = load_config(write_config(tmp_path, feeds, extra="  per_host: 5\n"))
    update(config)  # every feed stored, with its ETag
    changed = rss(item("1", "One", "https://example.org/1") + item("2", "Two", "https://e.org/2"))
    feed_server.serve("/f0.xml", changed, etag='"v2"')  # a 200 at once
    for n, delay in enumerate(spaced, start=1):
        feed_server.serve(f"/f{n}.xml", FEED, etag='"v1"', delay=delay)
    with open_store(config.database) as store:
        states = store.sync_feeds(config.feeds, NOW)
        seen = _statements(store)
        results = poll(store, config, [states[f.name] for f in config.feeds])
    assert [r.status for r in results] == [PollStatus.UPDATED] + [PollStatus.NOT_MODIFIED] * 4
    commits = [s for s in seen if s.strip().upper() == "COMMIT"]
    assert len(commits) == 2, seen  # the 200 alone, then the four 304s together


def test_record_not_modified_records_a_permanent_move_and_keeps_it(tmp_path: Path) -> None:
    with open_store(tmp_path / "a.db") as store:
        state = store.sync_feeds([FeedConfig(url="https://f.example/rss", name="f")], NOW)["f"]
        moved = FetchResult(304, "https://new.example/rss", {}, None, redirected_permanently=True)
        store.record_not_modified(state, moved, NOW, LATER, moved_to=moved_to(state, moved))
        assert _feed(store, "f")["moved_to"] == "https://new.example/rss"
        state = store.feed_states(["f"])["f"]
        later = NOW + timedelta(hours=1)
        again = FetchResult(304, "https://new.example/rss", {}, None)
        store.record_not_modified(state, again, later, LATER, moved_to=moved_to(state, again))
        row = _feed(store, "f")
        assert row["moved_to"] == "https://new.example/rss"
        assert row["moved_at"] == "2026-11-25T12:00:00Z"


def test_sync_feeds_writes_only_rows_whose_config_changed(tmp_path: Path) -> None:
    feeds = [
        FeedConfig(url=f"https://f{n}.example/rss", name=f"f{n}", tags=("news", "été"))
        for n in range(5)
    ]
    with open_store(tmp_path / "a.db") as store:
        first = store.sync_feeds(feeds, NOW)
        assert sorted(first) == [f"f{n}" for n in range(5)]
        assert json.loads(str(_feed(store, "f0")["tags"])) == ["news", "été"]
        store.db.execute(
            "UPDATE feeds SET etag = '\"e\"', error_count = 2, disabled_reason = 'HTTP 410'"
        )
        store.db.conn.commit()
        seen = _statements(store)
        changes = store.db.conn.total_changes
        again = store.sync_feeds(feeds, NOW + timedelta(days=1))
        assert store.db.conn.total_changes == changes  # nothing changed, nothing written
        assert not [s for s in seen if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
        assert set(again) == set(first)

        feeds[1] = FeedConfig(url="https://f1.example/rss", name="f1", title="Renamed")
        feeds[2] = FeedConfig(url="https://moved.example/rss", name="f2", tags=("news", "été"))
        seen.clear()
        states = store.sync_feeds(feeds, NOW)
        assert len([s for s in seen if s.lstrip().upper().startswith("UPDATE")]) == 3
        assert _feed(store, "f1")["configured_title"] == "Renamed"
        assert _feed(store, "f1")["etag"] == '"e"'  # same URL: validators kept
        assert states["f2"].url == "https://moved.example/rss"
        assert (states["f2"].etag, states["f2"].error_count, states["f2"].disabled_reason) == (
            None,
            0,
            None,
        )
        assert states["f0"].etag == '"e"'


def test_the_store_syncs_normally_under_wal(tmp_path: Path) -> None:
    with open_store(tmp_path / "a.db") as store:
        assert store.db.journal_mode == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


# ---------------------------------------------------------------- start-up


def test_the_cli_imports_only_what_update_needs() -> None:
    lazy = [
        "apscheduler",
        "aggregator.service",
        "aggregator.server",
        "aggregator.opml",
        "aggregator.queries",
        "http.server",
        # parsing happens in worker processes (or on first use), the page only when rendered
        "aggregator.parse",
        "feedparser",
        "jinja2",
    ]
    code = f"import sys, aggregator.cli; print([m for m in {lazy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_cli_process_does_not_import_numpy(tmp_path: Path) -> None:
    """sqlite-utils imports numpy whenever it is installed (~90 ms of every command's start-up
    here); the `aggregator` command stores no numpy values, so its process goes without."""
    import importlib.util

    if importlib.util.find_spec("numpy") is None:
        pytest.skip("numpy is not installed here: nothing to leave out")
    config = write_config(tmp_path, "  - url: http://127.0.0.1:9/feed.xml\n")

    def imported(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stderr

    assert "numpy" in imported("-c", "import sqlite_utils")  # what the command avoids
    stages = imported("-m", "aggregator", "--config", str(config), "feeds")
    assert "sqlite_utils.db" in stages and "numpy" not in stages
