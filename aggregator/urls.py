"""Canonical URLs: a dedup key only, never the link we publish (a publisher's URL is theirs).

Lowercase scheme and host, IDNA host, IP literals bracketed, default port dropped, userinfo
dropped, percent-encoding normalized (%7E is ~, %2F stays %2F) and dot-segments resolved,
fragment dropped, tracking parameters dropped, the remaining query sorted (so parameter order
does not split duplicates) and an empty ``?`` dropped. The path's trailing slash and http/https
are kept: servers are free to treat those as different resources. The key is a fixed point
(canonicalizing it again gives it back); tests/test_properties.py checks that.

Below the key, what is published: ``normal_uri``, the normal form of an id (RFC 3986 6.2.2,
the W3C validator's canonical form), and ``published_url``, a link as a URI (RFC 3987 3.1).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import posixpath
import re
import string
import unicodedata
import uuid
from urllib.parse import (
    SplitResult,
    parse_qsl,
    quote,
    unquote_plus,
    urlencode,
    urljoin,
    urlsplit,
    urlunsplit,
)

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


# Characters a path may carry as they are (besides ASCII letters and digits). A %XX escape of
# one of them is decoded, so %7E and ~ compare equal; "/" is not among them: %2F is data inside
# a segment, and decoding it would move segment boundaries (and break idempotence).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_DECODABLE = frozenset(string.ascii_letters + string.digits + _PATH_SAFE) - {"/"}
_PATH_TOKEN = re.compile(r"%[0-9A-Fa-f]{2}|[^A-Za-z0-9" + re.escape(_PATH_SAFE) + "]")
# What a host may not contain (WHATWG forbidden host code points, C0 controls and DEL): such a
# "host" would be read differently when the canonical URL is parsed again.
_FORBIDDEN_HOST = re.compile(r"[\x00-\x20\x7f#/:<>?@\[\\\]^|]")


def _path_token(match: re.Match[str]) -> str:
    token = match.group()
    if len(token) == 3:  # a %XX escape: decode a safe character, else uppercase the hex
        char = chr(int(token[1:], 16))
        return char if char in _DECODABLE else token.upper()
    return quote(token, safe="")  # anything else, a lone "%" included, as UTF-8 escapes


def _normalize_path(path: str) -> str:
    """Percent-encoding normalized (RFC 3986 6.2.2.2), then dot-segments removed (6.2.2.3).

    In that order, so %2E%2E is a dot-segment too. Invalid UTF-8 escapes are kept as they are
    (uppercased), never replaced. Raises UnicodeEncodeError on a lone surrogate.
    """
    if not path:
        return "/"
    trailing = path.endswith("/")
    normalized = posixpath.normpath(_PATH_TOKEN.sub(_path_token, path))
    if normalized.startswith("//"):  # normpath keeps a leading double slash
        normalized = "/" + normalized.lstrip("/")
    if trailing and not normalized.endswith("/"):
        normalized += "/"
    return normalized


def _normalize_host(parts: SplitResult) -> str | None:
    """Lowercase, IDNA, no trailing dot; IP literals bracketed; None when no usable host."""
    host = parts.hostname
    if not host:
        return None
    if "[" in parts.netloc:  # an IP literal (urlsplit checked the brackets)
        with contextlib.suppress(ValueError):
            host = ipaddress.ip_address(host).compressed
        return f"[{host}]"
    host = host.rstrip(".")
    with contextlib.suppress(UnicodeError):
        # IDNA 2003 maps some characters to dots (U+3002, U+FF0E) or to ASCII punctuation.
        host = host.encode("idna").decode("ascii").rstrip(".")
    if not host or _FORBIDDEN_HOST.search(host):
        return None
    return host


def canonical_url(url: str | None) -> str | None:
    """The dedup key of a URL, or None when it is not an absolute http(s) URL.

    Idempotent: ``canonical_url(k) == k`` for every key ``k`` it returns. Never raises.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            return None
        if len(parts.netloc) <= _NETLOC_CACHE_LONGEST:
            netloc = _remembered_netloc(scheme, parts.netloc)
        else:
            netloc = _canonical_netloc(scheme, parts.netloc)
        if netloc is None:
            return None
        query = ""
        if parts.query:  # an empty query gives "" (the common case: skip the parsing)
            query_pairs = [
                (key, value)
                for key, value in parse_qsl(parts.query, keep_blank_values=True)
                if not is_tracking_param(key)
            ]
            query = urlencode(sorted(query_pairs))
        path = _normalize_path(parts.path)
    except ValueError:  # a bad port or IP literal; UnicodeError (a lone surrogate) too
        return None
    return urlunsplit((scheme, netloc, path, query, ""))


def _canonical_netloc(scheme: str, netloc: str) -> str | None:
    """The key's host[:port] for a (lowercase) scheme and a netloc as urlsplit gave it; None
    when there is no usable host. Raises ValueError for a bad port."""
    parts = SplitResult(scheme, netloc, "", "", "")  # hostname and port read only the netloc
    host = _normalize_host(parts)
    if host is None:
        return None
    port = parts.port
    return host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"


# A feed's links share a few hosts, and IDNA encoding is the dearest step of a key: each host is
# normalized once (a failure, a ValueError, is not remembered and raises again).
_NETLOC_CACHE_LONGEST = 255
_remembered_netloc = functools.lru_cache(maxsize=1024)(_canonical_netloc)


def without_tracking(url: str | None) -> str | None:
    """``url`` as published: the parameters `is_tracking_param` names dropped (``utm_*``,
    ``fbclid``, ``gclid``...), everything else exactly as given (order, encoding, fragment).

    Not the dedup key (`canonical_url` also sorts and normalizes): a publisher's link stays
    theirs, less what only tracks the reader. Anything but an http(s) URL with a query is
    returned as it is.
    """
    if not url or "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.query:
        return url
    pairs = parts.query.split("&")
    kept = [p for p in pairs if not is_tracking_param(unquote_plus(p.partition("=")[0]))]
    if len(kept) == len(pairs):
        return url
    # Cut out of the text rather than rebuilt by urlunsplit, which may respell the rest.
    head, _, tail = url.partition("?")
    _, hash_mark, fragment = tail.partition("#")
    query = "&".join(p for p in kept if p)
    return head + (f"?{query}" if query else "") + hash_mark + fragment


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


def is_private_address(address: str) -> bool:
    """Loopback, link-local (cloud metadata at 169.254.169.254 included), private, ULA,
    unspecified or reserved; an IPv4-mapped IPv6 address as its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_multicast
    )


def feed_source_id(configured_url: str) -> str:
    """The permanent id minted once for a feed that has no atom:id of its own: named by it in
    atom:source, whatever URL the feed moves to later."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, configured_url))


# ---------------------------------------------------------------- what we publish

# RFC 3986 sub-delims, and what else a path segment (pchar), a query or a fragment holds raw.
_SUB_DELIMS = "!$&'()*+,;="
_PCHAR = "-._~" + _SUB_DELIMS + ":@"
_RESERVED = ":/?#[]@" + _SUB_DELIMS
# A link as published may keep every character a URI may hold, "%" escapes included, except
# "[" and "]", which only an IP-literal host may hold (the W3C validator: InvalidUriChar).
_URI_PLAIN = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&'()*+,;=]*")
_URI_SHAPE = re.compile(r"^([^:/?#]+):(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?$")
_LINK_TOKEN = re.compile(r"%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~:/?#@!$&'()*+,;=]")


def _escape_token(match: re.Match[str]) -> str:
    token = match.group()
    return token if len(token) == 3 else quote(token, safe="")


def published_url(url: str) -> str:
    """A link as a URI (RFC 3987 3.1), for outputs whose readers and validators want URIs.

    RSS wants URLs, and the W3C validator refuses IRIs even in Atom: the host becomes IDNA,
    other non-ASCII characters UTF-8 %XX escapes, and so do characters no URI holds raw ("[",
    "]" outside the host, a lone "%"). Nothing else changes: the same resource, the same link.
    """
    if _URI_PLAIN.fullmatch(url):
        return url  # the common case; a %XX escape takes the long way, and is kept
    match = _URI_SHAPE.match(url)
    if not match:
        return url
    authority = match.group(3)
    text = match.group(1) + ":"
    if authority is not None:
        if not authority.isascii():
            userinfo, at, hostport = authority.rpartition("@")
            host, colon, port = hostport.partition(":")
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                return url  # no usable host name: as it was (readers refuse it either way)
            authority = userinfo + at + host + colon + port
        text += "//" + authority
    rest = "".join(part or "" for part in (match.group(4), match.group(5), match.group(7)))
    return text + _LINK_TOKEN.sub(_escape_token, rest)


_ESCAPE_OR_CHAR = re.compile(r"%[0-9A-Fa-f]{2}|%|[^%]", re.S)
NORMAL_PORTS = {"http": 80, "https": 443, "ftp": 21}


@functools.lru_cache(maxsize=8)
def _already_normal(safe: str) -> re.Pattern[str]:
    """Text made only of unreserved characters and those of ``safe``: its own normal form."""
    return re.compile("[A-Za-z0-9" + re.escape("-._~" + safe) + "]*")


def _normal_part(text: str, safe: str) -> str:
    """Percent-encoding normalized (RFC 3986 6.2.2.1-2) as the W3C validator's canonical form
    has it: reserved characters in ``safe`` kept as written (raw or escaped, hex uppercased),
    everything else decoded, NFC-normalized and escaped again where it must be. Raises
    UnicodeError when the escapes are not UTF-8."""
    if _already_normal(safe).fullmatch(text):
        return text  # nearly every id: no escape, nothing to escape (and a tenth of the time)
    out: list[str] = []
    pending = bytearray()

    def flush() -> None:
        if pending:
            decoded = unicodedata.normalize("NFC", pending.decode("utf-8"))
            out.append(quote(decoded, safe=safe))
            pending.clear()

    for token in _ESCAPE_OR_CHAR.findall(text):
        char = chr(int(token[1:], 16)) if len(token) == 3 else token
        if len(token) == 3 and char in _RESERVED and char in safe:
            flush()
            out.append(token.upper())
        elif len(token) == 1 and token in _RESERVED and token in safe:
            flush()
            out.append(token)
        elif len(token) == 3:
            pending.append(int(token[1:], 16))
        else:
            pending.extend(token.encode("utf-8"))
    flush()
    return "".join(out)


def _without_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 remove_dot_segments; empty segments ("a//b") are kept."""
    output: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments[1:], start=1):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def normal_uri(value: str) -> str | None:
    """The normal form of an absolute IRI as a URI (RFC 3986 6.2.2, RFC 4287 4.2.6.1), which is
    the W3C validator's canonical form; None when it has none (bad escapes, a bad port).

    Scheme and authority lowercased, an IDNA host, the default port dropped, dot-segments
    removed, "/" for an empty path under an authority, escapes normalized, non-ASCII escaped.
    """
    match = _URI_SHAPE.match(value)
    if not match:
        return None
    scheme, authority, path = match.group(1).lower(), match.group(3), match.group(4)
    query, fragment = match.group(6), match.group(8)
    try:
        if authority is not None:
            authority = authority.lower()
            userinfo, _, hostport = authority.rpartition("@")
            host, colon, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
            if host.startswith("[") or (port and not port.isdigit()):
                return None  # an IP literal, or a colon that is no port: not an id to keep
            if not host.isascii():
                host = host.encode("idna").decode("ascii")
            if host.endswith(".") and "." in host[:-1]:
                host = host[:-1]
            if port == "" or int(port) == NORMAL_PORTS.get(scheme):
                colon = port = ""
            authority = (userinfo + "@" if userinfo else "") + host + colon + port
            path = "/".join(_normal_part(s, _PCHAR) for s in _without_dot_segments(path).split("/"))
            text = f"{scheme}://{authority}{path}"
        else:
            text = f"{scheme}:{_normal_part(path, _PCHAR + '/')}"
        if query is not None:
            text += "?" + _normal_part(query, _PCHAR + "/?")
        if fragment is not None:
            text += "#" + _normal_part(fragment, _PCHAR + "/?")
    except (UnicodeError, ValueError):
        return None
    return text
