"""Same-story detection: the pure decision, table-driven, and the whole path end to end."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, item, rss, write_config
from lxml import etree

from aggregator.config import load_config
from aggregator.pipeline import build, update
from aggregator.stories import StoryPolicy, decide, story_words
from aggregator.types import Neighbour, StoryProfile


def neighbours(title: str, earlier: list[tuple[int, str]]) -> list[Neighbour]:
    """Earlier headlines as the store would hand them over: (story id, headline)."""
    words = set(story_words(title))
    found = []
    for entry_id, (story_id, other) in enumerate(earlier, start=1):
        other_words = story_words(other)
        shared = len(words & set(other_words))
        if shared:
            found.append(Neighbour(entry_id, story_id, shared, len(other_words)))
    return found


@pytest.mark.parametrize(
    ("title", "earlier", "story", "rule"),
    [
        pytest.param(
            "Thousands evacuated as volcano erupts near Grindavik in Iceland",
            [(7, "Volcano erupts near Reykjavik, thousands evacuated from Grindavik")],
            7,
            "similar-title",
            id="same story reworded",
        ),
        pytest.param(
            "Trump says he will meet Putin in Helsinki next month",
            [(3, "Putin warns the West over new sanctions on Russian banks")],
            None,
            "new",
            id="different stories sharing Putin",
        ),
        pytest.param(
            "Trump signs executive order on tariffs for Chinese steel",
            [(4, "Trump rallies supporters in Ohio ahead of the midterm vote")],
            None,
            "new",
            id="different stories sharing Trump",
        ),
        pytest.param(
            "Vladimir Putin meets Xi Jinping in Beijing",
            [(5, "Vladimir Putin annexes Crimea in televised speech")],
            None,
            "new",
            id="a shared full name is not a story",
        ),
        pytest.param(
            "Earthquake of magnitude 6.1 strikes central Italy, at least 12 dead",
            [(9, "Earthquake of magnitude 6.1 strikes central Italy")],
            9,
            "similar-title",
            id="same outlet updates its own story",
        ),
        pytest.param(
            "Central bank raises interest rates to 5.25%",
            [(2, "Central bank raises interest rates to 5.25%")],
            2,
            "same-title",
            id="wire copy republished verbatim",
        ),
        pytest.param(
            "Markets rally",
            [(2, "Markets rally")],
            2,
            "same-title",
            id="short headline verbatim",
        ),
        pytest.param(
            "Stocks fall",
            [(2, "Stocks fall on weak jobs data and rising yields")],
            None,
            "new",
            id="too few words to tell",
        ),
    ],
)
def test_decision(title: str, earlier: list[tuple[int, str]], story: int | None, rule: str) -> None:
    decision = decide(story_words(title), neighbours(title, earlier), [])
    assert (decision.story_id, decision.rule) == (story, rule)


def test_an_entry_that_links_two_stories_merges_them_into_the_oldest() -> None:
    title = "Thousands evacuated as volcano erupts near Grindavik in Iceland"
    earlier = [
        (8, "Volcano erupts near Grindavik, thousands evacuated"),
        (4, "Iceland volcano: thousands evacuated from Grindavik"),
        (6, "Iceland wins the handball final"),
    ]
    decision = decide(story_words(title), neighbours(title, earlier), [])
    # the oldest story keeps its id (readers have it), the younger one is folded in
    assert (decision.story_id, decision.merge) == (4, (8,))


SNOWDEN = StoryProfile(11, 40, {"edward": 30, "snowden": 38, "sxsw": 25, "data": 3})


@pytest.mark.parametrize(
    ("title", "profile", "joins"),
    [
        ("Edward Snowden warns of personal data vulnerability", SNOWDEN, True),
        ("Snowden joins SXSW by video link from Moscow", SNOWDEN, True),
        ("Snowden's lawyer speaks out", SNOWDEN, False),  # one signature word is not enough
        (
            "Edward Snowden warns of personal data vulnerability",
            StoryProfile(11, 9, {"edward": 9, "snowden": 9}),  # too young for a signature
            False,
        ),
    ],
)
def test_story_signature(title: str, profile: StoryProfile, joins: bool) -> None:
    decision = decide(story_words(title), [], [profile])
    assert (decision.story_id == profile.story_id) is joins
    if joins:
        assert decision.rule == "story-signature" and decision.score > 1.0


def test_a_similar_title_beats_a_signature() -> None:
    title = "Edward Snowden speaks to SXSW audience from Russia"
    found = neighbours(title, [(5, "Edward Snowden speaks to SXSW from Russia")])
    decision = decide(story_words(title), found, [SNOWDEN])
    assert (decision.story_id, decision.rule) == (5, "similar-title")


def test_policy_thresholds_are_the_knobs() -> None:
    title = "Volcano erupts in Iceland again"
    found = neighbours(title, [(1, "Volcano erupts in Iceland, flights grounded across Europe")])
    assert decide(story_words(title), found, []).story_id == 1
    strict = StoryPolicy(min_shared=4)
    assert decide(story_words(title), found, [], strict).story_id is None


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ("The Fed's Plosser says taper may speed up", ("fed", "plosser", "taper", "speed")),
        ("Markets wrap: March 11, 2014, 8:57 pm", ("markets", "wrap")),  # dates say when, not what
        ("S&P 500 closes at 1,878; 6.1 quake kills 12", ("500", "closes", "878", "quake", "kills")),
        ("Café olé: ÉLAN & naïve", ("cafe", "ole", "elan", "naive")),
        ("  ", ()),
        ("U.S. stocks: Dow, S&P 500 fall", ("stocks", "dow", "500", "fall")),
        ("Snowden Snowden SNOWDEN", ("snowden",)),
    ],
)
def test_story_words(title: str, words: tuple[str, ...]) -> None:
    assert story_words(title) == words


# ---------------------------------------------------------------- end to end

HEADLINES = {
    "a": ("Volcano erupts near Reykjavik, thousands evacuated from Grindavik", "09:00"),
    "b": ("Thousands evacuated as volcano erupts near Grindavik in Iceland", "09:20"),
    "c": ("Iceland volcano erupts: Grindavik evacuated, thousands flee lava", "09:40"),
}


def story_feed(outlet: str, extra: str = "") -> str:
    title, time = HEADLINES[outlet]
    return rss(
        f'<item><guid isPermaLink="false">{outlet}-1</guid><title>{title}</title>'
        f"<link>https://{outlet}.example/volcano</link>"
        f"<pubDate>Wed, 25 Nov 2026 {time}:00 GMT</pubDate>"
        f"<description>&lt;p&gt;Report by {outlet}.&lt;/p&gt;</description></item>{extra}",
        title=f"Outlet {outlet.upper()}",
        link=f"https://{outlet}.example/",
    )


OTHER = (
    '<item><guid isPermaLink="false">c-2</guid>'
    "<title>Iceland's president visits Grindavik school</title>"
    "<link>https://c.example/school</link><pubDate>Wed, 25 Nov 2026 08:00:00 GMT</pubDate></item>"
)


def three_outlets(feed_server: FeedServer, tmp_path: Path, extra: str = "") -> Path:
    feeds = ""
    for outlet in "abc":
        url = feed_server.serve(
            f"/{outlet}.xml", story_feed(outlet, OTHER if outlet == "c" else "")
        )
        feeds += f"  - url: {url}\n    name: {outlet}\n"
        if outlet == "b":
            feeds += "    prefer: true\n" if "prefer" in extra else ""
    path = write_config(tmp_path, feeds)
    if "ungrouped" in extra:
        path.write_text(
            path.read_text().replace("defaults:\n", "  group_stories: false\ndefaults:\n")
        )
    return path


def test_three_outlets_one_story_one_entry(feed_server: FeedServer, tmp_path: Path) -> None:
    config = load_config(three_outlets(feed_server, tmp_path))
    update(config)
    atom = feedparser.parse((config.output.dir / "atom.xml").read_bytes())
    assert atom.bozo == 0
    titles = [e.title for e in atom.entries]
    assert len(titles) == 2 and "Iceland's president visits Grindavik school" in titles
    (story,) = [e for e in atom.entries if "volcano" in e.title.lower()]
    body = story.content[0].value
    assert story.title == HEADLINES["a"][0]  # the earliest copy represents the story
    html = etree.HTML(body)
    also = html.xpath("//p[starts-with(normalize-space(.), 'Also reported by')]//a")
    assert {(a.text, a.get("href")) for a in also} == {
        ("Outlet B", "https://b.example/volcano"),
        ("Outlet C", "https://c.example/volcano"),
    }
    feed_json = json.loads((config.output.dir / "feed.json").read_text(encoding="utf-8"))
    (item,) = [i for i in feed_json["items"] if i["title"] == story.title]
    assert [c["title"] for c in item["_source"]["also_reported_by"]] == ["Outlet B", "Outlet C"]
    conn = sqlite3.connect(config.database)
    rules = dict(conn.execute("SELECT title, story_rule FROM entries").fetchall())
    # feeds arrive in any order: the first to be stored starts the story, the others join it
    assert sorted(rules[h] for h, _ in HEADLINES.values()) == [
        "new",
        "similar-title",
        "similar-title",
    ]
    assert conn.execute("SELECT count(*) FROM stories").fetchone() == (2,)


def test_the_story_changes_when_a_source_joins(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.serve("/a.xml", story_feed("a"))
    feed_server.serve("/b.xml", rss(""))
    feeds = "".join(f"  - url: {feed_server.url(f'/{o}.xml')}\n    name: {o}\n" for o in "ab")
    config = load_config(write_config(tmp_path, feeds))
    update(config)
    first = feedparser.parse((config.output.dir / "atom.xml").read_bytes()).entries[0]
    feed_server.serve("/b.xml", story_feed("b"))
    update(config)
    (again,) = feedparser.parse((config.output.dir / "atom.xml").read_bytes()).entries
    assert again.id == first.id  # the same story, the same permanent id
    assert again.updated_parsed > first.updated_parsed
    assert "Also reported by" in again.content[0].value and "Outlet B" in again.content[0].value


def test_group_stories_false_gives_one_entry_per_item(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    config = load_config(three_outlets(feed_server, tmp_path, "ungrouped"))
    update(config)
    atom = feedparser.parse((config.output.dir / "atom.xml").read_bytes())
    assert len(atom.entries) == 4
    assert all("Also reported by" not in str(e.get("content", "")) for e in atom.entries)


def test_a_preferred_outlet_represents_the_story(feed_server: FeedServer, tmp_path: Path) -> None:
    config = load_config(three_outlets(feed_server, tmp_path, "prefer"))
    update(config)
    titles = [
        e.title for e in feedparser.parse((config.output.dir / "atom.xml").read_bytes()).entries
    ]
    assert HEADLINES["b"][0] in titles and HEADLINES["a"][0] not in titles
    build(config)  # rebuilding does not change the choice


def test_stories_command_shows_members_and_why(feed_server: FeedServer, tmp_path: Path) -> None:
    path = three_outlets(feed_server, tmp_path)
    update(load_config(path))
    listed = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), "stories"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "3 outlets" in listed.stdout and "similar-title 0." in listed.stdout
    as_json = subprocess.run(
        [
            sys.executable,
            "-m",
            "aggregator",
            "--config",
            str(path),
            "stories",
            "--since",
            "100d",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    (story,) = json.loads(as_json.stdout)
    assert [m["feed"] for m in story["members"]] == ["Outlet A", "Outlet B", "Outlet C"]
    assert [m["representative"] for m in story["members"]] == [True, False, False]
    everything = subprocess.run(
        [
            sys.executable,
            "-m",
            "aggregator",
            "--config",
            str(path),
            "stories",
            "--all",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(json.loads(everything.stdout)) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), "stories", "--since", "soon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "neither a date" in bad.stderr


def test_a_signature_joins_a_big_story_whose_members_each_share_one_word(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Half the story's headlines say "Snowden", half "SXSW": a headline naming both shares one
    word with each member (no title rule applies), yet both are the story's signature words."""
    feeds = ""
    for n in range(10):
        name = "Snowden" if n % 2 == 0 else "SXSW"
        url = feed_server.serve(
            f"/o{n}.xml",
            rss(
                item(
                    f"o{n}",
                    f"{name} festival video link austin crowd cheers",
                    f"https://o{n}.example/1",
                )
            ),
        )
        feeds += f"  - url: {url}\n    name: o{n}\n"
    config_path = write_config(tmp_path, feeds)
    update(load_config(config_path))
    late = feed_server.serve(
        "/late.xml",
        rss(item("l1", "Snowden talks to SXSW via robot telepresence", "https://late.example/1")),
    )
    config = load_config(write_config(tmp_path, feeds + f"  - url: {late}\n    name: late\n"))
    update(config)
    conn = sqlite3.connect(config.database)
    (stories,) = conn.execute("SELECT count(*) FROM stories").fetchone()
    rule = conn.execute(
        "SELECT story_rule FROM entries WHERE title LIKE 'Snowden talks%'"
    ).fetchone()
    assert (stories, rule) == (1, ("story-signature",))


def test_a_title_of_thousands_of_words_is_stored_like_any_other(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Story detection looks at a headline's first words only; a huge title must not fail the
    feed (it did: one SQL result column per word, and SQLite allows 2,000)."""
    huge = " ".join(f"w{i}x" for i in range(3000))
    url = feed_server.serve(
        "/huge.xml",
        rss(item("h1", huge, "https://h.example/1") + item("h2", "Cats", "https://h.example/2")),
    )
    config = load_config(write_config(tmp_path, f"  - url: {url}\n    name: huge\n"))
    (result,) = update(config).results
    assert (result.status.value, result.new, result.error) == ("updated", 2, None)
    assert len(story_words(huge)) == 50


def test_the_window_big_stories_come_from_the_partial_index(tmp_path: Path) -> None:
    """The default policy's signature stories are what m011's partial index holds, so finding
    them reads the window's big stories only, whatever the history (no full scan)."""
    from aggregator.store import open_store
    from aggregator.store.schema import BIG_STORY_MEMBERS
    from aggregator.stories import DEFAULT_STORY_POLICY

    assert DEFAULT_STORY_POLICY.signature_min_members >= BIG_STORY_MEMBERS
    with open_store(tmp_path / "a.db") as store:
        plan = store.db.execute(
            "EXPLAIN QUERY PLAN SELECT id, members FROM stories INDEXED BY idx_stories_big_updated "
            f"WHERE members >= {BIG_STORY_MEMBERS} AND members >= ? AND updated >= ?",
            [DEFAULT_STORY_POLICY.signature_min_members, "2026"],
        ).fetchall()
        assert "idx_stories_big_updated" in str(plan)
        assert (
            store._big_stories_in_window("2026", DEFAULT_STORY_POLICY.signature_min_members) == {}
        )
