"""The long-running service against a real loopback server that counts requests."""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, item, rss, wait_until, write_config

from aggregator.config import load_config
from aggregator.errors import AlreadyRunning, ConfigError
from aggregator.fetch import FetchLimits
from aggregator.pipeline import retrieve, update, utc_now
from aggregator.service import Service, describe_next_round, next_round
from aggregator.store import open_store

FAST = "  min_interval: 1s\n  interval: 1s\n"  # second-scale polling for tests


@contextmanager
def running(config_path: Path) -> Iterator[Service]:
    service = Service(config_path)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(15)
        assert not thread.is_alive(), "the service did not stop"


def feed_row(config_path: Path, name: str) -> sqlite3.Row:
    conn = sqlite3.connect(load_config(config_path).database)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM feeds WHERE name = ?", [name]).fetchone()
    finally:
        conn.close()


def one_feed(tmp_path: Path, url: str, extra: str = FAST) -> Path:
    return write_config(tmp_path, f"  - url: {url}\n    name: a\n", extra)


def test_polls_repeat_and_are_conditional(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")), etag='"v1"')
    config_path = one_feed(tmp_path, url)
    with running(config_path):
        assert wait_until(lambda: len(feed_server.hits("/a.xml")) >= 3, 10)
    hits = feed_server.hits("/a.xml")
    assert "If-None-Match" not in hits[0].headers  # one unconditional request, when added
    assert all(h.headers.get("If-None-Match") == '"v1"' for h in hits[1:])
    row = feed_row(config_path, "a")
    assert row["last_status"] == 304 and row["interval_reason"] == "config"
    atom = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    assert [e.title for e in atom.entries] == ["One"]


def test_retry_after_delays_the_next_request(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve(
        "/a.xml",
        "slow down",
        status=429,
        content_type="text/plain",
        headers={"Retry-After": "3600"},
    )
    config_path = one_feed(tmp_path, url)
    before = datetime.now(UTC)
    with running(config_path):
        assert wait_until(lambda: len(feed_server.hits("/a.xml")) >= 1, 5)
        time.sleep(3)  # three dispatch rounds at a 1 s interval
    assert len(feed_server.hits("/a.xml")) == 1
    row = feed_row(config_path, "a")
    due = datetime.fromisoformat(row["next_due"].replace("Z", "+00:00"))
    assert due >= before + timedelta(seconds=3590)
    assert row["interval_reason"] == "retry-after"


def test_bare_429_backs_off(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", "no", status=429, content_type="text/plain")
    config = load_config(one_feed(tmp_path, url))
    update(config)
    update(config)
    row = feed_row(config.path, "a")
    assert row["interval_reason"] == "rate-limited" and row["interval_seconds"] >= 4
    assert row["error_count"] == 2


def test_410_gone_stops_requests_for_good(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", "gone", status=410, content_type="text/plain")
    config_path = one_feed(tmp_path, url)
    with running(config_path):
        assert wait_until(lambda: len(feed_server.hits("/a.xml")) >= 1, 5)
        time.sleep(3)
    assert len(feed_server.hits("/a.xml")) == 1
    row = feed_row(config_path, "a")
    assert "410" in row["disabled_reason"] and row["next_due"] is None
    update(load_config(config_path))  # a one-shot update leaves it alone too
    assert len(feed_server.hits("/a.xml")) == 1


def test_permanent_redirect_moves_the_feed_temporary_does_not(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    new = feed_server.serve("/new.xml", rss(item("n1", "Moved", "https://n.example/1")))
    feed_server.serve("/old.xml", status=301, location=new)
    kept = feed_server.serve("/kept.xml", rss(item("k1", "Kept", "https://k.example/1")))
    feed_server.serve("/temp.xml", status=302, location=kept)
    config_path = write_config(
        tmp_path,
        f"  - url: {feed_server.url('/old.xml')}\n    name: moved\n"
        f"  - url: {feed_server.url('/temp.xml')}\n    name: temp\n",
        FAST,
    )
    with running(config_path):
        assert wait_until(lambda: len(feed_server.hits("/new.xml")) >= 3, 10)
        assert wait_until(lambda: len(feed_server.hits("/temp.xml")) >= 3, 10)
    assert len(feed_server.hits("/old.xml")) == 1
    assert feed_row(config_path, "moved")["moved_to"] == new
    assert feed_row(config_path, "temp")["moved_to"] is None


def test_one_request_in_flight_per_host(feed_server: FeedServer, tmp_path: Path) -> None:
    feeds = ""
    for n in range(4):
        feed_server.serve(
            f"/f{n}.xml", rss(item(f"i{n}", f"T{n}", f"https://x.example/{n}")), delay=0.3
        )
        feeds += f"  - url: {feed_server.url(f'/f{n}.xml')}\n    name: f{n}\n"
    config_path = write_config(tmp_path, feeds, "  min_interval: 1s\n  interval: 1h\n")
    with running(config_path):
        assert wait_until(lambda: all(feed_server.hits(f"/f{n}.xml") for n in range(4)), 10)
        assert wait_until(lambda: all(r.finished for r in feed_server.requests), 5)
    spans = sorted((r.started, r.finished) for r in feed_server.requests)
    assert len(spans) == 4
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.01, "two requests to one host overlapped"


def test_restart_resumes_the_schedule(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    config_path = one_feed(tmp_path, url, "  min_interval: 1s\n  interval: 1h\n")
    update(load_config(config_path))
    with running(config_path):
        time.sleep(2.5)
    assert len(feed_server.hits("/a.xml")) == 1  # due in an hour: a restart does not re-poll


def test_a_second_service_on_the_same_database_refuses(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    config_path = one_feed(tmp_path, url)
    with running(config_path):
        assert wait_until(lambda: len(feed_server.hits("/a.xml")) >= 1, 5)
        with pytest.raises(AlreadyRunning, match=r"another `aggregator run` \(pid \d+\)"):
            Service(config_path).run()


T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_next_round_is_the_earliest_due_time_and_the_feeds_due_with_it() -> None:
    tick = timedelta(seconds=30)
    later = T0 + timedelta(minutes=32)
    assert next_round([], T0, tick) is None
    assert next_round([None, T0 - timedelta(hours=1), later], T0, tick) == (T0, 2)
    due = [
        later,
        later + timedelta(seconds=20),
        later + timedelta(seconds=31),
        T0 + timedelta(hours=5),
    ]
    assert next_round(due, T0, tick) == (later, 2)


@pytest.mark.parametrize(
    ("round_", "line"),
    [
        (None, "nothing to poll: no feed is enabled (see `aggregator feeds`)"),
        ((T0, 3), "next poll now: 3 feeds due"),
        ((T0 + timedelta(seconds=40), 1), "next poll at 2026-12-03T10:00:40Z (in 40s): 1 feed due"),
        (
            (T0 + timedelta(minutes=32), 2),
            "next poll at 2026-12-03T10:32:00Z (in 32m): 2 feeds due",
        ),
        (
            (T0 + timedelta(hours=5, minutes=10), 1),
            "next poll at 2026-12-03T15:10:00Z (in 5h 10m): 1 feed due",
        ),
        ((T0 + timedelta(days=3), 1), "next poll at 2026-12-06T10:00:00Z (in 3d): 1 feed due"),
    ],
)
def test_the_next_round_as_a_log_line(round_: tuple[datetime, int] | None, line: str) -> None:
    assert describe_next_round(round_, T0) == line


def test_the_service_says_when_it_polls_next_after_each_round(
    feed_server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 #8: with no feed due, `run` logged nothing, so idle looked like stuck."""
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    config_path = one_feed(tmp_path, url)
    caplog.set_level(logging.INFO, logger="aggregator")
    with running(config_path):
        assert wait_until(lambda: caplog.text.count("next poll at ") >= 2, 15), caplog.text
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("next poll")]
    assert lines[0] == "next poll now: 1 feed due"  # at start: never polled
    assert len(lines) >= 3  # and after each round (here, each poll of the one feed)
    for line in lines[1:]:  # "now" when the next poll came due while the round was stored
        assert re.fullmatch(r"next poll (now|at \S+Z \(in 1s\)): 1 feed due", line), lines


# ---------------------------------------------------------------- the real process


def start(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), "run"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        stdin=subprocess.DEVNULL,
    )


def test_run_says_when_it_polls_next_when_no_feed_is_due(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 14 #8: started with every feed polled lately, `run` said nothing until one was
    due; it says when that is."""
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    config_path = one_feed(tmp_path, url, "  interval: 1h\n")
    update(load_config(config_path))
    due = feed_row(config_path, "a")["next_due"]
    log = tmp_path / "run.log"
    process = start(config_path, log)
    try:
        assert wait_until(lambda: "next poll" in log.read_text(), 15), log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    (line,) = [line for line in log.read_text().splitlines() if "next poll" in line]
    # an hour and some jitter from the update: "in 60m" to "in 69m"
    assert re.search(rf"INFO next poll at {due} \(in 6\dm\): 1 feed due$", line), line
    assert len(feed_server.hits("/a.xml")) == 1  # the update's; the service waited


def test_run_reload_and_stop_as_a_process(feed_server: FeedServer, tmp_path: Path) -> None:
    a = feed_server.serve("/a.xml", rss(item("a1", "Alpha", "https://a.example/1")), etag='"a"')
    b = feed_server.serve("/b.xml", rss(item("b1", "Beta", "https://b.example/1")))
    config_path = write_config(tmp_path, f"  - url: {a}\n    name: a\n", FAST)
    log = tmp_path / "run.log"
    process = start(config_path, log)
    try:
        assert wait_until(lambda: len(feed_server.hits("/a.xml")) >= 2, 15), log.read_text()

        second = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config_path), "run"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1 and "already using" in second.stderr

        write_config(tmp_path, f"  - url: {a}\n    name: a\n  - url: {b}\n    name: b\n", FAST)
        process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: len(feed_server.hits("/b.xml")) >= 1, 10), log.read_text()

        config_path.write_text("feeds:\n  - url: [broken\n")
        process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in log.read_text(), 10)
        polled = len(feed_server.hits("/b.xml"))
        assert wait_until(lambda: len(feed_server.hits("/b.xml")) > polled, 10)  # old config kept

        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - stopped_at < 10
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert "a: 200 1 new, 0 updated" in text and "a: 304 not modified" in text
    assert "b: 200 1 new" in text and "next " in text
    atom = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    assert sorted(e.title for e in atom.entries) == ["Alpha", "Beta"]
    conn = sqlite3.connect(tmp_path / "db" / "test.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == (2,)


def test_sigterm_during_a_hanging_fetch_exits_promptly(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/hang.xml", hang=True)
    config_path = (
        write_config(
            tmp_path, f"  - url: {url}\n    name: hang\n", FAST + "  timeout: 60s\n"
        ).parent
        / "feeds.yaml"
    )
    text = config_path.read_text().replace("  timeout: 2s\n", "")
    config_path.write_text(text)
    log = tmp_path / "run.log"
    process = start(config_path, log)
    try:
        assert wait_until(lambda: len(feed_server.hits("/hang.xml")) >= 1, 15), log.read_text()
        stopped_at = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - stopped_at < 10
    finally:
        if process.poll() is None:
            process.kill()
    assert "abandoned 1 in-flight" in log.read_text()


def test_the_service_withdraws_the_render_stamp_until_it_has_rendered_its_change(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A service killed between storing a change and rendering it must not leave `update`
    believing the outputs current (it skips rendering when every feed answers 304)."""
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")), etag='"v1"')
    hang = feed_server.serve("/hang.xml", hang=True)
    config_path = one_feed(tmp_path, url)
    config = load_config(config_path)
    stamp = config.database.with_name(config.database.name + "-outputs")
    atom_path = tmp_path / "out" / "atom.xml"

    def titles() -> list[str]:
        return [e.title for e in feedparser.parse(atom_path.read_bytes()).entries]

    update(config)
    assert stamp.exists()  # `update` rendered the outputs and says so
    feed_server.serve(
        "/a.xml",
        rss(item("a2", "Two", "https://a.example/2") + item("a1", "One", "https://a.example/1")),
        etag='"v2"',
    )
    # A feed still in flight holds the rebuild back (REBUILD_AT_LEAST_EVERY): killed then.
    write_config(
        tmp_path,
        f"  - url: {url}\n    name: a\n  - url: {hang}\n    name: hang\n",
        FAST + "  per_host: 2\n",
    )
    config_path.write_text(config_path.read_text().replace("timeout: 2s", "timeout: 60s"))
    log = tmp_path / "run.log"
    process = start(config_path, log)
    try:
        assert wait_until(lambda: len(feed_server.hits("/hang.xml")) >= 1, 15), log.read_text()
        assert wait_until(lambda: "a: 200 1 new" in log.read_text(), 15), log.read_text()
        process.kill()  # stored, not yet rendered
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert "outputs rebuilt" not in log.read_text() and titles() == ["One"]
    assert not stamp.exists()
    # The next `update` gets a 304, yet renders the entry the service stored.
    config_path = one_feed(tmp_path, url)
    report = update(load_config(config_path))
    assert [r.status.value for r in report.results] == ["not-modified"]
    assert report.written
    assert titles() == ["Two", "One"]
    assert stamp.exists()
    stamp.unlink()  # a service's own rebuild stamps as well
    feed_server.serve(
        "/a.xml",
        rss(item("a3", "Three", "https://a.example/3") + item("a2", "Two", "https://a.example/2")),
        etag='"v3"',
    )
    with running(config_path):
        assert wait_until(lambda: stamp.exists(), 10)
    assert titles() == ["Three", "Two", "One"]


@pytest.mark.parametrize("allow_empty", [False, True])
def test_a_reload_to_no_feeds_is_refused_unless_allowed(
    feed_server: FeedServer,
    tmp_path: Path,
    allow_empty: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 14 #6: an empty list is refused at a reload as it is at the start."""
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    config_path = one_feed(tmp_path, url)
    service = Service(config_path, allow_empty=allow_empty)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: len(feed_server.hits("/a.xml")) >= 1, 10)
        config_path.write_text(config_path.read_text().split("feeds:")[0] + "feeds: []\n")
        service.reload()
        expected = "polling nothing until a reload" if allow_empty else "reload refused"
        assert wait_until(lambda: expected in caplog.text, 10), caplog.text
        assert f"no feeds configured in {config_path}" in caplog.text
        assert len(service.config.feeds) == (0 if allow_empty else 1)
    finally:
        service.stop()
        thread.join(15)
    assert not thread.is_alive()


def test_a_service_without_feeds_does_not_start_unless_allowed(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, "")  # "feeds:" and nothing
    with pytest.raises(ConfigError, match=r"no feeds configured in .*feeds.yaml; add some"):
        Service(config_path)
    service = Service(config_path, allow_empty=True)
    assert service.config.feeds == ()
    service.session.close()


@pytest.mark.parametrize("tag", ["!foo bar", "!!python/name:os.system"])
def test_a_reload_with_an_unknown_yaml_tag_keeps_the_running_config(
    feed_server: FeedServer, tmp_path: Path, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13 #6: such a tag plus SIGHUP killed the service with a ConstructorError."""
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    config_path = one_feed(tmp_path, url)
    with running(config_path) as service:
        assert wait_until(lambda: len(feed_server.hits("/a.xml")) >= 1, 10)
        config_path.write_text(config_path.read_text().replace("name: a", f"name: {tag}"))
        service.reload()
        assert wait_until(lambda: "reload refused" in caplog.text, 10), caplog.text
        polled = len(feed_server.hits("/a.xml"))
        assert wait_until(lambda: len(feed_server.hits("/a.xml")) > polled, 10)  # still polling
        assert [f.name for f in service.config.feeds] == ["a"]
    assert "cannot read this value" in caplog.text


def test_the_service_stores_fetched_feeds_in_one_commit(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Feeds fetched together are stored together (`pipeline.save_batch`), as `update` does:
    one commit, each feed its own savepoint, each logged."""
    feeds = ""
    for n in range(3):
        url = feed_server.serve(f"/f{n}.xml", rss(item(f"i{n}", f"Title {n}", f"https://x/{n}")))
        feeds += f"  - url: {url}\n    name: f{n}\n"
    config_path = write_config(tmp_path, feeds, "  per_host: 3\n")
    config = load_config(config_path)
    service = Service(config_path)
    try:
        with open_store(config.database) as store:
            states = store.sync_feeds(config.feeds, utc_now())
            limits = FetchLimits.from_defaults(config.defaults)
            fetched = [
                retrieve(service.session, states[f"f{n}"], limits, utc_now) for n in range(3)
            ]
            for state in states.values():
                service.turns.add(state)
                service.in_flight.add(state.name)
            assert [service.turns.take() for _ in range(4)] == [*states.values(), None]
            statements: list[str] = []
            store.db.conn.set_trace_callback(statements.append)
            service.store_results(store, fetched)
            store.db.conn.set_trace_callback(None)
            assert sum(s.strip().upper().startswith("COMMIT") for s in statements) == 1
            assert store.count("entries") == 3
            assert not service.in_flight
    finally:
        service.session.close()
