"""What a body is before it is parsed: sniffing, encodings, the root element, and the guards.

A JSON or an XML document, HTML served as a feed, the encoding declared or guessed, characters
and character references XML forbids repaired, and a document with too many entries or whose
entity declarations would blow it up refused before any parser sees it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from aggregator.errors import ParseError
from aggregator.parse.normalize import _WARNING_MAX
from aggregator.sanitize import (
    collapse_space,
)

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


def _head(body: bytes) -> bytes:
    """The start of the body without a UTF-8 BOM or leading whitespace, lowercased, for sniffing."""
    start = body[: _SNIFF_BYTES + 3]
    if start.startswith(b"\xef\xbb\xbf"):
        start = start[3:]
    return start.lstrip(b" \t\r\n\f\v\x00").lower()


# Real feeds carry tens of entries, big podcasts a few thousand; a document with more is refused
# before feedparser spends half a minute of CPU on it, every poll.
MAX_DOCUMENT_ENTRIES = 10_000


# feedparser lowercases tag names, so <ITEM> is an item too (issue 13).
_ENTRY_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]", re.IGNORECASE)


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


def _too_many(count: int) -> ParseError:
    return ParseError(
        f"too many entries: {count:,} in one document (limit {MAX_DOCUMENT_ENTRIES:,})"
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
