"""The HTTP exchange of one fetch: conditional GET, redirects followed by hand, a capped body.

The only place (with its siblings in this package) that imports requests. Validators go back
exactly as received; an honest User-Agent and Accept header; no cookies kept; a (connect, read)
timeout and a whole-exchange deadline (`deadline.py`); at most MAX_REDIRECTS hops, http(s) only,
a loop stopped as soon as it comes back; the body capped while streaming, after gzip decoding.
A 304, or any answer whose unread rest is small and sized, hands its connection back to the
pool (a warm run of 304s would otherwise open a connection per feed).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from dataclasses import dataclass
from functools import partial
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters

from aggregator import PROJECT_URL, __version__
from aggregator.errors import FetchError
from aggregator.fetch.deadline import WATCHDOG, Deadline, WatchedAdapter, current
from aggregator.fetch.files import fetch_file
from aggregator.fetch.reasons import NETWORK_ERRORS, body_reason, clip, short_reason
from aggregator.types import Defaults, FetchResult

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.8, application/json;q=0.8, */*;q=0.5"
)


DEFAULT_USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"


MAX_REDIRECTS = 10  # hops followed; the 11th redirect is an error


PERMANENT_REDIRECTS = frozenset({301, 308})


# A redirect to file:, ftp: or any other scheme would read what the publisher has no business
# pointing us at: never followed.
REDIRECT_SCHEMES = frozenset({"http", "https"})


_CHUNK = 64 * 1024


# An unread rest of at most DRAIN_BYTES with a known length (a 304 has none) is read out so the
# connection can go back to the pool, if it arrives within DRAIN_SECONDS; else it is dropped.
DRAIN_BYTES = 64 * 1024


DRAIN_SECONDS = 1.0


Session = requests.Session  # callers hold one per run without importing requests


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How long and how much one fetch may take."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0  # the whole exchange: connect, headers, redirects, body
    max_body_bytes: int = 10 * 1024 * 1024
    # A redirect may lead to a loopback, link-local, private or unspecified address only when
    # this is set (the configured URL itself is trusted: the config is the operator's).
    allow_private: bool = False

    @classmethod
    def from_defaults(cls, defaults: Defaults) -> FetchLimits:
        return cls(
            connect_timeout=defaults.connect_timeout,
            read_timeout=defaults.timeout,
            total_timeout=2 * defaults.timeout,
            max_body_bytes=defaults.max_body_bytes,
            allow_private=defaults.allow_private_addresses,
        )


class _Session(requests.Session):
    """A Session that leaves redirects to ``fetch``, which follows them by hand.

    Even with ``allow_redirects=False``, requests' Session.send runs ``resolve_redirects`` on
    a 3xx to prepare ``Response.next``, and that reads the redirect's whole body into memory:
    a 301 with an endless body would grow one bytes object until the deadline.
    """

    def resolve_redirects(
        self, *args: Any, **kwargs: Any
    ) -> Generator[requests.Response, None, None]:
        yield from ()


def make_session(user_agent: str | None = None) -> Session:
    """One Session for a run: pooled connections, no cookies kept, honest headers.

    Only a session made here is fully bounded: its connections report to the deadline of the
    fetch using them (see ``Deadline``), and it never reads a redirect's body.
    """
    session = _Session()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.max_redirects = MAX_REDIRECTS
    session.trust_env = False  # no .netrc credentials or proxy settings leaking into requests
    adapter = WatchedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(
        {
            "User-Agent": user_agent or DEFAULT_USER_AGENT,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        }
    )
    return session


def fetch(
    session: requests.Session,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: FetchLimits = FetchLimits(),
) -> FetchResult:
    """Fetch ``url`` conditionally; raise FetchError with a clear reason on any failure."""
    if urlsplit(url).scheme == "file":
        return fetch_file(url, last_modified=last_modified, max_body_bytes=limits.max_body_bytes)
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    started = time.monotonic()
    with Deadline(limits.total_timeout) as deadline:
        try:
            response, hops = _follow(session, url, headers, limits, deadline)
        finally:
            current.private_ok = True  # what this thread does next is not a redirect hop
        try:
            session.cookies.clear()
            permanent = bool(hops) and all(status in PERMANENT_REDIRECTS for status in hops)
            if response.status_code not in (200, 304):
                prefix = "HTTP" if response.status_code >= 400 else "unexpected HTTP"
                raise FetchError(
                    f"{prefix} {response.status_code} {response.reason or ''}".strip(),
                    status=response.status_code,
                    headers=response.headers,
                )
            # A 304 has no body to read, and costs no parsing.
            body = _read_body(response, limits, deadline) if response.status_code == 200 else None
            return FetchResult(
                status=response.status_code,
                url=response.url,
                headers=response.headers,
                body=body,
                redirected_permanently=permanent,
                elapsed=time.monotonic() - started,
            )
        finally:
            _release(response, deadline)


def _follow(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    limits: FetchLimits,
    deadline: Deadline,
) -> tuple[requests.Response, list[int]]:
    """GET ``url``, following redirects by hand; returns the final response and the hops.

    By hand rather than by requests, which reads each redirect's whole body into memory
    (a 301 with an endless body), follows any scheme it has an adapter for, and only notices
    a loop after ``max_redirects`` requests.
    """
    hops: list[int] = []
    visited = [url]
    while True:
        # The configured URL may be an internal address; where it redirects is the
        # publisher's choice, checked on the address actually connected to (not the name).
        current.private_ok = limits.allow_private or not hops
        response = _get(session, url, headers, limits, deadline)
        if not response.is_redirect:  # a 301/302/303/307/308 with a Location header
            return response, hops
        _release(response, deadline)  # reads the redirect's body only if small and sized
        hops.append(response.status_code)
        location = response.headers["Location"]
        # http.client decodes header bytes as Latin-1; they are far more often UTF-8.
        with contextlib.suppress(UnicodeError):
            location = location.encode("latin-1").decode("utf-8")
        try:
            target = urljoin(response.url or url, location.strip())
            scheme = urlsplit(target).scheme.lower()
        except ValueError as e:  # e.g. "http://[::1" (an unclosed IPv6 literal)
            raise FetchError(
                f"unusable redirect Location {clip(repr(location), 120)}: {e}",
                status=response.status_code,
            ) from e
        if scheme not in REDIRECT_SCHEMES:
            raise FetchError(
                f"refused to follow a redirect to a non-HTTP URL: {clip(target)}",
                status=response.status_code,
            )
        if target in visited:
            raise FetchError(
                f"too many redirects: a loop ({len(hops)} hops, back to {clip(target)})",
                status=response.status_code,
            )
        if len(hops) > MAX_REDIRECTS:
            raise FetchError(
                f"too many redirects (more than {MAX_REDIRECTS}; last to {clip(target)})",
                status=response.status_code,
            )
        visited.append(target)
        url = target


def _get(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    limits: FetchLimits,
    deadline: Deadline,
) -> requests.Response:
    """One request, up to the end of the response headers."""
    too_slow = (
        f"timed out: the whole response took longer than {limits.total_timeout:g}s "
        "(still waiting for the headers)"
    )
    try:
        response = session.get(
            url,
            headers=headers,
            timeout=(limits.connect_timeout, limits.read_timeout),
            stream=True,
            allow_redirects=False,
        )
    except NETWORK_ERRORS as e:
        if deadline.expired.is_set():
            raise FetchError(too_slow) from e
        if isinstance(e, requests.ConnectTimeout):
            host = urlsplit(url).hostname or url
            raise FetchError(
                f"timed out connecting to {host} (after {limits.connect_timeout:g}s)"
            ) from e
        if isinstance(e, requests.Timeout):
            host = urlsplit(url).hostname or url
            raise FetchError(
                f"timed out: no answer from {host} within {limits.read_timeout:g}s"
            ) from e
        raise FetchError(f"request failed: {short_reason(e, url)}") from e
    if deadline.expired.is_set():  # the shut socket ended the headers early: a cut, not an end
        response.close()
        raise FetchError(too_slow)
    return response


def _read_body(response: requests.Response, limits: FetchLimits, deadline: Deadline) -> bytes:
    """Stream the body under the size cap and the whole-exchange deadline."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise FetchError(
            f"body too large: Content-Length {int(declared):,} bytes exceeds the "
            f"{limits.max_body_bytes:,}-byte limit"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise FetchError(
                    f"body too large: more than {limits.max_body_bytes:,} bytes (limit)"
                )
            chunks.append(chunk)
            if deadline.expired.is_set():
                break
    except FetchError:
        raise
    except (*NETWORK_ERRORS, ValueError, AttributeError) as e:
        # A socket shut by the deadline surfaces as an OSError/ValueError/AttributeError from
        # deep inside http.client or ssl; anything else there is a broken or hostile answer.
        if not deadline.expired.is_set():
            raise FetchError(body_reason(e, response)) from e
    if deadline.expired.is_set():
        raise FetchError(
            f"timed out: the whole response took longer than {limits.total_timeout:g}s "
            f"({size:,} bytes read)"
        )
    return b"".join(chunks)


def _release(response: requests.Response, deadline: Deadline) -> None:
    """Close ``response``, handing its connection back to the pool when that is cheap.

    requests' ``close()`` of a streamed response that was not read to its end closes the
    socket, so every 304 cost a new connection. A rest known to be empty (a 304) or small and
    sized is read out first, which returns the connection to the pool; a watchdog alarm shuts
    the socket if that takes longer than DRAIN_SECONDS. Anything unsized (chunked, delimited
    by the close), large, or cut by the deadline is dropped as before.
    """
    raw = response.raw
    remaining = getattr(raw, "length_remaining", None)
    connection = getattr(raw, "connection", None)
    if (
        connection is not None
        and isinstance(remaining, int)
        and 0 <= remaining <= DRAIN_BYTES
        and not deadline.expired.is_set()
    ):
        alarm = None
        if remaining:  # reading nothing cannot block; reading something can, so bound it
            alarm = WATCHDOG.call_at(
                time.monotonic() + DRAIN_SECONDS, partial(deadline.cut, connection)
            )
        try:
            # Only a connection this fetch's deadline can cut (one of make_session's).
            if alarm is None or deadline.holds(connection):
                with contextlib.suppress(*NETWORK_ERRORS, ValueError, AttributeError):
                    raw.drain_conn()  # at its end urllib3 puts the connection back (_put_conn)
        finally:
            if alarm is not None:
                WATCHDOG.cancel(alarm)
    response.close()
