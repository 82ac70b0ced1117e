"""JSON Feed 1.0 and 1.1, read by hand (feedparser does not read JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from aggregator.errors import ParseError
from aggregator.parse.normalize import (
    _WARNING_MAX,
    _clamp,
    _cut_note,
    _dedupe,
    _first_web_url,
    _headline,
    _length,
    _media_type,
    _oversized,
    _source_id,
    _str,
    _unique,
    _web_url,
)
from aggregator.parse.sniff import MAX_DOCUMENT_ENTRIES, _charset_param, _too_many
from aggregator.sanitize import (
    clean_html,
    collapse_space,
    plain_text,
    shows_something,
    text_to_html,
)
from aggregator.types import Enclosure, Entry, ParsedFeed
from aggregator.urls import canonical_url


def _parse_json(body: bytes, *, url: str, content_type: str, now: datetime) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (feedparser does not read it) mapped to the same records."""
    doc = _load_json(body, content_type)
    if not isinstance(doc, dict):
        raise ParseError("not a feed: JSON document is not an object")
    version = str(doc.get("version") or "")
    items = doc.get("items")
    warning = None
    if "jsonfeed.org/version/1.1" in version:
        fmt = "json11"
    elif "jsonfeed.org/version/1" in version:
        fmt = "json10"
    elif isinstance(items, list):
        fmt, warning = "json11", "JSON Feed without a recognised version"
    else:
        raise ParseError("not a feed: JSON without a JSON Feed version or items")
    if not isinstance(items, list):
        items = []
        warning = warning or "JSON Feed without an items list"
    if len(items) > MAX_DOCUMENT_ENTRIES:
        raise _too_many(len(items))

    cut = sum(
        1
        for item in items
        if isinstance(item, dict)
        and _oversized(
            item.get("title"),
            item.get("content_html"),
            item.get("content_text"),
            item.get("summary"),
        )
    )
    warning = "; ".join(note for note in (warning, _cut_note(cut)) if note) or None
    home = _web_url(url, _str(doc.get("home_page_url")))
    feed_authors = _json_authors(doc)
    entries = _dedupe(
        _json_entry(item, url=url, home=home, feed_authors=feed_authors, now=now)
        for item in items
        if isinstance(item, dict)
    )
    return ParsedFeed(
        format=fmt,
        title=plain_text(_str(doc.get("title"))) or None,
        link=home,
        feed_id=collapse_space(_str(doc.get("feed_url"))) or None,
        updated=None,  # JSON Feed has no feed-level date
        entries=entries,
        warning=warning,
    )


def _load_json(body: bytes, content_type: str) -> Any:
    """The decoded JSON value; a header charset is honoured, otherwise UTF-8/16/32 is detected."""
    charset = _charset_param(content_type)
    try:
        if charset:
            try:
                text = body.decode(charset)
            except LookupError:  # unknown charset name: fall back to detection
                return json.loads(body)
            return json.loads(text.removeprefix("\ufeff"))
        return json.loads(body)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError too
        raise ParseError(
            f"not a feed: invalid JSON: {collapse_space(str(e))[:_WARNING_MAX]}"
        ) from e


def _json_entry(
    item: Mapping[str, Any],
    *,
    url: str,
    home: str | None,
    feed_authors: tuple[str, ...],
    now: datetime,
) -> Entry | None:
    """One JSON Feed item as an Entry; title and summary are plain text by that spec."""
    link = _web_url(url, _str(item.get("url"))) or _web_url(url, _str(item.get("external_url")))
    base = _first_web_url(link, home, url)
    content_html, content_text = _str(item.get("content_html")), _str(item.get("content_text"))
    content: str | None = None
    if content_html.strip():
        cleaned = clean_html(content_html, base)
        content = cleaned if shows_something(cleaned) else None
    if content is None and content_text.strip():
        content = text_to_html(content_text) or None
    summary_text = _str(item.get("summary"))
    # Plain text by the spec: markup in it is stripped, as in a title, not shown as tags.
    summary = text_to_html(plain_text(summary_text)) or None
    if summary == content:
        summary = None
    title = _headline(plain_text(_str(item.get("title"))))
    enclosures = _json_enclosures(item.get("attachments"), url)
    raw_id = item.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float):
        raw_id = None
    if not (title or link or content or summary or enclosures or raw_id is not None):
        return None

    published, clamped_p = _clamp(_json_date(item.get("date_published")), now)
    modified, clamped_u = _clamp(_json_date(item.get("date_modified")), now)
    tags = item.get("tags")
    return Entry(
        source_id=_source_id(
            None if raw_id is None else str(raw_id),
            link,
            _str(item.get("title")),
            content_html or content_text or summary_text,
        ),
        title=title,
        link=link,
        canonical_url=canonical_url(link),
        summary=summary,
        content=content,
        authors=_json_authors(item) or feed_authors,
        tags=_unique(plain_text(t) for t in tags if isinstance(t, str))
        if isinstance(tags, list)
        else (),
        enclosures=enclosures,
        published=published or modified,
        updated=modified or published,
        date_clamped=clamped_p or clamped_u,
    )


def _json_authors(node: Mapping[str, Any]) -> tuple[str, ...]:
    """JSON Feed 1.1 ``authors`` or 1.0 ``author``: names, else the author URL."""
    raw = node.get("authors")
    if not isinstance(raw, list):
        raw = [node.get("author")]
    names = []
    for author in raw:
        if isinstance(author, dict):
            names.append(
                plain_text(_str(author.get("name"))) or collapse_space(_str(author.get("url")))
            )
        elif isinstance(author, str):
            names.append(plain_text(author))
    return _unique(names)


def _json_enclosures(raw: object, base: str) -> tuple[Enclosure, ...]:
    """JSON Feed attachments as enclosures (absolute http(s) URLs, one per URL)."""
    if not isinstance(raw, list):
        return ()
    result: dict[str, Enclosure] = {}
    for att in raw:
        if not isinstance(att, dict):
            continue
        href = _web_url(base, _str(att.get("url")))
        if href and href not in result:
            mime = _media_type(att.get("mime_type"))
            result[href] = Enclosure(url=href, type=mime, length=_length(att.get("size_in_bytes")))
    return tuple(result.values())


def _json_date(value: object) -> datetime | None:
    """An RFC 3339 date (RFC 822 tolerated) as aware UTC, whole seconds; None when unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # like feedparser: no zone means UTC
        return parsed.astimezone(UTC).replace(microsecond=0)
    except (OverflowError, ValueError):
        return None
