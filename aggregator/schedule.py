"""When is a feed next due: the polling policy, as pure functions of what one poll told us.

No clock, no I/O, no randomness but the ``rand`` passed in, so every rule is a table test.
The rules, in order (a publisher's request to slow down is never shortened by ours):

1. base: the configured interval, else "auto" (half the feed's average gap between entries),
   never below ``min_interval`` (the floor; only an explicit lower floor goes below 5 minutes);
2. by outcome: OK takes the longest of base and the publisher's hints (RSS ttl, sy:*, HTTP
   max-age / Expires); ERROR backs off exponentially; RATE_LIMITED honours Retry-After or
   doubles the interval; GONE stops;
3. jitter is only ever added (never polls early), then skipHours / skipDays defer the time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from aggregator.types import FeedHints, Schedule

# RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31 seconds (68 years),
# which also keeps datetime arithmetic from overflowing.
_MAX_DELTA_SECONDS = 2**31
_MAX_DOUBLINGS = 64  # 2**64 times any interval is past every cap
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    """The knobs of the policy; the defaults are the project's politeness rules."""

    interval: timedelta | None = None  # configured per-feed interval; None = "auto"
    min_interval: timedelta = timedelta(minutes=5)  # floor; only an explicit lower one goes below
    auto_min: timedelta = timedelta(minutes=15)
    auto_max: timedelta = timedelta(hours=24)
    auto_fallback: timedelta = timedelta(minutes=30)  # "auto" with < 3 dated entries
    jitter: float = 0.15  # up to +15% added, never subtracted
    backoff_cap: timedelta = timedelta(hours=24)
    hint_cap: timedelta = timedelta(hours=24)  # ttl / max-age / Expires / sy:* go no further
    retry_after_cap: timedelta = timedelta(days=7)


class Outcome(StrEnum):
    """What one poll amounted to, for scheduling."""

    OK = "ok"  # 200 parsed, or 304
    ERROR = "error"  # network error, timeout, 4xx/5xx other than below, parse error
    RATE_LIMITED = "rate-limited"  # 429, or 503 (with or without Retry-After)
    GONE = "gone"  # 410


@dataclass(frozen=True, slots=True)
class PollFacts:
    """Everything one poll told us that bears on the next one."""

    now: datetime  # aware UTC
    outcome: Outcome
    headers: Mapping[str, str] = field(default_factory=dict)  # any case; empty on network errors
    hints: FeedHints = field(default_factory=FeedHints)  # from the last parsed document
    error_count: int = 0  # consecutive failures INCLUDING this poll (0 on success)
    entry_times: Sequence[datetime] = ()  # recent publication times of entries, any order
    previous_interval: timedelta | None = None  # interval in force before this poll


def failure_outcome(status: int | None) -> Outcome:
    """The Outcome of a failed poll, by the HTTP status it got (None: no response at all; a
    200 that did not parse is an ERROR like any other)."""
    if status == 410:  # RFC 9110 §15.5.11: gone for good
        return Outcome.GONE
    if status in (429, 503):  # RFC 6585 §4, RFC 9110 §15.6.4: slow down
        return Outcome.RATE_LIMITED
    return Outcome.ERROR


def next_poll(
    facts: PollFacts, policy: SchedulePolicy, rand: Callable[[], float] = random.random
) -> Schedule:
    """When to poll a feed next, given what this poll told us (rules in the module docstring)."""
    now = _utc(facts.now)
    floor = max(policy.min_interval, timedelta(0))
    base, base_reason = _base(facts.entry_times, policy)
    base = max(base, floor)
    jitter = min(max(rand(), 0.0), 1.0) * max(policy.jitter, 0.0)

    if facts.outcome is Outcome.GONE:
        return Schedule(due=None, interval=base, reason="gone")

    if facts.outcome is Outcome.OK:
        interval, reason = _longest(base, base_reason, facts, now, policy)
        due = now + interval * (1 + jitter)
    elif facts.outcome is Outcome.ERROR:
        # RFC 9110 gives no retry rule for errors; exponential backoff keeps a broken feed
        # from being hammered, and it is retried forever (the operator decides it is dead).
        interval = max(base, _backoff(base, facts.error_count, policy.backoff_cap))
        reason = "backoff"
        due = now + interval * (1 + jitter)
    else:  # RATE_LIMITED
        when = retry_after(facts.headers, now)
        if when is not None:
            # RFC 9110 §10.2.3: not before Retry-After; and a server that asked us to slow down
            # never gets polled sooner than a normal poll would be: the longer of the two.
            wait = min(max(when - now, timedelta(0)), policy.retry_after_cap)
            interval, reason = max(wait, base), "retry-after"
            # Jitter on top of the server's time, so every client is not back at that second.
            due = now + interval + floor * jitter
        else:
            # A bare 429/503 still means slow down (RFC 6585 section 4): at least double the last
            # interval.
            previous = min(facts.previous_interval or base, policy.backoff_cap)
            doubled = max(2 * previous, _backoff(base, facts.error_count, policy.backoff_cap))
            interval, reason = max(base, min(policy.backoff_cap, doubled)), "rate-limited"
            due = now + interval * (1 + jitter)

    due, skip_reason = _defer_skipped(due, facts.hints, floor * jitter)
    return Schedule(due=due, interval=interval, reason=skip_reason or reason)


def auto_interval(entry_times: Sequence[datetime], policy: SchedulePolicy) -> timedelta | None:
    """Half the mean gap between the newest (up to 20) distinct entry times, clamped.

    Polling at half the publishing cadence catches most items within one gap without
    polling a monthly feed hourly (FRB: slow down for rarely-updated feeds). None when
    fewer than 3 distinct times: two points are no cadence.
    """
    times = sorted({_utc(t) for t in entry_times}, reverse=True)[:20]
    if len(times) < 3:
        return None
    mean_gap = (times[0] - times[-1]) / (len(times) - 1)
    return min(max(mean_gap / 2, policy.auto_min), policy.auto_max)


def cache_lifetime(headers: Mapping[str, str], now: datetime) -> tuple[timedelta, str] | None:
    """How long the response stays fresh from now, by HTTP caching rules, and which header said so.

    RFC 9111 §5.2.2.1 max-age wins over §5.3 Expires (minus Date, else minus now, §4.2.1);
    an Age header is subtracted (§4.2.3: the copy is already that old). no-cache / no-store
    give no lifetime; s-maxage is for shared caches and ignored. Invalid or negative: None.
    """
    now = _utc(now)
    cache_control = _header(headers, "cache-control")
    if cache_control is not None:
        directives = _directives(cache_control)
        if "no-cache" in directives or "no-store" in directives:
            return None
        if "max-age" in directives:
            # An invalid max-age makes the response stale (§4.2.1); Expires is then ignored.
            seconds = _delta_seconds(directives["max-age"])
            return _minus_age(seconds, headers, "max-age")
    expires_text = _header(headers, "expires")
    if expires_text is None:
        return None
    expires = _http_date(expires_text)  # §5.3: an invalid date means already expired
    if expires is None:
        return None
    date_text = _header(headers, "date")
    date = (_http_date(date_text) if date_text is not None else None) or now
    lifetime = (expires - date).total_seconds()
    if lifetime < 0:
        return None
    return _minus_age(min(int(lifetime), _MAX_DELTA_SECONDS), headers, "expires")


def retry_after(headers: Mapping[str, str], now: datetime) -> datetime | None:
    """The time Retry-After names: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); else None."""
    value = _header(headers, "retry-after")
    if value is None:
        return None
    seconds = _delta_seconds(value)
    if seconds is not None:
        return _utc(now) + timedelta(seconds=seconds)
    return _http_date(value)


# ---------------------------------------------------------------- helpers


def _base(entry_times: Sequence[datetime], policy: SchedulePolicy) -> tuple[timedelta, str]:
    """The interval before hints, errors and the floor: configured, else auto, else fallback."""
    if policy.interval is not None:
        return policy.interval, "config"
    auto = auto_interval(entry_times, policy)
    if auto is not None:
        return auto, "auto"
    return policy.auto_fallback, "auto (too little history)"


def _longest(
    base: timedelta, base_reason: str, facts: PollFacts, now: datetime, policy: SchedulePolicy
) -> tuple[timedelta, str]:
    """Base or the longest publisher hint (capped): a hint may lengthen the interval, never
    shorten it (a ttl of 1 minute does not make us poll every minute)."""
    candidates: list[tuple[timedelta | None, str]] = [
        (facts.hints.ttl, "ttl"),  # RSS 2.0 <ttl>: minutes it may be cached
        (facts.hints.update_period, "sy:updatePeriod"),  # RSS 1.0 Syndication module
    ]
    lifetime = cache_lifetime(facts.headers, now)
    if lifetime is not None:
        candidates.append(lifetime)
    interval, reason = base, base_reason
    for hint, hint_reason in candidates:
        if hint is not None and min(hint, policy.hint_cap) > interval:
            interval, reason = min(hint, policy.hint_cap), hint_reason
    return interval, reason


def _backoff(base: timedelta, failures: int, cap: timedelta) -> timedelta:
    """min(cap, base * 2**(failures - 1)), without overflowing on a long failure streak."""
    interval = base
    for _ in range(min(max(failures - 1, 0), _MAX_DOUBLINGS)):
        if interval >= cap:
            break
        interval *= 2
    return min(interval, cap)


def _defer_skipped(
    due: datetime, hints: FeedHints, spread: timedelta
) -> tuple[datetime, str | None]:
    """Move ``due`` out of the publisher's skipHours / skipDays (RSS 2.0: hours GMT).

    The new time is the start of the next allowed hour plus ``spread`` (the jitter, less than
    a minute) so feeds sharing a skip list do not all fire on the hour. A list that skips
    everything is ignored: it would stop the feed for good.
    """
    hours = {h for h in hints.skip_hours if 0 <= h <= 23}
    days = {d for d in hints.skip_days if 0 <= d <= 6}
    if len(hours) == 24:
        hours = set()
    if len(days) == 7:
        days = set()
    reason: str | None = None
    for _ in range(24 * 8):  # a week of hours always reaches an allowed one
        if due.weekday() in days:
            reason = reason or "skipDays"
        elif due.hour in hours:
            reason = reason or "skipHours"
        else:
            break
        due = due.replace(minute=0, second=0, microsecond=0) + _HOUR
    if reason is not None:
        due += min(spread, _HOUR / 2)
    return due, reason


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the mapping's key case (plain dicts are case-sensitive)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    return None if value is None else str(value)


def _directives(cache_control: str) -> dict[str, str]:
    """Cache-Control directives by lowercased name; the first of a repeated one wins (§4.2.1)."""
    directives: dict[str, str] = {}
    for part in cache_control.split(","):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name and name not in directives:
            directives[name] = value.strip()
    return directives


def _delta_seconds(value: str) -> int | None:
    """RFC 9111 §1.2.2 delta-seconds (the quoted form tolerated, §5.2), capped at 2^31."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    if not (text.isascii() and text.isdigit()):
        return None
    if len(text) > len(str(_MAX_DELTA_SECONDS)):
        return _MAX_DELTA_SECONDS
    return min(int(text), _MAX_DELTA_SECONDS)


def _minus_age(
    seconds: int | None, headers: Mapping[str, str], reason: str
) -> tuple[timedelta, str] | None:
    """The freshness left once the Age the response already has is taken off (§4.2.3)."""
    if seconds is None:
        return None
    age_text = _header(headers, "age")
    age = _delta_seconds(age_text) if age_text is not None else None
    remaining = seconds - (age or 0)
    return (timedelta(seconds=remaining), reason) if remaining >= 0 else None


def _http_date(value: str) -> datetime | None:
    """An HTTP-date (all three RFC 9110 §5.6.7 forms) as aware UTC; None when invalid."""
    try:
        return _utc(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):  # junk, or a year out of range
        return None


def _utc(when: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken as UTC (HTTP-dates and our records always are)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
