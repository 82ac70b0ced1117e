"""Keep and block rules as users meet them: feeds.yaml, `update` and `build` in a subprocess,
the written outputs read back, `entries --filtered`; a real database and feed server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, item, rss, wait_until, write_config
from conftest import run_cli as run

from aggregator.config import load_config
from aggregator.pipeline import apply_rules, update
from aggregator.store import open_store

ROOT = Path(__file__).resolve().parents[1]
RECENT = format_datetime(datetime.now(UTC) - timedelta(hours=3), usegmt=True)
OLD = format_datetime(datetime.now(UTC) - timedelta(days=40), usegmt=True)


def rss_item(
    guid: str,
    title: str,
    *,
    link: str | None = None,
    date: str = RECENT,
    summary: str = "<p>Details.</p>",
    content: str | None = None,
    author: str | None = None,
    category: str | None = None,
) -> str:
    """An RSS item with the fields rules look at (content:encoded, dc:creator, category)."""
    parts = [
        f'<item><guid isPermaLink="false">{guid}</guid><title>{title}</title>',
        f"<link>{link or f'https://n.example/{guid}'}</link><pubDate>{date}</pubDate>",
        f"<description><![CDATA[{summary}]]></description>",
    ]
    if content is not None:
        parts.append(f"<content:encoded><![CDATA[{content}]]></content:encoded>")
    if author is not None:
        parts.append(f"<dc:creator>{author}</dc:creator>")
    if category is not None:
        parts.append(f"<category>{category}</category>")
    return "".join(parts) + "</item>"


def rich_rss(items: str, title: str = "News") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{title}</title><link>https://n.example/</link><description>d</description>"
        f"{items}</channel></rss>"
    )


# One item each rule kind finds, and one no rule finds.
ITEMS = {
    "title": rss_item("s1", "Sponsored: the Zephyr phone"),
    "summary": rss_item("p1", "Weekly harbour show", summary="<p>Listen to our podcast</p>"),
    "content": rss_item("c1", "Lentil recipe", content="<p>Use promo code SAVE</p>"),
    "author": rss_item("a1", "Partner news from Kestrel", author="Brand Studio"),
    "link": rss_item("l1", "Travel deals to Alpine lakes", link="https://n.example/partner/1"),
    "tag": rss_item("t1", "Episode four of Tideline", category="podcast"),
    "older_than": rss_item("o1", "Archive piece on granite quarries", date=OLD),
    "none": rss_item("n1", "Volcano erupts near Grindavik", category="world"),
}
TITLES = {
    "title": "Sponsored: the Zephyr phone",
    "summary": "Weekly harbour show",
    "content": "Lentil recipe",
    "author": "Partner news from Kestrel",
    "link": "Travel deals to Alpine lakes",
    "tag": "Episode four of Tideline",
    "older_than": "Archive piece on granite quarries",
    "none": "Volcano erupts near Grindavik",
}
CONDITIONS = {
    "title": ("title", '"^Sponsored"'),
    "summary": ("summary", "podcast"),
    "content": ("content", '"promo code"'),
    "author": ("author", '"^Brand Studio$"'),
    "link": ("link", "/partner/"),
    "tag": ("tag", "^podcast$"),
    "older_than": ("older_than", "30d"),
}


def published_titles(out: Path) -> dict[str, set[str]]:
    """The entry titles of each written output."""
    html = (out / "index.html").read_text(encoding="utf-8")
    atom = feedparser.parse((out / "atom.xml").read_bytes())
    rss20 = feedparser.parse((out / "rss.xml").read_bytes())
    feed_json = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    return {
        "atom.xml": {e.title for e in atom.entries},
        "rss.xml": {e.title for e in rss20.entries},
        "feed.json": {i["title"] for i in feed_json["items"]},
        "index.html": {t for t in TITLES.values() if t in html},
    }


def assert_published(out: Path, titles: set[str]) -> None:
    for name, found in published_titles(out).items():
        if name == "index.html":
            assert found == titles & set(TITLES.values()), name
        else:
            assert found == titles, name


def filtered(cwd: Path) -> dict[str, str]:
    """`entries --filtered`: title -> the rule that filtered it."""
    done = run("entries", "--filtered", "--format", "json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {row["title"]: row["filtered_by"] for row in json.loads(done.stdout)}


@pytest.mark.parametrize("kind", sorted(CONDITIONS))
def test_each_rule_kind_leaves_its_entry_out_of_every_output(
    feed_server: FeedServer, tmp_path: Path, kind: str
) -> None:
    url = feed_server.serve("/news.xml", rich_rss("".join(ITEMS.values())))
    key, value = CONDITIONS[kind]
    write_config(
        tmp_path,
        f"  - url: {url}\n    name: news\n",
        f"rules:\n  block:\n    - {key}: {value}\n"
        # an extra output (issue 16, item 1) leaves it out too
        "outputs:\n  - name: all\n    title: All\n    feeds: [news]\n",
    )
    done = run("update", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for out in (tmp_path / "out", tmp_path / "out" / "all"):
        assert_published(out, set(TITLES.values()) - {TITLES[kind]})
    rule = (
        f"block: {key} ~ /{value.strip(chr(34))}/"
        if kind != "older_than"
        else ("block: older_than 30d")
    )
    assert filtered(tmp_path) == {TITLES[kind]: rule}
    # Still stored and queryable: listed with the others, carrying its rule.
    listed = json.loads(run("entries", "--format", "json", cwd=tmp_path).stdout)
    assert {r["title"]: r["filtered_by"] for r in listed}[TITLES[kind]] == rule
    assert len(listed) == len(TITLES)


def test_keep_and_block_together(feed_server: FeedServer, tmp_path: Path) -> None:
    items = ITEMS["none"] + ITEMS["tag"] + rss_item("w2", "Sponsored world tour", category="world")
    url = feed_server.serve("/news.xml", rich_rss(items))
    rules = "rules:\n  keep:\n    - tag: ^world$\n  block:\n    - title: Sponsored\n"
    write_config(tmp_path, f"  - url: {url}\n    name: news\n", rules)
    assert run("update", cwd=tmp_path).returncode == 0
    atom = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    assert [e.title for e in atom.entries] == [TITLES["none"]]
    assert filtered(tmp_path) == {
        "Sponsored world tour": "block: title ~ /Sponsored/",
        TITLES["tag"]: "keep: none of tag ~ /^world$/",
    }


def test_a_feeds_rules_apply_to_that_feed_and_the_top_level_ones_to_all(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    a = feed_server.serve(
        "/a.xml",
        rich_rss(
            rss_item("a1", "Sponsored: the Zephyr phone")
            + rss_item("a2", "Archive piece on granite quarries", date=OLD)
            + rss_item("a3", "Harbour wall repaired")
        ),
    )
    b = feed_server.serve(
        "/b.xml",
        rich_rss(
            rss_item("b1", "Sponsored: cheap Alpine holidays", link="https://b.example/1")
            + rss_item("b2", "Ferry timetable from last summer", date=OLD, link="https://b/2")
        ),
    )
    feeds = (
        f"  - url: {a}\n    name: a\n    rules:\n      block:\n        - title: ^Sponsored\n"
        f"  - url: {b}\n    name: b\n"
    )
    write_config(tmp_path, feeds, "rules:\n  block:\n    - older_than: 30d\n")
    assert run("update", cwd=tmp_path).returncode == 0
    atom = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    assert {e.title for e in atom.entries} == {
        "Harbour wall repaired",
        "Sponsored: cheap Alpine holidays",
    }
    assert filtered(tmp_path) == {
        "Sponsored: the Zephyr phone": "block: title ~ /^Sponsored/ (feed rule)",
        "Archive piece on granite quarries": "block: older_than 30d",
        "Ferry timetable from last summer": "block: older_than 30d",
    }
    table = run("entries", "--filtered", cwd=tmp_path)
    assert "block: title ~ /^Sponsored/ (feed rule)" in table.stdout
    assert "filtered_by" in table.stdout and "link" not in table.stdout


def test_a_rule_change_applies_at_the_next_build_and_update_without_refetching(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/news.xml", rich_rss("".join(ITEMS.values())), etag='"v1"')
    feeds = f"  - url: {url}\n    name: news\n"
    write_config(tmp_path, feeds)
    out = tmp_path / "out"
    assert run("update", cwd=tmp_path).returncode == 0
    assert_published(out, set(TITLES.values()))  # published before any rule
    fetched = len(feed_server.hits("/news.xml"))

    write_config(tmp_path, feeds, "rules:\n  block:\n    - title: Sponsored\n")
    done = run("build", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_published(out, set(TITLES.values()) - {TITLES["title"]})  # removed from outputs
    assert filtered(tmp_path) == {TITLES["title"]: "block: title ~ /Sponsored/"}

    write_config(tmp_path, feeds, "rules:\n  keep:\n    - tag: ^world$\n")
    assert run("build", cwd=tmp_path).returncode == 0
    assert_published(out, {TITLES["none"]})
    assert set(filtered(tmp_path)) == set(TITLES.values()) - {TITLES["none"]}
    assert len(feed_server.hits("/news.xml")) == fetched  # no build fetches

    # `update` too, even when the feed answers 304: the rules changed what is shown.
    write_config(tmp_path, feeds)
    done = run("update", cwd=tmp_path)
    assert done.returncode == 0 and "news: 304" in done.stderr, done.stderr
    assert_published(out, set(TITLES.values()))
    assert filtered(tmp_path) == {}
    assert "no filtered entries" in run("entries", "--filtered", cwd=tmp_path).stderr


def test_new_and_changed_entries_are_judged_under_unchanged_rules(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/news.xml", rich_rss(rss_item("n1", "Volcano erupts")))
    write_config(
        tmp_path, f"  - url: {url}\n    name: news\n", "rules:\n  block:\n    - title: Sponsored\n"
    )
    assert run("update", cwd=tmp_path).returncode == 0
    assert filtered(tmp_path) == {}
    changed = rss_item("n1", "Sponsored: volcano tours")
    new = rss_item("n2", "Sponsored: lava lamps") + rss_item("n3", "Harbour wall repaired")
    feed_server.serve("/news.xml", rich_rss(changed + new))
    done = run("update", cwd=tmp_path)
    assert "2 new, 1 updated" in done.stderr, done.stderr
    assert filtered(tmp_path) == {
        "Sponsored: volcano tours": "block: title ~ /Sponsored/",
        "Sponsored: lava lamps": "block: title ~ /Sponsored/",
    }
    atom = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    assert [e.title for e in atom.entries] == ["Harbour wall repaired"]


def test_a_filtered_representative_gives_its_story_to_an_unfiltered_member(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The story keeps its permanent id and shows the other outlet's copy; the filtered copy
    is no "Also reported by" either. With every member filtered, the story is left out."""
    earlier = format_datetime(datetime.now(UTC) - timedelta(hours=5), usegmt=True)
    world = rss(
        item(
            "w1",
            "Volcano erupts near Grindavik, thousands evacuated",
            "https://w.example/1",
            date=earlier,
        ),
        title="World",
    )
    local = rss(
        item(
            "l1",
            "Thousands evacuated as volcano erupts near Grindavik",
            "https://l.example/1",
            date=RECENT,
        ),
        title="Local",
    )
    w, loc = feed_server.serve("/world.xml", world), feed_server.serve("/local.xml", local)
    plain = f"  - url: {w}\n    name: world\n  - url: {loc}\n    name: local\n"
    write_config(tmp_path, plain)
    assert run("update", cwd=tmp_path).returncode == 0
    atom_path = tmp_path / "out" / "atom.xml"
    (story,) = feedparser.parse(atom_path.read_bytes()).entries
    assert story.title.startswith("Volcano erupts") and "Local" in story.content[0].value

    rule = "    rules:\n      block:\n        - title: Grindavik\n"
    write_config(
        tmp_path, f"  - url: {w}\n    name: world\n{rule}  - url: {loc}\n    name: local\n"
    )
    assert run("build", cwd=tmp_path).returncode == 0
    (shown,) = feedparser.parse(atom_path.read_bytes()).entries
    assert shown.id == story.id
    assert shown.title == "Thousands evacuated as volcano erupts near Grindavik"
    assert b"Also reported by" not in atom_path.read_bytes()  # the world copy is filtered
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "Thousands evacuated as volcano" in html and "Volcano erupts near" not in html

    write_config(tmp_path, plain, "rules:\n  block:\n    - title: Grindavik\n")
    assert run("build", cwd=tmp_path).returncode == 0
    assert feedparser.parse(atom_path.read_bytes()).entries == []
    assert json.loads((tmp_path / "out" / "feed.json").read_text())["items"] == []


def test_an_age_rule_takes_entries_out_as_they_age_judging_only_those(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Without a rule change, an application judges the new entries and those whose age
    crossed an `older_than` since the last one, not the whole database."""
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    dates = {
        "crossing": now - timedelta(days=29, hours=23),
        "young": now - timedelta(days=2),
        "old": now - timedelta(days=40),
    }
    items = "".join(
        item(
            name,
            f"{name} story",
            f"https://n.example/{name}",
            date=format_datetime(moment, usegmt=True),
        )
        for name, moment in dates.items()
    )
    url = feed_server.serve("/news.xml", rss(items))
    path = write_config(
        tmp_path, f"  - url: {url}\n    name: news\n", "rules:\n  block:\n    - older_than: 30d\n"
    )
    config = load_config(path)
    update(config, clock=lambda: now)
    with open_store(config.database) as store:
        verdicts = dict(store.db.execute("SELECT title, filtered_by FROM entries").fetchall())
        assert verdicts == {
            "crossing story": None,
            "young story": None,
            "old story": "block: older_than 30d",
        }
        later = apply_rules(store, config, now + timedelta(hours=2))
        assert not later.everything and later.checked == 1  # only the one that crossed
        verdicts = dict(store.db.execute("SELECT title, filtered_by FROM entries").fetchall())
        assert verdicts["crossing story"] == "block: older_than 30d"
        assert verdicts["young story"] is None
        again = apply_rules(store, config, now + timedelta(hours=3))
        assert again.checked == 0 and again.changes == ()


@pytest.mark.parametrize(
    ("rules", "line", "message"),
    [
        (
            "rules:\n  block:\n    - title: 'a('\n",
            12,
            "rules.block[0].title: 'a(' is not a regular",
        ),
        (
            "rules:\n  keep:\n    - summary: '(a|aa)+$'\n",
            12,
            "rules.keep[0].summary: '(a|aa)+$' is catastrophically slow",
        ),
        (
            "rules:\n  block:\n    - title: x\n    - link: '(x+x+)+y'\n",
            13,
            "rules.block[1].link: '(x+x+)+y' is catastrophically slow",
        ),
        (
            "rules:\n  block:\n    - {title: x, tag: y}\n",
            12,
            "rules.block[0]: a condition has exactly one key",
        ),
        ("rules:\n  block: Sponsored\n", 11, "rules.block: expected a list of conditions"),
        ("rules:\n  drop:\n    - title: x\n", 11, "rules.drop: unknown key (allowed: block, keep)"),
    ],
)
def test_a_bad_rule_is_a_config_error_with_file_and_line(
    feed_server: FeedServer, tmp_path: Path, rules: str, line: int, message: str
) -> None:
    url = feed_server.serve("/news.xml", rich_rss(ITEMS["none"]))
    write_config(tmp_path, f"  - url: {url}\n", rules)
    done = run("update", cwd=tmp_path)
    assert done.returncode == 2
    assert f"feeds.yaml:{line}: {message}" in done.stderr, done.stderr
    assert feed_server.requests == [] and not (tmp_path / "db").exists()


def test_a_feeds_bad_rule_names_the_feed(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/news.xml", rich_rss(ITEMS["none"]))
    feeds = f"  - url: {url}\n    rules:\n      block:\n        - author: '(a|a)+$'\n"
    write_config(tmp_path, feeds)
    done = run("build", cwd=tmp_path)
    assert done.returncode == 2
    assert "feeds.yaml:14: feeds[0].rules.block[0].author: '(a|a)+$' is catastrophically slow" in (
        done.stderr
    ), done.stderr


def test_datasette_lists_filtered_entries_and_why(feed_server: FeedServer, tmp_path: Path) -> None:
    datasette_app = pytest.importorskip("datasette.app")
    from aggregator.browse import metadata_for

    url = feed_server.serve("/news.xml", rich_rss(ITEMS["none"] + ITEMS["title"]))
    path = write_config(
        tmp_path, f"  - url: {url}\n    name: news\n", "rules:\n  block:\n    - title: Sponsored\n"
    )
    update(load_config(path))
    database = load_config(path).database

    async def browse() -> None:
        ds = datasette_app.Datasette([str(database)], metadata=metadata_for(database))
        page = await ds.client.get(f"/{database.stem}/filtered_entries")
        assert page.status_code == 200 and "Filtered entries and why" in page.text
        rows = await ds.client.get(f"/{database.stem}/filtered_entries.json?_shape=array")
        assert [(r["feed"], r["title"], r["filtered_by"]) for r in rows.json()] == [
            ("news", TITLES["title"], "block: title ~ /Sponsored/")
        ]

    asyncio.run(browse())


def test_entries_view_carries_the_verdict(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/news.xml", rich_rss(ITEMS["none"] + ITEMS["title"]))
    path = write_config(
        tmp_path, f"  - url: {url}\n    name: news\n", "rules:\n  block:\n    - title: Sponsored\n"
    )
    update(load_config(path))
    conn = sqlite3.connect(load_config(path).database)
    rows = dict(conn.execute("SELECT title, filtered_by FROM entries_view").fetchall())
    assert rows == {TITLES["none"]: None, TITLES["title"]: "block: title ~ /Sponsored/"}


def test_ungrouped_outputs_leave_filtered_entries_out_too(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/news.xml", rich_rss(ITEMS["none"] + ITEMS["title"] + ITEMS["tag"]))
    path = write_config(
        tmp_path, f"  - url: {url}\n    name: news\n", "rules:\n  block:\n    - title: Sponsored\n"
    )
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("output:\n", "output:\n  group_stories: false\n"), "utf-8")
    assert run("update", cwd=tmp_path).returncode == 0
    assert_published(tmp_path / "out", {TITLES["none"], TITLES["tag"]})


def test_the_service_applies_a_rule_changed_at_a_reload(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`run`: a reload (SIGHUP) with a new rule rebuilds the outputs without it, before any
    feed is due again."""
    from aggregator.service import Service

    url = feed_server.serve("/news.xml", rich_rss(ITEMS["none"] + ITEMS["title"]))
    feeds = f"  - url: {url}\n    name: news\n    interval: 1h\n"
    path = write_config(tmp_path, feeds)
    atom_path = tmp_path / "out" / "atom.xml"

    def titles() -> set[str]:
        try:
            return {e.title for e in feedparser.parse(atom_path.read_bytes()).entries}
        except FileNotFoundError:
            return set()

    service = Service(path)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: titles() == {TITLES["none"], TITLES["title"]}, 10)
        write_config(tmp_path, feeds, "rules:\n  block:\n    - title: Sponsored\n")
        service.reload()
        assert wait_until(lambda: titles() == {TITLES["none"]}, 10), titles()
    finally:
        service.stop()
        thread.join(15)
    assert len(feed_server.hits("/news.xml")) == 1


def test_the_service_ages_entries_out_while_no_feed_brings_anything(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` with an `older_than` rule: an entry that crosses the age leaves the outputs with
    no poll and no reload (here two hours pass on the service's clock)."""
    from aggregator import service as service_module

    monkeypatch.setattr(service_module, "AGE_RULES_EVERY", 0.2)
    shift = [timedelta(0)]
    published = datetime.now(UTC) - timedelta(days=29, hours=23)
    aging = rss_item("g1", "Harbour wall repaired", date=format_datetime(published, usegmt=True))
    url = feed_server.serve("/news.xml", rich_rss(ITEMS["none"] + aging))
    path = write_config(
        tmp_path,
        f"  - url: {url}\n    name: news\n    interval: 1d\n",
        "rules:\n  block:\n    - older_than: 30d\n",
    )
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("defaults:\n", "defaults:\n  min_interval: 1s\n"), "utf-8")
    atom_path = tmp_path / "out" / "atom.xml"

    def titles() -> set[str]:
        try:
            return {e.title for e in feedparser.parse(atom_path.read_bytes()).entries}
        except FileNotFoundError:
            return set()

    service = service_module.Service(path, clock=lambda: datetime.now(UTC) + shift[0])
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: titles() == {TITLES["none"], "Harbour wall repaired"}, 10)
        shift[0] = timedelta(hours=2)
        assert wait_until(lambda: titles() == {TITLES["none"]}, 10), titles()
    finally:
        service.stop()
        thread.join(15)
    assert len(feed_server.hits("/news.xml")) == 1
    assert filtered(tmp_path) == {"Harbour wall repaired": "block: older_than 30d"}
