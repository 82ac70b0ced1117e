"""Identity keys and content fingerprints: what makes two items the same item.

Three layers of duplicates: (1) the same feed repeating an id -> one entry, updated in place
when its fingerprint changes; (2) the same canonical URL from several feeds -> one entry with
several sources; both are decided in `plan.py` with the keys made here. (3) The same story told
by several outlets is `stories/`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid

from aggregator.types import Entry

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


# Schemes an entry or feed id is published under as is; any other (javascript:, data:, a
# made-up one) is minted instead, so a reader that links ids never gets a script URL (issue 13).
ID_SCHEMES = frozenset({"http", "https", "tag", "urn", "info", "ftp"})
_NOT_IN_IRI = re.compile(r'["<>\\^`{|}]')


def is_absolute_iri(value: str) -> bool:
    """An absolute IRI under a scheme ids are kept under, with no character IRIs forbid."""
    if not _ABSOLUTE_IRI.match(value) or _NOT_IN_IRI.search(value):
        return False
    return value.split(":", 1)[0].lower() in ID_SCHEMES


def output_id(source_id: str, feed_source_id: str) -> str:
    """The permanent id of a new entry in the merged feed (it never changes once published).

    Absolute ids (Atom ids, URL guids) are kept; others are minted deterministically from the
    feed's own permanent id, so they never depend on the feed's current URL.
    """
    if is_absolute_iri(source_id):
        return source_id
    return scoped_id(source_id, feed_source_id)


def scoped_id(source_id: str, feed_source_id: str) -> str:
    """An id scoped to one feed: for relative ids, and when two feeds claim the same id."""
    return "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, f"{feed_source_id}\n{source_id}"))
