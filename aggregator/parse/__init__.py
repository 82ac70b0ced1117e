"""Turn a fetched body into a ParsedFeed: RSS/Atom via feedparser, JSON Feed by hand.

Pure: no network, no files, no database, no clock (``now`` is passed in). Every HTML field is
sanitized and absolutized in one nh3 pass (sanitize.clean_html); feedparser's own sanitizer and
URI resolution are off because they are slow and incomplete. Any problem with the input comes
out as ParseError; a document that is not well formed but still readable is returned with
``warning`` set.

The package: `sniff` (what the body is, its encoding, and the guards run before any parser),
`xml` (RSS and Atom through feedparser), `jsonfeed` (JSON Feed), `hints` (what a feed says about
polling it), `normalize` (what every format's entries share), `feedparser_patches` (our
subclasses of feedparser's parsers). `parse_feed` is the one entry point; a parse worker
process calls it through `aggregator.parse_worker.parse_response`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from aggregator.errors import ParseError
from aggregator.parse.jsonfeed import _parse_json
from aggregator.parse.normalize import FUTURE_TOLERANCE
from aggregator.parse.sniff import _JSON_TYPES, _head
from aggregator.parse.xml import _parse_xml
from aggregator.types import ParsedFeed

__all__ = ["FUTURE_TOLERANCE", "parse_feed"]


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
