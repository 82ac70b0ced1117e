"""OutputFeed -> JSON Feed 1.1 bytes (https://jsonfeed.org/version/1.1)."""

from __future__ import annotations

import json
from typing import Any

from ..types import Coverage, OutputEntry, OutputFeed, SourceFeed
from .common import (
    body_html,
    clean,
    display_title,
    href,
    html_to_text,
    is_http_url,
    join_base,
    rfc3339,
    site_link,
    unique_entries,
)

VERSION = "https://jsonfeed.org/version/1.1"
UNKNOWN_MIME_TYPE = "application/octet-stream"  # attachments require mime_type


def _source(source: SourceFeed, coverage: tuple[Coverage, ...]) -> dict[str, Any]:
    """The ``_source`` extension object: JSON Feed has no source element."""
    out: dict[str, Any] = {"id": clean(source.id), "title": clean(source.title)}
    if is_http_url(source.url):  # a local file:// feed's path is nobody's business
        out["feed_url"] = href(source.url)
    if source.link:
        out["home_page_url"] = href(source.link)
    if coverage:
        out["also_reported_by"] = [
            {
                "title": clean(c.feed.title),
                "feed_url": href(c.feed.url) if is_http_url(c.feed.url) else None,
                "url": href(c.link) if c.link and is_http_url(c.link) else None,
                "headline": clean(c.title),
                "copies": c.copies,
            }
            for c in coverage
        ]
    return out


def _item(entry: OutputEntry) -> dict[str, Any]:
    """One item; ``id`` is always a string and ``content_html`` or, for an item with no text,
    ``content_text`` (its title) is present (JSON Feed 1.1 wants one), never an empty one."""
    item: dict[str, Any] = {"id": clean(entry.id)}
    if entry.link:
        item["url"] = href(entry.link)
    item["title"] = clean(entry.title)
    body = clean(body_html(entry) or "")
    if body:
        item["content_html"] = body
    else:
        item["content_text"] = display_title(entry)
    if entry.summary:
        summary = html_to_text(clean(entry.summary))
        if summary:
            item["summary"] = summary
    item["date_published"] = rfc3339(entry.published)
    item["date_modified"] = rfc3339(entry.updated)
    authors = [{"name": clean(a)} for a in entry.authors if clean(a).strip()]
    if authors:
        item["authors"] = authors
    tags = [clean(t) for t in entry.tags if clean(t).strip()]
    if tags:
        item["tags"] = tags
    attachments = []
    for enc in entry.enclosures:
        att: dict[str, Any] = {
            "url": href(enc.url),
            "mime_type": clean(enc.type or UNKNOWN_MIME_TYPE),
        }
        if enc.length is not None and enc.length >= 0:
            att["size_in_bytes"] = enc.length
        attachments.append(att)
    if attachments:
        item["attachments"] = attachments
    item["_source"] = _source(entry.source, entry.coverage)
    return item


def render_json_feed(feed: OutputFeed) -> bytes:
    """Serialize the merged feed as JSON Feed 1.1, UTF-8, with a fixed key order."""
    doc: dict[str, Any] = {"version": VERSION, "title": clean(feed.title)}
    doc["home_page_url"] = site_link(feed)
    if feed.base_url:
        doc["feed_url"] = join_base(feed.base_url, "feed.json")
        if feed.hub:
            doc["hubs"] = [{"type": "WebSub", "url": href(feed.hub)}]
    doc["items"] = [_item(e) for e in unique_entries(feed.entries)]
    text = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False)
    return (text + "\n").encode("utf-8")
