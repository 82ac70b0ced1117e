"""HTTP (and file://) retrieval of one feed -> FetchResult. The only module that imports requests.

Polite and bounded (STANDARDS R-H1, R-H7, R-H9, R-H10): validators sent back exactly as received,
an honest User-Agent and Accept header, no cookies, a (connect, read) timeout, and a hostile
publisher cannot hold a worker or its memory:

- a whole-exchange deadline (connect, headers, every redirect hop, body) that shuts the socket,
  so a server trickling a byte a second, in the headers or in the body, is cut off on time;
- a body cap enforced while streaming, after gzip decoding (a gzip bomb is capped too), whether
  the body has a Content-Length, is chunked, or runs until the connection closes;
- redirects followed by hand: at most MAX_REDIRECTS hops, http(s) only (never file:, ftp:, ...),
  a loop stopped as soon as it comes back, and a redirect's own body never read unless it is
  small and sized (then it is read out, within DRAIN_SECONDS, to keep the connection);
- header lines, header counts and chunk-size lines bounded (http.client's 64 KiB / 100 headers
  limits, and the same 64 KiB for the chunk-size lines urllib3 reads itself);
- every network-level failure, however malformed the answer, comes out as one FetchError with
  a one-line reason; nothing else escapes.

Connections are kept alive: a 304, or any answer whose unread rest is small and sized, hands its
connection back to the session's pool instead of closing it (a warm run of 304s would otherwise
open a TCP, and TLS, connection per feed).
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import http.client
import itertools
import os
import socket
import stat as stat_module
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from aggregator import PROJECT_URL, __version__
from aggregator.errors import FetchError
from aggregator.types import Defaults, FetchResult
from aggregator.urls import is_private_address

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.8, application/json;q=0.8, */*;q=0.5"
)
DEFAULT_USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"
MAX_REDIRECTS = 10  # hops followed; the 11th redirect is an error
PERMANENT_REDIRECTS = frozenset({301, 308})
REDIRECT_SCHEMES = frozenset({"http", "https"})  # R-H7: never follow a redirect elsewhere
MAX_LINE = 65536  # longest header / chunk-size line read (http.client's own header limit)
_CHUNK = 64 * 1024
# An unread rest of at most DRAIN_BYTES with a known length (a 304 has none) is read out so the
# connection can go back to the pool, if it arrives within DRAIN_SECONDS; else it is dropped.
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 1.0
Session = requests.Session  # callers hold one per run without importing requests
# A local file has no Content-Type header; its name is the best hint feedparser can get.
FILE_TYPES = {
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".rdf": "application/rdf+xml",
    ".xml": "application/xml",
    ".json": "application/feed+json",
    ".html": "text/html",
    ".htm": "text/html",
}
# What a hostile or broken server can make the HTTP stack raise; all of it becomes FetchError.
_NETWORK_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


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
    fetch using them (see ``_Deadline``), and it never reads a redirect's body.
    """
    session = _Session()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.max_redirects = MAX_REDIRECTS
    session.trust_env = False  # no .netrc credentials or proxy settings leaking into requests
    adapter = _WatchedAdapter()
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
        return _fetch_file(url, last_modified=last_modified, limits=limits)
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    started = time.monotonic()
    with _Deadline(limits.total_timeout) as deadline:
        try:
            response, hops = _follow(session, url, headers, limits, deadline)
        finally:
            _current.private_ok = True  # what this thread does next is not a redirect hop
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
            # A 304 has no body to read, and costs no parsing (R-H3).
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
    deadline: _Deadline,
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
        _current.private_ok = limits.allow_private or not hops
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
                f"unusable redirect Location {_clip(repr(location), 120)}: {e}",
                status=response.status_code,
            ) from e
        if scheme not in REDIRECT_SCHEMES:
            raise FetchError(
                f"refused to follow a redirect to a non-HTTP URL: {_clip(target)}",
                status=response.status_code,
            )
        if target in visited:
            raise FetchError(
                f"too many redirects: a loop ({len(hops)} hops, back to {_clip(target)})",
                status=response.status_code,
            )
        if len(hops) > MAX_REDIRECTS:
            raise FetchError(
                f"too many redirects (more than {MAX_REDIRECTS}; last to {_clip(target)})",
                status=response.status_code,
            )
        visited.append(target)
        url = target


def _get(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    limits: FetchLimits,
    deadline: _Deadline,
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
    except _NETWORK_ERRORS as e:
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
        raise FetchError(f"request failed: {_short_reason(e, url)}") from e
    if deadline.expired.is_set():  # the shut socket ended the headers early: a cut, not an end
        response.close()
        raise FetchError(too_slow)
    return response


def _read_body(response: requests.Response, limits: FetchLimits, deadline: _Deadline) -> bytes:
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
    except (*_NETWORK_ERRORS, ValueError, AttributeError) as e:
        # A socket shut by the deadline surfaces as an OSError/ValueError/AttributeError from
        # deep inside http.client or ssl; anything else there is a broken or hostile answer.
        if not deadline.expired.is_set():
            raise FetchError(_body_reason(e, response)) from e
    if deadline.expired.is_set():
        raise FetchError(
            f"timed out: the whole response took longer than {limits.total_timeout:g}s "
            f"({size:,} bytes read)"
        )
    return b"".join(chunks)


def _release(response: requests.Response, deadline: _Deadline) -> None:
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
            alarm = _WATCHDOG.call_at(
                time.monotonic() + DRAIN_SECONDS, partial(deadline.cut, connection)
            )
        try:
            # Only a connection this fetch's deadline can cut (one of make_session's).
            if alarm is None or deadline.holds(connection):
                with contextlib.suppress(*_NETWORK_ERRORS, ValueError, AttributeError):
                    raw.drain_conn()  # at its end urllib3 puts the connection back (_put_conn)
        finally:
            if alarm is not None:
                _WATCHDOG.cancel(alarm)
    response.close()


def _body_reason(error: BaseException, response: requests.Response) -> str:
    """Why reading the body failed, in one line."""
    for cause in _causes(error):
        if isinstance(
            cause, urllib3.exceptions.DecodeError | requests.exceptions.ContentDecodingError
        ):
            encoding = response.headers.get("Content-Encoding", "?")
            inner = [c for c in _causes(cause) if not isinstance(c, _WRAPPERS)]
            detail = f": {_clip(str(inner[0]))}" if inner else ""
            return f"corrupt {encoding} body (cannot decode it){detail}"
    return f"reading the body failed: {_short_reason(error, response.url)}"


class _Watchdog:
    """One daemon thread that runs each alarm at its time, unless it was cancelled first.

    It replaces a ``threading.Timer`` (a new thread) per fetch. Alarms run on the watchdog's
    thread while it holds its lock, so once ``cancel`` returns the alarm has either been
    prevented or has finished: never half-run. An alarm must be quick and must not call back
    into the watchdog.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []  # (when, key); cancelled keys left to expire
        self._alarms: dict[int, Callable[[], None]] = {}  # key -> action, pending alarms only
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, action: Callable[[], None]) -> int:
        """Run ``action`` at ``when`` (time.monotonic()); returns a key for ``cancel``."""
        with self._condition:
            key = next(self._keys)
            self._alarms[key] = action
            heapq.heappush(self._heap, (when, key))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="aggregator-fetch-watchdog", daemon=True
                )
                self._thread.start()
            elif self._heap[0][1] == key:  # the new earliest alarm: wake up sooner
                self._condition.notify()
        return key

    def cancel(self, key: int) -> None:
        with self._condition:
            self._alarms.pop(key, None)
            # Most alarms are cancelled long before their time: drop them now and then.
            if len(self._heap) > 64 and len(self._heap) > 2 * len(self._alarms):
                self._heap = [entry for entry in self._heap if entry[1] in self._alarms]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._heap and self._heap[0][1] not in self._alarms:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                when, key = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._heap)
                action = self._alarms.pop(key)
                with contextlib.suppress(Exception):  # one failing alarm must not stop the rest
                    action()


_WATCHDOG = _Watchdog()
# A forked child has no watchdog thread, and may have inherited its lock held.
os.register_at_fork(after_in_child=_WATCHDOG._reset)


class _Deadline:
    """The whole exchange's time limit, whatever phase it is in when it passes.

    A read timeout bounds one silence, not the exchange: a server sending a byte every second
    never trips it. When the deadline passes, the socket of the connection in use is shut
    down, so a blocked read returns at once (headers, a redirect hop or the body). The
    connections of ``make_session`` report themselves here through a thread-local, since
    requests hands out no socket before the headers have been read, and leave it when they go
    back to the pool (so a late deadline never shuts a connection another fetch is using).
    """

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._connection: object | None = None
        self._seconds = max(seconds, 0.01)
        self._alarm: int | None = None

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._alarm = _WATCHDOG.call_at(time.monotonic() + self._seconds, self._expire)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._alarm is not None:
            _WATCHDOG.cancel(self._alarm)
        _current.deadline = None
        with self._lock:
            self._connection = None

    def watch(self, connection: object) -> None:
        """The connection now carrying this exchange (shut at once if already too late)."""
        with self._lock:
            self._connection = connection
            if self.expired.is_set():
                _shut(connection)

    def unwatch(self, connection: object) -> None:
        """``connection`` goes back to the pool: no longer this exchange's to shut."""
        with self._lock:
            if self._connection is connection:
                self._connection = None
                if self.expired.is_set():  # its socket may be shut: never hand it out again
                    close = getattr(connection, "close", None)
                    if close is not None:
                        close()

    def holds(self, connection: object) -> bool:
        with self._lock:
            return self._connection is connection

    def cut(self, connection: object) -> None:
        """Shut ``connection`` if this exchange still holds it (a drain that took too long)."""
        with self._lock:
            if self._connection is connection:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            if self._connection is not None:
                _shut(self._connection)


_current = threading.local()  # .deadline: the _Deadline of the fetch running on this thread


def _watch(connection: object) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


def _unwatch(connection: object) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and connection is not None:
        deadline.unwatch(connection)


class PrivateAddressRefused(OSError):
    """A redirect led to an internal address, and `allow_private_addresses` is off."""


def _check_peer(connection: object) -> None:
    """Refuse, before a request is sent, a connection to an internal address on a hop that
    may not reach one (the socket's peer: what DNS answered, whatever the name)."""
    if getattr(_current, "private_ok", True):
        return
    sock = getattr(connection, "sock", None)
    if not isinstance(sock, socket.socket):
        return
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return
    if is_private_address(str(peer)):
        host = getattr(connection, "host", "") or peer
        raise PrivateAddressRefused(
            f"refused: a redirect led to {host}, an internal address ({peer}); set "
            "defaults.allow_private_addresses to allow it"
        )


def _shut(connection: object) -> None:
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            # socket.socket's shutdown even for an SSLSocket: ssl's own would drop its state
            # under the reading thread's feet.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _BoundedLines:
    """A socket file whose readline never returns more than MAX_LINE bytes.

    urllib3 reads chunk-size and trailer lines with an unbounded ``readline()``: a server
    sending an endless "ffff..." line would otherwise grow one bytes object until the
    deadline. Everything else is the wrapped file's own.
    """

    def __init__(self, fp: Any) -> None:
        self._fp = fp

    def readline(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:  # http.client's header reads: it checks the size
            line: bytes = self._fp.readline(size)
            return line
        line = self._fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("a chunk-size or trailer line")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class _BoundedResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = _BoundedLines(self.fp)  # type: ignore[assignment]


class _Watched:
    """Mixed into urllib3's connections: bounded response lines, and the fetch's deadline."""

    response_class: ClassVar[type[http.client.HTTPResponse]] = _BoundedResponse

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch(self)
        _check_peer(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)  # a pooled connection is reused without connect()
        _check_peer(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        _unwatch(conn)  # every way back into the pool passes here, even urllib3's own
        super()._put_conn(conn)


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _unwatch(conn)
        super()._put_conn(conn)


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections that answer to the fetch's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


_PLAIN_REASONS = (
    (
        ("NameResolutionError", "Name or service not known", "nodename nor servname"),
        "cannot resolve",
    ),
    (("Connection refused",), "connection refused by"),
    (("CERTIFICATE_VERIFY_FAILED", "SSLCertVerificationError"), "TLS certificate not trusted for"),
    (("SSLError",), "TLS handshake failed with"),
    (("Connection reset", "RemoteDisconnected", "Connection aborted"), "connection dropped by"),
    (("Network is unreachable",), "network unreachable for"),
)
# Exceptions that only wrap the one that says what happened.
_WRAPPERS = (
    requests.RequestException,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.DecodeError,
)


def _short_reason(error: BaseException, url: str | None = None) -> str:
    """A one-line reason a person can act on, instead of urllib3's nested reprs."""
    request = getattr(error, "request", None)
    host = urlsplit(url or getattr(request, "url", "") or "").hostname
    where = f" {host}" if host else ""
    for cause in _causes(error):
        if isinstance(cause, PrivateAddressRefused):
            return str(cause)
        # urllib3 2.8+ bounds chunk-size lines itself, with its own message: same meaning.
        if isinstance(cause, http.client.LineTooLong) or "exceeded maximum allowed length" in str(
            cause
        ):
            return f"{host or 'the server'} sent a line that is too long ({cause})"
        if isinstance(cause, http.client.RemoteDisconnected):
            return f"connection closed by{where} without a response"
        if isinstance(cause, http.client.BadStatusLine):
            began = _clip(repr(getattr(cause, "line", "")), 80)
            return f"not an HTTP response from{where} (it began {began})"
        if isinstance(cause, urllib3.exceptions.InvalidChunkLength):  # an IncompleteRead too
            return f"broken chunked encoding from{where} (bad chunk size)"
        if isinstance(cause, http.client.IncompleteRead | urllib3.exceptions.IncompleteRead):
            return f"connection closed early by{where}: {_incomplete(cause)}"
        if type(cause) is http.client.HTTPException and "headers" in str(cause):
            return f"{host or 'the server'} sent too many response headers ({cause})"
        if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
            return f"timed out: no data from{where} for too long"
    reason = str(error)
    if "Response ended prematurely" in reason:
        return f"connection closed early by{where}: the chunked body ended prematurely"
    for markers, plain in _PLAIN_REASONS:
        if any(marker in reason for marker in markers):
            return f"{plain} {host}" if host else plain
    if "Max retries exceeded" in reason and "(Caused by " in reason:
        reason = reason.split("(Caused by ", 1)[1].rstrip(")")
    return _clip(" ".join(reason.split()), 300)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: requests and urllib3 nest the real cause in ``args``."""
    seen: set[int] = set()
    pending = [error]
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _incomplete(error: BaseException) -> str:
    """'got 10 bytes, 90 more expected' from either library's IncompleteRead."""
    partial = getattr(error, "partial", None)
    expected = getattr(error, "expected", None)
    got = len(partial) if isinstance(partial, bytes) else partial
    if isinstance(got, int) and isinstance(expected, int):
        return f"got {got:,} bytes, {expected:,} more expected"
    return "the body is shorter than announced"


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fetch_file(url: str, *, last_modified: str | None, limits: FetchLimits) -> FetchResult:
    """Read a local feed file; its mtime plays the role of Last-Modified."""
    started = time.monotonic()
    path = Path(url2pathname(unquote(urlsplit(url).path)))
    try:
        stat = path.stat()
        if not stat_module.S_ISREG(stat.st_mode):  # /dev/zero, a FIFO: endless or blocking
            raise FetchError(f"not a regular file: {path}")
        modified = email.utils.format_datetime(
            datetime.fromtimestamp(int(stat.st_mtime), tz=UTC), usegmt=True
        )
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict({"Last-Modified": modified})
        if path.suffix.lower() in FILE_TYPES:
            headers["Content-Type"] = FILE_TYPES[path.suffix.lower()]
        if last_modified == modified:
            return FetchResult(304, url, headers, None, elapsed=time.monotonic() - started)
        if stat.st_size > limits.max_body_bytes:
            raise FetchError(
                f"body too large: {stat.st_size:,} bytes exceeds the "
                f"{limits.max_body_bytes:,}-byte limit"
            )
        with path.open("rb") as file:  # the file may grow after stat(): read under the cap
            body = file.read(limits.max_body_bytes + 1)
        if len(body) > limits.max_body_bytes:
            raise FetchError(f"body too large: more than {limits.max_body_bytes:,} bytes (limit)")
    except FileNotFoundError as e:
        raise FetchError(f"file not found: {path}") from e
    except OSError as e:
        raise FetchError(f"cannot read {path}: {e.strerror or e}") from e
    return FetchResult(200, url, headers, body, elapsed=time.monotonic() - started)


def publish_to_hub(session: Session, hub: str, topics: list[str], timeout: float = 10.0) -> None:
    """Tell a WebSub hub that these feed URLs changed (W3C WebSub section 6, publish ping)."""
    try:
        response = session.post(
            hub,
            data=[("hub.mode", "publish")] + [("hub.url", topic) for topic in topics],
            timeout=(timeout, timeout),
            allow_redirects=False,
        )
    except requests.RequestException as e:
        raise FetchError(f"WebSub hub {hub} unreachable: {_short_reason(e, hub)}") from e
    if not 200 <= response.status_code < 300:
        raise FetchError(
            f"WebSub hub {hub} refused the ping: HTTP {response.status_code}",
            status=response.status_code,
        )
