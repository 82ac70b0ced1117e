"""Shared fixtures: a real HTTP feed server on 127.0.0.1 that records requests, and paths."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"  # ../shared beside the checkout
VALIDATOR = SHARED / "tools" / "validate-feed"  # the W3C Feed Validator's checker, offline


class QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-request (killed, timed out) are expected here, not errors."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    hang: bool = False  # accept, then never answer
    trickle: float = 0.0  # seconds between body bytes
    location: str | None = None  # redirect target
    delay: float = 0.0  # seconds before answering
    # Streaming bodies for hostile publishers (never held whole in the test process):
    stream: Callable[[], Iterable[bytes]] | None = None  # the body, piece by piece
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    content_length: int | None = None  # announce this length, whatever is sent (a lie)
    # Anything at all, written verbatim instead of a response, then the connection is closed:
    # bytes, or a callable giving pieces (it may sleep between them: use FeedServer.pause).
    raw: bytes | Callable[[], Iterable[bytes]] | None = None


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    started: float = 0.0  # time.monotonic() when the request arrived
    body: bytes = b""  # what a POST sent
    finished: float = 0.0  # ... and when its answer was sent
    sent: int = 0  # body bytes written by a streamed or raw answer (after gzip)
    aborted: bool = False  # the client closed the connection before the answer was complete


class FeedServer:
    """A small publisher: serves routes, honours validators, records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                seen = Seen("GET", self.path, dict(self.headers.items()), time.monotonic())
                server.requests.append(seen)
                try:
                    self._answer(seen)
                except (BrokenPipeError, ConnectionResetError):
                    seen.aborted = True  # the client gave up on us: what a cap should do
                    self.close_connection = True
                finally:
                    seen.finished = time.monotonic()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                seen = Seen("POST", self.path, dict(self.headers.items()), time.monotonic(), body)
                server.requests.append(seen)
                route = server.routes.get(self.path)
                status = route.status if route else 404
                self._send(status, b"", {})
                seen.finished = time.monotonic()

            def _answer(self, seen: Seen) -> None:
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.raw is not None:
                    self._raw(route.raw, seen)
                    return
                if route.hang:
                    server.stopping.wait(60)
                    return
                if route.delay and server.stopping.wait(route.delay):
                    return
                headers = {"Content-Type": route.content_type, **route.headers}
                if route.location:
                    headers["Location"] = route.location
                if route.etag:
                    headers["ETag"] = route.etag
                if route.last_modified:
                    headers["Last-Modified"] = route.last_modified
                if route.status == 200 and (
                    (route.etag and self.headers.get("If-None-Match") == route.etag)
                    or (
                        route.last_modified
                        and self.headers.get("If-Modified-Since") == route.last_modified
                    )
                ):
                    headers.pop("Content-Type")
                    self._send(304, b"", headers)
                    return
                if route.stream is not None or route.chunked or route.content_length is not None:
                    self._stream(route, headers, seen)
                    return
                body = route.body
                if route.gzip:
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                if route.trickle:
                    self._trickle(route.status, body, headers, route.trickle)
                else:
                    self._send(route.status, body, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def _trickle(
                self, status: int, body: bytes, headers: dict[str, str], gap: float
            ) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for byte in body:
                        if server.stopping.wait(gap):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:
                    return

            def _stream(self, route: Route, headers: dict[str, str], seen: Seen) -> None:
                """A body written piece by piece: chunked, with a (maybe false) length, or
                delimited by closing the connection."""
                pieces: Iterable[bytes] = (
                    route.stream() if route.stream is not None else [route.body]
                )
                if route.gzip:
                    pieces = _gzip_pieces(pieces)
                    headers["Content-Encoding"] = "gzip"
                self.send_response(route.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if route.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif route.content_length is not None:
                    self.send_header("Content-Length", str(route.content_length))
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                for piece in pieces:
                    if server.stopping.is_set():
                        self.close_connection = True
                        return
                    if piece:
                        framed = b"%x\r\n%s\r\n" % (len(piece), piece) if route.chunked else piece
                        self.wfile.write(framed)
                        seen.sent += len(piece)
                if route.chunked:
                    self.wfile.write(b"0\r\n\r\n")
                elif route.content_length != seen.sent:
                    self.close_connection = True  # no length, or a false one: close to end it

            def _raw(self, raw: bytes | Callable[[], Iterable[bytes]], seen: Seen) -> None:
                self.close_connection = True
                for piece in [raw] if isinstance(raw, bytes) else raw():
                    if server.stopping.is_set():
                        return
                    self.wfile.write(piece)
                    seen.sent += len(piece)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A short poll interval makes stop() quick (the default 0.5 s adds up over a suite).
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes | str = b"", **options: object) -> str:
        """Serve ``body`` at ``path``; returns the full URL."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **options)  # type: ignore[arg-type]
        return self.url(path)

    def pause(self, seconds: float) -> bool:
        """Sleep in a streamed or raw answer; True when the server is stopping (give up)."""
        return self.stopping.wait(seconds)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _gzip_pieces(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """One gzip stream over ``pieces``, compressed as they come."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    for piece in pieces:
        if out := compressor.compress(piece):
            yield out
    yield compressor.flush()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def atom_schema() -> etree.RelaxNG:
    """The RFC 4287 RELAX NG schema from ../shared; CI must have it, a laptop may skip."""
    path = SHARED / "feed-schemas" / "atom.rng"
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"Atom RELAX NG schema missing at {path}")
        pytest.skip(f"Atom RELAX NG schema not found at {path}")
    return etree.RelaxNG(etree.parse(str(path)))


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rss(items: str, *, title: str = "Test feed", link: str = "https://example.org/") -> str:
    """A minimal RSS 2.0 document around ``items``."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>{link}</link><description>d</description>"
        f"{items}</channel></rss>"
    )


def item(
    guid: str,
    title: str,
    link: str | None = None,
    *,
    date: str = "Wed, 25 Nov 2026 09:00:00 GMT",
    body: str = "",
) -> str:
    link_xml = f"<link>{link}</link>" if link else ""
    date_xml = f"<pubDate>{date}</pubDate>" if date else ""
    return (
        f'<item><guid isPermaLink="false">{guid}</guid><title>{title}</title>{link_xml}'
        f"{date_xml}<description>{body}</description></item>"
    )


def write_config(tmp_path: Path, feeds_yaml: str, extra: str = "") -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "database: db/test.db\n"
        "output:\n  dir: out\n  title: Merged\n  id: tag:test.invalid,2026:merged\n"
        # The test servers are on loopback: redirects among them are allowed here (issue 13).
        "defaults:\n  timeout: 2s\n  connect_timeout: 2s\n  allow_private_addresses: true\n"
        f"{extra}feeds:\n{feeds_yaml}",
        encoding="utf-8",
    )
    return path


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real `aggregator` command, as a user runs it from ``cwd`` (python -m aggregator)."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def running(*args: str, cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m aggregator ARGS` in the background from ``cwd``, its stderr in ``log``.
    Killed on the way out if the test has not stopped it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", *args],
        cwd=cwd,
        stderr=log.open("wb"),
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()


@contextmanager
def serving(*args: str, cwd: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`aggregator ARGS serve --port 0` running from ``cwd``: the process and the base URL its
    log names (`running`)."""
    with running(*args, "serve", "--port", "0", cwd=cwd, log=log) as process:
        assert wait_until(lambda: "serving" in log.read_text(), 15), log.read_text()
        port = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())
        assert port, log.read_text()
        yield process, f"http://127.0.0.1:{port.group(1)}"


def need_shared(path: Path, what: str) -> None:
    """Skip (fail on CI, which must have ../shared) when a shared tool or corpus is missing."""
    if path.exists():
        return
    message = f"{what} not found at {path} (it lives in ../shared beside the checkout)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run_validator(
    target: str | Path, *, base: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The W3C Feed Validator's checker on a file or URL; with ``base``, as if the file were
    published there (it compares rel="self" with it). Skips where it or html5lib is missing."""
    need_shared(VALIDATOR, "the feed validator")
    pytest.importorskip("html5lib", reason="the feed validator needs html5lib")
    command = [sys.executable, str(VALIDATOR), str(target)]
    if base is not None:
        command += ["--base", base]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def wait_until(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False
