"""One line saying why a fetch failed, whatever the HTTP stack raised.

Every network-level failure, however malformed the answer, becomes one FetchError with a short
reason a person can act on ("connection refused", "timed out after 60 s", ...).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
import urllib3
import urllib3.exceptions

from aggregator.fetch.deadline import PrivateAddressRefused

# What a hostile or broken server can make the HTTP stack raise; all of it becomes FetchError.
NETWORK_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def body_reason(error: BaseException, response: requests.Response) -> str:
    """Why reading the body failed, in one line."""
    for cause in _causes(error):
        if isinstance(
            cause, urllib3.exceptions.DecodeError | requests.exceptions.ContentDecodingError
        ):
            encoding = response.headers.get("Content-Encoding", "?")
            inner = [c for c in _causes(cause) if not isinstance(c, _WRAPPERS)]
            detail = f": {clip(str(inner[0]))}" if inner else ""
            return f"corrupt {encoding} body (cannot decode it){detail}"
    return f"reading the body failed: {short_reason(error, response.url)}"


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


def short_reason(error: BaseException, url: str | None = None) -> str:
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
            began = clip(repr(getattr(cause, "line", "")), 80)
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
    return clip(" ".join(reason.split()), 300)


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


def clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
