"""Hostile and broken publishers (issue 7): each one is bounded in time and memory, ends as a
clear per-feed error or a correct, bounded ingest, and never hurts the feed polled beside it.

Every case runs the real pipeline (``update``) over the real loopback FeedServer with a good
feed next to the hostile one, then checks that the good feed was stored and that the merged
outputs are still valid XML/JSON with RFC 3339 dates. Bodies of hundreds of megabytes are
generated piece by piece in the server, never built in this process; the cases that measure
memory run ``update`` in a child process and compare its peak RSS before and after.

Limits in force (write_config): timeout 2 s, so a whole exchange may take 4 s; body cap 10 MB.
"""

from __future__ import annotations

import email.utils
import functools
import gzip
import json
import re
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, item, rss, wait_until, write_config
from lxml import etree

from aggregator.config import load_config
from aggregator.pipeline import update
from aggregator.types import Config, PollResult, PollStatus

MB = 1024 * 1024
CAP = 10 * MB  # the default max_body_size
DEADLINE = 4.0  # 2 x the 2 s timeout of write_config
GOOD = rss(item("g1", "Good news from a polite publisher", "https://good.example/1"), title="Good")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
ILLEGAL_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
ATOM = {"a": "http://www.w3.org/2005/Atom"}


# ---------------------------------------------------------------- harness


def hostile_config(
    tmp_path: Path, feed_server: FeedServer, bad_url: str, extra: str = ""
) -> Config:
    """A config polling a good feed and the hostile one (named ``bad``)."""
    good = feed_server.serve("/good.xml", GOOD)
    feeds = f"  - url: {good}\n    name: good\n  - url: {bad_url}\n    name: bad\n"
    return load_config(write_config(tmp_path, feeds, extra))


def run(config: Config) -> tuple[dict[str, PollResult], float]:
    started = time.monotonic()
    report = update(config)
    return {r.feed_name: r for r in report.results}, time.monotonic() - started


def rows(config: Config, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(config.database) as conn:
        return conn.execute(sql, params).fetchall()


def assert_outputs_valid(config: Config) -> list[str]:
    """The merged feeds parse strictly, their dates are valid, and the good feed is in them.

    Returns the Atom entry titles, newest first.
    """
    out = config.output.dir
    atom = etree.parse(str(out / "atom.xml"))  # lxml's strict parser raises on invalid XML
    rss_doc = etree.parse(str(out / "rss.xml"))
    for name in ("atom.xml", "rss.xml"):
        parsed = feedparser.parse((out / name).read_bytes())
        assert parsed.bozo == 0, (name, parsed.get("bozo_exception"))
    for text in atom.xpath("//a:updated/text() | //a:published/text()", namespaces=ATOM):
        assert RFC3339.match(text), text
    for text in rss_doc.xpath("//pubDate/text() | //lastBuildDate/text()"):
        assert email.utils.parsedate_to_datetime(text).tzinfo is not None, text
    feed_json = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    for entry in feed_json["items"]:
        for key in ("date_published", "date_modified"):
            if key in entry:
                assert RFC3339.match(entry[key]), entry[key]
                datetime.fromisoformat(entry[key])
    for name in ("atom.xml", "rss.xml", "feed.json", "index.html"):
        assert not ILLEGAL_XML_CHARS.search((out / name).read_text(encoding="utf-8")), name
    titles = [str(t) for t in atom.xpath("/a:feed/a:entry/a:title/text()", namespaces=ATOM)]
    assert "Good news from a polite publisher" in titles
    return titles


def assert_good_stored(results: dict[str, PollResult]) -> None:
    good = results["good"]
    assert good.status is PollStatus.UPDATED and good.new == 1, good


def assert_bad_failed(results: dict[str, PollResult], *expected: str) -> str:
    bad = results["bad"]
    assert bad.status is PollStatus.ERROR, bad
    message = bad.error or ""
    assert any(text in message for text in expected), message
    assert "\n" not in message and len(message) < 400, message  # one line a person can read
    return message


def endless(
    prefix: bytes, total: int, piece: bytes = b"<item>filler</item>" * 3000
) -> Iterator[bytes]:
    """``total`` bytes of a feed-looking body, generated piece by piece."""
    yield prefix
    sent = len(prefix)
    while sent < total:
        chunk = piece[: total - sent]
        yield chunk
        sent += len(chunk)


CHILD = """
import json, resource, sys, time
from aggregator.config import load_config
from aggregator.pipeline import build, update
config = load_config(sys.argv[1])
build(config)  # imports, schema and templates loaded: what remains is the poll itself
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
report = update(config)
seconds = time.monotonic() - started
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
per_mb = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes there, KiB here
results = {r.feed_name: [r.status.value, r.new, r.error] for r in report.results}
print(json.dumps({"seconds": seconds, "grown_mb": grown / per_mb, "results": results}))
"""


def run_in_child(config: Config, timeout: float) -> dict[str, object]:
    """``update`` in a fresh interpreter: its peak-RSS growth (MB), time and results."""
    path = config.output.dir.parent / "feeds.yaml"
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"update did not finish within {timeout:g}s")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------- XML attacks


def billion_laughs() -> str:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]><rss version="2.0"><channel>'
        "<title>Laughs &lol9;</title><link>https://bad.example/</link><description>d</description>"
        "<skipHours><hour>&lol9;</hour></skipHours>"
        '<item><guid isPermaLink="false">l1</guid><title>Haha &lol9;</title>'
        "<description>&lol9;</description></item></channel></rss>"
    )


def quadratic_blowup() -> str:
    """One 50 KB entity referenced 100,000 times: 5 GB if expanded (no nesting needed)."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{"a" * 50_000}">]><rss version="2.0">'
        "<channel><title>Q</title><link>https://bad.example/</link><description>d</description>"
        '<item><guid isPermaLink="false">q1</guid><title>Quadratic</title>'
        f"<description>{'&a;' * 100_000}</description></item></channel></rss>"
    )


def external_entities(secret_file: Path, probe_url: str) -> str:
    return (
        '<?xml version="1.0"?><!DOCTYPE rss ['
        f'<!ENTITY file SYSTEM "{secret_file.as_uri()}">'
        f'<!ENTITY net SYSTEM "{probe_url}">'
        f'<!ENTITY % param SYSTEM "{probe_url}?param"> %param;'
        ']><rss version="2.0"><channel><title>XXE</title><link>https://bad.example/</link>'
        "<description>d</description>"
        '<item><guid isPermaLink="false">x1</guid><title>Leak &file; &net;</title>'
        "<link>https://bad.example/x1</link><description>&file;&net;</description></item>"
        "</channel></rss>"
    )


@pytest.mark.parametrize("kind", ["billion-laughs", "quadratic-blowup", "external-entities"])
def test_entity_attacks_finish_fast_and_expand_nothing(
    feed_server: FeedServer, tmp_path: Path, kind: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-XXE-MARKER root:x:0:0\n", encoding="utf-8")
    probe = feed_server.serve("/xxe-probe", "PROBED-MARKER", content_type="text/plain")
    body = {
        "billion-laughs": billion_laughs,
        "quadratic-blowup": quadratic_blowup,
        "external-entities": lambda: external_entities(secret, probe),
    }[kind]()
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/bad.xml", body))
    results, seconds = run(config)
    assert seconds < 5, seconds  # < 2 s for the parse itself
    assert_good_stored(results)
    assert_outputs_valid(config)
    # Whatever was kept of the hostile feed, nothing was expanded or fetched.
    assert feed_server.hits("/xxe-probe") == [] and len(feed_server.hits("/xxe-probe?param")) == 0
    for name in ("atom.xml", "rss.xml", "feed.json", "index.html"):
        text = (config.output.dir / name).read_text(encoding="utf-8")
        assert "TOPSECRET-XXE-MARKER" not in text and "PROBED-MARKER" not in text
        assert "lollollol" not in text and "a" * 100_000 not in text
    stored = rows(config, "SELECT coalesce(max(length(content)), 0) FROM entries")[0][0]
    assert isinstance(stored, int) and stored < CAP
    assert not rows(config, "SELECT 1 FROM entries WHERE content LIKE '%TOPSECRET%'")


# ---------------------------------------------------------------- size


@functools.cache
def gzip_bomb() -> bytes:
    """~200 KB of gzip that inflates to 200 MB (a static file, served with Content-Length)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(b'<?xml version="1.0"?><rss version="2.0"><channel>')]
    block = b" " * MB
    parts += [compressor.compress(block) for _ in range(200)]
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip"])
def test_gzip_bomb_is_refused_by_the_streaming_cap_in_bounded_memory(
    feed_server: FeedServer, tmp_path: Path, encoding: str
) -> None:
    bomb = gzip_bomb()
    if encoding == "gzip, gzip":  # a bomb inside a bomb: a few KB on the wire
        bomb = gzip.compress(bomb)
    assert len(bomb) < MB
    url = feed_server.serve("/bomb.xml", bomb, headers={"Content-Encoding": encoding})
    config = hostile_config(tmp_path, feed_server, url)
    child = run_in_child(config, timeout=30)
    status, new, error = child["results"]["good"]  # type: ignore[index]
    assert (status, new) == ("updated", 1)
    status, _, error = child["results"]["bad"]  # type: ignore[index]
    assert status == "error" and "body too large: more than 10,485,760 bytes" in error
    assert child["grown_mb"] < 80, child  # far below the 200 MB it inflates to
    assert child["seconds"] < 10, child
    assert_outputs_valid(config)


def test_endless_gzip_stream_is_capped(feed_server: FeedServer, tmp_path: Path) -> None:
    """A chunked gzip stream of 1 GB of spaces, compressed on the fly, without a length."""
    url = feed_server.serve(
        "/bomb.xml",
        stream=lambda: endless(b"<rss>", 1024 * MB, b" " * MB),
        gzip=True,
        chunked=True,
    )
    config = hostile_config(tmp_path, feed_server, url)
    results, seconds = run(config)
    assert_good_stored(results)
    assert_bad_failed(results, "body too large: more than 10,485,760 bytes")
    assert seconds < 10
    assert wait_until(lambda: feed_server.hits("/bomb.xml")[0].finished)
    assert feed_server.hits("/bomb.xml")[0].sent < 2 * MB  # compressed bytes on the wire
    assert_outputs_valid(config)


@pytest.mark.parametrize(
    ("framing", "expected"),
    [
        ({"content_length": 200 * MB}, "body too large: Content-Length 209,715,200 bytes"),
        ({"chunked": True}, "body too large: more than 10,485,760 bytes"),
        ({}, "body too large: more than 10,485,760 bytes"),  # no length: until the close
    ],
    ids=["content-length", "chunked", "close-delimited"],
)
def test_200_mb_body_is_refused_without_reading_it_all(
    feed_server: FeedServer, tmp_path: Path, framing: dict[str, object], expected: str
) -> None:
    prefix = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>'
    url = feed_server.serve(
        "/huge.xml",
        stream=lambda: endless(prefix, 200 * MB),
        **framing,  # type: ignore[arg-type]
    )
    config = hostile_config(tmp_path, feed_server, url)
    results, seconds = run(config)
    assert_good_stored(results)
    assert_bad_failed(results, expected)
    assert seconds < 10, seconds
    # The server saw the client hang up long before the end: the read stayed bounded.
    assert wait_until(lambda: feed_server.hits("/huge.xml")[0].finished, timeout=10)
    seen = feed_server.hits("/huge.xml")[0]
    assert seen.aborted and seen.sent < 64 * MB, (seen.aborted, seen.sent)
    assert_outputs_valid(config)


def test_200_mb_chunked_body_keeps_the_process_memory_bounded(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    prefix = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>'
    url = feed_server.serve("/huge.xml", stream=lambda: endless(prefix, 200 * MB), chunked=True)
    config = hostile_config(tmp_path, feed_server, url)
    child = run_in_child(config, timeout=30)
    assert child["results"]["good"][:2] == ["updated", 1]  # type: ignore[index]
    assert "body too large" in child["results"]["bad"][2]  # type: ignore[index]
    assert child["grown_mb"] < 80, child  # the cap is 10 MB; 200 MB never arrived


# ---------------------------------------------------------------- time


def test_body_trickled_a_byte_a_second_hits_the_whole_response_deadline(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/slow.xml", GOOD.replace("Good", "Slow"), trickle=1.0)
    config = hostile_config(tmp_path, feed_server, url)
    results, seconds = run(config)
    assert_good_stored(results)
    assert_bad_failed(results, "timed out: the whole response took longer than 4s")
    assert seconds < DEADLINE + 2, seconds
    assert_outputs_valid(config)


def test_headers_trickled_a_byte_a_second_hit_the_whole_response_deadline(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The read timeout (2 s) never fires on a byte a second; only the deadline stops it."""

    def slow_headers() -> Iterator[bytes]:
        yield b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nX-Slow: "
        for _ in range(600):
            if feed_server.pause(1.0):
                return
            yield b"z"

    config = hostile_config(tmp_path, feed_server, feed_server.serve("/slow", raw=slow_headers))
    results, seconds = run(config)
    assert_good_stored(results)
    assert_bad_failed(results, "timed out: the whole response took longer than 4s")
    assert seconds < DEADLINE + 2, seconds
    assert_outputs_valid(config)


def test_server_that_accepts_and_never_answers_hits_the_read_timeout(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/hang", hang=True))
    results, seconds = run(config)
    assert_good_stored(results)
    assert_bad_failed(results, "timed out: no answer from 127.0.0.1 within 2s")
    assert seconds < DEADLINE, seconds
    assert_outputs_valid(config)


# ---------------------------------------------------------------- redirects


def test_redirect_loop_stops_as_soon_as_it_comes_back(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.serve("/a", status=302, location="/b")
    feed_server.serve("/b", status=301, location=feed_server.url("/c"))
    feed_server.serve("/c", status=307, location="/a")
    config = hostile_config(tmp_path, feed_server, feed_server.url("/a"))
    results, seconds = run(config)
    assert_good_stored(results)
    message = assert_bad_failed(results, "too many redirects")
    assert "loop" in message and message.endswith("/a)"), message
    assert [len(feed_server.hits(p)) for p in ("/a", "/b", "/c")] == [1, 1, 1]
    assert seconds < 3
    assert_outputs_valid(config)


def test_30_hop_redirect_chain_is_cut_after_10_hops(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.serve("/hop30", GOOD)
    for hop in range(30):
        feed_server.serve(f"/hop{hop}", status=301, location=f"/hop{hop + 1}")
    config = hostile_config(tmp_path, feed_server, feed_server.url("/hop0"))
    results, _ = run(config)
    assert_good_stored(results)
    assert_bad_failed(results, "too many redirects (more than 10")
    hops = [r.path for r in feed_server.requests if r.path.startswith("/hop")]
    assert hops == [f"/hop{n}" for n in range(11)]  # 10 redirects followed, then stop
    assert_outputs_valid(config)


def test_10_hop_redirect_chain_is_still_followed(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.serve("/hop10", rss(item("r1", "Far away", "https://far.example/1")))
    for hop in range(10):
        feed_server.serve(f"/hop{hop}", status=308, location=f"/hop{hop + 1}")
    config = hostile_config(tmp_path, feed_server, feed_server.url("/hop0"))
    results, _ = run(config)
    assert results["bad"].status is PollStatus.UPDATED and results["bad"].new == 1
    assert results["bad"].url == feed_server.url("/hop10")
    assert "Far away" in assert_outputs_valid(config)


def test_redirect_with_an_endless_body_is_followed_without_reading_it(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    final = feed_server.serve("/final.xml", rss(item("e1", "Arrived", "https://far.example/e")))
    url = feed_server.serve(
        "/moved",
        status=302,
        location=final,
        stream=lambda: endless(b"<html>", 1024 * MB),
        chunked=True,
    )
    config = hostile_config(tmp_path, feed_server, url)
    results, seconds = run(config)
    assert results["bad"].status is PollStatus.UPDATED and results["bad"].new == 1
    assert seconds < 3
    assert wait_until(lambda: feed_server.hits("/moved")[0].finished)
    assert feed_server.hits("/moved")[0].sent < 64 * MB
    assert "Arrived" in assert_outputs_valid(config)


@pytest.mark.parametrize(
    "target",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/feed.xml",
        "gopher://127.0.0.1:70/1",
        "javascript:alert(1)",
        "data:application/rss+xml,<rss/>",
    ],
)
def test_redirect_to_a_non_http_scheme_is_not_followed(
    feed_server: FeedServer, tmp_path: Path, target: str
) -> None:
    url = feed_server.serve("/moved", status=301, location=target)
    config = hostile_config(tmp_path, feed_server, url)
    results, _ = run(config)
    assert_good_stored(results)
    message = assert_bad_failed(results, "refused to follow a redirect to a non-HTTP URL")
    assert target.split(":")[0] in message
    assert rows(config, "SELECT url FROM feeds WHERE name = 'bad'") == [(url,)]  # not moved
    assert not rows(config, "SELECT 1 FROM entries WHERE content LIKE '%root:%'")
    assert_outputs_valid(config)


# ---------------------------------------------------------------- malformed HTTP


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (
            {"headers": {f"X-Header-{n}": "v" for n in range(5000)}},
            "sent too many response headers",
        ),
        ({"headers": {"X-Huge": "h" * 200_000}}, "sent a line that is too long"),
        (
            {"raw": b"HTTP/1.1 200 OK\r\nX-Endless: " + b"e" * (8 * MB)},
            "sent a line that is too long",
        ),
        (
            {
                "body": b"\x1f\x8b\x08\x00garbage, not gzip" * 50,
                "gzip": False,
                "headers": {"Content-Encoding": "gzip"},
            },
            "corrupt gzip body",
        ),
        (
            {
                "body": b"this is not deflate at all" * 10,
                "headers": {"Content-Encoding": "deflate"},
            },
            "corrupt deflate body",
        ),
        ({"body": GOOD[:100], "content_length": 100_000}, "connection closed early"),
        (
            {"raw": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n<rss>"},
            "connection closed early",
        ),
        (
            {"raw": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * (4 * MB)},
            "sent a line that is too long",
        ),
        (
            {"raw": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n<rss>\r\n"},
            "broken chunked encoding",
        ),
        ({"raw": b"SSH-2.0-OpenSSH_9.6\r\n"}, "not an HTTP response"),
        ({"raw": b""}, "connection closed by 127.0.0.1 without a response"),
        ({"body": b""}, "not a feed: empty body"),
    ],
    ids=[
        "5000-headers",
        "200-KB-header-line",
        "endless-header-line",
        "corrupt-gzip",
        "corrupt-deflate",
        "content-length-beyond-body",
        "chunked-early-close",
        "endless-chunk-size-line",
        "bad-chunk-size",
        "not-http",
        "closed-without-answer",
        "empty-200",
    ],
)
def test_malformed_http_answers_are_clear_errors(
    feed_server: FeedServer, tmp_path: Path, route: dict[str, object], expected: str | None
) -> None:
    url = feed_server.serve("/broken", **route)  # type: ignore[arg-type]
    config = hostile_config(tmp_path, feed_server, url)
    results, seconds = run(config)
    assert_good_stored(results)
    if expected is None:
        assert results["bad"].status is PollStatus.ERROR  # 100 bytes of a document: no feed
    else:
        assert_bad_failed(results, expected)
    assert seconds < DEADLINE, seconds
    assert_outputs_valid(config)


# ---------------------------------------------------------------- content


def test_body_that_turns_into_html_halfway(feed_server: FeedServer, tmp_path: Path) -> None:
    body = rss(
        item("h1", "Before the switch", "https://bad.example/1")
        + item("h2", "Still a feed", "https://bad.example/2")
    ).split("</channel>")[0] + (
        "<!DOCTYPE html><html><head><title>Error 502</title><script>alert(1)</script></head>"
        "<body><h1>Bad gateway</h1><p>nginx</p><img src=x onerror=alert(2)></body></html>"
    )
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/half.xml", body))
    results, seconds = run(config)
    assert_good_stored(results)
    bad = results["bad"]
    # Stored what is readable, with the warning saying why it is not well formed.
    assert bad.status is PollStatus.UPDATED and bad.new >= 2, bad
    assert bad.error, "a warning says the document is not well formed"
    titles = assert_outputs_valid(config)
    assert {"Before the switch", "Still a feed"} <= set(titles)
    for name in ("atom.xml", "rss.xml", "feed.json", "index.html"):
        text = (config.output.dir / name).read_text(encoding="utf-8").lower()
        assert "alert(" not in text and "onerror" not in text, name
    assert seconds < 3


def test_invalid_utf8_and_control_characters_are_stored_cleaned(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        b"<title>Broken \xff\xfe bytes</title><link>https://bad.example/</link>"
        b"<description>d</description>"
        b'<item><guid isPermaLink="false">u1</guid>'
        b"<title>Caf\xe9 \xc3\x28 bell\x07 escape\x1b[31m null\x00 vt\x0b ff\x0c end</title>"
        b"<link>https://bad.example/u1</link>"
        b"<description>&lt;p&gt;ctl\x01\x02\x03 &amp;#1; &amp;#x1b; \xed\xa0\x80 lone surrogate"
        b" \xef\xbf\xbe nonchar&lt;/p&gt;</description></item>"
        b'<item><guid isPermaLink="false">u2</guid><title>Char refs &#1;&#x1F;&#xFFFE; ok</title>'
        b"<link>https://bad.example/u2</link></item>"
        b"</channel></rss>"
    )
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/bytes.xml", body))
    results, _ = run(config)
    assert_good_stored(results)
    bad = results["bad"]
    assert bad.status is PollStatus.UPDATED and bad.new == 2, bad
    for title, summary, content in rows(
        config, "SELECT title, summary, content FROM entries WHERE link LIKE 'https://bad%'"
    ):
        for text in (title, summary, content):
            assert not ILLEGAL_XML_CHARS.search(str(text or "")), repr(text)
            assert not re.search("[\ud800-\udfff]", str(text or "")), repr(text)
    titles = assert_outputs_valid(config)
    assert any(t.startswith("Caf") and t.endswith("end") for t in titles), titles


def test_one_entry_of_5_mb_is_cut_to_256_kb_with_a_warning(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Decision (issue 13): an entry keeps 256 KB of text at most; the feed says it was cut."""
    paragraph = "&lt;p&gt;" + "word " * 200 + "&lt;/p&gt;\n"
    big = item("big1", "A very long read", "https://bad.example/long", body=paragraph * 5400)
    body = rss(big)
    assert 5_000_000 < len(body) < CAP
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/long.xml", body))
    results, seconds = run(config)
    assert_good_stored(results)
    assert results["bad"].status is PollStatus.UPDATED and results["bad"].new == 1
    assert "cut to the size limits" in (results["bad"].error or "")
    ((length,),) = rows(config, "SELECT length(summary) FROM entries WHERE title LIKE 'A very%'")
    assert isinstance(length, int) and 200_000 < length <= 300_000
    assert rows(
        config, "SELECT warning LIKE '%cut to the size limits%' FROM feeds WHERE name = 'bad'"
    )[0] == (1,)
    assert "A very long read" in assert_outputs_valid(config)
    assert seconds < 15, seconds


def refused_beside_a_good_feed(
    feed_server: FeedServer, tmp_path: Path, body: str, reason: str
) -> Config:
    """Poll the hostile body beside a good feed in a child process: the good feed is stored,
    the hostile one fails saying `reason`, and the child's memory stays bounded."""
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/bad.xml", body))
    child = run_in_child(config, timeout=20)
    assert child["results"]["good"][:2] == ["updated", 1]  # type: ignore[index]
    status, _, error = child["results"]["bad"]  # type: ignore[index]
    assert status == "error" and reason in error, error
    assert child["grown_mb"] < 100, child
    return config


def test_a_one_level_entity_expanding_the_body_100_fold_is_refused(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 13 #1: one 290-character entity referenced 3 million times (9 MB) is under expat's
    amplification limit, and made an 870 MB summary that every later build rendered."""
    body = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + "A" * 290 + '">\n]>\n'
        '<rss version="2.0"><channel><title>t</title><link>https://bad.example/</link>'
        '<item><guid isPermaLink="false">e1</guid><title>Entity</title>'
        "<description>" + "&a;" * 3_000_000 + "</description></item></channel></rss>"
    )
    config = refused_beside_a_good_feed(feed_server, tmp_path, body, "entity declarations")
    assert rows(config, "SELECT coalesce(max(length(summary)), 0) FROM entries")[0][0] < MB
    assert_outputs_valid(config)


def test_entities_that_expand_into_a_million_items_are_refused(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 13 #4: an entity whose value is an <item>, referenced a million times."""
    body = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
        '<!ENTITY e "<item><title>x</title><guid>g</guid></item>">\n]>\n'
        '<rss version="2.0"><channel><title>t</title>' + "&e;" * 1_000_000 + "</channel></rss>"
    )
    config = refused_beside_a_good_feed(feed_server, tmp_path, body, "entity declarations")
    assert rows(config, "SELECT count(*) FROM entries")[0][0] == 1


def test_upper_case_items_count_toward_the_entry_cap(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 13 #4: feedparser lowercases tag names; the cap counted <item> only."""
    body = rss("".join(f"<ITEM><GUID>u{n}</GUID></ITEM>" for n in range(20_000)))
    config = refused_beside_a_good_feed(feed_server, tmp_path, body, "too many entries")
    assert rows(config, "SELECT count(*) FROM entries")[0][0] == 1


@pytest.mark.parametrize("kind", ["json", "rss-cdata", "amp"])
def test_pathological_html_is_sanitized_in_bounded_time(
    feed_server: FeedServer, tmp_path: Path, kind: str
) -> None:
    """Issue 13 #2: 200,000 nested <div>s (1 MB) cost the sanitizer 200 s a poll, and
    "&amp;" x 1.8M 33 s; each field is now cut at 256 KB and 1,000 levels before it."""
    divs = "<div>" * 200_000
    if kind == "json":
        doc = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Deep",
            "items": [{"id": "d1", "title": "Deep", "content_html": divs + "deep text"}],
        }
        path = feed_server.serve("/bad.json", json.dumps(doc), content_type="application/feed+json")
    elif kind == "rss-cdata":
        path = feed_server.serve(
            "/bad.xml", rss(item("d1", "Deep", body=f"<![CDATA[<p>intro</p>{divs}]]>"))
        )
    else:
        path = feed_server.serve("/bad.xml", rss(item("d1", "Deep", body="&amp;" * 1_800_000)))
    config = hostile_config(tmp_path, feed_server, path)
    child = run_in_child(config, timeout=20)
    assert child["results"]["good"][:2] == ["updated", 1]  # type: ignore[index]
    status, _, warning = child["results"]["bad"]  # type: ignore[index]
    assert status == "updated" and "cut to the size limits" in warning, child
    assert child["seconds"] < 8, child
    stored = rows(
        config, "SELECT coalesce(max(length(coalesce(content, summary))), 0) FROM entries"
    )
    assert stored[0][0] <= 2 * 256 * 1024
    assert_outputs_valid(config)


def test_a_title_of_100_kb_is_cut_to_2_kb(feed_server: FeedServer, tmp_path: Path) -> None:
    title = "Headline " + "word " * 20_000
    config = hostile_config(
        tmp_path, feed_server, feed_server.serve("/bad.xml", rss(item("t1", title)))
    )
    results, _ = run(config)
    assert results["bad"].status is PollStatus.UPDATED
    ((stored,),) = rows(config, "SELECT title FROM entries WHERE title LIKE 'Headline%'")
    assert isinstance(stored, str) and len(stored) <= 2_000 and stored.endswith("…")
    assert_outputs_valid(config)


def many_entries(count: int, title: str, *, compact: bool = False) -> bytes:
    """An RSS document of ``count`` entries; compact ones are ~50 bytes each."""
    if compact:
        items = "".join(
            f"<item><guid>m{n}</guid><title>{title.format(n=n)}</title></item>"
            for n in range(count)
        )
        return rss(items).encode()
    items = "".join(
        f'<item><guid isPermaLink="false">m{n}</guid><title>{title.format(n=n)}</title>'
        f"<link>https://bad.example/{n}</link>"
        f"<pubDate>Wed, 25 Nov 2026 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d} GMT"
        "</pubDate></item>"
        for n in range(count)
    )
    return rss(items).encode()


def test_feed_of_100k_entries_is_refused_quickly(feed_server: FeedServer, tmp_path: Path) -> None:
    body = many_entries(100_000, "Item {n}", compact=True)
    assert 4 * MB < len(body) < 6 * MB
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/many.xml", body))
    child = run_in_child(config, timeout=10)
    assert child["results"]["good"][:2] == ["updated", 1]  # type: ignore[index]
    status, _, error = child["results"]["bad"]  # type: ignore[index]
    assert status == "error" and "too many entries" in error, error
    assert child["grown_mb"] < 200, child
    assert_outputs_valid(config)


def test_3000_look_alike_entries_are_stored_in_bounded_time(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    body = many_entries(3_000, "Breaking update number {n} on the ongoing story")
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/many.xml", body))
    child = run_in_child(config, timeout=10)
    assert child["results"]["bad"][:2] == ["updated", 3_000]  # type: ignore[index]
    assert child["results"]["good"][:2] == ["updated", 1]  # type: ignore[index]
    assert child["seconds"] < 6, child


def test_dates_in_1900_and_2999(feed_server: FeedServer, tmp_path: Path) -> None:
    """1900 is kept as given; a future date is clamped to the fetch time and flagged; a date
    that cannot be represented (year 0, past 9999 in UTC) becomes the first-seen time."""
    dates = {
        "From 1900": "Mon, 01 Jan 1900 00:00:00 GMT",
        "From 2999": "Tue, 01 Jan 2999 00:00:00 GMT",
        "Year 9999": "9999-12-31T00:00:00Z",
        "Past 9999 in UTC": "9999-12-31T23:59:59-12:00",
        "Year zero": "0000-01-01T00:00:00Z",
    }
    body = rss(
        "".join(
            item(f"d{n}", title, f"https://bad.example/{n}", date=date)
            for n, (title, date) in enumerate(dates.items())
        )
    )
    config = hostile_config(tmp_path, feed_server, feed_server.serve("/dates.xml", body))
    before = datetime.now(UTC).replace(microsecond=0)
    results, _ = run(config)
    after = datetime.now(UTC)
    assert_good_stored(results)
    assert results["bad"].status is PollStatus.UPDATED and results["bad"].new == len(dates)
    stored = {
        str(title): (datetime.fromisoformat(str(published)), clamped)
        for title, published, clamped in rows(
            config, "SELECT title, published, date_clamped FROM entries"
        )
    }
    assert stored["From 1900"] == (datetime(1900, 1, 1, tzinfo=UTC), 0)
    for future in ("From 2999", "Year 9999"):
        published, clamped = stored[future]
        assert before <= published <= after and clamped == 1, (future, published, clamped)
    for unusable in ("Past 9999 in UTC", "Year zero"):
        published, _ = stored[unusable]
        assert before <= published <= after, (unusable, published)
    titles = assert_outputs_valid(config)
    assert set(dates) <= set(titles)


def slow_to_parse(elements: int = 600_000) -> str:
    """What feedparser takes ~1 s per 120,000 unknown elements to read (600,000: 7 MB, ~5 s)."""
    return rss(
        '<item><guid isPermaLink="false">s1</guid><title>Slow</title>'
        + "<foo>1</foo>" * elements
        + "</item>"
    )


def test_a_parse_past_its_budget_is_abandoned_and_the_others_carry_on(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 13 #2: the worker parsing it is killed and replaced; the feed gets a clear error;
    the 15 healthy feeds polled beside it (enough for parse processes) are all stored."""
    slow = feed_server.serve("/slow.xml", slow_to_parse())
    feeds = f"  - url: {slow}\n    name: slow\n"
    for n in range(15):
        body = GOOD if n == 0 else rss(item(f"k{n}", f"Healthy {n}", f"https://k/{n}"))
        url = feed_server.serve(f"/ok{n}.xml", body)
        feeds += f"  - url: {url}\n    name: ok{n}\n"
    config = load_config(write_config(tmp_path, feeds, "  parse_timeout: 1s\n"))
    results, seconds = run(config)
    assert results["slow"].status is PollStatus.ERROR
    assert "took longer than 1 s to parse" in (results["slow"].error or "")
    assert all(results[f"ok{n}"].status is PollStatus.UPDATED for n in range(15)), results
    assert seconds < 4.5, seconds  # not the ~5 s the parse would have taken, plus the rest
    assert rows(config, "SELECT last_result FROM feeds WHERE name = 'slow'") == [("error",)]
    assert_outputs_valid(config)


def test_sigterm_while_a_worker_parses_a_pathological_feed_exits_promptly(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 13 #3: stopping `run` must kill a busy parse worker, not wait for it."""
    slow = feed_server.serve("/slow.xml", slow_to_parse(2_400_000))  # 29 MB, ~20 s to parse
    config_path = write_config(
        tmp_path,
        f"  - url: {slow}\n    name: slow\n",
        "  parse_timeout: 60s\n  max_body_size: 40MB\n",
    )
    log = tmp_path / "run.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), "run"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        stdin=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: len(feed_server.hits("/slow.xml")) >= 1, 20), log.read_text()
        time.sleep(1.0)  # the body is in a worker, being parsed
        stopped_at = time.monotonic()
        process.send_signal(15)  # SIGTERM
        assert process.wait(timeout=10) == 0, log.read_text()
        assert time.monotonic() - stopped_at < 10
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_redirect_to_an_internal_address_is_refused(
    feed_server: FeedServer, tmp_path: Path, host: str
) -> None:
    """Issue 13 #5: a feed answering 301 to an internal address published the internal
    document and moved the feed there for good. The address connected to is what counts
    (`localhost` is refused as 127.0.0.1 is), and the request is never sent."""
    internal_path = "/internal-feed.xml"
    feed_server.serve(internal_path, rss(item("i1", "INTERNAL-SECRET", "https://intranet/1")))
    internal = feed_server.url(internal_path).replace("127.0.0.1", host)
    remote = feed_server.serve("/remote.xml", status=301, location=internal)
    config = hostile_config(tmp_path, feed_server, remote)
    text = (config.output.dir.parent / "feeds.yaml").read_text()
    (config.output.dir.parent / "feeds.yaml").write_text(
        text.replace("  allow_private_addresses: true\n", "")
    )
    config = load_config(config.output.dir.parent / "feeds.yaml")
    assert config.defaults.allow_private_addresses is False
    results, _ = run(config)
    assert_good_stored(results)  # its own URL is on loopback: configured URLs are trusted
    message = assert_bad_failed(results, "an internal address")
    assert "allow_private_addresses" in message
    assert feed_server.hits(internal_path) == []
    assert rows(config, "SELECT url FROM feeds WHERE name = 'bad'") == [(remote,)]
    for name in ("atom.xml", "rss.xml", "feed.json", "index.html"):
        assert "INTERNAL-SECRET" not in (config.output.dir / name).read_text(encoding="utf-8")
    assert_outputs_valid(config)


def test_is_private_address() -> None:
    from aggregator.urls import is_private_address

    for internal in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",
        "::1",
        "fd00::1",  # ULA
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
    ):
        assert is_private_address(internal), internal
    for public in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "not an address"):
        assert not is_private_address(public), public
