"""What keeps a big update small (issue 6, peak RSS): few retrievals in flight, no bodies kept,
lean parse workers, and no rendering when nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from conftest import FeedServer, item, rss, wait_until, write_config

from aggregator import pipeline
from aggregator.config import load_config
from aggregator.errors import ParseError
from aggregator.fetch import FetchLimits, make_session
from aggregator.parse import parse_feed
from aggregator.parse_worker import WORKER_NICENESS, loaded_modules, parse_response
from aggregator.pipeline import (
    AHEAD_PER_WORKER,
    PROCESSES_FROM_FEEDS,
    Parser,
    policy_for,
    poll,
    retrieve,
    save,
    update,
)
from aggregator.store import open_store
from aggregator.stories import headline_vector
from aggregator.types import Config, FeedState, ParsedFeed, PollResult, PollStatus

WORKERS = 2
DEFAULTS = f"  workers: {WORKERS}\n  per_host: {WORKERS}\n"
OUTPUTS = ("atom.xml", "rss.xml", "feed.json", "index.html")


def config_for(tmp_path: Path, urls: list[str], extra: str = DEFAULTS) -> Config:
    feeds = "".join(f"  - url: {u}\n    name: f{i}\n" for i, u in enumerate(urls))
    return load_config(write_config(tmp_path, feeds, extra))


def feed_state(config: Config, name: str, now: datetime) -> FeedState:
    with open_store(config.database) as store:
        return store.sync_feeds(config.feeds, now)[name]


# ---------------------------------------------------------------- work in flight


def test_poll_keeps_few_retrievals_ahead_of_the_writer(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer is slow here; the fetchers must wait for it instead of fetching everything.

    Watched at each save (results are reported later, once their batch commits): the feeds
    fetched beyond those saved are the retrievals in flight.
    """
    feeds = 40
    urls = []
    for n in range(feeds):
        if n % 10 == 3:
            urls.append(feed_server.url(f"/missing{n}.xml"))  # a 404: an error, not a stop
        else:
            urls.append(
                feed_server.serve(f"/f{n}.xml", rss(item(f"f{n}-1", f"Story {n}"), title=f"F{n}"))
            )
    config = config_for(tmp_path, urls)
    ahead = AHEAD_PER_WORKER * WORKERS
    saved: list[PollResult] = []
    reported: list[PollResult] = []
    started_beyond_saved: list[int] = []

    def watched_save(*args: object, **kwargs: object) -> PollResult:
        if not saved:
            # Give the fetchers every chance to run ahead; unbounded, they would fetch all 40.
            wait_until(lambda: len(feed_server.requests) > ahead + 1, 1.0)
        started_beyond_saved.append(len(feed_server.requests) - len(saved))
        saved.append(save(*args, **kwargs))  # type: ignore[arg-type]
        return saved[-1]

    monkeypatch.setattr(pipeline, "save", watched_save)
    on_result = reported.append
    with open_store(config.database) as store:
        states = store.sync_feeds(config.feeds, datetime.now().astimezone())
        results = poll(store, config, [states[f.name] for f in config.feeds], on_result=on_result)
    assert len(feed_server.requests) == feeds
    # Before the k-th save, k-1 were saved and at most `ahead` submitted beyond them (this
    # one included).
    assert len(started_beyond_saved) == feeds
    assert max(started_beyond_saved) <= ahead, started_beyond_saved
    assert [r.feed_name for r in results] == [f.name for f in config.feeds]  # input order
    assert sorted(r.feed_name for r in reported) == sorted(r.feed_name for r in results)
    statuses = [r.status for r in results]
    assert statuses == [
        PollStatus.ERROR if n % 10 == 3 else PollStatus.UPDATED for n in range(feeds)
    ]
    assert all(r.http_status == 404 for r in results if r.status is PollStatus.ERROR)


@pytest.mark.parametrize("batch", [1, 5])
def test_an_exception_in_the_writer_stops_fetching(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """A bug propagates at once: the queued feeds are not all fetched first. It surfaces when
    the first batch is reported, so the fetchers may have been handed one more feed for each
    feed of that batch."""
    monkeypatch.setattr(pipeline, "BATCH_FEEDS", batch)
    urls = [feed_server.serve(f"/f{n}.xml", rss(item(f"f{n}-1", f"Story {n}"))) for n in range(30)]
    config = config_for(tmp_path, urls)

    def on_result(result: PollResult) -> None:
        raise RuntimeError("a bug in the caller")

    with open_store(config.database) as store:
        states = store.sync_feeds(config.feeds, datetime.now().astimezone())
        with pytest.raises(RuntimeError, match="a bug in the caller"):
            poll(store, config, [states[f.name] for f in config.feeds], on_result=on_result)
    assert len(feed_server.requests) <= AHEAD_PER_WORKER * WORKERS + batch  # those submitted


# ---------------------------------------------------------------- bodies


def test_a_retrieval_keeps_the_parsed_feed_not_the_body(
    feed_server: FeedServer, tmp_path: Path, now: datetime
) -> None:
    body = rss(item("a1", "One", "https://a.example/1") + item("a2", "Two"))
    url = feed_server.serve("/a.xml", body, etag='"v1"')
    bad = feed_server.serve("/bad.xml", "<html><body>not a feed</body></html>", etag='"b1"')
    config = config_for(tmp_path, [url, bad])
    limits = FetchLimits.from_defaults(config.defaults)
    parsed_bodies: list[int] = []

    def parse(data: bytes, **options: object) -> ParsedFeed:
        parsed_bodies.append(len(data))
        return parse_feed(data, **options)  # type: ignore[arg-type]

    session = make_session()
    try:
        first = retrieve(session, feed_state(config, "f0", now), limits, lambda: now, parse)
        assert parsed_bodies == [len(body)]
        assert first.error is None and first.parsed is not None
        assert first.fetched is not None and first.fetched.body is None
        assert (first.fetched.status, first.fetched.url) == (200, url)
        assert first.fetched.headers["ETag"] == '"v1"'  # the store keeps it as the validator
        with open_store(config.database) as store:
            stored = save(store, first, policy_for(config.feeds[0], config.defaults))
        assert (stored.status, stored.http_status, stored.new) == (PollStatus.UPDATED, 200, 2)

        again = retrieve(session, feed_state(config, "f0", now), limits, lambda: now, parse)
        assert parsed_bodies == [len(body)]  # a 304 is not parsed
        assert again.fetched is not None and again.fetched.status == 304
        assert again.parsed is None and again.error is None
        with open_store(config.database) as store:
            unchanged = save(store, again, policy_for(config.feeds[0], config.defaults))
        assert (unchanged.status, unchanged.http_status) == (PollStatus.NOT_MODIFIED, 304)

        failed = retrieve(session, feed_state(config, "f1", now), limits, lambda: now, parse)
        assert failed.error is not None and failed.parsed is None
        assert failed.fetched is not None and failed.fetched.body is None
        with open_store(config.database) as store:
            error = save(store, failed, policy_for(config.feeds[1], config.defaults))
        assert (error.status, error.http_status) == (PollStatus.ERROR, 200)
    finally:
        session.close()


# ---------------------------------------------------------------- parse workers

PREFIXES = ("aggregator", "sqlite_utils", "requests", "numpy", "jinja2", "apscheduler")
PARSE_STACK = {
    "aggregator",
    "aggregator.errors",
    "aggregator.parse.feedparser_patches",
    "aggregator.parse",
    "aggregator.parse.hints",
    "aggregator.parse.jsonfeed",
    "aggregator.parse.normalize",
    "aggregator.parse.sniff",
    "aggregator.parse.xml",
    "aggregator.parse_worker",
    "aggregator.prepare",  # with the two pure modules it uses, for the writer's share
    "aggregator.dedupe",
    "aggregator.stories",
    "aggregator.stories.decision",  # pure: the story engine's words and decision
    "aggregator.stories.words",
    "aggregator.sanitize",
    "aggregator.types",
    "aggregator.urls",
}


def test_parse_workers_import_the_parse_stack_only(now: datetime) -> None:
    """A spawned worker imports what it is handed: the parser, not the store or the network;
    and it runs below the parent's priority (the writer keeps a core)."""
    parser = Parser(PROCESSES_FROM_FEEDS, processes=2)
    pool = parser.workers()
    assert pool is not None
    try:
        titles = [f"Story {n}" for n in range(PROCESSES_FROM_FEEDS)]
        futures = [
            pool.submit(
                parse_response,  # what Parser hands its workers
                rss(item(f"x{n}", title)).encode(),
                url="https://x.example/",
                headers={},
                now=now,
            )
            for n, title in enumerate(titles)
        ]
        parsed = [f.result() for f in futures]
        assert [p.entries[0].title for p in parsed] == titles
        assert [p.headline_words[p.entries[0].title] for p in parsed] == [
            ("story",) for _ in titles
        ]  # the writer's share came back with each feed
        assert [p.headline_vectors[p.entries[0].title] for p in parsed] == [
            headline_vector(("story",)) for _ in titles
        ]
        reports = [pool.submit(loaded_modules, PREFIXES) for _ in range(8)]
        seen = set().union(*(r.result() for r in reports))
        # Below the writer's priority: os.nice(0) reports a process's nice value.
        niceness = {pool.submit(os.nice, 0).result() for _ in range(8)}
    finally:
        parser.close()
    assert niceness == {min(19, os.nice(0) + WORKER_NICENESS)}
    assert "aggregator.parse_worker" in seen  # the initializer ran here, not in the pipeline
    assert seen <= PARSE_STACK, sorted(seen - PARSE_STACK)  # no store, sqlite-utils, requests...


def test_the_writer_places_headlines_with_the_vectors_that_came_with_the_feed(
    feed_server: FeedServer, tmp_path: Path, now: datetime
) -> None:
    """The headline vectors worked out where the feed was parsed are the ones stored: the writer
    weighs no word itself (wordfreq is loaded by the parse workers, not by the writer)."""
    titles = ("Titanfall review: the mechs are back", "Plosser says rates stay low")
    url = feed_server.serve("/v.xml", rss("".join(item(f"v{n}", t) for n, t in enumerate(titles))))
    config = config_for(tmp_path, [url])
    session = make_session()
    try:
        first = retrieve(
            session, feed_state(config, "f0", now), FetchLimits(), lambda: now, parse_response
        )
    finally:
        session.close()
    assert first.parsed is not None
    words = first.parsed.headline_words
    assert {t: first.parsed.headline_vectors[t] for t in titles} == {
        t: headline_vector(words[t]) for t in titles
    }
    # Vectors the writer could not have computed: if it weighed the words itself, these
    # would not be the stored weights.
    marked = {t: dict.fromkeys(words[t], 0.125) for t in titles}
    retrieved = replace(first, parsed=replace(first.parsed, headline_vectors=marked))
    with open_store(config.database) as store:
        save(store, retrieved, policy_for(config.feeds[0], config.defaults))
        weights = {w for (w,) in store.db.execute("SELECT weight FROM story_words")}
    assert weights == {0.125}


def test_a_cold_update_with_parse_workers_leaves_wordfreq_to_them(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """With the parse workers running, the writer's process never loads the word frequencies
    (they came weighed with each feed): its memory is the store's and the story window's."""
    urls = [
        feed_server.serve(f"/w{n}.xml", rss(item(f"w{n}", f"Outlet {n} reports a story")))
        for n in range(PROCESSES_FROM_FEEDS)
    ]
    config_for(tmp_path, urls)
    code = (
        "import sys; from aggregator.config import load_config; "
        "from aggregator.pipeline import update; "
        f"report = update(load_config({str(tmp_path / 'feeds.yaml')!r})); "
        "print(sum(r.new for r in report.results), 'wordfreq' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(PROCESSES_FROM_FEEDS), "False"]


# ---------------------------------------------------------------- skipping the render


def outputs(config: Config) -> dict[str, tuple[bytes, int]]:
    return {
        name: (
            (config.output.dir / name).read_bytes(),
            (config.output.dir / name).stat().st_mtime_ns,
        )
        for name in OUTPUTS
    }


def test_outputs_are_rendered_only_when_something_changed(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "First story")), etag='"v1"')
    config = config_for(tmp_path, [url])
    first = update(config)
    assert {p.name for p in first.written} == set(OUTPUTS)  # the first run writes everything

    # All 304: nothing is rendered. A hand-edited page shows it: rendering would replace it.
    (config.output.dir / "index.html").write_text("edited by hand", encoding="utf-8")
    before = outputs(config)
    quiet = update(config)
    assert [r.status for r in quiet.results] == [PollStatus.NOT_MODIFIED]
    assert quiet.written == ()
    assert outputs(config) == before

    # A missing output is written again, though nothing changed.
    (config.output.dir / "rss.xml").unlink()
    restored = update(config)
    assert [r.status for r in restored.results] == [PollStatus.NOT_MODIFIED]
    assert {p.name for p in restored.written} == {"rss.xml", "index.html"}
    assert b"First story" in (config.output.dir / "rss.xml").read_bytes()

    # A change is rendered.
    feed_server.serve(
        "/a.xml", rss(item("a2", "Second story") + item("a1", "First story")), etag='"v2"'
    )
    changed = update(config)
    assert [(r.status, r.new) for r in changed.results] == [(PollStatus.UPDATED, 1)]
    assert {p.name for p in changed.written} == set(OUTPUTS)
    assert b"Second story" in (config.output.dir / "atom.xml").read_bytes()
    assert update(config).written == ()


def test_a_200_without_new_entries_still_renders(feed_server: FeedServer, tmp_path: Path) -> None:
    """The feed's own title is in the outputs; a 200 may change it and nothing else."""
    url = feed_server.serve("/a.xml", rss(item("a1", "Story"), title="Old name"))
    config = config_for(tmp_path, [url])
    update(config)
    feed_server.serve("/a.xml", rss(item("a1", "Story"), title="New name"))
    report = update(config)
    assert [(r.status, r.new, r.updated) for r in report.results] == [(PollStatus.UPDATED, 0, 0)]
    assert b"New name" in (config.output.dir / "atom.xml").read_bytes()


def test_a_changed_configuration_is_rendered(feed_server: FeedServer, tmp_path: Path) -> None:
    url = feed_server.serve("/a.xml", rss(item("a1", "Story")), etag='"v1"')
    config = config_for(tmp_path, [url])
    update(config)
    retitled = load_config(
        write_config(tmp_path, f"  - url: {url}\n    name: f0\n    title: Renamed\n", DEFAULTS)
    )
    report = update(retitled)
    assert [r.status for r in report.results] == [PollStatus.NOT_MODIFIED]
    assert "atom.xml" in {p.name for p in report.written}
    assert b"Renamed" in (config.output.dir / "atom.xml").read_bytes()
    assert update(retitled).written == ()


def test_a_run_that_died_before_rendering_is_rendered_by_the_next(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Stored but never rendered (killed, or a bug): the next run renders even if all 304."""
    url = feed_server.serve("/a.xml", rss(item("a1", "First story")), etag='"v1"')
    config = config_for(tmp_path, [url])
    update(config)
    feed_server.serve(
        "/a.xml", rss(item("a2", "Second story") + item("a1", "First story")), etag='"v2"'
    )

    def die(result: PollResult) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        update(config, on_result=die)
    assert b"Second story" not in (config.output.dir / "atom.xml").read_bytes()
    report = update(config)
    assert [r.status for r in report.results] == [PollStatus.NOT_MODIFIED]
    assert b"Second story" in (config.output.dir / "atom.xml").read_bytes()


def test_a_user_template_is_always_rendered(feed_server: FeedServer, tmp_path: Path) -> None:
    """It may include any file beside it: an edit there cannot be told from no change."""
    url = feed_server.serve("/a.xml", rss(item("a1", "Story")), etag='"v1"')
    (tmp_path / "page.html.j2").write_text("{% include 'part.j2' %}", encoding="utf-8")
    (tmp_path / "part.j2").write_text("<p>first</p>", encoding="utf-8")
    path = write_config(tmp_path, f"  - url: {url}\n    name: f0\n", DEFAULTS)
    path.write_text(
        path.read_text().replace("defaults:\n", "  template: page.html.j2\ndefaults:\n", 1)
    )
    config = load_config(path)
    update(config)
    assert (config.output.dir / "index.html").read_text() == "<p>first</p>"
    (tmp_path / "part.j2").write_text("<p>second</p>", encoding="utf-8")
    report = update(config)
    assert [r.status for r in report.results] == [PollStatus.NOT_MODIFIED]
    assert (config.output.dir / "index.html").read_text() == "<p>second</p>"


def test_the_console_script_imports_nothing_a_parse_worker_would_then_load() -> None:
    """Spawned workers import the parent's script: the `aggregator` command's must be light."""
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'aggregator = "aggregator.console:main"' in pyproject
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, aggregator.console; "
            "print(' '.join(m for m in sys.modules if m.startswith(('aggregator', 'requests', "
            "'sqlite_utils', 'feedparser'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(loaded) == ["aggregator", "aggregator.console"], loaded


def test_parse_workers_start_with_the_first_body(now: datetime) -> None:
    """A run of 304s parses nothing, so it starts no worker processes (nor multiprocessing's
    resource tracker, a Python process of its own): the pool starts with the first body."""
    parser = Parser(PROCESSES_FROM_FEEDS, processes=2)
    try:
        assert parser.pool is None
        parsed = parser(
            rss(item("x1", "First body")).encode(), url="https://x.example/", headers={}, now=now
        )
        assert parsed.entries[0].title == "First body"
        assert parser.pool is not None
    finally:
        parser.close()
    with pytest.raises(ParseError, match="stopped"):
        parser.workers()  # a closed parser starts nothing again
