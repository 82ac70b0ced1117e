"""Shared by every part of the store: the connection, dates as text, error wrapping."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from aggregator.errors import StorageError

BUSY_TIMEOUT_SECONDS = 30.0


def utc_text(moment: datetime) -> str:
    """ISO 8601 UTC text with a Z, the one date format stored (sorts as it reads)."""
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


class StoreBase:
    """The connection, and what every part of the store shares."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path
        if db.journal_mode == "wal":
            # WAL + NORMAL syncs at checkpoints instead of at every commit (a warm run commits
            # once per feed). A killed process loses nothing and the file never corrupts; a
            # power loss may roll back the last commits, entries and validators together (R-D7).
            db.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        self.db.conn.close()

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file so it does not grow without bound (R-D8)."""
        # A reader holding an old snapshot makes it fail: the next checkpoint will do.
        with suppress(sqlite3.OperationalError):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        """One atomic unit of work (nested writes become savepoints)."""
        with _writing(what), self.db.atomic():
            yield

    def count(self, table: str) -> int:
        return self.db[table].count
