"""OutputFeed -> Atom 1.0 (RFC 4287) bytes, built with lxml so escaping is never hand-written.

lxml rather than stdlib ElementTree or feedgen: it escapes every value, refuses what XML cannot
hold, and serializes the same tree to the same bytes.
"""

from __future__ import annotations

import hashlib
import html
from collections import defaultdict
from datetime import datetime

from lxml import etree

from .. import PROJECT_URL
from ..types import OutputEntry, OutputFeed, SourceFeed
from .common import (
    ATOM_NS,
    as_utc,
    body_html,
    clean,
    display_title,
    href,
    is_http_url,
    join_base,
    looks_like_markup,
    rfc3339,
    site_link,
    unique_entries,
)


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """Append an Atom element; every text and attribute value goes through ``clean``
    (characters XML 1.0 forbids would make the whole file unreadable)."""
    el = etree.SubElement(
        parent, etree.QName(ATOM_NS, tag), {k: clean(v) for k, v in attrs.items()}
    )
    if text is not None:
        el.text = clean(text)
    return el


def _text(parent: etree._Element, tag: str, text: str) -> etree._Element:
    """A text construct: type="text", or the same text escaped as type="html" when a reader
    that takes text for HTML would show it differently ("alpha&omega", "</b>")."""
    text = clean(text)  # what is written is what is judged
    if looks_like_markup(text):
        return _sub(parent, tag, html.escape(text, quote=False), type="html")
    return _sub(parent, tag, text, type="text")


def _author(parent: etree._Element, name: str) -> None:
    """A Person construct has exactly one atom:name (RFC 4287 3.2)."""
    author = _sub(parent, "author")
    _sub(author, "name", name)


def _source(parent: etree._Element, source: SourceFeed, fallback_updated: str) -> None:
    """atom:source with at least id, title and updated (RFC 4287 4.2.11)."""
    el = _sub(parent, "source")
    _sub(el, "id", source.id)
    _text(el, "title", source.title)
    _sub(el, "updated", rfc3339(source.updated) if source.updated else fallback_updated)
    if is_http_url(source.url):  # a local file:// feed's path is not published
        _sub(el, "link", rel="self", href=href(source.url))
    if source.link:
        _sub(el, "link", rel="alternate", href=href(source.link))


def updated_times(entries: list[OutputEntry]) -> dict[str, datetime]:
    """Each entry's atom:updated, by id: its own, to the second, unless another entry has the
    same second; then each of them gets a fraction of it drawn from its own id.

    A merged feed's entries often share a second (all those a feed gave without dates carry
    the time of the fetch that found them), which the W3C validator reports (DuplicateUpdated)
    and some readers take as one update. The fraction depends on nothing but the entry's id,
    so rebuilds give the same bytes and an entry's value stays put while it has twins.
    """
    by_second: dict[datetime, list[OutputEntry]] = defaultdict(list)
    for entry in entries:
        by_second[as_utc(entry.updated).replace(microsecond=0)].append(entry)
    times: dict[str, datetime] = {}
    for second, group in by_second.items():
        if len(group) == 1:
            times[group[0].id] = second
            continue
        taken: set[int] = set()
        for entry in sorted(group, key=lambda e: (_fraction(e.id), e.id)):
            micro = _fraction(entry.id)
            while micro in taken or micro == 0:  # distinct, and never the bare second
                micro = (micro + 1) % 1_000_000
            taken.add(micro)
            times[entry.id] = second.replace(microsecond=micro)
    return times


def _fraction(entry_id: str) -> int:
    """Microseconds drawn from an id: stable everywhere (not Python's salted hash())."""
    return (
        int.from_bytes(hashlib.sha256(entry_id.encode("utf-8", "replace")).digest()[:4]) % 1_000_000
    )


def _entry(parent: etree._Element, entry: OutputEntry, updated_at: datetime) -> None:
    """One atom:entry; content/summary are type="html" with the markup as escaped text."""
    el = _sub(parent, "entry")
    updated = rfc3339(updated_at, fraction=True)
    _sub(el, "id", entry.id)
    _text(el, "title", display_title(entry))
    _sub(el, "updated", updated)
    _sub(el, "published", rfc3339(entry.published))
    for name in entry.authors:
        if clean(name).strip():
            _author(el, name)
    if entry.link:
        _sub(el, "link", rel="alternate", href=href(entry.link))
    for enc in entry.enclosures:
        attrs = {"rel": "enclosure", "href": href(enc.url)}
        if enc.type:
            attrs["type"] = enc.type
        if enc.length is not None and enc.length >= 0:
            attrs["length"] = str(enc.length)
        _sub(el, "link", **attrs)
    for tag in entry.tags:
        if clean(tag).strip():
            _sub(el, "category", term=tag)
    content = body_html(entry) if entry.coverage else entry.content
    if content:
        if entry.summary and entry.summary != content:
            _sub(el, "summary", entry.summary, type="html")
        _sub(el, "content", content, type="html")
    elif entry.link:
        # RFC 4287 4.1.2: without atom:content the alternate link carries the entry; an item
        # with no text at all is summarized by its title, so readers show something.
        if entry.summary:
            _sub(el, "summary", entry.summary, type="html")
        else:
            _text(el, "summary", display_title(entry))
    else:
        # No content and no alternate link would break the same MUST, so the summary (or the
        # title) becomes the content instead of being written as a summary.
        if entry.summary:
            _sub(el, "content", entry.summary, type="html")
        else:
            _text(el, "content", display_title(entry))
    _source(el, entry.source, updated)


def render_atom(feed: OutputFeed) -> bytes:
    """Serialize the merged feed as Atom 1.0; identical input always yields identical bytes."""
    root = etree.Element(etree.QName(ATOM_NS, "feed"), nsmap={None: ATOM_NS})
    _sub(root, "id", feed.id)
    _text(root, "title", feed.title)
    entries = unique_entries(feed.entries)
    times = updated_times(entries)
    # The newest entry's (a fraction later than feed.updated when it shares its second).
    _sub(root, "updated", rfc3339(max([as_utc(feed.updated), *times.values()]), fraction=True))
    # Every entry must resolve to an author (RFC 4287 4.1.1): one feed-level author covers all.
    _author(root, feed.title)
    gen_attrs = {"uri": PROJECT_URL}
    if feed.generator_version:
        gen_attrs["version"] = feed.generator_version
    _sub(root, "generator", "aggregator", **gen_attrs)
    if feed.base_url:
        _sub(
            root,
            "link",
            rel="self",
            type="application/atom+xml",
            href=join_base(feed.base_url, "atom.xml"),
        )
        if feed.hub:  # WebSub discovery: a hub link beside the self link (W3C WebSub 4)
            _sub(root, "link", rel="hub", href=href(feed.hub))
    # The page the feed belongs to; without it feedparser offers the tag: id as the link.
    _sub(root, "link", rel="alternate", type="text/html", href=site_link(feed))
    # No fh:complete: the output is a sliding window, not a complete feed (RFC 5005).
    for entry in entries:
        _entry(root, entry, times[entry.id])
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
