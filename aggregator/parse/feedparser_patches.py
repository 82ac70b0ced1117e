"""Our subclasses of feedparser's two parsers: correct xml:base scoping, and fast paths.

Importing this module (`aggregator.parse.xml` does) swaps `feedparser.api`'s StrictFeedParser and
LooseFeedParser for subclasses, once: `ScopedBase` always (feedparser 6.0.14 leaks an
element's xml:base into everything after it), and, with the feedparser release they were
checked against, `FastPaths` (the same results with less work per element and text node) and
memoized base-URL joins. `tests/test_parse_fast_paths.py` compares them with feedparser's own
code (building parsers without the fast paths from these public names); every
`feedparser.parse` in the process uses them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import functools
import importlib.util
import re
from collections.abc import Mapping
from typing import Any

import feedparser  # type: ignore[import-untyped]
from feedparser import mixin as _fp_mixin  # type: ignore[import-untyped]
from feedparser import urls as _fp_urls  # type: ignore[import-untyped]


class ScopedBase:
    """Mixed into feedparser's two parsers: an xml:base ends with the element that declares it.

    feedparser 6.0.14 restores the enclosing base at an end tag only when that base is truthy.
    We give it no document URL (see ``_parse_xml``), so the base outside any xml:base is '', and
    the xml:base of an element (an Atom ``<content xml:base=...>``, say) stayed in force for
    everything after it: the next entry's summary, links and ids were resolved against it, and
    the same entry XML gave other links at another position in the document. Its end tag also
    skips the restore after a ``<div>`` inside escaped-markup content (a TypePad workaround).
    Here every element gets its parent's base back at its end tag, from a stack of our own
    (RFC 4287 section 2, xml:base per RFC 3986 section 5.1.1). The stack is keyed by tag name:
    the loose parser sees stray end tags (ignored) and elements never closed (``<br>``, closed
    with their parent), and neither may shift the bases of the elements around them.
    """

    baseuri: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The document base, then (tag, base) per open element.
        self._scoped_bases: list[tuple[str, str]] = [("", self.baseuri)]

    def unknown_starttag(self, tag: str, attrs: list[tuple[str, str]]) -> Any:
        self.baseuri = self._scoped_bases[-1][1]  # the parent's base, whatever came between
        result = super().unknown_starttag(tag, attrs)  # type: ignore[misc]
        self._scoped_bases.append((tag, self.baseuri))  # this element's, as feedparser made it
        return result

    def _start_enclosure(self, attrs_d: dict[str, str]) -> Any:
        """An RSS ``<enclosure url>`` resolved against its xml:base, as feedparser does for
        ``<link href>``: what is left relative is relative to the document."""
        attrs_d = self._enforce_href(attrs_d)  # type: ignore[attr-defined]  # url -> href
        if attrs_d.get("href"):
            attrs_d["href"] = self.resolve_uri(attrs_d["href"])  # type: ignore[attr-defined]
        return super()._start_enclosure(attrs_d)  # type: ignore[misc]

    def startDocument(self) -> None:
        """Ask expat for each text node in one piece (the strict parser only).

        By default expat hands over text in pieces, one at every entity reference and line
        break, so escaped HTML content (``&lt;p&gt;...``) became hundreds of ``characters``
        calls per entry, each through feedparser's slow dict lookups: a third of the parse
        time. Buffered, feedparser sees the same text in one call (its handler appends pieces).
        The expat parser exists from here on (the SAX driver makes a new one as it starts).
        """
        super().startDocument()  # type: ignore[misc]
        with contextlib.suppress(AttributeError):  # another SAX driver: keep its defaults
            self._locator._ref._parser.buffer_text = True  # type: ignore[attr-defined]

    def unknown_endtag(self, tag: str) -> Any:
        result = super().unknown_endtag(tag)  # type: ignore[misc]
        bases = self._scoped_bases
        if len(bases) > 1 and bases[-1][0] == tag:  # the element this closes (the usual case)
            del bases[-1]
        else:
            for depth in range(len(bases) - 2, 0, -1):
                if bases[depth][0] == tag:  # the element this closes, and any left open
                    del bases[depth:]
                    break
        self.baseuri = bases[-1][1]
        return result


# feedparser spends most of a parse in a few generic methods run for every element and text
# node; these make them cheaper and change nothing they return. ``FastPaths.pop`` is a copy of
# feedparser's own, so they are used only with the release they were checked against.
FAST_PATHS_FOR = "6.0.14"
# Keys FeedParserDict.__getitem__ does not read as they are (aliases, computed values).
_FEEDPARSER_SPECIAL_KEYS = frozenset(
    {"category", "enclosures", "license", "updated", "updated_parsed"}
) | frozenset(feedparser.FeedParserDict.keymap)
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")  # feedparser's "?a=1&b;=2" repair, compiled once
# The characters feedparser's windows-1252 table (``_cp1252``) replaces.
_CP1252_EXTENSION = re.compile("[" + "".join(sorted(map(chr, _fp_mixin._cp1252))) + "]")
JOIN_CACHE_SIZE = 256
JOIN_CACHE_LONGEST = 2048  # characters: a huge xml:base is resolved, not kept


class FastGet(feedparser.FeedParserDict):  # type: ignore[misc]
    """A FeedParserDict whose ``get`` is a plain dict lookup for keys without an alias.

    FeedParserDict.get goes through ``__getitem__``'s alias and fallback logic for every key,
    at ten times the cost of a dict lookup; for the other keys it answers exactly what the
    dict holds, so only the special keys take that path here.
    """

    def get(self, key: str, default: Any = None) -> Any:
        if key in _FEEDPARSER_SPECIAL_KEYS:
            return super().get(key, default)
        return dict.get(self, key, default)


class ContentParams(feedparser.FeedParserDict):  # type: ignore[misc]
    """feedparser's ``contentparams`` (type, language, base ... of the text being read).

    feedparser asks it for ``type`` at every tag and text node, and for nothing but ``type``,
    ``base64``, ``mode`` and ``src``: keys without an alias, so the dict's own ``get`` answers
    the same. It also deep-copies it into every ``*_detail`` and ``content`` dict; its values
    are strings, numbers or None, so copying the dict is a deep copy. The copy is a plain
    FeedParserDict filled through ``__setitem__``, as ``copy.deepcopy`` makes it.
    """

    get = dict.get

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return _params_copy(self)


def _params_copy(params: Mapping[str, Any]) -> Any:
    """``copy.deepcopy(params)`` of a plain FeedParserDict of strings, numbers and None."""
    result = feedparser.FeedParserDict()
    for key, value in params.items():
        result[key] = value if type(value) in _IMMUTABLE else copy.deepcopy(value)
    return result


_IMMUTABLE = frozenset({str, int, type(None)})


class FastPaths:
    """Mixed into feedparser's two parsers (after ``ScopedBase``): the same results, sooner.

    ``contentparams`` is always a ``ContentParams``, ``resolve_uri`` skips the memoized join
    (``_install_parsers``), and ``pop`` (run at the end of every element) is feedparser
    6.0.14's, with changes marked "aggregator" that give the same output: the contentparams
    cleanup does not raise and catch KeyError for absent keys; the content type is mapped only
    when feedparser's own sanitizer or URI resolution is on (never for us); an ASCII string
    skips the Latin-1/UTF-8 round trip and the windows-1252 table, which leave it as it is, and
    other text meets the table only when it has a character the table replaces; the detail
    dicts are copied by ``_params_copy``. With the memoized base resolution, feedparser's share
    of a parse takes ~40% less time (37% on bench/_corpus.py feeds, 42% on the real-world ones).
    """

    contentparams: ContentParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contentparams = ContentParams(self.contentparams)

    def push_content(self, *args: Any) -> Any:
        result = super().push_content(*args)  # type: ignore[misc]
        self.contentparams = ContentParams(self.contentparams)
        return result

    def resolve_uri(self, uri: str) -> Any:
        """feedparser's, with the join that is not memoized: these URIs are seldom repeated."""
        return _fp_urls._urljoin(self.baseuri or "", uri)  # type: ignore[attr-defined]

    def pop(self: Any, element: str, strip_whitespace: int = 1) -> Any:
        if not self.elementstack:
            return None
        if self.elementstack[-1][0] != element:
            return None

        element, expecting_text, pieces = self.elementstack.pop()

        # Ensure each piece is a str for Python 3
        for i, v in enumerate(pieces):
            if isinstance(v, bytes):
                pieces[i] = v.decode("utf-8")

        contentparams = self.contentparams
        if (
            self.version == "atom10"
            and contentparams.get("type", "text") == "application/xhtml+xml"
        ):
            # remove enclosing child element, but only if it is a <div> and
            # only if all the remaining content is nested underneath it.
            # This means that the divs would be retained in the following:
            #    <div>foo</div><div>bar</div>
            while pieces and len(pieces) > 1 and not pieces[-1].strip():
                del pieces[-1]
            while pieces and len(pieces) > 1 and not pieces[0].strip():
                del pieces[0]
            if (
                pieces
                and (pieces[0] == "<div>" or pieces[0].startswith("<div "))
                and pieces[-1] == "</div>"
            ):
                depth = 0
                for piece in pieces[:-1]:
                    if piece.startswith("</"):
                        depth -= 1
                        if depth == 0:
                            break
                    elif piece.startswith("<") and not piece.endswith("/>"):
                        depth += 1
                else:
                    pieces = pieces[1:-1]

        output = "".join(pieces)
        if strip_whitespace:
            output = output.strip()
        if not expecting_text:
            return output

        # decode base64 content
        if contentparams.get("base64", 0):
            with contextlib.suppress(binascii.Error, binascii.Incomplete, UnicodeDecodeError):
                output = base64.decodebytes(output.encode("utf8")).decode("utf8")

        # resolve relative URIs
        # do not resolve guid elements with isPermalink="false"
        if element in self.can_be_relative_uri and output and (element != "id" or self.guidislink):
            output = self.resolve_uri(output)

        # decode entities within embedded markup
        if not contentparams.get("base64", 0):
            output = self.decode_entities(element, output)

        # some feed formats require consumers to guess
        # whether the content is html or plain text
        if (
            not self.version.startswith("atom")
            and contentparams.get("type") == "text/plain"
            and self.looks_like_html(output)
        ):
            contentparams["type"] = "text/html"

        # remove temporary cruft from contentparams (aggregator: no KeyError raised and caught)
        contentparams.pop("mode", None)
        contentparams.pop("base64", None)

        # aggregator: the type is looked at only when one of the two passes is on.
        if self.resolve_relative_uris or self.sanitize_html:
            content_type = contentparams.get("type", "text/html")
            is_htmlish = self.map_content_type(content_type) in self.html_types
            # resolve relative URIs within embedded markup
            if (
                is_htmlish
                and self.resolve_relative_uris
                and element in self.can_contain_relative_uris
            ):
                output = _fp_mixin.resolve_relative_uris(
                    output, self.baseuri, self.encoding, content_type
                )

            # sanitize embedded markup
            if is_htmlish and self.sanitize_html and element in self.can_contain_dangerous_markup:
                output = _fp_mixin._sanitize_html(output, self.encoding, content_type)

        if self.encoding and isinstance(output, bytes):
            output = output.decode(self.encoding, "ignore")

        # aggregator: both steps below leave an ASCII string as it is.
        if not isinstance(output, bytes) and not output.isascii():
            # address common error where people take data that is already
            # utf-8, presume that it is iso-8859-1, and re-encode it.
            if self.encoding in ("utf-8", "utf-8_INVALID_PYTHON_3"):
                with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
                    output = output.encode("iso-8859-1").decode("utf-8")
            # map win-1252 extensions to the proper code points (aggregator: only when there
            # is one; translate() looks every character of a non-ASCII string up in a dict)
            if _CP1252_EXTENSION.search(output):
                output = output.translate(_fp_mixin._cp1252)

        # categories/tags/keywords/whatever are handled in _end_category or
        # _end_tags or _end_itunes_keywords
        if element in ("category", "tags", "itunes_keywords"):
            return output

        if element == "title" and -1 < self.title_depth <= self.depth:
            return output

        # store output in appropriate place(s)
        if self.inentry and not self.insource:
            entry = self.entries[-1]  # aggregator: looked up once
            if element == "content":
                entry.setdefault(element, [])
                contentparams = _params_copy(self.contentparams)  # aggregator: not deepcopy
                contentparams["value"] = output
                entry[element].append(contentparams)
            elif element == "link":
                if not self.inimage:
                    # query variables in urls in link elements are improperly
                    # converted from `?a=1&b=2` to `?a=1&b;=2` as if they're
                    # unhandled character references. fix this special case.
                    output = output.replace("&amp;", "&")
                    output = _LINK_ENTITY.sub(r"&\g<1>", output)
                    entry[element] = output
                    if output:
                        entry["links"][-1]["href"] = output
            else:
                if element == "description":
                    element = "summary"
                depths = self.property_depth_map.setdefault(entry, {})
                old_value_depth = depths.get(element)
                if old_value_depth is None or self.depth <= old_value_depth:
                    depths[element] = self.depth
                    entry[element] = output
                if self.incontent:
                    contentparams = _params_copy(self.contentparams)
                    contentparams["value"] = output
                    entry[element + "_detail"] = contentparams
        elif self.infeed or self.insource:  # and (not self.intextinput) and (not self.inimage):
            context = self._get_context()
            if element == "description":
                element = "subtitle"
            context[element] = output
            if element == "link":
                # fix query variables; see above for the explanation
                output = _LINK_ENTITY.sub(r"&\g<1>", output)
                context[element] = output
                context["links"][-1]["href"] = output
            elif self.incontent:
                contentparams = _params_copy(self.contentparams)
                contentparams["value"] = output
                context[element + "_detail"] = contentparams
        return output


def memoized_pair(function: Any) -> Any:
    """A pure function of a string and a string (or None) that remembers its recent results,
    unless the strings are long (a hostile xml:base is computed, not kept).

    For feedparser's ``_urljoin`` and ``make_safe_absolute_uri``: each start tag resolves the
    element's base against its parent's (``unknown_starttag``), which took twice as long as the
    rest of the tag, with the same few strings all along.
    """
    remembered = functools.lru_cache(maxsize=JOIN_CACHE_SIZE)(function)

    @functools.wraps(function)
    def join(base: Any, uri: Any = None) -> Any:
        if type(base) is str and len(base) + len(uri or "") <= JOIN_CACHE_LONGEST:
            return remembered(base, uri)  # uri is a str (or None), feedparser's attribute values
        return function(base, uri)

    join._aggregator_memoized = True  # type: ignore[attr-defined]
    return join


def _install_parsers() -> None:
    """Make feedparser.parse use parsers with ``ScopedBase`` and, with the feedparser release
    they were checked against, ``FastPaths`` and memoized base resolution (once; parse() looks
    the parsers up in feedparser.api at each call)."""
    api = feedparser.api
    fast = feedparser.__version__ == FAST_PATHS_FOR
    mixins: tuple[type, ...] = (ScopedBase, FastPaths) if fast else (ScopedBase,)
    for name in ("StrictFeedParser", "LooseFeedParser"):
        parser_class = getattr(api, name)
        if not getattr(parser_class, "_aggregator_scoped_base", False):
            scoped = type(name, (*mixins, parser_class), {"_aggregator_scoped_base": True})
            setattr(api, name, scoped)
    if fast:
        # feedparser asks xml.sax for the libxml2 driver first, and a module that is not there
        # is searched for along sys.path again at every parse; ask for it only if it exists.
        api.PREFERRED_XML_PARSERS = [name for name in api.PREFERRED_XML_PARSERS if _exists(name)]
        for name in ("_urljoin", "make_safe_absolute_uri"):
            function = getattr(_fp_mixin, name)
            if not getattr(function, "_aggregator_memoized", False):
                setattr(_fp_mixin, name, memoized_pair(function))


def _exists(module: str) -> bool:
    """True when ``module`` can be found (it is not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, an odd name
        return False


_install_parsers()
