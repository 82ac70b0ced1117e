"""What storing one response means, decided in pure code (`aggregator.plan`): table tests.

No database here: `Known` is written out by hand as `Store.known_for` would read it. That the
store applies these decisions is tested through the real pipeline (test_pipeline, test_store).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.dedupe import fingerprint, output_id, scoped_id
from aggregator.plan import lookups, moved_to, plan_update
from aggregator.prepare import prepared
from aggregator.types import (
    AddSource,
    Entry,
    FeedState,
    FetchResult,
    InsertEntry,
    Known,
    ParsedFeed,
    Rekey,
    Schedule,
    ShownCopy,
    StoredSource,
    UpdateEntry,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
WHEN = datetime(2026, 11, 25, 9, tzinfo=UTC)
SCHEDULE = Schedule(NOW + timedelta(hours=1), timedelta(hours=1), "config")
STATE = FeedState(7, "f", "https://f.example/rss", source_id="urn:uuid:feed-f")
OK = FetchResult(200, "https://f.example/rss", {"ETag": '"e"'}, None)


def entry(source_id: str, **changes: object) -> Entry:
    values: dict[str, object] = {
        "source_id": source_id,
        "title": f"Title {source_id}",
        "link": f"https://f.example/{source_id}",
        "canonical_url": f"https://f.example/{source_id}",
        "published": WHEN,
        "updated": WHEN,
    }
    values.update(changes)
    return Entry(**values)  # type: ignore[arg-type]


def feed(*entries: Entry, feed_id: str | None = None) -> ParsedFeed:
    return ParsedFeed("rss20", "F", "https://f.example/", feed_id, None, entries)


def stored(item: Entry, row: int, *, shown: bool = True, digest: str | None = None) -> StoredSource:
    return StoredSource(
        item.source_id, row, 100 + row, digest or fingerprint(item), shown, item.canonical_url
    )


def kinds(update: object) -> list[tuple[str, str]]:
    return [(type(i).__name__, i.entry.source_id) for i in update.intents]  # type: ignore[attr-defined]


def test_new_changed_unchanged_and_pruned() -> None:
    unchanged, changed, new, pruned = entry("u"), entry("c", title="New"), entry("n"), entry("p")
    known = Known(
        sources={"u": stored(unchanged, 1), "c": stored(entry("c"), 2)},
        pruned=frozenset({"p"}),
        first_success=False,
    )
    update = plan_update(STATE, OK, feed(unchanged, changed, new, pruned), known, NOW, SCHEDULE)
    assert kinds(update) == [("UpdateEntry", "c"), ("InsertEntry", "n")]
    assert (update.new, update.updated, update.rekeyed) == (1, 1, 0)


def test_a_new_entry_keeps_an_absolute_id_and_is_dated_by_the_poll_when_undated() -> None:
    dated = entry("https://f.example/a")
    undated = entry("b", published=None, updated=None)
    update = plan_update(STATE, OK, feed(dated, undated), Known(), NOW, SCHEDULE)
    first, second = update.intents
    assert isinstance(first, InsertEntry) and isinstance(second, InsertEntry)
    assert first.output_id == "https://f.example/a" and first.published == WHEN
    assert second.output_id == output_id("b", STATE.source_id)
    assert second.published == second.updated == NOW


def test_an_output_id_another_entry_has_is_scoped_to_this_feed() -> None:
    item = entry("https://shared.example/1")
    known = Known(taken_output_ids=frozenset({"https://shared.example/1"}))
    (insert,) = plan_update(STATE, OK, feed(item), known, NOW, SCHEDULE).intents
    assert isinstance(insert, InsertEntry)
    assert insert.output_id == scoped_id(item.source_id, f"{STATE.source_id}#{STATE.feed_id}")


def test_a_url_stored_by_any_feed_or_earlier_in_the_document_adds_a_source() -> None:
    other_feeds = entry("a", canonical_url="https://news.example/story")
    first = entry("b", canonical_url="https://news.example/new")
    again = entry("c", canonical_url="https://news.example/new")
    known = Known(entry_by_url={"https://news.example/story": 55})
    update = plan_update(STATE, OK, feed(other_feeds, first, again), known, NOW, SCHEDULE)
    add, insert, add_again = update.intents
    assert add == AddSource(other_feeds, fingerprint(other_feeds), 55, None)
    assert isinstance(insert, InsertEntry)
    assert add_again == AddSource(again, fingerprint(again), None, 1)  # onto the insert
    assert update.new == 3


def test_a_fresh_id_for_an_item_already_given_is_a_rekey_not_a_copy() -> None:
    old = entry("old-id")
    same_url = entry("new-id", title="Edited title", canonical_url=old.canonical_url)
    known = Known(sources={"old-id": stored(old, 1)}, first_success=False)
    update = plan_update(STATE, OK, feed(same_url), known, NOW, SCHEDULE)
    (rekey,) = update.intents
    assert isinstance(rekey, Rekey) and rekey.stored.row_id == 1
    assert isinstance(rekey.update, UpdateEntry)  # it changed too
    assert (update.new, update.rekeyed) == (0, 1)


def test_rekey_by_content_only_when_the_feed_has_no_copy_of_the_url() -> None:
    old = entry("old", canonical_url=None)
    same_content = entry("fresh", canonical_url=None)
    digest = fingerprint(same_content)
    known = Known(sources={"old": stored(old, 1, digest=digest)}, first_success=False)
    (rekey,) = plan_update(STATE, OK, feed(same_content), known, NOW, SCHEDULE).intents
    assert isinstance(rekey, Rekey) and rekey.update is None  # same content: nothing to update
    # A copy of its URL that the document still carries: not re-keyed by content, a new item.
    kept = entry("kept", canonical_url="https://f.example/u")
    fresh = entry("fresh", canonical_url="https://f.example/u")
    known = Known(
        sources={"kept": stored(kept, 1), "old": stored(old, 2, digest=fingerprint(fresh))},
        first_success=False,
    )
    update = plan_update(STATE, OK, feed(kept, fresh), known, NOW, SCHEDULE)
    assert kinds(update) == [("InsertEntry", "fresh")]


def test_one_stale_copy_is_rekeyed_once() -> None:
    old = entry("old")
    first = entry("n1", canonical_url=old.canonical_url)
    second = entry("n2", canonical_url=old.canonical_url)
    known = Known(sources={"old": stored(old, 1)}, first_success=False)
    update = plan_update(STATE, OK, feed(first, second), known, NOW, SCHEDULE)
    assert kinds(update) == [("Rekey", "n1"), ("InsertEntry", "n2")]


def test_an_update_keeps_the_first_publication_time_unless_the_feed_gives_one() -> None:
    before = entry("a")
    undated = entry("a", title="Changed", published=None, updated=None)
    known = Known(sources={"a": stored(before, 1)}, first_success=False)
    (update,) = plan_update(STATE, OK, feed(undated), known, NOW, SCHEDULE).intents
    assert isinstance(update, UpdateEntry)
    assert update.published is None and update.updated == NOW
    clamped = entry("a", title="Changed", date_clamped=True)
    (update,) = plan_update(STATE, OK, feed(clamped), known, NOW, SCHEDULE).intents
    assert isinstance(update, UpdateEntry) and update.published is None


@pytest.mark.parametrize(
    ("first_success", "taken", "feed_id", "adopted"),
    [
        (True, False, "tag:f.example,2026:feed", "tag:f.example,2026:feed"),
        (False, False, "tag:f.example,2026:feed", None),  # adopted once, then kept
        (True, True, "tag:f.example,2026:feed", None),  # another feed goes by it
        (True, False, "not an iri", None),
        (True, False, None, None),
    ],
)
def test_the_feeds_own_id_is_adopted_once(
    first_success: bool, taken: bool, feed_id: str | None, adopted: str | None
) -> None:
    known = Known(first_success=first_success, feed_id_taken=taken)
    item = entry("a")
    update = plan_update(STATE, OK, feed(item, feed_id=feed_id), known, NOW, SCHEDULE)
    assert update.row.adopted_source_id == adopted
    assert update.state.source_id == (adopted or STATE.source_id)
    (insert,) = update.intents
    assert isinstance(insert, InsertEntry)
    assert insert.output_id == output_id("a", adopted or STATE.source_id)
    assert insert.output_id in lookups(STATE, feed(item, feed_id=feed_id)).output_ids


def test_lookups_ask_only_about_items_the_feed_has_not_stored() -> None:
    """An item the feed holds (or whose entry retention deleted) is decided by what the feed
    holds: a response bringing one new item among fifty asks the store about that one."""
    items = [entry(f"i{n}") for n in range(50)]
    asked = lookups(STATE, feed(*items), {f"i{n}" for n in range(1, 50)})
    assert asked.canonical_urls == {"https://f.example/i0"}
    assert asked.output_ids == {output_id("i0", STATE.source_id)}
    everything = lookups(STATE, feed(*items))
    assert len(everything.canonical_urls) == 50 and len(everything.output_ids) == 50


def test_only_permanent_redirects_move_a_feed() -> None:
    moved = FetchResult(200, "https://new.example/rss", {}, None, redirected_permanently=True)
    temporary = FetchResult(200, "https://new.example/rss", {}, None)
    assert moved_to(STATE, moved) == "https://new.example/rss"
    assert moved_to(STATE, temporary) is None
    update = plan_update(STATE, moved, feed(), Known(), NOW, SCHEDULE)
    assert update.row.moved_to == "https://new.example/rss" and update.row.etag is None


def test_the_parse_workers_fingerprints_give_the_same_plan() -> None:
    """aggregator.prepare works out fingerprints where the feed is parsed; the plan made with
    them is the plan made without."""
    items = (entry("a"), entry("b", title="Changed"))
    known = Known(sources={"b": stored(entry("b"), 1)}, first_success=False)
    with_prepared = plan_update(STATE, OK, prepared(feed(*items)), known, NOW, SCHEDULE)
    without = plan_update(STATE, OK, feed(*items), known, NOW, SCHEDULE)
    assert with_prepared.intents == without.intents


def test_an_earlier_or_preferred_copy_of_a_stored_url_takes_over_what_the_entry_shows() -> None:
    url = "https://news.example/story"
    shown_at = WHEN
    known = Known(entry_by_url={url: 9}, shown={9: ShownCopy(shown_at, False)})
    earlier = entry("a", canonical_url=url, published=WHEN - timedelta(minutes=5))
    later = entry("b", canonical_url=url, published=WHEN + timedelta(hours=1))
    undated = entry("c", canonical_url=url, published=None, updated=None)
    takes = [
        plan_update(STATE, OK, feed(item), known, NOW, SCHEDULE).intents[0].takes_over  # type: ignore[union-attr]
        for item in (earlier, later, undated)
    ]
    assert takes == [True, False, False]
    preferred = Known(entry_by_url={url: 9}, shown={9: ShownCopy(shown_at, False)}, preferred=True)
    (add,) = plan_update(STATE, OK, feed(later), preferred, NOW, SCHEDULE).intents
    assert isinstance(add, AddSource) and add.takes_over  # a preferred feed's copy, however late
    shown_preferred = Known(entry_by_url={url: 9}, shown={9: ShownCopy(shown_at, True)})
    (add,) = plan_update(STATE, OK, feed(earlier), shown_preferred, NOW, SCHEDULE).intents
    assert isinstance(add, AddSource) and not add.takes_over  # nor is a preferred copy displaced
