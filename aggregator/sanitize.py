"""HTML sanitizing and text cleanup for feed content: what a hostile feed cannot slip through.

Every HTML field goes through exactly one nh3 call, which also makes relative URLs absolute.
Everything we emit ends up in XML, so characters XML 1.0 forbids (C0 controls other than tab,
newline and carriage return, U+FFFE, U+FFFF and lone surrogates) are removed from every string.
"""

from __future__ import annotations

import functools
import html
import re
from typing import Literal
from urllib.parse import urlsplit

import nh3

UrlRelative = Literal["deny"] | tuple[Literal["rewrite_with_base"], str]

# A reading set: text structure, lists, tables, quotes, links and images. No forms, frames,
# scripts, styles, SVG/MathML, object/embed or media elements (their URL attributes such as
# srcset/poster are not scheme-checked by nh3).
ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a", "abbr", "acronym", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite",
        "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em",
        "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
        "kbd", "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small",
        "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
        "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip

# No `style`, no on*, no `class`/`id` (they could hook or clobber the host page), and no `cite`
# or `srcset`: nh3 does not apply url_schemes to them, so javascript: would pass through.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "lang", "dir"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start", "reversed", "type"},
    "li": {"value"},
    "td": {"colspan", "rowspan", "headers", "align"},
    "th": {"colspan", "rowspan", "headers", "scope", "align"},
    "col": {"span"},
    "colgroup": {"span"},
    "time": {"datetime"},
    "del": {"datetime"},
    "ins": {"datetime"},
}

URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

# In sanitized HTML (attributes quoted, "<" and ">" escaped in text and values) a tag is exactly
# "<" ... ">", and an image that shows something has a src (only web URLs survive cleaning).
_TAG = re.compile(r"<[^>]*>")
_LEADING_MARKUP = re.compile(r"(?:<[^>]*>|\s)*")  # tags as _TAG finds them, and whitespace
_IMAGE_WITH_SOURCE = re.compile(r"<img\s[^>]*\bsrc=\"[^\"]")

# Characters that are illegal in XML 1.0 output, plus lone surrogates (which nh3 cannot take).
_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def strip_invalid_chars(text: str) -> str:
    """``text`` without characters that XML 1.0 forbids (so any output format can carry it)."""
    # Each of them is a control, a surrogate or a noncharacter, which isprintable() rejects: a
    # printable string (most titles, names, URLs) has none, and that test is much cheaper.
    if text.isprintable():
        return text
    return _INVALID_CHARS.sub("", text)


# ---------------------------------------------------------------- mojibake

# windows-1252's characters for the bytes 0x80-0x9F (five are undefined there).
_CP1252_HIGH = {byte: bytes([byte]).decode("cp1252") for byte in range(0x80, 0xA0)
                if byte not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}  # fmt: skip
# Each character as the byte it was when UTF-8 was misread as windows-1252 or ISO-8859-1.
_AS_BYTE = {ord(ch): byte for byte, ch in _CP1252_HIGH.items()} | {
    code: code for code in range(0x80, 0x100)
}
_CONT = "[\x80-\xbf" + "".join(_CP1252_HIGH.values()) + "]"  # was a continuation byte
# A UTF-8 sequence so misread: a lead character, then its continuation characters.
_MISREAD = re.compile(f"[\xc2-\xdf]{_CONT}|[\xe0-\xef]{_CONT}{{2}}|[\xf0-\xf4]{_CONT}{{3}}")
# What only a misreading makes: "â€" then a continuation (’ “ ” – … misread), "Â" or "Ã" then
# one ("Â " for a no-break space, "Ã©" for é), or two misread sequences in a row.
_SURELY_MISREAD = re.compile(f"\u00e2\u20ac{_CONT}|[\xc2\xc3]{_CONT}|(?:{_MISREAD.pattern}){{2}}")
# What each of those begins with: one class then another scans a long text ten times faster
# than the alternation, and most non-ASCII text (curly quotes, dashes, accents) has none.
_MAYBE_MISREAD = re.compile(f"[\xc2-\xf4]{_CONT}")
# C1 controls left over: windows-1252 bytes read as ISO-8859-1, or its undefined ones.
_C1 = re.compile("[\x80-\x9f]")


def _decoded(match: re.Match[str]) -> str:
    try:
        return bytes(_AS_BYTE[ord(ch)] for ch in match.group()).decode("utf-8")
    except UnicodeDecodeError:
        return match.group()


def _c1(match: re.Match[str]) -> str:
    return _CP1252_HIGH.get(ord(match.group()), "")


def repair_mojibake(text: str) -> str:
    """UTF-8 that was read as windows-1252 (or ISO-8859-1) read again as UTF-8: "itâ€™s" is
    "it's" again, "MartÃ\xadn" "Martín". Real feeds carry it (the W3C validator's
    BadCharacters, and html5lib's "invalid codepoint" for its C1 controls).

    Only a text that surely holds some is touched (a lone "É”" may be French), and only the
    sequences that decode ("â€" before a lost byte, U+FFFD, was "”"); C1 controls left are
    windows-1252 read as ISO-8859-1, mapped as browsers map them, or dropped where
    windows-1252 has nothing.
    """
    if _MAYBE_MISREAD.search(text) and _SURELY_MISREAD.search(text):
        # "â€" and a lost byte: the byte windows-1252 has no character for, 0x9D, was "”".
        text = _MISREAD.sub(_decoded, text.replace("\u00e2\u20ac\ufffd", "\u201d"))
    return _C1.sub(_c1, text) if _C1.search(text) else text


def readable_text(text: str) -> str:
    """Text, HTML or plain, as it is stored: without characters XML 1.0 forbids, and with UTF-8
    that was misread as windows-1252 read right (`repair_mojibake`; ASCII has none)."""
    return strip_invalid_chars(text if text.isascii() else repair_mojibake(text))


def collapse_space(text: str) -> str:
    """Plain text on one line: whitespace runs become one space, invalid characters go."""
    # split() first, so a vertical tab or form feed separates words instead of joining them.
    return readable_text(" ".join(text.split()))


def is_web_url(url: str | None) -> bool:
    """True for an absolute http(s) URL with a host: the only kind we resolve against or keep."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


# What one HTML field may bring to the sanitizer (issue 13): a long read is tens of kilobytes;
# nh3's time grows with the square of the nesting depth (20,000 nested <div>s: 0.6 s, 80,000:
# 16 s) and faster than the length for some inputs ("&amp;" x 1.8M: 33 s). Past either bound
# the fragment is cut there, and the sanitizer closes what was left open.
MAX_HTML_CHARS = 256 * 1024
MAX_HTML_DEPTH = 1_000
# Elements that never nest (void) or whose end tag may be left out (an unclosed <p> or <li> is
# closed by the next one): not counted as depth.
_NOT_NESTING = frozenset(
    "area base br col embed hr img input link meta source track wbr "
    "p li dt dd tr td th option optgroup thead tbody tfoot colgroup rp rt caption".split()
)
_START_OR_END_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*?(/?)>")


def bounded_fragment(fragment: str) -> tuple[str, bool]:
    """The fragment cut at MAX_HTML_CHARS and where its nesting passes MAX_HTML_DEPTH; and
    whether it was cut. Linear: one scan of the tags."""
    cut = len(fragment) > MAX_HTML_CHARS
    if cut:
        fragment = fragment[:MAX_HTML_CHARS]
    if fragment.count("<") <= MAX_HTML_DEPTH:  # too few tags to nest that deep: no scan
        return fragment, cut
    depth = 0
    for tag in _START_OR_END_TAG.finditer(fragment):
        closing, name, self_closing = tag.groups()
        if name.lower() in _NOT_NESTING or self_closing:
            continue
        if closing:
            depth = max(0, depth - 1)
            continue
        depth += 1
        if depth > MAX_HTML_DEPTH:
            return fragment[: tag.start()], True
    return fragment, cut


def clean_html(fragment: str, base: str | None) -> str:
    """Sanitized HTML, relative URLs resolved against ``base``, in one nh3 pass.

    The input is bounded first (`bounded_fragment`). Relative URLs are dropped unless ``base``
    is an absolute http(s) URL: nh3 does not apply ``url_schemes`` to URLs it rewrote, so a
    file:// base would leak file:// links.
    """
    url_relative: UrlRelative = "deny"
    if base and is_web_url(base):
        url_relative = ("rewrite_with_base", base)
    fragment, _ = bounded_fragment(fragment)
    text = readable_text(fragment)  # lone surrogates would make nh3 raise
    cleaned = _sanitized(text, url_relative)
    # Escaping can make the output several times its input ("&" -> "&amp;"): what is kept is
    # bounded too, by cleaning a proportionally shorter input (at most twice more).
    for _ in range(2):
        if len(cleaned) <= MAX_HTML_CHARS:
            break
        text = text[: int(len(text) * MAX_HTML_CHARS / len(cleaned) * 0.95)]
        cleaned = _sanitized(text, url_relative)
    # Numeric references such as &#11; decode to illegal characters inside nh3; remove them
    # again. Only they can bring one back (the input was stripped, and no named entity stands
    # for a character XML forbids), so text without "&#" is not scanned twice.
    if "&#" in text:
        cleaned = readable_text(cleaned)
    return cleaned.strip()


def _sanitized(text: str, url_relative: UrlRelative) -> str:
    try:
        return _cleaner(url_relative).clean(text)
    except ValueError:  # a base the URL parser rejects: drop relative URLs instead
        return _cleaner("deny").clean(text)


def shows_something(cleaned: str | None) -> bool:
    """True when sanitized HTML (clean_html's output) has visible text or an image with a src.

    Markup alone (``<span></span>``, ``<p><br></p>``, or what is left of an SVG or MathML
    island, which the sanitizer drops) shows nothing.
    """
    if not cleaned:
        return False
    # The first character after the leading tags and whitespace is visible text, unless it
    # starts an entity (which may stand for a space): then the whole text is looked at.
    start = _LEADING_MARKUP.match(cleaned)  # it always matches, if only the empty string
    if start and start.end() < len(cleaned) and cleaned[start.end()] != "&":
        return True
    if _IMAGE_WITH_SOURCE.search(cleaned):
        return True
    return bool(html.unescape(_TAG.sub("", cleaned)).strip())


def _cleaner(url_relative: UrlRelative) -> nh3.Cleaner:
    """The sanitizer for one base URL (or none); raises ValueError for a base nh3's URL parser
    rejects. Building one costs as much as cleaning a short entry, and a feed's entries mostly
    share one base (the feed's URL or an xml:base), so recent ones are kept (16 kB each), but
    not for a long base (a hostile xml:base)."""
    if url_relative == "deny" or len(url_relative[1]) <= _KEPT_BASE_LONGEST:
        return _kept_cleaner(url_relative)
    return _new_cleaner(url_relative)


def _new_cleaner(url_relative: UrlRelative) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        url_relative=url_relative,
        link_rel=LINK_REL,
        strip_comments=True,
    )


_KEPT_BASE_LONGEST = 2048
_kept_cleaner = functools.lru_cache(maxsize=64)(_new_cleaner)
_TEXT_ONLY = nh3.Cleaner(tags=set(), strip_comments=True)  # plain_text's: every tag goes


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment: tags stripped, entities decoded once, whitespace collapsed."""
    # nh3 drops every tag (and the contents of script/style) and re-escapes the text, so one
    # unescape gives back exactly the text the markup meant.
    # Collapsing first turns a vertical tab or form feed into a word break before it is removed.
    stripped = _TEXT_ONLY.clean(collapse_space(bounded_fragment(fragment)[0]))
    return collapse_space(html.unescape(stripped))


def text_to_html(text: str) -> str:
    """Plain text as safe HTML: escaped, blank-line separated paragraphs, newlines as <br>;
    at most MAX_HTML_CHARS of it."""
    text = readable_text(text[:MAX_HTML_CHARS]).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html.escape(line, quote=False) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
