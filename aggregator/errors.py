"""One exception tree for the whole package.

    AggregatorError
     ├── ConfigError        feeds.yaml is unusable (names file, line and key); nothing runs
     ├── FeedError          one feed failed this poll; the pipeline turns it into a PollResult
     │    ├── FetchError    network, HTTP status, timeout, size cap
     │    └── ParseError    the body is not a readable feed
     ├── StorageError       the database could not be opened or written
     ├── QueryError         a query the user typed is unusable (bad FTS syntax, a write in
     │                      read-only SQL, an unknown feed name)
     └── AlreadyRunning     another `aggregator run` holds the database

Outside exceptions are wrapped once, at the module boundary, with ``raise ... from e``.
Anything that is not an AggregatorError is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Mapping


class AggregatorError(Exception):
    """Base of every error the aggregator raises on purpose."""


class ConfigError(AggregatorError):
    """The configuration file is invalid; the message names file, line and key."""


class FeedError(AggregatorError):
    """A single feed failed; the other feeds carry on."""


class FetchError(FeedError):
    """The feed could not be retrieved (network, HTTP status, timeout, size cap)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers: Mapping[str, str] = headers or {}  # e.g. Retry-After on a 429 or 503


class ParseError(FeedError):
    """The body was retrieved but is not a feed we can read."""


class StorageError(AggregatorError):
    """The database could not be opened, migrated or written."""


class AlreadyRunning(AggregatorError):
    """A second service on the same database would mean two writers and double polling."""


class QueryError(AggregatorError):
    """A query from the user cannot run as given; the message says how to fix it."""
