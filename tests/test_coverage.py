"""How a story reads: "Also reported by" names each outlet once, the same in all four outputs.

Real feeds on a loopback server, a real SQLite database, the real renderers: the coverage is
assembled once by the store (`Store.latest_entries`) and every output must say the same thing.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import lxml.html
import pytest
from conftest import FeedServer, item, rss, run_cli, run_validator, write_config
from lxml import etree

from aggregator.config import load_config
from aggregator.pipeline import update
from aggregator.store.output import Copy, outlets_of
from aggregator.types import Config, SourceFeed

HEADLINE = "Volcano erupts near Grindavik as thousands are evacuated"
ITEM_LINK = "https://alpha.example/volcano"


def _at(minute: int) -> str:
    return f"Wed, 25 Nov 2026 09:{minute:02d}:00 GMT"


# (feed name, feed title, [(guid, link, minute)]): every copy carries the same headline, so
# they all make one story (the same-title rule); alpha's 09:00 copy is the earliest and
# represents it.
OUTLETS = [
    (
        "alpha",
        "Alpha News",
        [
            ("a1", ITEM_LINK, 0),  # the item itself
            ("a2", ITEM_LINK + "?utm_source=homepage&utm_medium=rss", 50),  # itself, tracked
            ("a3", "https://alpha.example/volcano-live", 55),  # another copy by the same outlet
        ],
    ),
    # Another outlet carrying the item's own URL (with its tracking parameters), polled last.
    ("gamma", "Gamma Times", [("g1", ITEM_LINK + "?utm_source=gamma", 5)]),
    # One outlet, three copies.
    (
        "reuters",
        "Reuters",
        [
            ("r1", "https://reuters.example/volcano-1", 10),
            ("r2", "https://reuters.example/volcano-2", 20),
            ("r3", "https://reuters.example/volcano-3", 30),
        ],
    ),
    # Another outlet carrying Reuters' first copy, polled last: named, its URL linked once.
    ("delta", "Delta Wire", [("d1", "https://reuters.example/volcano-1?utm_source=delta", 12)]),
    # Two copies that differ only by tracking parameters: one report.
    (
        "beta",
        "Beta Daily",
        [
            ("b1", "https://beta.example/volcano?utm_source=twitter", 15),
            ("b2", "https://beta.example/volcano?fbclid=abc&utm_campaign=x", 45),
        ],
    ),
]


def story_config(feed_server: FeedServer, tmp_path: Path, *, grouped: bool = True) -> Config:
    feeds = ""
    for name, title, copies in OUTLETS:
        items = "".join(
            item(guid, HEADLINE, escape(link), date=_at(minute), body=f"Copy {guid}.")
            for guid, link, minute in copies
        )
        url = feed_server.serve(
            f"/{name}.xml", rss(items, title=title, link=f"https://{name}.example/")
        )
        feeds += f"  - url: {url}\n    name: {name}\n"
    path = write_config(tmp_path, feeds)
    if not grouped:
        path.write_text(
            path.read_text().replace("defaults:\n", "  group_stories: false\ndefaults:\n")
        )
    config = load_config(path)
    # Gamma and Delta last: of feeds carrying one URL, the first stored owns the entry.
    late = ["gamma", "delta"]
    update(config, names=[name for name, _, _ in OUTLETS if name not in late])
    update(config, names=late)
    return config


def also_paragraph(fragment: str) -> tuple[str, list[tuple[str, str | None]]] | None:
    """The "Also reported by" paragraph of an HTML fragment: its text and its links."""
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    found = [p for p in root.iter("p") if p.text_content().startswith("Also reported by")]
    if not found:
        return None
    (p,) = found
    return p.text_content(), [(a.text_content(), a.get("href")) for a in p.iter("a")]


def outputs(config: Config) -> dict[str, list[tuple[str, list[tuple[str, str | None]]] | None]]:
    """Each output's "Also reported by" per entry (None for an entry without one), in order."""
    out = config.output.dir
    atom = feedparser.parse((out / "atom.xml").read_bytes())
    assert atom.bozo == 0, atom.get("bozo_exception")
    rss_feed = feedparser.parse((out / "rss.xml").read_bytes())
    assert rss_feed.bozo == 0, rss_feed.get("bozo_exception")
    feed_json = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    page = lxml.html.fromstring((out / "index.html").read_bytes())
    return {
        "atom": [
            also_paragraph(e.content[0].value if "content" in e else "") for e in atom.entries
        ],
        "rss": [also_paragraph(e.get("description", "")) for e in rss_feed.entries],
        "json": [also_paragraph(i["content_html"]) for i in feed_json["items"]],
        "html": [
            also_paragraph(lxml.html.tostring(p, encoding="unicode")) if p is not None else None
            for p in (a.find("p[@class='also']") for a in page.iter("article"))
        ],
    }


def test_each_outlet_once_with_a_count_and_never_the_item_itself(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    config = story_config(feed_server, tmp_path)
    with sqlite3.connect(config.database) as conn:
        # What the rest relies on: one story of six entries (a2, b2, d1 and g1 share a URL with
        # another copy, so each is a second source of that entry, not an entry of its own).
        stories = "SELECT count(DISTINCT story_id), count(*) FROM entries"
        assert conn.execute(stories).fetchone() == (1, 6)
        assert conn.execute("SELECT count(*) FROM sources").fetchone() == (10,)
    expected = (
        "Also reported by: Gamma Times, Reuters (3), Delta Wire, Beta Daily, Alpha News",
        [
            # Gamma carried the item's own URL: named, not linked (the reader is there).
            ("Reuters", "https://reuters.example/volcano-1"),  # the earliest of its three
            # Delta carried Reuters' first copy: named, the URL not linked twice.
            # Published without its tracking parameters (output.keep_tracking: false).
            ("Beta Daily", "https://beta.example/volcano"),
            ("Alpha News", "https://alpha.example/volcano-live"),  # not a2: that is the item
        ],
    )
    seen = outputs(config)
    assert seen == {name: [expected] for name in ("atom", "rss", "json", "html")}

    feed_json = json.loads((config.output.dir / "feed.json").read_text(encoding="utf-8"))
    (story,) = feed_json["items"]
    assert story["url"] == ITEM_LINK
    assert [(c["title"], c["url"], c["copies"]) for c in story["_source"]["also_reported_by"]] == [
        ("Gamma Times", None, 1),
        ("Reuters", "https://reuters.example/volcano-1", 3),
        ("Delta Wire", None, 1),
        ("Beta Daily", "https://beta.example/volcano", 1),
        ("Alpha News", "https://alpha.example/volcano-live", 1),
    ]
    page = (config.output.dir / "index.html").read_text(encoding="utf-8")
    assert "utm_source" not in page and "utm_medium" not in page
    assert "fbclid" not in page  # Beta's second copy is the same report as its first
    assert "utm_source=delta" not in page


def test_ungrouped_the_same_url_elsewhere_is_named_not_linked(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    config = story_config(feed_server, tmp_path, grouped=False)
    seen = outputs(config)
    # Six items, newest first; only the two whose URL another feed also carried have coverage,
    # unlinked. Alpha's own tracked copy of a1 (a2), like Beta's second copy (b2), is none.
    expected: list[tuple[str, list[tuple[str, str | None]]] | None] = [None] * 6
    expected[4] = ("Also reported by: Delta Wire", [])  # r1
    expected[5] = ("Also reported by: Gamma Times", [])  # a1, the oldest
    assert seen == {name: expected for name in ("atom", "rss", "json", "html")}


@pytest.mark.parametrize("name", ["atom.xml", "rss.xml"])
def test_outputs_with_coverage_stay_valid(
    feed_server: FeedServer, tmp_path: Path, atom_schema: etree.RelaxNG, name: str
) -> None:
    config = story_config(feed_server, tmp_path)
    path = config.output.dir / name
    if name == "atom.xml":
        assert atom_schema.validate(etree.parse(str(path))), atom_schema.error_log
    result = run_validator(path)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the rule, case by case

FEEDS = {
    n: SourceFeed(id=f"urn:feed:{n}", title=f"Feed {n}", url=f"https://f{n}.example/rss")
    for n in (1, 2, 3)
}


def _listed(item: Copy, *copies: Copy) -> list[tuple[str, str | None, int]]:
    return [(c.feed.title, c.link, c.copies) for c in outlets_of(item, list(copies), FEEDS)]


def test_the_item_alone_and_its_tracked_twin_are_no_coverage() -> None:
    item = Copy(1, 1, "t", "https://a.example/x?id=1")
    twin = Copy(1, 1, "t", "https://A.example:443/x?utm_source=rss&id=1#top")
    assert _listed(item, item, twin) == []


def test_copies_without_an_http_url_are_named_and_counted_never_linked() -> None:
    item = Copy(1, 1, "t", None)
    assert _listed(
        item,
        item,
        Copy(2, 2, "no link", None),
        Copy(3, 2, "another, no link", None),
        Copy(4, 3, "hostile", "javascript:alert(1)"),
    ) == [("Feed 2", None, 2), ("Feed 3", None, 1)]


def test_an_outlet_at_the_items_url_links_its_other_copy() -> None:
    item = Copy(1, 1, "t", "https://a.example/x")
    assert _listed(
        item,
        Copy(1, 2, "same URL", "https://a.example/x?utm_campaign=c"),
        Copy(2, 2, "its own", "https://b.example/y"),
        Copy(3, 3, "the same as feed 2's", "https://b.example/y?gclid=z"),
        Copy(4, 3, "its own", "https://c.example/z"),
    ) == [("Feed 2", "https://b.example/y", 2), ("Feed 3", "https://c.example/z", 2)]


# ---------------------------------------------------------------- which copy an entry shows

SHARED_URL = "https://news.example/sea-wall"
COPIES = {  # feed -> (published, title) of its copy of one story, all at SHARED_URL
    "wire": ("Mon, 01 Dec 2026 10:55:00 GMT", "Sea wall breached, wire says"),
    "gazette": ("Mon, 01 Dec 2026 11:00:00 GMT", "Sea wall breached at the harbour"),
    "courier": ("Mon, 01 Dec 2026 12:10:00 GMT", "Harbour sea wall breached overnight"),
}


def _copies_config(tmp_path: Path, order: list[str], prefer: str | None = None) -> Path:
    feeds = ""
    for name in order:
        published, title = COPIES[name]
        (tmp_path / f"{name}.xml").write_text(
            f'<rss version="2.0"><channel><title>{name}</title><link>https://{name}.example/'
            f"</link><item><title>{title}</title><link>{SHARED_URL}</link><guid>{name}-1</guid>"
            f"<pubDate>{published}</pubDate></item></channel></rss>"
        )
        feeds += f"  - url: {name}.xml\n    name: {name}\n"
        if name == prefer:
            feeds += "    prefer: true\n"
    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"database: db/a.db\noutput:\n  dir: out\n  base_url: https://agg.example/\nfeeds:\n{feeds}"
    )
    return config


@pytest.mark.parametrize(
    "order",
    [
        ["gazette", "courier", "wire"],
        ["wire", "gazette", "courier"],
        ["courier", "wire", "gazette"],
    ],
)
def test_a_url_carried_by_several_feeds_shows_its_earliest_copy_whatever_the_order(
    tmp_path: Path, order: list[str]
) -> None:
    """The merged feed shows the earliest copy (it showed whichever feed was stored first), its
    `updated` is the newest copy's, and "Also reported by" lists the others in time order."""
    config = _copies_config(tmp_path, order)
    done = run_cli("--config", str(config), "update", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    atom = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    (entry,) = atom.entries
    assert entry.title == COPIES["wire"][1]
    assert entry.updated == "2026-12-01T12:10:00Z"
    also = also_paragraph(entry.content[0].value)
    # At the item's own URL: named, not linked (the reader is there already), in time order.
    assert also is not None and also[0] == "Also reported by: gazette, courier"


def test_a_preferred_feeds_copy_of_a_url_is_the_one_shown(tmp_path: Path) -> None:
    config = _copies_config(tmp_path, ["wire", "gazette", "courier"], prefer="courier")
    done = run_cli("--config", str(config), "update", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (entry,) = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes()).entries
    assert entry.title == COPIES["courier"][1]
