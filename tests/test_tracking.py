"""Published links drop tracking parameters; the database keeps links as the feeds gave them."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, item, rss, write_config
from conftest import run_cli as run

from aggregator.urls import without_tracking


@pytest.mark.parametrize(
    ("url", "published"),
    [
        ("https://a.example/x?utm_source=rss&id=3&fbclid=1#top", "https://a.example/x?id=3#top"),
        ("https://a.example/x?utm_source=rss&utm_medium=feed", "https://a.example/x"),
        ("https://a.example/x?gclid=1#top", "https://a.example/x#top"),
        ("https://a.example/x?UTM_Campaign=a&q=%20a+b&b=2", "https://a.example/x?q=%20a+b&b=2"),
        ("https://a.example/x?utm%5Fsource=1&mc_cid=2&ocid=3", "https://a.example/x"),
        ("https://a.example/x?a=1&&utm_x=2", "https://a.example/x?a=1"),
        # nothing to drop: exactly as given (order, case, encoding, an empty query)
        ("HTTPS://A.example/x?b=2&a=%7e", "HTTPS://A.example/x?b=2&a=%7e"),
        ("https://a.example/x?", "https://a.example/x?"),
        ("https://a.example/x#?utm_source=1", "https://a.example/x#?utm_source=1"),
        ("mailto:a@b.example?utm_source=1", "mailto:a@b.example?utm_source=1"),
        ("https://[::1/x?utm_source=1", "https://[::1/x?utm_source=1"),  # unparsable: as is
        (None, None),
        ("", ""),
    ],
)
def test_without_tracking(url: str | None, published: str | None) -> None:
    assert without_tracking(url) == published


TRACKED = "https://w.example/volcano?id=7&utm_source=rss&utm_medium=feed&fbclid=abc"
TRACKED_COPY = "https://l.example/grindavik?gclid=xyz"


def served(feed_server: FeedServer, tmp_path: Path, keep_tracking: bool) -> Path:
    """Two outlets telling one story, both links tracked; `update` run."""
    world = rss(
        item(
            "w1",
            "Volcano erupts near Grindavik, thousands evacuated",
            TRACKED,
            date="Wed, 25 Nov 2026 09:00:00 GMT",
        )
    )
    local = rss(
        item(
            "l1",
            "Thousands evacuated as volcano erupts near Grindavik",
            TRACKED_COPY,
            date="Wed, 25 Nov 2026 09:30:00 GMT",
        )
    )
    feeds = (
        f"  - url: {feed_server.serve('/w.xml', world)}\n    name: world\n"
        f"  - url: {feed_server.serve('/l.xml', local)}\n    name: local\n"
    )
    path = write_config(tmp_path, feeds)
    if keep_tracking:
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("output:\n", "output:\n  keep_tracking: true\n"), "utf-8")
    done = run("update", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "out"


def links(out: Path) -> dict[str, tuple[str, str]]:
    """Per output: the entry's link, and its "Also reported by" link."""
    atom = feedparser.parse((out / "atom.xml").read_bytes()).entries[0]
    rss20 = feedparser.parse((out / "rss.xml").read_bytes()).entries[0]
    (item_json,) = json.loads((out / "feed.json").read_text(encoding="utf-8"))["items"]
    (also,) = item_json["_source"]["also_reported_by"]
    return {
        "atom.xml": (atom.link, atom.content[0].value),
        "rss.xml": (rss20.link, rss20.description),
        "feed.json": (item_json["url"], also["url"]),
    }


def test_published_links_drop_tracking_parameters(feed_server: FeedServer, tmp_path: Path) -> None:
    out = served(feed_server, tmp_path, keep_tracking=False)
    for name, (link, also) in links(out).items():
        assert link == "https://w.example/volcano?id=7", name
        assert "https://l.example/grindavik" in also and "gclid" not in also, name
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="https://w.example/volcano?id=7"' in page
    assert "utm_" not in page and "fbclid" not in page and "gclid" not in page
    # Stored as the feed gave it.
    stored = json.loads(run("entries", "--format", "json", cwd=tmp_path).stdout)
    assert {row["link"] for row in stored} == {TRACKED, TRACKED_COPY}


def test_keep_tracking_publishes_links_whole(feed_server: FeedServer, tmp_path: Path) -> None:
    out = served(feed_server, tmp_path, keep_tracking=True)
    for name, (link, also) in links(out).items():
        assert link == TRACKED, name
        assert TRACKED_COPY in also, name
    assert TRACKED.replace("&", "&amp;") in (out / "index.html").read_text(encoding="utf-8")
