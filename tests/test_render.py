"""Render: outputs validated against the Atom schema and parsed back by feedparser/json."""

from __future__ import annotations

import dataclasses
import email.utils
import html
import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree

from aggregator.render import (
    render_atom,
    render_json_feed,
    render_rss,
    write_atomic,
    write_outputs,
)
from aggregator.render.common import LOCAL_PAGE, body_html
from aggregator.types import Coverage, Enclosure, OutputEntry, OutputFeed, SourceFeed

A = {"a": "http://www.w3.org/2005/Atom"}
FH = "http://purl.org/syndication/history/1.0"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)

SRC_A = SourceFeed(
    id="tag:aggregator.invalid,2026:feed:1",
    title="Alpha News",
    url="https://alpha.example/feed.xml",
    link="https://alpha.example/",
    updated=T0,
)
SRC_B = SourceFeed(
    id="urn:uuid:6f1c1e9a-0000-4000-8000-000000000002",
    title="Beta & <Blog>",
    url="https://beta.example/rss",
    link=None,
    updated=None,
)

ALSO_REPORTED = (
    '<p>Also reported by: <a href="https://beta.example/a" '
    'title="Alpha&#x27;s story, as Beta told it">Beta &amp; &lt;Blog&gt;</a></p>'
)
CONTENT_CDATA = (
    '<p>Code: <code>a[b[0]]&gt;c</code> and a raw ]]> end, <a href="https://x.example/">x</a></p>'
)


def _entries() -> tuple[OutputEntry, ...]:
    return (
        OutputEntry(
            id="https://alpha.example/posts/1",
            title="Bad\x0b\x00 title with <b>bold</b> & more",
            link="https://alpha.example/posts/1",
            summary="<p>Summary <em>one</em></p>",
            content=CONTENT_CDATA,
            published=T0,
            updated=T0 + timedelta(hours=1),
            source=SRC_A,
            authors=("Ann Author", "Bob"),
            tags=("tech", "news"),
            enclosures=(
                Enclosure("https://alpha.example/a.mp3", "audio/mpeg", 12345),
                Enclosure("https://alpha.example/b.ogg"),
            ),
            coverage=(Coverage(SRC_B, "Alpha's story, as Beta told it", "https://beta.example/a"),),
        ),
        OutputEntry(
            id="tag:aggregator.invalid,2026:entry:2",
            title="No content here",
            link="https://beta.example/p/2",
            summary="<p>Only a summary</p>",
            content=None,
            published=datetime(2026, 11, 24, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
            updated=datetime(2026, 11, 24, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
            source=SRC_B,
            enclosures=(Enclosure("https://beta.example/v.mp4", None, None),),
        ),
        OutputEntry(
            id="https://beta.example/p/3",  # a URL id that is not the link: not a permalink
            title="No link at all",
            link=None,
            summary=None,
            content="<p>Body of three</p>",
            published=datetime(2026, 11, 20, 8, 0, 0, 500000, tzinfo=UTC),
            updated=datetime(2026, 11, 20, 8, 0, 0, 500000, tzinfo=UTC),
            source=SRC_B,
        ),
        OutputEntry(
            id="tag:aggregator.invalid,2026:entry:4",
            title="Nothing but a title",
            link=None,
            summary=None,
            content=None,
            published=datetime(2026, 11, 19, tzinfo=UTC),
            updated=datetime(2026, 11, 19, tzinfo=UTC),
            source=SRC_A,
        ),
    )


def make_feed(**overrides: object) -> OutputFeed:
    fields: dict[str, object] = {
        "id": "tag:aggregator.invalid,2026:merged",
        "title": "Merged\x0b\x00 <b>feed</b> & co",
        "updated": T0 + timedelta(hours=1),
        "entries": _entries(),
        "link": "https://news.example/",
        "base_url": "https://news.example/out/",
        "generator_version": "0.1.0",
    }
    fields.update(overrides)
    return OutputFeed(**fields)  # type: ignore[arg-type]


def atom_text(element: etree._Element) -> str:
    """The text an Atom text construct stands for, whichever type it was written as."""
    text = element.text or ""
    return html.unescape(text) if element.get("type") == "html" else text


def clean(s: str) -> str:
    return s.replace("\x0b", "").replace("\x00", "")


@pytest.fixture(scope="module")
def feed() -> OutputFeed:
    return make_feed()


@pytest.fixture(scope="module")
def atom(feed: OutputFeed) -> bytes:
    return render_atom(feed)


@pytest.fixture(scope="module")
def atom_tree(atom: bytes) -> etree._Element:
    return etree.fromstring(atom)


@pytest.fixture(scope="module")
def rss(feed: OutputFeed) -> bytes:
    return render_rss(feed)


@pytest.fixture(scope="module")
def jsonfeed(feed: OutputFeed) -> dict:
    return json.loads(render_json_feed(feed).decode("utf-8"))


# ---------------------------------------------------------------- Atom


def test_atom_validates_against_rfc4287_schema(atom: bytes, atom_schema: etree.RelaxNG) -> None:
    assert atom_schema.validate(etree.fromstring(atom)), atom_schema.error_log


def test_atom_is_utf8_xml_without_control_chars(atom: bytes) -> None:
    assert atom.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert b"\x0b" not in atom and b"\x00" not in atom
    etree.fromstring(atom)  # well-formed


def test_atom_feed_metadata(atom_tree: etree._Element, feed: OutputFeed) -> None:
    for tag in ("id", "title", "updated"):
        assert len(atom_tree.xpath(f"a:{tag}", namespaces=A)) == 1, tag
    assert atom_tree.findtext("a:id", namespaces=A) == feed.id
    assert atom_text(atom_tree.find("a:title", namespaces=A)) == clean(feed.title)
    assert atom_tree.findtext("a:updated", namespaces=A) == "2026-11-25T10:00:00Z"
    # A feed-level author with exactly one name.
    names = atom_tree.xpath("a:author/a:name/text()", namespaces=A)
    assert names == [clean(feed.title)]
    gen = atom_tree.find("a:generator", namespaces=A)
    assert gen is not None and gen.text == "aggregator" and gen.get("version") == "0.1.0"
    assert urlsplit(gen.get("uri")).scheme == "https"
    assert atom_tree.xpath("a:link[@rel='self']/@href", namespaces=A) == [
        "https://news.example/out/atom.xml"
    ]
    assert atom_tree.xpath("a:link[@rel='alternate']/@href", namespaces=A) == [
        "https://news.example/"
    ]
    assert not atom_tree.xpath("//fh:complete", namespaces={"fh": FH})
    assert FH.encode() not in etree.tostring(atom_tree)


def test_atom_self_link_only_with_base_url_and_id_is_stable() -> None:
    without = etree.fromstring(render_atom(make_feed(base_url=None, link=None)))
    assert not without.xpath("a:link[@rel='self']", namespaces=A)
    moved = etree.fromstring(render_atom(make_feed(base_url="https://elsewhere.example/f")))
    assert moved.xpath("a:link[@rel='self']/@href", namespaces=A) == [
        "https://elsewhere.example/f/atom.xml"
    ]
    # The feed id does not follow the serving URL.
    assert without.findtext("a:id", namespaces=A) == moved.findtext("a:id", namespaces=A)


def test_atom_dates_are_rfc3339(atom_tree: etree._Element) -> None:
    dates = atom_tree.xpath("//a:updated | //a:published", namespaces=A)
    assert len(dates) == 1 + 4 * 3  # feed + (updated, published, source/updated) per entry
    for el in dates:
        assert RFC3339.match(el.text), el.text
        assert el.text.endswith("Z")
    second = atom_tree.xpath("a:entry", namespaces=A)[1]
    # 23:30 at -05:00 is 04:30 UTC the next day.
    assert second.findtext("a:published", namespaces=A) == "2026-11-25T04:30:00Z"


def test_atom_entries(atom_tree: etree._Element, feed: OutputFeed) -> None:
    entries = atom_tree.xpath("a:entry", namespaces=A)
    assert len(entries) == len(feed.entries)
    ids = [e.findtext("a:id", namespaces=A) for e in entries]
    assert ids == [e.id for e in feed.entries]  # order kept, one instance per id
    assert len(set(ids)) == len(ids)
    for el, entry in zip(entries, feed.entries, strict=True):
        for tag in ("id", "title", "updated"):
            assert len(el.xpath(f"a:{tag}", namespaces=A)) == 1
        # Text, or the same text escaped as HTML where it looks like markup (issue 14).
        title = el.find("a:title", namespaces=A)
        assert title.get("type") == ("html" if "<" in entry.title else "text")
        assert atom_text(title) == clean(entry.title)
        # Every entry carries its source's id, title and updated.
        src = el.find("a:source", namespaces=A)
        assert src.findtext("a:id", namespaces=A) == entry.source.id
        assert atom_text(src.find("a:title", namespaces=A)) == entry.source.title
        assert src.findtext("a:updated", namespaces=A)
        assert src.xpath("a:link[@rel='self']/@href", namespaces=A) == [entry.source.url]
        # Without content there is an alternate link.
        if not el.xpath("a:content", namespaces=A):
            assert el.xpath("a:link[@rel='alternate']", namespaces=A)
        # Html text constructs with no child elements; an item with no text at all is
        # summarized by its title, as text (issue 14: no Atom entry without either).
        assert el.xpath("a:content | a:summary", namespaces=A)
        for c in el.xpath("a:content | a:summary", namespaces=A):
            assert c.get("type") == "html" or (
                c.get("type") == "text" and c.text == clean(entry.title) and not entry.content
            )
            assert len(c) == 0
    first = entries[0]
    assert first.findtext("a:content", namespaces=A) == CONTENT_CDATA + ALSO_REPORTED
    assert first.findtext("a:summary", namespaces=A) == feed.entries[0].summary
    assert first.xpath("a:author/a:name/text()", namespaces=A) == ["Ann Author", "Bob"]
    assert first.xpath("a:category/@term", namespaces=A) == ["tech", "news"]
    encs = first.xpath("a:link[@rel='enclosure']", namespaces=A)
    assert [dict(e.attrib) for e in encs] == [
        {
            "rel": "enclosure",
            "href": "https://alpha.example/a.mp3",
            "type": "audio/mpeg",
            "length": "12345",
        },
        {"rel": "enclosure", "href": "https://alpha.example/b.ogg"},
    ]
    assert first.xpath("a:source/a:link[@rel='alternate']/@href", namespaces=A) == [
        "https://alpha.example/"
    ]
    # Source without its own updated falls back to the entry's updated.
    second = entries[1]
    assert second.findtext("a:source/a:updated", namespaces=A) == second.findtext(
        "a:updated", namespaces=A
    )
    assert not second.xpath("a:source/a:link[@rel='alternate']", namespaces=A)
    assert not second.xpath("a:content", namespaces=A)
    # No content and no link: the content element must exist (RFC 4287 4.1.2).
    fourth = entries[3]
    assert fourth.xpath("a:content", namespaces=A)
    # ... and says something (issue 14): the title, as text
    content = fourth.find("a:content", namespaces=A)
    assert (content.text, content.get("type")) == ("Nothing but a title", "text")


def test_atom_round_trips_through_feedparser(atom: bytes, feed: OutputFeed) -> None:
    parsed = feedparser.parse(atom)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert html.unescape(parsed.feed.title) == clean(feed.title)  # markup-like: type="html"
    assert parsed.feed.id == feed.id
    assert len(parsed.entries) == len(feed.entries)
    for got, want in zip(parsed.entries, feed.entries, strict=True):
        assert got.id == want.id
        assert (html.unescape(got.title) if "<" in want.title else got.title) == clean(want.title)
        # Compare rel=alternate links: for a URL id with no link, feedparser copies the id into
        # entry.link itself (guidislink), which is not what we wrote.
        alternates = [
            link["href"] for link in got.get("links", []) if link.get("rel") == "alternate"
        ]
        assert alternates == ([want.link] if want.link else [])
        assert html.unescape(got.source.title) == want.source.title
        assert got.source.id == want.source.id
    # feedparser re-sanitizes HTML; this markup is already safe, so it comes back unchanged.
    assert parsed.entries[0].content[0].value == CONTENT_CDATA + ALSO_REPORTED
    assert parsed.entries[0].summary == feed.entries[0].summary
    assert parsed.entries[1].summary == "<p>Only a summary</p>"
    assert "content" not in parsed.entries[1]
    assert parsed.entries[2].content[0].value == "<p>Body of three</p>"


def test_atom_content_round_trips_exactly() -> None:
    html = "<p>a &amp; b &lt; c</p>\n<div>x]]>y</div>\t\r"
    entry = _entries()[0]
    feed = make_feed(
        entries=(
            OutputEntry(
                id=entry.id,
                title=entry.title,
                link=entry.link,
                summary=None,
                content=html,
                published=T0,
                updated=T0,
                source=SRC_A,
            ),
        )
    )
    root = etree.fromstring(render_atom(feed))
    content = root.find("a:entry/a:content", namespaces=A)
    assert len(content) == 0
    # XML normalizes a literal CR to LF on parse unless escaped; lxml escapes it as &#13;.
    assert content.text == html


def test_duplicate_ids_are_emitted_once() -> None:
    e = _entries()
    root = etree.fromstring(render_atom(make_feed(entries=(e[0], e[1], e[0]))))
    ids = root.xpath("a:entry/a:id/text()", namespaces=A)
    assert ids == [e[0].id, e[1].id]
    doc = json.loads(render_json_feed(make_feed(entries=(e[0], e[0]))))
    assert len(doc["items"]) == 1


def test_empty_feed_is_valid(atom_schema: etree.RelaxNG) -> None:
    data = render_atom(make_feed(entries=()))
    assert atom_schema.validate(etree.fromstring(data)), atom_schema.error_log
    assert feedparser.parse(data).bozo == 0
    assert feedparser.parse(render_rss(make_feed(entries=()))).bozo == 0


# ---------------------------------------------------------------- RSS


def test_rss_structure(rss: bytes, feed: OutputFeed) -> None:
    root = etree.fromstring(rss)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channels = root.findall("channel")
    assert len(channels) == 1
    ch = channels[0]
    assert ch.findtext("title") == clean(feed.title)
    assert ch.findtext("link") == "https://news.example/"
    assert ch.findtext("description")
    assert ch.xpath("a:link[@rel='self']/@href", namespaces=A) == [
        "https://news.example/out/rss.xml"
    ]
    assert ch.findtext("generator").startswith("aggregator")
    items = ch.findall("item")
    assert len(items) == len(feed.entries)
    for item, entry in zip(items, feed.entries, strict=True):
        assert item.findtext("title") or item.findtext("description")
        src = item.find("source")
        assert src is not None and src.get("url") == entry.source.url
        assert src.text == entry.source.title
        assert item.findtext("guid") == entry.id
    assert items[0].findtext("description") == CONTENT_CDATA + ALSO_REPORTED
    assert items[1].findtext("description") == "<p>Only a summary</p>"
    assert items[0].xpath(
        "dc:creator/text()", namespaces={"dc": "http://purl.org/dc/elements/1.1/"}
    ) == [
        "Ann Author",
        "Bob",
    ]
    assert [c.text for c in items[0].findall("category")] == ["tech", "news"]
    encs = [dict(e.attrib) for e in items[0].findall("enclosure")]
    assert encs == [{"url": "https://alpha.example/a.mp3", "length": "12345", "type": "audio/mpeg"}]
    enc = items[1].find("enclosure")
    assert enc.get("length") == "0" and enc.get("type")


def test_rss_guid_permalink_rules(rss: bytes, feed: OutputFeed) -> None:
    items = etree.fromstring(rss).findall("channel/item")
    flags = [i.find("guid").get("isPermaLink") for i in items]
    # Only entry 1 has an http(s) id equal to its link; entry 3 has a URL id but no link.
    assert flags == ["true", "false", "false", "false"]
    for item in items:
        guid = item.find("guid")
        if guid.get("isPermaLink") != "false":
            parts = urlsplit(guid.text)
            assert parts.scheme in ("http", "https") and parts.netloc
            assert guid.text == item.findtext("link")


def test_rss_dates_round_trip(rss: bytes, feed: OutputFeed) -> None:
    root = etree.fromstring(rss)
    last = root.findtext("channel/lastBuildDate")
    assert email.utils.parsedate_to_datetime(last) == feed.updated
    for item, entry in zip(root.findall("channel/item"), feed.entries, strict=True):
        text = item.findtext("pubDate")
        parsed = email.utils.parsedate_to_datetime(text)
        assert parsed == entry.published.replace(microsecond=0)
        assert re.match(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$", text), text
        assert text[:3] == parsed.strftime("%a")  # the day name matches the date


def test_rss_round_trips_through_feedparser(rss: bytes, feed: OutputFeed) -> None:
    parsed = feedparser.parse(rss)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.title == clean(feed.title)
    for got, want in zip(parsed.entries, feed.entries, strict=True):
        assert got.title == clean(want.title)
        assert got.id == want.id
        assert got.get("link") == want.link or want.link is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "https://news.example/"),
        ({"link": None}, "https://news.example/out/"),
        (
            {"link": None, "base_url": None, "id": "https://id.example/feed"},
            "https://id.example/feed",
        ),
        ({"link": None, "base_url": None}, LOCAL_PAGE),
    ],
)
def test_the_site_link_is_the_same_everywhere_and_always_a_web_page(
    overrides: dict, expected: str
) -> None:
    """Issue 14: without output.link and base_url, rss.xml said <link>about:blank</link>
    (an unregistered scheme), atom.xml named no page (feedparser then offered the tag: id as
    the link) and feed.json had no home_page_url."""
    feed = make_feed(**overrides)
    rss_root = etree.fromstring(render_rss(feed))
    assert rss_root.findtext("channel/link") == expected
    atom_root = etree.fromstring(render_atom(feed))
    assert atom_root.xpath("a:link[@rel='alternate']/@href", namespaces=A) == [expected]
    assert feedparser.parse(render_atom(feed)).feed.link == expected
    assert json.loads(render_json_feed(feed))["home_page_url"] == expected


# ---------------------------------------------------------------- JSON Feed


def test_json_feed(jsonfeed: dict, feed: OutputFeed) -> None:
    assert jsonfeed["version"] == "https://jsonfeed.org/version/1.1"
    assert jsonfeed["title"] == clean(feed.title)
    assert jsonfeed["home_page_url"] == "https://news.example/"
    assert jsonfeed["feed_url"] == "https://news.example/out/feed.json"
    items = jsonfeed["items"]
    assert isinstance(items, list) and len(items) == len(feed.entries)
    for item, entry in zip(items, feed.entries, strict=True):
        assert isinstance(item["id"], str) and item["id"] == entry.id
        # content_html, or for an item with no text its title as content_text; never empty
        assert item.get("content_html") or item["content_text"] == clean(entry.title)
        assert RFC3339.match(item["date_published"])
        assert RFC3339.match(item["date_modified"])
        assert item["_source"]["id"] == entry.source.id
        assert item["_source"]["feed_url"] == entry.source.url
        assert item["_source"]["title"] == entry.source.title
        assert item.get("url") == entry.link
    first = items[0]
    assert first["content_html"] == CONTENT_CDATA + ALSO_REPORTED
    assert first["summary"] == "Summary one"
    assert first["authors"] == [{"name": "Ann Author"}, {"name": "Bob"}]
    assert first["tags"] == ["tech", "news"]
    assert first["attachments"] == [
        {"url": "https://alpha.example/a.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 12345},
        {"url": "https://alpha.example/b.ogg", "mime_type": "application/octet-stream"},
    ]
    assert first["_source"]["home_page_url"] == "https://alpha.example/"
    assert first["_source"]["also_reported_by"] == [
        {
            "title": SRC_B.title,
            "feed_url": SRC_B.url,
            "url": "https://beta.example/a",
            "headline": "Alpha's story, as Beta told it",
            "copies": 1,
        }
    ]
    assert "also_reported_by" not in items[1]["_source"]
    assert items[1]["content_html"] == "<p>Only a summary</p>"
    assert "content_html" not in items[3] and items[3]["content_text"] == "Nothing but a title"
    assert "summary" not in items[3]


def test_without_base_url_no_output_names_its_own_url() -> None:
    """A guessed self link would be worse than none (readers and hubs follow it): without
    base_url there is no rel="self" and no feed_url; `update` warns instead."""
    feed = make_feed(link=None, base_url=None)
    doc = json.loads(render_json_feed(feed))
    assert doc["home_page_url"] == LOCAL_PAGE and "feed_url" not in doc
    atom_root = etree.fromstring(render_atom(feed))
    assert not atom_root.xpath("a:link[@rel='self']", namespaces=A)
    rss_root = etree.fromstring(render_rss(feed))
    assert not rss_root.xpath("channel/a:link[@rel='self']", namespaces=A)


def test_json_feed_is_utf8_not_ascii_escaped() -> None:
    e = _entries()[0]
    feed = make_feed(entries=(OutputEntry(**{**_asdict(e), "title": "Café — ☕"}),))
    data = render_json_feed(feed)
    assert "Café — ☕".encode() in data


def _asdict(entry: OutputEntry) -> dict:
    return {f: getattr(entry, f) for f in entry.__slots__}


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("render", [render_atom, render_rss, render_json_feed])
def test_rendering_is_deterministic(render: Callable[[OutputFeed], bytes]) -> None:
    assert render(make_feed()) == render(make_feed())


# ---------------------------------------------------------------- writing


def test_write_atomic_creates_and_skips_identical(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "atom.xml"
    assert write_atomic(path, b"one") is True
    assert path.read_bytes() == b"one"
    past = 1_000_000_000
    os.utime(path, (past, past))
    assert write_atomic(path, b"one") is False
    assert path.stat().st_mtime == past
    assert write_atomic(path, b"two") is True
    assert path.read_bytes() == b"two"
    assert path.stat().st_mtime != past
    assert sorted(p.name for p in path.parent.iterdir()) == ["atom.xml"]  # no temp files left


def test_write_atomic_keeps_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "atom.xml"
    old = render_atom(make_feed())
    write_atomic(path, old)

    def boom(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        write_atomic(path, b"new bytes")
    assert path.read_bytes() == old
    etree.fromstring(path.read_bytes())  # the old file is intact and parses
    assert [p.name for p in tmp_path.iterdir()] == ["atom.xml"]


def test_write_atomic_keeps_permissions(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    write_atomic(path, b"a")
    assert path.stat().st_mode & 0o044  # readable by others (subject to umask), unlike mkstemp
    path.chmod(0o640)
    write_atomic(path, b"b")
    assert path.stat().st_mode & 0o777 == 0o640


def test_write_outputs(tmp_path: Path) -> None:
    feed = make_feed()
    written = write_outputs(feed, tmp_path / "out")
    names = ["atom.xml", "rss.xml", "feed.json", "index.html"]
    assert [p.name for p in written] == names
    assert (tmp_path / "out" / "atom.xml").read_bytes() == render_atom(feed)
    assert (tmp_path / "out" / "rss.xml").read_bytes() == render_rss(feed)
    assert (tmp_path / "out" / "feed.json").read_bytes() == render_json_feed(feed)
    assert write_outputs(feed, tmp_path / "out") == []  # unchanged data: nothing rewritten
    newer = make_feed(title="Another title")
    assert [p.name for p in write_outputs(newer, tmp_path / "out")] == names


@pytest.mark.parametrize("render", [render_atom, render_rss, render_json_feed])
def test_characters_xml_cannot_carry_are_removed(render: Callable[[OutputFeed], bytes]) -> None:
    bad = "a\x00b\x1fc\ufffed\uffffe\ud800f\tg"
    e = _entries()[0]
    entry = OutputEntry(**{**_asdict(e), "title": bad, "content": bad, "authors": (bad,)})
    data = render(make_feed(entries=(entry,), title=bad))
    text = data.decode("utf-8")  # encodable at all: no lone surrogate survived
    # TAB is legal: kept (JSON writes it as the escape \t).
    assert ("abcdef\\tg" if render is render_json_feed else "abcdef\tg") in text
    for ch in "\x00\x1f\ufffe\uffff":
        assert ch not in text
    if render is not render_json_feed:
        etree.fromstring(data)
        assert feedparser.parse(data).bozo == 0


def test_coverage_from_hostile_feeds_is_escaped_and_unlinked() -> None:
    evil = SourceFeed(id="urn:x", title='Evil"><script>alert(1)</script>', url="https://e.example/")
    entry = make_feed().entries[1]
    hostile = replace(
        entry,
        coverage=(
            Coverage(evil, 'x" onmouseover="alert(2)', "javascript:alert(3)"),
            Coverage(evil, "<b>t</b>", 'https://e.example/"onclick="alert(4)'),
        ),
    )
    for render in (render_atom, render_rss):
        text = render(make_feed(entries=(hostile,))).decode()
        assert "<script" not in text and "javascript:" not in text
    item = json.loads(render_json_feed(make_feed(entries=(hostile,))))["items"][0]
    assert "javascript:" not in item["content_html"] and "<script" not in item["content_html"]
    assert [c["url"] for c in item["_source"]["also_reported_by"]] == [
        None,
        "https://e.example/%22onclick=%22alert(4)",  # a URI, as every published link
    ]
    html_out = body_html(hostile) or ""
    parsed = etree.HTML(html_out)
    assert parsed.xpath("//script") == [] and parsed.xpath("//@onmouseover | //@onclick") == []
    assert [a.get("href") for a in parsed.xpath("//a")] == ['https://e.example/"onclick="alert(4)']


def test_a_local_feed_s_path_is_not_published(tmp_path: Path) -> None:
    """Issue 14: <source>, atom:source's self link and `_source.feed_url` published the
    file:///... path of a feed read from disk."""
    from conftest import item, rss, write_config

    from aggregator.config import load_config
    from aggregator.pipeline import update

    (tmp_path / "local.xml").write_text(
        rss(item("l1", "From the disk", "https://local.example/1")), encoding="utf-8"
    )
    config = load_config(write_config(tmp_path, "  - url: local.xml\n    name: local\n"))
    update(config)
    for name in ("atom.xml", "rss.xml", "feed.json", "index.html"):
        text = (config.output.dir / name).read_text(encoding="utf-8")
        assert "From the disk" in text, name
        assert "file:" not in text and str(tmp_path) not in text, name
    doc = json.loads((config.output.dir / "feed.json").read_text(encoding="utf-8"))
    assert "feed_url" not in doc["items"][0]["_source"]


def test_links_are_published_as_uris_not_iris() -> None:
    """Issue 14: real feeds link to IRIs ("http://www.dw.de/原军委...") and to paths holding
    "[0]"; RSS wants URLs, and the W3C validator refuses both in Atom too (InvalidIRI,
    UriNotIri, InvalidUriChar). The same link, escaped: host IDNA, the rest UTF-8 %XX."""
    link = "http://www.dw.de/原军委/a-18317576?maca=chi"
    uri = "http://www.dw.de/%E5%8E%9F%E5%86%9B%E5%A7%94/a-18317576?maca=chi"
    source = SourceFeed(id="urn:x-test:s", title="S", url="https://bücher.example/rss")
    entry = OutputEntry(
        id=uri,
        title="IRI",
        link=link,
        summary="<p>s</p>",
        content=None,
        published=T0,
        updated=T0,
        source=source,
        enclosures=(Enclosure("https://h.example/item[0].mp3", "audio/mpeg", 1),),
    )
    feed = make_feed(entries=(entry,), link="https://news.example/ü/")
    atom_root = etree.fromstring(render_atom(feed))
    assert atom_root.xpath("a:entry/a:link/@href", namespaces=A) == [
        uri,
        "https://h.example/item%5B0%5D.mp3",
    ]
    assert atom_root.xpath("a:entry/a:source/a:link/@href", namespaces=A) == [
        "https://xn--bcher-kva.example/rss"
    ]
    assert atom_root.xpath("a:link[@rel='alternate']/@href", namespaces=A) == [
        "https://news.example/%C3%BC/"
    ]
    rss_item = etree.fromstring(render_rss(feed)).find("channel/item")
    assert rss_item.findtext("link") == uri
    assert rss_item.find("guid").get("isPermaLink") == "true"  # the id is the link, as a URI
    assert rss_item.find("enclosure").get("url") == "https://h.example/item%5B0%5D.mp3"
    assert rss_item.find("source").get("url") == "https://xn--bcher-kva.example/rss"
    item = json.loads(render_json_feed(feed))["items"][0]
    assert item["url"] == uri
    assert item["_source"]["feed_url"] == "https://xn--bcher-kva.example/rss"


def test_an_untitled_item_is_titled_by_its_text_and_markup_like_text_is_declared() -> None:
    """Issue 14, from the W3C validator on real feeds: a blank title (NotBlank); a text title a
    careless reader would take for HTML (ContainsUndeclaredHTML in Atom, ContainsHTML and
    CharacterData in RSS)."""
    words = "Lava reached the sea wall at dawn, " + "and the harbour was closed " * 4
    untitled = OutputEntry(
        id="tag:x.example,2026:1",
        title="",
        link="https://x.example/1",
        summary=None,
        content=f"<p>{words}</p>",
        published=T0,
        updated=T0,
        source=SRC_A,
    )
    entity = dataclasses.replace(untitled, id="tag:x.example,2026:2", title="alpha&omega")
    feed = make_feed(entries=(untitled, entity))
    title = "Lava reached the sea wall at dawn, and the harbour was closed and the harbour…"
    atom_titles = etree.fromstring(render_atom(feed)).xpath("a:entry/a:title", namespaces=A)
    assert [(t.get("type"), t.text) for t in atom_titles] == [
        ("text", title),
        ("html", "alpha&amp;omega"),
    ]
    rss = render_rss(feed)
    assert [t.text for t in etree.fromstring(rss).iterfind("channel/item/title")] == [
        title,
        "alpha&omega",
    ]
    assert b"<title>alpha&#x26;omega</title>" in rss  # the RSS Profile's escapes
    assert b"<title>Merged &#x3C;b&gt;feed&#x3C;/b&gt; &#x26; co</title>" in rss
    assert b"<description>&lt;p&gt;Lava reached" in rss  # HTML keeps its escapes


def test_entries_sharing_a_second_are_told_apart_in_atom_updated() -> None:
    """Issue 14: a merged feed's entries often share their updated second (the W3C validator's
    DuplicateUpdated). Each twin gets a fraction of that second drawn from its own id: stable,
    whatever else is in the window; an entry with no twin keeps its plain second."""
    base = _entries()[3]
    twins = [dataclasses.replace(base, id=f"tag:x.example,2026:{n}", updated=T0) for n in range(3)]
    alone = dataclasses.replace(base, id="tag:x.example,2026:alone", updated=T0 - timedelta(1))

    def updated(*entries: OutputEntry) -> dict[str, str]:
        root = etree.fromstring(render_atom(make_feed(entries=entries, updated=T0)))
        assert RFC3339.match(root.findtext("a:updated", namespaces=A))
        assert root.findtext("a:updated", namespaces=A) >= "2026-11-25T09:00:00."  # the newest
        return {
            e.findtext("a:id", namespaces=A): e.findtext("a:updated", namespaces=A)
            for e in root.iterfind("a:entry", A)
        }

    three = updated(*twins, alone)
    assert three[alone.id] == "2026-11-24T09:00:00Z"
    values = [three[t.id] for t in twins]
    assert len(set(values)) == 3
    assert all(re.fullmatch(r"2026-11-25T09:00:00\.\d{6}Z", v) for v in values), values
    # The same values whatever the order and whoever else shares the second.
    assert updated(*reversed(twins)) == {t.id: three[t.id] for t in twins}
    assert updated(twins[0], twins[2]) == {t.id: three[t.id] for t in (twins[0], twins[2])}
    assert updated(twins[1]) == {twins[1].id: "2026-11-25T09:00:00Z"}
