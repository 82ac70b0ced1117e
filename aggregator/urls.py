"""Canonical URLs: a dedup key only, never the link we publish (STANDARDS R-K2).

Lowercase scheme and host, IDNA host, default port dropped, dot-segments resolved, fragment
dropped, tracking parameters dropped, the remaining query sorted (so parameter order does not
split duplicates) and an empty ``?`` dropped. The path's trailing slash and http/https are kept:
servers are free to treat those as different resources.
"""

from __future__ import annotations

import contextlib
import posixpath
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "yclid",
        "igshid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "s_cid",
        "cmpid",
        "ocid",
        "at_medium",
        "at_campaign",
    }
)
TRACKING_PREFIXES = ("utm_", "__twitter_impression", "at_custom")
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _normalize_path(path: str) -> str:
    if not path:
        return "/"
    trailing = path.endswith("/")
    normalized = posixpath.normpath(path)
    if normalized.startswith("//"):  # normpath keeps a leading double slash
        normalized = "/" + normalized.lstrip("/")
    if trailing and not normalized.endswith("/"):
        normalized += "/"
    # Re-quote with a stable set of safe characters so %7E and ~ compare equal.
    return quote(unquote(normalized), safe="/:@!$&'()*+,;=-._~")


def canonical_url(url: str | None) -> str | None:
    """The dedup key of a URL, or None when it is not an absolute http(s) URL."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            return None
        host = parts.hostname.rstrip(".").lower()
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
        port = parts.port
    except ValueError:
        return None
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query_pairs = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking_param(key)
    ]
    query = urlencode(sorted(query_pairs))
    return urlunsplit((scheme, netloc, _normalize_path(parts.path), query, ""))


def absolute_url(base: str | None, url: str | None) -> str | None:
    """``url`` resolved against ``base``; None for empty input."""
    if not url:
        return None
    url = url.strip()
    if not base:
        return url
    try:
        return urljoin(base, url)
    except ValueError:
        return url
