"""Serve the output directory over HTTP: the published files only, with validators and gzip.

Standard library only, for `aggregator serve` and `aggregator run --serve`. Feed readers poll
often, so every file gets a strong ETag, Last-Modified and Cache-Control, and conditional
requests are answered with 304 without reading the file. Nothing outside the directory is ever
reachable: request paths are decoded, checked segment by segment and then resolved (symlinks
included) against the directory's real path. Hidden and temporary files (the writer's
``.atom.xml.<pid>.<uuid>.tmp``) are never served. Files are opened per request, never kept
open, so an atomic ``os.replace`` by the writer is picked up by the very next request. A
folder's ``index.html`` (an extra output's page, ``world/``) answers for the folder itself, and
``/world`` is redirected there (its relative links need the slash); nothing is ever listed.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import html
import logging
import mimetypes
import os
import re
import socket
import socketserver
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedReader
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote_to_bytes, urlsplit

from aggregator import __version__
from aggregator.render.html import PAGE_POLICY

logger = logging.getLogger("aggregator.server")

CACHE_MAX_AGE = 300  # seconds a reader or proxy may reuse a file without revalidating
CACHE_CONTROL = f"public, max-age={CACHE_MAX_AGE}"
# The generated "/" page changes as soon as a feed file appears: always revalidate (cheap, ETag).
INDEX_CACHE_CONTROL = "no-cache"
REQUEST_TIMEOUT = 30.0  # seconds a socket read or write may block before the client is dropped
# The page's own policy (its <meta>), plus what only a header can say: no framing.
CONTENT_SECURITY_POLICY = f"{PAGE_POLICY}; frame-ancestors 'none'"
ALLOW = "GET, HEAD"
MAX_GZIP_SIZE = 16 * 1024 * 1024  # larger files are sent as they are (the gzip copy is cached)
FEED_FILES = (("atom.xml", "Atom"), ("rss.xml", "RSS 2.0"), ("feed.json", "JSON Feed"))

_CACHE_ENTRIES = 256
_CHUNK = 64 * 1024
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".swp", ".swo", "~")
_NAMED_TYPES = {
    "atom.xml": "application/atom+xml; charset=utf-8",
    "rss.xml": "application/rss+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
_SUFFIX_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}
_COMPRESSIBLE = frozenset(
    {"application/xml", "application/json", "application/javascript", "image/svg+xml"}
)
_ETAG = re.compile(r'(?:W/)?("[^"]*")')
_ABSOLUTE_FORM = re.compile(r"(?i)https?://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 controls, DEL
_O_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOFOLLOW", 0)  # the final name was resolved already: a swapped-in link fails
    | getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not block the thread
)


class _Refused(Exception):
    """The request cannot be served; carries the status to answer with."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


@dataclass
class _Digest:
    """What is remembered about one version of one file, so it is hashed and gzipped once."""

    version: tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)
    digest: str
    gz: bytes | None = None


class _DigestCache:
    """ETag digests and gzip bodies per file version; bounded, shared by the handler threads."""

    def __init__(self, limit: int = _CACHE_ENTRIES) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Digest] = OrderedDict()
        self.hashed = 0  # how many times a file was hashed (observable in tests)
        self.compressed = 0  # how many times a file was gzipped

    def get(self, key: str, version: tuple[int, int, int]) -> _Digest | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.version != version:
                return None
            self._entries.move_to_end(key)
            return entry

    def digest(self, key: str, version: tuple[int, int, int], f: BufferedReader) -> _Digest:
        """Hash the open file (streamed, any size) and remember it for this version."""
        f.seek(0)
        digest = hashlib.file_digest(f, "sha256").hexdigest()[:32]
        entry = _Digest(version, digest)
        with self._lock:
            self.hashed += 1
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._limit:
                self._entries.popitem(last=False)
        return entry

    def gzipped(self, entry: _Digest, f: BufferedReader) -> bytes:
        """The deterministic gzip body of this version (mtime=0), compressed once."""
        gz = entry.gz
        if gz is None:
            f.seek(0)
            gz = gzip.compress(f.read(), mtime=0)
            with self._lock:
                self.compressed += 1
                entry.gz = gz
        return gz


# Connections served at once: each has a thread; past this many, new ones wait in the listen
# backlog (issue 13: the stdlib's backlog of 5 and unbounded threads).
MAX_CONNECTIONS = 64
LISTEN_BACKLOG = 128


class FeedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one output directory, with a bounded thread count."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, directory: Path, address: tuple[str, int]) -> None:
        # Kept unresolved and resolved per request, so an output dir that is a symlink swapped
        # to a new release is followed; containment is checked against the current real path.
        self.directory = Path(directory).absolute()
        self.cache = _DigestCache()
        self.request_timeout: float | None = REQUEST_TIMEOUT
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread once one of MAX_CONNECTIONS slots is free; a connection that
        waited longer than a request may take is dropped (the server is saturated)."""
        if not self.slots.acquire(timeout=self.request_timeout or REQUEST_TIMEOUT):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (socket.getfqdn can stall for seconds)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a handler crash through logging instead of printing a traceback to stderr."""
        logger.exception("error while serving %s", client_address[0] if client_address else "?")


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8080) -> FeedHTTPServer:
    """Bind (not yet serve) an HTTP server for ``directory``; port 0 picks any free port.

    Loopback by default: exposing the server to the network is an explicit choice.
    """
    root = Path(directory)
    if not root.resolve(strict=True).is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    return FeedHTTPServer(root, (host, port))


def serve_in_thread(server: ThreadingHTTPServer, poll_interval: float = 0.5) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread; stop with shutdown() + server_close().

    ``shutdown()`` waits up to ``poll_interval`` seconds for the loop to notice.
    """
    port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": poll_interval},
        name=f"aggregator-server-{port}",
        daemon=True,
    )
    thread.start()
    return thread


def content_type_for(name: str) -> str:
    """The Content-Type for a file name; feeds get their specific media types."""
    lower = name.lower()
    if lower in _NAMED_TYPES:
        return _NAMED_TYPES[lower]
    suffix = os.path.splitext(lower)[1]
    if suffix in _SUFFIX_TYPES:
        return _SUFFIX_TYPES[suffix]
    guessed, encoding = mimetypes.guess_type(lower, strict=False)
    if guessed is None or encoding is not None:  # "x.xml.gz" is not XML on the wire
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def is_compressible(content_type: str) -> bool:
    """Text-like types shrink a lot with gzip; images and archives do not."""
    base = content_type.split(";", 1)[0].strip().lower()
    return (
        base.startswith("text/")
        or base in _COMPRESSIBLE
        or base.endswith("+xml")
        or base.endswith("+json")
    )


def accepts_gzip(values: list[str] | None) -> bool:
    """Whether Accept-Encoding allows gzip (RFC 9110 12.5.3): q > 0, an explicit entry wins."""
    explicit: float | None = None
    wildcard: float | None = None
    for value in values or ():
        for item in value.split(","):
            coding, _, params = item.partition(";")
            coding = coding.strip().lower()
            if not coding:
                continue
            q = 1.0
            for param in params.split(";"):
                key, _, raw = param.partition("=")
                if key.strip().lower() == "q":
                    try:
                        q = float(raw.strip())
                    except ValueError:
                        q = 0.0
                    if not 0.0 <= q <= 1.0:  # also NaN
                        q = 0.0
            if coding in ("gzip", "x-gzip"):
                explicit = q if explicit is None else max(explicit, q)
            elif coding == "*":
                wildcard = q
    q_gzip = explicit if explicit is not None else wildcard
    return q_gzip is not None and q_gzip > 0.0


def etag_matches(values: list[str], etag: str) -> bool:
    """If-None-Match against our ETag: ``*`` or any listed tag, weak comparison (RFC 9110 8.8.3)."""
    for value in values:
        if value.strip() == "*":
            return True
        if any(match.group(1) == etag for match in _ETAG.finditer(value)):
            return True
    return False


def _request_path(target: str) -> str:
    """The percent-decoded path of a request target; query and fragment dropped."""
    if _ABSOLUTE_FORM.match(target):  # "GET http://host/atom.xml" (RFC 9112 3.2.2)
        target = urlsplit(target).path or "/"
    path = target.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise _Refused(HTTPStatus.BAD_REQUEST)
    try:
        decoded = unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(HTTPStatus.BAD_REQUEST) from None
    if _CONTROL.search(decoded):  # NUL bytes, newlines: never a file we publish
        raise _Refused(HTTPStatus.BAD_REQUEST)
    return decoded


def _is_private(name: str) -> bool:
    """Hidden files and the writers' temp files are not published."""
    return name.startswith((".", "#")) or name.lower().endswith(_TEMP_SUFFIXES)


def _segments(path: str) -> list[str]:
    """Split a decoded path; refuse dot segments, hidden names and separators in a name."""
    segments = [segment for segment in path.split("/") if segment]
    for segment in segments:
        if (
            _is_private(segment)  # also "." and ".."
            or "\\" in segment
            or (os.name == "nt" and ":" in segment)
        ):
            raise _Refused(HTTPStatus.NOT_FOUND)
    return segments


def _locate(root: Path, segments: list[str]) -> str:
    """The real path of ``segments`` under ``root``, if it stays inside and is public."""
    root_real = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root_real, *segments))
    try:
        relative = Path(real).relative_to(root_real)
    except ValueError:  # a symlink leading outside the directory
        raise _Refused(HTTPStatus.NOT_FOUND) from None
    if not relative.parts or any(_is_private(part) for part in relative.parts):
        raise _Refused(HTTPStatus.NOT_FOUND)
    return real


def _open_regular(real: str) -> tuple[BufferedReader, os.stat_result]:
    """Open a regular file for one response; directories, FIFOs and devices are 404."""
    try:
        fd = os.open(real, _O_FLAGS)
    except OSError:
        raise _Refused(HTTPStatus.NOT_FOUND) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused(HTTPStatus.NOT_FOUND)
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def _has_page(real: str) -> bool:
    """A folder with an index.html: asked for without its final slash, it is redirected."""
    return os.path.isdir(real) and os.path.isfile(os.path.join(real, "index.html"))


def _folder(segments: list[str]) -> str:
    """The path of a folder's page, with its slash, for a Location header: built from the
    checked segments, so it is always one local absolute path (never ``//host``)."""
    return "/" + "/".join(quote(segment) for segment in segments) + "/"


def _index_page(names: list[tuple[str, str]]) -> bytes:
    """A minimal page linking to the feeds, for "/" when there is no index.html."""
    alternates = "".join(
        f'<link rel="alternate" type="{html.escape(content_type_for(name).split(";")[0])}" '
        f'href="{html.escape(name)}" title="{html.escape(label)}">\n'
        for name, label in names
    )
    items = "".join(
        f'<li><a href="{html.escape(name)}">{html.escape(label)}</a> ({html.escape(name)})</li>\n'
        for name, label in names
    )
    body = f"<ul>\n{items}</ul>" if names else "<p>No feed has been written yet.</p>"
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Feeds</title>\n{alternates}</head>\n<body>\n<h1>Feeds</h1>\n{body}\n"
        "</body>\n</html>\n"
    )
    return page.encode("utf-8")


def _printable(text: str, limit: int = 300) -> str:
    """A request path made safe for one log line (no control characters, bounded length)."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[:limit] + "..."


class _Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the files in the server's directory; everything else is 405."""

    protocol_version = "HTTP/1.1"  # keep-alive: readers fetch three feeds in a row
    server_version = f"aggregator/{__version__}"
    # Headers and body go out in separate writes; with Nagle on, the body of a keep-alive
    # response waits for the client's delayed ACK (about 40 ms per request).
    disable_nagle_algorithm = True

    @property
    def _server(self) -> FeedHTTPServer:
        return cast(FeedHTTPServer, self.server)

    def setup(self) -> None:
        super().setup()
        # Every read and write may block this long: an idle or stalled client frees its thread.
        self.connection.settimeout(self._server.request_timeout)

    def handle(self) -> None:
        """Serve the connection; a client that hangs up or stalls is dropped quietly."""
        try:
            super().handle()
        except (ConnectionError, TimeoutError) as exc:  # BrokenPipe, ConnectionReset, timeout
            self.close_connection = True
            logger.debug("client %s dropped: %r", self.client_address[0], exc)

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: each response is logged once by _log, with the body bytes actually sent."""

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug("%s: %s", self.client_address[0], _printable(format % args))

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s: %s", self.client_address[0], _printable(format % args))

    def _log(self, status: int, sent: int) -> None:
        logger.info(
            "%s %s %d %d",
            _printable(self.command or "-", 20),
            _printable(getattr(self, "path", "") or "-"),
            status,
            sent,
        )

    # -- methods --------------------------------------------------------------------------

    def parse_request(self) -> bool:
        """Answer every method but GET and HEAD with 405 before any handler runs."""
        if not super().parse_request():
            return False
        if self.command in ("GET", "HEAD"):
            return True
        self.close_connection = True  # its body, if any, is left unread
        self._send_status(HTTPStatus.METHOD_NOT_ALLOWED, [("Allow", ALLOW)])
        return False

    def handle_expect_100(self) -> bool:
        """Only GET and HEAD get a 100 Continue; anything else is refused without its body."""
        if self.command in ("GET", "HEAD"):
            return super().handle_expect_100()
        return True

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    # -- responses ------------------------------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors from http.server itself (400, 414, 431, 501...) get our headers and logging."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # the request line did not parse: answer in 1.x
            self.request_version = "HTTP/1.0"
        try:
            status: HTTPStatus | int = HTTPStatus(code)
        except ValueError:
            status = code
        self._send_status(status)

    def _send_status(
        self, status: HTTPStatus | int, extra: list[tuple[str, str]] | None = None
    ) -> None:
        """A short plain-text status response; never echoes the request."""
        code = int(status)
        phrase = status.phrase if isinstance(status, HTTPStatus) else "Error"
        body = f"{code} {phrase}\n".encode()
        self.send_response(code, phrase)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra or ():
            self.send_header(name, value)
        self._end_headers()
        sent = 0
        if self.command != "HEAD":
            self.wfile.write(body)
            sent = len(body)
        self._log(code, sent)

    def _end_headers(self) -> None:
        """Headers every response carries, then the blank line."""
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        # On every response, not only HTML: an XML or SVG file opened in a browser can run
        # script too, and feed readers ignore the header.
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _serve(self, head: bool) -> None:
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True  # a body we will not read must not be taken as a request
        try:
            path = _request_path(self.path)
            segments = _segments(path)
            if not segments:
                try:
                    real = _locate(self._server.directory, ["index.html"])
                    f, st = _open_regular(real)
                except _Refused:
                    self._send_index(head)
                    return
            elif path.endswith("/"):
                # A folder's own page (an extra output's, `outputs:`), never a listing.
                real = _locate(self._server.directory, [*segments, "index.html"])
                f, st = _open_regular(real)
            else:
                real = _locate(self._server.directory, segments)
                if _has_page(real):
                    self._send_status(
                        HTTPStatus.MOVED_PERMANENTLY, [("Location", _folder(segments))]
                    )
                    return
                f, st = _open_regular(real)
        except _Refused as refused:
            self._send_status(refused.status)
            return
        with f:
            self._send_file(real, f, st, head)

    def _not_modified(self, etag: str, mtime: int | None) -> bool:
        """RFC 9110 13.2.2: If-None-Match, when present, decides; else If-Modified-Since."""
        if_none_match = self.headers.get_all("If-None-Match")
        if if_none_match:
            return etag_matches(if_none_match, etag)
        if mtime is None:
            return False
        since = self.headers.get_all("If-Modified-Since")
        if not since or len(since) != 1:
            return False
        try:
            date = email.utils.parsedate_to_datetime(since[0])
        except (TypeError, ValueError, IndexError):
            return False  # not an HTTP-date: ignored (RFC 9110 13.1.3)
        if date.tzinfo is None:
            date = date.replace(tzinfo=UTC)
        return mtime <= date.timestamp()

    def _send_file(self, real: str, f: BufferedReader, st: os.stat_result, head: bool) -> None:
        cache = self._server.cache
        version = (st.st_mtime_ns, st.st_size, st.st_ino)
        entry = cache.get(real, version) or cache.digest(real, version, f)
        content_type = content_type_for(os.path.basename(real))
        compressible = is_compressible(content_type)
        use_gzip = (
            compressible
            and st.st_size <= MAX_GZIP_SIZE
            and accepts_gzip(self.headers.get_all("Accept-Encoding"))
        )
        # gzip bytes are a different representation, so a different strong ETag (RFC 9110 8.8.3).
        etag = f'"{entry.digest}-gz"' if use_gzip else f'"{entry.digest}"'
        mtime = st.st_mtime_ns // 1_000_000_000
        validators = [
            ("ETag", etag),
            ("Last-Modified", email.utils.formatdate(mtime, usegmt=True)),
            ("Cache-Control", CACHE_CONTROL),
        ]
        if compressible:
            validators.append(("Vary", "Accept-Encoding"))
        if self._not_modified(etag, mtime):
            self._send_not_modified(validators)
            return
        body = cache.gzipped(entry, f) if use_gzip else None
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if body is not None else st.st_size))
        if body is not None:
            self.send_header("Content-Encoding", "gzip")
        for name, value in validators:
            self.send_header(name, value)
        self._end_headers()
        sent = 0
        if not head:
            sent = self._write_body(body) if body is not None else self._stream(f, st.st_size)
        self._log(HTTPStatus.OK, sent)

    def _send_index(self, head: bool) -> None:
        """The generated "/" page: the feed files that exist and are servable."""
        present = []
        for name, label in FEED_FILES:
            try:
                f, _ = _open_regular(_locate(self._server.directory, [name]))
            except _Refused:
                continue
            f.close()
            present.append((name, label))
        page = _index_page(present)
        etag = f'"{hashlib.sha256(page).hexdigest()[:32]}"'
        validators = [("ETag", etag), ("Cache-Control", INDEX_CACHE_CONTROL)]
        if self._not_modified(etag, None):
            self._send_not_modified(validators)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        for name, value in validators:
            self.send_header(name, value)
        self._end_headers()
        self._log(HTTPStatus.OK, 0 if head else self._write_body(page))

    def _send_not_modified(self, validators: list[tuple[str, str]]) -> None:
        self.send_response(HTTPStatus.NOT_MODIFIED)
        for name, value in validators:
            self.send_header(name, value)
        self._end_headers()
        self._log(HTTPStatus.NOT_MODIFIED, 0)

    def _write_body(self, body: bytes) -> int:
        self.wfile.write(body)
        return len(body)

    def _stream(self, f: BufferedReader, size: int) -> int:
        """Send ``size`` bytes of ``f`` in chunks (memory stays flat for large files)."""
        f.seek(0)
        sent = 0
        while sent < size:
            chunk = f.read(min(_CHUNK, size - sent))
            if not chunk:  # truncated in place since fstat: the client sees a short body
                self.close_connection = True
                break
            self.wfile.write(chunk)
            sent += len(chunk)
        return sent
