"""OPML 2.0 subscription lists: export the configured feeds, import feeds into feeds.yaml.

OPML is how feed readers hand subscriptions to each other, so it is read defensively (any depth
of folders, ``xmlUrl`` in any letter case, any outline ``type``) and written strictly (OPML 2.0,
serialized by lxml so escaping is never hand-written).

Tags travel in the ``category`` attribute. OPML 2.0 defines it as "a string of comma-separated
slash-delimited category strings" and says a *tag* is a category string without slashes, so tags
are written the way the spec spells them: ``category="world,uk"``. Reading accepts that and the
hierarchical form (``/Harvard/Berkman,/Politics`` gives Harvard, Berkman, Politics), and the
folders enclosing a feed become tags too. A tag that itself contains a comma or slash cannot
round-trip: OPML has no escape for them.

Importing edits the TEXT of feeds.yaml instead of re-dumping parsed YAML, because a re-dump
would lose the user's comments, order and formatting. New items are appended at the end of the
``feeds:`` list and the result is validated with ``aggregator.config.parse_config`` before it
is returned: an import can fail, but it can never leave a config that does not load. This module
does not import yaml (config.py owns it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from aggregator.config import feed_name_from_url, http_url_problem, parse_config
from aggregator.errors import ConfigError
from aggregator.render import write_atomic
from aggregator.types import Config, FeedConfig
from aggregator.urls import canonical_url, is_private_address

# Why a feed of the OPML was not added (ImportResult.skipped).
ALREADY_CONFIGURED = "already configured"
NOT_HTTP = "not an http(s) URL"
# An OPML file is often someone else's: importing it must not make the aggregator read (and
# publish) files of this machine, so file:// feeds are only ever configured by hand.
LOCAL_FILE = "a local file (OPML import never adds those; add it to the config by hand)"
INTERNAL = "an internal address (set defaults.allow_private_addresses to import it)"
DUPLICATE_IN_OPML = "duplicate in the OPML"

# Characters XML 1.0 cannot carry, plus lone surrogates and U+FFFE/U+FFFF (never encodable).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Characters a one-line YAML value must not carry: controls (C0, DEL, C1), the line and paragraph
# separators YAML 1.1 folds as line breaks, and what no UTF-8 file can hold.
_NOT_LINE_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
# OPML never needs entity declarations; refusing them up front means a billion-laughs or XXE
# document is never even handed to the parser (UTF-16 documents are caught after parsing).
_ENTITY_DECLARATIONS = tuple(
    "<!ENTITY".encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be")
)


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One subscription read from an OPML file."""

    url: str  # xmlUrl, stripped
    title: str | None  # title, else text; whitespace collapsed; None when empty
    html_url: str | None  # htmlUrl: the site
    tags: tuple[str, ...]  # enclosing folders (outermost first), then the category attribute


@dataclass(frozen=True)
class ImportResult:
    """The new feeds.yaml text and what happened to each feed of the OPML.

    ``text`` is the input text unchanged when nothing was added. ``added`` holds the feeds as
    written (title cleaned, tags of OPML duplicates merged in); ``skipped`` the feeds as given,
    each with why: ALREADY_CONFIGURED, NOT_HTTP, LOCAL_FILE, INTERNAL or DUPLICATE_IN_OPML.
    """

    text: str
    added: list[OpmlFeed]
    skipped: list[tuple[OpmlFeed, str]]


# ---------------------------------------------------------------- export


def export_opml(config: Config, *, now: datetime | None = None) -> bytes:
    """The configured feeds, in config order, as an OPML 2.0 document (UTF-8 bytes).

    Without ``now`` there is no ``dateCreated``, so the same config always gives the same bytes.
    ``text`` is required by OPML, so a feed without a configured title shows its name there;
    ``title`` is only written for a configured title. Disabled feeds are exported as configured
    (the file is the list of subscriptions, not of what is polled today); local file:// feeds
    are left out (``left_out`` lists them): their paths mean nothing on another machine, and
    ``import_opml`` refuses them.
    """
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = _xml_text(config.output.title)
    if now is not None:
        stamp = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        etree.SubElement(head, "dateCreated").text = format_datetime(stamp, usegmt=True)
    body = etree.SubElement(root, "body")
    for feed in config.feeds:
        if _is_exported(feed):
            etree.SubElement(body, "outline", _outline_attributes(feed))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def left_out(config: Config) -> list[FeedConfig]:
    """The configured feeds ``export_opml`` leaves out: local file:// feeds."""
    return [feed for feed in config.feeds if not _is_exported(feed)]


def _is_exported(feed: FeedConfig) -> bool:
    return urlsplit(feed.url).scheme.lower() in ("http", "https")


def _outline_attributes(feed: FeedConfig) -> dict[str, str]:
    attributes = {"type": "rss", "text": _xml_text(feed.title or feed.name)}
    if feed.title:
        attributes["title"] = _xml_text(feed.title)
    attributes["xmlUrl"] = _xml_text(feed.url)
    if feed.tags:
        attributes["category"] = ",".join(_xml_text(tag) for tag in feed.tags)
    return attributes


def _xml_text(text: str) -> str:
    """Drop characters XML 1.0 cannot carry, so one odd title never breaks the export."""
    return _NOT_XML_CHAR.sub("", text)


# ---------------------------------------------------------------- parse


def parse_opml(data: bytes, *, source: str = "OPML") -> list[OpmlFeed]:
    """Every outline with an ``xmlUrl``, in document order, at any depth.

    Outlines without ``xmlUrl`` are folders: their ``text`` (or ``title``) becomes a tag of the
    feeds inside. Duplicates are kept (``add_feeds`` reports them). Raises ConfigError
    ``"{source}: not an OPML file: reason"`` for anything that is not well-formed OPML, including
    documents that declare XML entities, which are refused rather than expanded.
    """

    def refuse(reason: str) -> ConfigError:
        return ConfigError(f"{source}: not an OPML file: {reason}")

    if not data.strip():
        raise refuse("the file is empty")
    if any(marker in data for marker in _ENTITY_DECLARATIONS):
        raise refuse("it declares XML entities (refused: OPML never needs them)")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise refuse(f"not well-formed XML ({e})") from None
    except ValueError as e:  # e.g. an unknown encoding in the XML declaration
        raise refuse(f"unreadable XML ({e})") from None
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise refuse("it declares XML entities (refused: OPML never needs them)")
    if _local_name(root) != "opml":
        raise refuse(f"the root element is <{_local_name(root)}>, not <opml>")
    body = next((child for child in _elements(root) if _local_name(child) == "body"), None)
    if body is None:
        raise refuse("<opml> has no <body>")
    return list(_walk(body))


def _walk(body: etree._Element) -> Iterator[OpmlFeed]:
    """Depth-first, in document order, without recursion (nesting depth is the file's choice)."""
    stack: list[tuple[Iterator[etree._Element], tuple[str, ...]]] = [(_elements(body), ())]
    while stack:
        children, folders = stack[-1]
        outline = next(children, None)
        if outline is None:
            stack.pop()
            continue
        if _local_name(outline) != "outline":
            continue
        attributes = _attributes(outline)
        url = attributes.get("xmlurl", "").strip()
        if url:
            title = _one_line(attributes.get("title", "")) or _one_line(attributes.get("text", ""))
            html_url = attributes.get("htmlurl", "").strip() or None
            tags = _unique(folders + _category_tags(attributes.get("category", "")))
            yield OpmlFeed(url=url, title=title or None, html_url=html_url, tags=tags)
            stack.append((_elements(outline), folders))  # a feed's children keep its folders
        else:
            label = _one_line(attributes.get("text", "")) or _one_line(attributes.get("title", ""))
            stack.append((_elements(outline), folders + ((label,) if label else ())))


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Child elements only (comments and processing instructions are not outlines)."""
    return (child for child in parent if isinstance(child.tag, str))


def _local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def _attributes(element: etree._Element) -> dict[str, str]:
    """Attributes by lowercased name: exporters write xmlUrl, xmlurl and XMLURL."""
    result: dict[str, str] = {}
    for name, value in element.attrib.items():
        key = str(name)
        if not key.startswith("{"):  # namespaced attributes are someone else's
            result.setdefault(key.lower(), str(value))
    return result


def _category_tags(category: str) -> tuple[str, ...]:
    """``world,uk`` and ``/Harvard/Berkman,/Politics`` alike: every non-empty part is a tag."""
    parts = (part for entry in category.split(",") for part in entry.split("/"))
    return tuple(tag for tag in (_one_line(part) for part in parts) if tag)


def _one_line(text: str) -> str:
    """Collapse whitespace and drop controls: titles and tags become one plain line."""
    return " ".join(_NOT_LINE_CHAR.sub(" ", text).split())


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# ---------------------------------------------------------------- import into feeds.yaml


def add_feeds(config_text: str, config_path: Path, feeds: Sequence[OpmlFeed]) -> ImportResult:
    """feeds.yaml text with the new ``feeds`` appended to its ``feeds:`` list; writes nothing.

    Everything already in the text is kept as it is (comments, order, formatting). A feed is
    skipped when its URL is configured already (exactly, or the same canonical URL), is not
    http(s) (a file:// URL never is imported: the OPML may come from anyone), names an
    internal host, or repeats an earlier feed of the OPML (whose tags are then merged into that
    earlier one). Names stay unique (``-2``, ``-3``... after the default name). Raises
    ConfigError when the existing config is invalid, when its ``feeds:`` is an inline list, or
    when the new text would not load exactly as the old feeds plus the new ones.
    """
    lines = config_text.splitlines(keepends=True)
    block = _find_feeds_block(lines)
    old: Config | None = None
    if block is not None:  # an empty list too: its defaults (allow_private_addresses) count
        old = parse_config(config_text, config_path)  # refuse to edit a config that is invalid
    existing = old.feeds if old is not None else ()

    allow_private = old is not None and old.defaults.allow_private_addresses
    added, skipped = _classify(feeds, existing, allow_private=allow_private)
    if not added:
        return ImportResult(text=config_text, added=[], skipped=skipped)

    newline = "\r\n" if "\r\n" in config_text else "\n"
    names = _unique_names(added, {feed.name for feed in existing})
    text = _insert_items(lines, block, added, names, newline, config_path)
    _check(text, config_path, old, existing, added, names)
    return ImportResult(text=text, added=added, skipped=skipped)


def _classify(
    feeds: Sequence[OpmlFeed], existing: Sequence[FeedConfig], *, allow_private: bool = False
) -> tuple[list[OpmlFeed], list[tuple[OpmlFeed, str]]]:
    """Split the OPML feeds into the ones to add (cleaned, duplicates' tags merged) and the rest."""
    configured = {feed.url for feed in existing}
    configured |= {key for feed in existing if (key := canonical_url(feed.url))}
    pending: dict[str, OpmlFeed] = {}  # canonical URL -> feed to add, in OPML order
    skipped: list[tuple[OpmlFeed, str]] = []
    for feed in feeds:
        url = feed.url.strip()
        key = canonical_url(url) if _is_plain_http_url(url) else None
        if key is None:
            skipped.append((feed, LOCAL_FILE if _is_file_url(url) else NOT_HTTP))
        elif not allow_private and _names_an_internal_host(url):
            skipped.append((feed, INTERNAL))
        elif url in configured or key in configured:
            skipped.append((feed, ALREADY_CONFIGURED))
        elif key in pending:
            first = pending[key]
            pending[key] = replace(first, tags=_unique(first.tags + _clean_tags(feed.tags)))
            skipped.append((feed, DUPLICATE_IN_OPML))
        else:
            pending[key] = OpmlFeed(
                url=url,
                title=_useful_title(feed.title, url),
                html_url=feed.html_url,
                tags=_clean_tags(feed.tags),
            )
    return list(pending.values()), skipped


def _names_an_internal_host(url: str) -> bool:
    """The URL's host is `localhost` (or under it) or an internal IP address. A name is not
    resolved here; where it leads is checked when it is fetched only for redirects, so an
    OPML file is trusted with names as the config is."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost") or is_private_address(host)


def _is_file_url(url: str) -> bool:
    return url[:5].lower() == "file:"


def _is_plain_http_url(url: str) -> bool:
    """An absolute http(s) URL feeds.yaml accepts (config.http_url_problem): one the import
    added and the config then refused would fail the whole import."""
    return bool(url) and http_url_problem(url) is None


def _useful_title(title: str | None, url: str) -> str | None:
    """The OPML title, unless it is only the URL-derived name our own export writes as text.

    Configuring that as ``title`` would override the title the feed gives itself.
    """
    cleaned = _one_line(title or "")
    return cleaned if cleaned and cleaned != feed_name_from_url(url) else None


def _clean_tags(tags: Sequence[str]) -> tuple[str, ...]:
    return _unique([tag for tag in (_one_line(tag) for tag in tags) if tag])


def _unique_names(feeds: Sequence[OpmlFeed], taken: set[str]) -> list[str | None]:
    """Per feed: None when its default name is free, else the first free ``default-N``."""
    taken = set(taken)
    names: list[str | None] = []
    for feed in feeds:
        default = feed_name_from_url(feed.url)
        name, suffix = default, 2
        while name in taken:
            name, suffix = f"{default}-{suffix}", suffix + 1
        taken.add(name)
        names.append(None if name == default else name)
    return names


# ---------------------------------------------------------------- editing the text

_FEEDS_KEY = re.compile(r"""^(\ufeff?(["']?)feeds\2[ \t]*:)(.*?)(\r?\n)?$""")
_ITEM = re.compile(r"^([ \t]*)-([ \t]+|\r?$)")
_EMPTY_VALUES = frozenset({"", "[]", "~", "null", "Null", "NULL"})


@dataclass(frozen=True, slots=True)
class _FeedsBlock:
    """Where the top-level ``feeds:`` key is in the text, and where new items go."""

    key_line: int  # index of the ``feeds:`` line
    value: str  # what follows the colon on that line, comment removed
    comment: str  # the comment on that line, if any
    insert_at: int  # index of the line new items are inserted before
    item_indent: str  # indentation of the existing ``-`` items ("  " when there are none)
    key_indent: str  # indentation of the keys inside an item (after ``- ``)
    has_items: bool
    first_content_is_item: bool


def _find_feeds_block(lines: Sequence[str]) -> _FeedsBlock | None:
    """Locate the top-level ``feeds:`` key by its text (no YAML library here; see module doc).

    The block runs until the next line at column 0 that is not a comment or a ``-`` item (the
    next top-level key or a document marker). New items go after its last line that belongs to
    the list: comments at column 0 after it belong to what follows.
    """
    for index, line in enumerate(lines):
        match = _FEEDS_KEY.match(line)
        if match is None:
            continue
        value, comment = _split_comment(match.group(3))
        value = "[]" if re.fullmatch(r"\[\s*\]", value) else value
        end = index + 1
        while end < len(lines):
            current = lines[end]
            starts_at_zero = current[:1] not in (" ", "\t", "\r", "\n")
            if starts_at_zero and not current.startswith("#") and not _ITEM.match(current):
                break
            end += 1
        insert_at = index + 1
        first_item: str | None = None  # the line of the first "- " item
        first_content_is_item = True
        seen_content = False
        for position in range(index + 1, end):
            current = lines[position]
            stripped = current.strip()
            if not stripped or current.startswith("#"):
                continue
            insert_at = position + 1
            if stripped.startswith("#"):
                continue
            is_item = _ITEM.match(current) is not None
            if not seen_content:
                first_content_is_item, seen_content = is_item, True
            if is_item and first_item is None:
                first_item = current
        item_indent, key_indent = "  ", "    "
        if first_item is not None:
            item = _ITEM.match(first_item)
            assert item is not None
            item_indent = item.group(1)
            # keys inside an item line up with the first one ("  - url:" -> 4 spaces)
            rest = first_item[item.end() :].strip()
            inline = bool(rest) and not rest.startswith("#")
            key_indent = item_indent + " " + item.group(2) if inline else item_indent + "  "
        return _FeedsBlock(
            key_line=index,
            value=value,
            comment=comment,
            insert_at=insert_at,
            item_indent=item_indent,
            key_indent=key_indent,
            has_items=first_item is not None,
            first_content_is_item=first_content_is_item,
        )
    return None


def _split_comment(rest: str) -> tuple[str, str]:
    """``' []  # none yet'`` -> ``('[]', '# none yet')``: a ``#`` after a blank starts a comment."""
    stripped = rest.strip()
    if stripped.startswith("#"):
        return "", stripped
    match = re.search(r"[ \t]#", rest)
    if match is None:
        return stripped, ""
    return rest[: match.start()].strip(), rest[match.start() :].strip()


def _insert_items(
    lines: list[str],
    block: _FeedsBlock | None,
    feeds: Sequence[OpmlFeed],
    names: Sequence[str | None],
    newline: str,
    config_path: Path,
) -> str:
    """The text with the items inserted; the lines around them are kept byte for byte."""
    lines = list(lines)
    if block is None:  # no feeds: key at all -> a new block at the end
        item_indent, key_indent = "  ", "    "
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        lines.append("feeds:" + newline)
        insert_at = len(lines)
    else:
        item_indent, key_indent = block.item_indent, block.key_indent
        insert_at = block.insert_at
        if block.value in _EMPTY_VALUES and block.value:  # feeds: [] -> a block list
            match = _FEEDS_KEY.match(lines[block.key_line])
            assert match is not None  # _find_feeds_block matched this very line
            comment = f"  {block.comment}" if block.comment else ""
            lines[block.key_line] = match.group(1) + comment + (match.group(4) or newline)
        elif block.value:
            raise ConfigError(
                f"{config_path}:{block.key_line + 1}: feeds: is written inline "
                f"({block.value[:40]}); write it as a block list, one '- url: ...' per line, "
                "to import feeds into it"
            )
        elif not block.first_content_is_item:
            raise ConfigError(
                f"{config_path}:{block.key_line + 1}: feeds: is not a block list of "
                "'- url: ...' items; cannot append to it"
            )
        previous = lines[insert_at - 1]
        if not previous.endswith(("\n", "\r")):
            lines[insert_at - 1] = previous + newline
    new_lines = [
        line + newline
        for feed, name in zip(feeds, names, strict=True)
        for line in _item_lines(feed, name, item_indent, key_indent)
    ]
    lines[insert_at:insert_at] = new_lines
    return "".join(lines)


def _item_lines(feed: OpmlFeed, name: str | None, item_indent: str, key_indent: str) -> list[str]:
    """One list item, every string double-quoted (JSON strings are valid YAML scalars)."""
    dash = item_indent + "-" + key_indent[len(item_indent) + 1 :]  # "  - ", or "    -   "
    lines = [f"{dash}url: {_quote(feed.url)}"]
    if name is not None:
        lines.append(f"{key_indent}name: {_quote(name)}")
    if feed.title:
        lines.append(f"{key_indent}title: {_quote(feed.title)}")
    if feed.tags:
        lines.append(f"{key_indent}tags: [{', '.join(_quote(tag) for tag in feed.tags)}]")
    return lines


def _quote(value: str) -> str:
    """A YAML double-quoted scalar; values were cleaned of controls and line separators first."""
    return json.dumps(value, ensure_ascii=False)


def _check(
    text: str,
    config_path: Path,
    old: Config | None,
    existing: Sequence[FeedConfig],
    added: Sequence[OpmlFeed],
    names: Sequence[str | None],
) -> None:
    """Raise unless ``text`` loads as exactly the old config plus the added feeds."""
    try:
        new = parse_config(text, config_path)
    except ConfigError as e:
        raise ConfigError(f"cannot add the OPML feeds to {config_path}: {e}") from None
    expected = [
        FeedConfig(
            url=feed.url,
            name=name or feed_name_from_url(feed.url),
            title=feed.title,
            tags=feed.tags,
        )
        for feed, name in zip(added, names, strict=True)
    ]
    same_rest = old is None or (
        (new.database, new.output, new.defaults) == (old.database, old.output, old.defaults)
    )
    if list(new.feeds) != [*existing, *expected] or not same_rest:
        raise ConfigError(
            f"cannot add the OPML feeds to {config_path}: its layout is too unusual to append "
            "to safely; add them by hand"
        )


# ---------------------------------------------------------------- files


def import_opml(config_path: Path, opml_path: Path) -> ImportResult:
    """Add the OPML file's new feeds to the config file, atomically and only if there are any.

    The config keeps its mtime when nothing is new. Raises ConfigError when either file cannot
    be read, the OPML is not OPML, the config is invalid, or the config cannot be written.
    """
    config_path, opml_path = Path(config_path), Path(opml_path)
    data = _read(opml_path, "OPML file")
    try:
        config_text = _read(config_path, "config file").decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{config_path}: cannot read config file: {e}") from None
    result = add_feeds(config_text, config_path, parse_opml(data, source=str(opml_path)))
    if result.added:
        target = config_path.resolve()  # a symlinked config stays a symlink
        try:
            write_atomic(target, result.text.encode("utf-8"))
        except OSError as e:
            raise ConfigError(f"{config_path}: cannot write config file: {e}") from None
    return result


def _read(path: Path, what: str) -> bytes:
    """The file's bytes (newlines untouched, so CRLF configs keep CRLF)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what}: {e}") from None
