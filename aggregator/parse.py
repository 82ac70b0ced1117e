"""Turn a fetched body into a ParsedFeed: RSS/Atom via feedparser, JSON Feed by hand.

Pure: no network, no files, no database, no clock (``now`` is passed in). Every HTML field is
sanitized and absolutized in one nh3 pass (sanitize.clean_html); feedparser's own sanitizer and
URI resolution are off because they are slow and incomplete (STANDARDS R-F7, R-F9).
Any problem with the input comes out as ParseError; a non-well-formed but readable document is
returned with ``warning`` set (R-F4).

Ids are taken as written: feedparser is not told the fetch URL, so it cannot resolve a relative
guid or id against it (the same item would get a new id whenever the feed moved). Links are
resolved here, against xml:base and the fetch URL.
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

import feedparser  # type: ignore[import-untyped]
from lxml import etree  # type: ignore[import-untyped]

from aggregator.errors import ParseError
from aggregator.feedparser_tuning import FastGet, memoized_pair
from aggregator.sanitize import (
    MAX_HTML_CHARS,
    MAX_HTML_DEPTH,
    bounded_fragment,
    clean_html,
    collapse_space,
    is_web_url,
    plain_text,
    shows_something,
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
# The prolog before the root element: XML declaration, processing instructions, comments and a
# doctype (with an internal subset); what follows is the root element's start tag.
_PROLOG_ITEM = re.compile(
    rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!doctype(?:[^\[>]|\[.*?\])*>)", re.DOTALL | re.IGNORECASE
)
_ROOT_TAG = re.compile(rb"\s*<([A-Za-z_][^\s/>]*)([^>]*)")
_DEFAULT_NS = re.compile(rb"""\sxmlns\s*=\s*["']([^"']*)["']""")
_ROOT_SNIFF_BYTES = 16 * 1024
_RSS11_NS = "http://purl.org/net/rss1.1#"
# Root elements of documents that are feeds even when feedparser names no version: RSS 0.9x-2.0,
# RDF (RSS 0.90/1.0), Atom, CDF (<CHANNEL>) and RSS 1.1 (<Channel>).
_FEED_ROOTS = frozenset({"rss", "rdf", "feed", "channel"})
_HTML_ROOTS = frozenset({"html", "head", "body"})
# Leading whitespace before the XML declaration (a blank line printed by a PHP template) makes
# the document not well-formed and sends feedparser to its weaker loose parser.
_LEADING_SPACE = re.compile(rb"[ \t\r\n]+(?=<[^\x00])")
_XML_DECL_ENCODING = re.compile(rb"<\?xml[^>]*?encoding\s*=", re.IGNORECASE)
# UTF-16/32 without a byte order mark and without an XML declaration, told by the NUL bytes
# around the first "<" (XML 1.0 appendix F); with a declaration feedparser manages on its own.
_UNMARKED_UTF = (
    (re.compile(rb"\x00\x00\x00<\x00\x00\x00[^?]"), "utf-32-be"),
    (re.compile(rb"<\x00\x00\x00[^?]\x00\x00\x00"), "utf-32-le"),
    (re.compile(rb"\x00<\x00[^?\x00]"), "utf-16-be"),
    (re.compile(rb"<\x00[^?\x00]\x00"), "utf-16-le"),
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")  # UTF-32 BOMs start like UTF-16 ones
_DETECT_BYTES = 64 * 1024
_BAD_CHAR_REF = re.compile(rb"&#([xX][0-9a-fA-F]+|[0-9]+);")
# Elements feedparser reads as text; a child element inside one crashes feedparser 6.0.14.
_TEXT_ONLY_ELEMENTS = frozenset(
    {"link", "category", "guid", "thumbnail", "id", "pubdate", "updated", "published", "comments"}
)
# RFC 6838 type/subtype names, then optional parameters.
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;.*)?$"
)
_DOTTED_DATE = re.compile(
    r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$"
)
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


# Real feeds carry tens of entries, big podcasts a few thousand; a document with more is refused
# before feedparser spends half a minute of CPU on it, every poll.
MAX_DOCUMENT_ENTRIES = 10_000
# feedparser lowercases tag names, so <ITEM> is an item too (issue 13).
_ENTRY_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]", re.IGNORECASE)
# A headline is a line; past this many characters it is cut (issue 13: 2 KB).
MAX_TITLE_CHARS = 2_000
# What a document's own entity declarations may add to it, past its own size (issue 13: one
# 290-character entity referenced 3 million times made 870 MB of one 9 MB body, under the
# 100x amplification expat allows).
MAX_ENTITY_EXPANSION = 1024 * 1024
_GENERAL_ENTITY = re.compile(rb"<!ENTITY\s+([^\s%]+)\s+(?:\"([^\"]*)\"|'([^']*)')", re.DOTALL)
_ENTITY_REF = re.compile(rb"&([^\s&;#]+);")


def _refuse_entity_expansion(body: bytes) -> None:
    """ParseError when the document's internal entity declarations would grow it by more than
    its own size (and MAX_ENTITY_EXPANSION): counted from the declarations and the references,
    before anything is expanded."""
    # Declarations are looked for in the document's first megabyte, not only inside what
    # looks like the internal subset: an entity's value may itself hold "]>".
    head = body[: 1 << 20]
    if b"<!ENTITY" not in head:
        return
    values = {
        m.group(1): m.group(2) if m.group(2) is not None else (m.group(3) or b"")
        for m in _GENERAL_ENTITY.finditer(head)
    }
    if not values:
        return
    sizes: dict[bytes, int] = {}
    endless = 1 << 40

    def size(name: bytes, depth: int = 0) -> int:  # an entity's expanded length, once each
        if name not in values:
            return len(name) + 2
        if name not in sizes:
            # A cycle, or nesting deeper than real feeds go, counts as endless; marking the
            # name first makes each one computed once, whatever refers to it how often.
            sizes[name] = endless
            if depth <= 8:
                value = values[name]
                sizes[name] = min(
                    endless,
                    len(value)
                    + sum(
                        size(ref, depth + 1) - len(ref) - 2 for ref in _ENTITY_REF.findall(value)
                    ),
                )
        return sizes[name]

    grown = sum(body.count(b"&" + name + b";") * (size(name) - len(name) - 2) for name in values)
    if grown > max(len(body), MAX_ENTITY_EXPANSION):
        raise ParseError(
            f"refused: its entity declarations would expand the document by {grown:,} bytes "
            f"(more than its own {len(body):,})"
        )


def _headline(text: str) -> str:
    """A title cut at MAX_TITLE_CHARS (at a space if one is near), marked with an ellipsis."""
    if len(text) <= MAX_TITLE_CHARS:
        return text
    cut = text[:MAX_TITLE_CHARS]
    space = cut.rfind(" ", MAX_TITLE_CHARS - 200)
    return (cut[:space] if space > 0 else cut).rstrip() + "…"


def _cut_note(cut: int) -> str | None:
    if not cut:
        return None
    return (
        f"{cut} {'entry' if cut == 1 else 'entries'} cut to the size limits (title "
        f"{MAX_TITLE_CHARS:,} characters; text {MAX_HTML_CHARS // 1024} KB, nesting "
        f"{MAX_HTML_DEPTH:,} deep)"
    )


def _oversized(title: object, *texts: object) -> bool:
    """Whether an entry's raw title or text passes the limits (it is then cut)."""
    if len(str(title or "")) > MAX_TITLE_CHARS:
        return True
    return any(isinstance(t, str) and bounded_fragment(t)[1] for t in texts)


def _too_many(count: int) -> ParseError:
    return ParseError(
        f"too many entries: {count:,} in one document (limit {MAX_DOCUMENT_ENTRIES:,})"
    )


def _parse_xml(
    body: bytes, *, url: str, headers: Mapping[str, str], media_type: str, now: datetime
) -> ParsedFeed:
    """RSS/Atom/RDF through feedparser, from a BytesIO so it never opens files or URLs (R-F2)."""
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


def _repaired(body: bytes) -> bytes | None:
    """A copy of a document feedparser 6.0.14 crashed on, without what crashes it; or None.

    Two known crashes: a numeric character reference to a surrogate or past U+10FFFF (it
    calls chr() and encodes the result), and markup inside an element it reads as plain text
    (``<link>``, ``<category>``, ``<guid>`` ... with a child element: a KeyError). The first
    becomes U+FFFD; for the second the document is read by lxml's recovering parser (no
    entities, no network) and such elements keep only their text.
    """
    fixed = _BAD_CHAR_REF.sub(_replace_char_ref, body)
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(fixed, parser)
    except (etree.Error, ValueError):
        return fixed if fixed != body else None
    if root is None:
        return fixed if fixed != body else None
    for element in list(root.iter()):  # a list: the loop removes elements
        if (
            isinstance(element.tag, str)
            and len(element)
            and etree.QName(element).localname.lower() in _TEXT_ONLY_ELEMENTS
        ):
            text = "".join(element.itertext())
            for child in list(element):
                element.remove(child)
            element.text = text
    repaired = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    return repaired if repaired != body else None


def _replace_char_ref(m: re.Match[bytes]) -> bytes:
    """A character reference XML cannot carry becomes U+FFFD; others stay as written."""
    digits = m.group(1)
    try:
        code = int(digits[1:], 16) if digits[:1] in (b"x", b"X") else int(digits)
    except ValueError:
        return b"&#xFFFD;"
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return b"&#xFFFD;"
    return m.group(0)


def _prepare_xml(body: bytes, content_type: str) -> tuple[bytes, str, str | None]:
    """The body as feedparser reads it best, the Content-Type to tell it, and an encoding note.

    Leading whitespace before the first tag is dropped (it would make the document not
    well-formed). When nothing declares the encoding (no BOM, no HTTP charset, no ``encoding=``
    in the XML declaration) and the bytes are not UTF-8, UTF-16/32 is recognized from its NUL
    bytes, and a non-Latin legacy encoding (Big5, EUC-JP, KOI8-R ...) is detected by
    charset_normalizer; such a body is handed over as UTF-8. A Latin-looking guess is not used:
    feedparser's windows-1252 fallback is the better bet there, and guesses between Latin code
    pages are unreliable.
    """
    bom = next((b for b in _BOMS if body.startswith(b)), b"")
    if bom == b"\xef\xbb\xbf" or not bom:
        rest = body[len(bom) :]
        if m := _LEADING_SPACE.match(rest):
            body = bom + rest[m.end() :]
    if bom or _charset_param(content_type):
        return body, content_type, None
    for pattern, codec in _UNMARKED_UTF:
        if pattern.match(body):
            text = body.decode(codec, errors="replace")
            return text.lstrip().encode("utf-8"), _with_utf8(content_type), None
    head = body[:_SNIFF_BYTES]
    if head.lstrip().startswith(b"<?xml") and _XML_DECL_ENCODING.search(head.split(b"?>")[0]):
        return body, content_type, None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        detected = _detect_non_latin(body)
        if detected is not None:
            text = body.decode(detected, errors="replace")
            note = f"no encoding declared and not UTF-8: read as {detected} (detected)"
            return text.encode("utf-8"), _with_utf8(content_type), note
    return body, content_type, None


def _charset_param(content_type: str) -> str:
    """The charset parameter of a Content-Type, unquoted, or ''."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'").strip()
    return ""


def _with_utf8(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip() + "; charset=utf-8"


def _detect_non_latin(body: bytes) -> str | None:
    """A legacy encoding whose text is not Latin script, per charset_normalizer; else None."""
    try:
        import charset_normalizer  # installed with requests
    except ImportError:  # pragma: no cover - requests always brings it
        return None
    best = charset_normalizer.from_bytes(body[:_DETECT_BYTES]).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        return None
    if any("Latin" in alphabet and alphabet != "Basic Latin" for alphabet in best.alphabets):
        return None
    return str(best.encoding)


def _root_tag(body: bytes) -> tuple[str, str] | None:
    """The root element's local name (lowercased) and default namespace, from the raw bytes."""
    head = body[:_ROOT_SNIFF_BYTES]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    pos = 0
    while m := _PROLOG_ITEM.match(head, pos):
        if m.end() == pos:
            break
        pos = m.end()
    m = _ROOT_TAG.match(head, pos)
    if m is None:
        return None
    name = m.group(1).decode("latin-1").rsplit(":", 1)[-1].lower()
    ns = _DEFAULT_NS.search(m.group(2))
    return name, ns.group(1).decode("latin-1").strip() if ns else ""


def _format_of_root(root: tuple[str, str] | None) -> str:
    """A format name for a document feedparser gave no version: CDF, RSS 1.1 or unknown."""
    if root is not None and root[0] == "channel":
        return "rss11" if root[1] == _RSS11_NS else "cdf"
    return "unknown"


def _require_feed_root(
    root: tuple[str, str] | None, d: Mapping[str, Any], body: bytes, media_type: str
) -> None:
    """Accept a well-formed feed document with no entries (a CDF or RSS 1.1 channel, say);
    raise ParseError for anything else."""
    exc = d.get("bozo_exception")
    if root is not None and root[0] in _FEED_ROOTS:
        if not d.get("bozo"):
            return
        raise ParseError(
            f"not a feed: a broken <{root[0]}> document with no readable entries: {_bozo_text(exc)}"
        )
    raise ParseError(_not_a_feed_reason(body, media_type, exc, root))


def _not_a_feed_reason(
    body: bytes, media_type: str, exc: object, root: tuple[str, str] | None = None
) -> str:
    """A human reason for a body feedparser found no feed in."""
    if root is not None and root[0] == "opml":
        return "not a feed: an OPML subscription list (add its feeds with `aggregator opml import`)"
    if (
        media_type in ("text/html", "application/xhtml+xml")
        or (root is not None and root[0] in _HTML_ROOTS)
        or (root is None and _HTML_SNIFF.search(body[:_SNIFF_BYTES].lower()))
    ):
        return f"not a feed: looks like an HTML page ({media_type or 'no content-type'})"
    reason = "not a feed: no RSS, Atom or JSON Feed document found"
    details = [media_type] if media_type else []
    if root is not None:
        details.append(f"root element <{root[0]}>")
    if details:
        reason += f" ({', '.join(details)})"
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

    # feedparser has applied each enclosure's xml:base (feedparser_tuning: _start_enclosure).
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
    """A title as plain text, tags stripped whatever type it declares (STANDARDS R-K4).

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


def _media_type(value: object) -> str | None:
    """A MIME type such as ``audio/mpeg`` (parameters kept), or None for junk.

    Atom requires type/subtype (RFC 4287 atomMediaType), and a reader cannot use anything else.
    """
    text = collapse_space(value) if isinstance(value, str) else ""
    return text if _MEDIA_TYPE.match(text) else None


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


def _str(value: object) -> str:
    """A JSON value as a string if it is one, else ''."""
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- shared helpers


def _web_url(base: str | None, url: object) -> str | None:
    """``url`` made absolute against ``base``; None unless the result is http(s)."""
    if not isinstance(url, str):
        return None
    resolved = absolute_url(base, strip_invalid_chars(url))
    return _encoded_unsafe(resolved) if is_web_url(resolved) else None


# Characters a URL may not hold raw (RFC 3986) that a hostile link uses to break out of an
# attribute or a reader's markup: percent-encoded, the rest of the link left as given.
_UNSAFE_IN_URL = {ord(c): f"%{ord(c):02X}" for c in '"<>\\^`{|} '}


def _encoded_unsafe(url: str | None) -> str | None:
    return url.translate(_UNSAFE_IN_URL) if url else url


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


def _feed_date(node: Mapping[str, Any], key: str) -> datetime | None:
    """A feedparser date field as aware UTC: its parsed form, else the text read day-first."""
    return _from_struct(node.get(f"{key}_parsed")) or _dotted_date(node.get(key))


def _dotted_date(value: object) -> datetime | None:
    """A day-first dotted date such as ``22.11.2022 12:16:00`` (German, Russian ... feeds), UTC.

    feedparser reads none of these; a dotted date is day.month.year wherever it is used.
    """
    if not isinstance(value, str) or not (m := _DOTTED_DATE.match(value)):
        return None
    day, month, year, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
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
