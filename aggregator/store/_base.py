"""Shared by every part of the store: the connection, dates as text, error wrapping."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from aggregator.errors import StorageError

BUSY_TIMEOUT_SECONDS = 30.0


@functools.lru_cache(maxsize=4096)
def utc_text(moment: datetime) -> str:
    """ISO 8601 UTC text with a Z, the one date format stored (sorts as it reads).

    Remembered: a response's entries are all stored at one `now`, and strftime costs ten times
    a lookup (the writer formats a few dates per entry).
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@contextmanager
def _writing(what: str) -> Iterator[None]:
    """Turn a failed write into a StorageError naming what was being written."""
    try:
        yield
    except sqlite3.Error as e:
        raise StorageError(f"could not store {what}: {e}") from e


def _must_utc(text: str) -> datetime:
    moment = parse_utc(text)
    assert moment is not None
    return moment


def _row_id(value: object) -> int:
    """sqlite-utils types last_pk loosely; an insert into an INTEGER PRIMARY KEY gives an int."""
    assert isinstance(value, int)
    return value


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None


WRITER_CACHE_KIB = 32 * 1024


class TransactionLost(StorageError):
    """A unit of a batch failed so badly that SQLite rolled back the whole batch."""


class StoreBase:
    """The connection, and what every part of the store shares."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path
        if db.journal_mode == "wal":
            # WAL + NORMAL syncs at checkpoints instead of at every commit (a warm run commits
            # once per feed). A killed process loses nothing and the file never corrupts; a
            # power loss may roll back the last commits, entries and validators together.
            db.execute("PRAGMA synchronous = NORMAL")
        # The writer's page cache (SQLite's default is 2 MiB). Story placement and new entries
        # insert at random places in word and fingerprint indexes; once those outgrow the
        # cache every insert reads its pages back from the file. Pages are allocated only as
        # they are used, so a small database costs no more (docs/performance.md).
        db.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """sqlite-utils' `Database.atomic` (a transaction, or a savepoint inside one) with one
        savepoint name: sqlite-utils names each savepoint with `secrets.token_hex`, so its two
        statements are new text each time, compiled anew and never reused from the statement
        cache; a warm update opens one per feed (issue 6). SQLite releases or rolls back the
        innermost savepoint of a name, so one name nests."""
        conn = self.db.conn
        if conn.in_transaction:
            conn.execute("SAVEPOINT aggregator_unit")
            try:
                yield
            except BaseException:
                # An error may have rolled the whole transaction back already (a full disk).
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO SAVEPOINT aggregator_unit")
                    conn.execute("RELEASE SAVEPOINT aggregator_unit")
                raise
            else:
                conn.execute("RELEASE SAVEPOINT aggregator_unit")
            return
        conn.execute("BEGIN")
        self._own_transaction, self._foreign_keys_deferred = True, False
        try:
            yield
        except BaseException:
            self.db.rollback()  # a no-op if the error already ended the transaction
            raise
        else:
            try:
                conn.execute("COMMIT")
            except BaseException:
                self.db.rollback()
                raise
        finally:
            self._own_transaction = self._foreign_keys_deferred = False

    _own_transaction = False  # inside a transaction `atomic` began (and will end)
    _foreign_keys_deferred = False  # ... and its foreign keys are checked at its commit

    def defer_foreign_keys(self) -> None:
        """Check foreign keys when the transaction commits, not at each statement: a new entry
        is inserted with the id its new story is about to take, and that story's row, which
        names the entry as its representative, follows (`StoriesMixin.story_for_new_entry`).
        Set once a transaction, when first needed: SQLite clears it as each one ends, and the
        pragma is a statement more, which a transaction of 304s need not make."""
        if not self._foreign_keys_deferred:
            self.db.conn.execute("PRAGMA defer_foreign_keys = ON")
            # Remembered only where we see the transaction end; elsewhere it is set each time.
            self._foreign_keys_deferred = self._own_transaction

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file so it does not grow without bound (a reader
        holding a snapshot for months would otherwise keep every page written since)."""
        # A reader holding an old snapshot makes it fail: the next checkpoint will do.
        with suppress(sqlite3.OperationalError):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        """One atomic unit of work (nested writes become savepoints)."""
        nested = self.db.conn.in_transaction
        mark = len(self._deferred_search) if self._deferred_search is not None else 0
        if self._unit_depth == 0:
            self._units_begun += 1
        self._unit_depth += 1
        try:
            with _writing(what), self.atomic():
                yield
        except BaseException as error:
            if self._deferred_search is not None:
                del self._deferred_search[mark:]  # this unit's rows went with it
            self._discard_caches()  # they may hold what was just rolled back
            if nested and not self.db.conn.in_transaction:
                # SQLite rolled the enclosing transaction back too (a full disk, an I/O
                # error): the batch around this unit is gone, not only the unit.
                raise TransactionLost(f"could not store {what}: {error}") from error
            raise
        finally:
            self._unit_depth -= 1

    # Outermost units begun, and how deep the current one is: inside one unit no other
    # connection can commit (we write; SQLite lets one writer at a time), so what was read
    # of another connection's changes stays true until it ends (`current_unit`).
    _units_begun = 0
    _unit_depth = 0

    def current_unit(self) -> int | None:
        """Which outermost unit of work is running, if one is: a number that changes when it
        ends and another begins."""
        return self._units_begun if self._unit_depth else None

    @contextmanager
    def batch(self, what: str) -> Iterator[None]:
        """Several units of work (`transaction`s, each a savepoint) committed as one.

        One commit instead of one per feed, and the new entries indexed for search in one
        statement just before it: FTS5 (SQLite 3.40) writes its pending terms out as a new
        segment at every savepoint, so rows inserted inside each feed's savepoint cost a flush
        each. A unit rolled back takes its rows off the list; if the commit fails, none of the
        batch is stored. A batch inside a batch is one of its units.
        """
        if self._deferred_search is not None:
            with self.transaction(what):
                yield
            return
        with self.transaction(what):
            self._deferred_search = []
            self._deferred_not_modified = []
            try:
                yield
                self._flush_deferred()
            finally:
                self._deferred_search = None
                self._deferred_not_modified = None

    _deferred_search: list[tuple[int, str | None, str | None, str | None]] | None = None
    # The feed rows of a batch's 304s (`FeedsMixin.record_not_modified`), written in one
    # statement before the commit: nothing in the batch reads them back, and each statement
    # of the writer hands the interpreter to the fetch threads and waits to get it back.
    _deferred_not_modified: list[dict[str, object]] | None = None

    def _flush_deferred(self) -> None:
        """Write what the batch put off, just before its commit."""
        self._flush_search_index()

    def _flush_search_index(self) -> None:
        if self._deferred_search:
            self.db.conn.executemany(
                "INSERT INTO entries_fts (rowid, title, summary, content) VALUES (?, ?, ?, ?)",
                self._deferred_search,
            )
            self._deferred_search.clear()

    def _discard_caches(self) -> None:
        """Forget what is cached from the tables (after a rollback, or rows deleted)."""

    def count(self, table: str) -> int:
        return self.db[table].count
