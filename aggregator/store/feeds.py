"""Feeds: the configured list, validators, health and schedule (what `aggregator feeds` shows)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from aggregator.store._base import StoreBase, _must_utc, _seconds, _writing, parse_utc, utc_text
from aggregator.types import (
    FeedConfig,
    FeedHints,
    FeedState,
    FetchResult,
    Schedule,
)
from aggregator.urls import feed_source_id

# Fixed statements for the writes made for every feed on every run.
_INSERT_FEED = (
    "INSERT INTO feeds (name, source_id, added, url, configured_title, tags, enabled, prefer) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SYNC_FEED = (
    "UPDATE feeds SET url = ?, configured_title = ?, tags = ?, enabled = ?, prefer = ? WHERE id = ?"
)
_FORGET_OLD_URL = (
    "UPDATE feeds SET etag = NULL, last_modified = NULL, moved_to = NULL, moved_at = NULL, "
    "disabled_reason = NULL, next_due = NULL, error_count = 0, failing_since = NULL "
    "WHERE id = ?"
)
# What a 304 writes to its feed's row, for several feeds in one statement (the rows a VALUES
# list joined on id; `_flush_deferred`). A NULL keeps the stored value: validators the 304 did
# not resend (RFC 9110 section 15.4.5), and a permanent move that this answer did not make. Up
# to _NOT_MODIFIED_ROWS rows a statement (12 parameters each, far under SQLite's limit); the
# text for each count is built once, and sqlite3 caches the compiled statement.
_NOT_MODIFIED_ROWS = 100
_NOT_MODIFIED_COLUMNS = (
    "id",
    "final_url",
    "last_fetched",
    "last_success",
    "last_status",
    "etag",
    "last_modified",
    "moved_to",
    "moved_at",
    "next_due",
    "interval_seconds",
    "interval_reason",
)


@lru_cache(maxsize=_NOT_MODIFIED_ROWS)
def _not_modified_rows(count: int) -> str:
    """The UPDATE of `count` feeds that answered 304, their values in _NOT_MODIFIED_COLUMNS
    order, row after row."""
    names = ", ".join(f"new_{column}" for column in _NOT_MODIFIED_COLUMNS)
    row = "(" + ", ".join("?" * len(_NOT_MODIFIED_COLUMNS)) + ")"
    return (
        f"WITH answered ({names}) AS (VALUES {', '.join([row] * count)}) "
        "UPDATE feeds SET final_url = new_final_url, last_fetched = new_last_fetched, "
        "last_success = new_last_success, last_status = new_last_status, "
        "last_error = NULL, error_count = 0, failing_since = NULL, last_result = 'not-modified', "
        "etag = coalesce(new_etag, feeds.etag), "
        "last_modified = coalesce(new_last_modified, feeds.last_modified), "
        "moved_to = coalesce(new_moved_to, feeds.moved_to), "
        "moved_at = coalesce(new_moved_at, feeds.moved_at), "
        "next_due = new_next_due, interval_seconds = new_interval_seconds, "
        "interval_reason = new_interval_reason FROM answered WHERE feeds.id = new_id"
    )


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed as the `feeds` command shows it."""

    name: str
    url: str
    title: str | None
    enabled: bool
    last_fetched: str | None
    last_result: str | None
    last_status: int | None
    last_error: str | None
    error_count: int
    entries: int
    final_url: str | None
    moved_to: str | None
    disabled_reason: str | None
    failing_since: str | None
    next_due: str | None
    interval_seconds: float | None
    interval_reason: str | None


def feed_listing(configured: Sequence[FeedConfig], stored: Sequence[FeedRow]) -> list[FeedRow]:
    """What `aggregator feeds` lists: every configured feed, by name, with its stored state or,
    not stored yet (before the first update, or added to feeds.yaml since), as never polled;
    then the stored feeds no longer configured, whose entries are still kept."""
    rows = {row.name: row for row in stored}
    listed = [
        rows.get(feed.name)
        or FeedRow(
            name=feed.name,
            url=feed.url,
            title=feed.title,
            enabled=feed.enabled,
            last_fetched=None,
            last_result=None,
            last_status=None,
            last_error=None,
            error_count=0,
            entries=0,
            final_url=None,
            moved_to=None,
            disabled_reason=None,
            failing_since=None,
            next_due=None,
            interval_seconds=None,
            interval_reason=None,
        )
        for feed in sorted(configured, key=lambda feed: feed.name)
    ]
    names = {feed.name for feed in configured}
    return listed + [row for row in stored if row.name not in names]


class FeedsMixin(StoreBase):
    """Feed rows: synced with the config, updated after every poll."""

    def sync_feeds(self, feeds: Sequence[FeedConfig], now: datetime) -> dict[str, FeedState]:
        """Make the feeds table match the config (rows are never deleted: entries keep a home).

        Only rows whose configured values differ from the stored ones are written: a run whose
        config did not change writes nothing here. A feed whose configured URL changed starts
        afresh: validators, a permanent move and a 410 belonged to the old URL.
        """
        with _writing("the feed list"), self.atomic():
            stored = {
                row[0]: row[1:]
                for row in self.db.execute(
                    "SELECT name, id, url, configured_title, tags, enabled, prefer FROM feeds"
                ).fetchall()
            }
            for feed in feeds:
                configured = (
                    feed.url,
                    feed.title,
                    json.dumps(list(feed.tags), ensure_ascii=False),
                    int(feed.enabled),
                    int(feed.prefer),
                )
                existing = stored.get(feed.name)
                if existing is None:
                    cursor = self.db.execute(
                        _INSERT_FEED,
                        [feed.name, feed_source_id(feed.url), utc_text(now), *configured],
                    )
                    stored[feed.name] = (cursor.lastrowid, *configured)
                    continue
                feed_id, *values = existing
                if tuple(values) == configured:
                    continue
                self.db.execute(_SYNC_FEED, [*configured, feed_id])
                if values[0] != feed.url:
                    self.db.execute(_FORGET_OLD_URL, [feed_id])
        return self.feed_states([feed.name for feed in feeds])

    def feed_states(self, names: Iterable[str]) -> dict[str, FeedState]:
        wanted = list(names)
        rows = self.db.query(
            f"SELECT * FROM feeds WHERE name IN ({', '.join('?' * len(wanted))})", wanted
        )
        return {row["name"]: _feed_state(row) for row in rows}

    def due_feeds(self, names: Iterable[str], now: datetime) -> list[FeedState]:
        """Enabled, not disabled, configured feeds whose time has come, most overdue first."""
        wanted = list(names)
        rows = self.db.query(
            "SELECT * FROM feeds WHERE enabled AND disabled_reason IS NULL "
            "AND (next_due IS NULL OR next_due <= ?) "
            f"AND name IN ({', '.join('?' * len(wanted))}) ORDER BY next_due IS NOT NULL, next_due",
            [utc_text(now), *wanted],
        )
        return [_feed_state(row) for row in rows]

    def due_times(self, names: Iterable[str]) -> list[datetime | None]:
        """When each of these feeds that is polled at all is next due (None: never polled)."""
        wanted = list(names)
        rows = self.db.execute(
            "SELECT next_due FROM feeds WHERE enabled AND disabled_reason IS NULL "
            f"AND name IN ({', '.join('?' * len(wanted))})",
            wanted,
        )
        return [parse_utc(due) for (due,) in rows]

    def next_due(self, names: Iterable[str]) -> datetime | None:
        """The earliest time any of these feeds is due (None: nothing scheduled)."""
        wanted = list(names)
        row = self.db.execute(
            "SELECT min(coalesce(next_due, '')) FROM feeds WHERE enabled AND "
            f"disabled_reason IS NULL AND name IN ({', '.join('?' * len(wanted))})",
            wanted,
        ).fetchone()
        return parse_utc(row[0]) if row and row[0] else None

    def recent_entry_times(self, feed_id: int, limit: int = 20) -> list[datetime]:
        """Publication times of the feed's latest entries: its publishing rate, for "auto"."""
        rows = self.db.conn.execute(
            "SELECT published FROM sources WHERE feed_id = ? AND published IS NOT NULL "
            "ORDER BY published DESC LIMIT ?",
            [feed_id, limit],
        )
        return [_must_utc(text) for (text,) in rows]

    def record_not_modified(
        self,
        state: FeedState,
        fetched: FetchResult,
        now: datetime,
        schedule: Schedule,
        *,
        moved_to: str | None = None,
    ) -> None:
        """A 304: keep entries, refresh validators if the server sent new ones.

        One fixed UPDATE (sqlite-utils' ``Table.update`` first reads the row back): this runs
        for nearly every feed on nearly every run. Inside a batch, the batch writes all of its
        304s in one statement before its commit.
        """
        now_text = utc_text(now)
        values: dict[str, object] = {
            "final_url": fetched.url,
            "last_fetched": now_text,
            "last_success": now_text,
            "last_status": fetched.status,
            "etag": fetched.headers.get("ETag") or None,
            "last_modified": fetched.headers.get("Last-Modified") or None,
            "moved_to": moved_to,
            "moved_at": now_text if moved_to else None,
            **_schedule_values(schedule),
            "id": state.feed_id,
        }
        if self._deferred_not_modified is not None:
            self._deferred_not_modified.append(values)
            return
        with _writing(f"feed {state.name}"), self.atomic():
            self.db.conn.execute(
                _not_modified_rows(1), [values[column] for column in _NOT_MODIFIED_COLUMNS]
            )

    def _flush_deferred(self) -> None:
        rows = self._deferred_not_modified
        if rows:
            with _writing(f"{len(rows)} feeds that answered 304"):
                # One statement for many rows, not an executemany: each step of a statement lets
                # the fetch threads take the interpreter, and the writer waits to get it back.
                for start in range(0, len(rows), _NOT_MODIFIED_ROWS):
                    chunk = rows[start : start + _NOT_MODIFIED_ROWS]
                    self.db.conn.execute(
                        _not_modified_rows(len(chunk)),
                        [row[column] for row in chunk for column in _NOT_MODIFIED_COLUMNS],
                    )
            rows.clear()
        super()._flush_deferred()

    def record_error(
        self,
        state: FeedState,
        message: str,
        http_status: int | None,
        now: datetime,
        schedule: Schedule,
        *,
        disable: bool = False,
    ) -> None:
        """A failed poll: stored entries and validators are left exactly as they were."""
        with _writing(f"feed {state.name}"), self.atomic():
            self.db.execute(
                "UPDATE feeds SET last_fetched = :now, last_status = :status, "
                "last_result = 'error', last_error = :message, error_count = error_count + 1, "
                "failing_since = coalesce(failing_since, :now), disabled_reason = :disabled, "
                "next_due = :next_due, interval_seconds = :interval_seconds, "
                "interval_reason = :interval_reason WHERE id = :id",
                {
                    "now": utc_text(now),
                    "status": http_status,
                    "message": message,
                    "disabled": message if disable else None,
                    **_schedule_values(schedule),
                    "id": state.feed_id,
                },
            )

    def feed_rows(self) -> list[FeedRow]:
        rows = self.db.query(
            """
            SELECT f.*, (SELECT count(*) FROM sources s WHERE s.feed_id = f.id) AS entry_count
            FROM feeds f ORDER BY f.name
            """
        )
        same_name = [
            f.name for f in fields(FeedRow) if f.name not in ("title", "enabled", "entries")
        ]
        return [
            FeedRow(
                title=r["configured_title"] or r["title"],
                enabled=bool(r["enabled"]),
                entries=r["entry_count"],
                **{name: r[name] for name in same_name},
            )
            for r in rows
        ]


def _feed_state(row: dict[str, Any]) -> FeedState:
    interval = row["interval_seconds"]
    return FeedState(
        feed_id=row["id"],
        name=row["name"],
        url=row["moved_to"] or row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        source_id=row["source_id"],
        error_count=row["error_count"],
        interval=timedelta(seconds=interval) if interval else None,
        hints=FeedHints(
            ttl=_seconds(row["hint_ttl_seconds"]),
            update_period=_seconds(row["hint_update_period_seconds"]),
            skip_hours=frozenset(json.loads(row["hint_skip_hours"])),
            skip_days=frozenset(json.loads(row["hint_skip_days"])),
        ),
        next_due=parse_utc(row["next_due"]),
        disabled_reason=row["disabled_reason"],
    )


def _schedule_values(schedule: Schedule) -> dict[str, Any]:
    """The feeds columns of a schedule, by name (bound as named SQL parameters)."""
    return {
        "next_due": utc_text(schedule.due) if schedule.due else None,
        "interval_seconds": schedule.interval.total_seconds(),
        "interval_reason": schedule.reason,
    }
