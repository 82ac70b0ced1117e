"""Pure dedupe decisions, table-driven."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator import urls
from aggregator.dedupe import fingerprint, output_id, scoped_id
from aggregator.types import Entry
from aggregator.urls import feed_source_id

WHEN = datetime(2026, 11, 25, 9, tzinfo=UTC)


def entry(source_id: str = "a", **changes: object) -> Entry:
    values: dict[str, object] = {
        "source_id": source_id,
        "title": "Title",
        "link": "https://e.x/a",
        "summary": "<p>s</p>",
        "published": WHEN,
        "updated": WHEN,
    }
    values.update(changes)
    return Entry(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"title": "x"},
        {"link": "https://e.x/b"},
        {"summary": "<p>t</p>"},
        {"content": "<p>c</p>"},
        {"authors": ("Ann",)},
        {"tags": ("world",)},
        {"updated": datetime(2026, 11, 25, 10, tzinfo=UTC)},
    ],
)
def test_fingerprint_sees_what_readers_see(change: dict[str, object]) -> None:
    assert fingerprint(entry(**change)) != fingerprint(entry())


def test_fingerprint_ignores_clamped_dates() -> None:
    later = datetime(2026, 11, 26, tzinfo=UTC)
    assert fingerprint(entry(date_clamped=True)) == fingerprint(
        entry(date_clamped=True, published=later, updated=later)
    )


@pytest.mark.parametrize(
    ("source_id", "kept"),
    [
        ("tag:example.org,2026:1", True),
        ("https://example.org/a/1", True),
        ("urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", True),
        ("12345", False),
        ("sha1:abc def", False),
        ("/relative/path", False),
    ],
)
def test_output_ids_keep_absolute_ids_and_mint_the_rest(source_id: str, kept: bool) -> None:
    feed = feed_source_id("https://feed.example/rss")
    result = output_id(source_id, feed)
    assert (result == source_id) is kept
    if not kept:
        assert result.startswith("urn:uuid:")
        assert result == output_id(source_id, feed)  # deterministic
        assert result != output_id(source_id, feed_source_id("https://other.example/rss"))


def test_scoped_ids_differ_per_feed() -> None:
    a, b = feed_source_id("https://a/"), feed_source_id("https://b/")
    assert scoped_id("https://x/1", a) != scoped_id("https://x/1", b)


@pytest.mark.parametrize(
    ("source_id", "kept"),
    [
        ("tag:example.com,2026:1", True),
        ("https://example.com/a?b=1", True),
        ("urn:uuid:6f1c3f0e-51a2-4c57-9d7e-1f3e2b7a9c10", True),
        ("javascript:alert(1)//http://x", False),  # issue 13: not an Atom <id> as is
        ("data:text/html,<script>alert(1)</script>", False),
        ('https://example.com/"><script>', False),  # characters no IRI may hold
        ("x-made-up:42", False),
        ("42", False),
    ],
)
def test_only_safe_absolute_ids_are_published_as_is(source_id: str, kept: bool) -> None:

    published = output_id(source_id, "urn:uuid:feed")
    assert (published == source_id) is kept
    if not kept:
        assert published.startswith("urn:uuid:")


@pytest.mark.parametrize(
    ("source_id", "published"),
    [
        # IRIs and URLs out of their normal form: the W3C validator's InvalidIRI, InvalidFullLink
        # and NonCanonicalURI, from real feeds (issue 14). Published as the same URI, normalized.
        (
            "http://www.dw.de/原军委副主席/a-18317576?maca=chi-rss",
            "http://www.dw.de/%E5%8E%9F%E5%86%9B%E5%A7%94%E5%89%AF%E4%B8%BB%E5%B8%AD/a-18317576?maca=chi-rss",
        ),
        ("https://localhost:8000", "https://localhost:8000/"),
        (
            "https://www.liberal.gr/news/a%2Db%2dc/298923",
            "https://www.liberal.gr/news/a-b-c/298923",
        ),
        ("HTTP://News.Example.COM:80/a/./b/../c?q=%7e", "http://news.example.com/a/c?q=~"),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://example.com/a%2fb", "https://example.com/a%2Fb"),
        ("tag:example.org,2026:a%2db", "tag:example.org,2026:a-b"),
        # Not valid ids at all: minted.
        ("tag:gmanetwork.com:news_story-807341", None),  # a tag needs a date (RFC 4151)
        ("urn:uuid:not-a-uuid", None),
        ("urn:x:1", None),  # a URN namespace has 2 to 32 characters
        ("http:///no/host", None),
        ("http://x.example/%E0%A4%A", None),  # escapes that are not UTF-8
    ],
)
def test_ids_are_published_in_their_normal_form_or_minted(
    source_id: str, published: str | None
) -> None:
    result = output_id(source_id, "urn:uuid:feed")
    if published is None:
        assert result == scoped_id(source_id, "urn:uuid:feed")
    else:
        assert result == published
        assert output_id(result, "urn:uuid:other") == result  # a fixed point


@given(
    st.text(alphabet=st.sampled_from("aZ09-._~:/?#[]@!$&'()*+,;=% é\u00a0%2F%7e%41"), max_size=40)
)
def test_the_normal_form_fast_path_changes_nothing(rest: str) -> None:
    """`urls._normal_part` returns text already in normal form as it is; the result is what
    the escape-by-escape path gives."""
    value = "https://Host.example/" + rest
    fast = urls.normal_uri(value)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(urls, "_already_normal", lambda safe: re.compile("(?!)"))
        slow = urls.normal_uri(value)
    assert fast == slow
