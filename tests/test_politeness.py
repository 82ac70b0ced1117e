"""At most `per_host` requests to one host at once, for `aggregator update` as for `run`."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from conftest import FeedServer, item, rss, write_config

from aggregator.config import load_config
from aggregator.pipeline import update
from aggregator.politeness import HostTurns, host_of


def test_host_of_is_the_lowercased_host_and_files_share_one_key() -> None:
    assert host_of("https://News.Example:8443/feed") == "news.example"
    assert host_of("file:///a/b.xml") == host_of("file:///c.xml") == "file"


def test_turns_hold_a_busy_hosts_items_back_and_let_other_hosts_go_ahead() -> None:
    items = ["a1", "a2", "b1", "a3", "b2", "c1"]
    turns = HostTurns(1, items, host=lambda name: name[0])
    assert [turns.take(), turns.take(), turns.take()] == ["a1", "b1", "c1"]
    assert turns.take() is None  # a2, a3 and b2 wait for their hosts
    assert turns.waiting() == 3
    turns.done("b1")
    assert turns.take() == "b2"
    assert turns.take() is None
    turns.done("a1")
    assert turns.take() == "a2"  # each host's own order is kept
    turns.done("a2")
    turns.done("b2")
    assert turns.take() == "a3"
    assert turns.take() is None and turns.waiting() == 0


def test_turns_allow_per_host_at_once() -> None:
    turns = HostTurns(2, [f"a{n}" for n in range(5)], host=lambda name: name[0])
    assert [turns.take(), turns.take(), turns.take()] == ["a0", "a1", None]
    assert turns.in_flight("a") == 2
    turns.done("a1")
    assert turns.take() == "a2"


def _delayed_feeds(feed_server: FeedServer, count: int) -> str:
    feeds = ""
    for n in range(count):
        body = rss(item(f"i{n}", f"Story number {n}", f"https://x.example/{n}"))
        feed_server.serve(f"/f{n}.xml", body, delay=0.3)
        feeds += f"  - url: {feed_server.url(f'/f{n}.xml')}\n    name: f{n}\n"
    return feeds


def _overlaps(feed_server: FeedServer) -> int:
    spans = sorted((r.started, r.finished) for r in feed_server.requests)
    return sum(start < end - 0.01 for (_, end), (start, _) in itertools.pairwise(spans))


def test_update_sends_one_request_at_a_time_to_one_host_by_default(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path, _delayed_feeds(feed_server, 4)))
    assert config.defaults.per_host == 1 and config.defaults.workers > 1
    report = update(config)
    assert [r.new for r in report.results] == [1, 1, 1, 1]  # every feed polled, in order
    assert len(feed_server.requests) == 4
    assert _overlaps(feed_server) == 0, "two requests to one host overlapped"


@pytest.mark.parametrize("per_host", [2, 4])
def test_update_overlaps_requests_to_one_host_up_to_per_host(
    feed_server: FeedServer, tmp_path: Path, per_host: int
) -> None:
    config = load_config(
        write_config(tmp_path, _delayed_feeds(feed_server, 4), f"  per_host: {per_host}\n")
    )
    update(config)
    assert len(feed_server.requests) == 4
    assert _overlaps(feed_server) >= 1
    for request in feed_server.requests:  # never more than per_host at any arrival
        at_once = sum(
            other.started <= request.started < other.finished for other in feed_server.requests
        )
        assert at_once <= per_host
