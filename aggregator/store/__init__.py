"""SQLite storage: schema, migrations, writes and queries. The only module importing sqlite_utils.

One writer (the process running update/run), any number of readers: WAL mode, a busy timeout,
and one short transaction per feed response. Entries and the feed's new validators commit
together, so a crash can never leave an ETag for entries that were not stored (the next poll
would be answered 304 and those entries lost).

The package splits the store by domain (reader:src/reader/_storage/ shows the idea): `schema`
(migrations), `feeds`, `entries`, `stories`, `retention`, `output`, `filtering`; `Store` joins
them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from aggregator.errors import StorageError
from aggregator.store._base import (
    BUSY_TIMEOUT_SECONDS,
    WRITER_CACHE_KIB,
    StoreBase,
    TransactionLost,
    parse_utc,
    utc_text,
)
from aggregator.store.entries import EntriesMixin
from aggregator.store.feeds import FeedRow, FeedsMixin, feed_listing
from aggregator.store.filtering import FilteringMixin
from aggregator.store.output import OutputMixin
from aggregator.store.retention import PruneCounts, RetentionMixin
from aggregator.store.schema import migrations
from aggregator.store.stories import StoryMember, StoryRow

__all__ = [
    "WRITER_CACHE_KIB",
    "FeedRow",
    "PruneCounts",
    "Store",
    "StoreBase",
    "StoryMember",
    "StoryRow",
    "TransactionLost",
    "feed_listing",
    "migrations",
    "open_store",
    "parse_utc",
    "utc_text",
]


class Store(FeedsMixin, EntriesMixin, RetentionMixin, OutputMixin, FilteringMixin):
    """The aggregator's database. Create with :func:`open_store`."""


@contextmanager
def open_store(path: Path) -> Iterator[Store]:
    """Open (creating and migrating if needed) the database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA foreign_keys = ON")
        if db.journal_mode != "wal":
            db.enable_wal()
        migrations.apply(db)
    except (sqlite3.Error, OSError) as e:
        raise StorageError(f"cannot open database {path}: {e}") from e
    store = Store(db, path)
    try:
        yield store
    finally:
        store.close()
