"""OutputFeed -> RSS 2.0 bytes, built with lxml (escaping by the serializer, never by hand)."""

from __future__ import annotations

import re

from lxml import etree

from .. import PROJECT_URL
from ..types import OutputEntry, OutputFeed
from .common import (
    ATOM_NS,
    DC_NS,
    body_html,
    clean,
    display_title,
    href,
    is_http_url,
    join_base,
    rfc822,
    site_link,
    unique_entries,
)

# RSS requires <enclosure type>; this is the honest value when the source did not say.
UNKNOWN_MIME_TYPE = "application/octet-stream"


def _sub(
    parent: etree._Element, tag: str | etree.QName, text: str | None = None, **attrs: str
) -> etree._Element:
    """Append an element; every text and attribute value goes through ``clean``."""
    el = etree.SubElement(parent, tag, {k: clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = clean(text)
    return el


# "&" and "<" in plain text as the RSS Profile asks (&#x26; and &#x3C;, not &amp; and &lt;):
# the same text to an XML parser, and a sign to readers and the validator (ContainsHTML,
# CharacterData) that it is text, not escaped HTML. Item descriptions are HTML, and keep theirs.
_DESCRIPTION = re.compile(rb"(<description>.*?</description>)", re.S)
_TEXT = re.compile(rb">([^<]+)<")


def _profile_escapes(match: re.Match[bytes]) -> bytes:
    text = match.group(1).replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")
    return b">" + text + b"<"


def _plain_text_escaped(xml: bytes) -> bytes:
    head, item, items = xml.partition(b"<item>")  # the channel's own elements are all text
    pieces = _DESCRIPTION.split(items)
    for i in range(0, len(pieces), 2):  # outside the items' descriptions
        pieces[i] = _TEXT.sub(_profile_escapes, pieces[i])
    return _TEXT.sub(_profile_escapes, head) + item + b"".join(pieces)


def _item(channel: etree._Element, entry: OutputEntry) -> None:
    """One <item>; the HTML goes in <description> as escaped text."""
    item = _sub(channel, "item")
    _sub(item, "title", display_title(entry))
    link = href(entry.link) if entry.link else None
    if link:
        _sub(item, "link", link)
    html = body_html(entry)
    if html:
        _sub(item, "description", html)
    # isPermaLink defaults to true, so it is always written explicitly.
    permalink = is_http_url(entry.id) and entry.id == link
    _sub(item, "guid", entry.id, isPermaLink="true" if permalink else "false")
    _sub(item, "pubDate", rfc822(entry.published))
    for name in entry.authors:
        if clean(name).strip():
            _sub(item, etree.QName(DC_NS, "creator"), name)
    for tag in entry.tags:
        if clean(tag).strip():
            _sub(item, "category", tag)
    if entry.enclosures:
        # RSS 2.0 allows one enclosure per item; the first one is the primary media.
        enc = entry.enclosures[0]
        length = enc.length if enc.length is not None and enc.length >= 0 else 0
        _sub(
            item,
            "enclosure",
            url=href(enc.url),
            length=str(length),
            type=enc.type or UNKNOWN_MIME_TYPE,
        )
    # <source> names the feed an item came from; it requires a url, and a local file:// feed's
    # path is not published.
    if is_http_url(entry.source.url):
        _sub(item, "source", entry.source.title, url=href(entry.source.url))


def render_rss(feed: OutputFeed) -> bytes:
    """Serialize the merged feed as RSS 2.0; identical input always yields identical bytes."""
    root = etree.Element("rss", {"version": "2.0"}, nsmap={"atom": ATOM_NS, "dc": DC_NS})
    channel = _sub(root, "channel")
    _sub(channel, "title", feed.title)
    _sub(channel, "link", site_link(feed))  # required by RSS 2.0
    _sub(channel, "description", feed.title)
    _sub(channel, "lastBuildDate", rfc822(feed.updated))
    version = f" {feed.generator_version}" if feed.generator_version else ""
    _sub(channel, "generator", f"aggregator{version} ({PROJECT_URL})")
    if feed.base_url:
        _sub(
            channel,
            etree.QName(ATOM_NS, "link"),
            rel="self",
            type="application/rss+xml",
            href=join_base(feed.base_url, "rss.xml"),
        )
        if feed.hub:
            _sub(channel, etree.QName(ATOM_NS, "link"), rel="hub", href=href(feed.hub))
    for entry in unique_entries(feed.entries):
        _item(channel, entry)
    xml = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return _plain_text_escaped(xml)
