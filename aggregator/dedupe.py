"""Pure exact-duplicate logic: identity keys, content fingerprints, new / changed / unchanged.

Three layers (STANDARDS R-K3): (1) the same feed repeating an id -> one entry, updated in place
when its fingerprint changes; (2) the same canonical URL from several feeds -> one entry with
several sources (the store looks the URL up); (3) same-story clustering lives in stories.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from aggregator.types import Entry
from aggregator.urls import normal_uri

# An absolute IRI: a scheme, a colon, then something (RFC 3987). Atom ids and RSS guids that
# are URLs keep their value as the output id (R-A7 a, b); anything else gets a minted id.
_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_ID_NAMESPACE = uuid.UUID("6f1c3f0e-51a2-4c57-9d7e-1f3e2b7a9c10")


# What the store reports for an id whose entry was pruned: the feed still carries it, but it must
# not come back as new (retention keeps such ids as tombstones).
PRUNED = "pruned"


class Change(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """One parsed entry with its fingerprint and what storing it means."""

    entry: Entry
    fingerprint: str
    change: Change


def fingerprint(entry: Entry) -> str:
    """A hash of what a reader would see change; clamped dates are left out (they move)."""
    dates = (
        []
        if entry.date_clamped
        else [
            entry.published.isoformat() if entry.published else None,
            entry.updated.isoformat() if entry.updated else None,
        ]
    )
    payload = [
        entry.title,
        entry.link,
        entry.summary,
        entry.content,
        list(entry.authors),
        list(entry.tags),
        [[e.url, e.type, e.length] for e in entry.enclosures],
        dates,
    ]
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def plan(
    entries: Iterable[Entry],
    known: Mapping[str, str],
    fingerprints: Mapping[str, str] | None = None,
) -> list[PlannedEntry]:
    """Classify each entry against ``known`` (source id -> stored fingerprint) of its feed.

    ``fingerprints`` (source id -> fingerprint of the id's first entry) may come with the
    parsed feed (aggregator.prepare); those missing are computed here.
    """
    fingerprints = fingerprints or {}
    planned: list[PlannedEntry] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.source_id in seen:  # parse already disambiguates; never store one id twice
            continue
        seen.add(entry.source_id)
        stored = known.get(entry.source_id)
        if stored == PRUNED:
            continue
        digest = fingerprints.get(entry.source_id) or fingerprint(entry)
        if stored is None:
            change = Change.NEW
        elif stored != digest:
            change = Change.CHANGED
        else:
            change = Change.UNCHANGED
        planned.append(PlannedEntry(entry, digest, change))
    return planned


# Schemes an entry or feed id is published under; any other (javascript:, data:, a made-up
# one) is minted instead, so a reader that links ids never gets a script URL (issue 13).
ID_SCHEMES = frozenset({"http", "https", "tag", "urn", "info", "ftp"})
_NOT_IN_IRI = re.compile(r'["<>\\^`{|}\x00-\x20\x7f-\x9f]')
# What the W3C validator accepts of each scheme: a URI of these characters only, then a tag
# with an authority and a date (RFC 4151), a URN with a namespace (RFC 2141; urn:uuid: a UUID),
# a URL with a host.
_URI_CHARS = re.compile(r"[a-z][a-z0-9+.-]*:[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,#]+")
_TAG = re.compile(
    r"tag:([a-z0-9._-]+?@)?[a-z0-9.-]+?,\d{4}(-\d{2}(-\d{2})?)?:"
    r"[0-9a-zA-Z;/?:@&=+$._!~*'()%,-]*(#[0-9a-zA-Z;/?:@&=+$._!~*'()%,-]*)?"
)
_URN = re.compile(
    r"urn:[a-zA-Z0-9][a-zA-Z0-9-]{1,31}:([a-zA-Z0-9()+,.:=@;$_!*'-]|%[0-9A-Fa-f]{2})+"
)
_UUID_URN = re.compile(r"urn:uuid:[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", re.I)
_WITH_HOST = re.compile(r"[a-z]+://[^/]")


def published_id(value: str) -> str | None:
    """The form an entry or feed id is published in, or None when it must be minted.

    An absolute IRI under ID_SCHEMES, in its normal form (RFC 4287 4.2.6.1: lowercase scheme
    and host, escapes normalized, non-ASCII as UTF-8 escapes, "/" for an empty path), which
    is what validators compare it with; a tag without a date, a URN without a namespace or a
    URL without a host is not a valid id and is minted (issue 14).
    """
    if not _ABSOLUTE_IRI.match(value) or _NOT_IN_IRI.search(value):
        return None
    if value.split(":", 1)[0].lower() not in ID_SCHEMES:
        return None
    normal = normal_uri(value)
    if normal is None or not _URI_CHARS.fullmatch(normal):
        return None
    scheme = normal.split(":", 1)[0]
    if scheme == "tag":
        valid = _TAG.fullmatch(normal) is not None
    elif scheme == "urn":
        uuid_like = normal[:9].lower() == "urn:uuid:"
        valid = (_UUID_URN if uuid_like else _URN).fullmatch(normal) is not None
    elif scheme in ("http", "https", "ftp"):
        valid = _WITH_HOST.match(normal) is not None
    else:
        valid = True
    return normal if valid else None


def is_absolute_iri(value: str) -> bool:
    """True when ``value`` is published as an id (in its normal form), False when minted."""
    return published_id(value) is not None


def output_id(source_id: str, feed_source_id: str) -> str:
    """The permanent id of a new entry in the merged feed (R-A7).

    Absolute ids (Atom ids, URL guids) are kept, in their normal form (``published_id``);
    others are minted deterministically from the feed's own permanent id, so they never depend
    on the feed's current URL. Computed once, when the entry is stored: a stored id never
    changes, whatever later versions of these rules say.
    """
    return published_id(source_id) or scoped_id(source_id, feed_source_id)


def scoped_id(source_id: str, feed_source_id: str) -> str:
    """An id scoped to one feed: for relative ids, and when two feeds claim the same id."""
    return "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, f"{feed_source_id}\n{source_id}"))


def feed_source_id(configured_url: str) -> str:
    """The permanent id minted once for a feed that has no atom:id of its own (R-A9)."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, configured_url))
