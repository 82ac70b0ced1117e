"""Turn a fetched body into a ParsedFeed: RSS/Atom via feedparser, JSON Feed by hand.

Pure: no network, no files, no database, no clock (``now`` is passed in). Every HTML field is
sanitized and absolutized in one nh3 pass (sanitize.clean_html); feedparser's own sanitizer and
URI resolution are off because they are slow and incomplete (STANDARDS R-F7, R-F9).
Any problem with the input comes out as ParseError; a non-well-formed but readable document is
returned with ``warning`` set (R-F4).
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser
from lxml import etree

from aggregator.errors import ParseError
from aggregator.sanitize import (
    clean_html,
    collapse_space,
    is_web_url,
    plain_text,
    strip_invalid_chars,
    text_to_html,
)
from aggregator.types import Enclosure, Entry, FeedHints, ParsedFeed
from aggregator.urls import absolute_url, canonical_url

FUTURE_TOLERANCE = timedelta(minutes=10)  # clock skew we accept before clamping a date
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JSON_TYPES = frozenset({"application/feed+json", "application/json"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_PLAIN_TYPES = frozenset({"text/plain", "text"})
_SNIFF_BYTES = 1024
_HTML_SNIFF = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]")
_EMAIL_NAME = re.compile(r"^\s*(\S+@\S+)\s*\((.+)\)\s*$")  # "a@b.c (Name)", RSS style
_NAME_EMAIL = re.compile(r"^\s*(.+?)\s*<\s*(\S+@\S+)\s*>\s*$")  # "Name <a@b.c>"
_WARNING_MAX = 200
# RSS 1.0 Syndication module: sy:updatePeriod names the period sy:updateFrequency divides.
# A month and a year have no fixed length; 30 and 365 days are close enough for a polling hint.
_SY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
_DAYS = {
    name: number
    for number, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
_MAX_HINT_DIGITS = 9  # a ttl of a billion minutes is already 1,900 years


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str], now: datetime) -> ParsedFeed:
    """Parse one fetched document; raises ParseError (only) when it is not a readable feed.

    ``url`` is the final URL (base for relative links), ``headers`` the response headers
    (any case), ``now`` the fetch time used to clamp future dates (naive means UTC).
    """
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    content_type = lowered.get("content-type", "").strip()
    media_type = content_type.split(";", 1)[0].strip().lower()
    head = _head(body)
    if not head:
        raise ParseError("not a feed: empty body")
    try:
        if head.startswith(b"{") or (media_type in _JSON_TYPES and not head.startswith(b"<")):
            return _parse_json(body, url=url, content_type=content_type, now=now)
        return _parse_xml(body, url=url, headers=lowered, media_type=media_type, now=now)
    except ParseError:
        raise
    except Exception as e:  # the contract: any input gives a ParsedFeed or a ParseError
        raise ParseError(f"unreadable feed: {type(e).__name__}: {e}") from e


def _head(body: bytes) -> bytes:
    """The start of the body without a UTF-8 BOM or leading whitespace, lowercased, for sniffing."""
    start = body[: _SNIFF_BYTES + 3]
    if start.startswith(b"\xef\xbb\xbf"):
        start = start[3:]
    return start.lstrip(b" \t\r\n\f\v\x00").lower()


# ---------------------------------------------------------------- RSS / Atom (feedparser)


def _parse_xml(
    body: bytes, *, url: str, headers: Mapping[str, str], media_type: str, now: datetime
) -> ParsedFeed:
    """RSS/Atom/RDF through feedparser, from a BytesIO so it never opens files or URLs (R-F2)."""
    # Without a Content-Type (file:// feeds) feedparser flags every document as bozo; the
    # generic XML type makes it take the encoding from the BOM or XML declaration instead.
    response_headers = {
        "content-location": url,
        "content-type": headers.get("content-type") or "application/xml",
    }
    if headers.get("content-language"):
        response_headers["content-language"] = headers["content-language"]
    try:
        d = feedparser.parse(
            io.BytesIO(body),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as e:  # e.g. 6.0.14 raises UnicodeDecodeError on a garbled declaration
        raise ParseError(f"not a feed: feedparser could not read it: {_bozo_text(e)}") from e
    version = str(d.get("version") or "")
    raw_entries = d.get("entries") or []
    if not version and not raw_entries:
        raise ParseError(_not_a_feed_reason(body, media_type, d.get("bozo_exception")))
    warning = _bozo_text(d.get("bozo_exception")) if d.get("bozo") else None

    feed = d.get("feed") or {}
    feed_link = _web_url(url, feed.get("link"))
    is_atom = version.startswith("atom")
    feed_authors = _authors(feed) if is_atom else ()  # Atom entries inherit the feed's authors
    entries = _dedupe(
        _xml_entry(raw, url=url, feed_link=feed_link, feed_authors=feed_authors, now=now)
        for raw in raw_entries
    )
    updated, _ = _clamp(
        _from_struct(feed.get("updated_parsed")) or _from_struct(feed.get("published_parsed")), now
    )
    feed_id = collapse_space(str(feed.get("id") or "")) if is_atom else ""
    return ParsedFeed(
        format=version or "unknown",
        title=_detail_title(feed) or None,
        link=feed_link,
        feed_id=feed_id or None,
        updated=updated,
        entries=entries,
        warning=warning,
        hints=_hints(feed, body),
    )


def _not_a_feed_reason(body: bytes, media_type: str, exc: object) -> str:
    """A human reason for a body feedparser found no feed in."""
    if media_type in ("text/html", "application/xhtml+xml") or _HTML_SNIFF.search(
        body[:_SNIFF_BYTES].lower()
    ):
        return f"not a feed: looks like an HTML page ({media_type or 'no content-type'})"
    reason = "not a feed: no RSS, Atom or JSON Feed document found"
    if media_type:
        reason += f" ({media_type})"
    if exc is not None:
        reason += f": {_bozo_text(exc)}"
    return reason


def _bozo_text(exc: object) -> str:
    """A short one-line description of feedparser's bozo exception."""
    if exc is None:
        return "document is not well formed"
    text = collapse_space(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= _WARNING_MAX else text[: _WARNING_MAX - 1] + "…"


def _xml_entry(
    raw: Mapping[str, Any],
    *,
    url: str,
    feed_link: str | None,
    feed_authors: tuple[str, ...],
    now: datetime,
) -> Entry | None:
    """One feedparser entry as an Entry, or None when it carries nothing usable."""
    link = _web_url(_base_of(raw.get("title_detail")) or url, raw.get("link"))
    fallback_base = _first_web_url(link, feed_link, url)

    content_raw = _pick_content(raw.get("content") or [])
    content = _detail_html(content_raw, fallback_base) if content_raw else None
    summary = None
    summary_raw = raw.get("summary_detail")  # absent when feedparser copied content to summary
    if summary_raw and summary_raw.get("value"):
        summary = _detail_html(summary_raw, fallback_base)
    if summary == content:
        summary = None

    entry_base = _first_web_url(
        _base_of(raw.get("summary_detail")), _base_of(raw.get("title_detail")), fallback_base
    )
    enclosures = _xml_enclosures(raw, entry_base)
    title = _detail_title(raw)
    if not (title or link or content or summary or enclosures or raw.get("id")):
        return None  # an empty shell, e.g. left over by the loose parser

    published, clamped_p = _clamp(
        _from_struct(raw.get("published_parsed"))
        or _from_struct(raw.get("updated_parsed"))
        or _from_struct(raw.get("created_parsed")),
        now,
    )
    updated, clamped_u = _clamp(_from_struct(raw.get("updated_parsed")), now)
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
            collapse_space(str(t.get("term") or t.get("label") or ""))
            for t in raw.get("tags") or []
        ),
        enclosures=enclosures,
        published=published,
        updated=updated or published,
        date_clamped=clamped_p or clamped_u,
    )


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


def _detail_html(detail: Mapping[str, Any], fallback_base: str | None) -> str | None:
    """A feedparser text construct as sanitized HTML; text/plain is escaped, not parsed."""
    value = str(detail.get("value") or "")
    kind = _kind(detail.get("type"))
    if kind is None or not value.strip():
        return None
    if kind == "text":
        return text_to_html(value) or None
    base = _first_web_url(_base_of(detail), fallback_base)
    return clean_html(value, base) or None


def _detail_title(node: Mapping[str, Any]) -> str:
    """A title as plain text, tags stripped whatever type it declares (STANDARDS R-K4).

    RSS titles are HTML in the wild however feedparser labels them, and many readers render
    titles as HTML: a `<script>` that survives here as "text" is a script somewhere downstream.
    """
    return plain_text(str(node.get("title") or ""))


def _base_of(detail: object) -> str | None:
    """The xml:base (or document base) feedparser recorded on a detail dict."""
    if isinstance(detail, Mapping):
        base = detail.get("base")
        return str(base) if base else None
    return None


def _xml_enclosures(raw: Mapping[str, Any], base: str | None) -> tuple[Enclosure, ...]:
    """RSS <enclosure> and Atom rel=enclosure links, absolute, http(s) only, one per URL."""
    candidates = list(raw.get("enclosures") or [])
    candidates += [lk for lk in raw.get("links") or [] if lk.get("rel") == "enclosure"]
    result: dict[str, Enclosure] = {}
    for item in candidates:
        href = _web_url(base, item.get("href") or item.get("url"))
        if not href or href in result:
            continue
        mime = collapse_space(str(item.get("type") or "")) or None
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
    return collapse_space(name) or collapse_space(email)


# ---------------------------------------------------------------- publisher hints (R-H12)


def _hints(feed: Mapping[str, Any], body: bytes) -> FeedHints:
    """What the document says about polling it; junk values are dropped, never raised."""
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[int] = frozenset()
    if b"<skipHours" in body or b"<skipDays" in body:
        skip_hours, skip_days = _skip_hints(body)
    ttl = _positive_int(feed.get("ttl"))
    return FeedHints(
        ttl=timedelta(minutes=ttl) if ttl is not None else None,  # RSS 2.0: minutes
        update_period=_update_period(feed),
        skip_hours=skip_hours,
        skip_days=skip_days,
    )


def _update_period(feed: Mapping[str, Any]) -> timedelta | None:
    """sy:updatePeriod (default daily) divided by sy:updateFrequency (default 1).

    feedparser 6.0.14 exposes them as ``sy_updateperiod`` and ``sy_updatefrequency``. An
    unknown period or a frequency that is not a positive integer voids the whole hint: a
    guess could only lengthen the interval for no reason.
    """
    period_text, frequency_text = feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")
    if period_text is None and frequency_text is None:
        return None
    period = _SY_PERIODS.get(str(period_text or "daily").strip().lower())
    frequency = 1 if frequency_text is None else _positive_int(frequency_text)
    if period is None or frequency is None:
        return None
    result = period / frequency
    return result if result > timedelta(0) else None


def _skip_hints(body: bytes) -> tuple[frozenset[int], frozenset[int]]:
    """RSS 2.0 <skipHours><hour> and <skipDays><day> of the channel, read from the raw XML.

    feedparser keeps only the last <hour> and <day>, so lxml reads them, with entities and
    the network off and the recovering parser so a broken document still yields its hints
    (STANDARDS R-F8). Hours are 0-23 GMT; 24 is read as 0 (some publishers count 1-24).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(body, parser)
    except (etree.Error, ValueError):
        return frozenset(), frozenset()
    hours: set[int] = set()
    days: set[int] = set()
    if root is None:
        return frozenset(), frozenset()
    for element in root.iter("{*}skipHours", "{*}skipDays"):
        parent = element.getparent()
        if parent is None or etree.QName(parent).localname != "channel":
            continue
        is_hours = etree.QName(element).localname == "skipHours"
        for child in element.iterchildren("{*}hour" if is_hours else "{*}day"):
            text = (child.text or "").strip()
            if is_hours:
                hour = _positive_int(text, allow_zero=True)
                if hour is not None and hour <= 24:
                    hours.add(hour % 24)
            elif (day := _DAYS.get(text.lower())) is not None:
                days.add(day)
    return frozenset(hours), frozenset(days)


def _positive_int(value: object, *, allow_zero: bool = False) -> int | None:
    """A plain decimal integer > 0 (or >= 0) from a string, else None."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_HINT_DIGITS:
        return None
    number = int(text)
    return number if number > 0 or (allow_zero and number == 0) else None


# ---------------------------------------------------------------- JSON Feed


def _parse_json(body: bytes, *, url: str, content_type: str, now: datetime) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (feedparser does not read it, R-F10) mapped to the same records."""
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
    charset = ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
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
        content = clean_html(content_html, base) or None
    elif content_text.strip():
        content = text_to_html(content_text) or None
    summary_text = _str(item.get("summary"))
    summary = text_to_html(summary_text) or None
    if summary == content:
        summary = None
    title = plain_text(_str(item.get("title")))
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
        tags=_unique(collapse_space(t) for t in tags if isinstance(t, str))
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
            names.append(collapse_space(_str(author.get("name")) or _str(author.get("url"))))
        elif isinstance(author, str):
            names.append(collapse_space(author))
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
            mime = collapse_space(_str(att.get("mime_type"))) or None
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


def _str(value: object) -> str:
    """A JSON value as a string if it is one, else ''."""
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- shared helpers


def _web_url(base: str | None, url: object) -> str | None:
    """``url`` made absolute against ``base``; None unless the result is http(s)."""
    if not isinstance(url, str):
        return None
    resolved = absolute_url(base, strip_invalid_chars(url))
    return resolved if is_web_url(resolved) else None


def _first_web_url(*candidates: str | None) -> str | None:
    """The first candidate that is an absolute http(s) URL (a usable base)."""
    return next((c for c in candidates if is_web_url(c)), None)


def _length(value: object) -> int | None:
    """An enclosure length in bytes, or None when absent, negative or not a number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        length = int(value.strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return length if length >= 0 else None


def _from_struct(value: object) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime (timegm, never mktime: R-F6)."""
    if not isinstance(value, tuple):  # time.struct_time is a tuple
        return None
    try:
        return _EPOCH + timedelta(seconds=calendar.timegm(value))
    except (OverflowError, ValueError, TypeError):
        return None


def _clamp(value: datetime | None, now: datetime) -> tuple[datetime | None, bool]:
    """A date later than now + tolerance becomes now; the flag says it happened."""
    if value is not None and value > now + FUTURE_TOLERANCE:
        return now, True
    return value, False


def _source_id(raw_id: object, link: str | None, title: str, text: str) -> str:
    """The entry's own id, else its link, else a hash of title and content."""
    if isinstance(raw_id, str) and (cleaned := collapse_space(raw_id)):
        return cleaned
    if link:
        return link
    digest = hashlib.sha1((title + text).encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha1:{digest}"


def _dedupe(entries: Iterable[Entry | None]) -> tuple[Entry, ...]:
    """Entries with unique source_ids, deterministically.

    A repeated id with the same title and link is the same item twice: only the first is
    kept. A repeated id on a different item gets ``id#<hash of title and link>`` so two
    items never merge, and the suffix is the same on every poll.
    """
    seen: dict[str, tuple[str, str | None]] = {}
    result: list[Entry] = []
    for entry in entries:
        if entry is None:
            continue
        identity = (entry.title, entry.link)
        if entry.source_id in seen:
            if seen[entry.source_id] == identity:
                continue
            key = f"{entry.title}\n{entry.link or ''}".encode("utf-8", "surrogatepass")
            new_id = f"{entry.source_id}#{hashlib.sha1(key).hexdigest()[:12]}"
            if new_id in seen:
                continue  # a repeat of an item that was already disambiguated
            entry = replace(entry, source_id=new_id)
        seen[entry.source_id] = identity
        result.append(entry)
    return tuple(result)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Non-empty values, first occurrence kept, order preserved."""
    return tuple(dict.fromkeys(v for v in values if v))
