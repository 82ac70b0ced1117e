"""Read-only queries for people: entries, full-text search, any SELECT, statistics.

The connection itself refuses writes (`mode=ro` and `PRAGMA query_only`), so `aggregator sql`
cannot change the database whatever it is given, and a reader never blocks the service (WAL).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aggregator.errors import QueryError, StorageError

Row = dict[str, Any]
BUSY_TIMEOUT_SECONDS = 10.0
HIGHLIGHT = ("\x02", "\x03")  # snippet markers; the CLI turns them into bold or [brackets]
# The snippet is cut from stored HTML, where a raw "<" or ">" only ever belongs to a tag: a tag
# cut at either end of the snippet goes too (`kept the ferry in port. <a href="https…`).
_TAG = re.compile(r"<[^>]*>|<[^>]*$|^[^<>]*>")


@contextmanager
def open_reader(database: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the database (which must exist)."""
    if not database.exists():
        raise StorageError(f"no database at {database}: run `aggregator update` first")
    uri = f"file:{quote(str(database.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        conn.execute("PRAGMA query_only = 1")
    except sqlite3.Error as e:
        raise StorageError(f"cannot open database {database}: {e}") from e
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def _utc(moment: datetime) -> str:
    """The instant as stored (UTC text): an offset is converted, not dropped (issue 14); a
    naive time is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def feed_names(conn: sqlite3.Connection) -> list[str]:
    return [name for (name,) in conn.execute("SELECT name FROM feeds ORDER BY name")]


# Every feed's copy of each entry, shaped like entries_view: a story's listing shows each
# outlet's copy, also those merged into one entry because they carried the same URL.
_COPIES = """(
    SELECT e.id, e.uid, coalesce(s.published, e.published) AS published, f.name AS feed,
           f.tags AS feed_tags, s.title, s.link, e.summary, e.tags, e.story_id,
           (SELECT count(*) FROM sources o WHERE o.entry_id = e.id) AS sources, s.id AS copy,
           e.filtered_by
    FROM sources s JOIN entries e ON e.id = s.entry_id JOIN feeds f ON f.id = s.feed_id
)"""


def entries(
    conn: sqlite3.Connection,
    *,
    feed: str | None = None,
    tag: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    story: int | None = None,
    filtered: bool = False,
    limit: int = 50,
) -> list[Row]:
    """Newest entries first, filtered; an entry matches a feed if any of its sources is it.

    With ``story``, every outlet's copy of the story's entries is a row of its own (its feed,
    title, link and date), as `aggregator stories` lists them. With ``filtered``, only the
    entries the keep and block rules leave out of the outputs. Each row's ``filtered_by``
    names that rule (None: shown), as judged at the last update or build.
    """
    where: list[str] = []
    params: list[Any] = []
    if feed is not None:
        if feed not in feed_names(conn):
            known = ", ".join(feed_names(conn)) or "none yet"
            raise QueryError(f"no feed named {feed!r} (feeds: {known})")
        if story is not None:
            where.append("e.feed = ?")
        else:
            where.append(
                "EXISTS (SELECT 1 FROM sources s JOIN feeds sf ON sf.id = s.feed_id "
                "WHERE s.entry_id = e.id AND sf.name = ?)"
            )
        params.append(feed)
    if tag is not None:
        # a tag given to the feed in feeds.yaml, or a category the entry itself carries
        where.append(
            "(EXISTS (SELECT 1 FROM json_each(e.feed_tags) WHERE value = ?) "
            "OR EXISTS (SELECT 1 FROM json_each(e.tags) WHERE value = ?))"
        )
        params += [tag, tag]
    if since is not None:
        where.append("e.published >= ?")
        params.append(_utc(since))
    if until is not None:
        where.append("e.published < ?")
        params.append(_utc(until))
    if story is not None:
        where.append("e.story_id = ?")
        params.append(story)
    if filtered:
        where.append("e.filtered_by IS NOT NULL")
    rows, order = ("entries_view", "") if story is None else (_COPIES, ", e.copy DESC")
    sql = (
        "SELECT e.published, e.feed, e.title, e.link, e.story_id AS story, e.sources, "
        f"e.feed_tags, e.tags, e.uid, e.summary, e.filtered_by FROM {rows} e"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY e.published DESC, e.id DESC{order} LIMIT ?"
    )
    return [_decode(row) for row in conn.execute(sql, [*params, limit])]


def search(conn: sqlite3.Connection, query: str, *, limit: int = 20) -> list[Row]:
    """Full-text search (FTS5 syntax: phrases, OR, NOT, prefix*), best match first (bm25)."""
    start, end = HIGHLIGHT
    try:
        rows = conn.execute(
            """
            SELECT round(bm25(entries_fts), 3) AS rank, e.published, f.name AS feed, e.title,
                   e.link, snippet(entries_fts, -1, ?, ?, '…', 16) AS snippet
            FROM entries_fts JOIN entries e ON e.id = entries_fts.rowid
            JOIN feeds f ON f.id = e.feed_id
            WHERE entries_fts MATCH ? ORDER BY bm25(entries_fts) LIMIT ?
            """,
            [start, end, query, limit],
        ).fetchall()
    except sqlite3.OperationalError as e:
        raise QueryError(
            f'cannot search for {query!r}: {e}. Use words, "a phrase", OR, NOT, prefix*; '
            "quote words that contain punctuation"
        ) from None
    return [{**dict(row), "snippet": plain_snippet(row["snippet"])} for row in rows]


def plain_snippet(snippet: str | None) -> str:
    """A search snippet without the markup of the HTML it was cut from, cut tags included."""
    return _TAG.sub("", snippet or "")


SQL_TIMEOUT_SECONDS = 30.0
# ATTACH (and VACUUM INTO, which SQLite authorizes as one) would create files: refused.
_REFUSED_ACTIONS = frozenset({sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH})


def _authorize(action: int, *_: object) -> int:
    return sqlite3.SQLITE_DENY if action in _REFUSED_ACTIONS else sqlite3.SQLITE_OK


def run_sql(
    conn: sqlite3.Connection,
    sql: str,
    params: Sequence[Any] = (),
    *,
    timeout: float = SQL_TIMEOUT_SECONDS,
    interrupted: Callable[[], bool] = lambda: False,
) -> list[Row]:
    """Any read-only statement; a write is refused by the connection itself, ATTACH and
    VACUUM INTO by an authorizer. Stopped past `timeout` seconds, or when `interrupted()`
    says so (the CLI's Ctrl-C): SQLite asks every few thousand steps."""
    deadline = time.monotonic() + timeout
    stopped: list[str] = []

    def progress() -> int:
        if interrupted():
            stopped.append("interrupted")
        elif time.monotonic() > deadline:
            stopped.append(f"stopped after {timeout:g} s (--timeout)")
        return 1 if stopped else 0

    conn.set_authorizer(_authorize)
    conn.set_progress_handler(progress, 10_000)
    try:
        cursor = conn.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except sqlite3.DatabaseError as e:
        if stopped:
            raise QueryError(f"query {stopped[0]}") from None
        if "not authorized" in str(e) or "authorization denied" in str(e):
            raise QueryError(
                "refused: `aggregator sql` may not ATTACH databases or VACUUM INTO files"
            ) from None
        if "readonly" in str(e) or "query_only" in str(e) or "read-only" in str(e):
            raise QueryError(
                "refused: `aggregator sql` is read-only (the database is changed only by "
                "update and run)"
            ) from None
        raise QueryError(f"SQL error: {e}") from None
    except sqlite3.Error as e:
        raise QueryError(f"SQL error: {e}") from None
    finally:
        conn.set_progress_handler(None, 0)
        conn.set_authorizer(None)


def stats(conn: sqlite3.Connection, database: Path) -> dict[str, Any]:
    """Counts per feed and per day, what deduplication merged, and the database's size.

    Per feed, ``newest_published`` is its newest copy's publication time (how fresh the feed
    is), ``last_fetched`` when it was last polled.
    """
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM feeds), (SELECT count(*) FROM entries), "
        "(SELECT count(*) FROM sources), (SELECT count(*) FROM stories)"
    ).fetchone()
    totals = dict(zip(("feeds", "entries", "copies", "stories"), counts, strict=True))
    per_feed = [
        dict(row)
        for row in conn.execute(
            """
            SELECT f.name AS feed, count(s.id) AS copies,
                   sum(e.feed_id = f.id) AS entries_shown,
                   max(coalesce(s.published, e.published)) AS newest_published,
                   f.last_fetched, f.last_result AS last_poll
            FROM feeds f LEFT JOIN sources s ON s.feed_id = f.id
            LEFT JOIN entries e ON e.id = s.entry_id
            GROUP BY f.id ORDER BY copies DESC, f.name
            """
        )
    ]
    per_day = [
        dict(row)
        for row in conn.execute(
            "SELECT substr(published, 1, 10) AS day, count(*) AS entries FROM entries "
            "GROUP BY day ORDER BY day DESC LIMIT 14"
        )
    ]
    size = sum(path.stat().st_size for path in (database, Path(f"{database}-wal")) if path.exists())
    return {
        **totals,
        "merged_same_url": totals["copies"] - totals["entries"],
        "merged_same_story": totals["entries"] - totals["stories"],
        "database_bytes": size,
        "per_feed": per_feed,
        "per_day": per_day,
    }


def _decode(row: sqlite3.Row) -> Row:
    out = dict(row)
    for key in ("feed_tags", "tags"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out
