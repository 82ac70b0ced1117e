"""The fetch package against a real loopback server: headers, validators, redirects, limits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FeedServer, item, rss, wait_until

from aggregator.errors import FetchError
from aggregator.fetch import ACCEPT, FetchLimits, fetch, make_session

FEED = rss(item("1", "One", "https://example.org/1"))
FAST = FetchLimits(  # loopback test servers: redirects among them are allowed
    connect_timeout=2, read_timeout=1, total_timeout=3, max_body_bytes=100_000, allow_private=True
)


def test_first_request_is_honest_and_unconditional(feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed.xml?x=1&y=2", FEED, etag='"abc"')
    result = fetch(make_session(), url, limits=FAST)
    assert result.status == 200 and result.body == FEED.encode()
    seen = feed_server.hits("/feed.xml?x=1&y=2")[0]  # path and query exactly as configured
    assert re.match(r"^aggregator/\d+\.\d+\.\d+ \(\+https?://\S+\)$", seen.headers["User-Agent"])
    assert seen.headers["Accept"] == ACCEPT
    assert "gzip" in seen.headers["Accept-Encoding"]
    for absent in ("If-None-Match", "If-Modified-Since", "Cookie", "Referer"):
        assert absent not in seen.headers


def test_validators_are_sent_back_byte_for_byte(feed_server: FeedServer) -> None:
    modified = "Wed, 25 Nov 2026 08:00:00 GMT"
    url = feed_server.serve("/f", FEED, etag='W/"v1"', last_modified=modified)
    session = make_session()
    first = fetch(session, url, limits=FAST)
    second = fetch(
        session,
        url,
        etag=first.headers["ETag"],
        last_modified=first.headers["Last-Modified"],
        limits=FAST,
    )
    assert second.status == 304 and second.body is None and second.not_modified
    request = feed_server.hits("/f")[1]
    assert request.headers["If-None-Match"] == 'W/"v1"'
    assert request.headers["If-Modified-Since"] == modified


def test_cookies_are_never_sent_back(feed_server: FeedServer) -> None:
    url = feed_server.serve("/c", FEED, headers={"Set-Cookie": "session=abc; Path=/"})
    session = make_session()
    fetch(session, url, limits=FAST)
    fetch(session, url, limits=FAST)
    assert all("Cookie" not in r.headers for r in feed_server.hits("/c"))


@pytest.mark.parametrize(
    ("chain", "permanent"),
    [((301,), True), ((308, 301), True), ((302,), False), ((301, 307), False)],
)
def test_redirects_followed_and_permanence_recorded(
    feed_server: FeedServer, chain: tuple[int, ...], permanent: bool
) -> None:
    final = feed_server.serve("/final", FEED)
    target = final
    for hop, status in reversed(list(enumerate(chain))):
        target = feed_server.serve(f"/hop{hop}", status=status, location=target)
    result = fetch(make_session(), target, limits=FAST)
    assert result.status == 200 and result.url == final
    assert result.redirected_permanently is permanent


def test_redirect_loop_is_a_clear_error(feed_server: FeedServer) -> None:
    feed_server.serve("/a", status=301, location=feed_server.url("/b"))
    feed_server.serve("/b", status=301, location=feed_server.url("/a"))
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(make_session(), feed_server.url("/a"), limits=FAST)


@pytest.mark.parametrize(("status", "text"), [(404, "HTTP 404"), (500, "HTTP 500"), (410, "410")])
def test_http_errors_carry_their_status(feed_server: FeedServer, status: int, text: str) -> None:
    url = feed_server.serve("/e", "oops", status=status, content_type="text/plain")
    with pytest.raises(FetchError, match=text) as caught:
        fetch(make_session(), url, limits=FAST)
    assert caught.value.status == status


def test_server_that_never_answers_times_out(feed_server: FeedServer) -> None:
    url = feed_server.serve("/hang", hang=True)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch(make_session(), url, limits=FAST)
    assert time.monotonic() - started < 5


def test_trickling_server_hits_the_whole_response_deadline(feed_server: FeedServer) -> None:
    url = feed_server.serve("/slow", FEED, trickle=0.2)  # ~40 s at this pace; deadline is 3 s
    started = time.monotonic()
    with pytest.raises(FetchError, match="whole response took longer"):
        fetch(make_session(), url, limits=FAST)
    assert time.monotonic() - started < 6


def test_declared_oversize_body_is_refused(feed_server: FeedServer) -> None:
    url = feed_server.serve("/big", b"x" * 200_000)
    with pytest.raises(FetchError, match="body too large"):
        fetch(make_session(), url, limits=FAST)


def test_gzip_is_decoded_and_the_cap_applies_after_decoding(feed_server: FeedServer) -> None:
    small = feed_server.serve("/gz", FEED, gzip=True)
    assert fetch(make_session(), small, limits=FAST).body == FEED.encode()
    bomb = feed_server.serve("/bomb", b"<rss>" + b" " * 5_000_000, gzip=True)  # ~5 KB on the wire
    with pytest.raises(FetchError, match="body too large"):
        fetch(make_session(), bomb, limits=FAST)


def test_unreachable_host_is_a_clear_error() -> None:
    with pytest.raises(FetchError, match=r"request failed: connection refused by 127\.0\.0\.1"):
        fetch(make_session(), "http://127.0.0.1:9/feed", limits=FAST)
    with pytest.raises(FetchError, match=r"request failed: cannot resolve nowhere\.invalid"):
        fetch(make_session(), "http://nowhere.invalid/feed", limits=FAST)


def test_file_urls_read_locally_with_mtime_as_validator(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(FEED, encoding="utf-8")
    first = fetch(make_session(), path.as_uri(), limits=FAST)
    assert first.status == 200 and first.body == FEED.encode()
    again = fetch(
        make_session(), path.as_uri(), last_modified=first.headers["Last-Modified"], limits=FAST
    )
    assert again.status == 304 and again.body is None
    with pytest.raises(FetchError, match="file not found"):
        fetch(make_session(), (tmp_path / "missing.xml").as_uri(), limits=FAST)


def test_chunked_and_close_delimited_bodies_are_read_whole(feed_server: FeedServer) -> None:
    pieces = [FEED[i : i + 7].encode() for i in range(0, len(FEED), 7)]
    chunked = feed_server.serve("/chunked", stream=lambda: iter(pieces), chunked=True)
    closed = feed_server.serve("/closed", stream=lambda: iter(pieces))
    gz = feed_server.serve("/gz-chunked", stream=lambda: iter(pieces), chunked=True, gzip=True)
    for url in (chunked, closed, gz):
        assert fetch(make_session(), url, limits=FAST).body == FEED.encode(), url


def test_relative_redirects_are_resolved(feed_server: FeedServer) -> None:
    final = feed_server.serve("/feeds/final.xml", FEED)
    feed_server.serve("/feeds/a/start", status=302, location="../final.xml")
    result = fetch(make_session(), feed_server.url("/feeds/a/start"), limits=FAST)
    assert result.url == final and not result.redirected_permanently


def test_a_redirect_body_is_never_read(feed_server: FeedServer) -> None:
    """requests would read a 301's whole body into memory; an endless one must not matter."""
    final = feed_server.serve("/final", FEED)
    endless = feed_server.serve(
        "/moved",
        status=301,
        location=final,
        stream=lambda: iter(lambda: b"x" * 65536, None),
        chunked=True,
    )
    started = time.monotonic()
    assert fetch(make_session(), endless, limits=FAST).body == FEED.encode()
    assert time.monotonic() - started < 2
    assert wait_until(lambda: feed_server.hits("/moved")[0].finished)
    assert feed_server.hits("/moved")[0].aborted
    assert feed_server.hits("/moved")[0].sent < 32 * 1024 * 1024


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:x"])
def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer, target: str) -> None:
    url = feed_server.serve("/r", status=302, location=target)
    with pytest.raises(FetchError, match="refused to follow a redirect to a non-HTTP URL"):
        fetch(make_session(), url, limits=FAST)


def test_redirect_loop_stops_when_it_comes_back(feed_server: FeedServer) -> None:
    feed_server.serve("/self", status=307, location="/self")
    with pytest.raises(FetchError, match=r"too many redirects: a loop \(1 hops"):
        fetch(make_session(), feed_server.url("/self"), limits=FAST)
    assert len(feed_server.hits("/self")) == 1


def test_trickled_headers_hit_the_whole_response_deadline(feed_server: FeedServer) -> None:
    def slow() -> Iterator[bytes]:
        yield b"HTTP/1.1 200 OK\r\nX-Slow: "
        while not feed_server.pause(0.3):  # each byte well within the 1 s read timeout
            yield b"z"

    url = feed_server.serve("/slow-headers", raw=slow)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"longer than 3s \(still waiting for the headers\)"):
        fetch(make_session(), url, limits=FAST)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"l" * 70_000 + b"\r\n\r\n",
            "line that is too long",
        ),
        (b"HTTP/1.1 200 OK\r\n" + b"X-H: v\r\n" * 101 + b"\r\n", "too many response headers"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 70_000, "too long"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n<rss>", "got 5 bytes, 45 more expected"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip", "corrupt gzip body"),
        (b"<rss>no status line</rss>", "not an HTTP response"),
        (b"", "without a response"),
    ],
    ids=[
        "long-header",
        "101-headers",
        "long-chunk-size",
        "short-body",
        "bad-gzip",
        "no-http",
        "empty",
    ],
)
def test_malformed_answers_are_one_line_fetch_errors(
    feed_server: FeedServer, raw: bytes, reason: str
) -> None:
    url = feed_server.serve("/raw", raw=raw)
    with pytest.raises(FetchError, match=re.escape(reason)) as caught:
        fetch(make_session(), url, limits=FAST)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_special_files_are_not_read(tmp_path: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    with pytest.raises(FetchError, match="not a regular file"):
        fetch(make_session(), "file:///dev/zero", limits=FAST)
    with pytest.raises(FetchError, match="not a regular file"):
        fetch(make_session(), tmp_path.as_uri(), limits=FAST)


@pytest.mark.parametrize(
    "location",
    [
        b"http://[::1",
        b"http://127.0.0.1:99999999/x",
        b"http://",
        b"http:///only-a-path",
        b"",
        b"   ",
        b"http://a b.example/",
        b"/caf\xc3\xa9",  # UTF-8, which http.client reads as Latin-1
        b"/\xff\xfe",  # neither
        "http://\u2603.invalid/".encode(),
        b"http://xn--.invalid/",
        b"http://%zz/",
    ],
)
def test_any_redirect_location_ends_in_a_result_or_a_fetch_error(
    feed_server: FeedServer, location: bytes
) -> None:
    feed_server.serve("/caf%C3%A9", FEED)
    raw = b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
    url = feed_server.serve("/weird", raw=raw)
    try:
        result = fetch(make_session(), url, limits=FAST)
    except FetchError as e:
        assert "\n" not in str(e)
    else:
        assert result.status == 200 and result.url == feed_server.url("/caf%C3%A9")
