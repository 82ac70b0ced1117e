"""parse_feed: one small fixture per behaviour in tests/data/parse, a fixed `now`, no network."""

from __future__ import annotations

import builtins
import io
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from requests.structures import CaseInsensitiveDict

from aggregator.errors import ParseError
from aggregator.parse import hints as hints_module
from aggregator.parse import parse_feed
from aggregator.sanitize import clean_html, plain_text, shows_something, text_to_html
from aggregator.types import Enclosure, Entry, FeedHints, ParsedFeed

DATA = Path(__file__).parent / "data" / "parse"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL = "https://feeds.example/dir/feed"
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
ATOM = {"content-type": "application/atom+xml"}
JSON = {"Content-Type": "application/feed+json"}


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse(name: str, headers: Any = RSS, url: str = URL) -> ParsedFeed:
    return parse_feed(fixture(name), url=url, headers=headers, now=NOW)


def by_id(feed: ParsedFeed) -> dict[str, Entry]:
    return {e.source_id: e for e in feed.entries}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------- field table

FIELD_CASES: list[tuple[str, Any, int | None, str, object]] = [
    # (fixture, headers, entry index or None for the feed, attribute, expected)
    ("rss20_basic.xml", RSS, None, "format", "rss20"),
    ("rss20_basic.xml", RSS, None, "title", "Example & Co News"),
    ("rss20_basic.xml", RSS, None, "link", "https://example.org/"),
    ("rss20_basic.xml", RSS, None, "feed_id", None),
    ("rss20_basic.xml", RSS, None, "updated", utc(2026, 11, 25, 10, 0)),
    ("rss20_basic.xml", RSS, None, "warning", None),
    ("rss20_basic.xml", RSS, 0, "source_id", "post-1"),
    ("rss20_basic.xml", RSS, 0, "title", "First post"),
    ("rss20_basic.xml", RSS, 0, "link", "https://example.org/posts/1"),
    ("rss20_basic.xml", RSS, 0, "summary", "<p>A short teaser.</p>"),
    ("rss20_basic.xml", RSS, 0, "authors", ("Ed Itor", "Jane Roe")),
    ("rss20_basic.xml", RSS, 0, "tags", ("news", "tech")),
    ("rss20_basic.xml", RSS, 0, "published", utc(2026, 11, 25, 8, 0)),
    ("rss20_basic.xml", RSS, 0, "updated", utc(2026, 11, 25, 8, 0)),
    ("rss20_basic.xml", RSS, 1, "summary", "Only a description here."),
    ("rss20_basic.xml", RSS, 1, "content", None),
    ("atom_xml_base.xml", ATOM, None, "format", "atom10"),
    ("atom_xml_base.xml", ATOM, None, "title", "Blog & Notes"),
    ("atom_xml_base.xml", ATOM, None, "link", "https://blog.example/"),
    ("atom_xml_base.xml", ATOM, None, "feed_id", "tag:blog.example,2026:feed"),
    ("atom_xml_base.xml", ATOM, 0, "link", "https://blog.example/posts/2026/relative.html"),
    ("atom_xml_base.xml", ATOM, 0, "summary", "<p>Links &amp; images &lt;resolved&gt;</p>"),
    ("atom_xml_base.xml", ATOM, 0, "published", utc(2026, 11, 24, 12, 0)),
    ("atom_xml_base.xml", ATOM, 0, "updated", utc(2026, 11, 25, 5, 0)),
    ("atom_xml_base.xml", ATOM, 0, "authors", ("Feed Author",)),  # inherited from the feed
    # Titles are always plain text, tags stripped, even a type="text" title
    ("atom_xml_base.xml", ATOM, 1, "title", "Plain text title"),
    (
        "atom_xml_base.xml",
        ATOM,
        1,
        "content",
        "<p>1 &lt; 2 &amp; &lt;script&gt;not markup&lt;/script&gt;</p>",
    ),
    ("atom_xml_base.xml", ATOM, 1, "summary", None),  # feedparser's copy of content is ignored
    ("json11.json", JSON, None, "format", "json11"),
    ("json11.json", JSON, None, "title", "JSON & Friends"),
    ("json11.json", JSON, None, "link", "https://json.example/"),
    ("json11.json", JSON, None, "feed_id", "https://json.example/feed.json"),
    ("json11.json", JSON, 0, "source_id", "j1"),
    ("json11.json", JSON, 0, "title", "Hello"),  # "<JSON>" looks like a tag: stripped
    ("json11.json", JSON, 0, "link", "https://json.example/posts/1"),
    ("json11.json", JSON, 0, "summary", "<p>A greeting</p>"),
    ("json11.json", JSON, 0, "authors", ("Ann", "Bob")),
    ("json11.json", JSON, 0, "tags", ("greeting", "json")),
    ("json11.json", JSON, 0, "published", utc(2026, 11, 25, 7, 0)),
    ("json11.json", JSON, 0, "updated", utc(2026, 11, 25, 9, 30)),
    ("json11.json", JSON, 1, "source_id", "42"),
    ("json11.json", JSON, 1, "link", "https://elsewhere.example/story"),  # external_url
    (
        "json11.json",
        JSON,
        1,
        "content",
        "<p>Line one &amp; more<br>line two</p><p>Second &lt;paragraph&gt;</p>",
    ),
    ("json11.json", JSON, 1, "authors", ("Feed Writer",)),
    ("json11.json", JSON, 2, "source_id", "https://json.example/posts/3"),
    ("json10.json", JSON, None, "format", "json10"),
    ("json10.json", JSON, None, "feed_id", "https://old.example/feed.json"),
    ("json10.json", JSON, 0, "authors", ("Item Author",)),
    ("json10.json", JSON, 0, "content", "<p>Text only</p>"),
    ("json10.json", JSON, 0, "published", utc(2026, 11, 20, 10, 0)),
    ("json10.json", JSON, 1, "authors", ("Solo Author",)),
    ("json10.json", {}, None, "format", "json10"),  # sniffed from the leading "{"
    ("empty_channel.xml", RSS, None, "entries", ()),
    ("empty_channel.xml", RSS, None, "title", "Nothing yet"),
]


@pytest.mark.parametrize(
    ("name", "headers", "index", "attribute", "expected"),
    FIELD_CASES,
    ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in FIELD_CASES],
)
def test_fields(name: str, headers: Any, index: int | None, attribute: str, expected: object):
    feed = parse(name, headers)
    target: object = feed if index is None else feed.entries[index]
    assert getattr(target, attribute) == expected


def test_entry_counts_and_types() -> None:
    for name, headers, count in [
        ("rss20_basic.xml", RSS, 2),
        ("atom_xml_base.xml", ATOM, 2),
        ("json11.json", JSON, 3),
        ("json10.json", JSON, 2),
    ]:
        feed = parse(name, headers)
        assert len(feed.entries) == count, name
        for entry in feed.entries:
            for when in (entry.published, entry.updated):
                assert when is None or when.tzinfo == UTC


# ---------------------------------------------------------------- URLs and xml:base


def test_atom_xml_base_makes_content_links_absolute() -> None:
    content = parse("atom_xml_base.xml", ATOM).entries[0].content
    assert content is not None
    assert 'href="https://blog.example/articles/x"' in content  # ../x against the content base
    assert 'src="https://blog.example/articles/deep/p.png"' in content
    assert 'href="https://blog.example/articles/deep/#note"' in content
    assert 'rel="noopener noreferrer nofollow"' in content


def test_rss_relative_links_resolve_against_the_feed_url() -> None:
    content = parse("rss20_basic.xml").entries[0].content
    assert content == (
        '<p>The <em>full</em> text, with <a href="https://feeds.example/about" '
        'rel="noopener noreferrer nofollow">a relative link</a>.</p>'
    )


def test_file_url_feed_resolves_against_the_entry_link_never_to_file_links() -> None:
    feed = parse("rss20_basic.xml", {}, url="file:///srv/feeds/basic.xml")
    content = feed.entries[0].content or ""
    assert 'href="https://example.org/about"' in content  # the entry link is the next base
    assert feed.warning is None  # no Content-Type header is normal for a file
    enclosure = parse("enclosures.xml", {}, url="file:///srv/feeds/pod.xml").entries[1]
    assert enclosure.enclosures == (Enclosure("https://pod.example/media/ep2.ogg", "audio/ogg"),)
    orphan = parse("no_ids.xml", {}, url="file:///srv/feeds/noid.xml").entries[1]
    assert orphan.link is None  # no <link>: the file:// feed URL is not used as one
    for entry in feed.entries:
        assert "file:" not in f"{entry.link} {entry.content} {entry.summary}"


def test_tracking_params_only_leave_the_canonical_url() -> None:
    entries = by_id(parse("tracking_link.xml"))
    tracked = entries["tracked"]
    assert tracked.link == (
        "https://Track.Example:443/story?utm_source=rss&id=7&utm_medium=feed&fbclid=abc#top"
    )
    assert tracked.canonical_url == "https://track.example/story?id=7"
    assert entries["relative"].link == "https://feeds.example/relative/story"
    assert entries["script"].link is None  # only http(s) links are kept
    assert entries["script"].canonical_url is None


def test_enclosures() -> None:
    entries = by_id(parse("enclosures.xml"))
    assert entries["ep1"].enclosures == (
        Enclosure("https://cdn.pod.example/ep1.mp3", "audio/mpeg", 12345678),
    )
    assert entries["ep2"].enclosures == (
        Enclosure("https://feeds.example/media/ep2.ogg", "audio/ogg", None),
    )
    json_entry = parse("json11.json", JSON).entries[0]
    assert json_entry.enclosures == (
        Enclosure("https://feeds.example/media/hello.mp3", "audio/mpeg", 1024),
    )  # the javascript: attachment is gone


# ---------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/xml; charset=iso-8859-1"},
        {"content-type": "text/xml; charset=ISO-8859-1"},
        CaseInsensitiveDict({"CONTENT-TYPE": "text/xml; charset=iso-8859-1"}),
    ],
    ids=["dict", "lowercase", "case-insensitive-dict"],
)
def test_charset_only_in_the_http_header_is_honoured(headers: Any) -> None:
    body = fixture("rss_latin1_header_charset.xml")
    assert b"encoding=" not in body.split(b"?>", 1)[0]  # the declaration names no charset
    assert b"\xe9" in body  # é as a single latin-1 byte
    feed = parse_feed(body, url=URL, headers=headers, now=NOW)
    assert feed.title == "Café du monde"
    assert feed.entries[0].title == "Été à Paris"
    assert feed.entries[0].summary == "résumé"
    assert feed.warning is None


# ---------------------------------------------------------------- errors and warnings


def test_broken_but_readable_xml_gives_entries_and_a_warning() -> None:
    feed = parse("rss_unescaped_amp.xml")
    assert [e.title for e in feed.entries] == ["Fish & Chips"]
    assert feed.warning is not None
    assert "not well-formed" in feed.warning
    assert len(feed.warning) <= 200


ERROR_CASES: list[tuple[str, bytes, dict[str, str], str]] = [
    ("html-page", fixture("html_page.html"), {"Content-Type": "text/html"}, "HTML page"),
    ("html-page-no-header", fixture("html_page.html"), {}, "HTML page"),
    ("empty", b"", RSS, "empty body"),
    ("whitespace", b"  \r\n\t ", RSS, "empty body"),
    ("invalid-json", fixture("invalid.json"), JSON, "invalid JSON"),
    ("invalid-json-sniffed", fixture("invalid.json"), {}, "invalid JSON"),
    ("json-array", b"[1, 2, 3]", JSON, "not an object"),
    ("json-not-a-feed", b'{"hello": "world"}', {"Content-Type": "application/json"}, "JSON"),
    ("json-too-deep", b"[" * 100_000, JSON, "invalid JSON"),
    ("path-as-body", b"/etc/hostname", {}, "not a feed"),
    ("plain-text", b"hello, world", {"Content-Type": "text/plain"}, "not a feed"),
    ("unknown-xml", b'<?xml version="1.0"?><config><a/></config>', RSS, "not a feed"),
]


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_not_a_feed_raises_parse_error(body: bytes, headers: dict[str, str], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(body, url=URL, headers=headers, now=NOW)


def test_html_message_names_the_content_type() -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(
            fixture("html_page.html"),
            url=URL,
            headers={"Content-Type": "text/html; charset=utf-8"},
            now=NOW,
        )
    assert str(info.value) == "not a feed: looks like an HTML page (text/html)"


def test_parse_never_opens_files_or_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = [fixture("rss20_basic.xml"), fixture("json11.json")]
    opened: list[object] = []

    def no_open(*args: object, **kwargs: object) -> None:
        opened.append(args)
        raise AssertionError(f"parse opened {args!r}")

    def no_socket(*args: object, **kwargs: object) -> None:
        raise AssertionError("parse touched the network")

    monkeypatch.setattr(builtins, "open", no_open)
    monkeypatch.setattr(io, "open", no_open)
    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setattr(socket, "create_connection", no_socket)
    for body in bodies:
        assert parse_feed(body, url=URL, headers={}, now=NOW).entries
    for body in (b"/etc/hostname", b"file:///etc/hostname", b"https://example.org/feed"):
        with pytest.raises(ParseError):
            parse_feed(body, url=URL, headers={}, now=NOW)
    assert opened == []


# ---------------------------------------------------------------- ids


def test_duplicate_ids_in_one_document() -> None:
    feed = parse("duplicate_ids.xml")
    assert [(e.title, e.link) for e in feed.entries] == [
        ("Alpha", "https://dup.example/alpha"),
        ("Beta", "https://dup.example/beta"),
    ]  # the identical repeats are dropped
    first, second = feed.entries
    assert first.source_id == "same"
    assert second.source_id.startswith("same#")
    assert second.source_id != first.source_id
    again = parse("duplicate_ids.xml")
    assert [e.source_id for e in again.entries] == [first.source_id, second.source_id]


def test_entries_without_id_use_link_then_a_content_hash() -> None:
    feed = parse("no_ids.xml")
    linked, bare = feed.entries
    assert linked.source_id == "https://noid.example/linked"
    assert bare.source_id.startswith("sha1:")
    assert len(bare.source_id) == len("sha1:") + 40
    assert bare.link is None
    assert parse("no_ids.xml").entries[1].source_id == bare.source_id  # stable across polls


# ---------------------------------------------------------------- dates


def test_missing_or_unusable_dates_are_none() -> None:
    feed = parse("no_dates.xml")
    assert len(feed.entries) == 3
    for entry in feed.entries:
        assert entry.published is None
        assert entry.updated is None
        assert entry.date_clamped is False


def test_future_dates_are_clamped_and_old_dates_kept() -> None:
    feed = parse("future_date.xml", ATOM)
    entries = by_id(feed)
    future = entries["urn:uuid:future"]
    assert (future.published, future.updated, future.date_clamped) == (NOW, NOW, True)
    skew = entries["urn:uuid:skew"]  # 5 minutes ahead is within the tolerance
    assert (skew.updated, skew.date_clamped) == (utc(2026, 11, 25, 12, 5), False)
    old = entries["urn:uuid:old"]
    assert (old.published, old.date_clamped) == (utc(1969, 7, 20, 20, 17), False)
    assert feed.updated == NOW


# ---------------------------------------------------------------- sanitizing


HOSTILE = [
    "<script",
    "alert(",
    "javascript:",
    "JaVaScRiPt",
    "vbscript:",
    "data:",
    "onerror",
    "onclick",
    "<iframe",
    "<form",
    "<input",
    "<svg",
    "<object",
    "<embed",
    "<style",
    "style=",
    "<!--",
    "evil.example",
    "cite=",
]


@pytest.mark.parametrize("needle", HOSTILE)
def test_hostile_html_does_not_survive(needle: str) -> None:
    entry = parse("hostile_html.xml").entries[0]
    for html in (entry.content, entry.summary):
        assert html is not None
        assert needle.lower() not in html.lower()


def test_benign_markup_survives_sanitizing() -> None:
    entry = parse("hostile_html.xml").entries[0]
    content = entry.content or ""
    assert content.startswith("<p>Benign paragraph with ")
    assert (
        '<a href="https://safe.example/page" rel="noopener noreferrer nofollow">a safe link</a>'
        in content
    )
    assert '<img src="https://safe.example/pic.png" alt="safe picture">' in content
    assert '<img src="https://safe.example/x.png">' in content  # onerror gone, image kept
    assert "<div>styled</div>" in content
    assert "<blockquote>quoted</blockquote>" in content
    assert entry.summary == '<p>Teaser <a rel="noopener noreferrer nofollow">s</a></p>'


def test_json_content_html_is_sanitized_and_absolutized() -> None:
    content = parse("json11.json", JSON).entries[0].content
    assert content == (
        '<p>Hi <a href="https://json.example/about" rel="noopener noreferrer nofollow">'
        "about</a></p>"
    )


def test_titles_and_text_fields_are_clean() -> None:
    feed = parse("control_chars_title.xml")
    entry = feed.entries[0]
    assert entry.title == "Bold and vertical & tab text"
    assert entry.authors == ("Ctl Author",)
    assert entry.tags == ("tag",)
    illegal = [chr(c) for c in range(32) if chr(c) not in "\t\n\r"] + ["\ufffe", "\uffff"]
    fields = [entry.title, entry.summary or "", *entry.authors, *entry.tags]
    for text in fields:
        assert not any(ch in text for ch in illegal), repr(text)
    assert entry.summary == "body  text"
    assert feed.warning is not None  # a raw control byte is not well-formed XML


def test_lone_surrogates_and_huge_dates_in_json_do_not_break_parsing() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "x",'
        b' "title": "a\\ud800b", "content_html": "<p>c\\udfffd</p>",'
        b' "date_published": "9999-12-31T23:59:59-05:00", "date_modified": "garbage"}]}'
    )
    entry = parse_feed(body, url=URL, headers=JSON, now=NOW).entries[0]
    assert (entry.title, entry.content) == ("ab", "<p>cd</p>")
    assert (entry.published, entry.updated) == (None, None)


# ---------------------------------------------------------------- sanitize helpers


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (
            "https://e.example/a/b",
            '<a href="https://e.example/x" rel="noopener noreferrer nofollow">x</a>',
        ),
        ("file:///etc/passwd", '<a rel="noopener noreferrer nofollow">x</a>'),
        (None, '<a rel="noopener noreferrer nofollow">x</a>'),
        ("not a url", '<a rel="noopener noreferrer nofollow">x</a>'),
    ],
)
def test_clean_html_resolves_only_against_web_bases(base: str | None, expected: str) -> None:
    assert clean_html('<a href="../x">x</a>', base) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<b>AT&amp;T</b> &amp;amp; co", "AT&T &amp; co"),  # entities decoded exactly once
        ("a &lt;tag&gt; b", "a <tag> b"),
        ("x<script>alert(1)</script>y", "xy"),
        ("  many \n\t spaces\x0bhere\x0c ", "many spaces here"),
        ("ctl\x00\x01\ufffe\uffffok", "ctlok"),
    ],
)
def test_plain_text(raw: str, expected: str) -> None:
    assert plain_text(raw) == expected


def test_text_to_html_escapes_instead_of_parsing() -> None:
    assert text_to_html("<b>a</b> & b\n\nnext") == "<p>&lt;b&gt;a&lt;/b&gt; &amp; b</p><p>next</p>"


# ---------------------------------------------------------------- publisher hints

HOUR, DAY = timedelta(hours=1), timedelta(days=1)

HINT_FIXTURES: list[tuple[str, Any, FeedHints]] = [
    (
        "hints_rss.xml",
        RSS,
        FeedHints(
            ttl=3 * HOUR,  # <ttl>180</ttl> minutes
            update_period=HOUR / 2,  # hourly / 2
            skip_hours=frozenset({0, 1, 23}),  # 24 is read as 0
            skip_days=frozenset({5, 6}),
        ),
    ),
    # every junk value dropped; hour 5 and "monday" survive; an item's skipHours is not the feed's
    ("hints_junk.xml", RSS, FeedHints(skip_hours=frozenset({5}), skip_days=frozenset({0}))),
    ("hints_rdf_frequency_only.xml", RSS, FeedHints(update_period=6 * HOUR)),  # daily / 4
    ("hints_atom_sy.xml", ATOM, FeedHints(update_period=7 * DAY)),
    # not well formed: feedparser's loose parser and lxml's recovering parser still read them
    (
        "hints_broken.xml",
        RSS,
        FeedHints(ttl=HOUR, skip_hours=frozenset({3, 4}), skip_days=frozenset({1})),
    ),
    ("rss20_basic.xml", RSS, FeedHints()),
    ("json11.json", JSON, FeedHints()),  # JSON Feed has no polling hints
    ("json10.json", JSON, FeedHints()),
]


@pytest.mark.parametrize(
    ("name", "headers", "expected"), HINT_FIXTURES, ids=[c[0] for c in HINT_FIXTURES]
)
def test_hint_fixtures(name: str, headers: Any, expected: FeedHints) -> None:
    assert parse(name, headers).hints == expected


def test_a_document_whose_entities_would_blow_it_up_is_refused_before_parsing() -> None:
    """Issue 13: the declarations and references are counted, nothing is expanded."""
    with pytest.raises(ParseError, match="entity declarations would expand the document"):
        parse("hints_billion_laughs.xml", RSS)


def test_a_small_internal_entity_is_still_read() -> None:
    body = (
        b'<!DOCTYPE rss [\n  <!ENTITY id "tag:example.com,">\n]>\n<rss version="2.0"><channel>'
        b"<item><guid isPermaLink='false'>&id;2006-05-04:/blog/</guid></item></channel></rss>"
    )
    feed = parse_feed(body, url="https://x.example/", headers={}, now=NOW)
    assert [e.source_id for e in feed.entries] == ["tag:example.com,2006-05-04:/blog/"]


def test_broken_feed_with_hints_still_warns() -> None:
    feed = parse("hints_broken.xml")
    assert feed.warning is not None
    assert [e.title for e in feed.entries] == ["Salt & Pepper"]


def rss_with(channel_extra: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
        "<channel><title>t</title><link>https://h.example/</link><description>d</description>"
        f"{channel_extra}<item><title>i</title><link>https://h.example/i</link></item>"
        "</channel></rss>"
    ).encode()


def sy(period: str | None, frequency: str | None) -> str:
    text = f"<sy:updatePeriod>{period}</sy:updatePeriod>" if period is not None else ""
    if frequency is not None:
        text += f"<sy:updateFrequency>{frequency}</sy:updateFrequency>"
    return text


HINT_VALUE_CASES: list[tuple[str, str, str, object]] = [
    # (id, channel XML, FeedHints attribute, expected)
    ("ttl-180", "<ttl>180</ttl>", "ttl", 3 * HOUR),
    ("ttl-spaces", "<ttl> 60 </ttl>", "ttl", HOUR),
    ("ttl-zero", "<ttl>0</ttl>", "ttl", None),
    ("ttl-negative", "<ttl>-5</ttl>", "ttl", None),
    ("ttl-fraction", "<ttl>1.5</ttl>", "ttl", None),
    ("ttl-word", "<ttl>soon</ttl>", "ttl", None),
    ("ttl-empty", "<ttl></ttl>", "ttl", None),
    ("ttl-huge", f"<ttl>{'9' * 30}</ttl>", "ttl", None),
    ("ttl-absent", "", "ttl", None),
    ("sy-hourly-2", sy("hourly", "2"), "update_period", HOUR / 2),
    ("sy-daily", sy("daily", None), "update_period", DAY),
    ("sy-frequency-only", sy(None, "4"), "update_period", 6 * HOUR),
    ("sy-empty-period-is-daily", sy("", "2"), "update_period", 12 * HOUR),
    ("sy-weekly", sy("weekly", "1"), "update_period", 7 * DAY),
    ("sy-monthly", sy("monthly", None), "update_period", 30 * DAY),
    ("sy-yearly-365", sy("yearly", "365"), "update_period", DAY),
    ("sy-uppercase", sy("HOURLY", None), "update_period", HOUR),
    ("sy-unknown-period", sy("fortnightly", "1"), "update_period", None),
    ("sy-zero-frequency", sy("hourly", "0"), "update_period", None),
    ("sy-negative-frequency", sy("hourly", "-1"), "update_period", None),
    ("sy-word-frequency", sy("hourly", "two"), "update_period", None),
    ("sy-absent", "", "update_period", None),
    ("skip-hour-24-is-0", "<skipHours><hour>24</hour></skipHours>", "skip_hours", {0}),
    ("skip-hour-leading-zero", "<skipHours><hour>07</hour></skipHours>", "skip_hours", {7}),
    ("skip-hour-25", "<skipHours><hour>25</hour></skipHours>", "skip_hours", set()),
    ("skip-hours-empty", "<skipHours/>", "skip_hours", set()),
    ("skip-day-sunday", "<skipDays><day>Sunday</day></skipDays>", "skip_days", {6}),
    ("skip-day-any-case", "<skipDays><day> SUNDAY </day></skipDays>", "skip_days", {6}),
    ("skip-day-number", "<skipDays><day>0</day></skipDays>", "skip_days", set()),
    ("skip-day-abbreviation", "<skipDays><day>Sun</day></skipDays>", "skip_days", set()),
]


@pytest.mark.parametrize(
    ("channel", "attribute", "expected"),
    [c[1:] for c in HINT_VALUE_CASES],
    ids=[c[0] for c in HINT_VALUE_CASES],
)
def test_hint_values(channel: str, attribute: str, expected: object) -> None:
    feed = parse_feed(rss_with(channel), url=URL, headers=RSS, now=NOW)
    assert getattr(feed.hints, attribute) == expected
    assert len(feed.entries) == 1  # a bad hint never costs the entries


def test_skip_hints_are_read_only_when_the_body_names_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(body: bytes) -> object:
        raise AssertionError("lxml read a body without skipHours/skipDays")

    monkeypatch.setattr(hints_module, "_skip_hints", boom)
    assert parse("rss20_basic.xml").hints == FeedHints()
    assert parse("hints_atom_sy.xml", ATOM).hints.update_period == 7 * DAY


def test_skip_hints_never_load_external_entities(tmp_path: Path) -> None:
    (tmp_path / "hour.txt").write_text("7", encoding="ascii")
    (tmp_path / "day.txt").write_text("Monday", encoding="ascii")
    body = (
        '<?xml version="1.0"?>\n'
        "<!DOCTYPE rss [\n"
        f'  <!ENTITY hour SYSTEM "{(tmp_path / "hour.txt").as_uri()}">\n'
        f'  <!ENTITY day SYSTEM "{(tmp_path / "day.txt").as_uri()}">\n'
        '  <!ENTITY remote SYSTEM "http://127.0.0.1:9/hour">\n'
        "]>\n"
        '<rss version="2.0"><channel><title>x</title><link>https://x.example/</link>'
        "<description>d</description>"
        "<skipHours><hour>&hour;</hour><hour>&remote;</hour></skipHours>"
        "<skipDays><day>&day;</day></skipDays>"
        "<item><title>i</title><link>https://x.example/i</link></item>"
        "</channel></rss>"
    ).encode()
    feed = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert feed.hints == FeedHints()
    assert [e.title for e in feed.entries] == ["i"]


def test_garbage_with_a_skip_marker_is_still_a_parse_error_not_a_crash() -> None:
    with pytest.raises(ParseError):
        parse_feed(b"<skipHours><hour>1</hour></skipHours>\xff\x00", url=URL, headers=RSS, now=NOW)


# ---------------------------------------------------------------- real-world corpus findings
# Each case below was found by running the real pipeline over ../shared/corpus
# (bench/corpus_tally.py, tests/test_corpus.py); each fixture is a small hand-written stand-in.

XML = {"Content-Type": "application/xml"}
RSS_NO_CHARSET = {"Content-Type": "application/rss+xml"}  # the document speaks for itself


def test_whitespace_before_the_xml_declaration_is_not_a_broken_feed() -> None:
    body = fixture("leading_blank_lines.xml")
    assert body.startswith(b"\n\n  <?xml")
    for raw in (body, b"\xef\xbb\xbf" + body):  # also after a UTF-8 BOM
        feed = parse_feed(raw, url=URL, headers=RSS, now=NOW)
        assert feed.warning is None  # strict parser, not the loose one with a warning
        assert [(e.title, e.authors) for e in feed.entries] == [
            ("Printed by a template", ("Tem Plate",))
        ]


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("utf16be_no_bom_no_declaration.xml", RSS_NO_CHARSET),
        ("utf16le_no_bom_no_declaration.xml", {"Content-Type": "text/xml"}),
        ("utf16be_no_bom_no_declaration.xml", {}),
    ],
)
def test_utf16_without_bom_or_declaration_is_read(name: str, headers: Any) -> None:
    body = fixture(name)
    assert body[:2] in (b"\x00<", b"<\x00")
    feed = parse(name, headers)
    assert feed.title == "Zwölf Boxkämpfer"
    assert [e.title for e in feed.entries] == ["Größe über alles"]


@pytest.mark.parametrize(
    ("name", "title", "entry_title", "codec"),
    [
        ("koi8r_undeclared.xml", "Новости дня", "Как пережить новогоднюю ночь", "koi8_r"),
        ("shiftjis_undeclared.xml", "ゲームの日記", "ゲーム三昧な正月", "cp932"),
    ],
)
def test_undeclared_non_latin_encoding_is_detected(
    name: str, title: str, entry_title: str, codec: str
) -> None:
    feed = parse(name, RSS_NO_CHARSET)
    assert (feed.title, [e.title for e in feed.entries]) == (title, [entry_title])
    assert feed.warning == f"no encoding declared and not UTF-8: read as {codec} (detected)"


def test_undeclared_latin_text_keeps_the_windows_1252_fallback() -> None:
    feed = parse("latin1_undeclared.xml", RSS_NO_CHARSET)
    assert feed.title == "Café du coin"
    assert [e.title for e in feed.entries] == ["Crème brûlée à la française"]
    assert feed.warning is not None and "windows-1252" in feed.warning


def test_a_declared_or_http_charset_is_never_second_guessed() -> None:
    body = fixture("koi8r_undeclared.xml")
    feed = parse_feed(body, url=URL, headers={"Content-Type": "text/xml; charset=koi8-r"}, now=NOW)
    assert feed.title == "Новости дня" and feed.warning is None
    declared = b'<?xml version="1.0" encoding="koi8-r"?>\n' + body
    assert parse_feed(declared, url=URL, headers=RSS_NO_CHARSET, now=NOW).warning is None


@pytest.mark.parametrize(
    ("name", "fmt", "title", "entries"),
    [
        ("cdf_channel.xml", "cdf", "Channel without items yet", []),
        ("cdf_items.xml", "cdf", "CDF news", ["First CDF item"]),
        ("rss11_empty.xml", "rss11", "RSS 1.1, nothing yet", []),
        ("rss11_items.xml", "rss11", "RSS 1.1 news", ["Item A"]),
    ],
)
def test_cdf_and_rss11_channels_are_feeds_even_when_empty(
    name: str, fmt: str, title: str, entries: list[str]
) -> None:
    feed = parse(name, XML)
    assert (feed.format, feed.title, feed.warning) == (fmt, title, None)
    assert [e.title for e in feed.entries] == entries


def test_cdf_item_fields() -> None:
    entry = parse("cdf_items.xml", XML).entries[0]
    assert entry.link == "https://cdf.example/one"
    assert entry.summary == "<p>What it is about</p>"
    assert entry.published == utc(2026, 11, 20, 10, 0)


@pytest.mark.parametrize(
    ("name", "headers", "message"),
    [
        ("broken_channel_no_entries.xml", XML, r"^not a feed: a broken <channel> document "),
        ("subscriptions.opml", {"Content-Type": "text/x-opml"}, r"^not a feed: an OPML "),
        ("subscriptions.opml", {"Content-Type": "application/octet-stream"}, "OPML"),
        # <body> inside a non-HTML document is not an HTML page
        ("xml_note.xml", XML, r"no RSS, Atom or JSON Feed document found .*root element <note>"),
    ],
)
def test_not_a_feed_messages_name_what_the_document_is(
    name: str, headers: Any, message: str
) -> None:
    with pytest.raises(ParseError, match=message):
        parse(name, headers)


def test_junk_enclosure_types_are_dropped_not_published() -> None:
    entries = by_id(parse("enclosure_types.xml"))
    assert [e.type for e in entries["e1"].enclosures] == ["audio/mpeg", "audio/ogg; codecs=opus"]
    assert [(e.url, e.type, e.length) for e in entries["e2"].enclosures] == [
        ("https://pod.example/2.mp3", None, 100),  # "rss_0.94...^type" broke atom.xml validity
        ("https://pod.example/2.m4a", None, 100),
        ("https://pod.example/2.wav", None, 100),
    ]
    attachments = by_id(parse("json_shows_nothing.json", JSON))["2"].enclosures
    assert [(e.url, e.type) for e in attachments] == [
        ("https://jodd.example/a.mp3", None),
        ("https://jodd.example/b.mp3", "audio/mpeg"),
    ]


def test_entries_whose_content_shows_nothing_are_empty() -> None:
    feed = parse("invisible_content.xml", ATOM)
    # markup only, SVG only, MathML only, a script and an empty paragraph: all dropped
    assert [(e.title, e.content, e.summary) for e in feed.entries] == [
        ("", '<img src="https://invisible.example/cam.jpg">', None),  # an image shows something
        ("Titled", None, None),  # kept for its title; its empty markup is not kept
    ]


def test_json_content_html_that_shows_nothing_falls_back_to_content_text() -> None:
    feed = parse("json_shows_nothing.json", JSON)
    assert [e.source_id for e in feed.entries] == ["1", "2"]  # the SVG-only item is empty
    assert feed.entries[0].content == "<p>The text version</p>"


def test_day_first_dotted_dates_are_read() -> None:
    feed = parse("dotted_dates.xml")
    entries = by_id(feed)
    assert entries["d1"].published == utc(2022, 11, 22, 12, 16)
    assert entries["d2"].published == utc(2022, 2, 1)
    assert entries["d3"].published is None  # 31 February: no date rather than a wrong one
    assert entries["d4"].published == utc(2022, 11, 22, 11, 16)  # RFC 822 as before
    assert feed.updated == utc(2022, 11, 23, 8, 30)


def test_relative_guids_and_ids_are_kept_as_written_whatever_the_feed_url() -> None:
    """feedparser resolved permalink guids and Atom ids against the fetch URL: the same item
    got another id whenever the feed moved, and came back as a duplicate."""
    ids = [
        [e.source_id for e in parse("guid_as_link.xml", RSS, url=u).entries]
        + [e.source_id for e in parse("atom_id_not_a_link.xml", ATOM, url=u).entries]
        for u in ("https://feeds.example/dir/feed", "http://mirror.example/other/rss")
    ]
    assert (
        ids[0]
        == ids[1]
        == [
            "foo",
            "https://guid.example/posts/2",
            "https://guid.example/posts/3",
            "bar",
            "Correct Value",
            "tag:ids.example,2026:2",
        ]
    )


def test_a_guid_is_a_link_only_when_it_is_a_web_url() -> None:
    links = [e.link for e in parse("guid_as_link.xml").entries]
    assert links == [
        None,  # "foo" is no page, however permanent feedparser thinks it is
        "https://guid.example/posts/2",
        None,  # isPermaLink="false"
        "https://feeds.example/posts/4",  # a real relative <link> still resolves
    ]
    assert [e.link for e in parse("atom_id_not_a_link.xml", ATOM).entries] == [None, None]


@pytest.mark.parametrize(
    ("html", "shows"),
    [
        ("<p>text</p>", True),
        ('<img src="https://e.example/p.png">', True),
        ('<img alt="only alt">', False),
        ("<span></span><p><br></p>", False),
        ("<p>&nbsp;</p>", False),
        ("<p>&amp;</p>", True),
        ("", False),
        (None, False),
    ],
)
def test_shows_something(html: str | None, shows: bool) -> None:
    assert shows_something(html) is shows


def test_a_document_feedparser_crashes_on_is_read_from_a_repaired_copy() -> None:
    """feedparser 6.0.14 raises on a surrogate character reference and on markup inside
    <link>/<category>: one odd item must not lose the whole feed."""
    body = fixture("feedparser_crash.xml")
    with pytest.raises(Exception):  # noqa: B017 - feedparser's own crash, any type
        feedparser.parse(  # as parse/xml.py calls it (with our feedparser_patches)
            io.BytesIO(body),
            response_headers={"content-type": "application/rss+xml"},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    feed = parse("feedparser_crash.xml")
    assert [(e.source_id, e.title, e.link, e.tags) for e in feed.entries] == [
        ("c1", "Bad reference", None, ()),
        ("c2", "Markup in a link", "https://crash.example/2x", ("news",)),
        ("c3", "Fine", "https://crash.example/3", ()),
    ]
    assert feed.entries[0].summary == "before \ufffd after"
    assert feed.warning is not None and feed.warning.startswith("read a repaired copy: ")


def test_html_is_bounded_before_the_sanitizer_sees_it() -> None:
    """Issue 13: a fragment is cut at 256 KB and where it nests past 1,000 levels; unclosed
    <p>s and void elements do not count as nesting, so sloppy real markup is left whole."""
    from aggregator.sanitize import MAX_HTML_CHARS, MAX_HTML_DEPTH, bounded_fragment

    sloppy = "<p>one<p>two<br><img src=a.png><li>x" * 2_000
    assert bounded_fragment(sloppy) == (sloppy, False)
    deep, cut = bounded_fragment("<div>" * (MAX_HTML_DEPTH + 50) + "text")
    assert cut and deep == "<div>" * MAX_HTML_DEPTH
    long, cut = bounded_fragment("x" * (MAX_HTML_CHARS + 1))
    assert cut and len(long) == MAX_HTML_CHARS
    assert len(clean_html("&amp;" * 400_000, None)) <= MAX_HTML_CHARS  # the output too


def test_names_categories_and_json_summaries_are_plain_text_like_titles() -> None:
    """Issue 13 #7 / issue 14 #3: a double-encoding source gave "Smith &amp; Jones", and the
    validator reported "name should not contain HTML"."""
    body = (
        b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>'
        b"<item><guid>a1</guid><title>Tom &amp;amp; Jerry</title>"
        b"<dc:creator>Smith &amp;amp; Jones</dc:creator>"
        b"<category>&lt;b&gt;World&lt;/b&gt; &amp;amp; more</category></item></channel></rss>"
    )
    (entry,) = parse_feed(body, url="https://x.example/", headers={}, now=NOW).entries
    assert entry.title == "Tom & Jerry"
    assert entry.authors == ("Smith & Jones",)
    assert entry.tags == ("World & more",)
    doc = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": [{"id": "1",'
        b' "title": "x", "summary": "<b>Bold</b> claim &amp; more", "tags": ["<i>a</i>"],'
        b' "authors": [{"name": "Ann &amp; <i>Bo</i>"}]}]}'
    )
    (item,) = parse_feed(
        doc,
        url="https://x.example/f.json",
        headers={"content-type": "application/feed+json"},
        now=NOW,
    ).entries
    assert item.authors == ("Ann & Bo",)
    assert item.tags == ("a",)
    assert item.summary == "<p>Bold claim &amp; more</p>"


def test_raw_quotes_and_angle_brackets_in_links_are_percent_encoded() -> None:
    """Issue 13 #7: a link is published in attributes and readers' markup."""
    body = (
        b'<rss version="2.0"><channel><title>t</title><item><guid>a1</guid><title>x</title>'
        b"<link>https://x.example/a&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; b</link>"
        b"</item></channel></rss>"
    )
    (entry,) = parse_feed(body, url="https://x.example/", headers={}, now=NOW).entries
    assert entry.link == "https://x.example/a%22%3E%3Cscript%3Ealert(1)%3C/script%3E%20b"


def test_a_self_referring_entity_is_refused_at_once() -> None:
    """The expansion guard itself must not be a CPU bomb: each entity is sized once, and a
    cycle counts as endless (a hundred self-references nested eight deep is 100^8 calls)."""
    body = (
        '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + "&a;" * 100 + '">]>'
        '<rss version="2.0"><channel><title>&a;</title></channel></rss>'
    ).encode()
    with pytest.raises(ParseError, match="entity declarations would expand"):
        parse_feed(body, url="https://x.example/", headers={}, now=NOW)


def test_utf8_misread_as_windows_1252_is_read_right() -> None:
    """Issue 14: real feeds publish UTF-8 that went through windows-1252 once too often
    ("itâ€™s", "â€œquotedâ€\\x9d"): the W3C validator's BadCharacters in every output, and an
    invalid code point for HTML parsers. Repaired once, at parse: titles, HTML, attributes."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><guid>1</guid><title>Itâ€™s â€œRSS Podcastingâ€\x9d, regelmÃ¤ÃŸig</title>"
        '<description>&lt;p&gt;Â¿CUÃ\x81NTO? &lt;img src="https://x.example/a.png" '
        'alt="The image â€œaâ€\ufffd"&gt;&lt;/p&gt;</description></item>'
        "<item><guid>2</guid><title>PERCHÉ” and ÉTÉ » stay; smart \x93quotes\x94\x81</title>"
        "</item></channel></rss>"
    ).encode()
    first, second = parse_feed(body, url=URL, headers=RSS, now=NOW).entries
    assert first.title == "It’s “RSS Podcasting”, regelmäßig"
    image = '<img src="https://x.example/a.png" alt="The image “a”">'
    assert first.summary == f"<p>¿CUÁNTO? {image}</p>"
    # Nothing surely misread: left as written; C1 controls are windows-1252 bytes (or nothing).
    assert second.title == "PERCHÉ” and ÉTÉ » stay; smart “quotes”"
