"""HTTP (and file://) retrieval of one feed -> FetchResult. The only package that imports requests.

Polite and bounded: validators sent back exactly as received,
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

The package: `http` (the exchange, redirects, the body), `deadline` (the watchdog and the
bounded urllib3 connections), `reasons` (one line for any failure), `files` (file:// feeds),
`websub` (the hub ping).
"""

from __future__ import annotations

from aggregator.fetch.http import (
    ACCEPT,
    DEFAULT_USER_AGENT,
    FetchLimits,
    Session,
    fetch,
    make_session,
)
from aggregator.fetch.websub import publish_to_hub

__all__ = [
    "ACCEPT",
    "DEFAULT_USER_AGENT",
    "FetchLimits",
    "Session",
    "fetch",
    "make_session",
    "publish_to_hub",
]
