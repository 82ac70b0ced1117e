"""The whole pipeline on the wire and on disk: loopback feeds in, SQLite and merged feeds out."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs

import feedparser
import pytest
from conftest import DATA, FeedServer, item, rss, write_config
from lxml import etree

from aggregator.config import load_config
from aggregator.errors import ConfigError, StorageError
from aggregator.pipeline import build, update
from aggregator.types import Config, PollStatus


def config_for(tmp_path: Path, *urls: str, extra: str = "") -> Config:
    feeds = "".join(f"  - url: {u}\n    name: f{i}\n" for i, u in enumerate(urls))
    return load_config(write_config(tmp_path, feeds, extra))


def rows(config: Config, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(config.database) as conn:
        return conn.execute(sql, params).fetchall()


def atom_entries(config: Config) -> list[feedparser.FeedParserDict]:
    parsed = feedparser.parse((config.output.dir / "atom.xml").read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed.entries


def test_first_poll_stores_and_writes_valid_outputs(
    feed_server: FeedServer, tmp_path: Path, atom_schema: etree.RelaxNG
) -> None:
    url = feed_server.serve(
        "/a.xml",
        rss(
            item("a1", "First story", "https://a.example/1")
            + item("a2", "Second", "https://a.example/2", date="Tue, 24 Nov 2026 09:00:00 GMT")
        ),
    )
    config = config_for(tmp_path, url)
    report = update(config)
    assert [(r.status, r.new) for r in report.results] == [(PollStatus.UPDATED, 2)]
    assert rows(config, "SELECT count(*) FROM entries") == [(2,)]
    assert {p.name for p in report.written} == {"atom.xml", "rss.xml", "feed.json", "index.html"}
    assert [e.title for e in atom_entries(config)] == ["First story", "Second"]
    assert atom_schema.validate(etree.parse(str(config.output.dir / "atom.xml"))), (
        atom_schema.error_log
    )
    rss_out = feedparser.parse((config.output.dir / "rss.xml").read_bytes())
    assert rss_out.bozo == 0 and len(rss_out.entries) == 2
    feed_json = json.loads((config.output.dir / "feed.json").read_text(encoding="utf-8"))
    assert [i["title"] for i in feed_json["items"]] == ["First story", "Second"]
    assert feed_json["items"][0]["_source"]["title"] == "Test feed"


def test_second_poll_is_conditional_and_changes_nothing(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve(
        "/a.xml",
        rss(item("a1", "One", "https://a.example/1")),
        etag='"v1"',
        last_modified="Wed, 25 Nov 2026 08:00:00 GMT",
    )
    config = config_for(tmp_path, url)
    update(config)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in config.output.dir.iterdir()}
    report = update(config)
    assert report.results[0].status is PollStatus.NOT_MODIFIED
    second = feed_server.hits("/a.xml")[1]
    assert second.headers["If-None-Match"] == '"v1"'
    assert second.headers["If-Modified-Since"] == "Wed, 25 Nov 2026 08:00:00 GMT"
    assert report.written == ()
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in config.output.dir.iterdir()}
    assert after == before
    assert rows(config, "SELECT last_status, last_result FROM feeds") == [(304, "not-modified")]


def test_new_validators_replace_old_ones_even_for_the_same_body(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    body = rss(item("a1", "One", "https://a.example/1"))
    url = feed_server.serve("/a.xml", body, etag='"v1"')
    config = config_for(tmp_path, url)
    update(config)
    feed_server.serve("/a.xml", body, etag='"v2"')  # `touch feed.xml`: same bytes, new ETag
    update(config)
    update(config)
    sent = [r.headers.get("If-None-Match") for r in feed_server.hits("/a.xml")]
    assert sent == [None, '"v1"', '"v2"']


def test_changed_entry_is_updated_in_place(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "Draft title", "https://a.example/1")))
    config = config_for(tmp_path, url)
    update(config)
    feed_server.serve("/a.xml", rss(item("a1", "Final title", "https://a.example/1")))
    report = update(config)
    assert (report.results[0].new, report.results[0].updated) == (0, 1)
    assert rows(config, "SELECT title FROM entries") == [("Final title",)]
    assert [e.title for e in atom_entries(config)] == ["Final title"]
    again = update(config)
    assert (again.results[0].new, again.results[0].updated) == (0, 0)


def test_duplicate_ids_inside_one_document(feed_server: FeedServer, tmp_path: Path) -> None:
    items = (
        item("dup", "Story one", "https://a.example/1")
        + item("dup", "Story two", "https://a.example/2")
        + item("dup", "Story one", "https://a.example/1")
    )
    config = config_for(tmp_path, feed_server.serve("/a.xml", rss(items)))
    update(config)
    assert sorted(rows(config, "SELECT title FROM entries")) == [("Story one",), ("Story two",)]
    update(config)  # the same document again adds nothing
    assert rows(config, "SELECT count(*) FROM sources") == [(2,)]


def test_same_url_across_feeds_is_one_entry_with_two_sources(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    a = feed_server.serve(
        "/a.xml",
        rss(item("a1", "Wire story", "https://news.example/s?id=5&utm_source=a"), title="A"),
    )
    b = feed_server.serve(
        "/b.xml",
        rss(
            item("b9", "Wire story (B)", "https://NEWS.example:443/s?id=5&fbclid=x#top"), title="B"
        ),
    )
    config = config_for(tmp_path, a, b)
    update(config)
    assert rows(config, "SELECT canonical_url FROM entries") == [("https://news.example/s?id=5",)]
    sources = rows(
        config,
        "SELECT f.name, s.source_entry_id, s.link FROM sources s JOIN feeds f ON f.id = s.feed_id "
        "ORDER BY f.name",
    )
    assert sources == [
        ("f0", "a1", "https://news.example/s?id=5&utm_source=a"),
        ("f1", "b9", "https://NEWS.example:443/s?id=5&fbclid=x#top"),
    ]
    assert len(atom_entries(config)) == 1


def test_relative_links_become_absolute(feed_server: FeedServer, tmp_path: Path) -> None:
    body = rss(
        '<item><guid isPermaLink="false">r1</guid><title>Rel</title><link>/news/r1</link>'
        '<description>&lt;a href="../x"&gt;x&lt;/a&gt; &lt;img src="p.png"&gt;</description>'
        "</item>",
        link="https://site.example/section/",
    )
    config = config_for(tmp_path, feed_server.serve("/feeds/a.xml", body))
    update(config)
    (entry,) = atom_entries(config)
    assert entry.link.startswith(feed_server.base + "/news/r1")
    for ref in etree.HTML(entry.summary).xpath("//@href | //@src"):
        assert ref.startswith(("http://", "https://")), ref


def test_missing_dates_fall_back_to_first_seen(feed_server: FeedServer, tmp_path: Path) -> None:
    config = config_for(
        tmp_path,
        feed_server.serve("/a.xml", rss(item("n1", "Undated", "https://a.example/n", date=""))),
    )
    update(config)
    ((published, first_seen),) = rows(config, "SELECT published, first_seen FROM entries")
    assert published == first_seen
    update(config)  # re-polled later: the date does not move, nothing is "updated"
    assert rows(config, "SELECT published FROM entries") == [(published,)]


def test_latin1_charset_only_in_http_header(feed_server: FeedServer, tmp_path: Path) -> None:
    body = rss(item("l1", "Caf\u00e9 cr\u00e8me", "https://a.example/l")).replace(
        ' encoding="utf-8"', ""
    )
    url = feed_server.serve(
        "/latin.xml", body.encode("latin-1"), content_type="text/xml; charset=iso-8859-1"
    )
    config = config_for(tmp_path, url)
    update(config)
    assert rows(config, "SELECT title FROM entries") == [("Caf\u00e9 cr\u00e8me",)]


def test_json_feed(feed_server: FeedServer, tmp_path: Path) -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "J",
            "items": [
                {
                    "id": "j1",
                    "url": "https://j.example/1",
                    "title": "From JSON",
                    "content_text": "Plain <text>",
                    "date_published": "2026-11-24T10:00:00Z",
                }
            ],
        }
    )
    config = config_for(
        tmp_path, feed_server.serve("/f.json", body, content_type="application/feed+json")
    )
    update(config)
    (entry,) = atom_entries(config)
    assert entry.title == "From JSON" and "Plain &lt;text&gt;" in entry.content[0].value


def test_broken_but_readable_feed_is_stored_with_a_warning(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    body = rss(item("b1", "Fish & chips", "https://a.example/b"))  # an unescaped &
    config = config_for(tmp_path, feed_server.serve("/b.xml", body))
    report = update(config)
    assert report.results[0].status is PollStatus.UPDATED and report.results[0].new == 1
    assert report.results[0].error  # the warning says why it was not well formed
    assert rows(config, "SELECT title FROM entries") == [("Fish & chips",)]


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ({"status": 500, "body": "boom", "content_type": "text/plain"}, "HTTP 500"),
        ({"status": 404, "body": "gone", "content_type": "text/plain"}, "HTTP 404"),
        (
            {
                "body": "<!DOCTYPE html><html><head><title>Hi</title></head><body><p>Not a feed"
                "</p></body></html>",
                "content_type": "text/html",
            },
            "not a feed",
        ),
        ({"body": "<rss>" + "x" * 3_000_000 + "</rss>"}, "body too large"),
        ({"hang": True}, "timed out"),
    ],
    ids=["500", "404", "html-page", "over-cap", "never-answers"],
)
def test_a_failing_feed_is_reported_and_the_others_carry_on(
    feed_server: FeedServer, tmp_path: Path, route: dict[str, object], expected: str
) -> None:
    good = feed_server.serve("/good.xml", rss(item("g1", "Good", "https://g.example/1")))
    bad = feed_server.url("/bad")
    config = config_for(tmp_path, good, bad, extra="")
    config = load_config(
        write_config(
            tmp_path,
            f"  - url: {good}\n    name: good\n  - url: {bad}\n    name: bad\n",
            "",
        ).parent.joinpath("feeds.yaml")
    )
    text = (
        (tmp_path / "feeds.yaml")
        .read_text()
        .replace("defaults:\n", "defaults:\n  max_body_size: 2MB\n")
    )
    (tmp_path / "feeds.yaml").write_text(text)
    config = load_config(tmp_path / "feeds.yaml")
    feed_server.serve("/bad", **route)  # type: ignore[arg-type]
    report = update(config)
    by_name = {r.feed_name: r for r in report.results}
    assert by_name["good"].status is PollStatus.UPDATED and by_name["good"].new == 1
    assert by_name["bad"].status is PollStatus.ERROR and expected in (by_name["bad"].error or "")
    ((last_error, count),) = rows(
        config, "SELECT last_error, error_count FROM feeds WHERE name = 'bad'"
    )
    assert expected in last_error and count == 1
    assert [e.title for e in atom_entries(config)] == ["Good"]


def test_a_failure_keeps_what_was_stored(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "Kept", "https://a.example/1")), etag='"v1"')
    config = config_for(tmp_path, url)
    update(config)
    feed_server.serve("/a.xml", "down", status=503, content_type="text/plain")
    report = update(config)
    assert report.results[0].status is PollStatus.ERROR
    assert rows(config, "SELECT title FROM entries") == [("Kept",)]
    assert rows(config, "SELECT etag FROM feeds") == [('"v1"',)]
    assert [e.title for e in atom_entries(config)] == ["Kept"]


def test_hostile_html_never_reaches_the_outputs(feed_server: FeedServer, tmp_path: Path) -> None:
    hostile = (DATA / "hostile.html").read_text(encoding="utf-8")
    body = rss(
        '<item><guid isPermaLink="false">h1</guid><title>&lt;script&gt;x&lt;/script&gt;Hi</title>'
        f"<link>https://h.example/1</link><description><![CDATA[{hostile}]]></description></item>"
    )
    config = config_for(tmp_path, feed_server.serve("/h.xml", body))
    update(config)
    for name in ("atom.xml", "rss.xml", "feed.json"):
        text = (config.output.dir / name).read_text(encoding="utf-8").lower()
        for marker in (
            "<script",
            "&lt;script",
            "javascript:",
            "onerror",
            "onload",
            "<iframe",
            "&lt;iframe",
            "data:text",
            "&lt;form",
            "vbscript:",
        ):
            assert marker not in text, (name, marker)
    assert "kept paragraph" in (config.output.dir / "atom.xml").read_text()


def test_crash_mid_write_stores_neither_entries_nor_validators(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve(
        "/a.xml",
        rss(item("a1", "Fine", "https://a.example/1") + item("a2", "boom", "https://a.example/2")),
        etag='"v1"',
    )
    config = config_for(tmp_path, url)
    build(config)  # creates the schema
    with sqlite3.connect(config.database) as conn:  # a real failure inside the transaction
        conn.execute(
            "CREATE TRIGGER explode BEFORE INSERT ON sources WHEN NEW.title = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
    report = update(config)
    assert report.results[0].status is PollStatus.ERROR
    assert "disk on fire" in (report.results[0].error or "")
    assert rows(config, "SELECT count(*) FROM entries") == [(0,)]
    assert rows(config, "SELECT etag FROM feeds") == [(None,)]
    with sqlite3.connect(config.database) as conn:
        conn.execute("DROP TRIGGER explode")
    update(config)  # the next poll is unconditional and stores everything
    assert feed_server.hits("/a.xml")[-1].headers.get("If-None-Match") is None
    assert rows(config, "SELECT count(*) FROM entries") == [(2,)]


def test_rebuild_without_new_data_is_byte_identical(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    config = config_for(
        tmp_path, feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    )
    update(config)
    before = {p.name: p.read_bytes() for p in config.output.dir.iterdir()}
    for output in config.output.dir.iterdir():
        output.unlink()
    assert {p.name for p in build(config)} == set(before)
    assert {p.name: p.read_bytes() for p in config.output.dir.iterdir()} == before
    assert build(config) == []


def test_unusable_database_is_a_storage_error(tmp_path: Path) -> None:
    config = config_for(tmp_path, "https://a.example/rss")
    config.database.parent.mkdir(parents=True)
    config.database.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="cannot open database"):
        build(config)


def test_websub_hub_is_announced_and_pinged_only_on_change(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    hub = feed_server.serve("/hub", status=204)
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    extra_output = f"  base_url: https://news.example.org/\n  websub_hub: {hub}\n"
    path = write_config(tmp_path, f"  - url: {url}\n")
    path.write_text(path.read_text().replace("defaults:\n", extra_output + "defaults:\n", 1))
    config = load_config(path)
    update(config)
    pings = [r for r in feed_server.requests if r.method == "POST"]
    assert len(pings) == 1
    sent = parse_qs(pings[0].body.decode())
    assert sent["hub.mode"] == ["publish"]
    assert set(sent["hub.url"]) == {
        "https://news.example.org/atom.xml",
        "https://news.example.org/rss.xml",
        "https://news.example.org/feed.json",
    }
    atom = etree.parse(str(config.output.dir / "atom.xml"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert atom.xpath("/a:feed/a:link[@rel='hub']/@href", namespaces=ns) == [hub]
    update(config)  # nothing changed: no ping
    assert len([r for r in feed_server.requests if r.method == "POST"]) == 1
    feed_server.serve("/a.xml", rss(item("a2", "Two", "https://a.example/2")))
    update(config)
    assert len([r for r in feed_server.requests if r.method == "POST"]) == 2


def test_websub_without_base_url_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, "  - url: https://a.example/rss\n")
    path.write_text(
        path.read_text().replace(
            "defaults:\n", "  websub_hub: https://hub.example/\ndefaults:\n", 1
        )
    )
    with pytest.raises(ConfigError, match=r"output\.websub_hub: a hub needs output\.base_url"):
        load_config(path)


def test_two_feeds_sharing_an_atom_id_and_entry_ids_are_both_kept(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    def atom(link: str) -> str:
        return (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            "<id>tag:same.example,2026:feed</id><title>Copy</title>"
            "<updated>2026-11-25T09:00:00Z</updated>"
            "<entry><id>tag:same.example,2026:1</id><title>One</title>"
            f'<link href="{link}"/><updated>2026-11-25T09:00:00Z</updated></entry></feed>'
        )

    a = feed_server.serve(
        "/a.atom", atom("https://a.example/1"), content_type="application/atom+xml"
    )
    b = feed_server.serve(
        "/b.atom", atom("https://b.example/1"), content_type="application/atom+xml"
    )
    config = config_for(tmp_path, a, b)
    report = update(config)
    assert [r.status for r in report.results] == [PollStatus.UPDATED, PollStatus.UPDATED]
    uids = [u for (u,) in rows(config, "SELECT uid FROM entries ORDER BY id")]
    assert len(uids) == 2 and len(set(uids)) == 2
    assert rows(config, "SELECT count(DISTINCT source_id) FROM feeds") == [(2,)]
