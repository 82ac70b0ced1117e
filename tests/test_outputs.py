"""Extra merged feeds (`outputs:` in feeds.yaml, issue 16): each selection through the real
command, the files it writes under output/NAME/, the main page's links to them, `serve`,
WebSub, `aggregator outputs`, and the config errors a bad selection gives."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs

import feedparser
import pytest
import requests
from conftest import FeedServer, item, rss, run_validator, serving, write_config
from conftest import run_cli as run
from lxml import etree

from aggregator.config import default_output_id, load_config
from aggregator.errors import ConfigError
from aggregator.pipeline import update
from aggregator.store import open_store
from aggregator.types import Selection

BASE_URL = "https://news.example.org/feeds/"
MAIN_ID = "tag:test.invalid,2026:merged"  # write_config's output.id
FILES = ("atom.xml", "rss.xml", "feed.json", "index.html")

VOLCANO = "Volcano erupts near Reykjavik airport, flights cancelled"
STORM = "Storm floods coastal towns in northern Portugal"
ELECTION = "Election results announced after a long count"
MUSEUM = "Museum reopens after ten years of renovation"
PHONE = "New phone released with a bigger battery"

OUTPUTS = """\
outputs:
  - name: world
    title: World
    tags: [world]
  - name: tech
    title: Tech
    feeds: [beta]
  - name: elections
    title: Elections
    search: election
  - name: big
    title: Big stories
    min_outlets: 3
  - name: week
    title: This week
    since: 7d
  - name: latest
    title: Latest two
    max_entries: 2
  - name: world-shared
    title: World, shared
    tags: [world]
    since: 7d
    min_outlets: 2
"""


def ago(days: float) -> str:
    """An RSS date `days` before now: `since:` is measured from the real clock of the CLI."""
    return format_datetime(datetime.now(UTC) - timedelta(days=days), usegmt=True)


def feeds_of(server: FeedServer) -> str:
    """Three outlets: Alpha (world) and Gamma (world, uk) and Beta (tech). All three tell the
    volcano story, Alpha and Beta the storm, Alpha first each time."""
    alpha = server.serve(
        "/alpha.xml",
        rss(
            item("a1", VOLCANO, "https://alpha.example/volcano", date=ago(1))
            + item("a2", STORM, "https://alpha.example/storm", date=ago(1.5))
            + item("a3", ELECTION, "https://alpha.example/election", date=ago(2))
            + item("a4", MUSEUM, "https://alpha.example/museum", date=ago(30)),
            title="Alpha",
        ),
    )
    beta = server.serve(
        "/beta.xml",
        rss(
            item("b1", VOLCANO, "https://beta.example/volcano", date=ago(0.99))
            + item("b2", STORM, "https://beta.example/storm", date=ago(1.49))
            + item("b3", PHONE, "https://beta.example/phone", date=ago(3)),
            title="Beta",
        ),
    )
    gamma = server.serve(
        "/gamma.xml",
        rss(item("g1", VOLCANO, "https://gamma.example/volcano", date=ago(0.98)), title="Gamma"),
    )
    return (
        f"  - url: {alpha}\n    name: alpha\n    tags: [world]\n"
        f"  - url: {beta}\n    name: beta\n    tags: [tech]\n"
        f"  - url: {gamma}\n    name: gamma\n    tags: [world, uk]\n"
    )


def configure(tmp_path: Path, feeds: str, outputs: str = OUTPUTS, output: str = "") -> Path:
    """write_config's file, with `outputs:` and more `output:` keys (base_url by default)."""
    path = write_config(tmp_path, feeds, outputs)
    extra = output or f"  base_url: {BASE_URL}\n"
    path.write_text(path.read_text().replace("defaults:\n", extra + "defaults:\n", 1))
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One `aggregator update` of the three outlets with every kind of output: its folder."""
    server = FeedServer()
    server.start()
    try:
        folder = tmp_path_factory.mktemp("outputs")
        configure(folder, feeds_of(server))
        done = run("update", cwd=folder)
        assert done.returncode == 0, done.stderr
        yield folder
    finally:
        server.stop()


def atom(path: Path) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(path.read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


# ---------------------------------------------------------------- each selection, on disk


@pytest.mark.parametrize(
    ("name", "titles"),
    [
        ("world", [VOLCANO, STORM, ELECTION, MUSEUM]),  # any feed of the item has the tag
        ("tech", [VOLCANO, STORM, PHONE]),
        ("elections", [ELECTION]),
        ("big", [VOLCANO]),  # told by three outlets; the storm by two
        ("week", [VOLCANO, STORM, ELECTION, PHONE]),  # the museum is 30 days old
        ("latest", [VOLCANO, STORM]),
        ("world-shared", [VOLCANO, STORM]),  # every condition holds
    ],
)
def test_each_selection_writes_its_entries_under_its_folder(
    site: Path, name: str, titles: list[str]
) -> None:
    folder = site / "out" / name
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert [e.title for e in atom(folder / "atom.xml").entries] == titles
    assert [e.title for e in atom(folder / "rss.xml").entries] == titles
    feed_json = json.loads((folder / "feed.json").read_text(encoding="utf-8"))
    assert [i["title"] for i in feed_json["items"]] == titles
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert [t for t in (VOLCANO, STORM, ELECTION, MUSEUM, PHONE) if t in page] == [
        t for t in (VOLCANO, STORM, ELECTION, MUSEUM, PHONE) if t in titles
    ]


def test_the_main_output_stays_as_it_was(site: Path) -> None:
    titles = [e.title for e in atom(site / "out" / "atom.xml").entries]
    assert titles == [VOLCANO, STORM, ELECTION, PHONE, MUSEUM]


def test_a_story_is_shown_by_a_member_the_selection_picks_under_the_storys_id(site: Path) -> None:
    """Beta's copy shows the volcano story in the tech feed (Alpha's elsewhere), under the
    story's one id, and the other outlets are still "also reported by"."""
    world = atom(site / "out" / "world" / "atom.xml").entries[0]
    tech = atom(site / "out" / "tech" / "atom.xml").entries[0]
    main = atom(site / "out" / "atom.xml").entries[0]
    assert (world.link, tech.link) == (
        "https://alpha.example/volcano",
        "https://beta.example/volcano",
    )
    assert world.id == tech.id == main.id
    assert "Also reported by:" in tech.summary and "Alpha" in tech.summary


def test_big_stories_are_shown_merged_with_their_outlets(site: Path) -> None:
    (entry,) = atom(site / "out" / "big" / "atom.xml").entries
    also = re.search(r"Also reported by: (.*?)</p>", entry.summary)
    assert also, entry.summary
    assert re.sub(r"<[^>]+>", "", also.group(1)) == "Beta, Gamma"


def test_an_extra_outputs_ids_and_links_are_its_own(site: Path) -> None:
    folder = site / "out" / "big"
    feed = atom(folder / "atom.xml").feed
    assert feed.id == f"{MAIN_ID}/big"
    assert feed.title == "Big stories"
    links = {link.rel: link.href for link in feed.links}
    assert links == {"self": BASE_URL + "big/atom.xml", "alternate": BASE_URL + "big/"}
    rss_doc = etree.parse(str(folder / "rss.xml"))
    self_link = rss_doc.xpath(
        "//a:link[@rel='self']/@href", namespaces={"a": "http://www.w3.org/2005/Atom"}
    )
    assert self_link == [BASE_URL + "big/rss.xml"]
    assert rss_doc.findtext("channel/link") == BASE_URL + "big/"
    feed_json = json.loads((folder / "feed.json").read_text(encoding="utf-8"))
    assert feed_json["feed_url"] == BASE_URL + "big/feed.json"
    assert feed_json["home_page_url"] == BASE_URL + "big/"
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert '<link rel="alternate" type="application/atom+xml" href="atom.xml"' in page


def test_without_base_url_an_output_links_to_the_site(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """No public URL for the folder: no self links, and the site is the channel's link (RSS
    requires one)."""
    outputs = "outputs:\n  - name: world\n    title: World\n    tags: [world]\n"
    site_link = "  link: https://news.example.org/\n"
    config = load_config(configure(tmp_path, feeds_of(feed_server), outputs, site_link))
    update(config)
    folder = config.output.dir / "world"
    feed = atom(folder / "atom.xml").feed
    assert [(link.rel, link.href) for link in feed.links] == [
        ("alternate", "https://news.example.org/")
    ]
    assert etree.parse(str(folder / "rss.xml")).findtext("channel/link") == (
        "https://news.example.org/"
    )


def test_the_main_page_lists_every_output_and_each_links_back(site: Path) -> None:
    links = r'<nav class="outputs"[^>]*><p>More feeds: (.*?)</p></nav>'
    main = re.search(links, (site / "out" / "index.html").read_text(encoding="utf-8"))
    assert main, "no list of outputs on the main page"
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', main.group(1)) == [
        ("world/", "World"),
        ("tech/", "Tech"),
        ("elections/", "Elections"),
        ("big/", "Big stories"),
        ("week/", "This week"),
        ("latest/", "Latest two"),
        ("world-shared/", "World, shared"),
    ]
    world = re.search(links, (site / "out" / "world" / "index.html").read_text(encoding="utf-8"))
    assert world
    found = re.findall(r'<a href="([^"]+)">([^<]+)</a>', world.group(1))
    assert found[:2] == [("../", "Merged"), ("../tech/", "Tech")]
    assert ("../world/", "World") not in found


@pytest.mark.parametrize("name", ["world", "big"])
@pytest.mark.parametrize("file", ["atom.xml", "rss.xml"])
def test_extra_outputs_are_valid_feeds(
    site: Path, atom_schema: etree.RelaxNG, name: str, file: str
) -> None:
    path = site / "out" / name / file
    if file == "atom.xml":
        assert atom_schema.validate(etree.parse(str(path))), atom_schema.error_log
    done = run_validator(path, base=f"{BASE_URL}{name}/{file}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ", 0 errors, 0 warnings" in done.stdout, done.stdout


# ---------------------------------------------------------------- aggregator outputs


def test_outputs_command_lists_each_output_with_its_entry_count(site: Path) -> None:
    listed = run("outputs", "--format", "json", cwd=site)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["name"]: r["entries"] for r in rows} == {
        "world": 4,
        "tech": 3,
        "elections": 1,
        "big": 1,
        "week": 4,
        "latest": 2,
        "world-shared": 2,
    }
    big = next(r for r in rows if r["name"] == "big")
    assert big["url"] == BASE_URL + "big/" and big["id"] == f"{MAIN_ID}/big"
    assert big["selection"] == {
        "max_entries": 200,
        "tags": [],
        "feeds": [],
        "search": None,
        "min_outlets": 3,
        "since_seconds": None,
    }
    week = next(r for r in rows if r["name"] == "week")
    assert week["selection"]["since_seconds"] == 7 * 86400
    assert Path(big["dir"]) == site / "out" / "big"
    table = run("outputs", cwd=site)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["name", "title", "entries", "selection", "where"]
    world_shared = next(line for line in lines if line.startswith("world-shared "))
    assert "World, shared" in world_shared and " 2 " in world_shared
    assert "tags: world; 2+ outlets; since 7d; max 200" in world_shared


def test_outputs_command_without_outputs_says_so(tmp_path: Path) -> None:
    write_config(tmp_path, "  - url: https://a.example/rss\n")
    listed = run("outputs", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""
    assert "no extra outputs" in listed.stderr
    assert not (tmp_path / "db").exists()  # listing creates no database


# ---------------------------------------------------------------- written only when changed


def stats(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_unchanged_outputs_are_not_rewritten(feed_server: FeedServer, tmp_path: Path) -> None:
    configure(tmp_path, feeds_of(feed_server), OUTPUTS.split("  - name: elections")[0])
    assert run("update", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    before = stats(out)
    assert {name for name in before if "/" in name} == {
        f"{folder}/{file}" for folder in ("world", "tech") for file in FILES
    }
    rebuilt = run("build", cwd=tmp_path)
    assert "wrote 0 changed output files" in rebuilt.stderr, rebuilt.stderr
    assert stats(out) == before

    # Beta (tech) gives a new item: the tech feed and the main one change, world does not.
    feed_server.serve(
        "/beta.xml",
        rss(
            item("b4", "A faster laptop", "https://beta.example/laptop", date=ago(0.5)),
            title="Beta",
        ),
    )
    assert run("update", cwd=tmp_path).returncode == 0
    after = stats(out)
    for name in FILES:
        assert after[f"world/{name}"] == before[f"world/{name}"], name
    for name in ("atom.xml", "rss.xml", "feed.json"):
        assert after[f"tech/{name}"][0] != before[f"tech/{name}"][0], name
        assert after[name][0] != before[name][0], name
    assert "A faster laptop" in (out / "tech" / "atom.xml").read_text(encoding="utf-8")


def test_a_missing_output_folder_is_written_again_by_update(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`update` skips rendering when nothing changed and the outputs are all there: an extra
    output's folder counts."""
    configure(tmp_path, feeds_of(feed_server), OUTPUTS.split("  - name: tech")[0])
    for route in feed_server.routes.values():
        route.etag = '"v1"'  # every later poll is a 304
    assert run("update", cwd=tmp_path).returncode == 0
    (tmp_path / "out" / "world" / "atom.xml").unlink()
    again = run("update", cwd=tmp_path)
    assert "0 new" in again.stderr and "304" in again.stderr, again.stderr
    assert (tmp_path / "out" / "world" / "atom.xml").is_file()


def test_an_output_with_since_drops_entries_as_time_passes(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Nothing in the database changes, every feed answers 304, yet `since:` moves on."""
    outputs = "outputs:\n  - name: week\n    title: Week\n    since: 7d\n"
    config = load_config(configure(tmp_path, feeds_of(feed_server), outputs))
    for route in feed_server.routes.values():
        route.etag = '"v1"'
    update(config)
    week = config.output.dir / "week" / "atom.xml"
    assert [e.title for e in atom(week).entries] == [VOLCANO, STORM, ELECTION, PHONE]
    later = datetime.now(UTC) + timedelta(days=4.5)  # the phone, three days old, is 7.5 then
    report = update(config, clock=lambda: later)
    assert [r.http_status for r in report.results] == [304, 304, 304]
    assert [e.title for e in atom(week).entries] == [VOLCANO, STORM, ELECTION]
    assert week in report.written


# ---------------------------------------------------------------- serve, WebSub


def test_serve_answers_an_extra_output_with_etag_and_304(site: Path, tmp_path: Path) -> None:
    with serving(cwd=site, log=tmp_path / "serve.log") as (process, base):
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(f"{base}/world/atom.xml", timeout=5)
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("application/atom+xml")
            assert response.content == (site / "out" / "world" / "atom.xml").read_bytes()
            again = session.get(
                f"{base}/world/atom.xml",
                headers={"If-None-Match": response.headers["ETag"]},
                timeout=5,
            )
            assert again.status_code == 304
            page = session.get(f"{base}/world/", timeout=5)
            assert page.status_code == 200
            assert page.content == (site / "out" / "world" / "index.html").read_bytes()
            moved = session.get(f"{base}/world", allow_redirects=False, timeout=5)
            assert moved.status_code == 301 and moved.headers["Location"] == "/world/"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_websub_is_pinged_for_the_outputs_that_changed(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    hub = feed_server.serve("/hub", status=204)
    output = f"  base_url: {BASE_URL}\n  websub_hub: {hub}\n"
    configure(tmp_path, feeds_of(feed_server), OUTPUTS.split("  - name: elections")[0], output)

    def topics() -> list[set[str]]:
        posts = [r for r in feed_server.requests if r.method == "POST"]
        return [set(parse_qs(p.body.decode())["hub.url"]) for p in posts]

    assert run("update", cwd=tmp_path).returncode == 0
    feeds = {"atom.xml", "rss.xml", "feed.json"}
    assert topics() == [{f"{BASE_URL}{d}{f}" for d in ("", "world/", "tech/") for f in feeds}]
    page = (tmp_path / "out" / "world" / "atom.xml").read_text(encoding="utf-8")
    assert f'<link rel="hub" href="{hub}"/>' in page

    assert run("update", cwd=tmp_path).returncode == 0  # nothing changed: no ping
    assert len(topics()) == 1
    feed_server.serve(
        "/beta.xml",
        rss(
            item("b4", "A faster laptop", "https://beta.example/laptop", date=ago(0.5)),
            title="Beta",
        ),
    )
    assert run("update", cwd=tmp_path).returncode == 0
    assert topics()[1] == {f"{BASE_URL}{d}{f}" for d in ("", "tech/") for f in feeds}


# ---------------------------------------------------------------- ungrouped


def test_min_outlets_ungrouped_counts_the_feeds_carrying_the_item(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """With `group_stories: false` every item stands alone: its outlets are the feeds that
    carried its very URL."""
    shared = "https://wire.example/quake"
    one = feed_server.serve(
        "/one.xml",
        rss(
            item("o1", "Quake hits the coast", shared)
            + item("o2", "Lone item", "https://one.example/2")
        ),
    )
    two = feed_server.serve("/two.xml", rss(item("t1", "Earthquake on the coast", shared)))
    feeds = f"  - url: {one}\n    name: one\n  - url: {two}\n    name: two\n"
    outputs = "outputs:\n  - name: shared\n    title: Shared\n    min_outlets: 2\n"
    config = load_config(configure(tmp_path, feeds, outputs, "  group_stories: false\n"))
    update(config)
    assert [e.link for e in atom(config.output.dir / "shared" / "atom.xml").entries] == [shared]


# ---------------------------------------------------------------- the query's plan


def test_the_selection_reads_each_entrys_own_rows_not_whole_lists(tmp_path: Path) -> None:
    """Plans, not timings: in 200,000 entries, SQLite read every source of a selected feed
    for each entry (12 s), and walked the search's matches once per entry (227 s)."""
    selection = Selection(200, tags=("world",), feeds=("a",), search="volcano", min_outlets=2)
    with open_store(tmp_path / "a.db") as store:
        for group_stories in (True, False):
            statements: list[str] = []  # as run, parameters written in
            store.db.conn.set_trace_callback(statements.append)
            store.selected_entries(selection, datetime.now(UTC), group_stories=group_stories)
            store.count_selected(selection, datetime.now(UTC), group_stories=group_stories)
            store.db.conn.set_trace_callback(None)
            selecting = [sql for sql in statements if "entries_fts MATCH" in sql]
            assert len(selecting) == 2, statements
            for sql in selecting:
                plan = [row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + sql)]
                assert not [step for step in plan if "idx_sources_feed_id" in step], plan
                assert not [step for step in plan if "AND rowid=?" in step], plan
                assert "SEARCH s USING INDEX idx_sources_entry_id (entry_id=?)" in plan, plan


# ---------------------------------------------------------------- config errors


FEEDS = (
    "  - url: https://a.example/rss\n    name: alpha\n    tags: [world]\n"
    "  - url: https://b.example/rss\n    name: beta\n"
)


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "tags: [world, wrld]",
            r"outputs\[0\]\.tags\[1\]: unknown tag 'wrld' \(did you mean 'world'",
        ),
        ("tags: [uk]", r"outputs\[0\]\.tags\[0\]: unknown tag 'uk' \(tags: world\)"),
        ("feeds: [alpha, gamma]", r"outputs\[0\]\.feeds\[1\]: unknown feed 'gamma' \(feeds: "),
        ('search: "election OR"', r"outputs\[0\]\.search: 'election OR' is not a valid search"),
        ("search: 'nope:x'", r"outputs\[0\]\.search: .*no such column: nope"),
        ("search: '\"unclosed'", r"outputs\[0\]\.search: .*unterminated string"),
        ("since: 7", r"outputs\[0\]\.since: 7 has no unit"),
        ("since: soon", r"outputs\[0\]\.since: 'soon' is not a duration"),
        ("min_outlets: 0", r"outputs\[0\]\.min_outlets: expected a positive whole number"),
        ("max_entries: many", r"outputs\[0\]\.max_entries: expected a positive whole number"),
        ("id: world", r"outputs\[0\]\.id: expected an absolute IRI"),
        ("colour: red", r"outputs\[0\]\.colour: unknown key"),
    ],
)
def test_a_bad_selection_is_a_config_error_with_its_line(
    tmp_path: Path, condition: str, message: str
) -> None:
    path = configure(tmp_path, FEEDS, f"outputs:\n  - name: x\n    title: X\n    {condition}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    line = line_of(path, "outputs:") + 3
    assert re.match(rf"{re.escape(str(path))}:{line}: {message}", str(raised.value)), raised.value


@pytest.mark.parametrize(
    ("outputs", "offset", "message"),
    [
        (
            "  - name: atom.xml\n    title: A\n",
            1,
            r"outputs\[0\]\.name: 'atom.xml' is not a usable",
        ),
        ("  - name: ..\n    title: A\n", 1, r"outputs\[0\]\.name: '\.\.' is not a usable"),
        ("  - name: World\n    title: A\n", 1, r"outputs\[0\]\.name: 'World' is not a usable"),
        ("  - name: a/b\n    title: A\n", 1, r"outputs\[0\]\.name: 'a/b' is not a usable"),
        ("  - title: A\n", 1, r"outputs\[0\]: missing required key 'name'"),
        ("  - name: a\n", 1, r"outputs\[0\]: missing required key 'title'"),
        (
            "  - name: a\n    title: A\n  - name: a\n    title: B\n",
            3,
            r"outputs\[1\]\.name: duplicate output name 'a' \(first at line \d+\)",
        ),
        (
            f"  - name: a\n    title: A\n    id: {MAIN_ID}\n",
            1,
            r"outputs\[0\]\.id: '.*' is already the id of output\.id",
        ),
        (
            f"  - name: a\n    title: A\n  - name: b\n    title: B\n    id: {MAIN_ID}/a\n",
            3,
            r"outputs\[1\]\.id: '.*' is already the id of the output at line \d+",
        ),
        ("  name: a\n", 1, r"outputs: expected a list of outputs"),
    ],
)
def test_a_bad_output_is_a_config_error_with_its_line(
    tmp_path: Path, outputs: str, offset: int, message: str
) -> None:
    path = configure(tmp_path, FEEDS, "outputs:\n" + outputs)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    line = line_of(path, "outputs:") + offset
    assert re.match(rf"{re.escape(str(path))}:{line}: {message}", str(raised.value)), raised.value


def test_a_bad_selection_stops_the_command_before_anything_runs(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "One", "https://a.example/1")))
    outputs = "outputs:\n  - name: x\n    title: X\n    tags: [nowhere]\n"
    path = configure(tmp_path, f"  - url: {url}\n    name: a\n", outputs)
    done = run("update", cwd=tmp_path)
    assert done.returncode == 2
    line = line_of(path, "nowhere")
    assert f"feeds.yaml:{line}: outputs[0].tags[0]: unknown tag 'nowhere'" in done.stderr
    assert feed_server.requests == [] and not (tmp_path / "db").exists()


def test_the_default_id_is_derived_from_the_main_one_and_stable() -> None:
    assert default_output_id("tag:example.org,2026:news", "world") == (
        "tag:example.org,2026:news/world"
    )
    assert default_output_id("https://example.org/feed", "big") == (
        "tag:aggregator.invalid,2026:https://example.org/feed/big"
    )
    assert default_output_id("urn:x y", "big") == "tag:aggregator.invalid,2026:urn:x%20y/big"
