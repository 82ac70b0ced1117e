"""schedule: the polling policy as tables, with a fixed `now` and a deterministic rand."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from aggregator.schedule import (
    Outcome,
    PollFacts,
    SchedulePolicy,
    auto_interval,
    cache_lifetime,
    failure_outcome,
    next_poll,
    retry_after,
)
from aggregator.types import FeedHints, Schedule

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
HTTP_NOW = "Wed, 25 Nov 2026 12:00:00 GMT"
S, M, H, D = (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1))
POLICY = SchedulePolicy(interval=30 * M)
AUTO = SchedulePolicy()
NO_JITTER = SchedulePolicy(interval=30 * M, jitter=0.0)
LOW = 0.0
HIGH = 0.999


def low() -> float:
    return LOW


def high() -> float:
    return HIGH


def poll(
    outcome: Outcome = Outcome.OK,
    policy: SchedulePolicy = POLICY,
    rand: Any = low,
    **facts: Any,
) -> Schedule:
    return next_poll(PollFacts(now=NOW, outcome=outcome, **facts), policy, rand)


def spaced(count: int, gap: timedelta) -> tuple[datetime, ...]:
    """``count`` entry times ``gap`` apart, newest an hour ago, in shuffled-looking order."""
    times = [NOW - H - i * gap for i in range(count)]
    return tuple(times[1::2] + times[::2])


# ---------------------------------------------------------------- OK: base and hints

OK_CASES: list[tuple[str, SchedulePolicy, dict[str, Any], timedelta, str]] = [
    # (id, policy, PollFacts fields, expected interval, expected reason)
    ("config", POLICY, {}, 30 * M, "config"),
    ("config-2h", SchedulePolicy(interval=2 * H), {}, 2 * H, "config"),
    # auto: half the mean gap, clamped to [auto_min, auto_max]
    ("auto-hourly-feed", AUTO, {"entry_times": spaced(10, 2 * H)}, H, "auto"),
    ("auto-busy-clamped", AUTO, {"entry_times": spaced(20, M)}, 15 * M, "auto"),
    ("auto-quiet-clamped", AUTO, {"entry_times": spaced(5, 30 * D)}, 24 * H, "auto"),
    ("auto-2-times", AUTO, {"entry_times": spaced(2, H)}, 30 * M, "auto (too little history)"),
    ("auto-no-times", AUTO, {}, 30 * M, "auto (too little history)"),
    ("auto-dup-times", AUTO, {"entry_times": (NOW,) * 5}, 30 * M, "auto (too little history)"),
    # the floor: only an explicit lower min_interval lets a short interval through
    ("floor-lifts-1m", SchedulePolicy(interval=M), {}, 5 * M, "config"),
    ("floor-1s-allows-1s", SchedulePolicy(interval=S, min_interval=S), {}, S, "config"),
    (
        "floor-lifts-auto",
        SchedulePolicy(auto_min=M, min_interval=10 * M),
        {"entry_times": spaced(10, M)},
        10 * M,
        "auto",
    ),
    # HTTP caching (RFC 9111) lengthens
    ("max-age-12h", POLICY, {"headers": {"Cache-Control": "max-age=43200"}}, 12 * H, "max-age"),
    (
        "max-age-among-others",
        POLICY,
        {"headers": {"cache-control": "public, s-maxage=99999, MAX-AGE=7200"}},
        2 * H,
        "max-age",
    ),
    (
        "expires-minus-date",
        POLICY,
        {"headers": {"Expires": "Wed, 25 Nov 2026 15:00:00 GMT", "Date": HTTP_NOW}},
        3 * H,
        "expires",
    ),
    (
        "expires-minus-now",
        POLICY,
        {"headers": {"Expires": "Wed, 25 Nov 2026 16:00:00 GMT"}},
        4 * H,
        "expires",
    ),
    (
        "max-age-beats-expires",
        POLICY,
        {
            "headers": {
                "Cache-Control": "max-age=3600",
                "Expires": "Thu, 26 Nov 2026 12:00:00 GMT",
            }
        },
        H,
        "max-age",
    ),
    (
        "no-cache-ignored",
        POLICY,
        {"headers": {"Cache-Control": "no-cache, max-age=43200"}},
        30 * M,
        "config",
    ),
    ("no-store-ignored", POLICY, {"headers": {"Cache-Control": "no-store"}}, 30 * M, "config"),
    # publisher hints lengthen
    ("ttl-180", POLICY, {"hints": FeedHints(ttl=180 * M)}, 3 * H, "ttl"),
    (
        "sy-hourly-2",
        SchedulePolicy(interval=10 * M),
        {"hints": FeedHints(update_period=H / 2)},
        30 * M,
        "sy:updatePeriod",
    ),
    ("hint-capped", POLICY, {"hints": FeedHints(ttl=7 * D)}, 24 * H, "ttl"),
    (
        "max-age-capped",
        POLICY,
        {"headers": {"Cache-Control": "max-age=31536000"}},
        24 * H,
        "max-age",
    ),
    (
        "longest-hint-wins",
        POLICY,
        {
            "hints": FeedHints(ttl=2 * H, update_period=3 * H),
            "headers": {"Cache-Control": "max-age=3600"},
        },
        3 * H,
        "sy:updatePeriod",
    ),
    # hints never shorten
    (
        "ttl-shorter",
        SchedulePolicy(interval=2 * H),
        {"hints": FeedHints(ttl=10 * M)},
        2 * H,
        "config",
    ),
    (
        "max-age-shorter",
        SchedulePolicy(interval=2 * H),
        {"headers": {"Cache-Control": "max-age=60"}},
        2 * H,
        "config",
    ),
    (
        "hints-below-floor",
        SchedulePolicy(interval=M),
        {"hints": FeedHints(ttl=2 * M, update_period=3 * M)},
        5 * M,
        "config",
    ),
    (
        "config-above-cap",
        SchedulePolicy(interval=48 * H),
        {"hints": FeedHints(ttl=7 * D)},
        48 * H,
        "config",
    ),
    # invalid headers are ignored
    ("max-age-junk", POLICY, {"headers": {"Cache-Control": "max-age=soon"}}, 30 * M, "config"),
    ("max-age-negative", POLICY, {"headers": {"Cache-Control": "max-age=-5"}}, 30 * M, "config"),
    ("expires-junk", POLICY, {"headers": {"Expires": "0"}}, 30 * M, "config"),
    (
        "expires-past",
        POLICY,
        {"headers": {"Expires": "Tue, 24 Nov 2026 12:00:00 GMT", "Date": HTTP_NOW}},
        30 * M,
        "config",
    ),
    ("empty-headers", POLICY, {"headers": {}}, 30 * M, "config"),
]


@pytest.mark.parametrize(
    ("policy", "facts", "interval", "reason"),
    [c[1:] for c in OK_CASES],
    ids=[c[0] for c in OK_CASES],
)
def test_ok_interval(
    policy: SchedulePolicy, facts: dict[str, Any], interval: timedelta, reason: str
) -> None:
    result = poll(Outcome.OK, policy, low, **facts)
    assert (result.interval, result.reason) == (interval, reason)
    assert result.due == NOW + interval  # rand() == 0: no jitter


def test_max_age_43200_gives_twelve_hours_with_any_header_case() -> None:
    for headers in (
        {"Cache-Control": "max-age=43200"},
        {"CACHE-CONTROL": "max-age=43200"},
        CaseInsensitiveDict({"cache-control": "max-age=43200"}),
    ):
        result = poll(headers=headers)
        assert result.due == NOW + 12 * H


def test_ttl_180_gives_at_least_three_hours() -> None:
    for rand in (low, high):
        result = poll(rand=rand, hints=FeedHints(ttl=180 * M))
        assert result.due is not None
        assert result.due >= NOW + 3 * H


# ---------------------------------------------------------------- cache_lifetime / retry_after

LIFETIME_CASES: list[tuple[str, Mapping[str, str], tuple[timedelta, str] | None]] = [
    ("max-age", {"Cache-Control": "max-age=43200"}, (12 * H, "max-age")),
    ("max-age-quoted", {"Cache-Control": 'max-age="60"'}, (M, "max-age")),
    ("max-age-zero", {"Cache-Control": "max-age=0"}, (timedelta(0), "max-age")),
    ("max-age-first-wins", {"Cache-Control": "max-age=60, max-age=120"}, (M, "max-age")),
    ("max-age-minus-age", {"Cache-Control": "max-age=3600", "Age": "600"}, (50 * M, "max-age")),
    ("max-age-older-than-age", {"Cache-Control": "max-age=60", "Age": "600"}, None),
    ("max-age-huge", {"Cache-Control": "max-age=" + "9" * 400}, (2**31 * S, "max-age")),
    ("s-maxage-only", {"Cache-Control": "s-maxage=600"}, None),
    ("no-cache", {"Cache-Control": "no-cache"}, None),
    ("no-store", {"Cache-Control": "max-age=600, no-store"}, None),
    ("max-age-junk-ignores-expires", {"Cache-Control": "max-age=x", "Expires": HTTP_NOW}, None),
    ("max-age-empty", {"Cache-Control": "max-age="}, None),
    ("max-age-fraction", {"Cache-Control": "max-age=1.5"}, None),
    (
        "expires-date",
        {"Expires": "Wed, 25 Nov 2026 13:00:00 GMT", "Date": "Wed, 25 Nov 2026 11:00:00 GMT"},
        (2 * H, "expires"),
    ),
    ("expires-now", {"expires": "Wed, 25 Nov 2026 13:30:00 GMT"}, (90 * M, "expires")),
    (
        "expires-bad-date-uses-now",
        {"Expires": "Wed, 25 Nov 2026 13:00:00 GMT", "Date": "yesterday"},
        (H, "expires"),
    ),
    ("expires-rfc850", {"Expires": "Wednesday, 25-Nov-26 14:00:00 GMT"}, (2 * H, "expires")),
    ("expires-asctime", {"Expires": "Wed Nov 25 14:00:00 2026"}, (2 * H, "expires")),
    ("expires-zero", {"Expires": "0"}, None),
    ("expires-year-out-of-range", {"Expires": "Fri, 31 Dec 99999 23:59:59 GMT"}, None),
    ("expires-past", {"Expires": "Tue, 24 Nov 2026 12:00:00 GMT"}, None),
    ("nothing", {}, None),
    (
        "cache-control-public-then-expires",
        {"Cache-Control": "public", "Expires": "Wed, 25 Nov 2026 13:00:00 GMT"},
        (H, "expires"),
    ),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [c[1:] for c in LIFETIME_CASES],
    ids=[c[0] for c in LIFETIME_CASES],
)
def test_cache_lifetime(headers: Mapping[str, str], expected: tuple[timedelta, str] | None) -> None:
    assert cache_lifetime(headers, NOW) == expected


RETRY_CASES: list[tuple[str, Mapping[str, str], datetime | None]] = [
    ("seconds", {"Retry-After": "7200"}, NOW + 2 * H),
    ("seconds-spaces", {"retry-after": "  120 "}, NOW + 2 * M),
    ("zero", {"Retry-After": "0"}, NOW),
    ("http-date", {"Retry-After": "Wed, 25 Nov 2026 15:00:00 GMT"}, NOW + 3 * H),
    ("http-date-offset", {"Retry-After": "Wed, 25 Nov 2026 16:00:00 +0100"}, NOW + 3 * H),
    ("past-date-kept", {"Retry-After": "Wed, 25 Nov 2026 11:00:00 GMT"}, NOW - H),
    ("negative", {"Retry-After": "-5"}, None),
    ("fraction", {"Retry-After": "1.5"}, None),
    ("junk", {"Retry-After": "later"}, None),
    ("empty", {"Retry-After": ""}, None),
    ("huge", {"Retry-After": "9" * 5000}, NOW + 2**31 * S),
    ("absent", {}, None),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [c[1:] for c in RETRY_CASES],
    ids=[c[0] for c in RETRY_CASES],
)
def test_retry_after(headers: Mapping[str, str], expected: datetime | None) -> None:
    assert retry_after(headers, NOW) == expected


# ---------------------------------------------------------------- errors and backoff


def test_backoff_is_non_decreasing_up_to_the_cap_and_resets_on_success() -> None:
    intervals = [poll(Outcome.ERROR, error_count=n).interval for n in range(1, 12)]
    assert intervals[:7] == [30 * M, H, 2 * H, 4 * H, 8 * H, 16 * H, 24 * H]
    assert intervals == sorted(intervals)
    assert set(intervals[6:]) == {24 * H}
    assert {poll(Outcome.ERROR, error_count=n).reason for n in range(1, 12)} == {"backoff"}
    reset = poll(Outcome.OK, error_count=0)
    assert (reset.interval, reset.reason) == (30 * M, "config")


def test_backoff_survives_a_huge_failure_count_and_never_stops() -> None:
    result = poll(Outcome.ERROR, error_count=10**9)
    assert (result.interval, result.reason) == (24 * H, "backoff")
    assert result.due == NOW + 24 * H


def test_backoff_is_never_below_the_base() -> None:
    policy = SchedulePolicy(interval=48 * H)  # longer than backoff_cap
    assert poll(Outcome.ERROR, policy, error_count=3).interval == 48 * H
    assert poll(Outcome.ERROR, policy, error_count=0).interval == 48 * H


def test_backoff_ignores_cache_headers_and_hints() -> None:
    result = poll(
        Outcome.ERROR,
        error_count=1,
        headers={"Cache-Control": "max-age=43200"},
        hints=FeedHints(ttl=10 * H),
    )
    assert (result.interval, result.reason) == (30 * M, "backoff")


# ---------------------------------------------------------------- 429 / 503

RATE_CASES: list[tuple[str, dict[str, Any], timedelta, str]] = [
    # (id, PollFacts fields, expected interval, reason); base is 30m
    ("retry-after-seconds", {"headers": {"Retry-After": "7200"}}, 2 * H, "retry-after"),
    (
        "retry-after-date",
        {"headers": {"Retry-After": "Wed, 25 Nov 2026 15:00:00 GMT"}},
        3 * H,
        "retry-after",
    ),
    ("retry-after-short-keeps-base", {"headers": {"Retry-After": "10"}}, 30 * M, "retry-after"),
    (
        "retry-after-past-keeps-base",
        {"headers": {"Retry-After": "Tue, 24 Nov 2026 12:00:00 GMT"}},
        30 * M,
        "retry-after",
    ),
    ("retry-after-capped", {"headers": {"Retry-After": "31536000"}}, 7 * D, "retry-after"),
    (
        "bare-doubles-previous",
        {"previous_interval": 2 * H, "error_count": 1},
        4 * H,
        "rate-limited",
    ),
    ("bare-first-doubles-base", {"error_count": 1}, H, "rate-limited"),
    ("bare-capped", {"previous_interval": 20 * H, "error_count": 1}, 24 * H, "rate-limited"),
    (
        "bare-backoff-beats-doubling",
        {"previous_interval": 30 * M, "error_count": 5},
        8 * H,
        "rate-limited",
    ),
    ("junk-retry-after-is-bare", {"headers": {"Retry-After": "soon"}}, H, "rate-limited"),
]


@pytest.mark.parametrize(
    ("facts", "interval", "reason"),
    [c[1:] for c in RATE_CASES],
    ids=[c[0] for c in RATE_CASES],
)
def test_rate_limited(facts: dict[str, Any], interval: timedelta, reason: str) -> None:
    result = poll(Outcome.RATE_LIMITED, **facts)
    assert (result.interval, result.reason) == (interval, reason)
    assert result.due == NOW + interval


def test_retry_after_7200_gives_at_least_two_hours_with_jitter_on_top() -> None:
    headers = {"Retry-After": "7200"}
    assert poll(Outcome.RATE_LIMITED, headers=headers, rand=low).due == NOW + 2 * H
    late = poll(Outcome.RATE_LIMITED, headers=headers, rand=high).due
    assert late is not None
    assert NOW + 2 * H < late <= NOW + 2 * H + 5 * M * 0.15  # up to jitter * floor


def test_a_bare_429_or_503_at_least_doubles_the_previous_interval() -> None:
    previous = 3 * H
    for _status in (429, 503):
        result = poll(Outcome.RATE_LIMITED, previous_interval=previous, error_count=1)
        assert result.interval >= 2 * previous
        previous = result.interval


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.ERROR),  # a 200 that did not parse
        (None, Outcome.ERROR),
        (404, Outcome.ERROR),
        (500, Outcome.ERROR),
        (429, Outcome.RATE_LIMITED),
        (503, Outcome.RATE_LIMITED),
        (410, Outcome.GONE),
    ],
)
def test_failure_outcome(status: int | None, outcome: Outcome) -> None:
    assert failure_outcome(status) is outcome


# ---------------------------------------------------------------- 410


def test_gone_is_never_polled_again() -> None:
    result = poll(
        Outcome.GONE, headers={"Retry-After": "60"}, hints=FeedHints(skip_hours=frozenset({12}))
    )
    assert (result.due, result.reason) == (None, "gone")


# ---------------------------------------------------------------- jitter

JITTER_CASES: list[tuple[str, Outcome, dict[str, Any]]] = [
    ("ok", Outcome.OK, {}),
    ("ok-max-age", Outcome.OK, {"headers": {"Cache-Control": "max-age=43200"}}),
    ("error", Outcome.ERROR, {"error_count": 4}),
    ("bare-429", Outcome.RATE_LIMITED, {"error_count": 1, "previous_interval": H}),
]


@pytest.mark.parametrize(
    ("outcome", "facts"), [c[1:] for c in JITTER_CASES], ids=[c[0] for c in JITTER_CASES]
)
def test_jitter_only_delays_and_stays_within_bounds(
    outcome: Outcome, facts: dict[str, Any]
) -> None:
    early = poll(outcome, rand=low, **facts)
    late = poll(outcome, rand=high, **facts)
    assert early.interval == late.interval  # jitter never changes the interval shown
    assert early.due == NOW + early.interval
    assert late.due is not None
    assert NOW + late.interval < late.due < NOW + late.interval * (1 + POLICY.jitter)
    assert late.due == NOW + late.interval * (1 + POLICY.jitter * HIGH)


def test_out_of_range_rand_is_clamped_and_zero_jitter_is_exact() -> None:
    assert poll(rand=lambda: -3.0).due == NOW + 30 * M
    assert poll(rand=lambda: 7.0).due == NOW + 30 * M * 1.15
    assert poll(policy=NO_JITTER, rand=high).due == NOW + 30 * M


# ---------------------------------------------------------------- skipHours / skipDays

SKIP_CASES: list[tuple[str, FeedHints, datetime, str]] = [
    # (id, hints, expected due, reason); without skips the due time is NOW + 30m = Wed 12:30
    ("not-skipped", FeedHints(skip_hours=frozenset({3, 4})), NOW + 30 * M, "config"),
    ("skip-hour", FeedHints(skip_hours=frozenset({12})), NOW + H, "skipHours"),
    (
        "skip-hours-run",
        FeedHints(skip_hours=frozenset({12, 13, 14})),
        NOW + 3 * H,
        "skipHours",
    ),
    (
        "skip-hours-wrap-midnight",
        FeedHints(skip_hours=frozenset(range(12, 24)) | {0, 1}),
        NOW + 14 * H,  # Thursday 02:00
        "skipHours",
    ),
    ("skip-day", FeedHints(skip_days=frozenset({2})), NOW + 12 * H, "skipDays"),  # Thu 00:00
    (
        "skip-day-then-hour",
        FeedHints(skip_days=frozenset({2}), skip_hours=frozenset({0, 1})),
        NOW + 14 * H,
        "skipDays",
    ),
    (
        "skip-days-run",
        FeedHints(skip_days=frozenset({2, 3, 4})),
        NOW + 2 * D + 12 * H,  # Saturday 00:00
        "skipDays",
    ),
    ("every-hour-ignored", FeedHints(skip_hours=frozenset(range(24))), NOW + 30 * M, "config"),
    ("every-day-ignored", FeedHints(skip_days=frozenset(range(7))), NOW + 30 * M, "config"),
    (
        "every-day-ignored-hours-kept",
        FeedHints(skip_days=frozenset(range(7)), skip_hours=frozenset({12})),
        NOW + H,
        "skipHours",
    ),
    (
        "out-of-range-values-ignored",
        FeedHints(skip_hours=frozenset({24, -1, 99}), skip_days=frozenset({7, -1})),
        NOW + 30 * M,
        "config",
    ),
]


@pytest.mark.parametrize(
    ("hints", "due", "reason"), [c[1:] for c in SKIP_CASES], ids=[c[0] for c in SKIP_CASES]
)
def test_skip_hints_defer_the_poll(hints: FeedHints, due: datetime, reason: str) -> None:
    result = poll(hints=hints)
    assert (result.due, result.reason) == (due, reason)
    assert result.interval == 30 * M  # the interval in force is unchanged


def test_skip_hours_apply_to_backoff_and_retry_after_too() -> None:
    hints = FeedHints(skip_hours=frozenset({13}))
    error = poll(Outcome.ERROR, error_count=2, hints=hints)  # 1h: due 13:00
    assert (error.due, error.reason, error.interval) == (NOW + 2 * H, "skipHours", H)
    limited = poll(Outcome.RATE_LIMITED, headers={"Retry-After": "3600"}, hints=hints)
    assert (limited.due, limited.reason) == (NOW + 2 * H, "skipHours")


def test_a_deferred_poll_is_spread_within_the_first_minute_of_the_hour() -> None:
    result = poll(rand=high, hints=FeedHints(skip_hours=frozenset({12})))
    assert result.due is not None
    assert NOW + H < result.due <= NOW + H + 5 * M * 0.15


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize("outcome", [Outcome.OK, Outcome.ERROR, Outcome.RATE_LIMITED])
@pytest.mark.parametrize("rand", [low, high])
def test_never_sooner_than_the_floor(outcome: Outcome, rand: Any) -> None:
    hostile = {"Cache-Control": "max-age=0", "Retry-After": "0", "Expires": "0"}
    for policy in (SchedulePolicy(interval=timedelta(0)), SchedulePolicy(), POLICY):
        result = poll(
            outcome,
            policy,
            rand,
            headers=hostile,
            error_count=1,
            previous_interval=timedelta(0),
            hints=FeedHints(ttl=timedelta(0), update_period=timedelta(0)),
            entry_times=spaced(20, S),
        )
        assert result.interval >= policy.min_interval
        assert result.due is not None
        assert result.due >= NOW + policy.min_interval


def test_naive_now_and_entry_times_are_taken_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    times = tuple(t.replace(tzinfo=None) for t in spaced(10, 2 * H))
    result = next_poll(PollFacts(now=naive, outcome=Outcome.OK, entry_times=times), AUTO, low)
    assert (result.due, result.reason) == (NOW + H, "auto")


def test_auto_interval_uses_the_newest_twenty_distinct_times() -> None:
    recent = [NOW - i * 20 * M for i in range(20)]  # 20-minute gaps: 10m, clamped to 15m
    ancient = [NOW - 400 * D]
    assert auto_interval(recent + ancient, AUTO) == 15 * M
    assert auto_interval(recent + ancient, SchedulePolicy(auto_min=M)) == 10 * M
    assert auto_interval(recent[:2] + recent[:2], AUTO) is None
    assert auto_interval(spaced(3, 4 * H), AUTO) == 2 * H


def test_default_policy_values() -> None:
    policy = SchedulePolicy()
    assert policy.interval is None
    assert (policy.min_interval, policy.auto_min, policy.auto_max) == (5 * M, 15 * M, 24 * H)
    assert (policy.auto_fallback, policy.jitter) == (30 * M, 0.15)
    assert (policy.backoff_cap, policy.hint_cap, policy.retry_after_cap) == (24 * H, 24 * H, 7 * D)
    facts = PollFacts(now=NOW, outcome=Outcome.OK)
    assert (facts.headers, facts.hints, facts.error_count) == ({}, FeedHints(), 0)
    assert (facts.entry_times, facts.previous_interval) == ((), None)
