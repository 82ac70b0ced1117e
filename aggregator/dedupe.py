"""Identity keys and content fingerprints: what makes two items the same item.

Three layers of duplicates: (1) the same feed repeating an id -> one entry, updated in place
when its fingerprint changes; (2) the same canonical URL from several feeds -> one entry with
several sources; both are decided in `plan.py` with the keys made here. (3) The same story told
by several outlets is `stories/`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid

from aggregator.types import Entry
from aggregator.urls import normal_uri

# An absolute IRI: a scheme, a colon, then something (RFC 3987). Atom ids and RSS guids that
# are URLs keep their value as the output id (RFC 4287 section 4.2.6: an id never changes);
# anything else gets a minted id.
_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_ID_NAMESPACE = uuid.UUID("6f1c3f0e-51a2-4c57-9d7e-1f3e2b7a9c10")


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


@functools.lru_cache(maxsize=16_384)  # asked for each new entry's id more than once
def published_id(value: str) -> str | None:
    """The form an entry or feed id is published in, or None when it must be minted.

    An absolute IRI under ID_SCHEMES, in its normal form (RFC 4287 4.2.6.1: lowercase scheme
    and host, escapes normalized, non-ASCII as UTF-8 escapes, "/" for an empty path), which
    is what validators compare it with; a tag without a date, a URN without a namespace or a
    URL without a host is not a valid id and is minted.
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


def output_id(source_id: str, feed_source_id: str) -> str:
    """The permanent id of a new entry in the merged feed (it never changes once published).

    Absolute ids (Atom ids, URL guids) are kept, in their normal form (``published_id``);
    others are minted deterministically from the feed's own permanent id, so they never depend
    on the feed's current URL. Computed once, when the entry is stored: a stored id never
    changes, whatever later versions of these rules say.
    """
    return published_id(source_id) or scoped_id(source_id, feed_source_id)


def scoped_id(source_id: str, feed_source_id: str) -> str:
    """An id scoped to one feed: for relative ids, and when two feeds claim the same id."""
    return "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, f"{feed_source_id}\n{source_id}"))
