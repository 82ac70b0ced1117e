"""HTTP (and file://) retrieval of one feed -> FetchResult. The only module that imports requests.

Polite and bounded (STANDARDS R-H1, R-H7, R-H9, R-H10): validators sent back exactly as received,
an honest User-Agent and Accept header, no cookies, a (connect, read) timeout, a whole-response
deadline so a server trickling a byte a second cannot hold a worker, and a body cap enforced
while streaming (after gzip decoding, so a gzip bomb is capped too).
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import requests
from requests.structures import CaseInsensitiveDict

from aggregator import PROJECT_URL, __version__
from aggregator.errors import FetchError
from aggregator.types import Defaults, FetchResult

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.8, application/json;q=0.8, */*;q=0.5"
)
DEFAULT_USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"
MAX_REDIRECTS = 10
PERMANENT_REDIRECTS = frozenset({301, 308})
_CHUNK = 64 * 1024
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


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How long and how much one fetch may take."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0  # the whole response, headers to last byte
    max_body_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_defaults(cls, defaults: Defaults) -> FetchLimits:
        return cls(
            connect_timeout=defaults.connect_timeout,
            read_timeout=defaults.timeout,
            total_timeout=2 * defaults.timeout,
            max_body_bytes=defaults.max_body_bytes,
        )


def make_session(user_agent: str | None = None) -> Session:
    """One Session for a run: pooled connections, no cookies kept, honest headers."""
    session = requests.Session()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.max_redirects = MAX_REDIRECTS
    session.trust_env = False  # no .netrc credentials or proxy settings leaking into requests
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
    try:
        response = session.get(
            url,
            headers=headers,
            timeout=(limits.connect_timeout, limits.read_timeout),
            stream=True,
            allow_redirects=True,
        )
    except requests.TooManyRedirects as e:
        raise FetchError(f"too many redirects (more than {MAX_REDIRECTS}; a loop?)") from e
    except requests.Timeout as e:
        raise FetchError(f"timed out after {time.monotonic() - started:.0f}s: {e}") from e
    except requests.RequestException as e:
        raise FetchError(f"request failed: {_short_reason(e)}") from e
    try:
        session.cookies.clear()
        permanent = bool(response.history) and all(
            hop.status_code in PERMANENT_REDIRECTS for hop in response.history
        )
        if response.status_code == 304:
            return FetchResult(
                status=304,
                url=response.url,
                headers=response.headers,
                body=None,
                redirected_permanently=permanent,
                elapsed=time.monotonic() - started,
            )
        if response.status_code != 200:
            prefix = "HTTP" if response.status_code >= 400 else "unexpected HTTP"
            raise FetchError(
                f"{prefix} {response.status_code} {response.reason or ''}".strip(),
                status=response.status_code,
                headers=response.headers,
            )
        body = _read_body(response, limits, started)
        return FetchResult(
            status=200,
            url=response.url,
            headers=response.headers,
            body=body,
            redirected_permanently=permanent,
            elapsed=time.monotonic() - started,
        )
    finally:
        response.close()


def _read_body(response: requests.Response, limits: FetchLimits, started: float) -> bytes:
    """Stream the body under the size cap and the whole-response deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise FetchError(
            f"body too large: Content-Length {int(declared):,} bytes exceeds the "
            f"{limits.max_body_bytes:,}-byte limit"
        )
    remaining = limits.total_timeout - (time.monotonic() - started)
    timed_out = threading.Event()
    watchdog = threading.Timer(max(remaining, 0.01), _abort, (response, timed_out))
    watchdog.daemon = True
    watchdog.start()
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
            if timed_out.is_set():
                break
    except requests.RequestException as e:
        if not timed_out.is_set():
            raise FetchError(f"reading the body failed: {_short_reason(e)}") from e
    except (OSError, ValueError, AttributeError) as e:
        # A socket shut by the watchdog surfaces as an OSError/ValueError from deep inside
        # http.client; anything else there is a broken connection.
        if not timed_out.is_set():
            raise FetchError(f"reading the body failed: {e}") from e
    finally:
        watchdog.cancel()
    if timed_out.is_set():
        raise FetchError(
            f"timed out: the whole response took longer than {limits.total_timeout:.0f}s "
            f"({size:,} bytes received)"
        )
    return b"".join(chunks)


def _abort(response: requests.Response, timed_out: threading.Event) -> None:
    """Watchdog: shut the socket so a blocked read returns at once."""
    timed_out.set()
    sock = _socket_of(response)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _socket_of(response: requests.Response) -> socket.socket | None:
    raw = response.raw
    connection = getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


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


def _short_reason(error: BaseException) -> str:
    """A one-line reason a person can act on, instead of urllib3's nested reprs."""
    reason = str(error)
    request = getattr(error, "request", None)
    host = urlsplit(getattr(request, "url", "") or "").hostname
    for markers, plain in _PLAIN_REASONS:
        if any(marker in reason for marker in markers):
            return f"{plain} {host}" if host else plain
    if "Max retries exceeded" in reason and "(Caused by " in reason:
        reason = reason.split("(Caused by ", 1)[1].rstrip(")")
    return reason[:300]


def _fetch_file(url: str, *, last_modified: str | None, limits: FetchLimits) -> FetchResult:
    """Read a local feed file; its mtime plays the role of Last-Modified."""
    started = time.monotonic()
    path = Path(url2pathname(unquote(urlsplit(url).path)))
    try:
        stat = path.stat()
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
        body = path.read_bytes()
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
        raise FetchError(f"WebSub hub {hub} unreachable: {_short_reason(e)}") from e
    if not 200 <= response.status_code < 300:
        raise FetchError(
            f"WebSub hub {hub} refused the ping: HTTP {response.status_code}",
            status=response.status_code,
        )
