"""The side of parsing that runs in a worker process: small on purpose.

A spawned worker is a fresh interpreter that imports the module of every function it is handed
(the pool's initializer, the submitted call). Kept here, beside `aggregator.parse`, instead of in
`aggregator.pipeline`, a worker imports only the parse stack (feedparser, lxml, nh3), not the
store, sqlite-utils (and numpy), requests or the renderers: a worker that has parsed a feed
takes ~32 MB instead of ~58 MB (issue 6). Nothing here may import more than `aggregator.parse`
and `aggregator.prepare` need. The one addition since: wordfreq's word list, loaded on the first
headline a worker weighs (~9 MB a worker), so that the writer's process never loads it.

A worker also imports the parent's main script, if it was started as one (not with
`python -m`): the `aggregator` console script therefore points at `aggregator.console`, which
imports the CLI only when called.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.types import ParsedFeed

__all__ = [
    "WORKER_NICENESS",
    "exit_with_parent",
    "loaded_modules",
    "parse_response",
    "start_worker",
]

PARENT_CHECK_EVERY = 0.5  # seconds: how soon an orphaned worker notices and leaves
# Added to a worker's nice value: the writer thread, the one stage that cannot be spread over
# cores, keeps a core of its own; the workers use what it leaves (issue 6).
WORKER_NICENESS = 10


def start_worker(parent: int) -> None:
    """The pool's initializer: a lower CPU priority than the parent, and gone with it.

    The writer thread is the one stage that cannot be spread over cores, and a cold update is
    as long as its writer: at equal priority the scheduler often put it beside a worker on a
    two-core machine (docs/performance.md has the measurements).
    """
    with suppress(OSError):  # a platform or sandbox that refuses: equal priority it is
        os.nice(WORKER_NICENESS)
    exit_with_parent(parent)


def exit_with_parent(parent: int) -> None:
    """Exit as soon as the parent is gone (even after a kill -9).

    The parent's pid comes from the parent itself: if it died while this worker was starting,
    the worker already belongs to init and must leave at once.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_EVERY)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def loaded_modules(prefixes: tuple[str, ...]) -> list[str]:
    """The modules this process has imported whose names start with one of `prefixes`.

    Submitted to a worker, it shows what a worker costs (tests keep the store out of it).
    """
    return sorted(name for name in sys.modules if name.startswith(prefixes))


def parse_response(
    body: bytes, *, url: str, headers: Mapping[str, str], now: datetime
) -> ParsedFeed:
    """The one way a fetched body is parsed: `aggregator.parse.parse_feed`, then the writer's
    pure share worked out beside it (`aggregator.prepare`: fingerprints, headline words and
    their weighted vectors).

    What `Parser` hands to a worker, and what it calls in its own thread for small runs. The
    parse stack is imported on first use: the parent imports feedparser and lxml only if it
    parses something itself (a warm run of 304s, or a run big enough for the workers, never
    does).
    """
    from aggregator.parse import parse_feed
    from aggregator.prepare import prepared

    return prepared(parse_feed(body, url=url, headers=headers, now=now))
