"""RSS and Atom through feedparser: its dicts turned into our entries, links resolved here.

feedparser's own sanitizer and URI resolution are off (slow and incomplete): every HTML field is
sanitized and absolutized in one nh3 pass (sanitize.clean_html), against xml:base and the fetch
URL. Ids are taken as written: feedparser is not told the fetch URL, so it cannot resolve a
relative guid against it (the same item would get a new id whenever the feed moved).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import feedparser  # type: ignore[import-untyped]

from aggregator.errors import ParseError
from aggregator.parse.feedparser_patches import FastGet, memoized_pair
from aggregator.parse.hints import _hints
from aggregator.parse.normalize import (
    _clamp,
    _cut_note,
    _dedupe,
    _feed_date,
    _first_web_url,
    _headline,
    _length,
    _media_type,
    _oversized,
    _source_id,
    _unique,
    _web_url,
)
from aggregator.parse.sniff import (
    _ENTRY_TAG,
    _HTML_TYPES,
    _PLAIN_TYPES,
    MAX_DOCUMENT_ENTRIES,
    _bozo_text,
    _format_of_root,
    _prepare_xml,
    _refuse_entity_expansion,
    _repaired,
    _require_feed_root,
    _root_tag,
    _too_many,
)
from aggregator.sanitize import (
    clean_html,
    collapse_space,
    is_web_url,
    plain_text,
    shows_something,
    strip_invalid_chars,
    text_to_html,
)
from aggregator.types import Enclosure, Entry, ParsedFeed
from aggregator.urls import absolute_url, canonical_url

_EMAIL_NAME = re.compile(r"^\s*(\S+@\S+)\s*\((.+)\)\s*$")  # "a@b.c (Name)", RSS style


_NAME_EMAIL = re.compile(r"^\s*(.+?)\s*<\s*(\S+@\S+)\s*>\s*$")  # "Name <a@b.c>"


def _parse_xml(
    body: bytes, *, url: str, headers: Mapping[str, str], media_type: str, now: datetime
) -> ParsedFeed:
    """RSS/Atom/RDF through feedparser, from a BytesIO so it never opens files or URLs
    (feedparser.parse given a string that looks like a path or URL would)."""
    items = sum(1 for _ in _ENTRY_TAG.finditer(body))
    if items > MAX_DOCUMENT_ENTRIES:
        raise _too_many(items)
    _refuse_entity_expansion(body)
    # Without a Content-Type (file:// feeds) feedparser flags every document as bozo; the
    # generic XML type makes it take the encoding from the BOM or XML declaration instead.
    content_type = headers.get("content-type") or "application/xml"
    body, content_type, encoding_note = _prepare_xml(body, content_type)
    # No Content-Location: feedparser would resolve relative guids and ids against it, so an
    # entry's id would change with the URL the feed happens to be fetched from. Links and
    # xml:base are resolved here instead (``_base_of``, ``_web_url``).
    response_headers = {"content-type": content_type}
    if headers.get("content-language"):
        response_headers["content-language"] = headers["content-language"]
    try:
        d = _feedparser(body, response_headers)
    except Exception as e:  # e.g. 6.0.14 raises UnicodeDecodeError on a garbled declaration
        repaired = _repaired(body)
        try:
            if repaired is None:
                raise
            d = _feedparser(repaired, response_headers)
        except Exception:
            raise ParseError(f"not a feed: feedparser could not read it: {_bozo_text(e)}") from e
        body = repaired
        encoding_note = f"read a repaired copy: feedparser failed with {_bozo_text(e)}"
        if d.get("bozo"):
            encoding_note += f"; {_bozo_text(d.get('bozo_exception'))}"
        d["bozo"] = False
    version = str(d.get("version") or "")
    raw_entries = d.get("entries") or []
    if len(raw_entries) > MAX_DOCUMENT_ENTRIES:  # what the parser made, whatever the markup
        raise _too_many(len(raw_entries))
    root = _root_tag(body)
    if not version and not raw_entries:
        _require_feed_root(root, d, body, media_type)  # an empty feed, or ParseError
    warning = _bozo_text(d.get("bozo_exception")) if d.get("bozo") else encoding_note

    feed = d.get("feed") or {}
    feed_link = _web_url(url, feed.get("link"))
    is_atom = version.startswith("atom")
    feed_authors = _authors(feed) if is_atom else ()  # Atom entries inherit the feed's authors
    entries = _dedupe(
        _xml_entry(FastGet(raw), url=url, feed_link=feed_link, feed_authors=feed_authors, now=now)
        for raw in raw_entries
    )
    updated, _ = _clamp(_feed_date(feed, "updated") or _feed_date(feed, "published"), now)
    cut = sum(
        1
        for raw in raw_entries
        if _oversized(
            raw.get("title"),
            *(c.get("value") for c in raw.get("content") or [] if isinstance(c, Mapping)),
            (raw.get("summary_detail") or {}).get("value"),
        )
    )
    warning = "; ".join(note for note in (warning, _cut_note(cut)) if note) or None
    feed_id = collapse_space(str(feed.get("id") or "")) if is_atom else ""
    return ParsedFeed(
        format=version or _format_of_root(root),
        title=_detail_title(feed) or None,
        link=feed_link,
        feed_id=feed_id or None,
        updated=updated,
        entries=entries,
        warning=warning,
        hints=_hints(feed, body),
    )


def _feedparser(body: bytes, response_headers: Mapping[str, str]) -> Any:
    return feedparser.parse(
        io.BytesIO(body),
        response_headers=dict(response_headers),
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def _xml_entry(
    raw: Mapping[str, Any],
    *,
    url: str,
    feed_link: str | None,
    feed_authors: tuple[str, ...],
    now: datetime,
) -> Entry | None:
    """One feedparser entry as an Entry, or None when it carries nothing usable."""
    link = _entry_link(raw, url)
    page = url if is_web_url(url) else None
    # The first web URL of link, feed_link and url (the first two are web URLs or None).
    fallback_base = link or feed_link or page

    content_raw = _pick_content(raw.get("content") or [])
    content = _detail_html(content_raw, url, fallback_base) if content_raw else None
    summary = None
    summary_raw = raw.get("summary_detail")  # absent when feedparser copied content to summary
    if summary_raw and summary_raw.get("value"):
        summary = _detail_html(summary_raw, url, fallback_base)
    if summary == content:
        summary = None

    # feedparser has applied each enclosure's xml:base (feedparser_patches: _start_enclosure).
    enclosures = _xml_enclosures(raw, page or fallback_base)
    title = _detail_title(raw)
    if not (
        title
        or link
        or content
        or summary
        or enclosures
        or collapse_space(str(raw.get("id") or ""))
    ):
        return None  # an empty shell, e.g. left over by the loose parser

    published, clamped_p = _clamp(
        _feed_date(raw, "published") or _feed_date(raw, "updated") or _feed_date(raw, "created"),
        now,
    )
    updated, clamped_u = _clamp(_feed_date(raw, "updated"), now)
    raw_text = str((content_raw or {}).get("value") or (summary_raw or {}).get("value") or "")
    return Entry(
        source_id=_source_id(raw.get("id"), link, str(raw.get("title") or ""), raw_text),
        title=title,
        link=link,
        canonical_url=canonical_url(link),
        summary=summary or None,
        content=content or None,
        authors=_authors(raw) or feed_authors,
        tags=_unique(
            plain_text(str(t.get("term") or t.get("label") or "")) for t in raw.get("tags") or []
        ),
        enclosures=enclosures,
        published=published,
        updated=updated or published,
        date_clamped=clamped_p or clamped_u,
    )


def _entry_link(raw: Mapping[str, Any], url: str) -> str | None:
    """The entry's link, absolute; an id feedparser copied into ``link`` only if it is a URL.

    feedparser fills a missing link with the guid/id (``guidislink``). An RSS permalink guid
    or an Atom id that is an http(s) URL is a fair link, but "post-17" or a tag: URI is not,
    and resolving it against the feed URL would invent a page that does not exist.

    feedparser has already resolved the link against the xml:base in force on the link element;
    what is still relative is relative to the document, so it is resolved against ``url`` only
    (against the title's base as well, ``posts/a.html`` under ``xml:base="posts/"`` became
    ``posts/posts/a.html``).
    """
    value = raw.get("link")
    if raw.get("guidislink") and isinstance(value, str) and value == raw.get("id"):
        value = strip_invalid_chars(value).strip()
        return value if is_web_url(value) and " " not in value else None
    return _web_url(url, value)


def _pick_content(contents: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The content to keep: HTML over plain text, then the longest, then the first."""
    usable = [c for c in contents if c.get("value") and _kind(c.get("type")) is not None]
    if not usable:
        return None
    return max(usable, key=lambda c: (_kind(c.get("type")) == "html", len(str(c["value"]))))


def _kind(content_type: object) -> str | None:
    """'html', 'text' or None (binary or other media we do not show) for a feedparser type."""
    t = str(content_type or "text/html").lower()
    if t in _HTML_TYPES:
        return "html"
    if t in _PLAIN_TYPES or t.startswith("text/"):
        return "text"
    return None


def _detail_html(detail: Mapping[str, Any], url: str, fallback_base: str | None) -> str | None:
    """A feedparser text construct as sanitized HTML; text/plain is escaped, not parsed."""
    value = str(detail.get("value") or "")
    kind = _kind(detail.get("type"))
    if kind is None or not value.strip():
        return None
    if kind == "text":
        return text_to_html(value) or None
    base = _first_web_url(_base_of(detail, url), fallback_base)
    cleaned = clean_html(value, base)
    return cleaned if shows_something(cleaned) else None


def _detail_title(node: Mapping[str, Any]) -> str:
    """A title as plain text, tags stripped whatever type it declares.

    RSS titles are HTML in the wild however feedparser labels them, and many readers render
    titles as HTML: a `<script>` that survives here as "text" is a script somewhere downstream.
    """
    return _headline(plain_text(str(node.get("title") or "")))


def _base_of(detail: object, url: str) -> str | None:
    """The base URL of a feedparser detail dict: its xml:base resolved against the document
    URL, else the document URL (None when there is no detail)."""
    if isinstance(detail, Mapping):
        base = detail.get("base")
        return _resolved_base(url, str(base)) if base else url
    return None


def _resolve_base(url: str, base: str) -> str | None:
    return absolute_url(url, strip_invalid_chars(base))


_resolved_base = memoized_pair(_resolve_base)  # a feed's details share one or two bases


def _xml_enclosures(raw: Mapping[str, Any], base: str | None) -> tuple[Enclosure, ...]:
    """RSS <enclosure> and Atom rel=enclosure links, absolute, http(s) only, one per URL."""
    links = [lk for lk in raw.get("links") or [] if lk.get("rel") == "enclosure"]
    if not links:  # feedparser's "enclosures" are copies of these links: none either
        return ()
    candidates = list(raw.get("enclosures") or []) + links
    result: dict[str, Enclosure] = {}
    tried: set[str] = set()  # each enclosure comes twice, as a copy and as a link
    for item in candidates:
        value = item.get("href") or item.get("url")
        if isinstance(value, str):
            if value in tried:
                continue  # resolved already: it gave a URL that is in result, or none
            tried.add(value)
        href = _web_url(base, value)
        if not href or href in result:
            continue
        mime = _media_type(item.get("type"))
        if mime == "text/html":  # feedparser's default for a link without a type
            mime = None
        result[href] = Enclosure(url=href, type=mime, length=_length(item.get("length")))
    return tuple(result.values())


def _authors(node: Mapping[str, Any]) -> tuple[str, ...]:
    """Author names (emails when there is no name), deduplicated, in document order."""
    names: list[str] = []
    previous: Mapping[str, Any] | None = None
    details = node.get("authors") or []
    if not details and node.get("author"):
        details = [{"name": node.get("author")}]
    for detail in details:
        if not isinstance(detail, Mapping):
            continue
        name = str(detail.get("name") or "").strip()
        email = str(detail.get("email") or "").strip()
        # feedparser 6.0.14 gives an <author> that has no <name> the previous author's name
        # (or "name (email)"), so a second author with only an email would be misattributed.
        if previous is not None and email and name:
            prev_name = str(previous.get("name") or "").strip()
            prev_email = str(previous.get("email") or "").strip()
            if name in (prev_name, f"{prev_name} ({prev_email})"):
                name = ""
        previous = detail
        names.append(_author_label(name, email))
    return _unique(names)


def _author_label(name: str, email: str) -> str:
    """A display name from RSS-style "a@b (Name)" / "Name <a@b>" strings or name/email parts."""
    if m := _EMAIL_NAME.match(name):
        name, email = m.group(2), email or m.group(1)
    elif m := _NAME_EMAIL.match(name):
        name, email = m.group(1), email or m.group(2)
    # Plain text, as titles are: a source that double-encodes sends "Smith &amp; Jones".
    return plain_text(name) or plain_text(email)
