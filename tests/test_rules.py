"""Keep and block rules, judged in pure code: each condition kind, how they combine, bounds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.rules import (
    GIVE_UP_AFTER,
    MAX_MATCH_CHARS,
    RuleSet,
    condition_text,
    pattern_problem,
)
from aggregator.types import OLDER_THAN, Condition, FilterChange, Rules, RuleSubject

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def subject(entry_id: int = 1, feed: str = "a", **fields: object) -> RuleSubject:
    values: dict[str, object] = {"filtered_by": None, "published": NOW, **fields}
    return RuleSubject(entry_id, feed, **values)  # type: ignore[arg-type]


def block(*conditions: Condition) -> Rules:
    return Rules(block=conditions)


def regex(field: str, pattern: str) -> Condition:
    return Condition(field, pattern=pattern)


def older_than(**age: float) -> Condition:
    return Condition(OLDER_THAN, older_than=timedelta(**age))


# One per regular-expression field: the condition, an entry it matches, one it does not.
FIELD_CASES = [
    ("title", "Sponsored", {"title": "Sponsored: a new phone"}, {"title": "A new phone"}),
    ("summary", "(?i)advert", {"summary": "<p>An ADVERTISEMENT</p>"}, {"summary": "<p>News</p>"}),
    (
        "content",
        "promo code",
        {"content": "<p>Use promo code X</p>"},
        {"content": "<p>Use the code X</p>"},
    ),
    ("author", "^Brand Studio$", {"authors": ("Jo", "Brand Studio")}, {"authors": ("Jo",)}),
    ("link", r"/sponsored/", {"link": "https://a.example/sponsored/1"}, {"link": "https://a/1"}),
    ("tag", "^podcast$", {"tags": ("news", "podcast")}, {"tags": ("podcasts",)}),
]


@pytest.mark.parametrize(
    ("field", "pattern", "matching", "other"), FIELD_CASES, ids=[c[0] for c in FIELD_CASES]
)
def test_a_block_rule_on_each_field(
    field: str, pattern: str, matching: dict[str, object], other: dict[str, object]
) -> None:
    rules = RuleSet(block(regex(field, pattern)), {})
    assert rules.verdict(subject(**matching), NOW) == f"block: {field} ~ /{pattern}/"
    assert rules.verdict(subject(**other), NOW) is None


def test_older_than_counts_from_publication_to_now() -> None:
    rules = RuleSet(block(older_than(days=30)), {})
    assert rules.verdict(subject(published=NOW - timedelta(days=30, seconds=1)), NOW) == (
        "block: older_than 30d"
    )
    assert rules.verdict(subject(published=NOW - timedelta(days=30)), NOW) is None
    assert rules.verdict(subject(published=NOW - timedelta(days=2)), NOW) is None


def test_a_missing_value_is_matched_as_empty_text() -> None:
    """`^$` finds entries without a summary, author or tag; other patterns never match them."""
    rules = RuleSet(block(regex("summary", "^$"), regex("author", "^$")), {})
    assert rules.verdict(subject(summary=None, authors=("Jo",)), NOW) == "block: summary ~ /^$/"
    assert rules.verdict(subject(summary="<p>x</p>", authors=()), NOW) == "block: author ~ /^$/"
    assert RuleSet(block(regex("tag", "x")), {}).verdict(subject(tags=()), NOW) is None


def test_keep_rules_show_only_what_one_of_them_matches_and_block_wins() -> None:
    rules = RuleSet(
        Rules(block=(regex("title", "Sponsored"),), keep=(regex("tag", "^world$"),)), {}
    )
    assert rules.verdict(subject(title="Summit", tags=("world",)), NOW) is None
    assert rules.verdict(subject(title="Recipe", tags=("food",)), NOW) == (
        "keep: none of tag ~ /^world$/"
    )
    assert rules.verdict(subject(title="Sponsored trip", tags=("world",)), NOW) == (
        "block: title ~ /Sponsored/"
    )


def test_a_feeds_rules_apply_to_its_entries_only_besides_the_top_level_ones() -> None:
    rules = RuleSet(
        Rules(keep=(regex("title", "(?i)volcano"),)),
        {
            "a": Rules(block=(regex("author", "Staff"),), keep=(regex("tag", "iceland"),)),
            "b": Rules(),
        },
    )
    # a's block rule, named as the feed's
    assert rules.verdict(subject(feed="a", title="Volcano", authors=("Staff",)), NOW) == (
        "block: author ~ /Staff/ (feed rule)"
    )
    assert rules.verdict(subject(feed="b", title="Volcano", authors=("Staff",)), NOW) is None
    # keep: the top-level's or the feed's own; b has only the top-level one
    assert rules.verdict(subject(feed="a", title="Lava", tags=("iceland",)), NOW) is None
    assert rules.verdict(subject(feed="b", title="Lava", tags=("iceland",)), NOW) == (
        "keep: none of title ~ /(?i)volcano/"
    )
    assert rules.verdict(subject(feed="a", title="Lava"), NOW) == (
        "keep: none of title ~ /(?i)volcano/, tag ~ /iceland/ (feed rule)"
    )
    # a feed not in the config (its entries kept) has the top-level rules only
    assert rules.verdict(subject(feed="gone", title="Volcano", authors=("Staff",)), NOW) is None


def test_the_top_level_block_rule_is_named_before_the_feeds() -> None:
    rules = RuleSet(block(regex("title", "Ad")), {"a": block(regex("title", "Ad"))})
    assert rules.verdict(subject(title="Ad"), NOW) == "block: title ~ /Ad/"


def test_decide_returns_only_the_verdicts_that_change() -> None:
    rules = RuleSet(block(regex("title", "Sponsored")), {})
    plan = rules.decide(
        [
            subject(1, title="Sponsored", filtered_by=None),  # newly filtered
            subject(2, title="Sponsored", filtered_by="block: title ~ /Sponsored/"),  # same
            subject(3, title="News", filtered_by="block: title ~ /Promo/"),  # shown again
            subject(4, title="News", filtered_by=None),  # same
            subject(5, title="Sponsored", filtered_by="block: title ~ /Spon/"),  # renamed
        ],
        NOW,
        everything=True,
    )
    assert plan.changes == (
        FilterChange(1, "block: title ~ /Sponsored/"),
        FilterChange(3, None),
        FilterChange(5, "block: title ~ /Sponsored/"),
    )
    assert plan.checked == 5 and plan.everything and plan.fingerprint == rules.fingerprint


def test_the_fingerprint_follows_the_rules_and_nothing_else() -> None:
    one = RuleSet(block(regex("title", "x")), {"a": block(regex("tag", "y")), "b": Rules()})
    same = RuleSet(block(regex("title", "x")), {"c": Rules(), "a": block(regex("tag", "y"))})
    assert one.fingerprint == same.fingerprint  # feeds without rules, and their order
    for other in (
        RuleSet(block(regex("title", "X")), {"a": block(regex("tag", "y"))}),
        RuleSet(Rules(keep=(regex("title", "x"),)), {"a": block(regex("tag", "y"))}),
        RuleSet(block(regex("title", "x")), {"b": block(regex("tag", "y"))}),
        RuleSet(block(regex("title", "x"), older_than(days=1)), {"a": block(regex("tag", "y"))}),
    ):
        assert other.fingerprint != one.fingerprint


def test_everything_is_judged_again_when_the_rules_or_the_clock_say_so() -> None:
    rules = RuleSet(block(older_than(days=30)), {})
    assert rules.check_everything(None, NOW)  # never applied
    assert rules.check_everything(("other", NOW - timedelta(hours=1)), NOW)  # rules changed
    assert rules.check_everything((rules.fingerprint, NOW + timedelta(hours=1)), NOW)  # clock
    assert not rules.check_everything((rules.fingerprint, NOW - timedelta(hours=1)), NOW)


def test_the_windows_cover_what_an_age_judges_differently_since_the_last_time() -> None:
    rules = RuleSet(block(older_than(days=30)), {"a": Rules(keep=(older_than(hours=2),))})
    since = NOW - timedelta(minutes=10)
    windows = rules.recheck_windows(since, NOW)
    second = timedelta(seconds=1)
    assert windows == [
        (since - timedelta(hours=2) - second, NOW - timedelta(hours=2) + second),
        (since - timedelta(days=30) - second, NOW - timedelta(days=30) + second),
    ]
    # what was not older than 30 days then, and is now, lies in the window
    crossed = NOW - timedelta(days=30, minutes=5)
    assert any(start <= crossed < end for start, end in windows)
    assert RuleSet(block(regex("title", "x")), {}).recheck_windows(since, NOW) == []


def test_only_the_fields_some_rule_looks_at_are_read() -> None:
    assert RuleSet(Rules(), {}).fields == frozenset()
    assert RuleSet(block(regex("title", "x")), {"a": block(regex("tag", "y"))}).fields == {
        "title",
        "tags",
    }
    assert RuleSet(Rules(keep=(older_than(days=1), regex("author", "z"))), {}).fields == {
        "published",
        "authors",
    }


def test_condition_text_names_the_field_and_the_pattern_or_the_age() -> None:
    assert condition_text(regex("link", "promo")) == "link ~ /promo/"
    assert condition_text(older_than(days=30)) == "older_than 30d"
    assert condition_text(older_than(weeks=2)) == "older_than 2w"
    assert condition_text(older_than(hours=36)) == "older_than 36h"
    assert condition_text(older_than(minutes=90)) == "older_than 90m"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("Sponsored", None),
        (r"(?i)^\[?(ad|sponsored)\]?", None),
        (r"^https?://(www\.)?example\.com/promo/", None),
        ("a(", "is not a regular expression"),
        ("[z-a]", "is not a regular expression"),
        (r"(a|aa)+$", "catastrophically slow"),  # exponential: shows at 30 characters
        (r"(x+x+)+y", "catastrophically slow"),  # polynomial: shows at 10,000
        (r"^(\w+\s?)*$", "slow"),
    ],
)
def test_pattern_problem_refuses_what_does_not_compile_or_backtracks(
    pattern: str, problem: str | None
) -> None:
    found = pattern_problem(pattern)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and repr(pattern) in found


def test_a_field_is_searched_on_its_first_characters_only() -> None:
    rules = RuleSet(block(regex("content", "needle")), {})
    assert rules.verdict(subject(content="x" * (MAX_MATCH_CHARS - 6) + "needle"), NOW)
    assert rules.verdict(subject(content="x" * MAX_MATCH_CHARS + "needle"), NOW) is None


def test_a_search_that_runs_away_at_run_time_is_bounded_and_reported() -> None:
    """A pattern that got past the load-time check (or a config from before it) still cannot
    stall the writer: each search times out, and after GIVE_UP_AFTER the condition is skipped
    for the rest of the pass, so 50 entries cost about GIVE_UP_AFTER timeouts."""
    rules = RuleSet(block(regex("title", "(a|aa)+$"), regex("title", "Sponsored")), {})
    subjects = [subject(i, title="a" * 40 + "!") for i in range(50)]
    subjects.append(subject(99, title="Sponsored " + "a" * 40 + "!"))
    began = time.monotonic()
    plan = rules.decide(subjects, NOW, everything=True)
    took = time.monotonic() - began
    assert plan.timed_out == {"title ~ /(a|aa)+$/": GIVE_UP_AFTER}
    assert plan.changes == (FilterChange(99, "block: title ~ /Sponsored/"),)
    assert took < 2.0, took
