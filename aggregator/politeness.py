"""How many requests one host gets at once: the `per_host` rule, shared by `update` and `run`.

Pure bookkeeping (no clock, no I/O): which feed may be polled next so that at most `per_host`
feeds of one host are in flight, the others waiting for their host's turn in the order given.
A feed is in flight from the moment it is handed out until `done` is called for it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar
from urllib.parse import urlsplit

Item = TypeVar("Item")


def host_of(url: str) -> str:
    """The politeness key of a URL: its host (all local files share one key)."""
    parts = urlsplit(url)
    return (parts.hostname or parts.scheme or "").lower()


class HostTurns(Generic[Item]):
    """Hands out items in order, at most `per_host` of one host at a time.

    An item whose host is full waits, and so does every later item of that host (each host's
    own order is kept); items of other hosts go ahead of it.
    """

    def __init__(self, per_host: int, items: Iterable[Item], host: Callable[[Item], str]) -> None:
        self.per_host = max(1, per_host)
        self._host = host
        self._unseen: deque[Item] = deque(items)
        self._held: dict[str, deque[Item]] = {}
        self._busy: Counter[str] = Counter()
        self._freed: deque[str] = deque()  # hosts given a free slot while items of theirs wait

    def add(self, item: Item) -> None:
        """One more item to hand out, after those already given."""
        self._unseen.append(item)

    def take(self) -> Item | None:
        """The next item that may start now, marked in flight; None when every remaining one
        waits for its host (or none remain)."""
        while self._freed:
            host = self._freed.popleft()
            held = self._held.get(host)
            if held and self._busy[host] < self.per_host:
                return self._start(host, held.popleft(), held)
        while self._unseen:
            item = self._unseen.popleft()
            host = self._host(item)
            if host not in self._held and self._busy[host] < self.per_host:
                return self._start(host, item, None)
            self._held.setdefault(host, deque()).append(item)
        return None

    def done(self, item: Item) -> None:
        """`item` is no longer in flight: its host's slot goes to the next of that host."""
        host = self._host(item)
        self._busy[host] -= 1
        if not self._busy[host]:
            del self._busy[host]
        if host in self._held:
            self._freed.append(host)

    def in_flight(self, host: str) -> int:
        return self._busy[host]

    def waiting(self) -> int:
        """How many items are not handed out yet."""
        return len(self._unseen) + sum(len(held) for held in self._held.values())

    def _start(self, host: str, item: Item, held: deque[Item] | None) -> Item:
        if held is not None and not held:
            del self._held[host]
        self._busy[host] += 1
        return item
