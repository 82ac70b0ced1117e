"""Crashes and concurrency: kill -9 at random moments, readers during writes, full or frozen disks.

After every kill the database must be intact, hold no duplicate, have lost nothing it had
committed, and never keep a feed's validators for a version whose entries it did not store.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import FeedServer, item, rss, wait_until, write_config

from aggregator.config import load_config

FEEDS = 24
FAST = "  min_interval: 1s\n  interval: 1s\n  workers: 8\n  per_host: 8\n"


class Publisher:
    """Feeds that grow between runs; remembers which items each ETag version carries."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.versions: dict[int, int] = dict.fromkeys(range(FEEDS), 0)
        self.carried: dict[tuple[int, str], set[str]] = {}  # (feed, etag) -> item ids
        for feed in range(FEEDS):
            self.publish(feed)

    def publish(self, feed: int) -> None:
        version = self.versions[feed]
        ids = [f"f{feed}-i{n}" for n in range(8 + 2 * version)]
        body = rss(
            "".join(
                item(
                    i,
                    f"Item {i} of feed {feed}",
                    f"https://f{feed}.example/{i}",
                    body="<p>" + "words " * 200 + "</p>",
                )
                for i in ids
            ),
            title=f"Feed {feed}",
        )
        etag = f'"f{feed}-v{version}"'
        self.carried[(feed, etag)] = set(ids)
        self.server.serve(f"/f{feed}.xml", body, etag=etag, delay=0.02)

    def grow(self, rng: random.Random) -> None:
        for feed in rng.sample(range(FEEDS), 6):
            self.versions[feed] += 1
            self.publish(feed)

    def config(self, tmp_path: Path) -> Path:
        feeds = "".join(
            f"  - url: {self.server.url(f'/f{n}.xml')}\n    name: f{n}\n" for n in range(FEEDS)
        )
        return write_config(tmp_path, feeds, FAST)


def check_invariants(database: Path, publisher: Publisher, committed: int) -> int:
    """Everything the issue promises after a crash; returns the entries now committed."""
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if "entries_fts" not in tables:  # killed before the first migration committed
            assert "entries" not in tables and committed == 0
            return 0
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.execute("INSERT INTO entries_fts(entries_fts) VALUES('integrity-check')")
        duplicates = conn.execute(
            "SELECT canonical_url FROM entries WHERE canonical_url IS NOT NULL "
            "GROUP BY canonical_url HAVING count(*) > 1"
        ).fetchall()
        assert duplicates == [], "an item was stored twice"
        (entries,) = conn.execute("SELECT count(*) FROM entries").fetchone()
        assert entries >= committed, "committed entries were lost"
        for name, etag in conn.execute("SELECT name, etag FROM feeds WHERE etag IS NOT NULL"):
            stored = {
                row[0]
                for row in conn.execute(
                    "SELECT s.source_entry_id FROM sources s JOIN feeds f ON f.id = s.feed_id "
                    "WHERE f.name = ?",
                    [name],
                )
            }
            expected = publisher.carried[(int(name[1:]), etag)]
            assert expected <= stored, f"{name} keeps {etag} without its entries"
        return entries
    finally:
        conn.close()


@pytest.mark.slow
def test_kill_9_at_random_moments(feed_server: FeedServer, tmp_path: Path) -> None:
    rng = random.Random(20261126)
    publisher = Publisher(feed_server)
    config_path = publisher.config(tmp_path)
    database = load_config(config_path).database
    committed = 0
    kills = 0
    round_number = 0
    # Keep going until 24 runs died mid-way: how long a run takes depends on the machine,
    # so a fixed number of rounds sometimes kills fewer than the 20 the issue asks for.
    while kills < 24 and round_number < 80:
        round_number += 1
        command = "run" if round_number % 4 == 3 else "update"
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config_path), command, "-q"]
            if command == "update"
            else [sys.executable, "-m", "aggregator", "--config", str(config_path), "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 1.6))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        if database.exists():
            committed = check_invariants(database, publisher, committed)
        publisher.grow(rng)
    assert kills >= 20, f"only {kills} runs were killed mid-way; widen the window"
    # parse worker processes must not outlive a killed parent
    assert wait_until(lambda: orphaned_workers() == [], 5), orphaned_workers()
    finished = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), "update", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    check_invariants(database, publisher, committed)
    conn = sqlite3.connect(database)
    stored = {row[0] for row in conn.execute("SELECT source_entry_id FROM sources")}
    current = set().union(
        *(publisher.carried[(f, f'"f{f}-v{v}"')] for f, v in publisher.versions.items())
    )
    assert current <= stored  # the run after the crashes completes and catches up


def orphaned_workers() -> list[int]:
    """Multiprocessing children that lost their parent (reparented to init)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == 1 and b"multiprocessing" in command:
            found.append(int(proc.name))
    return found


@contextmanager
def running_service(config_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), "run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def test_readers_are_never_locked_out_while_the_service_writes(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    publisher = Publisher(feed_server)
    config_path = publisher.config(tmp_path)
    database = load_config(config_path).database
    errors: list[str] = []
    reads = 0
    stop = threading.Event()

    def grow() -> None:
        rng = random.Random(7)
        while not stop.wait(0.3):
            publisher.grow(rng)

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
                conn.execute("SELECT count(*) FROM entries_view").fetchone()
                conn.execute(
                    "SELECT count(*) FROM entries_fts WHERE entries_fts MATCH 'words'"
                ).fetchone()
                conn.close()
                reads += 1
            except sqlite3.Error as e:
                errors.append(str(e))

    with running_service(config_path):
        assert wait_until(lambda: database.exists() and reads_ok(database), 15)
        threads = [threading.Thread(target=grow)] + [
            threading.Thread(target=read) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        cli_runs = [
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "aggregator",
                    "--config",
                    str(config_path),
                    "entries",
                    "--limit",
                    "5",
                    "--format",
                    "json",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            for _ in range(3)
        ]
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join(10)
    assert errors == [], errors[:3]
    assert reads > 10
    assert all(run.returncode == 0 and "locked" not in run.stderr for run in cli_runs)


def reads_ok(database: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        return bool(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    except sqlite3.Error:
        return False


@contextmanager
def small_disk(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted under tmp_path, unmounted after; skips where it cannot be."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)]
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def on_disk(config_path: Path, mount: Path) -> Path:
    """The test config, with its database moved onto `mount`."""
    config_path.write_text(
        config_path.read_text().replace("database: db/test.db", f"database: {mount}/full.db")
    )
    return config_path


def test_a_full_disk_is_a_clear_error_and_corrupts_nothing(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    with small_disk(tmp_path, "600k") as mount:
        config_path = on_disk(Publisher(feed_server).config(tmp_path), mount)
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config_path), "update", "-q"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "full" in done.stderr.lower(), done.stderr
        assert "Traceback" not in done.stderr
        conn = sqlite3.connect(mount / "full.db")
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()


def test_a_read_only_database_is_a_clear_error(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    config_path = write_config(tmp_path, f"  - url: {url}\n")
    run = [sys.executable, "-m", "aggregator", "--config", str(config_path), "update", "-q"]
    assert subprocess.run(run, capture_output=True, timeout=60).returncode == 0
    database = load_config(config_path).database
    before = database.read_bytes()
    if subprocess.run(["chattr", "+i", str(database)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        feed_server.serve("/a.xml", rss(item("a2", "Two", "https://a.example/2")))
        done = subprocess.run(run, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert "database" in done.stderr and "Traceback" not in done.stderr
    finally:
        subprocess.run(["chattr", "-i", str(database)])
    assert database.read_bytes() == before
    assert sqlite3.connect(database).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_full_disk_mid_batch_reports_each_feed_as_stored_or_not(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feed responses commit in batches: a result says "updated" only once its batch is
    committed, and a batch that could not be stored reports every one of its feeds as failed.
    Whatever the moment the disk fills, the feeds reported updated are exactly those stored.
    (Batches of 4 here, so that a few fit on the small disk before one does not.)"""
    from aggregator import pipeline
    from aggregator.errors import StorageError
    from aggregator.pipeline import poll
    from aggregator.store import open_store
    from aggregator.types import PollResult, PollStatus

    monkeypatch.setattr(pipeline, "BATCH_FEEDS", 4)
    with small_disk(tmp_path, "1200k") as mount:
        config_path = on_disk(Publisher(feed_server).config(tmp_path), mount)
        config = load_config(config_path)
        reported: list[PollResult] = []
        with open_store(config.database) as store:
            states = store.sync_feeds(config.feeds, datetime.now(UTC))
            raised: StorageError | None = None
            try:
                poll(
                    store, config, [states[f.name] for f in config.feeds], on_result=reported.append
                )
            except StorageError as error:
                raised = error  # not even a failure could be recorded: the run stops, saying so
        failed = [r for r in reported if r.status is PollStatus.ERROR]
        assert failed or raised, "the disk never filled: the test needs a smaller one"
        assert all("full" in (r.error or "") for r in failed)
        assert raised is None or "full" in str(raised)
        conn = sqlite3.connect(mount / "full.db")
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {
            name
            for (name,) in conn.execute(
                "SELECT DISTINCT f.name FROM feeds f JOIN entries e ON e.feed_id = f.id "
                "WHERE f.etag IS NOT NULL"
            )
        }
        updated = {r.feed_name for r in reported if r.status is PollStatus.UPDATED}
        assert updated and stored == updated
        assert not conn.execute(
            "SELECT name FROM feeds f WHERE etag IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM entries e WHERE e.feed_id = f.id)"
        ).fetchall()  # no validators without their entries
        conn.close()
