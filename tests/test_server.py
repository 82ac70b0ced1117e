"""The output server, exercised over real loopback HTTP: types, validators, gzip, safety."""

from __future__ import annotations

import email.utils
import gzip
import html
import http.client
import inspect
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from aggregator.render.html import render_html
from aggregator.server import (
    CACHE_CONTROL,
    CONTENT_SECURITY_POLICY,
    FeedHTTPServer,
    make_server,
    serve_in_thread,
)
from aggregator.types import OutputFeed

ATOM = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
    + (b"<title>merged</title>" * 50)
    + b"</feed>\n"
)
SECRET = b"TOP-SECRET-CONTENTS"
FILES = {
    "atom.xml": ATOM,
    "rss.xml": b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>\n',
    "feed.json": b'{"version": "https://jsonfeed.org/version/1.1", "items": []}\n',
    "other.xml": b"<x/>\n",
    "data.json": b"{}\n",
    "page.html": b"<!doctype html><title>p</title>\n",
    "style.css": b"body { color: black }\n",
    "blob.bin": bytes(range(256)) * 4,
}


@dataclass
class Site:
    """A running server over ``out``; ``secret`` lives beside ``out``, outside it."""

    out: Path
    secret: Path
    server: FeedHTTPServer
    base: str
    session: requests.Session

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def get(self, path: str, **headers: str) -> requests.Response:
        return self.session.get(self.base + path, headers=headers, timeout=5)

    def raw(
        self, path: str, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        """Send ``path`` byte for byte (requests would normalize ``..`` away)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response, response.read()
        finally:
            conn.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    out = tmp_path / "out"
    out.mkdir()
    for name, data in FILES.items():
        (out / name).write_bytes(data)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    server = make_server(out, port=0)
    thread = serve_in_thread(server, poll_interval=0.05)
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment for loopback
    try:
        yield Site(out, secret, server, f"http://127.0.0.1:{server.server_address[1]}", session)
    finally:
        session.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def identity(site: Site, path: str, **headers: str) -> requests.Response:
    return site.get(path, **{"Accept-Encoding": "identity", **headers})


# -- content types and headers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("atom.xml", "application/atom+xml; charset=utf-8"),
        ("rss.xml", "application/rss+xml; charset=utf-8"),
        ("feed.json", "application/feed+json; charset=utf-8"),
        ("other.xml", "application/xml; charset=utf-8"),
        ("data.json", "application/json"),
        ("page.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("blob.bin", "application/octet-stream"),
    ],
)
def test_content_types(site: Site, name: str, content_type: str) -> None:
    response = identity(site, "/" + name)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.content == FILES[name]
    assert response.headers["Content-Length"] == str(len(FILES[name]))


def test_validators_and_security_headers(site: Site) -> None:
    response = identity(site, "/atom.xml")
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    mtime = (site.out / "atom.xml").stat().st_mtime
    assert response.headers["Last-Modified"] == email.utils.formatdate(int(mtime), usegmt=True)
    assert response.headers["Cache-Control"] == CACHE_CONTROL == "public, max-age=300"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert not response.headers["Server"].startswith("BaseHTTP")

    page = identity(site, "/page.html")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    # The header says what the rendered page's own <meta> says, and forbids framing (which a
    # <meta> cannot): issue 13, the two disagreed.
    meta = re.search(
        rb'<meta http-equiv="Content-Security-Policy" content="([^"]*)"',
        render_html(OutputFeed("tag:t,2026:x", "t", datetime(2026, 1, 1, tzinfo=UTC), ())),
    )
    assert meta is not None
    assert (
        html.unescape(meta.group(1).decode()) + ("; frame-ancestors 'none'")
        == CONTENT_SECURITY_POLICY
    )
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "form-action 'none'" in CONTENT_SECURITY_POLICY
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "Vary" not in identity(site, "/blob.bin").headers  # never gzipped: nothing varies


# -- conditional requests ------------------------------------------------------------------


def test_if_none_match_gives_304_without_body(site: Site) -> None:
    first = identity(site, "/atom.xml")
    etag = first.headers["ETag"]
    for value in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        status, response, body = site.raw(
            "/atom.xml", headers={"If-None-Match": value, "Accept-Encoding": "identity"}
        )
        assert status == 304, value
        assert body == b""
        assert response.getheader("ETag") == etag
        assert response.getheader("Last-Modified") == first.headers["Last-Modified"]
        assert response.getheader("Cache-Control") == CACHE_CONTROL
        assert response.getheader("Vary") == "Accept-Encoding"
    assert identity(site, "/atom.xml", **{"If-None-Match": '"other"'}).status_code == 200


def test_if_modified_since(site: Site) -> None:
    last_modified = identity(site, "/atom.xml").headers["Last-Modified"]
    response = identity(site, "/atom.xml", **{"If-Modified-Since": last_modified})
    assert response.status_code == 304 and response.content == b""
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert identity(site, "/atom.xml", **{"If-Modified-Since": later}).status_code == 304
    earlier = email.utils.formatdate(time.time() - 86400, usegmt=True)
    assert identity(site, "/atom.xml", **{"If-Modified-Since": earlier}).status_code == 200
    garbage = identity(site, "/atom.xml", **{"If-Modified-Since": "yesterday-ish"})
    assert garbage.status_code == 200 and garbage.content == ATOM


def test_if_none_match_takes_precedence_over_if_modified_since(site: Site) -> None:
    first = identity(site, "/atom.xml")
    response = identity(
        site,
        "/atom.xml",
        **{"If-None-Match": '"stale"', "If-Modified-Since": first.headers["Last-Modified"]},
    )
    assert response.status_code == 200
    assert response.content == ATOM
    earlier = email.utils.formatdate(time.time() - 86400, usegmt=True)
    response = identity(
        site,
        "/atom.xml",
        **{"If-None-Match": first.headers["ETag"], "If-Modified-Since": earlier},
    )
    assert response.status_code == 304


def test_atomically_replaced_file_is_served_fresh(site: Site) -> None:
    first = identity(site, "/atom.xml")
    new = ATOM.replace(b"merged", b"MERGED")
    tmp = site.out / ".atom.xml.123.abc.tmp"
    tmp.write_bytes(new)
    os.replace(tmp, site.out / "atom.xml")
    response = identity(site, "/atom.xml", **{"If-None-Match": first.headers["ETag"]})
    assert response.status_code == 200
    assert response.content == new
    assert response.headers["ETag"] != first.headers["ETag"]
    zipped = site.get("/atom.xml", **{"Accept-Encoding": "gzip"})
    assert zipped.content == new  # the cached gzip body of the old version is not reused


def test_each_file_version_is_hashed_and_gzipped_once(site: Site) -> None:
    cache = site.server.cache
    for _ in range(3):
        identity(site, "/rss.xml")
        site.get("/rss.xml", **{"Accept-Encoding": "gzip"})
    assert (cache.hashed, cache.compressed) == (1, 1)
    (site.out / "rss.xml").write_bytes(b"<rss/>\n<!-- new version, new size -->\n")
    identity(site, "/rss.xml")
    assert cache.hashed == 2


# -- gzip ----------------------------------------------------------------------------------


def test_gzip_when_accepted(site: Site) -> None:
    plain = identity(site, "/atom.xml")
    response = site.session.get(
        site.base + "/atom.xml", headers={"Accept-Encoding": "gzip, deflate"}, stream=True
    )
    raw = response.raw.read(decode_content=False)
    response.close()
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.headers["Content-Length"] == str(len(raw))
    assert gzip.decompress(raw) == ATOM
    assert raw == gzip.compress(ATOM, mtime=0)  # deterministic bytes
    assert len(raw) < len(ATOM)
    gz_etag = response.headers["ETag"]
    assert gz_etag != plain.headers["ETag"]
    assert gz_etag == plain.headers["ETag"][:-1] + '-gz"'

    again = site.get("/atom.xml", **{"Accept-Encoding": "gzip", "If-None-Match": gz_etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == gz_etag
    # The gzip tag does not validate the identity representation, nor the reverse.
    assert identity(site, "/atom.xml", **{"If-None-Match": gz_etag}).status_code == 200
    swapped = site.get(
        "/atom.xml", **{"Accept-Encoding": "gzip", "If-None-Match": plain.headers["ETag"]}
    )
    assert swapped.status_code == 200


@pytest.mark.parametrize(
    "accept", ["identity", "gzip;q=0", "gzip; q=0.000", "deflate", "*;q=0", "gzip;q=0, *", ""]
)
def test_no_gzip_unless_allowed(site: Site, accept: str) -> None:
    response = site.get("/atom.xml", **{"Accept-Encoding": accept})
    assert "Content-Encoding" not in response.headers
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.content == ATOM


@pytest.mark.parametrize("accept", ["GZIP;q=0.5", "*", "br;q=1.0, x-gzip;q=0.1"])
def test_gzip_q_values_and_wildcard(site: Site, accept: str) -> None:
    response = site.get("/atom.xml", **{"Accept-Encoding": accept})
    assert response.headers["Content-Encoding"] == "gzip"


def test_binary_files_are_not_gzipped(site: Site) -> None:
    response = site.get("/blob.bin", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers
    assert response.content == FILES["blob.bin"]


# -- methods -------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["identity", "gzip"])
def test_head_has_the_get_headers_and_no_body(site: Site, accept: str) -> None:
    get = site.session.get(
        site.base + "/atom.xml", headers={"Accept-Encoding": accept}, stream=True, timeout=5
    )
    get_body = get.raw.read(decode_content=False)
    get.close()
    head = site.session.head(
        site.base + "/atom.xml", headers={"Accept-Encoding": accept}, timeout=5
    )
    assert head.status_code == 200 and head.content == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control"):
        assert head.headers[name] == get.headers[name], name
    assert head.headers.get("Content-Encoding") == get.headers.get("Content-Encoding")
    assert int(head.headers["Content-Length"]) == len(get_body)

    # On one keep-alive connection: a stray HEAD body would corrupt the next response.
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
    try:
        conn.request("HEAD", "/atom.xml", headers={"Accept-Encoding": accept})
        response = conn.getresponse()
        assert response.read() == b""
        conn.request("GET", "/rss.xml", headers={"Accept-Encoding": "identity"})
        response = conn.getresponse()
        assert response.status == 200 and response.read() == FILES["rss.xml"]
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_other_methods_are_405(site: Site, method: str) -> None:
    response = site.session.request(method, site.base + "/atom.xml", data=b"x" * 100, timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert (site.out / "atom.xml").read_bytes() == ATOM


# -- what is reachable ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/./../secret.txt",
        "/atom.xml/../../secret.txt",
        "/%252e%252e/secret.txt",
        "http://127.0.0.1/../secret.txt",
        "../secret.txt",
        "secret.txt",
    ],
)
def test_traversal_is_refused(site: Site, path: str) -> None:
    status, _, body = site.raw(path)
    assert status in (400, 404)
    assert SECRET not in body


def test_absolute_paths_are_refused(site: Site) -> None:
    for path in (
        "//etc/passwd",
        "/" + str(site.secret),
        "/%2F" + str(site.secret).lstrip("/"),
        "//" + str(site.secret).lstrip("/"),
    ):
        status, _, body = site.raw(path)
        assert status in (400, 404), path
        assert SECRET not in body and b"root:" not in body


@pytest.mark.parametrize("path", ["/atom.xml%00", "/atom.xml%00.html", "/%00", "/%ff", "/a%0d%0a"])
def test_malformed_paths_are_400(site: Site, path: str) -> None:
    status, _, body = site.raw(path)
    assert status == 400
    assert ATOM not in body


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GARBAGE", b"400"),
        (b"GET /atom.xml HTTP/2.0", b"505"),
        (b"GET /atom.xml HTTP/x", b"400"),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1", b"404"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1", b"414"),
    ],
)
def test_malformed_requests_get_a_proper_answer(
    site: Site, request_line: bytes, status: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b"\r\nX-Content-Type-Options: nosniff\r\n" in answer


def test_symlinks_leading_outside_are_refused(site: Site, tmp_path: Path) -> None:
    (site.out / "link.xml").symlink_to(site.secret)
    (site.out / "linkdir").symlink_to(tmp_path)
    (site.out / "inside.xml").symlink_to(site.out / "atom.xml")
    for path in ("/link.xml", "/linkdir/secret.txt"):
        status, _, body = site.raw(path)
        assert status == 404, path
        assert SECRET not in body
    assert identity(site, "/inside.xml").content == ATOM  # a link within the directory is fine


def test_hidden_temp_and_directories_are_404(site: Site) -> None:
    (site.out / ".hidden").write_bytes(SECRET)
    (site.out / ".atom.xml.123.abc.tmp").write_bytes(SECRET)
    (site.out / "feed.json.part").write_bytes(SECRET)
    (site.out / "sub").mkdir()
    (site.out / "sub" / "x.xml").write_bytes(b"<x/>")
    (site.out / ".git").mkdir()
    (site.out / ".git" / "config").write_bytes(SECRET)
    (site.out / "hidden.xml").symlink_to(site.out / ".hidden")
    for path in (
        "/.hidden",
        "/%2ehidden",
        "/.atom.xml.123.abc.tmp",
        "/feed.json.part",
        "/.git/config",
        "/hidden.xml",
        "/sub",
        "/sub/",
        "/atom.xml/",
    ):
        status, _, body = site.raw(path)
        assert status == 404, path
        assert SECRET not in body and b"x.xml" not in body
    assert identity(site, "/sub/x.xml").content == b"<x/>"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_does_not_block_the_server(site: Site) -> None:
    os.mkfifo(site.out / "pipe.xml")
    started = time.monotonic()
    status, _, _ = site.raw("/pipe.xml")
    assert status == 404
    assert time.monotonic() - started < 2


def test_root_without_index_links_to_existing_feeds(site: Site) -> None:
    (site.out / "feed.json").unlink()
    response = site.get("/?q=1")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert 'href="atom.xml"' in response.text and 'href="rss.xml"' in response.text
    assert "feed.json" not in response.text
    assert "other.xml" not in response.text  # not a listing
    etag = response.headers["ETag"]
    assert site.get("/", **{"If-None-Match": etag}).status_code == 304
    (site.out / "feed.json").write_bytes(FILES["feed.json"])
    changed = site.get("/", **{"If-None-Match": etag})
    assert changed.status_code == 200 and 'href="feed.json"' in changed.text


def test_root_serves_index_html(site: Site) -> None:
    page = b"<!doctype html><title>Home</title><p>hello</p>\n"
    (site.out / "index.html").write_bytes(page)
    response = identity(site, "/")
    assert response.content == page
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["ETag"] == identity(site, "/index.html").headers["ETag"]


def test_a_folder_with_a_page_is_served_at_its_slash(site: Site, tmp_path: Path) -> None:
    """An extra output's folder (`outputs:`): its index.html at /world/, /world sent there
    (the page's relative links need the slash); nothing outside or hidden that way."""
    page = b"<!doctype html><title>World</title>\n"
    (site.out / "world").mkdir()
    (site.out / "world" / "index.html").write_bytes(page)
    (site.out / "world" / "atom.xml").write_bytes(ATOM)
    response = identity(site, "/world/")
    assert response.status_code == 200 and response.content == page
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["ETag"] == identity(site, "/world/index.html").headers["ETag"]
    again = identity(site, "/world/", **{"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert identity(site, "/world/atom.xml").content == ATOM
    for path in ("/world", "/world?x=1", "//world"):
        status, answer, _ = site.raw(path)
        assert (status, answer.getheader("Location")) == (301, "/world/"), path
    status, answer, body = site.raw("/world/", method="HEAD")
    assert status == 200 and body == b""

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_bytes(SECRET)
    (site.out / "away").symlink_to(elsewhere)
    (site.out / ".private").mkdir()
    (site.out / ".private" / "index.html").write_bytes(SECRET)
    for path in ("/away/", "/away", "/world/../away/", "/.private/", "/.private", "/%2eprivate/"):
        status, answer, body = site.raw(path)
        assert status == 404, path
        assert answer.getheader("Location") is None and SECRET not in body


# -- server set-up and robustness ----------------------------------------------------------


def test_default_host_is_loopback(tmp_path: Path) -> None:
    assert inspect.signature(make_server).parameters["host"].default == "127.0.0.1"
    server = make_server(tmp_path, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert server.server_address[1] != 0
        assert server.daemon_threads and server.allow_reuse_address
    finally:
        server.server_close()


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        make_server(tmp_path / "missing", port=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        make_server(tmp_path / "file", port=0)


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_client_closing_early_does_not_break_the_server(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aggregator.server")
    big = os.urandom(32 * 1024 * 1024)  # more than the socket buffers hold
    (site.out / "big.bin").write_bytes(big)
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock:
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    assert _wait_for(lambda: any("dropped" in r.getMessage() for r in caplog.records))
    response = identity(site, "/atom.xml")
    assert response.status_code == 200 and response.content == ATOM
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_idle_clients_are_dropped(site: Site) -> None:
    site.server.request_timeout = 0.3
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""  # the server closed the silent connection
        assert time.monotonic() - started < 4
    assert identity(site, "/atom.xml").status_code == 200


def test_requests_are_logged_not_printed(
    site: Site, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="aggregator.server")
    identity(site, "/atom.xml")
    site.raw("/nope")
    site.raw("/atom.xml", method="POST")
    expected = {f"GET /atom.xml 200 {len(ATOM)}", "GET /nope 404 14", "POST /atom.xml 405 23"}

    def logged() -> set[str]:
        return {r.getMessage() for r in caplog.records if r.name == "aggregator.server"}

    assert _wait_for(lambda: expected <= logged()), logged()
    assert capfd.readouterr().err == ""


def test_idle_connections_cannot_take_unbounded_threads(tmp_path: Path) -> None:
    """Issue 13 #7: every connection got a thread, and the backlog was the stdlib's 5. 150
    idle connections hold at most MAX_CONNECTIONS threads; the rest wait in the backlog, and
    the server answers again once they go."""
    from aggregator.server import LISTEN_BACKLOG, MAX_CONNECTIONS

    (tmp_path / "atom.xml").write_text("<feed/>")
    server = make_server(tmp_path, port=0)
    assert server.request_queue_size == LISTEN_BACKLOG > 5
    before = threading.active_count()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    idle = []
    try:
        for _ in range(150):  # more than MAX_CONNECTIONS, within it plus the backlog
            idle.append(socket.create_connection(server.server_address[:2], timeout=5))
        time.sleep(1.0)
        assert threading.active_count() - before <= MAX_CONNECTIONS + 2
        for sock in idle:
            sock.close()
        idle.clear()
        host, port = server.server_address[:2]
        assert wait_for_answer(f"http://{host}:{port}/atom.xml")
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()


def wait_for_answer(url: str, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return True
        except requests.RequestException:
            time.sleep(0.2)
    return False
