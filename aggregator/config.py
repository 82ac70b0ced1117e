"""feeds.yaml -> Config. The only module that imports yaml.

The file is composed into YAML nodes (not loaded into plain dicts) so that every error can name
the file, the line and the key: ``feeds.yaml:12: feeds[3].interval: '5 parsecs' is not a
duration``. Validation is all-or-nothing: a bad config stops before anything is fetched.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aggregator.errors import ConfigError
from aggregator.rules import pattern_problem
from aggregator.types import (
    AUTO,
    OLDER_THAN,
    RULE_FIELDS,
    Condition,
    Config,
    Defaults,
    ExtraOutput,
    FeedConfig,
    Interval,
    OutputConfig,
    Retention,
    Rules,
    Selection,
)
from aggregator.urls import canonical_url

DEFAULT_CONFIG = Path("feeds.yaml")
DEFAULT_DATABASE = "db/aggregator.db"
DEFAULT_OUTPUT_DIR = "output"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


_DURATION_UNITS_TEXT = "units: ms, s, m, h, d, w"
_DURATION_EXAMPLES = "90s, 30m, 2h, 1d, 1h30m"
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _no_unit(text: str, examples: str = _DURATION_EXAMPLES) -> str:
    """The message for a duration written without its unit (``30``, or YAML's ``1:30``)."""
    text = text.strip()
    if _PLAIN_NUMBER.fullmatch(text):
        return (
            f"{text} has no unit: write e.g. {text}s, {text}m or {text}h ({_DURATION_UNITS_TEXT})"
        )
    return f"{text!r} is not a duration (use e.g. {examples}; {_DURATION_UNITS_TEXT})"


def parse_duration(text: str | int | float, *, examples: str = _DURATION_EXAMPLES) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1w``, ``1h30m``, ``1.5h``, ``250ms`` -> timedelta.

    The unit is required: a bare ``30`` was read as seconds where minutes were meant as often.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        raise ValueError(_no_unit(str(text)))
    stripped = text.strip().replace(" ", "")
    parts = _DURATION_PART.findall(stripped)
    if not parts or "".join(n + u for n, u in parts).lower() != stripped.lower():
        raise ValueError(_no_unit(text, examples))
    seconds = sum(float(n) * _DURATION_UNITS[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def parse_interval(text: str | int | float) -> Interval:
    """A polling interval: a duration, or ``auto`` to follow the feed's publishing rate."""
    if isinstance(text, str) and text.strip().lower() == AUTO:
        return AUTO
    return parse_duration(text, examples=f"{_DURATION_EXAMPLES} or auto")


def parse_size(text: str | int) -> int:
    """``10MB``, ``512KiB`` or a number of bytes -> bytes."""
    match = _SIZE.match(str(text))
    if not match or isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size (use e.g. 10MB, 512KiB)")
    size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(f"{text!r} is not a positive size")
    return size


def feed_name_from_url(url: str) -> str:
    """A readable, stable default name: host and path, e.g. ``bbc.co.uk/news/world/rss.xml``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(parts.path).stem or "feed"
    host = (parts.hostname or "").removeprefix("www.")
    path = parts.path.strip("/")
    name = f"{host}/{path}" if path else host
    return name + (f"?{parts.query}" if parts.query else "")


# Characters no URL may carry as they are: whitespace (Unicode's too), controls, and what no
# UTF-8 file can hold. A space in a path is written %20.
_NOT_URL_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# One label of a host name: ASCII letters, digits, '-' and '_' (seen in real hosts), or
# non-ASCII letters (an internationalized name, IDNA-encoded when fetched).
_HOST_LABEL = re.compile(r"(?:[A-Za-z0-9_-]|[^\x00-\x7f]){1,63}")


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable absolute http(s) URL, or None when it is.

    A URL such as ``http:/x``, ``https://`` or ``http://exa mple.org/`` used to load and fail
    only when fetched, under a feed named ``/x`` or nothing. `opml import` uses this check too,
    so a URL it adds always loads from feeds.yaml.
    """
    if _NOT_URL_CHAR.search(url):
        return "contains a space or a control character (write a space as %20)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number 0-65535)
    except ValueError as e:
        return f"is not a valid URL ({e})"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an absolute http(s) URL"
    host = parts.hostname
    if not host:
        return "has no host (expected http(s)://host/path)"
    if "[" not in parts.netloc:  # an [IP literal] was checked by urlsplit
        labels = host.removesuffix(".").split(".")
        if not all(_HOST_LABEL.fullmatch(label) for label in labels):
            return f"has an invalid host {host!r}"
    return None


# ---------------------------------------------------------------- YAML node helpers


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Reader:
    """Walks composed YAML nodes, raising ConfigError with file:line and key path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Builds a scalar's value from its node directly (the node's tag is already resolved).
        self._constructor = yaml.constructor.SafeConstructor()

    def error(self, node: Node | None, key: str, message: str) -> ConfigError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        where = f" {key}:" if key else ""
        return ConfigError(f"{self.path}{line}:{where} {message}")

    def mapping(
        self, node: Node, key: str, allowed: frozenset[str]
    ) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.error(node, key, "expected a mapping of keys to values")
        result: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, ScalarNode) else None
            path = f"{key}.{name}" if key else str(name)
            if not isinstance(name, str):
                raise self.error(key_node, key, "keys must be plain names")
            if name not in allowed:
                raise self.error(
                    key_node, path, f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )
            if name in result:
                raise self.error(key_node, path, "key given twice")
            result[name] = (key_node, value_node)
        return result

    def scalar(self, node: Node, key: str) -> Any:
        if not isinstance(node, ScalarNode):
            raise self.error(node, key, "expected a single value")
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:  # a tag the safe loader does not know: !foo, !!python/...
            problem = getattr(e, "problem", None) or str(e)
            raise self.error(node, key, f"cannot read this value: {problem}") from None

    def string(self, node: Node, key: str) -> str:
        value = self.scalar(node, key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(node, key, f"expected text, got {value!r}")
        return value.strip()

    def convert(self, node: Node, key: str, convert: Callable[[Any], Any]) -> Any:
        value = self.scalar(node, key)
        try:
            return convert(value)
        except (ValueError, TypeError) as e:
            raise self.error(node, key, str(e)) from None

    def duration(self, node: Node, key: str, convert: Callable[[Any], Any]) -> Any:
        """A duration field, checked as written: YAML reads ``30`` and ``1:30`` as numbers."""
        value = self.scalar(node, key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert isinstance(node, ScalarNode)  # self.scalar checked it
            value = node.value
        try:
            return convert(value)
        except (ValueError, TypeError) as e:
            raise self.error(node, key, str(e)) from None


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive whole number, got {value!r}")
    return value


def _positive_seconds(value: Any) -> float:
    return parse_duration(value).total_seconds()


def _absolute_http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an absolute http(s) URL, got {value!r}")
    problem = http_url_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} {problem}")
    return value


# ---------------------------------------------------------------- sections

_TOP_KEYS = frozenset({"database", "output", "defaults", "feeds", "retention", "outputs", "rules"})
_RETENTION_KEYS = frozenset({"days", "max_entries_per_feed"})
_OUTPUT_KEYS = frozenset(
    {
        "dir",
        "title",
        "link",
        "id",
        "base_url",
        "max_entries",
        "websub_hub",
        "group_stories",
        "template",
        "keep_tracking",
    }
)
_DEFAULTS_KEYS = frozenset(
    {
        "interval",
        "min_interval",
        "timeout",
        "connect_timeout",
        "parse_timeout",
        "max_body_size",
        "workers",
        "per_host",
        "user_agent",
        "allow_private_addresses",
    }
)
# Every duration in the file, read alike (reader.duration): the feeds' `interval` too.
_DURATION_FIELDS = frozenset(
    {"interval", "min_interval", "timeout", "connect_timeout", "parse_timeout"}
)
_FEED_KEYS = frozenset({"url", "name", "title", "tags", "interval", "enabled", "prefer", "rules"})
_RULES_KEYS = frozenset({"block", "keep"})
_CONDITION_KEYS = frozenset({*RULE_FIELDS, OLDER_THAN})


def _resolve_feed_url(raw: str, base_dir: Path) -> str:
    """http(s) and file:// URLs stay as they are; anything else is a path beside the config."""
    try:
        scheme = urlsplit(raw).scheme.lower()
    except ValueError as e:  # e.g. an unclosed [IPv6 literal
        raise ValueError(f"{raw!r} is not a valid URL ({e})") from None
    if scheme in ("http", "https"):
        problem = http_url_problem(raw)
        if problem is not None:
            raise ValueError(f"{raw!r} {problem}")
        return raw
    if scheme == "file":
        return raw
    if scheme and len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise ValueError(f"unsupported URL scheme {scheme!r} (use http, https, file or a path)")
    return (base_dir / raw).resolve().as_uri()


def _read_output(reader: _Reader, node: Node, base_dir: Path) -> OutputConfig:
    fields = reader.mapping(node, "output", _OUTPUT_KEYS)
    output = OutputConfig(dir=(base_dir / DEFAULT_OUTPUT_DIR))
    for name, (_key_node, value) in fields.items():
        key = f"output.{name}"
        if name == "dir":
            output = replace(output, dir=base_dir / reader.string(value, key))
        elif name == "title":
            output = replace(output, title=reader.string(value, key))
        elif name == "id":
            output = replace(output, id=reader.string(value, key))
        elif name == "link":
            output = replace(output, link=reader.convert(value, key, _absolute_http_url))
        elif name == "websub_hub":
            output = replace(output, websub_hub=reader.convert(value, key, _absolute_http_url))
        elif name == "base_url":
            url = reader.convert(value, key, _absolute_http_url)
            output = replace(output, base_url=url if url.endswith("/") else url + "/")
        elif name == "template":
            output = replace(output, template=base_dir / reader.string(value, key))
        elif name == "group_stories":
            output = replace(output, group_stories=reader.convert(value, key, _boolean))
        elif name == "max_entries":
            output = replace(output, max_entries=reader.convert(value, key, _positive_int))
        elif name == "keep_tracking":
            output = replace(output, keep_tracking=reader.convert(value, key, _boolean))
    if output.websub_hub and not output.base_url:
        raise reader.error(
            fields["websub_hub"][1],
            "output.websub_hub",
            "a hub needs output.base_url, the public URL the hub will fetch the feeds from",
        )
    if ":" not in output.id:
        raise reader.error(
            fields["id"][1], "output.id", "expected an absolute IRI like tag:example.org,2026:news"
        )
    return output


def _read_defaults(reader: _Reader, node: Node) -> Defaults:
    fields = reader.mapping(node, "defaults", _DEFAULTS_KEYS)
    converters: dict[str, Callable[[Any], Any]] = {
        "interval": parse_interval,
        "min_interval": parse_duration,
        "timeout": _positive_seconds,
        "connect_timeout": _positive_seconds,
        "parse_timeout": _positive_seconds,
        "max_body_size": parse_size,
        "workers": _positive_int,
        "per_host": _positive_int,
        "allow_private_addresses": _boolean,
    }
    values: dict[str, Any] = {}
    for name, (_key_node, value) in fields.items():
        key = f"defaults.{name}"
        if name == "user_agent":
            values[name] = reader.string(value, key)
        elif name in _DURATION_FIELDS:
            values[name] = reader.duration(value, key, converters[name])
        else:
            values["max_body_bytes" if name == "max_body_size" else name] = reader.convert(
                value, key, converters[name]
            )
    return Defaults(**values)


def _read_retention(reader: _Reader, node: Node) -> Retention:
    fields = reader.mapping(node, "retention", _RETENTION_KEYS)
    values = {
        name: reader.convert(value, f"retention.{name}", _positive_int)
        for name, (_key_node, value) in fields.items()
    }
    return Retention(**values)


def _read_feed(reader: _Reader, node: Node, key: str, base_dir: Path) -> FeedConfig:
    fields = reader.mapping(node, key, _FEED_KEYS)
    if "url" not in fields:
        raise reader.error(node, key, "missing required key 'url'")
    # Text, not `yes` or 12345 read by YAML as a bool or a number (`url: yes` was a feed "True").
    written = reader.string(fields["url"][1], f"{key}.url")
    url = reader.convert(
        fields["url"][1], f"{key}.url", lambda _: _resolve_feed_url(written, base_dir)
    )
    feed = FeedConfig(url=url, name=feed_name_from_url(url))
    for name, (_key_node, value) in fields.items():
        field_key = f"{key}.{name}"
        if name == "name":
            feed = replace(feed, name=reader.string(value, field_key))
        elif name == "title":
            feed = replace(feed, title=reader.string(value, field_key))
        elif name == "interval":
            feed = replace(feed, interval=reader.duration(value, field_key, parse_interval))
        elif name == "enabled":
            feed = replace(feed, enabled=reader.convert(value, field_key, _boolean))
        elif name == "prefer":
            feed = replace(feed, prefer=reader.convert(value, field_key, _boolean))
        elif name == "tags":
            feed = replace(feed, tags=_read_tags(reader, value, field_key))
        elif name == "rules":
            feed = replace(feed, rules=_read_rules(reader, value, field_key))
    return feed


def _read_rules(reader: _Reader, node: Node, key: str) -> Rules:
    """`rules:` (top-level or a feed's): `block:` and `keep:` lists of conditions."""
    fields = reader.mapping(node, key, _RULES_KEYS)
    lists = {
        name: _read_conditions(reader, value, f"{key}.{name}")
        for name, (_key_node, value) in fields.items()
    }
    return Rules(block=lists.get("block", ()), keep=lists.get("keep", ()))


def _read_conditions(reader: _Reader, node: Node, key: str) -> tuple[Condition, ...]:
    if isinstance(node, ScalarNode) and reader.scalar(node, key) is None:
        return ()  # `block:` with every condition commented out
    if not isinstance(node, SequenceNode):
        raise reader.error(
            node, key, "expected a list of conditions, e.g. - title: Sponsored, - older_than: 30d"
        )
    return tuple(_read_condition(reader, item, f"{key}[{i}]") for i, item in enumerate(node.value))


def _read_condition(reader: _Reader, node: Node, key: str) -> Condition:
    """One condition: a regular expression on one field (``title: Sponsored``) or an age
    (``older_than: 30d``). A pattern that does not compile, or is catastrophically slow on a
    test string, is refused here: it would otherwise stall every build."""
    fields = reader.mapping(node, key, _CONDITION_KEYS)
    if len(fields) != 1:
        raise reader.error(
            node,
            key,
            "a condition has exactly one key: "
            f"{', '.join(RULE_FIELDS)} (a regular expression) or {OLDER_THAN} (an age); "
            "list two conditions to use two",
        )
    ((name, (_key_node, value)),) = fields.items()
    field_key = f"{key}.{name}"
    if name == OLDER_THAN:
        return Condition(OLDER_THAN, older_than=reader.duration(value, field_key, parse_duration))
    pattern = reader.scalar(value, field_key)
    if not isinstance(pattern, str) or not pattern:
        raise reader.error(
            value, field_key, f'expected a regular expression (quote it: "..."), got {pattern!r}'
        )
    problem = pattern_problem(pattern)
    if problem is not None:
        raise reader.error(value, field_key, problem)
    return Condition(name, pattern=pattern)


def _read_tags(reader: _Reader, node: Node, key: str) -> tuple[str, ...]:
    if isinstance(node, ScalarNode):
        return (reader.string(node, key),)
    if not isinstance(node, SequenceNode):
        raise reader.error(node, key, "expected a list of tags")
    tags = [reader.string(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
    return tuple(dict.fromkeys(tags))


def _read_feeds(reader: _Reader, node: Node, base_dir: Path) -> tuple[FeedConfig, ...]:
    if isinstance(node, ScalarNode) and reader.scalar(node, "feeds") is None:
        return ()  # `feeds:` with nothing (every item commented out): an empty list, see no_feeds
    if not isinstance(node, SequenceNode):
        raise reader.error(node, "feeds", "expected a list of feeds (each a mapping with a url)")
    feeds: list[FeedConfig] = []
    # By the key `opml import` compares with (urls.canonical_url): host and scheme case, a
    # default port, tracking parameters and the query's order do not make another feed.
    seen_urls: dict[str, tuple[str, int]] = {}
    seen_names: dict[str, int] = {}
    for index, item in enumerate(node.value):
        key = f"feeds[{index}]"
        if isinstance(item, ScalarNode):  # "- https://..." shorthand
            item = MappingNode(
                "tag:yaml.org,2002:map",
                [(ScalarNode("tag:yaml.org,2002:str", "url"), item)],
                item.start_mark,
                item.end_mark,
            )
        feed = _read_feed(reader, item, key, base_dir)
        line = item.start_mark.line + 1
        url_key = canonical_url(feed.url) or feed.url
        if url_key in seen_urls:
            first_url, first_line = seen_urls[url_key]
            same = "also" if first_url == feed.url else f"the same feed as {first_url}"
            raise reader.error(
                item, f"{key}.url", f"duplicate feed {feed.url} ({same} at line {first_line})"
            )
        if feed.name in seen_names:
            raise reader.error(
                item,
                f"{key}.name",
                f"duplicate feed name {feed.name!r} (first at line {seen_names[feed.name]}); "
                "give one of them a distinct name",
            )
        seen_urls[url_key] = (feed.url, line)
        seen_names[feed.name] = line
        feeds.append(feed)
    return tuple(feeds)


# ---------------------------------------------------------------- outputs: extra merged feeds

_EXTRA_OUTPUT_KEYS = frozenset(
    {"name", "title", "id", "tags", "feeds", "search", "min_outlets", "since", "max_entries"}
)
# A folder name that is the same on every file system and in every URL: no dots, so it can
# never be the main output's atom.xml or index.html, nor "..", nor a hidden or temporary name
# the server refuses to publish.
_OUTPUT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TAG_SPECIFIC_SAFE = "-._~!$&'()*+,;=:@/?"  # what a tag: URI's specific part may hold as is


def default_output_id(main_id: str, name: str) -> str:
    """The permanent id of an extra output that gives none: the main output's, plus its name.

    A tag: id gains ``/name`` (``tag:example.org,2026:news/world``); any other becomes a tag:
    id around it. Stable as long as the main id and the name are: readers key on it.
    """
    if main_id.lower().startswith("tag:"):
        return f"{main_id}/{name}"
    return f"tag:aggregator.invalid,2026:{quote(main_id, safe=_TAG_SPECIFIC_SAFE)}/{name}"


def search_problem(query: str) -> str | None:
    """Why ``query`` is not a valid FTS5 query over the entries' search index, or None.

    Asked of SQLite itself, on an empty in-memory table with the columns of ``entries_fts``
    (store/schema.py), so a bad search stops the config load, not a later build.
    """
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE entries_fts USING fts5(title, summary, content, tokenize=porter)"
        )
        conn.execute("SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?", [query]).fetchall()
    except sqlite3.Error as e:
        return str(e)
    finally:
        conn.close()
    return None


def _read_names(reader: _Reader, node: Node, key: str) -> list[tuple[str, Node]]:
    """A list of names (or one name), each with its node for a line-precise error."""
    items = [node] if isinstance(node, ScalarNode) else None
    if items is None:
        if not isinstance(node, SequenceNode) or not node.value:
            raise reader.error(node, key, "expected a list of names")
        items = node.value
    return [(reader.string(item, f"{key}[{i}]"), item) for i, item in enumerate(items)]


def _unknown(what: str, name: str, known: set[str]) -> str:
    """``unknown tag 'wrld' (did you mean 'world'?)``, or the whole short list."""
    close = difflib.get_close_matches(name, sorted(known), n=3)
    if close:
        hint = "did you mean " + " or ".join(map(repr, close)) + "?"
    elif not known:
        hint = "no feed has tags" if what == "tag" else "no feeds are configured"
    elif len(known) <= 10:
        hint = f"{what}s: {', '.join(sorted(known))}"
    else:
        hint = f"none of the {len(known)} {what}s of the feeds is close"
    return f"unknown {what} {name!r} ({hint})"


def _read_extra_output(
    reader: _Reader, node: Node, key: str, output: OutputConfig, feeds: tuple[FeedConfig, ...]
) -> ExtraOutput:
    fields = reader.mapping(node, key, _EXTRA_OUTPUT_KEYS)
    for required in ("name", "title"):
        if required not in fields:
            raise reader.error(node, key, f"missing required key {required!r}")
    name_node = fields["name"][1]
    name = reader.string(name_node, f"{key}.name")
    if not _OUTPUT_NAME.fullmatch(name):
        raise reader.error(
            name_node,
            f"{key}.name",
            f"{name!r} is not a usable folder name (it becomes {output.dir.name}/NAME/): "
            "use lowercase letters, digits, '-' and '_', starting with a letter or digit",
        )
    title = reader.string(fields["title"][1], f"{key}.title")
    feed_id = default_output_id(output.id, name)
    if "id" in fields:
        feed_id = reader.string(fields["id"][1], f"{key}.id")
        if ":" not in feed_id:
            raise reader.error(
                fields["id"][1],
                f"{key}.id",
                "expected an absolute IRI like tag:example.org,2026:world",
            )
    selection = Selection(max_entries=output.max_entries)
    for field, (_key_node, value) in fields.items():
        field_key = f"{key}.{field}"
        if field == "tags":
            known = {tag for feed in feeds for tag in feed.tags}
            tags = _read_names(reader, value, field_key)
            for i, (tag, tag_node) in enumerate(tags):
                if tag not in known:
                    raise reader.error(tag_node, f"{field_key}[{i}]", _unknown("tag", tag, known))
            selection = replace(selection, tags=tuple(dict.fromkeys(t for t, _ in tags)))
        elif field == "feeds":
            known = {feed.name for feed in feeds}
            names = _read_names(reader, value, field_key)
            for i, (feed_name, name_node) in enumerate(names):
                if feed_name not in known:
                    raise reader.error(
                        name_node, f"{field_key}[{i}]", _unknown("feed", feed_name, known)
                    )
            selection = replace(selection, feeds=tuple(dict.fromkeys(n for n, _ in names)))
        elif field == "search":
            query = reader.string(value, field_key)
            problem = search_problem(query)
            if problem is not None:
                raise reader.error(
                    value,
                    field_key,
                    f"{query!r} is not a valid search: {problem} (FTS5 syntax: words, "
                    '"a phrase", OR, NOT, prefix*, title:word)',
                )
            selection = replace(selection, search=query)
        elif field == "min_outlets":
            selection = replace(
                selection, min_outlets=reader.convert(value, field_key, _positive_int)
            )
        elif field == "since":
            selection = replace(selection, since=reader.duration(value, field_key, parse_duration))
        elif field == "max_entries":
            selection = replace(
                selection, max_entries=reader.convert(value, field_key, _positive_int)
            )
    return ExtraOutput(name=name, title=title, id=feed_id, selection=selection)


def _read_outputs(
    reader: _Reader, node: Node, output: OutputConfig, feeds: tuple[FeedConfig, ...]
) -> tuple[ExtraOutput, ...]:
    """`outputs:`, each checked against the feeds: a tag or a feed no feed has is an error."""
    if isinstance(node, ScalarNode) and reader.scalar(node, "outputs") is None:
        return ()
    if not isinstance(node, SequenceNode):
        raise reader.error(node, "outputs", "expected a list of outputs (each with a name)")
    found: list[ExtraOutput] = []
    names: dict[str, int] = {}  # each name and each id once, with the line it was first at
    ids: dict[str, int] = {}
    for index, item in enumerate(node.value):
        key = f"outputs[{index}]"
        extra = _read_extra_output(reader, item, key, output, feeds)
        line = item.start_mark.line + 1
        if extra.name in names:
            raise reader.error(
                item,
                f"{key}.name",
                f"duplicate output name {extra.name!r} (first at line {names[extra.name]})",
            )
        if extra.id == output.id or extra.id in ids:
            first = "output.id" if extra.id == output.id else f"the output at line {ids[extra.id]}"
            raise reader.error(item, f"{key}.id", f"{extra.id!r} is already the id of {first}")
        names[extra.name] = ids[extra.id] = line
        found.append(extra)
    return tuple(found)


def read_yaml(path: Path) -> Any:
    """Any YAML file, safely loaded (Datasette's metadata template): yaml stays in this module."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None


ALLOW_EMPTY_HINT = (
    "add some (`aggregator opml import FILE` reads another reader's list), "
    "or give --allow-empty to poll none"
)


def no_feeds(config: Config) -> str | None:
    """``no feeds configured in FILE`` when the feed list is empty, else None.

    Not a load error: `build`, the queries and `opml import` have work to do without feeds.
    The commands that poll refuse an empty list unless given ``--allow-empty``, since polling
    nothing and exiting 0 hid a config whose feeds had all been commented out.
    """
    return None if config.feeds else f"no feeds configured in {config.path}"


def load_config(path: Path | str) -> Config:
    """Read and validate a config file; raise ConfigError naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config file: {e}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate config text; relative paths in it are relative to ``path``'s folder."""
    reader = _Reader(path)
    try:
        # libyaml's loader when installed: the pure-Python one took 0.3 s for 1,000 feeds.
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{path}{line}: YAML syntax error: {problem}") from None
    if root is None:
        raise ConfigError(f"{path}: config file is empty (it needs at least a 'feeds:' list)")
    base_dir = path.resolve().parent
    fields = reader.mapping(root, "", _TOP_KEYS)
    if "feeds" not in fields:
        raise reader.error(root, "feeds", "missing required key 'feeds' (a list of feeds)")
    database = base_dir / DEFAULT_DATABASE
    if "database" in fields:
        database = base_dir / reader.string(fields["database"][1], "database")
    output = (
        _read_output(reader, fields["output"][1], base_dir)
        if "output" in fields
        else OutputConfig(dir=base_dir / DEFAULT_OUTPUT_DIR)
    )
    defaults = _read_defaults(reader, fields["defaults"][1]) if "defaults" in fields else Defaults()
    feeds = _read_feeds(reader, fields["feeds"][1], base_dir)
    retention = (
        _read_retention(reader, fields["retention"][1]) if "retention" in fields else Retention()
    )
    outputs = (
        _read_outputs(reader, fields["outputs"][1], output, feeds) if "outputs" in fields else ()
    )
    rules = _read_rules(reader, fields["rules"][1], "rules") if "rules" in fields else Rules()
    return Config(
        path=path,
        database=database,
        output=output,
        defaults=defaults,
        feeds=feeds,
        rules=rules,
        retention=retention,
        outputs=outputs,
    )
