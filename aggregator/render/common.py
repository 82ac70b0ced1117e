"""Helpers shared by the serializers: text cleaning, date formats, URL joining, id uniqueness."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from html.entities import name2codepoint
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from ..types import OutputEntry, OutputFeed
from ..urls import published_url

log = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"

# Characters XML 1.0 forbids (C0 except TAB/LF/CR, U+FFFE, U+FFFF), plus lone surrogates,
# which cannot be encoded as UTF-8 at all and would make the final .encode() fail.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """Drop characters that XML 1.0 cannot carry, so one bad title never breaks the output."""
    return _NOT_XML_CHAR.sub("", text)


NO_TEXT = "(no text)"  # what an item with neither text nor title says it is
TITLE_EXCERPT = 80  # characters of its text an untitled item is titled with, at most

_SPACE = re.compile(r"\s+")


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: JSON Feed's ``summary`` is text, ours is sanitized HTML."""
    if not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return ""
    return _SPACE.sub(" ", root.text_content()).strip()


def display_title(entry: OutputEntry) -> str:
    """The title as written in Atom and RSS: the item's own, else the start of its text (as
    readers show an untitled item), else NO_TEXT. A blank title is the validator's NotBlank."""
    title = clean(entry.title)
    if title.strip():
        return title
    text = html_to_text(clean(entry.content or entry.summary or ""))
    if len(text) <= TITLE_EXCERPT:
        return text or NO_TEXT
    cut = text[: TITLE_EXCERPT - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,.;:") + "…"


# An end tag, a start tag, or an entity or character reference HTML knows: in text, what a
# reader that (wrongly) reads text as HTML would show differently (the validator:
# ContainsUndeclaredHTML, ContainsHTML).
_MARKUP = re.compile(r"</?[A-Za-z]|&(#[0-9]|#[xX][0-9A-Fa-f]|[A-Za-z][A-Za-z0-9]*)")


def looks_like_markup(text: str) -> bool:
    """True when plain ``text`` holds something HTML would read as a tag or a reference."""
    for match in _MARKUP.finditer(text):
        name = match.group(1)
        if name is None or not name[0].isalpha() or name in name2codepoint or name == "apos":
            return True
    return False


def as_utc(dt: datetime) -> datetime:
    """Normalize to UTC; a naive datetime breaks the types contract, so it is taken as UTC."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def rfc3339(dt: datetime, *, fraction: bool = False) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``: RFC 3339 with an explicit Z; seconds keep bytes stable.

    ``fraction``: microseconds too, when there are any (Atom's updated, told apart per entry).
    """
    # isoformat() pads the year to 4 digits, unlike strftime("%Y") on glibc.
    utc = as_utc(dt).replace(tzinfo=None)
    if fraction and utc.microsecond:
        return utc.isoformat(timespec="microseconds") + "Z"
    return utc.replace(microsecond=0).isoformat() + "Z"


def rfc822(dt: datetime) -> str:
    """RFC 822 date with a 4-digit year and a matching day name, in GMT (as RSS 2.0 wants)."""
    return format_datetime(as_utc(dt), usegmt=True)


def join_base(base_url: str, name: str) -> str:
    """The public URL of an output file; tolerates a base_url with or without a trailing slash."""
    return href(base_url.rstrip("/") + "/" + name)


# Where `aggregator serve` shows index.html unless told otherwise (--host, --port): the page
# named as the feeds' site when neither output.link nor output.base_url says where it is. RSS
# requires a channel <link>, and this one is true for the out-of-the-box setup ("about:blank",
# used before, is no web page and no registered scheme). Publishing elsewhere needs base_url.
LOCAL_PAGE = "http://127.0.0.1:8080/"


def href(url: str) -> str:
    """A link as written in the outputs: XML-safe, and a URI, not an IRI (issue 14)."""
    return published_url(clean(url))


def site_link(feed: OutputFeed) -> str:
    """The page the merged feed belongs to, for RSS <link>, Atom's alternate and home_page_url.

    output.link, else base_url (index.html is written beside the feeds, so the directory is
    the page), else an http(s) feed id, else LOCAL_PAGE.
    """
    for candidate in (feed.link, feed.base_url, feed.id):
        if candidate and is_http_url(candidate):
            return href(candidate)
    return LOCAL_PAGE


def is_http_url(value: str) -> bool:
    """True for an absolute http(s) URL with a host (what may be a permalink guid)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def unique_entries(entries: Iterable[OutputEntry]) -> list[OutputEntry]:
    """Keep the first entry of each id, in the given order: ids must be unique (RFC 4287 4.2.6).

    The store should never hand us duplicates; if it does, the output stays valid and the
    problem is logged instead of producing a feed that readers de-duplicate unpredictably.
    """
    seen: set[str] = set()
    out: list[OutputEntry] = []
    for entry in entries:
        key = clean(entry.id)  # compare what is written, not what was stored
        if key in seen:
            log.warning("render: duplicate entry id %r dropped", entry.id)
            continue
        seen.add(key)
        out.append(entry)
    return out


def coverage_count(copies: int) -> str:
    """What follows an outlet's name when it carried several copies: " (3)"."""
    return f" ({copies})" if copies > 1 else ""


def coverage_html(entry: OutputEntry) -> str:
    """The "Also reported by" paragraph: each other outlet once, linked to one of its copies.

    Who is listed, with which link and count, is decided by the store (`outlets_of`), so the
    four outputs agree; this only writes it.
    """
    parts = []
    for copy in entry.coverage:
        name = html.escape(clean(copy.feed.title), quote=False)
        if copy.link and is_http_url(copy.link):
            title = html.escape(clean(copy.title), quote=True)
            href = html.escape(clean(copy.link), quote=True)
            name = f'<a href="{href}" title="{title}">{name}</a>'
        parts.append(name + coverage_count(copy.copies))
    return f"<p>Also reported by: {', '.join(parts)}</p>" if parts else ""


def body_html(entry: OutputEntry) -> str | None:
    """The entry's HTML as readers get it: content (or summary), then who else reported it."""
    body = entry.content or entry.summary
    if not entry.coverage:
        return body
    return (body or "") + coverage_html(entry)
