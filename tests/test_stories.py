"""Same-story detection: the pure decision, table-driven, and the whole path end to end."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, item, rss, write_config
from lxml import etree

from aggregator.config import load_config
from aggregator.pipeline import build, update
from aggregator.stories import (
    DEFAULT_STORY_POLICY,
    StoryPolicy,
    decide,
    headline_vector,
    story_words,
)
from aggregator.stories.index import shared_terms
from aggregator.types import StoryCandidate


def candidates(title: str, earlier: list[tuple[int, str]]) -> list[StoryCandidate]:
    """Earlier headlines as the index would hand them over: (story id, headline), each story's
    centroid the sum of its members' unit vectors."""
    words = story_words(title)
    centroids: dict[int, dict[str, float]] = {}
    verbatim: set[int] = set()
    for story_id, other in earlier:
        centroid = centroids.setdefault(story_id, {})
        other_words = story_words(other)
        for word, value in headline_vector(other_words).items():
            centroid[word] = centroid.get(word, 0.0) + value
        if set(other_words) == set(words) and len(words) >= 2:
            verbatim.add(story_id)
    return [
        StoryCandidate(
            story_id,
            sum(1 for s, _ in earlier if s == story_id),
            centroid,
            math.sqrt(sum(v * v for v in centroid.values())),
            sum(1 for word in words if word in centroid),
            shared_terms(words, centroid),
            story_id in verbatim,
        )
        for story_id, centroid in sorted(centroids.items())
        if any(word in centroid for word in words)
    ]


def place(title: str, earlier: list[tuple[int, str]], policy: StoryPolicy = DEFAULT_STORY_POLICY):
    return decide(headline_vector(story_words(title)), candidates(title, earlier), policy)


@pytest.mark.parametrize(
    ("title", "earlier", "story", "rule"),
    [
        pytest.param(
            "Thousands evacuated as volcano erupts near Grindavik in Iceland",
            [(7, "Volcano erupts near Reykjavik, thousands evacuated from Grindavik")],
            7,
            "similar-story",
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
            "similar-story",
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
            "Putin Strengthens Ties with Kim Jong Un Ahead of Trump Meeting",
            [(3, "Putin reaffirms 'friendship' with Kim Jong Un before Alaska summit with Trump")],
            3,
            "similar-story",
            id="five shared words, three of them a rare name",
        ),
    ],
)
def test_decision(title: str, earlier: list[tuple[int, str]], story: int | None, rule: str) -> None:
    decision = place(title, earlier)
    assert (decision.story_id, decision.rule) == (story, rule)
    assert decision.merge == ()


def test_a_headline_close_to_two_stories_joins_the_closer_and_merges_nothing() -> None:
    """The bridge that chained unrelated stories: it shares words with a member of each."""
    title = "Apple iOS 7.1 update arrives as Titanfall launches on Xbox One"
    earlier = [
        (4, "Apple releases iOS 7.1 with CarPlay and Siri improvements"),
        (4, "iOS 7.1 is out: Apple fixes bugs and adds CarPlay"),
        (8, "Titanfall launches on Xbox One and PC to strong reviews"),
        (8, "Titanfall review: Respawn's shooter lives up to the hype"),
    ]
    decision = place(title, earlier)
    assert decision.merge == ()
    assert decision.story_id in (None, 4, 8)


def test_two_stories_similar_as_wholes_merge_into_the_oldest() -> None:
    title = "Thousands evacuated as volcano erupts near Grindavik in Iceland"
    earlier = [
        (8, "Volcano erupts near Grindavik, thousands evacuated"),
        (4, "Iceland volcano: thousands evacuated from Grindavik"),
        (6, "Iceland wins the handball final"),
    ]
    decision = place(title, earlier)
    # the oldest story keeps its id (readers have it), the younger one is folded in
    assert (decision.story_id, decision.merge) == (4, (8,))


def test_a_rare_name_weighs_more_than_a_common_word() -> None:
    assert headline_vector(("titanfall", "new"))["titanfall"] > 0.9
    from aggregator.stories import word_weight

    assert word_weight("plosser") > word_weight("kim") > word_weight("talks") > 0


def test_policy_thresholds_are_the_knobs() -> None:
    title = "Volcano erupts in Iceland again"
    earlier = [(1, "Volcano erupts in Iceland, flights grounded across Europe")]
    assert place(title, earlier).story_id == 1
    assert place(title, earlier, StoryPolicy(join_similarity=0.95)).story_id is None
    # three words in common, all of the headline's: enough, unless the knobs ask for more
    assert place(title, earlier, StoryPolicy(min_shared=4, mostly_shared=1.1)).story_id is None


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ("The Fed's Plosser says taper may speed up", ("fed", "plosser", "taper", "speed")),
        ("Markets wrap: March 11, 2014, 8:57 pm", ("market", "wrap")),  # dates say when, not what
        ("S&P 500 closes at 1,878; 6.1 quake kills 12", ("500", "close", "878", "quake", "kill")),
        (
            "Titanfall reviews: stories of the bus in Paris",
            ("titanfall", "review", "story", "bus", "paris"),
        ),
        ("Café olé: ÉLAN & naïve", ("cafe", "ole", "elan", "naive")),
        ("  ", ()),
        ("U.S. stocks: Dow, S&P 500 fall", ("stock", "dow", "500", "fall")),
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


# Another story from outlet c. (A headline naming both of the story's places, such as
# "Iceland's central bank holds interest rates", is close to it as a whole, and joins it.)
OTHER = (
    '<item><guid isPermaLink="false">c-2</guid>'
    "<title>Iceland's central bank holds interest rates</title>"
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
    assert len(titles) == 2 and "Iceland's central bank holds interest rates" in titles
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
        "similar-story",
        "similar-story",
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
    assert "3 outlets" in listed.stdout and "similar-story 0." in listed.stdout
    # The rule's name as JSON and SQL give it (issue 14 #8: the table said "first").
    rules = [line.split()[1] for line in listed.stdout.splitlines() if line.startswith("  ")]
    assert sorted(rules) == ["new", "similar-story", "similar-story"]
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
    assert [m["rule"] for m in story["members"]] == rules
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


SEED_PAIR = (
    "Putin Strengthens Ties with Kim Jong Un Ahead of Trump Meeting",
    "Putin reaffirms 'friendship' with Kim Jong Un before Alaska summit with Trump",
)
# The same week's other news about the same people: each must stay a story of its own.
DISTRACTORS = (
    "Putin signs decree raising minimum pensions for Russian workers",
    "Trump announces new tariffs on Indian imports over oil purchases",
    "Kim Jong Un oversees test of new air defence missiles",
    "Zelensky rejects any deal that cedes Ukrainian land to Russia",
)


def one_outlet_each(
    feed_server: FeedServer, tmp_path: Path, titles: Sequence[str], day: str
) -> tuple[dict[str, int], sqlite3.Connection]:
    """Each headline from an outlet of its own, an hour apart from 08:00 that day, through
    the real pipeline; each title's story, and the database."""
    feeds = ""
    for n, title in enumerate(titles):
        url = feed_server.serve(
            f"/o{n}.xml",
            rss(
                f'<item><guid isPermaLink="false">o{n}</guid><title>{title}</title>'
                f"<link>https://o{n}.example/1</link>"
                f"<pubDate>{day} {8 + n:02d}:00:00 GMT</pubDate></item>"
            ),
        )
        feeds += f"  - url: {url}\n    name: o{n}\n"
    config = load_config(write_config(tmp_path, feeds))
    update(config)
    conn = sqlite3.connect(config.database)
    return dict(conn.execute("SELECT title, story_id FROM entries").fetchall()), conn


def test_the_seed_pair_is_one_story_and_the_distractors_stay_apart(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Two outlets' wordings of one event, the same day, among the week's other Putin, Trump
    and Kim stories, through the real pipeline."""
    story_of, _ = one_outlet_each(
        feed_server, tmp_path, (*SEED_PAIR, *DISTRACTORS), "Fri, 08 Aug 2025"
    )
    assert story_of[SEED_PAIR[0]] == story_of[SEED_PAIR[1]]
    assert len({story_of[title] for title in DISTRACTORS} | {story_of[SEED_PAIR[0]]}) == 5


def test_a_story_is_not_a_chain(feed_server: FeedServer, tmp_path: Path) -> None:
    """Each headline shares three words with the one before: single link chained them all into
    one story; as wholes, the two ends are different news and stay apart."""
    chain = (
        "Apple releases iOS 7.1 update with CarPlay",
        "iOS 7.1 update brings CarPlay to iPhone cars",
        "CarPlay cars from Ferrari and Volvo shown in Geneva",
        "Ferrari and Volvo lead Geneva motor show reveals",
        "Geneva motor show crowds see Volvo concept coupe",
    )
    story_of, conn = one_outlet_each(feed_server, tmp_path, chain, "Tue, 04 Mar 2014")
    assert story_of[chain[0]] != story_of[chain[-1]]
    rules = {rule for (rule,) in conn.execute("SELECT story_rule FROM entries")}
    assert rules <= {"new", "similar-story", "same-title"}


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
    assert (result.status.value, result.new) == ("updated", 2)
    assert "1 entry cut to the size limits" in (result.error or "")  # the title: 2,000 chars
    assert len(story_words(huge)) == 50


def test_rebuild_re_places_an_old_database_with_the_current_rules(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Stories written by older rules (here: every entry in one chained story) are re-placed
    in one transaction, and the command says what it split."""
    config_path = three_outlets(feed_server, tmp_path)
    config = load_config(config_path)
    update(config)
    conn = sqlite3.connect(config.database)
    # What the single-link rules left behind: the other Iceland story chained into the volcano.
    (volcano,) = conn.execute(
        "SELECT story_id FROM entries WHERE title LIKE 'Volcano erupts%'"
    ).fetchone()
    other = conn.execute("SELECT story_id FROM entries WHERE title LIKE 'Iceland''s%'").fetchone()
    conn.execute("UPDATE entries SET story_id = ? WHERE story_id = ?", [volcano, other[0]])
    conn.execute("DELETE FROM story_words WHERE story_id = ?", [other[0]])
    conn.execute("DELETE FROM stories WHERE id = ?", [other[0]])
    conn.commit()
    assert conn.execute("SELECT count(DISTINCT story_id) FROM entries").fetchone() == (1,)
    conn.close()
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), "stories", "--rebuild"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "re-placed 4 entries: 1 story before, 2 after; 1 split, 0 joined" in done.stdout
    conn = sqlite3.connect(config.database)
    story_of = dict(conn.execute("SELECT title, story_id FROM entries").fetchall())
    assert story_of["Iceland's central bank holds interest rates"] != story_of[HEADLINES["a"][0]]
    assert len({story_of[title] for title, _ in HEADLINES.values()}) == 1
    (words,) = conn.execute("SELECT count(*) FROM entry_words").fetchone()
    assert words > 0


def test_a_story_is_dated_by_its_newest_member_not_by_the_run(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 14 #2: loading old entries stamped their stories with the run's wall-clock time,
    and the validator warned of entries sharing one atom:updated."""
    config = load_config(three_outlets(feed_server, tmp_path))
    update(config)
    conn = sqlite3.connect(config.database)
    (updated,) = conn.execute(
        "SELECT s.updated FROM stories s JOIN entries e ON e.id = s.representative_id "
        "WHERE e.title LIKE 'Volcano erupts%'"
    ).fetchone()
    assert updated == "2026-11-25T09:40:00Z"  # outlet c's copy, the newest of the three
