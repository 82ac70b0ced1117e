"""What RSS, Atom and JSON Feed entries share once read: bounded titles, web URLs, dates
clamped to now, stable ids, and one entry per id."""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.sanitize import (
    MAX_HTML_CHARS,
    MAX_HTML_DEPTH,
    bounded_fragment,
    collapse_space,
    is_web_url,
    strip_invalid_chars,
)
from aggregator.types import Entry
from aggregator.urls import absolute_url

FUTURE_TOLERANCE = timedelta(minutes=10)  # clock skew we accept before clamping a date


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# RFC 6838 type/subtype names, then optional parameters.
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;.*)?$"
)


_DOTTED_DATE = re.compile(
    r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$"
)


_WARNING_MAX = 200


# A headline is a line; past this many characters it is cut (issue 13: 2 KB).
MAX_TITLE_CHARS = 2_000


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


def _media_type(value: object) -> str | None:
    """A MIME type such as ``audio/mpeg`` (parameters kept), or None for junk.

    Atom requires type/subtype (RFC 4287 atomMediaType), and a reader cannot use anything else.
    """
    text = collapse_space(value) if isinstance(value, str) else ""
    return text if _MEDIA_TYPE.match(text) else None


def _str(value: object) -> str:
    """A JSON value as a string if it is one, else ''."""
    return value if isinstance(value, str) else ""


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
    """feedparser's UTC struct_time as an aware datetime (timegm, never mktime: mktime reads
    it as local time)."""
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
