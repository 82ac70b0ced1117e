"""Retention (prune, tombstones) and feeds that change their ids: the database stays bounded."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, item, rss, wait_until, write_config

from aggregator import service as service_module
from aggregator.config import load_config
from aggregator.pipeline import prune_and_build, update
from aggregator.service import Service

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def day(n: int) -> str:
    """An RFC 822 date n days before NOW."""
    from email.utils import format_datetime

    return format_datetime(NOW - timedelta(days=n), usegmt=True)


def count(config_path: Path, sql: str) -> int:
    with sqlite3.connect(load_config(config_path).database) as conn:
        return conn.execute(sql).fetchone()[0]


def with_retention(tmp_path: Path, feeds: str, retention: str) -> Path:
    path = write_config(tmp_path, feeds)
    path.write_text(path.read_text() + f"retention:\n{retention}")
    return path


def test_prune_by_age_keeps_tombstones_and_consistency(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    old_story = "Volcano erupts near Grindavik, thousands evacuated"
    a = rss(
        item("a-old", old_story, "https://a.example/old", date=day(100))
        + item("a-new", "Parliament passes the budget", "https://a.example/new", date=day(1))
    )
    b = rss(
        item(
            "b-old",
            "Thousands evacuated as volcano erupts near Grindavik",
            "https://b.example/old",
            date=day(99),
        )
    )
    feeds = (
        f"  - url: {feed_server.serve('/a.xml', a)}\n    name: a\n"
        f"  - url: {feed_server.serve('/b.xml', b)}\n    name: b\n"
    )
    path = with_retention(tmp_path, feeds, "  days: 30\n")
    config = load_config(path)
    update(config, clock=clock)
    assert count(path, "SELECT count(*) FROM entries") == 3
    assert count(path, "SELECT count(*) FROM stories") == 2

    counts, written = prune_and_build(config, clock=clock)
    assert (counts.entries, counts.stories) == (2, 1)
    assert {p.name for p in written} >= {"atom.xml"}
    assert count(path, "SELECT count(*) FROM entries") == 1
    assert count(path, "SELECT count(*) FROM tombstones") == 2
    assert count(path, "SELECT count(*) FROM stories") == 1
    assert count(path, "SELECT count(*) FROM sources") == 1
    assert (
        count(
            path, "SELECT count(*) FROM entry_words WHERE entry_id NOT IN (SELECT id FROM entries)"
        )
        == 0
    )
    assert count(path, "SELECT count(*) FROM entries_fts WHERE entries_fts MATCH 'grindavik'") == 0
    with sqlite3.connect(config.database) as conn:
        conn.execute("INSERT INTO entries_fts(entries_fts) VALUES('integrity-check')")
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    titles = [
        e.title for e in feedparser.parse((config.output.dir / "atom.xml").read_bytes()).entries
    ]
    assert titles == ["Parliament passes the budget"]

    update(config, clock=clock)  # the feeds still carry the old items: they stay gone
    assert count(path, "SELECT count(*) FROM entries") == 1
    later = NOW + timedelta(days=61)  # the budget story ages out too; old tombstones stay
    prune_and_build(config, clock=lambda: later)
    assert count(path, "SELECT count(*) FROM tombstones") == 3
    # tombstones last twice the retention, at least 90 days: the first two go, the third stays
    prune_and_build(config, clock=lambda: NOW + timedelta(days=91))
    assert count(path, "SELECT count(*) FROM tombstones") == 1


def test_prune_keeps_the_newest_per_feed_and_repairs_stories(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    headlines = [
        "Ferry timetable changes for winter",
        "Harbour dredging contract goes to local firm",
        "School roof repairs finished early",
        "Library extends its opening hours",
        "Fishing quotas cut for next season",
    ]
    items = "".join(
        item(f"i{n}", headlines[n - 1], f"https://a.example/{n}", date=day(n)) for n in range(1, 6)
    )
    b = rss(
        item(
            "b1",
            "Harbour dredging contract awarded to local firm",
            "https://b.example/1",
            date=day(1),
        )
    )
    feeds = (
        f"  - url: {feed_server.serve('/a.xml', rss(items))}\n    name: a\n"
        f"  - url: {feed_server.serve('/b.xml', b)}\n    name: b\n"
    )
    path = with_retention(tmp_path, feeds, "  max_entries_per_feed: 1\n")
    config = load_config(path)
    update(config, clock=clock)
    (story, members) = (
        sqlite3.connect(config.database)
        .execute("SELECT story_id, count(*) FROM entries GROUP BY story_id HAVING count(*) > 1")
        .fetchone()
    )
    assert members == 2
    counts, _ = prune_and_build(config, clock=clock)
    assert counts.entries == 4  # feed a keeps its newest (i1), b keeps b1
    conn = sqlite3.connect(config.database)
    assert sorted(r[0] for r in conn.execute("SELECT title FROM entries")) == [
        "Ferry timetable changes for winter",
        "Harbour dredging contract awarded to local firm",
    ]
    # the two-member story lost its representative (a's i2): b1 represents it now
    rep, left = conn.execute(
        "SELECT e.title, s.members FROM stories s JOIN entries e ON e.id = s.representative_id "
        "WHERE s.id = ?",
        [story],
    ).fetchone()
    assert (rep, left) == ("Harbour dredging contract awarded to local firm", 1)
    assert conn.execute("SELECT count(*) FROM story_words WHERE count <= 0").fetchone() == (0,)


def test_prune_command_without_retention(tmp_path: Path) -> None:
    path = write_config(tmp_path, "  - url: https://a.example/rss\n")
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), "prune"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "no retention configured" in done.stdout


def test_prune_command(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", rss(item("old", "Old", "https://a.example/o", date=day(400))))
    path = with_retention(tmp_path, f"  - url: {url}\n", "  days: 365\n")
    update(load_config(path))
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), "prune"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        done.returncode == 0
        and "pruned 1 entry (1 story ended), forgot 0 old tombstones;" in done.stdout
    )


def test_the_service_prunes(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = feed_server.serve("/a.xml", rss(item("old", "Old", "https://a.example/o", date=day(400))))
    path = with_retention(tmp_path, f"  - url: {url}\n", "  days: 365\n")
    update(load_config(path))
    monkeypatch.setattr(service_module, "FIRST_PRUNE_AFTER", timedelta(0))
    service = Service(path)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: count(path, "SELECT count(*) FROM tombstones") == 1, 10)
    finally:
        service.stop()
        thread.join(15)
    assert count(path, "SELECT count(*) FROM entries") == 0


@pytest.mark.parametrize("with_links", [True, False], ids=["same links", "no links"])
def test_a_feed_that_changes_its_ids_every_poll_stays_bounded(
    feed_server: FeedServer, tmp_path: Path, with_links: bool
) -> None:
    path = write_config(tmp_path, f"  - url: {feed_server.url('/a.xml')}\n    name: a\n")
    config = load_config(path)
    results = []
    for poll in range(6):
        items = "".join(
            item(
                f"poll{poll}-{n}",
                f"Item {n}",
                f"https://a.example/{n}" if with_links else None,
                body=f"Body of item {n}",
            )
            for n in range(10)
        )
        feed_server.serve("/a.xml", rss(items))
        results.append(update(config).results[0])
    assert count(path, "SELECT count(*) FROM entries") == 10
    assert count(path, "SELECT count(*) FROM sources") == 10
    assert results[0].new == 10 and all(r.new == 0 for r in results[1:])
    assert "changed the ids of 10 items" in (results[-1].error or "")
