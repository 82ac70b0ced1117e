"""The parse fast paths give exactly what the plain code gives.

``aggregator.parse`` drives feedparser through ``parse.feedparser_patches.FastPaths`` (a cheaper
``contentparams`` and ``pop``) and memoized base resolution, and the normalization keeps nh3
cleaners and URL pieces it has built. Each is checked here against the plain version:
feedparser's own methods, a fresh ``nh3.clean`` call, the uncached function.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import re
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import nh3
import pytest
from feedparser import mixin as feedparser_mixin

from aggregator import sanitize, urls
from aggregator.errors import ParseError
from aggregator.parse import feedparser_patches as tuning
from aggregator.parse import parse_feed
from aggregator.sanitize import clean_html, is_web_url, shows_something, strip_invalid_chars
from aggregator.stories import words as words_module
from aggregator.stories.words import STOPWORDS, story_words

DATA = Path(__file__).parent / "data" / "parse"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL = "https://feeds.example/dir/feed"
HEADERS = {"content-type": "text/xml"}

# Documents for the branches of feedparser's pop(): xhtml content in a <div>, base64 content,
# HTML in an RSS title, characters past ASCII (windows-1252 extensions, UTF-8 read as Latin-1),
# "&amp;" in a link, <source>, nested xml:base, the loose parser (bytes from entities), feed
# level details, enclosures given twice.
DOCS: dict[str, bytes] = {
    "atom_xhtml": b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://a.example/blog/">
<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Feed <b>title</b></div></title>
<subtitle type="html">&lt;i&gt;sub&lt;/i&gt;</subtitle>
<link href="/"/><id>urn:feed</id><updated>2026-11-20T10:00:00Z</updated>
<author><name>Ann</name><email>ann@example.org</email></author>
<entry xml:base="posts/">
  <id>urn:1</id><title type="text">One &amp; two</title>
  <link rel="alternate" href="one.html"/>
  <link rel="enclosure" href="/media/a.mp3" type="audio/mpeg" length="123"/>
  <published>2026-11-20T09:00:00+01:00</published><updated>2026-11-20T09:00:00+01:00</updated>
  <content type="xhtml" xml:base="inner/"><div xmlns="http://www.w3.org/1999/xhtml">
    <p>See <a href="x.html">x</a> <img src="i.png"/></p><svg xmlns="http://www.w3.org/2000/svg"><title>t</title></svg>
  </div></content>
  <source><id>urn:src</id><title>Source feed</title><link href="https://src.example/"/></source>
</entry>
<entry><id>urn:2</id><title type="html">&lt;b&gt;Bold&lt;/b&gt;</title>
  <summary type="html">&lt;p&gt;Teaser&lt;/p&gt;</summary>
  <content type="html">&lt;p&gt;Body &amp;amp; more&lt;/p&gt;</content></entry>
</feed>""",
    "atom03_base64": b"""<?xml version="1.0"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#">
<title>Old</title><modified>2004-01-01T00:00:00Z</modified>
<entry><title mode="escaped">&lt;b&gt;t&lt;/b&gt;</title><id>tag:x,2004:1</id>
<content type="text/html" mode="base64">PHA+SGVsbG8sIDxiPndvcmxkPC9iPjwvcD4=</content>
<summary type="application/octet-stream" mode="base64">AAEC</summary>
</entry></feed>""",
    "rss_text": """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>Caf\u00e9 \u0080 \u0093news\u0094</title><link>https://r.example/</link>
<description>A &lt;b&gt;bold&lt;/b&gt; channel</description>
<item><title>&lt;b&gt;HTML&lt;/b&gt; title &amp;amp; \u00c3\u00a9t\u00c3\u00a9</title>
<link>https://r.example/p?a=1&amp;b=2&amp;c;=3</link>
<guid isPermaLink="true">https://r.example/p/1</guid>
<description><![CDATA[<p>Long \u2014 text \u0085 with <a href="/rel">links</a></p>]]></description>
<dc:creator>jo@example.org (Jo)</dc:creator><category>news</category><category>news</category>
<enclosure url="/m/1.mp3" type="audio/mpeg" length="9"/>
<enclosure url="/m/1.mp3" type="audio/mpeg" length="9"/>
<source url="https://s.example/rss">Elsewhere</source>
<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Plain</title><guid isPermaLink="false">p-2</guid>
<description>plain text only</description></item>
</channel></rss>""".encode(),
    "loose": b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Broken &copy; feed &#169; &#x263A;</title>
<item><title>One &amp; &nbsp; &eacute; &#233; &#x4e2d;</title><link>https://l.example/1</link>
<description>&lt;p&gt;Un &lt;b&gt;closed&lt;/p&gt; &copy;</description>
<item><title>Two<br></title><link>/2</link></item>
</channel>""",
}


def _documents() -> list[tuple[str, bytes]]:
    files = sorted(p for p in DATA.iterdir() if p.suffix in (".xml", ".opml", ".html"))
    return [*DOCS.items(), *((p.name, p.read_bytes()) for p in files)]


DOCUMENTS = _documents()


def _plain(value: Any) -> Any:
    """A feedparser result as comparable values (exceptions by type and text)."""
    if isinstance(value, dict):
        return type(value).__name__, {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not isinstance(value, time.struct_time):
        return [_plain(v) for v in value]
    if isinstance(value, BaseException):
        return type(value).__name__, str(value)
    return value


def _feedparser(body: bytes, **options: Any) -> Any:
    """feedparser's result, or the exception it raised (feedparser_crash.xml)."""
    try:
        result = feedparser.parse(io.BytesIO(body), response_headers=HEADERS, **options)
    except Exception as e:
        return _plain(e)
    result.pop("headers", None)
    return _plain(result)


def _parse(body: bytes) -> Any:
    try:
        return parse_feed(body, url=URL, headers={"Content-Type": "application/xml"}, now=NOW)
    except ParseError as e:
        return str(e)


@pytest.fixture
def without_fast_paths(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A function that runs another without the fast paths: the parsers with ``ScopedBase``
    only, and feedparser's own base resolution."""

    def run(function: Any, *args: Any, **kwargs: Any) -> Any:
        with monkeypatch.context() as patch:
            api = feedparser.api
            for name in ("StrictFeedParser", "LooseFeedParser"):
                original = getattr(api, name).__bases__[-1]  # feedparser's own class
                patch.setattr(api, name, type(name, (tuning.ScopedBase, original), {}))
            for name in ("_urljoin", "make_safe_absolute_uri"):
                patch.setattr(feedparser_mixin, name, getattr(feedparser_mixin, name).__wrapped__)
            return function(*args, **kwargs)

    return run


def test_the_installed_feedparser_is_the_release_the_fast_paths_were_checked_against() -> None:
    """A new feedparser release switches the fast paths off (their ``pop`` is a copy of
    feedparser's), which would cost a quarter of every parse without a word: this fails instead.
    On a new release: diff feedparser's ``mixin.pop``/``contentparams`` against ``FastPaths``,
    carry the changes over, run this file, and set ``FAST_PATHS_FOR`` to the new version."""
    assert feedparser.__version__ == tuning.FAST_PATHS_FOR, (
        f"feedparser {feedparser.__version__} is installed; the fast paths of "
        f"aggregator/parse/feedparser_patches.py were checked against "
        f"{tuning.FAST_PATHS_FOR} and are switched off"
    )


def test_the_fast_paths_are_installed_for_their_feedparser_release() -> None:
    installed = tuning.FastPaths in feedparser.api.StrictFeedParser.__mro__
    assert installed == (feedparser.__version__ == tuning.FAST_PATHS_FOR)
    if installed:
        assert tuning.FastPaths in feedparser.api.LooseFeedParser.__mro__
        for name in ("_urljoin", "make_safe_absolute_uri"):  # feedparser's, memoized
            assert getattr(getattr(feedparser_mixin, name), "_aggregator_memoized", False)
        parsers = feedparser.api.PREFERRED_XML_PARSERS
        assert "drv_libxml2" not in parsers or importlib.util.find_spec("drv_libxml2")


@pytest.mark.parametrize(
    ("name", "body"), _documents(), ids=lambda x: x if isinstance(x, str) else ""
)
@pytest.mark.parametrize(
    "options",
    [{"sanitize_html": False, "resolve_relative_uris": False}, {}],
    ids=["as-we-call-it", "feedparser-defaults"],
)
def test_feedparser_gives_the_same_with_and_without_fast_paths(
    name: str, body: bytes, options: dict[str, bool], without_fast_paths: Any
) -> None:
    assert _feedparser(body, **options) == without_fast_paths(_feedparser, body, **options)


@pytest.mark.parametrize(
    ("name", "body"), _documents(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_parse_feed_gives_the_same_with_and_without_fast_paths(
    name: str, body: bytes, without_fast_paths: Any
) -> None:
    assert _parse(body) == without_fast_paths(_parse, body)


def test_a_contentparams_copy_is_its_deep_copy() -> None:
    params = feedparser.FeedParserDict(type="text/html", language=None, base="https://e.example/")
    fast = tuning.ContentParams(params)
    copied = copy.deepcopy(fast)
    assert copied == copy.deepcopy(params)
    assert type(copied) is feedparser.FeedParserDict
    assert fast.get("type") == params.get("type") and fast.get("mode", 0) == 0


def test_memoized_pair_gives_what_the_function_gives() -> None:
    calls: list[tuple[Any, Any]] = []

    def join(base: Any, uri: Any = None) -> Any:
        calls.append((base, uri))
        return f"{base}|{uri}"

    memoized = tuning.memoized_pair(join)
    long = "x" * (tuning.JOIN_CACHE_LONGEST + 1)
    for base, uri in [("a", "b"), ("a", "b"), ("a", None), (long, "b"), (long, "b"), (b"a", "b")]:
        assert memoized(base, uri) == join(base, uri)
    assert calls.count(("a", "b")) == 3  # the second memoized call was answered from memory
    assert calls.count((long, "b")) == 4  # a long string is never remembered


# ---------------------------------------------------------------- sanitize


def _reference_clean(fragment: str, base: str | None) -> str:
    """clean_html as one nh3.clean call per fragment, with the output stripped again."""
    options: dict[str, Any] = {
        "tags": set(sanitize.ALLOWED_TAGS),
        "attributes": sanitize.ALLOWED_ATTRIBUTES,
        "url_schemes": set(sanitize.URL_SCHEMES),
        "link_rel": sanitize.LINK_REL,
        "strip_comments": True,
    }
    url_relative: Any = ("rewrite_with_base", base) if base and is_web_url(base) else "deny"
    text = strip_invalid_chars(fragment)
    try:
        cleaned = nh3.clean(text, url_relative=url_relative, **options)
    except ValueError:
        cleaned = nh3.clean(text, url_relative="deny", **options)
    return strip_invalid_chars(cleaned).strip()


FRAGMENTS = [
    '<p>Hi <a href="../x">x</a> <img src="/i.png"> <a href="javascript:alert(1)">j</a></p>',
    "a&#11;b&#x0C;c&#xFFFF;d&#55296;e&#0;f &amp;#11; &nbsp; &Tab; &NewLine;",
    "<script>x</script><!-- c --><p>\x0bkept\ufffe</p>\ud800",
    "plain text, no markup",
]
BASES = [
    None,
    "https://e.example/a/b/",
    "https://e.example/a/b/",  # again: a kept cleaner
    "file:///etc/",
    "http://exa mple.com/",  # nh3 rejects it: relative URLs dropped
    "http://exa mple.com/",
    "https://e.example/" + "d/" * 1500,  # past the kept length
]


@pytest.mark.parametrize("fragment", FRAGMENTS)
@pytest.mark.parametrize("base", BASES)
def test_clean_html_is_one_nh3_clean(fragment: str, base: str | None) -> None:
    assert clean_html(fragment, base) == _reference_clean(fragment, base)


def test_strip_invalid_chars_is_the_pattern_everywhere() -> None:
    pattern = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
    for code in [*range(0x10000), 0x1F600, 0xE0001, 0x10FFFF, 0x10FFFE]:
        text = f"a{chr(code)}b"
        assert strip_invalid_chars(text) == pattern.sub("", text), hex(code)


def test_the_mojibake_prefilter_never_skips_what_the_full_pattern_finds() -> None:
    """`repair_mojibake` looks for a lead character then a continuation one before it runs
    the slower alternation: every two-character start of the full pattern must pass it."""
    continuations = [chr(code) for code in range(0x80, 0xC0)]
    continuations += list(sanitize._CP1252_HIGH.values())
    lead_run = ["", "\xe9", "\u2019 ÉTÉ » "]  # non-ASCII before it, none of it misread
    for lead in map(chr, range(0xA0, 0x100)):
        for cont in continuations:
            for before in lead_run:
                for after in ("", cont, cont * 3, "\u20ac" + cont):
                    text = before + lead + cont + after
                    if sanitize._SURELY_MISREAD.search(text):
                        assert sanitize._MAYBE_MISREAD.search(text), repr(text)
    assert sanitize.repair_mojibake("\u2019 ÉTÉ » " * 500 + "MartÃ\xadn") == (
        "\u2019 ÉTÉ » " * 500 + "Martín"
    )


def _story_words_reference(title: str) -> tuple[str, ...]:
    """story_words as it was before its ASCII fast path: NFKD and the pattern for every word."""
    text = unicodedata.normalize("NFKD", title.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    found: list[str] = []
    for match in words_module._WORD.finditer(text):
        word = re.sub(r"['’]s$", "", match.group()).replace("’", "'")
        if len(word) <= 1 or word in STOPWORDS or words_module._DATE_NUMBER.match(word):
            continue
        word = words_module._plural_folded(word)
        if word not in found:
            found.append(word)
    return tuple(found[: words_module.MAX_HEADLINE_WORDS])


@pytest.mark.parametrize(
    "title",
    [
        "Putin's talks with Kim Jong Un's envoy",
        "Kim Jong Un’s visit: 2014’s biggest",
        "Café owner's “final” ﬁle, Ⅻ İstanbul",
        "It’S x'y's O'Neill’s",
        "Martín Ågård résumé naïve",
    ],
)
def test_story_words_fast_path_gives_the_reference_words(title: str) -> None:
    """ASCII headlines skip NFKD, and words without an apostrophe the possessive pattern."""
    assert story_words(title) == _story_words_reference(title)


@pytest.mark.parametrize(
    ("cleaned", "expected"),
    [
        ("", False),
        ("x", True),
        ("<p> x</p>", True),
        ("<p>&nbsp;</p>", False),
        ("<p>&nbsp;&amp;</p>", True),
        ("&#32;<br>", False),
        ("<p><br></p> \n", False),
        ("<p>\u2003</p>", False),
        ('<p><img src="a.png"></p>', True),
        ('<img alt="">', False),
        ("<p>a < b", True),
        ("<unclosed", True),
    ],
)
def test_shows_something(cleaned: str, expected: bool) -> None:
    assert shows_something(cleaned) is expected


# ---------------------------------------------------------------- urls


@pytest.mark.parametrize(
    "url",
    [
        "https://Example.COM:443/a/./b/../c?utm_source=x&b=2&a=1#frag",
        "https://Example.COM:443/a/./b/../c?utm_source=x&b=2&a=1#frag",  # again: remembered
        "http://example.com:8080/",
        "http://example.com:99999/",  # a bad port: None, and not remembered
        "http://example.com:99999/",
        "http://[::1]:80/x",
        "https://b\u00fccher.example/",
        "http://" + "a" * 300 + ".example/x",  # a netloc past the remembered length
        "http://" + "a" * 300 + ":99999/",
        "http://user:pw@host.example/?",
    ],
)
def test_canonical_url_is_the_same_remembered_or_not(url: str) -> None:
    """A netloc of up to 255 characters is normalized once and remembered; behind a userinfo
    of 300 characters (which the key drops) the same host is normalized afresh every time."""
    key = urls.canonical_url(url)
    assert urls.canonical_url(url) == key  # remembered (a bad port, a ValueError, is not)
    scheme, rest = url.split("://", 1)
    assert urls.canonical_url(f"{scheme}://{'u' * 300}@{rest}") == key
